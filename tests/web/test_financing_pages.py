"""The financing pages through the test client: the public supermarket, the enterprise's
apply → letter → approve, the bank console (inbox, the report read under the grant and
logged with the officer's login, the outcome form, products), the operator's month."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from audit import entry as audit_entry
from audit import store as audit_store
from common.db import read_session
from financing.statistics import month_of
from tests.gateway.test_data_api import TAX, load
from tests.gateway.test_financing_api import PRODUCT
from tests.web.conftest import ENTERPRISE, OTHER_ENTERPRISE, PASSWORD, Bank, Person, settle, sign_in


@pytest.fixture
def bank(make_bank: Callable[..., Bank]) -> Bank:
    return make_bank("demo_bank", name="澄江银行")


@pytest.fixture
def product(bank: Bank, client: FlaskClient) -> str:
    resp = bank.post(client, "/v1/products", PRODUCT)
    assert resp.status_code == 201, resp.get_json()
    return str(resp.get_json()["id"])


def staff(app: Flask, institution: str) -> Person:
    """A bank officer signed in on the console (role institution)."""
    login = f"officer-{uuid.uuid4().hex[:6]}"
    app.extensions["xinyi"].registry.add_user(
        login=login, password=PASSWORD, role="institution", institution_id=institution
    )
    client = app.test_client()
    resp = sign_in(client, login)
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/bank/")
    return Person(client, login, "institution")


def applied(person: Person, product: str) -> tuple[str, str]:
    """Apply from the pages: (application id, consent id)."""
    resp = person.post(
        f"/enterprise/products/{product}/apply", {"amount": "500000", "term_months": "12"}
    )
    assert resp.status_code == 302, resp.get_data(as_text=True)
    consent = resp.headers["Location"].rsplit("/", 1)[-1]
    page = person.page("/enterprise/applications")
    found = re.search(r"app_[0-9a-f]{24}", page)
    assert found, page
    return found.group(0), consent


def test_the_public_supermarket_lists_and_filters_without_a_session(
    client: FlaskClient, product: str, bank: Bank
) -> None:
    bank.post(
        client,
        "/v1/products",
        {
            **PRODUCT,
            "name": "大额担保贷",
            "kind": "guarantee",
            "amount_min": 5_000_000,
            "amount_max": 9_000_000,
        },
    )
    anonymous = client.application.test_client()
    page = anonymous.get("/products/").get_data(as_text=True)
    assert "金融产品超市" in page and "税易贷" in page and "大额担保贷" in page
    page = anonymous.get("/products/?amount=6000000").get_data(as_text=True)
    assert "大额担保贷" in page and "税易贷" not in page
    page = anonymous.get("/products/?kind=credit&lang=en").get_data(as_text=True)
    assert "Financial product supermarket" in page and "大额担保贷" not in page
    page = anonymous.get("/products/?amount=lots").get_data(as_text=True)
    assert "税易贷" in page  # a bad filter shows everything, and says so


def test_apply_approve_the_letter_officer_reads_and_decides(
    app: Flask, client: FlaskClient, product: str, make_person: Callable[..., Person]
) -> None:
    load(app, "tax", TAX)
    person = make_person("enterprise", ENTERPRISE)
    assert "税易贷" in person.page("/enterprise/products")
    application, consent = applied(person, product)
    letter = person.page(f"/enterprise/consents/{consent}")
    assert "授权书" in letter and "待企业授权" not in letter
    assert "待企业授权" in person.page("/enterprise/applications")
    resp = person.post(f"/enterprise/consents/{consent}/approve", {"accept": "yes"})
    assert resp.status_code == 302
    assert "已提交" in person.page("/enterprise/applications")

    officer = staff(app, "demo_bank")
    inbox = officer.page("/bank/")
    assert application in inbox and ENTERPRISE in inbox
    detail = officer.page(f"/bank/applications/{application}")
    assert "读取授权报告" in detail and "banded-report" not in detail
    resp = officer.post(f"/bank/applications/{application}/report")
    assert resp.status_code == 200
    shown = resp.get_data(as_text=True)
    assert "banded-report" in shown and "100万–500万" in shown
    index = int(re.search(r"审计日志第 (\d+) 条", shown).group(1))  # type: ignore[union-attr]
    settle(app)
    with read_session(app.extensions["xinyi"].engine) as s:
        found = audit_store.get_entry(s, audit_store.Viewer("operator", ""), index)
    assert found is not None
    entry = audit_entry.view(found[0], found[1])
    assert entry["actor"] == officer.login and entry["institution"] == "demo_bank"
    assert entry["operation"] == "report" and entry["decision"] == "allowed"

    resp = officer.post(
        f"/bank/applications/{application}/outcome",
        {
            "decision": "approved",
            "credit_line": "800000",
            "disbursed": "500000",
            "rate": "3.85",
            "term_months": "12",
            "credit_loan": "yes",
            "first_loan": "yes",
        },
    )
    assert resp.status_code == 302
    assert "审批结果已记录" in officer.page(f"/bank/applications/{application}")
    mine = person.page("/enterprise/applications")
    assert "已获批" in mine and "500,000" in mine

    operator = make_person("operator")
    figures = operator.page(f"/operator/financing?month={month_of(time.time())}")
    assert 'id="fig-approved">1<' in figures and 'id="fig-disbursed">500,000<' in figures
    assert "<svg" in figures


def test_an_officer_of_another_bank_sees_nothing_of_it(
    app: Flask,
    client: FlaskClient,
    product: str,
    make_person: Callable[..., Person],
    make_bank: Callable[..., Bank],
) -> None:
    person = make_person("enterprise", ENTERPRISE)
    application, _ = applied(person, product)
    make_bank("other_bank")
    other = staff(app, "other_bank")
    assert application not in other.page("/bank/")
    assert other.get(f"/bank/applications/{application}").status_code == 404
    resp = other.post(f"/bank/applications/{application}/report")
    assert resp.status_code == 404  # refused before anything is read or logged
    # An enterprise is not admitted to the bank console, an officer not to the API's
    # institution calls (the OAuth client's).
    assert person.get("/bank/").status_code == 403
    assert other.client.get(f"/v1/enterprises/{ENTERPRISE}/report").status_code == 403


def test_the_officer_manages_products(app: Flask, bank: Bank) -> None:
    officer = staff(app, "demo_bank")
    form: dict[str, Any] = {
        "name": "科技贷",
        "kind": "credit",
        "amount_min": "100000",
        "amount_max": "2000000",
        "rate_min": "3.2",
        "rate_max": "4.5",
        "term_months_max": "24",
        "purpose": "working_capital_loan",
        "ops": "report",
        "categories": "tax",
    }
    resp = officer.post("/bank/products", form)
    assert resp.status_code == 302
    page = officer.page("/bank/products")
    assert "产品已发布" in page and "科技贷" in page
    bad = officer.post("/bank/products", {**form, "amount_min": "9000000"})
    assert bad.status_code == 302
    assert "未能保存" in officer.page("/bank/products")
    product = re.search(r"/bank/products/(prd_[0-9a-f]+)/withdraw", page).group(1)  # type: ignore[union-attr]
    officer.post(f"/bank/products/{product}/withdraw")
    assert "科技贷" not in app.test_client().get("/products/").get_data(as_text=True)


def test_a_need_published_on_the_page_is_answered_from_the_console(
    app: Flask, product: str, make_person: Callable[..., Person]
) -> None:
    person = make_person("enterprise", ENTERPRISE)
    resp = person.post(
        "/enterprise/needs", {"amount": "600000", "term_months": "12", "use": "备货"}
    )
    assert resp.status_code == 302
    assert "融资需求已发布" in person.page("/enterprise/applications")
    officer = staff(app, "demo_bank")
    needs = officer.page("/bank/needs")
    assert "备货" in needs and ENTERPRISE in needs
    need = re.search(r"/bank/needs/(ned_[0-9a-f]+)/answer", needs).group(1)  # type: ignore[union-attr]
    resp = officer.post(f"/bank/needs/{need}/answer", {"product": product})
    assert resp.status_code == 302 and "/bank/applications/app_" in resp.headers["Location"]
    assert "待企业授权" in officer.page(resp.headers["Location"])
    mine = person.page("/enterprise/applications")
    assert "待企业授权" in mine and "已回应" in mine
    assert "暂无待回应的融资需求" in officer.page("/bank/needs")


def test_the_console_shows_the_grade_under_the_application_grant(
    app: Flask, bank: Bank, client: FlaskClient, make_person: Callable[..., Person], tmp_path: Any
) -> None:
    from datetime import date

    from gateway import grades as grade_service
    from grading import service as grading
    from records import synth
    from records.catalog import Catalog
    from records.service import import_csv

    svc = app.extensions["xinyi"]
    catalog = Catalog(svc.settings.config)
    city = synth.generate(catalog, 150, 5)
    synth.write(city, tmp_path / "city")
    for department in catalog.departments:
        path = tmp_path / "city" / f"{department}.csv"
        if path.exists():
            import_csv(
                svc.engine, catalog, department, path.read_bytes(), file_name="f.csv", actor="t"
            )
    granted, _ = grade_service.grade_categories(svc.settings.config)
    resp = bank.post(
        client, "/v1/products", {**PRODUCT, "ops": ["report", "grade"], "categories": granted}
    )
    assert resp.status_code == 201, resp.get_json()
    product = resp.get_json()["id"]
    from records import store as records

    uscc = records.enterprises(svc.engine, "market_regulation")[0]
    grading.compute(
        svc.engine, svc.settings, "2025-06", today=date(2025, 7, 15), now=1, actor="test"
    )
    person = make_person("enterprise", uscc)
    application, consent = applied(person, product)
    person.post(f"/enterprise/consents/{consent}/approve", {"accept": "yes"})
    officer = staff(app, "demo_bank")
    shown = officer.post(f"/bank/applications/{application}/report").get_data(as_text=True)
    assert 'id="credit-grade"' in shown, shown
    assert any(word in shown for word in ("高级", "一级", "备选"))
    settle(app)
    with read_session(svc.engine) as s:
        found = audit_store.get_entry(s, audit_store.Viewer("operator", ""), svc.audit.size() - 1)
    assert found is not None
    entry = audit_entry.view(found[0], found[1])
    assert entry["operation"] == "grade" and entry["actor"] == officer.login


# Withdrawing an application; the operator's view of every application ------------------


def applied_anew(person: Person, product: str) -> tuple[str, str]:
    """Apply from the pages: (the NEW application's id, its consent id), however many
    the enterprise filed before in the same second."""
    before = set(re.findall(r"app_[0-9a-f]{24}", person.page("/enterprise/applications")))
    _, consent = applied(person, product)
    after = set(re.findall(r"app_[0-9a-f]{24}", person.page("/enterprise/applications")))
    (new,) = after - before
    return new, consent


def _status_of(page: str, application: str) -> str:
    card = page.split(f'id="a-{application}"', 1)[1].split("</section>", 1)[0]
    found = re.search(r'class="application-status">([^<]+)<', card)
    assert found, card
    return found.group(1)


def test_the_enterprise_withdraws_an_open_application_from_its_page(
    app: Flask, client: FlaskClient, bank: Bank, product: str, make_person: Callable[..., Person]
) -> None:
    person = make_person("enterprise", ENTERPRISE)
    application, consent = applied_anew(person, product)
    action = f"/enterprise/applications/{application}/withdraw"
    page = person.page("/enterprise/applications")
    assert f'action="{action}"' in page and "撤回申请" in page
    # Without the session's CSRF token nothing changes.
    assert person.post(action, csrf=False).status_code == 403
    assert _status_of(person.page("/enterprise/applications"), application) == "待企业授权"
    # Another enterprise cannot withdraw it (it does not see it).
    other = make_person("enterprise", OTHER_ENTERPRISE)
    resp = other.post(action)
    assert resp.status_code == 302
    assert "未能撤回" in other.page("/enterprise/applications")
    assert _status_of(person.page("/enterprise/applications"), application) == "待企业授权"

    resp = person.post(action)
    assert resp.status_code == 302
    page = person.page("/enterprise/applications")
    assert "申请已撤回" in page and _status_of(page, application) == "已撤回"
    assert f'action="{action}"' not in page  # no button once it is closed
    # The consent it opened is untouched: still the enterprise's to decide or revoke.
    assert person.get(f"/enterprise/consents/{consent}").status_code == 200
    # A second withdrawal is refused with a reason; the state stays.
    person.post(action)
    page = person.page("/enterprise/applications")
    assert "未能撤回" in page and _status_of(page, application) == "已撤回"

    # A decided application shows no button and cannot be withdrawn.
    decided, letter = applied_anew(person, product)
    person.post(f"/enterprise/consents/{letter}/approve", {"accept": "yes"})
    resp = bank.post(
        client,
        f"/v1/applications/{decided}/outcome",
        {"decision": "declined", "reason": "other"},
    )
    assert resp.status_code == 200, resp.get_json()
    assert f"/enterprise/applications/{decided}/withdraw" not in person.page(
        "/enterprise/applications"
    )
    person.post(f"/enterprise/applications/{decided}/withdraw")
    assert _status_of(person.page("/enterprise/applications"), decided) == "未获批"


def test_the_operator_sees_every_application_filtered_and_paged(
    app: Flask,
    client: FlaskClient,
    bank: Bank,
    product: str,
    make_bank: Callable[..., Bank],
    make_person: Callable[..., Person],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from gateway import financing

    monkeypatch.setattr(financing, "OPERATOR_PAGE", 2)
    other_bank = make_bank("other_bank", name="其他银行")
    other_product = other_bank.post(client, "/v1/products", {**PRODUCT, "name": "他行贷"})
    assert other_product.status_code == 201
    ent = make_person("enterprise", ENTERPRISE)
    far = make_person("enterprise", OTHER_ENTERPRISE)
    mine = [applied_anew(ent, product)[0] for _ in range(2)]
    theirs, letter = applied_anew(far, other_product.get_json()["id"])
    far.post(f"/enterprise/consents/{letter}/approve", {"accept": "yes"})

    operator = make_person("operator")

    def listed(query: str = "") -> tuple[list[str], str]:
        page = operator.page(f"/operator/applications{query}")
        return re.findall(r'class="code">(app_[0-9a-f]{24})<', page), page

    # Newest first, two a page, the pager keeping the filters.
    first, page = listed()
    assert len(first) == 2 and 'id="next-page"' in page and 'id="prev-page"' not in page
    second, page = listed("?page=2")
    assert len(second) == 1 and 'id="prev-page"' in page and 'id="next-page"' not in page
    assert sorted(first + second) == sorted([*mine, theirs])
    assert listed("?status=submitted")[0] == [theirs]
    assert sorted(listed("?status=awaiting_consent")[0]) == sorted(mine)
    assert listed("?institution=other_bank")[0] == [theirs]
    assert listed(f"?region={OTHER_ENTERPRISE[2:8]}")[0] == [theirs]
    assert listed(f"?month={month_of(time.time())}&institution=other_bank")[0] == [theirs]
    assert listed("?month=2020-01")[0] == []
    both, page = listed("?institution=demo_bank&page=1")
    assert sorted(both) == sorted(mine) and "page=2" not in page
    # A malformed filter is said, and the unfiltered list shown.
    _, page = listed("?region=12ab")
    assert "notice-error" in page and "region" in page
    _, page = listed("?page=0")
    assert "notice-error" in page
    # The operator's alone.
    assert ent.get("/operator/applications").status_code == 403
