"""Objection pages: the enterprise files from its data page, the owning department
decides from its console (a correction becomes the value the enterprise sees), and the
operator sees overdue ones first, flagged."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from datetime import date

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from casework import objections as core
from casework import store as objection_store
from common.db import read_session, write_session
from common.settings import Settings
from common.workdays import WorkCalendar
from consent.store import webhook_outbox
from gateway import create_app
from records.catalog import Catalog
from records.service import import_csv
from tests.web.conftest import ENTERPRISE, OTHER_ENTERPRISE, Bank, Person, request_consent

TAX_CSV = (
    f"uscc,tax.paid_12m,tax.credit_rating\n{ENTERPRISE},1234567,A\n{OTHER_ENTERPRISE},7654321,B\n"
).encode()


@pytest.fixture
def app(database_url: str, make_settings: Callable[..., Settings]) -> Iterator[Flask]:
    """The gateway with this year's and next year's calendar known (next year as plain
    weekends until its notice is configured), so filings "now" never meet an unknown
    year whatever day the tests run."""
    year = date.today().year
    settings = make_settings(
        database_url=database_url, calendar={"notices": {year: {}, year + 1: {}}}
    )
    app = create_app(settings, background=False)
    app.config["TESTING"] = True
    yield app
    app.extensions["xinyi"].stop()
    app.extensions["xinyi"].engine.dispose()


def svc_calendar(app: Flask) -> WorkCalendar:
    return WorkCalendar.from_config(app.extensions["xinyi"].settings.config.calendar)


def _load(app: Flask) -> None:
    svc = app.extensions["xinyi"]
    import_csv(
        svc.engine, Catalog(svc.settings.config), "tax", TAX_CSV, file_name="t.csv", actor="test"
    )


def _objection_id(page: str) -> str:
    found = re.search(r'<tr id="(obj_[0-9a-f]+)"', page)
    assert found, page
    return found.group(1)


def test_enterprise_files_and_the_department_corrects(
    app: Flask, make_person: Callable[..., Person]
) -> None:
    _load(app)
    ent = make_person("enterprise")
    data = ent.page("/enterprise/data")
    assert "/enterprise/objections/new?feature=tax.paid_12m" in data
    form = ent.page("/enterprise/objections/new?feature=tax.paid_12m")
    assert 'value="tax.paid_12m" selected' in form and "2 个工作日" in form
    resp = ent.post(
        "/enterprise/objections", {"feature": "tax.paid_12m", "claim": "我们实际缴纳了更多"}
    )
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/enterprise/objections")
    mine = ent.page("/enterprise/objections")
    assert "异议已提交" in mine and "处理中" in mine and "我们实际缴纳了更多" in mine
    assert "异议处理中" in ent.page("/enterprise/data")
    # A second one about the same feature is refused on the form, saying why.
    again = ent.post("/enterprise/objections", {"feature": "tax.paid_12m", "claim": "again"})
    assert again.status_code == 409 and "already open" in again.get_data(as_text=True)
    # Without the CSRF token nothing is filed.
    assert (
        ent.post(
            "/enterprise/objections", {"feature": "tax.credit_rating", "claim": "x"}, csrf=False
        ).status_code
        == 403
    )

    other = make_person("department", department="social_security")
    assert "/resolve" not in other.page("/department/objections")
    tax = make_person("department", department="tax")
    console = tax.page("/department/objections")
    oid = _objection_id(console)
    assert ENTERPRISE in console and "我们实际缴纳了更多" in console
    # Another department cannot decide it, even by posting the form.
    refused = other.post(
        f"/department/objections/{oid}/resolve", {"decision": "rejected", "reason": "x"}
    )
    assert refused.status_code == 403
    # A bad value is refused with its reason, and nothing changes.
    bad = tax.post(
        f"/department/objections/{oid}/resolve",
        {"decision": "corrected", "value": "-3", "reason": "x"},
    )
    assert bad.status_code == 302
    shown = tax.page("/department/objections")
    assert "amounts cannot be negative" in shown and f'<tr id="{oid}">' in shown
    ok = tax.post(
        f"/department/objections/{oid}/resolve",
        {"decision": "corrected", "value": "2345678", "reason": "已核实"},
    )
    assert ok.status_code == 302
    after = tax.page("/department/objections")
    assert "已更正" in after and "没有待处理的异议" in after
    assert "2,345,678" in ent.page("/enterprise/data")
    mine = ent.page("/enterprise/objections?lang=en")
    assert "Corrected" in mine and "已核实" in mine
    assert f"objection:{oid}" in tax.page("/department/imports")


def test_operator_sees_overdue_open_objections_first(
    app: Flask, make_person: Callable[..., Person]
) -> None:
    svc = app.extensions["xinyi"]
    cal = svc_calendar(app)
    with write_session(svc.engine) as s:
        for oid, feature, now in (
            ("obj_recent", "tax.credit_rating", int(time.time())),  # due in 2 working days
            ("obj_old", "tax.paid_12m", 1759197600),  # due 2025-10-10
        ):
            objection_store.insert(
                s,
                core.file(
                    id=oid,
                    enterprise=ENTERPRISE,
                    feature=feature,
                    department="tax",
                    claim="wrong",
                    filed_by="enterprise:x",
                    now=now,
                    calendar=cal,
                    working_days=2,
                    max_claim_chars=100,
                ),
            )
    page = make_person("operator").page("/operator/objections")
    assert page.index("obj_old") < page.index("obj_recent")
    assert re.search(r'<tr id="obj_old" class="overdue">', page)
    assert "已逾期" in page and "1 件异议已超过处理期限仍未处理" in page


def test_enterprise_is_reminded_applies_for_repair_and_the_department_repairs(
    app: Flask,
    make_person: Callable[..., Person],
    make_bank: Callable[..., Bank],
    client: FlaskClient,
) -> None:
    svc = app.extensions["xinyi"]
    import_csv(
        svc.engine,
        Catalog(svc.settings.config),
        "market_regulation",
        f"uscc,admin_penalty.dishonest,admin_penalty.penalties_36m\n{ENTERPRISE},true,0\n".encode(),
        file_name="mr.csv",
        actor="test",
    )
    ent = make_person("enterprise")
    holder, other = make_bank("holder_bank"), make_bank("other_bank")
    consent = request_consent(holder, client)
    assert ent.post(f"/enterprise/consents/{consent}/approve", {"accept": "yes"}).status_code == 302
    request_consent(other, client)  # pending: no active grant

    page = ent.page("/enterprise/repairs")
    assert page.count("信用修复提醒") == 1 and "是否列入严重失信主体名单" in page
    resp = ent.post(
        "/enterprise/repairs", {"record": "admin_penalty.dishonest", "reason": "已履行"}
    )
    assert resp.status_code == 302
    page = ent.page("/enterprise/repairs")
    assert "修复申请已提交" in page and "信用修复提醒" not in page and "处理中" in page
    # Not repairable: refused with its reason, nothing filed.
    ent.post("/enterprise/repairs", {"record": "tax.paid_12m", "reason": "x"})
    assert "record: one of" in ent.page("/enterprise/repairs")

    tax = make_person("department", department="tax")
    console = tax.page("/department/repairs")
    assert "没有待处理的修复申请" in console
    mr = make_person("department", department="market_regulation")
    rid = re.search(r'<tr id="(rep_[0-9a-f]+)"', mr.page("/department/repairs"))
    assert rid
    path = f"/department/repairs/{rid.group(1)}/resolve"
    assert tax.post(path, {"decision": "repaired", "reason": "x"}).status_code == 403
    assert mr.post(path, {"decision": "repaired", "reason": "已核实履行"}).status_code == 302
    assert "已修复" in mr.page("/department/repairs")
    assert "已修复" in ent.page("/enterprise/repairs")
    assert "已修复" in ent.page("/enterprise/data")

    with read_session(svc.engine) as s:
        rows = s.execute(sa.select(webhook_outbox.c.institution_id, webhook_outbox.c.payload)).all()
    repaired = [(i, json.loads(p)) for i, p in rows if json.loads(p)["type"] == "credit.repaired"]
    assert [i for i, _ in repaired] == ["holder_bank"]
    assert repaired[0][1]["record"] == "admin_penalty.dishonest"
    assert repaired[0][1]["enterprise"] == ENTERPRISE
    overseen = make_person("operator").page("/operator/objections")
    assert rid.group(1) in overseen and "已修复" in overseen


def test_an_attachment_filed_on_the_form_is_downloaded_by_the_department(
    app: Flask, make_person: Callable[..., Person]
) -> None:
    import io

    _load(app)
    ent = make_person("enterprise")
    assert 'enctype="multipart/form-data"' in ent.page("/enterprise/objections/new")
    pdf = b"%PDF-1.4\n%%EOF\n"
    bad = ent.post(
        "/enterprise/objections",
        {
            "feature": "tax.paid_12m",
            "claim": "见附件",
            "attachment": (io.BytesIO(b"<svg onload=alert(1)>"), "a.png"),  # type: ignore[dict-item]
        },
    )
    assert bad.status_code == 400 and "attachment" in bad.get_data(as_text=True)
    resp = ent.post(
        "/enterprise/objections",
        {
            "feature": "tax.paid_12m",
            "claim": "见附件",
            "attachment": (io.BytesIO(pdf), "完税证明.pdf"),  # type: ignore[dict-item]
        },
    )
    assert resp.status_code == 302
    mine = ent.page("/enterprise/objections")
    oid = _objection_id(mine)
    assert "完税证明.pdf" in mine
    got = ent.client.get(f"/enterprise/objections/{oid}/attachment")
    assert got.status_code == 200 and got.data == pdf
    tax = make_person("department", department="tax")
    assert f"/department/objections/{oid}/attachment" in tax.page("/department/objections")
    got = tax.client.get(f"/department/objections/{oid}/attachment")
    assert got.status_code == 200 and got.data == pdf
    other = make_person("department", department="social_security")
    assert other.client.get(f"/department/objections/{oid}/attachment").status_code == 403
