"""The financing loop in a real browser (Debian chromium through Playwright) against a
live gateway: an enterprise signs up with its real name, browses and filters the
product supermarket, applies and approves the authorization letter; a bank officer reads
the report under the grant and records the outcome; the enterprise sees it approved;
the operator's month shows the loan, and so does the exported workbook."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import openpyxl
from click.testing import CliRunner

from cli import main
from common import uscc
from financing.statistics import month_of
from tests.registration_data import seed_registration
from tests.web.browser import PASSWORD, Live, shot, sign_in

# An enterprise of its own in Jiangyin (division 320281): the live gateway is shared.
ENTERPRISE = uscc.complete("91320281MA1W8K3P7")
REPRESENTATIVE = "张三"
RESIDENT_ID = "320281198001011239"


def _scene(live: Live) -> Any:
    """The registration record sign-up matches, the tax data the report bands, and a
    bank with one product."""
    seed_registration(live.svc, {ENTERPRISE: (REPRESENTATIVE, RESIDENT_ID)})
    live.load_tax({ENTERPRISE: 2_345_678})
    bank = live.bank("fin_bank", "澄江农商银行")
    for name, low, high in (
        ("澄易贷·税易贷", 100_000, 3_000_000),
        ("大额担保贷", 5_000_000, 9_000_000),
    ):
        r = bank.http.post(
            "/v1/products",
            json={
                "name": name,
                "kind": "credit",
                "amount_min": low,
                "amount_max": high,
                "rate_min": 3.45,
                "rate_max": 4.8,
                "term_months_max": 36,
                "purpose": "working_capital_loan",
                "ops": ["report"],
                "categories": ["tax", "social_security"],
            },
        )
        assert r.status_code == 201, r.text
    return bank


def test_sign_up_apply_approve_decide_and_count(live: Live, page: Any, tmp_path: Path) -> None:
    _scene(live)
    login = "fin_" + ENTERPRISE[-6:].lower()

    # Sign up with the real name.
    page.goto(live.base + "/signup")
    page.get_by_label("统一社会信用代码").fill(ENTERPRISE)
    page.get_by_label("法定代表人姓名").fill(REPRESENTATIVE)
    page.get_by_label("法定代表人身份证号").fill(RESIDENT_ID)
    page.get_by_label("账号").fill(login)
    page.locator("#password").fill(PASSWORD)
    page.locator("#password2").fill(PASSWORD)
    page.get_by_role("button", name="注册").click()
    assert page.locator("#real-name-status").get_attribute("data-real-name") == "yes"
    shot(page, "financing-1-signed-up")

    # Browse and filter the supermarket, apply, read and approve the letter.
    sign_in(page, live.base, login)
    page.get_by_role("link", name="金融产品超市", exact=True).click()
    assert "大额担保贷" in page.locator("#products").inner_text()
    page.locator("#f-amount").fill("500000")
    page.locator("#filter-products").click()
    products = page.locator("#products").inner_text()
    assert "澄易贷·税易贷" in products and "大额担保贷" not in products
    shot(page, "financing-2-supermarket")
    page.locator("#products").get_by_role("link", name="申请").click()
    page.locator("#amount").fill("500000")
    page.locator("#term_months").fill("12")
    page.locator("#apply-submit").click()
    page.wait_for_url("**/enterprise/consents/cst_*")
    assert page.locator("pre.letter").inner_text().strip()  # the letter to accept
    page.locator("#accept").check()
    shot(page, "financing-3-letter")
    page.get_by_role("button", name="同意授权").click()
    page.get_by_role("link", name="我的融资申请", exact=True).click()
    assert "已提交" in page.locator(".application-status").first.inner_text()

    # The officer reads the report under the grant and records the outcome.
    officer = f"officer-{ENTERPRISE[-4:].lower()}"
    live.svc.registry.add_user(
        login=officer, password=PASSWORD, role="institution", institution_id="fin_bank"
    )
    bank_page = page.context.browser.new_context().new_page()
    try:
        sign_in(bank_page, live.base, officer)
        assert bank_page.url.endswith("/bank/")
        bank_page.locator("#inbox").get_by_role("link").first.click()
        bank_page.locator("#read-report").click()
        report = bank_page.locator("#banded-report").inner_text()
        assert "100万–500万" in report
        shot(bank_page, "financing-4-report")
        bank_page.locator("#credit_line").fill("800000")
        bank_page.locator("#disbursed").fill("500000")
        bank_page.locator("#rate").fill("3.85")
        bank_page.locator("#term_months").fill("12")
        bank_page.locator("#credit_loan").check()
        bank_page.locator("#first_loan").check()
        bank_page.locator("#record-outcome").click()
        assert "审批结果已记录" in bank_page.locator(".notice").inner_text()
        shot(bank_page, "financing-5-outcome")
    finally:
        bank_page.context.close()

    # The enterprise sees it approved.
    page.reload()
    assert "已获批" in page.locator(".application-status").first.inner_text()
    assert "500,000" in page.locator("#outcome").first.inner_text()

    # The operator's month shows the loan, and so does the exported workbook.
    operator_page = page.context.browser.new_context().new_page()
    try:
        sign_in(operator_page, live.base, live.add_user("operator"))
        operator_page.get_by_role("link", name="融资统计", exact=True).click()
        approved = int(operator_page.locator("#fig-approved").inner_text().replace(",", ""))
        disbursed = int(operator_page.locator("#fig-disbursed").inner_text().replace(",", ""))
        assert approved >= 1 and disbursed >= 500_000
        shot(operator_page, "financing-6-operator")
        operator_page.get_by_role("link", name="English", exact=True).click()
        assert "Financing in" in operator_page.content()
    finally:
        operator_page.context.close()
    out = tmp_path / "month.xlsx"
    settings = live.settings
    result = CliRunner().invoke(
        main,
        ["stats", "export", "--month", month_of(time.time()), "--out", str(out)],
        env={
            "XINYI_HOME": str(settings.home),
            "XINYI_DATABASE_URL": settings.database_url,
            "XINYI_KEY_PASSPHRASE": "browser-test-passphrase",
        },
    )
    assert result.exit_code == 0, result.output
    summary = {
        r[0]: r[1] for r in openpyxl.load_workbook(out)["汇总 Summary"].iter_rows(values_only=True)
    }
    assert summary["获批笔数 Approved"] == approved
    assert summary["放贷金额（元） Disbursed (CNY)"] == disbursed
    by_region = list(openpyxl.load_workbook(out)["按地区 By region"].iter_rows(values_only=True))
    assert any(row[0] == "320281" for row in by_region[1:])
