"""Errors of the bank SDK: one class, carrying the gateway's stable code.

``BankError.code`` is the gateway's ``error`` (for example ``grant_revoked``) or one of
the SDK's own (``gateway_unreachable``, ``wrong_passphrase``, ``bank_not_initialized``,
…); ``str(error)`` is a readable sentence with what to do about it.
"""

from __future__ import annotations

from typing import Any

from common.errors import Error

# What a person at the bank should do about each refusal of CONTRACT.md (and the other
# codes the scoring routes answer with).
HINTS: dict[str, str] = {
    "grant_missing": "ask the enterprise for consent (xinyi bank request-consent) and use "
    "its grant",
    "grant_invalid": "the grant is not one this gateway issued to you; fetch it again from "
    "the consent",
    "grant_wrong_audience": "this grant was issued to another institution",
    "grant_expired": "the grant has expired; ask the enterprise for a new consent",
    "grant_not_yet_valid": "the grant is not valid yet; try again later",
    "grant_revoked": "the enterprise revoked this grant; ask for a new consent",
    "grant_paused": "the enterprise paused this grant; wait until it resumes it",
    "scope_operation": "the grant does not allow scoring; ask for a consent with op 'score'",
    "scope_category": "the grant does not cover the model's data categories; ask for a consent "
    "that names them (see the model's gateway_categories)",
    "grant_uses_exhausted": "the grant's uses are spent; ask for a new consent",
    "institution_suspended": "the operator suspended your institution; contact the platform",
    "verify_budget_exhausted": "the verification budget of this grant is spent",
    "invalid_token": "authentication failed; check the institution id and key registered with "
    "the operator",
    "token_expired": "the access token expired; the SDK fetches a new one, try again",
    "invalid_client": "the gateway does not know this institution key; register the JWK with "
    "the operator (xinyi admin add-institution)",
    "context_not_found": "register your CKKS context first (xinyi bank register-context)",
    "context_parameters": "your CKKS context's parameters do not match the model's",
    "context_has_secret_key": "never send the secret context; the SDK sends the public one",
    "context_has_evaluation_keys": "send the public context without relinearization/Galois keys",
    "invalid_ciphertext": "the ciphertext does not match the model (feature count) or the context",
    "model_not_found": "no such model; list them with xinyi bank models",
    "no_data": "the gateway holds no data for this enterprise",
    "too_large": "the request is larger than the gateway accepts",
    "audit_unavailable": "the gateway cannot log the request right now; nothing was served, retry",
    "gateway_unreachable": "check the gateway URL and that it is running",
    "wrong_passphrase": "set XINYI_BANK_PASSPHRASE to the passphrase used at 'xinyi bank init'",
    "bank_not_initialized": "run xinyi bank init first",
}


class BankError(Error):
    """A refusal or failure, with the gateway's ``code`` and ``message``; ``status`` is
    the HTTP status (None for local errors), ``details`` the rest of the answer (for
    example ``audit_index``)."""

    code = "bank_error"

    def __init__(
        self, code: str, message: str, *, status: int | None = None, **details: Any
    ) -> None:
        super().__init__(message, code=code, **details)
        self.status = status

    @property
    def hint(self) -> str | None:
        return HINTS.get(self.code)

    @property
    def audit_index(self) -> int | None:
        value = self.details.get("audit_index")
        return value if isinstance(value, int) else None

    def __str__(self) -> str:
        where = f" (HTTP {self.status})" if self.status else ""
        hint = f"; {self.hint}" if self.hint else ""
        return f"{self.code}{where}: {self.message}{hint}"
