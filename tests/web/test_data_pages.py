"""Pages over department data: the enterprise's own values (and only its own), the
department's import history with every rejected row's line and reason, and the
report/verify answers staying values-free for the bank."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable

import pytest
from flask import Flask

from records.catalog import Catalog
from records.service import ImportRejected, import_csv
from tests.web.conftest import ENTERPRISE, OTHER_ENTERPRISE, Person

TAX_CSV = (
    f"uscc,tax.paid_12m,tax.credit_rating\n{ENTERPRISE},1234567,A\n{OTHER_ENTERPRISE},7654321,B\n"
).encode()
BAD_CSV = (f"uscc,tax.paid_12m,tax.credit_rating\n{ENTERPRISE},-5,A\nnot-a-uscc,100,B\n").encode()


def _load(app: Flask, data: bytes, name: str) -> None:
    svc = app.extensions["xinyi"]
    import_csv(svc.engine, Catalog(svc.settings.config), "tax", data, file_name=name, actor="test")


def test_enterprise_sees_and_downloads_its_own_values_only(
    app: Flask, make_person: Callable[..., Person]
) -> None:
    _load(app, TAX_CSV, "tax-2025.csv")
    ent = make_person("enterprise")
    page = ent.page("/enterprise/data")
    assert "1,234,567" in page and "7,654,321" not in page
    assert "纳税额近12个月" in page and "非公开" in page
    doc = json.loads(ent.get("/enterprise/data.json").get_data(as_text=True))
    assert doc["values"]["tax.paid_12m"] == 1234567
    assert doc["values"]["tax.credit_rating"] == "A"
    rows = list(
        csv.DictReader(io.StringIO(ent.get("/enterprise/data.csv").get_data(as_text=True)[1:]))
    )
    assert {r["feature"]: r["value"] for r in rows} == {
        "tax.paid_12m": "1234567",
        "tax.credit_rating": "A",
    }
    assert {r["uscc"] for r in rows} == {ENTERPRISE}


def test_department_import_history_lists_rejected_rows_with_line_and_reason(
    app: Flask, make_person: Callable[..., Person]
) -> None:
    _load(app, TAX_CSV, "tax-2025.csv")
    with pytest.raises(ImportRejected):
        _load(app, BAD_CSV, "tax-broken.csv")
    tax = make_person("department", department="tax")
    page = tax.page("/department/imports")
    assert "tax-2025.csv" in page and "tax-broken.csv" in page
    assert "已导入" in page and "未导入" in page
    rejects = page.split("tax-broken.csv")[1]
    assert '<td class="num">2</td>' in rejects and '<td class="num">3</td>' in rejects
    # Another department sees none of it.
    court = make_person("department", department="court")
    assert "tax-2025.csv" not in court.page("/department/imports")


def test_operator_statistics_count_enterprises_with_data(
    app: Flask, make_person: Callable[..., Person]
) -> None:
    _load(app, TAX_CSV, "tax-2025.csv")
    page = make_person("operator").page("/operator/")
    figures = page.split('class="figures"')[1].split("</dl>")[0]
    assert "<dd>2</dd>" in figures  # two enterprises with data held
    assert "1234567" not in page  # the operator never sees a value
