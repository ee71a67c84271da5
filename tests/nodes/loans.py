"""A loan recorded at a node, straight into its database through the financing store
(what a bank's outcome at that node records), for the rollup tests."""

from __future__ import annotations

import dataclasses
import time
import uuid

from common.db import make_engine, write_session
from common.settings import load_settings
from financing import applications as core
from financing import store as fin
from financing.products import new_product
from tests.nodes.network import Node

PRODUCT = {
    "name": "税易贷",
    "kind": "credit",
    "amount_min": 100_000,
    "amount_max": 3_000_000,
    "rate_min": 3.45,
    "rate_max": 4.8,
    "term_months_max": 36,
    "purpose": "working_capital_loan",
    "ops": ["report", "verify"],
    "categories": ["tax"],
}


def record_loan(node: Node, enterprise: str, disbursed: int, rate: float) -> None:
    """An approved, disbursed loan to ``enterprise`` decided now at ``node``."""
    cfg = load_settings(env=node.env).config
    now = int(time.time())
    product = new_product(
        cfg, product_id="prd_" + uuid.uuid4().hex[:24], institution="bank-city",
        fields=PRODUCT, now=now,
    )  # fmt: skip
    application = core.Application(
        id="app_" + uuid.uuid4().hex[:24], product=product.id, institution="bank-city",
        enterprise=enterprise, amount=disbursed, term_months=12, status="submitted",
        consent="cns_" + uuid.uuid4().hex[:24], created_at=now, created_by="enterprise:test",
        submitted_at=now,
    )  # fmt: skip
    fields = {
        "decision": "approved", "credit_line": disbursed, "disbursed": disbursed,
        "rate": rate, "term_months": 12, "credit_loan": True, "first_loan": True,
    }  # fmt: skip
    outcome = core.decide(cfg, application, product, fields, by="institution:bank-city", now=now)
    engine = make_engine(node.database_url)
    try:
        with write_session(engine) as s:
            fin.insert_product(s, product)
            fin.insert_application(s, application)
            fin.insert_outcome(s, dataclasses.replace(application, status="approved"), outcome)
            fin.move(s, application.id, expected=["submitted"], new="approved", now=now)
    finally:
        engine.dispose()
