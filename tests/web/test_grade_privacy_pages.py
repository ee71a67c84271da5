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
