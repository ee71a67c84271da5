"""Consent errors. Refusal codes are part of the external contract."""

from __future__ import annotations

from common.errors import Conflict, Forbidden, InvalidInput, NotFound

REFUSAL_CODES: tuple[str, ...] = (
    "grant_missing",
    "grant_invalid",
    "grant_wrong_audience",
    "grant_expired",
    "grant_not_yet_valid",
    "grant_revoked",
    "grant_paused",
    "scope_operation",
    "scope_category",
    "grant_uses_exhausted",
    "institution_suspended",
    "verify_budget_exhausted",
    # The score-extraction bound (gateway.enforce): more distinct models for one
    # enterprise within a grant's period than ``scoring.max_models_per_enterprise``.
    "score_model_limit",
)


class ConsentRefused(Forbidden):
    """A data request refused by consent; ``code`` is one of REFUSAL_CODES."""

    code = "grant_invalid"

    def __init__(self, code: str, message: str, **details: object) -> None:
        assert code in REFUSAL_CODES, code
        super().__init__(message, code=code, **details)


class InvalidConsentRequest(InvalidInput):
    code = "invalid_consent_request"


class ConsentNotFound(NotFound):
    code = "consent_not_found"


class TransitionRefused(Conflict):
    """The consent is not in a state that allows the requested action."""

    code = "consent_state"
