"""The pure consent policy: request validation, transitions, claim checks."""

from collections.abc import Callable
from typing import Any

import pytest

from common.errors import InvalidInput
from common.settings import Settings
from consent import letter, policy
from consent.errors import ConsentRefused, TransitionRefused

ENT = "91330100716105852F"


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


def body(**kw: Any) -> dict[str, Any]:
    b: dict[str, Any] = {
        "enterprise": ENT,
        "purpose": "working_capital_loan",
        "ops": ["verify", "report"],
        "categories": ["tax"],
        "duration_days": 90,
        "max_uses": 10,
    }
    b.update(kw)
    return b


def test_valid_request_parses(settings: Settings) -> None:
    req = policy.parse_request(body(), settings)
    assert req.ops == ("verify", "report") and req.categories == ("tax",)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"enterprise": "91330100716105852G"}, None),
        ({"purpose": "gambling"}, "purpose"),
        ({"ops": ["train"]}, "ops"),  # not allowed for working_capital_loan
        ({"ops": []}, "ops"),
        ({"ops": ["verify", "verify"]}, "ops"),
        ({"categories": ["secrets"]}, "categories"),
        ({"duration_days": 366}, "duration_days"),
        ({"duration_days": 0}, "duration_days"),
        ({"duration_days": True}, "duration_days"),
        ({"max_uses": 201}, "max_uses"),
        ({"extra": 1}, "extra"),
    ],
)
def test_bad_requests_are_refused_with_the_field(
    settings: Settings, change: dict[str, Any], field: str | None
) -> None:
    with pytest.raises(InvalidInput) as e:
        policy.parse_request(body(**change), settings)
    if field:
        assert e.value.details["field"] == field


def test_state_machine() -> None:
    assert policy.transition("pending", "approve") == "active"
    assert policy.transition("active", "pause") == "paused"
    assert policy.transition("paused", "resume") == "active"
    assert policy.transition("paused", "revoke") == "revoked"
    for terminal in ("revoked", "expired", "rejected"):
        for action in policy.TRANSITIONS:
            with pytest.raises(TransitionRefused):
                policy.transition(terminal, action)
    with pytest.raises(TransitionRefused):
        policy.transition("pending", "pause")


def test_time_expires_grants_and_unanswered_requests() -> None:
    assert policy.effective_status("active", 100, 100, 0) == "expired"
    assert policy.effective_status("paused", 99, 100, 0) == "paused"
    assert policy.effective_status("pending", 50, None, 50) == "expired"
    assert policy.effective_status("revoked", 10**12, 1, 1) == "revoked"


def _claims(settings: Settings, **kw: Any) -> dict[str, Any]:
    req = policy.parse_request(body(), settings)
    c = policy.grant_claims(
        issuer="https://gw",
        consent_id="cst_1",
        request=req,
        institution="bank",
        letter_hash="sha256:00",
        now=1000,
    )
    c.update(kw)
    return c


@pytest.mark.parametrize(
    ("kw", "check", "code"),
    [
        ({}, {"institution": "other"}, "grant_wrong_audience"),
        ({}, {"enterprise": "9144030071526726XG"}, "grant_invalid"),
        ({"nbf": 2000}, {}, "grant_not_yet_valid"),
        ({"exp": 1000}, {}, "grant_expired"),
        ({}, {"op": "score"}, "scope_operation"),
        ({}, {"categories": ["tax", "utilities"]}, "scope_category"),
        ({"iss": "https://evil"}, {}, "grant_invalid"),
    ],
)
def test_claim_checks_give_contract_codes(
    settings: Settings, kw: dict[str, Any], check: dict[str, Any], code: str
) -> None:
    args: dict[str, Any] = {
        "institution": "bank",
        "enterprise": ENT,
        "op": "verify",
        "categories": ["tax"],
        "now": 1500,
        "issuer": "https://gw",
    }
    args.update(check)
    with pytest.raises(ConsentRefused) as e:
        policy.check_claims(_claims(settings, **kw), **args)
    assert e.value.code == code


def test_stored_state_checks() -> None:
    def grant(status: str, uses: int = 0) -> policy.StoredGrant:
        return policy.StoredGrant(status, ENT, "bank", uses, 3, 10_000, 0)

    policy.check_stored(grant("active"), now=1)
    for status, code in [
        ("revoked", "grant_revoked"),
        ("paused", "grant_paused"),
        ("rejected", "grant_invalid"),
    ]:
        with pytest.raises(ConsentRefused) as e:
            policy.check_stored(grant(status), now=1)
        assert e.value.code == code
    with pytest.raises(ConsentRefused) as e:
        policy.check_stored(grant("active", uses=3), now=1)
    assert e.value.code == "grant_uses_exhausted"
    with pytest.raises(ConsentRefused) as e:
        policy.check_stored(grant("active"), now=10_000)
    assert e.value.code == "grant_expired"


def test_letter_names_everything_and_its_hash_is_stable() -> None:
    terms = letter.LetterTerms(
        enterprise=ENT,
        institution_id="bank",
        institution_name="示例银行",
        purpose_code="working_capital_loan",
        purpose_name="流动资金贷款审批",
        ops=("verify",),
        categories=(("tax", "纳税信息", "税务局"),),
        duration_days=90,
        max_uses=10,
    )
    text = letter.render(terms)
    for needle in (ENT, "示例银行", "流动资金贷款审批", "纳税信息", "税务局", "90 日", "10 次"):
        assert needle in text
    assert letter.letter_hash(text) == letter.letter_hash(letter.render(terms))
    assert letter.letter_hash(text).startswith("sha256:") and len(letter.letter_hash(text)) == 71
