"""An objection and a credit repair in a real browser (Debian chromium through
Playwright) against a live gateway: the enterprise files each from its pages, the owning
department decides from its console, the enterprise sees the result."""

from __future__ import annotations

from datetime import date
from typing import Any

from common import uscc
from common.workdays import Notice, WorkCalendar
from records.catalog import Catalog
from records.service import import_csv
from tests.web.browser import Live, shot, sign_in

# An enterprise of its own: the live gateway is shared by the browser tests.
ENTERPRISE = uscc.complete("91330106MA2H0YQ57")
REPAIRING = uscc.complete("91440300MA5FQ1C91")


def test_enterprise_objects_and_the_department_corrects(live: Live, page: Any) -> None:
    # Filing "now" must never meet an unknown year, whatever day the test runs.
    year = date.today().year
    live.svc.calendar = WorkCalendar({year: Notice(), year + 1: Notice()})
    live.load_tax({ENTERPRISE: 1234567})
    sign_in(page, live.base, live.add_user("enterprise", uscc=ENTERPRISE))

    page.get_by_role("link", name="我的数据", exact=True).click()
    row = page.locator("tr", has=page.locator("span.code", has_text="tax.paid_12m"))
    row.get_by_role("link", name="提出异议").click()
    assert page.get_by_label("数据项").input_value() == "tax.paid_12m"
    page.get_by_label("异议理由").fill("本年度实际纳税额高于此数，附完税证明。")
    shot(page, "objection-1-file")
    page.get_by_role("button", name="提交异议").click()
    assert "异议已提交" in page.locator(".notice").inner_text()
    assert "处理中" in page.locator("table").inner_text()
    shot(page, "objection-2-filed")

    tax_page = page.context.browser.new_context().new_page()
    try:
        sign_in(tax_page, live.base, live.add_user("department", department="tax"))
        tax_page.get_by_role("link", name="异议处理", exact=True).click()
        objection = tax_page.locator("tr", has_text=ENTERPRISE)
        assert "本年度实际纳税额高于此数" in objection.inner_text()
        objection.get_by_label("结果").select_option("corrected")
        objection.get_by_label("更正后的值（仅更正时填写）").fill("2345678")
        objection.get_by_label("原因").fill("已核对完税证明")
        shot(tax_page, "objection-3-department")
        objection.get_by_role("button", name="提交处理结果").click()
        assert "已更正" in tax_page.locator(".notice").inner_text()
        assert "没有待处理的异议" in tax_page.content()
    finally:
        tax_page.context.close()

    page.get_by_role("link", name="我的异议", exact=True).click()
    mine = page.locator("table").inner_text()
    assert "已更正" in mine and "已核对完税证明" in mine
    page.get_by_role("link", name="我的数据", exact=True).click()
    assert "2,345,678" in page.locator("table").inner_text()
    page.get_by_role("link", name="English", exact=True).click()
    assert "Object" in page.locator("table").inner_text()
    shot(page, "objection-4-corrected")


def test_enterprise_applies_for_repair_and_the_department_repairs(live: Live, page: Any) -> None:
    year = date.today().year
    live.svc.calendar = WorkCalendar({year: Notice(), year + 1: Notice()})
    import_csv(
        live.svc.engine,
        Catalog(live.settings.config),
        "market_regulation",
        f"uscc,admin_penalty.dishonest\n{REPAIRING},true\n".encode(),
        file_name="mr.csv",
        actor="test",
    )
    sign_in(page, live.base, live.add_user("enterprise", uscc=REPAIRING))
    page.get_by_role("link", name="信用修复", exact=True).click()
    assert "信用修复提醒" in page.locator(".notice").first.inner_text()
    page.get_by_label("记录").select_option("admin_penalty.dishonest")
    page.get_by_label("申请理由").fill("已全部履行法定义务")
    page.get_by_role("button", name="提交修复申请").click()
    assert "修复申请已提交" in page.locator(".notice").inner_text()

    mr_page = page.context.browser.new_context().new_page()
    try:
        sign_in(mr_page, live.base, live.add_user("department", department="market_regulation"))
        mr_page.get_by_role("link", name="信用修复申请", exact=True).click()
        row = mr_page.locator("tr", has_text=REPAIRING)
        row.get_by_label("结果").select_option("repaired")
        row.get_by_label("原因").fill("已核实")
        row.get_by_role("button", name="提交处理结果").click()
        assert "已修复" in mr_page.locator(".notice").inner_text()
    finally:
        mr_page.context.close()

    page.reload()
    assert "已修复" in page.locator("table").inner_text()
    page.get_by_role("link", name="我的数据", exact=True).click()
    assert "已修复" in page.locator("table").inner_text()
    shot(page, "repair-1-repaired")
