"""The enterprise's data page and its downloads never show the restricted category (the
legal representative's personal credit, used only inside the grade) nor the keyed hash
of the legal representative's id; the bank's report does not serve that hash either."""

from __future__ import annotations

import json
from collections.abc import Callable

from flask import Flask

from records.catalog import Catalog
from records.pseudonyms import LEGAL_REP_ID, legal_rep_id_hash
from records.service import import_csv
from tests.web.conftest import ENTERPRISE, Person

RAW_ID = "33010619800101123X"


def test_the_data_page_hides_personal_credit_and_the_id_hash(
    app: Flask, make_person: Callable[..., Person]
) -> None:
    svc = app.extensions["xinyi"]
    catalog = Catalog(svc.settings.config)
    import_csv(
        svc.engine,
        catalog,
        "credit_office",
        f"uscc,personal_credit.legal_representative_level,public_credit.grade\n{ENTERPRISE},B,A\n".encode(),
        file_name="credit.csv",
        actor="t",
    )
    key = svc.keys.pseudonym_key(LEGAL_REP_ID)
    import_csv(
        svc.engine,
        catalog,
        "market_regulation",
        f"uscc,registration.legal_representative,{LEGAL_REP_ID}\n{ENTERPRISE},张三,{RAW_ID}\n".encode(),
        file_name="reg.csv",
        actor="t",
        pseudonym_key=key,
    )
    digest = legal_rep_id_hash(key, RAW_ID)
    ent = make_person("enterprise")
    page = ent.page("/enterprise/data")
    assert "张三" in page and "公共信用积分等级" in page  # the page does show its data
    assert "legal_representative_level" not in page and "个人信用积分等级" not in page
    assert digest not in page and LEGAL_REP_ID not in page
    doc = json.loads(ent.get("/enterprise/data.json").get_data(as_text=True))
    assert "personal_credit.legal_representative_level" not in doc["values"]
    assert LEGAL_REP_ID not in doc["values"] and "public_credit.grade" in doc["values"]
    text = ent.get("/enterprise/data.csv").get_data(as_text=True)
    assert "personal_credit" not in text and digest not in text


def test_the_grade_page_says_when_nothing_was_computed_then_shows_the_grade(
    app: Flask, make_person: Callable[..., Person]
) -> None:
    from datetime import date

    from grading import service

    svc = app.extensions["xinyi"]
    catalog = Catalog(svc.settings.config)
    for department, text in {
        "market_regulation": "uscc,registration.name,registration.status\n"
        f"{ENTERPRISE},甲公司,active\n",
        "credit_office": f"uscc,public_credit.grade\n{ENTERPRISE},B\n",
    }.items():
        import_csv(svc.engine, catalog, department, text.encode(), file_name="g.csv", actor="t")
    ent = make_person("enterprise")
    assert "尚未评定信用等级" in ent.page("/enterprise/grade")
    service.compute(svc.engine, svc.settings, "2025-05", today=date(2025, 6, 2), now=1, actor="t")
    page = ent.page("/enterprise/grade")
    explained = service.explain(svc.engine, ENTERPRISE, "2025-05")
    assert f'data-grade="{explained["grade"]}"' in page
    for item in explained["indicators"].values():
        assert item["reason"] in page
    assert "如何提升信用等级" in page
    assert "Credit grade for 2025-05" in ent.page("/enterprise/grade?lang=en")
    assert "月份格式应为" in ent.page("/enterprise/grade?month=2025-5&lang=zh-CN")
    resp = ent.post("/enterprise/grade/recommendation", {"recommended": "yes"})
    assert resp.status_code == 302
    assert service.recommendation(svc.engine, ENTERPRISE).recommended  # type: ignore[union-attr]
    refused = ent.post("/enterprise/grade/recommendation", {"recommended": "no"}, csrf=False)
    assert refused.status_code in (400, 403)
    assert service.recommendation(svc.engine, ENTERPRISE).recommended  # type: ignore[union-attr]
