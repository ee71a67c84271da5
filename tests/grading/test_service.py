"""Monthly grading over the store (SQLite and PostgreSQL): the store's current values
give the same grades as the engine on the same data; a month is kept once and never
rewritten; bad months and early questions get clear errors and change nothing; the
CLI prints counts and explanations."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy import Engine

from cli import main
from common.db import migrate
from common.errors import InvalidInput
from common.settings import Settings, load_settings
from grading import service
from grading.engine import GRADES, METHODS, grade
from grading.inputs import population
from records import synth
from records.catalog import Catalog
from records.service import import_csv

TODAY = date(2025, 7, 15)
CITY_SIZE = 400


@pytest.fixture(scope="module")
def city() -> synth.City:
    return synth.generate(Catalog(load_settings(env={}).config), CITY_SIZE, 21)


def load_city(engine: Engine, city: synth.City, folder: Path) -> None:
    catalog = Catalog(load_settings(env={}).config)
    synth.write(city, folder)
    for department in catalog.departments:
        data = (folder / f"{department}.csv").read_bytes()
        import_csv(engine, catalog, department, data, file_name="f.csv", actor="test")


def count_rows(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(sa.select(sa.func.count()).select_from(service.grades)).scalar_one()
        )


def test_a_month_is_graded_from_the_stores_current_values_and_kept_once(
    engine: Engine, settings: Settings, city: synth.City, tmp_path: Path
) -> None:
    load_city(engine, city, tmp_path / "city")
    run = service.compute(engine, settings, "2025-06", today=TODAY, now=1, actor="test")
    assert run.as_of == date(2025, 6, 30) and run.enterprises == CITY_SIZE
    assert sum(run.counts.values()) == CITY_SIZE
    # The same grades as the engine on the generator's own columns.
    uscc, columns = city.feature_columns()
    expected = grade(population(uscc, columns, run.as_of), run.as_of, settings.config.grading)
    assert run.counts == expected.counts()
    for i in (0, 17, 123, 399):
        code = str(uscc[i])
        out = service.explain(engine, code, "2025-06")
        assert out["grade"] == GRADES[expected.grade[i]]
        assert out["method"] == METHODS[expected.method[i]]
        for k in range(12):
            letter = " ABC"[expected.letters.letters[i, k]].strip() or None
            assert out["indicators"][str(k + 1)]["letter"] == letter
    # Never rewritten: a second run of the month is refused and changes nothing.
    with pytest.raises(service.MonthAlreadyGraded) as e:
        service.compute(engine, settings, "2025-06", today=TODAY, now=2, actor="test")
    assert e.value.code == "grades_already_computed"
    assert count_rows(engine) == CITY_SIZE
    stored = service.get_run(engine, "2025-06")
    assert stored is not None and stored.computed_at == 1
    # The current month is graded as of today.
    current = service.compute(engine, settings, "2025-07", today=TODAY, now=3, actor="test")
    assert current.as_of == TODAY
    assert service.latest_month(engine) == "2025-07"


@pytest.mark.parametrize(
    ("month", "code"),
    [
        ("2025-08", "month_in_future"),
        ("2025-13", "invalid_month"),
        ("25-06", "invalid_month"),
        ("1999-12", "invalid_month"),
    ],
)
def test_bad_months_are_refused_and_nothing_is_stored(
    engine: Engine, settings: Settings, month: str, code: str
) -> None:
    with pytest.raises(InvalidInput) as e:
        service.compute(engine, settings, month, today=TODAY, now=1, actor="test")
    assert e.value.code == code
    assert service.latest_month(engine) is None and count_rows(engine) == 0


def test_explaining_before_any_computation_says_what_to_run(engine: Engine) -> None:
    with pytest.raises(service.GradesNotComputed) as e:
        service.explain(engine, "91330100MA27XK3B1X", None)
    assert e.value.code == "grades_not_computed" and "xinyi grades compute" in e.value.message


def test_the_cli_computes_and_explains(tmp_path: Path, city: synth.City) -> None:
    url = f"sqlite:///{tmp_path / 'xinyi.db'}"
    migrate(url)
    env = {"XINYI_HOME": str(tmp_path / "home"), "XINYI_DATABASE_URL": url}
    from common.db import make_engine

    engine = make_engine(url)
    load_city(engine, city, tmp_path / "city")
    engine.dispose()
    runner = CliRunner()
    early = runner.invoke(main, ["grades", "explain", str(city.feature_columns()[0][0])], env=env)
    assert early.exit_code == 2 and "grades_not_computed" in early.stderr
    done = runner.invoke(main, ["grades", "compute", "--month", "2025-06"], env=env)
    assert done.exit_code == 0, done.output
    lines = dict(line.strip().split("\t") for line in done.output.splitlines() if "\t" in line)
    assert sum(int(v) for v in lines.values()) == CITY_SIZE and set(lines) == set(GRADES)
    again = runner.invoke(main, ["grades", "compute", "--month", "2025-06"], env=env)
    assert again.exit_code == 2 and "grades_already_computed" in again.stderr
    future = runner.invoke(main, ["grades", "compute", "--month", "2999-01"], env=env)
    assert future.exit_code == 2 and "month_in_future" in future.stderr
    code = str(city.feature_columns()[0][5])
    shown = runner.invoke(main, ["grades", "explain", code, "--month", "2025-06"], env=env)
    assert shown.exit_code == 0, shown.output
    assert code in shown.output and "method:" in shown.output and "13 " in shown.output
    bad = runner.invoke(main, ["grades", "explain", "123"], env=env)
    assert bad.exit_code == 2
    assert np.isin(["高级", "一级", "备选"], list(lines)).all()


def test_parallel_reading_gives_the_same_columns(
    engine: Engine, city: synth.City, tmp_path: Path
) -> None:
    load_city(engine, city, tmp_path / "city")
    catalog = Catalog(load_settings(env={}).config)
    one_uscc, one = service.current_columns(engine, catalog, workers=1)
    two_uscc, two = service.current_columns(engine, catalog, workers=2, parallel_from=0)
    assert one_uscc.tolist() == two_uscc.tolist() and set(one) == set(two)
    for fid in one:
        a, b = one[fid], two[fid]
        if a.dtype.kind == "f":
            assert np.array_equal(a, b, equal_nan=True), fid
        else:
            assert a.tolist() == b.tolist(), fid


def test_reading_in_small_chunks_gives_the_same_columns_and_grades(
    engine: Engine,
    settings: Settings,
    city: synth.City,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Chunks of 7 rows (keyset reads, many per import) and of 11 written rows give what
    one chunk gives: no row lost, doubled or misaligned at a chunk's edge (issue 15)."""
    load_city(engine, city, tmp_path / "city")
    catalog = Catalog(load_settings(env={}).config)
    one_uscc, one = service.current_columns(engine, catalog, workers=1)
    monkeypatch.setattr(service, "_PARSE_CHUNK", 7)
    monkeypatch.setattr(service, "_WRITE_CHUNK", 11)
    small_uscc, small = service.current_columns(engine, catalog, workers=1)
    assert one_uscc.tolist() == small_uscc.tolist() and set(one) == set(small)
    for fid in one:
        a, b = one[fid], small[fid]
        if a.dtype.kind == "f":
            assert np.array_equal(a, b, equal_nan=True), fid
        else:
            assert a.tolist() == b.tolist(), fid
    run = service.compute(engine, settings, "2025-06", today=TODAY, now=1, actor="test")
    assert count_rows(engine) == CITY_SIZE
    uscc, columns = city.feature_columns()
    expected = grade(population(uscc, columns, run.as_of), run.as_of, settings.config.grading)
    assert run.counts == expected.counts()
    for i in (0, 6, 7, 10, 11, 12, 21, 22, 398, 399):  # both sides of chunk edges
        out = service.explain(engine, str(uscc[i]), "2025-06")
        assert out["grade"] == GRADES[expected.grade[i]]
        for k in range(12):
            letter = " ABC"[expected.letters.letters[i, k]].strip() or None
            assert out["indicators"][str(k + 1)]["letter"] == letter


def test_month_and_grade_reads_the_newest_month_and_the_grade_together(
    engine: Engine, settings: Settings, city: synth.City, tmp_path: Path
) -> None:
    """The grade API's one query (issue 15): the newest month and the enterprise's
    grade, None for an enterprise not graded; nothing computed raises with the hint."""
    load_city(engine, city, tmp_path / "city")
    code = str(city.feature_columns()[0][5])
    with pytest.raises(service.GradesNotComputed):
        service.month_and_grade(engine, code, None)
    service.compute(engine, settings, "2025-05", today=TODAY, now=1, actor="test")
    service.compute(engine, settings, "2025-06", today=TODAY, now=2, actor="test")
    month, stored = service.month_and_grade(engine, code, None)
    assert month == "2025-06" and stored == service.stored_grade(engine, code, "2025-06")
    month, stored = service.month_and_grade(engine, code, "2025-05")
    assert month == "2025-05" and stored == service.stored_grade(engine, code, "2025-05")
    assert service.month_and_grade(engine, "91330100MA27XK3B1X", None) == ("2025-06", None)
    with pytest.raises(service.GradesNotComputed):
        service.month_and_grade(engine, code, "2025-04")
