"""The consent service end to end on each backend: request, decide, check, revoke."""

from __future__ import annotations

import json
import threading
from typing import Any

import jwt
import pytest
import sqlalchemy as sa

from common.db import write_session
from consent.errors import ConsentNotFound, ConsentRefused, TransitionRefused
from consent.service import ConsentService, Viewer
from keys.jwk import b64url
from tests.consent.conftest import Clock
from tests.tokens import unsigned

ENT = "91330100716105852F"
OTHER = "9144030071526726XG"


def request(svc: ConsentService, **kw: Any) -> str:
    body = {
        "enterprise": ENT,
        "purpose": "working_capital_loan",
        "ops": ["verify", "report"],
        "categories": ["tax"],
        "duration_days": 30,
        "max_uses": 3,
        **kw,
    }
    return svc.request("bank_a", body).id


def approved(svc: ConsentService, **kw: Any) -> tuple[str, str]:
    cid = request(svc, **kw)
    row = svc.act(cid, "approve", ENT)
    assert row.grant_jwt is not None
    return cid, row.grant_jwt


def check(svc: ConsentService, grant: str | None, **kw: Any) -> Any:
    args: dict[str, Any] = {
        "grant": grant,
        "institution": "bank_a",
        "enterprise": ENT,
        "op": "verify",
        "categories": ["tax"],
    }
    args.update(kw)
    return svc.check_standalone(**args)


def refusal(svc: ConsentService, grant: str | None, **kw: Any) -> str:
    with pytest.raises(ConsentRefused) as e:
        check(svc, grant, **kw)
    return e.value.code


def test_request_is_pending_with_a_letter_naming_the_terms(consent_service: ConsentService) -> None:
    cid = request(consent_service)
    row = consent_service.get(cid, Viewer("enterprise", ENT))
    assert row.status == "pending" and row.grant_jwt is None
    assert "bank_a 银行" in row.letter and "纳税信息" in row.letter
    with pytest.raises(ConsentNotFound):
        consent_service.get(cid, Viewer("enterprise", OTHER))
    with pytest.raises(ConsentNotFound):
        consent_service.get(cid, Viewer("institution", "bank_b"))


def test_approval_signs_a_grant_with_the_contract_claims(
    consent_service: ConsentService, clock: Clock
) -> None:
    cid, grant = approved(consent_service)
    claims = jwt.decode(grant, options={"verify_signature": False})
    assert set(claims) == {
        "iss",
        "sub",
        "aud",
        "jti",
        "iat",
        "nbf",
        "exp",
        "purpose",
        "ops",
        "categories",
        "max_uses",
        "letter",
    }
    assert claims["sub"] == ENT and claims["aud"] == "bank_a" and claims["jti"] == cid
    assert claims["exp"] - claims["nbf"] == 30 * 86400
    row = consent_service.get(cid, Viewer("enterprise", ENT))
    assert claims["letter"] == row.letter_hash
    assert jwt.get_unverified_header(grant)["alg"] == "EdDSA"


def test_every_refusal_code(
    consent_service: ConsentService, clock: Clock, engine: sa.Engine
) -> None:
    svc = consent_service
    _, grant = approved(svc)
    assert check(svc, grant).grant_id
    assert refusal(svc, None) == "grant_missing"
    assert refusal(svc, "not.a.jwt") == "grant_invalid"
    assert refusal(svc, grant, institution="bank_b") == "grant_wrong_audience"
    assert refusal(svc, grant, op="score") == "scope_operation"
    assert refusal(svc, grant, categories=["tax", "utilities"]) == "scope_category"
    assert refusal(svc, grant, enterprise=OTHER) == "grant_invalid"
    # uses: 3 allowed in all, one already taken
    check(svc, grant)
    check(svc, grant)
    assert refusal(svc, grant) == "grant_uses_exhausted"
    cid2, grant2 = approved(svc)
    svc.act(cid2, "pause", ENT)
    assert refusal(svc, grant2) == "grant_paused"
    svc.act(cid2, "resume", ENT)
    check(svc, grant2)
    svc.act(cid2, "revoke", ENT)
    assert refusal(svc, grant2) == "grant_revoked"
    _, grant3 = approved(svc)
    clock.t += 31 * 86400
    assert refusal(svc, grant3) == "grant_expired"
    clock.t -= 31 * 86400
    with engine.begin() as c:
        c.execute(sa.text("UPDATE institutions SET status='suspended' WHERE id='bank_a'"))
    assert refusal(svc, grant3) == "institution_suspended"


def test_not_yet_valid(consent_service: ConsentService, clock: Clock) -> None:
    _, grant = approved(consent_service)
    clock.t -= 10
    assert refusal(consent_service, grant) == "grant_not_yet_valid"


def test_forged_and_algorithm_confused_grants_are_refused(consent_service: ConsentService) -> None:
    _, grant = approved(consent_service)
    claims = jwt.decode(grant, options={"verify_signature": False})
    header = jwt.get_unverified_header(grant)
    head, _body, sig = grant.split(".")
    # 1. alg=none
    none = unsigned(claims, {"kid": header["kid"]})
    assert refusal(consent_service, none) == "grant_invalid"
    # 2. HMAC keyed with the public key bytes (classic key confusion)
    pub = consent_service.keys.public_key(header["kid"], "grants")
    assert pub is not None
    from cryptography.hazmat.primitives import serialization

    raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    hs = jwt.encode(claims, raw, algorithm="HS256", headers={"kid": header["kid"]})
    assert refusal(consent_service, hs) == "grant_invalid"
    # 3. widened scope with the original signature
    claims["ops"] = ["verify", "report", "score"]
    forged_body = b64url(json.dumps(claims, separators=(",", ":")).encode())
    assert refusal(consent_service, f"{head}.{forged_body}.{sig}") == "grant_invalid"
    # 4. signed by a key of another purpose (a token key) is not a grant key
    other = consent_service.keys.sign_jwt("tokens", claims)
    assert refusal(consent_service, other) == "grant_invalid"
    # 5. unknown kid
    assert (
        refusal(
            consent_service,
            jwt.encode(claims, "x" * 32, algorithm="HS256", headers={"kid": "nope"}),
        )
        == "grant_invalid"
    )


def test_transitions_only_from_allowed_states(consent_service: ConsentService) -> None:
    cid = request(consent_service)
    consent_service.act(cid, "reject", ENT)
    for action in ("approve", "pause", "revoke"):
        with pytest.raises(TransitionRefused):
            consent_service.act(cid, action, ENT)
    with pytest.raises(ConsentNotFound):
        consent_service.act(cid, "approve", OTHER)


def test_verification_budget_per_feature(consent_service: ConsentService) -> None:
    cid, grant = approved(consent_service, max_uses=50)
    budget = consent_service.budget_for("tax.paid_12m")
    for _ in range(budget):
        check(consent_service, grant, verify_feature="tax.paid_12m")
    assert (
        refusal(consent_service, grant, verify_feature="tax.paid_12m") == "verify_budget_exhausted"
    )
    check(consent_service, grant, verify_feature="tax.revenue_12m")  # another feature
    row = consent_service.get(cid, Viewer("enterprise", ENT))
    view = consent_service.verification_budget(row)
    assert view["tax.paid_12m"] == {"budget": budget, "used": budget, "left": 0}
    assert view["tax.revenue_12m"]["left"] == budget - 1
    # the refused verification consumed no use of the grant
    assert row.uses == budget + 1


def test_status_changes_queue_webhook_events(
    consent_service: ConsentService, engine: sa.Engine
) -> None:
    cid, _ = approved(consent_service)
    consent_service.act(cid, "revoke", ENT)
    with engine.connect() as c:
        rows = c.execute(sa.text("SELECT payload FROM webhook_outbox ORDER BY id")).all()
    assert [r[0].count('"status": "') for r in rows] == [1, 1, 1]
    assert '"revoked"' in rows[-1][0]


def test_uses_are_never_over_counted_under_concurrency(
    consent_service: ConsentService, engine: sa.Engine
) -> None:
    _, grant = approved(consent_service, max_uses=20)
    outcomes: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(8):
            try:
                check(consent_service, grant)
                result = "ok"
            except ConsentRefused as e:
                result = e.code
            with lock:
                outcomes.append(result)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("ok") == 20
    assert set(outcomes) == {"ok", "grant_uses_exhausted"}
    with write_session(engine) as s:
        uses = s.execute(sa.text("SELECT uses FROM consents")).scalar()
    assert uses == 20
