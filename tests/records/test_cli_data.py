"""`xinyi data`: synth, import (exit 0 only when loaded), history."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from common.db import migrate

TAX = "uscc,tax.paid_12m,tax.revenue_12m,tax.credit_rating,tax.arrears\n"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    url = f"sqlite:///{tmp_path / 'xinyi.db'}"
    migrate(url)
    return {"XINYI_HOME": str(tmp_path / "home"), "XINYI_DATABASE_URL": url}


def test_synth_then_import_every_department(tmp_path: Path, env: dict[str, str]) -> None:
    runner = CliRunner()
    city = tmp_path / "city"
    made = runner.invoke(
        main, ["data", "synth", "--enterprises", "150", "--seed", "3", "--out", str(city)], env=env
    )
    assert made.exit_code == 0, made.output
    assert "bank_loans.csv" in made.output and (city / "city.json").exists()
    for department in (
        "market_regulation",
        "tax",
        "social_security",
        "housing_fund",
        "utilities",
        "court",
    ):
        done = runner.invoke(
            main, ["data", "import", department, str(city / f"{department}.csv")], env=env
        )
        assert done.exit_code == 0, done.output
        assert "as snapshot v1" in done.output
    again = runner.invoke(main, ["data", "import", "tax", str(city / "tax.csv")], env=env)
    assert again.exit_code == 0 and "as snapshot v2" in again.output
    history = runner.invoke(main, ["data", "history", "tax"], env=env)
    assert history.exit_code == 0
    assert [line.split()[1:3] for line in history.output.splitlines()] == [
        ["v2", "loaded"],
        ["v1", "loaded"],
    ]


def test_a_bad_file_exits_1_lists_every_problem_and_writes_the_rejects(
    tmp_path: Path, env: dict[str, str]
) -> None:
    bad = tmp_path / "tax.csv"
    bad.write_text(
        TAX
        + "91330100716105852F,100,1000,A,0\n"
        + "91330100716105852G,100,1000,A,0\n"  # check digit
        + "9144030071526726XG,-5,1000,A,0\n"  # negative amount
        + "9144030071526726XG,5,1000,Z,0\n",  # duplicate, unknown rating
        encoding="utf-8",
    )
    runner = CliRunner()
    done = runner.invoke(main, ["data", "import", "tax", str(bad)], env=env)
    assert done.exit_code == 1
    assert "nothing was loaded" in done.stderr
    assert "line 3, uscc: invalid_uscc" in done.stderr
    assert "line 4, tax.paid_12m: negative_amount" in done.stderr
    assert "98765" not in done.stderr  # values are never echoed
    rejects = list(csv.reader((tmp_path / "tax.csv.rejects.csv").open(encoding="utf-8")))
    assert [r[:3] for r in rejects] == [
        ["line", "column", "code"],
        ["3", "uscc", "invalid_uscc"],
        ["4", "tax.paid_12m", "negative_amount"],
        ["5", "tax.credit_rating", "unknown_value"],
        ["5", "uscc", "duplicate_uscc"],
    ]
    elsewhere = tmp_path / "out" / "r.csv"
    elsewhere.parent.mkdir()
    done = runner.invoke(
        main, ["data", "import", "tax", str(bad), "--rejects", str(elsewhere)], env=env
    )
    assert done.exit_code == 1 and len(elsewhere.read_text().splitlines()) == 5
    history = runner.invoke(main, ["data", "history", "tax"], env=env)
    assert history.output.count("rejected") == 2 and "loaded" not in history.output


def test_unknown_department_and_missing_schema_exit_2(tmp_path: Path, env: dict[str, str]) -> None:
    file = tmp_path / "x.csv"
    file.write_text(TAX + "91330100716105852F,1,1,A,0\n", encoding="utf-8")
    runner = CliRunner()
    done = runner.invoke(main, ["data", "import", "customs", str(file)], env=env)
    assert done.exit_code == 2 and "unknown_department" in done.stderr
    fresh = {**env, "XINYI_DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}"}
    done = runner.invoke(main, ["data", "import", "tax", str(file)], env=fresh)
    assert done.exit_code == 2 and "xinyi init" in done.stderr
