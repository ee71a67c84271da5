"""The sign-up, invitation and account pages (zh-CN first, English switch): the forms
carry their own CSRF token, errors never echo the password or the id number, an account
without real name is sent to its account page and can change nothing elsewhere."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from common import uscc as uscc_rules
from tests.registration_data import resident_id, seed_registration
from tests.web.conftest import CSRF, PASSWORD, Person, sign_in

ACME = uscc_rules.complete("91320281MA1XY0003")
ZHANG_ID = resident_id("32028119800101123")
WRONG_ID = resident_id("32028119751231456")


@pytest.fixture
def svc(app: Flask) -> Any:
    found = app.extensions["xinyi"]
    seed_registration(found, {ACME: ("张三", ZHANG_ID)})
    return found


def submit_signup(client: FlaskClient, **kw: str) -> Any:
    page = client.get("/signup").get_data(as_text=True)
    token = CSRF.search(page)
    assert token
    form = {
        "csrf_token": token.group(1),
        "uscc": ACME,
        "login": "acme-web",
        "password": PASSWORD,
        "password2": PASSWORD,
        "legal_representative": "张三",
        "legal_representative_id": ZHANG_ID,
        **kw,
    }
    return client.post("/signup", data=form)


def test_the_sign_in_page_links_to_sign_up_in_both_languages(client: FlaskClient) -> None:
    assert 'href="/signup"' in client.get("/login").get_data(as_text=True)
    zh = client.get("/signup").get_data(as_text=True)
    assert "企业注册" in zh and "法定代表人身份证号" in zh
    en = client.get("/signup?lang=en").get_data(as_text=True)
    assert "Enterprise sign-up" in en and "⟦" not in en and "⟦" not in zh


def test_sign_up_through_the_form(app: Flask, client: FlaskClient, svc: Any) -> None:
    resp = submit_signup(client)
    assert resp.status_code == 201
    body = resp.get_data(as_text=True)
    assert 'data-real-name="yes"' in body and ZHANG_ID not in body
    assert svc.registry.user("acme-web").real_name


def test_a_form_without_its_token_and_refusals_store_nothing(client: FlaskClient, svc: Any) -> None:
    resp = client.post("/signup", data={"uscc": ACME, "login": "x", "password": PASSWORD})
    assert resp.status_code == 400
    resp = submit_signup(client, password2="something else entirely")
    assert resp.status_code == 400 and "两次输入的密码不一致" in resp.get_data(as_text=True)
    resp = submit_signup(client, legal_representative_id="320281198001011230")
    text = resp.get_data(as_text=True)
    assert resp.status_code == 400 and "身份证号格式不正确" in text
    assert "320281198001011230" not in text and PASSWORD not in text
    resp = submit_signup(client, uscc="91320281MA1XY00030")
    assert resp.status_code == 400 and "统一社会信用代码不正确" in resp.get_data(as_text=True)
    assert svc.registry.administrator(ACME) is None
    assert submit_signup(client).status_code == 201
    resp = submit_signup(client, login="acme-two")
    assert resp.status_code == 409 and "该企业已有管理员账号" in resp.get_data(as_text=True)


def test_an_unverified_account_is_sent_to_its_account_page_and_verifies_there(
    app: Flask, client: FlaskClient, svc: Any
) -> None:
    resp = submit_signup(client, legal_representative_id=WRONG_ID)
    assert resp.status_code == 201 and 'data-real-name="no"' in resp.get_data(as_text=True)
    browser = app.test_client()
    resp = sign_in(browser, "acme-web")
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/enterprise/account")
    person = Person(browser, "acme-web", "enterprise")
    resp = person.get("/enterprise/data")
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/enterprise/account")
    page = person.page("/enterprise/account")
    assert 'data-real-name="no"' in page and "还可尝试 4 次" in page
    # A change elsewhere is refused outright.
    resp = person.post("/enterprise/consents/x/approve", {"accept": "yes"})
    assert resp.status_code == 403 and "real_name_required" in resp.get_data(as_text=True)
    resp = person.post(
        "/enterprise/account/real-name",
        {"legal_representative": "张三", "legal_representative_id": ZHANG_ID},
    )
    assert resp.status_code == 302
    page = person.page("/enterprise/account")
    assert 'data-real-name="yes"' in page and "实名认证已通过" in page
    assert person.get("/enterprise/data").status_code == 200


def test_invitation_pages(app: Flask, client: FlaskClient, svc: Any) -> None:
    assert submit_signup(client).status_code == 201
    admin = app.test_client()
    sign_in(admin, "acme-web")
    person = Person(admin, "acme-web", "enterprise")
    resp = person.post("/enterprise/account/invite")
    assert resp.status_code == 200
    link = re.search(r'<code id="invite-link">([^<]+)</code>', resp.get_data(as_text=True))
    assert link is not None
    path = "/invite/" + link.group(1).rsplit("/invite/", 1)[1]
    colleague = app.test_client()
    page = colleague.get(path).get_data(as_text=True)
    assert "加入企业账号" in page
    token = CSRF.search(page)
    assert token
    form = {
        "csrf_token": token.group(1),
        "login": "acme-mate",
        "password": PASSWORD,
        "password2": PASSWORD,
    }
    resp = colleague.post(path, data=form)
    assert resp.status_code == 201
    assert svc.registry.user("acme-mate").uscc == ACME
    resp = colleague.get(path)
    assert resp.status_code == 409 and "该邀请已使用或已过期" in resp.get_data(as_text=True)
    again = CSRF.search(colleague.get("/signup").get_data(as_text=True))
    assert again
    resp = colleague.post(path, data={**form, "csrf_token": again.group(1), "login": "third"})
    assert resp.status_code == 409 and "该邀请已使用或已过期" in resp.get_data(as_text=True)
    assert colleague.get("/invite/not-a-token").status_code == 404
    assert "acme-mate" in person.page("/enterprise/account")


def test_the_operator_page_shows_shares_of_market_entities_not_of_accounts(
    app: Flask, svc: Any, make_person: Any
) -> None:
    others = [uscc_rules.complete(f"91320281MA1XY00{k}0") for k in range(4, 7)]
    seed_registration(svc, {u: ("某人", ZHANG_ID) for u in others})
    # Two accounts of one enterprise are one registered enterprise.
    svc.registry.add_user(login="acme-a", password=PASSWORD, role="enterprise", uscc=ACME)
    svc.registry.add_user(login="acme-b", password=PASSWORD, role="enterprise", uscc=ACME)
    svc.registry.add_user(
        login="other-a", password=PASSWORD, role="enterprise", uscc=others[0], real_name=False
    )
    page = make_person("operator").page("/operator/")
    market = re.search(r'id="market-entities">(\d+)<', page)
    assert market is not None and market.group(1) == "4"
    shares = page.split('id="market-shares"', 1)[1].split("</dl>", 1)[0]
    # registered 2 of 4, real-name 1 of 4, authorizing 0 of 4, each beside its target.
    assert re.findall(r"(\d+\.\d)%", shares) == ["50.0", "25.0", "0.0"]
    assert re.findall(r"目标 (\d+)%", shares) == ["50", "30", "30"]
    assert "授权企业占注册企业比例" not in page
