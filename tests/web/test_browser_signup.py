"""Sign-up with real name in a real browser (Debian chromium through Playwright) against
a live gateway: from the sign-in page to the sign-up form, verified against the
market-regulation record, signed in, the account page in both languages; and an
enterprise that mistyped its id verifies later on its account page."""

from __future__ import annotations

from typing import Any

from common import uscc
from tests.registration_data import resident_id, seed_registration
from tests.web.browser import PASSWORD, Live, shot, sign_in

# Enterprises of their own: the live gateway is shared by the browser tests.
ACME = uscc.complete("91320281MA1XY0201")
BETA = uscc.complete("91320281MA1XY0202")
ZHANG_ID = resident_id("32028119800101123")
LI_ID = resident_id("32028119751231456")


def _fill_signup(page: Any, code: str, login: str, name: str, raw_id: str) -> None:
    page.get_by_label("统一社会信用代码").fill(code)
    page.get_by_label("法定代表人姓名").fill(name)
    page.get_by_label("法定代表人身份证号").fill(raw_id)
    page.get_by_label("账号", exact=True).fill(login)
    page.get_by_label("密码", exact=True).fill(PASSWORD)
    page.get_by_label("再次输入密码").fill(PASSWORD)


def test_an_enterprise_signs_up_with_its_real_name(live: Live, page: Any) -> None:
    seed_registration(live.svc, {ACME: ("张三", ZHANG_ID), BETA: ("李四", LI_ID)})
    page.goto(live.base + "/login")
    page.get_by_role("link", name="还没有账号？企业注册").click()
    assert page.locator("h1").inner_text() == "企业注册"
    _fill_signup(page, ACME, "acme-browser", "张三", ZHANG_ID.lower())
    shot(page, "signup-1-form")
    page.get_by_role("button", name="注册").click()
    assert "实名认证已通过" in page.locator("#real-name-status").inner_text()
    assert ZHANG_ID not in page.content()
    shot(page, "signup-2-done")

    sign_in(page, live.base, "acme-browser")
    page.get_by_role("link", name="账号与实名", exact=True).click()
    assert page.locator("#real-name-status").inner_text() == "已实名"
    assert page.get_by_role("button", name="生成邀请链接").is_visible()
    page.get_by_role("link", name="English", exact=True).click()
    assert page.locator("#real-name-status").inner_text() == "Verified"
    shot(page, "signup-3-account-en")
    user = live.svc.registry.user("acme-browser")
    assert user.uscc == ACME and user.real_name


def test_a_mistyped_id_signs_up_without_real_name_and_verifies_later(live: Live, page: Any) -> None:
    seed_registration(live.svc, {BETA: ("李四", LI_ID)})
    page.goto(live.base + "/signup")
    _fill_signup(page, BETA, "beta-browser", "李四", ZHANG_ID)  # a valid id, not his
    page.get_by_role("button", name="注册").click()
    assert "实名认证未通过" in page.locator("#real-name-status").inner_text()

    sign_in(page, live.base, "beta-browser")
    assert page.url.endswith("/enterprise/account")
    assert page.locator("#real-name-status").inner_text() == "未实名"
    shot(page, "signup-4-unverified")
    page.get_by_label("法定代表人姓名").fill("李四")
    page.get_by_label("法定代表人身份证号").fill(LI_ID)
    page.get_by_role("button", name="重新认证").click()
    assert "实名认证已通过" in page.locator(".notice").first.inner_text()
    assert page.locator("#real-name-status").inner_text() == "已实名"
    assert live.svc.registry.user("beta-browser").real_name
