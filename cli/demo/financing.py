"""Demo step of the financing loop (docs/financing.md): the bank publishes a product,
one enterprise (real name verified) applies, reads the authorization letter and
approves, the bank reads the banded report under the application's grant and approves
the loan, and the operator reads the month's figures.

Reads ``story.bank`` (``score.step_bank_onboarding``) and the city (``data.step_city``).
"""

from __future__ import annotations

import time

from cli.demo.data import account
from cli.demo.story import Story, say, step
from financing.statistics import month_of


def step_financing(story: Story) -> None:
    step("Financing: product supermarket, apply, approve, the month's figures / 信易贷融资")
    client = story.the_bank().client
    code = story.the_enterprise()
    product = client.call(
        "POST",
        "/v1/products",
        {
            "name": "澄易贷·税易贷",
            "kind": "credit",
            "amount_min": 100_000,
            "amount_max": 3_000_000,
            "rate_min": 3.45,
            "rate_max": 4.8,
            "term_months_max": 36,
            "purpose": "working_capital_loan",
            "ops": ["report"],
            "categories": ["tax", "social_security"],
        },
    )
    say(f"{client.institution_id} publishes product {product['id']} (credit, 3.45-4.8 %)")
    listed = story.http.get("/v1/products", params={"amount": 500_000}).json()["products"]
    say(f"the public supermarket lists {len(listed)} product(s) for CNY 500,000")
    login = f"fin_{code[-6:].lower()}"
    # An account the operator creates is real-named (checked offline); a self sign-up
    # is real-named when the legal representative matches the registration record.
    enterprise = account(story, "enterprise", login, uscc=code)
    resp = enterprise.post(
        "/v1/applications", json={"product": product["id"], "amount": 500_000, "term_months": 12}
    )
    resp.raise_for_status()
    opened = resp.json()
    consent = opened["consent"]
    say(f"{code} applies: application {opened['id']} {opened['status']}, consent {consent['id']}")
    enterprise.post(f"/v1/consents/{consent['id']}/approve").raise_for_status()
    say("the enterprise accepts the authorization letter: the application is submitted")
    grant = client.call("GET", f"/v1/consents/{consent['id']}")["grant"]
    report = client.call("GET", f"/v1/enterprises/{code}/report", params={"grant": grant})
    say(f"the bank reads the banded report under that grant (audit entry #{report['audit_index']})")
    decided = client.call(
        "POST",
        f"/v1/applications/{opened['id']}/outcome",
        {
            "decision": "approved",
            "credit_line": 800_000,
            "disbursed": 500_000,
            "rate": 3.85,
            "term_months": 12,
            "credit_loan": True,
            "first_loan": True,
        },
    )
    say(f"the bank approves: {decided['status']}, CNY 500,000 disbursed at 3.85 %")
    mine = enterprise.get("/v1/applications").json()["applications"]
    say(f"the enterprise sees its application {mine[0]['status']}")
    operator = account(story, "operator", "operator")
    month = month_of(time.time())
    stats = operator.get("/v1/statistics", params={"month": month}).json()
    say(
        f"{month}: registered {stats['registered']}, real-name {stats['real_name']}, "
        f"authorizing {stats['authorizing']} of {stats['market_entities']} market entities; "
        f"{stats['applications']} application(s), {stats['approved']} approved, "
        f"CNY {stats['disbursed']:,} disbursed, weighted rate {stats['weighted_rate']} %"
    )
