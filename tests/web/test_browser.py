"""The consoles in a real browser (Debian chromium through Playwright) against a live
gateway: the three stories of issue 7, the in-page proof check, the English switch and
keyboard use. Screenshots go to tests/artifacts/web/ for review."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from tests.web.browser import PASSWORD, Live, shot, sign_in

ENTERPRISE = "91330100716105852F"
OTHER = "9144030071526726XG"


def test_enterprise_approves_then_revokes_and_the_next_bank_request_is_refused(
    live: Live, page: Any
) -> None:
    bank = live.bank("browser_bank", "浙商示范银行")
    live.load_tax({ENTERPRISE: 1234567})
    consent_id = bank.ask(ENTERPRISE)
    sign_in(page, live.base, live.add_user("enterprise", uscc=ENTERPRISE))

    assert page.locator("html").get_attribute("lang") == "zh-CN"
    page.get_by_role("link", name="阅读授权书并决定", exact=True).click()
    letter = page.locator("pre.letter")
    assert "信用信息查询使用授权书" in letter.inner_text()
    assert consent_id in page.url
    shot(page, "enterprise-1-letter")

    page.get_by_label("我已阅读并同意上述授权书的全部内容。").check()
    page.get_by_role("button", name="同意授权").click()
    assert "已同意授权" in page.locator(".notice").inner_text()
    grant = bank.grant(consent_id)
    allowed = bank.verify(grant)
    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["result"] is True  # 1,234,567 >= 100,000, and nothing more

    page.get_by_role("link", name="我的授权", exact=True).click()
    shot(page, "enterprise-2-grants")
    page.get_by_role("link", name="撤销 浙商示范银行", exact=True).click()
    assert "确认后停止的内容" in page.content()
    shot(page, "enterprise-3-confirm-revoke")
    page.get_by_role("button", name="确认撤销").click()
    assert "已撤销" in page.locator(".notice").inner_text()

    refused = bank.verify(grant)
    assert refused.status_code == 403
    assert refused.json()["error"] == "grant_revoked"

    # Every access to my data, and the proof checked by the browser itself.
    page.get_by_role("link", name="数据使用记录", exact=True).click()
    rows = page.locator("#accesses tbody tr")
    assert rows.count() >= 4  # request, approve, the allowed verify, revoke, the refusal
    assert "授权已撤销" in page.locator("#accesses").inner_text()
    first = rows.first
    first.get_by_role("button").click()
    result = first.locator(".verify-result")
    result.and_(page.locator("[data-status]")).wait_for()
    if result.get_attribute("data-status") == "not-yet":  # the checkpoint lags by < 1 s
        page.wait_for_timeout(600)
        first.get_by_role("button").click()
        page.wait_for_function(
            "el => el.dataset.status && el.dataset.status !== 'not-yet'",
            arg=result.element_handle(),
        )
    assert result.get_attribute("data-status") == "ok-signed", result.inner_text()
    assert "已验证" in result.inner_text()
    shot(page, "enterprise-4-accesses-verified")

    page.get_by_role("link", name="我的数据", exact=True).click()
    assert "1,234,567" in page.locator("table").inner_text()
    shot(page, "enterprise-5-my-data")

    page.get_by_role("link", name="数据使用记录", exact=True).click()
    page.get_by_role("link", name="English", exact=True).click()
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.get_by_role("heading", level=1).inner_text() == "Every access to my data"
    shot(page, "enterprise-6-accesses-english")


def test_department_sees_the_access_filters_it_and_exports_it(
    live: Live, page: Any, tmp_path: Path
) -> None:
    bank = live.bank("dept_view_bank", "Dept View Bank")
    other = live.bank("dept_other_bank", "Other Bank")
    ent = live.person(live.add_user("enterprise", uscc=OTHER))
    consent_id = bank.ask(OTHER)
    assert ent.post(f"/v1/consents/{consent_id}/approve").status_code == 200
    bank.verify(bank.grant(consent_id))
    other.verify("not-a-grant")  # a refusal, by another institution

    sign_in(page, live.base, live.add_user("department", department="tax"))
    table = page.locator("#accesses")
    assert "dept_view_bank" in table.inner_text()
    assert "dept_other_bank" in table.inner_text()
    shot(page, "department-1-accesses")

    page.get_by_label("机构", exact=True).select_option("dept_view_bank")
    page.get_by_label("操作", exact=True).select_option("verify")
    page.get_by_role("button", name="筛选", exact=True).click()
    assert "institution=dept_view_bank" in page.url
    assert "dept_other_bank" not in page.locator("#accesses").inner_text()
    assert page.locator("#accesses tbody tr").count() == 1
    shot(page, "department-2-filtered")

    with page.expect_download() as download:
        page.get_by_role("link", name="导出 CSV（当前筛选）", exact=True).click()
    saved = tmp_path / "accesses.csv"
    download.value.save_as(saved)
    rows = list(csv.DictReader(io.StringIO(saved.read_text(encoding="utf-8-sig"))))
    assert [(r["institution"], r["operation"], r["decision"]) for r in rows] == [
        ("dept_view_bank", "verify", "allowed")
    ]
    assert rows[0]["enterprise"] == OTHER

    page.get_by_role("link", name="见证状态", exact=True).click()
    shot(page, "department-3-witness")


def test_operator_suspends_an_institution_by_keyboard_and_it_is_refused(
    live: Live, page: Any
) -> None:
    bank = live.bank("to_suspend", "Suspended Later Bank")
    login = live.add_user("operator")
    page.goto(live.base + "/login")
    shot(page, "operator-0-sign-in")
    # Keyboard only: Tab to the login field, type, Tab, type, Enter.
    for _ in range(8):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "login":
            break
    page.keyboard.type(login)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url("**/operator/")
    shot(page, "operator-1-stats")

    page.get_by_role("link", name="接入机构", exact=True).click()
    page.get_by_role("link", name="暂停接入 Suspended Later Bank", exact=True).focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/suspend")
    assert "确认后停止的内容" in page.content()
    page.get_by_role("button", name="确认暂停接入").focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/operator/institutions")
    row = page.locator("tr", has_text="to_suspend")
    assert "已暂停" in row.inner_text()
    shot(page, "operator-2-suspended")

    r = bank.http.get("/v1/consents")
    assert r.status_code == 403
    assert r.json()["error"] == "institution_suspended"

    page.get_by_role("link", name="签名密钥", exact=True).click()
    shot(page, "operator-3-keys")
