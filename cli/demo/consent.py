"""Demo step of the consent registry: a bank asks, the enterprise reads the letter and
approves, the bank holds a grant it can verify against the published keys, the
enterprise revokes, and the bank's very next request is refused.

Reads ``story.bank`` (from ``score.step_bank_onboarding``) and ``story.enterprise``
(from ``data.step_city``).
"""

from __future__ import annotations

import jwt

from bank.errors import BankError
from cli.demo.data import account
from cli.demo.story import Story, say, step


def step_consent_story(story: Story) -> None:
    step("Consent: ask, read the letter, approve, verify the grant, revoke / 授权与撤销")
    client = story.the_bank().client
    code = story.the_enterprise()
    enterprise = account(story, "enterprise", f"ent_{code[-6:].lower()}", uscc=code)
    asked = client.request_consent(
        code,
        purpose="credit_line_review",
        ops=["report", "verify"],
        categories=["tax"],
        duration_days=30,
        max_uses=5,
    )
    cid = asked["id"]
    say(f"{client.institution_id} asks {code} for consent {cid}: {asked['status']}")
    pending = enterprise.get("/v1/consents", params={"status": "pending"}).json()["consents"]
    letter = next(c for c in pending if c["id"] == cid)["letter"]
    say("the enterprise reads the authorization letter (授权书) it is asked to accept:")
    for line in letter.splitlines()[:6]:
        say(f"    {line}")
    say("    …")
    grant = enterprise.post(f"/v1/consents/{cid}/approve").json()["grant"]
    header = jwt.get_unverified_header(grant)
    keys = story.http.get("/.well-known/jwks.json").json()["keys"]
    jwk = next(k for k in keys if k["kid"] == header["kid"] and k["xinyi_purpose"] == "grants")
    claims = jwt.decode(
        grant, jwt.PyJWK(jwk).key, algorithms=["EdDSA"], audience=client.institution_id
    )
    say(
        f"approved: the bank holds an EdDSA grant (kid {header['kid'][:12]}…) that verifies "
        f"against /.well-known/jwks.json: ops {claims['ops']}, categories "
        f"{claims['categories']}, letter {claims['letter'][:19]}…"
    )
    report = client.call("GET", f"/v1/enterprises/{code}/report", params={"grant": grant})
    say(f"the bank reads a banded report under it (audit entry #{report['audit_index']})")
    enterprise.post(f"/v1/consents/{cid}/revoke").raise_for_status()
    say("the enterprise revokes the consent")
    try:
        client.call("GET", f"/v1/enterprises/{code}/report", params={"grant": grant})
    except BankError as refused:
        say(f"the bank's next request is refused: {refused.code} (HTTP {refused.status})")
    else:  # the story would be a lie: fail loudly
        raise AssertionError("a revoked grant was accepted")
