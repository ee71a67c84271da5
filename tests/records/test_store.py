"""Department data in the database: snapshots, current values, history, model inputs.
Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from common.errors import InvalidInput
from records import store
from records.catalog import Catalog, InvalidValue
from records.service import ImportRejected, UnknownDepartment, import_csv, single_value
from tests.records.conftest import A, B, C, csv_bytes

TAX = ("uscc", "tax.paid_12m", "tax.revenue_12m", "tax.credit_rating", "tax.arrears")


def load(engine: Engine, catalog: Catalog, department: str, data: bytes) -> store.ImportRecord:
    return import_csv(engine, catalog, department, data, file_name="f.csv", actor="test")


def test_a_clean_file_becomes_snapshot_one(engine: Engine, catalog: Catalog) -> None:
    rec = load(
        engine,
        catalog,
        "tax",
        csv_bytes(TAX, (A, "1500000", "900000", "B", "0")),
    )
    assert (rec.status, rec.version, rec.row_count, rec.reject_count) == ("loaded", 1, 1, 0)
    assert rec.features == TAX[1:]
    assert store.current_values(engine, A, ["tax.paid_12m", "tax.credit_rating"]) == {
        "tax.paid_12m": 1500000,
        "tax.credit_rating": "B",
    }
    assert store.current_values(engine, B, ["tax.paid_12m"]) == {}
    assert store.current_values(engine, A, ["utilities.power_kwh_12m"]) == {}


def test_a_reimport_is_a_new_snapshot_and_the_newest_value_wins(
    engine: Engine, catalog: Catalog
) -> None:
    load(
        engine,
        catalog,
        "tax",
        csv_bytes(TAX, (A, "100", "1000", "A", "0"), (B, "200", "2000", "B", "0")),
    )
    # v2 covers only A, and only two columns.
    second = load(
        engine, catalog, "tax", csv_bytes(("uscc", "tax.paid_12m", "tax.arrears"), (A, "150", "5"))
    )
    assert second.version == 2
    wanted = ["tax.paid_12m", "tax.revenue_12m", "tax.arrears"]
    assert store.current_values(engine, A, wanted) == {
        "tax.paid_12m": 150,
        "tax.revenue_12m": 1000,
        "tax.arrears": 5,
    }
    assert store.current_values(engine, B, wanted) == {
        "tax.paid_12m": 200,
        "tax.revenue_12m": 2000,
        "tax.arrears": 0,
    }
    # The first snapshot is still there, untouched.
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(store.record_rows.c.import_id, store.record_rows.c.values_json)
            .where(store.record_rows.c.uscc == A)
            .order_by(store.record_rows.c.import_id)
        ).all()
    assert [json.loads(v) for _, v in rows] == [[100, 1000, "A", 0], [150, 5]]


def test_departments_version_their_snapshots_separately(engine: Engine, catalog: Catalog) -> None:
    t1 = load(engine, catalog, "tax", csv_bytes(TAX, (A, "1", "1", "A", "0")))
    u1 = load(
        engine, catalog, "utilities", csv_bytes(("uscc", "utilities.late_payments_12m"), (A, "2"))
    )
    t2 = load(engine, catalog, "tax", csv_bytes(TAX, (A, "2", "2", "A", "0")))
    assert (t1.version, u1.version, t2.version) == (1, 1, 2)
    got = store.current_values(engine, A, ["tax.paid_12m", "utilities.late_payments_12m"])
    assert got == {"tax.paid_12m": 2, "utilities.late_payments_12m": 2}


def test_a_refused_file_loads_nothing_and_is_in_the_history(
    engine: Engine, catalog: Catalog
) -> None:
    load(engine, catalog, "tax", csv_bytes(TAX, (A, "100", "1000", "A", "0")))
    bad = csv_bytes(
        TAX, (A, "999", "1", "A", "0"), (B, "-1", "1", "A", "0"), (C, "1", "x", "A", "0")
    )
    with pytest.raises(ImportRejected) as e:
        load(engine, catalog, "tax", bad)
    refused = e.value
    assert refused.code == "import_rejected"
    assert [r["line"] for r in refused.details["rejects"]] == [3, 4]
    # Nothing from the bad file: A keeps its earlier value, B and C have none.
    assert store.current_values(engine, A, ["tax.paid_12m"]) == {"tax.paid_12m": 100}
    assert store.current_values(engine, B, ["tax.paid_12m"]) == {}
    history = store.import_history(engine, "tax")
    assert [(h.status, h.version, h.reject_count, h.bad_rows) for h in history] == [
        ("rejected", None, 2, 2),
        ("loaded", 1, 0, 0),
    ]
    stored = store.import_rejects(engine, history[0].id)
    assert [(r.line, r.column, r.code) for r in stored] == [
        (3, "tax.paid_12m", "negative_amount"),
        (4, "tax.revenue_12m", "wrong_type"),
    ]
    # The next good import is v2: refused attempts take no version number.
    assert load(engine, catalog, "tax", csv_bytes(TAX, (A, "1", "1", "A", "0"))).version == 2


def test_an_unknown_department_is_refused_before_reading(engine: Engine, catalog: Catalog) -> None:
    with pytest.raises(UnknownDepartment):
        load(engine, catalog, "customs", csv_bytes(TAX, (A, "1", "1", "A", "0")))
    assert store.import_history(engine, "customs") == []


def test_feature_matrix_encodes_and_marks_missing_values(engine: Engine, catalog: Catalog) -> None:
    load(
        engine, catalog, "tax", csv_bytes(TAX, (A, "1000", "1", "D", "0"), (B, "0", "1", "A", "5"))
    )
    load(
        engine,
        catalog,
        "market_regulation",
        csv_bytes(
            (
                "uscc",
                "registration.industry",
                "registration.established",
                "admin_penalty.dishonest",
            ),
            (A, "C", "2015-06-30", "true"),
            (C, "F", "2020-06-30", "false"),
        ),
    )
    columns = [
        "log1p(tax.paid_12m)",
        "tax.credit_rating",
        "registration.industry=C",
        "registration.established",
        "admin_penalty.dishonest",
    ]
    present, x = store.feature_matrix(engine, catalog, [C, A, B], columns, as_of=date(2025, 6, 30))
    assert present.tolist() == [
        [False, False, True, True, True],
        [True, True, True, True, True],
        [True, True, False, False, False],
    ]
    assert x[1, 0] == pytest.approx(np.log1p(1000))
    assert x[1, 1:3].tolist() == [4.0, 1.0]
    assert x[1, 3] == pytest.approx(10.0, abs=0.01) and x[0, 3] == pytest.approx(5.0, abs=0.01)
    assert x[1, 4] == 1.0 and x[0, 4] == 0.0
    assert np.isnan(x[~present]).all()


def test_feature_matrix_for_many_enterprises_scans_once(engine: Engine, catalog: Catalog) -> None:
    from common import uscc

    codes = [uscc.complete(f"9133010{i:010d}") for i in range(12_000)]
    rows = [(code, str(i), str(i), "A", "0") for i, code in enumerate(codes)]
    load(engine, catalog, "tax", csv_bytes(TAX, *rows))
    present, x = store.feature_matrix(engine, catalog, codes[::-1], ["tax.paid_12m"])
    assert present.all()
    assert x[:, 0].tolist() == [float(i) for i in range(12_000)][::-1]
    assert store.enterprises(engine, "tax")[:2] == sorted(codes)[:2]


def test_feature_matrix_refuses_repeated_enterprises(engine: Engine, catalog: Catalog) -> None:
    with pytest.raises(InvalidInput):
        store.feature_matrix(engine, catalog, [A, A], ["tax.paid_12m"])


def test_text_with_quotes_and_backslashes_round_trips(engine: Engine, catalog: Catalog) -> None:
    name = 'a\\b "c" \\n 杭州, 分公司'
    quoted = '"' + name.replace('"', '""') + '"'
    load(engine, catalog, "market_regulation",
         csv_bytes(("uscc", "registration.name"), (A, quoted)))  # fmt: skip
    assert store.current_values(engine, A, ["registration.name"]) == {"registration.name": name}


def test_a_single_corrected_value_is_checked_like_an_import_cell(catalog: Catalog) -> None:
    checked = single_value(catalog, A, "tax.paid_12m", 1234567.5)
    assert checked.ok and checked.department == "tax"
    assert checked.features == ("tax.paid_12m",) and checked.rows == [(A, "[1234567.5]")]
    for bad in (-1, "12", 1.234, True):
        with pytest.raises(InvalidValue) as e:
            single_value(catalog, A, "tax.paid_12m", bad)
        assert e.value.details["field"] == "value"
