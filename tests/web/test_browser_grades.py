"""The enterprise's credit grade page in a real browser (Debian chromium through
Playwright) against a live gateway: before any computation it says so; after a month is
computed it shows the grade, each indicator's letter and why, how to raise it, and the
whitelist choice (kept with its time); the English switch translates it."""

from __future__ import annotations

from datetime import date
from typing import Any

from common import uscc
from grading import service
from records.catalog import Catalog
from records.service import import_csv
from tests.web.browser import Live, shot, sign_in

# An enterprise of its own: the live gateway is shared by the browser tests.
ENTERPRISE = uscc.complete("91320281MA1XGRD07")


def test_enterprise_reads_its_grade_and_opts_in_to_the_whitelist(live: Live, page: Any) -> None:
    svc = live.svc
    catalog = Catalog(live.settings.config)
    files = {
        "market_regulation": "uscc,registration.name,registration.status,"
        "registration.industry_division,registration.established\n"
        f"{ENTERPRISE},江阴示范纺织有限公司,active,17,2010-05-01\n",
        "credit_office": "uscc,public_credit.grade,public_credit.dishonesty_records\n"
        f"{ENTERPRISE},A,none\n",
    }
    for department, text in files.items():
        import_csv(svc.engine, catalog, department, text.encode(), file_name="g.csv", actor="t")
    sign_in(page, live.base, live.add_user("enterprise", uscc=ENTERPRISE))
    page.get_by_role("link", name="信用等级", exact=True).click()
    if service.latest_month(svc.engine) is None:
        assert "尚未评定信用等级" in page.content()
    service.compute(
        svc.engine, svc.settings, "2024-05", today=date(2024, 6, 3), now=1, actor="test"
    )
    page.reload()
    heading = page.locator("#grade-heading").inner_text()
    assert "2024-05" in heading
    assert page.locator("[data-grade]").inner_text() == "高级"
    assert "直接认定法" in page.content()
    table = page.locator("table").inner_text()
    assert "公共信用" in table and "无失信记录" in table
    assert "尚未同意推荐" in page.content()
    shot(page, "grade-1-page")

    page.locator("#recommend-toggle").click()
    assert "已同意白名单推荐" in page.locator(".notice").inner_text()
    assert "已同意推荐（" in page.content()
    choice = service.recommendation(svc.engine, ENTERPRISE)
    assert choice is not None and choice.recommended
    assert [u for u, _ in service.whitelist(svc.engine, "2024-05")] == [ENTERPRISE]

    page.get_by_role("link", name="English", exact=True).click()
    assert page.locator("[data-grade]").inner_text() == "Senior"
    assert "Public credit" in page.locator("table").inner_text()
    assert "Recommended since" in page.content()
    shot(page, "grade-2-english")
    page.locator("#recommend-toggle").click()
    assert "no longer recommended" in page.locator(".notice").inner_text()
    assert service.whitelist(svc.engine, "2024-05") == []
