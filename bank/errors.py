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
    "grant_missing": "ask the enterprise for consent (xinyi bank request-consent)",
    "grant_invalid": "fetch the grant again from its consent (xinyi bank consent ID)",
    "grant_wrong_audience": "use a grant issued to your institution",
    "grant_expired": "ask the enterprise for a new consent",
    "grant_not_yet_valid": "try again once the grant's validity starts",
    "grant_revoked": "ask the enterprise for a new consent",
    "grant_paused": "wait until the enterprise resumes the consent",
    "scope_operation": "ask for a consent with op 'score'",
    "scope_category": "ask for a consent naming the model's grant_categories "
    "(xinyi bank request-consent --model ID)",
    "grant_uses_exhausted": "ask the enterprise for a new consent",
    "institution_suspended": "contact the platform operator",
    "verify_budget_exhausted": "ask the enterprise for a new consent",
    "invalid_token": "check the institution id and the key registered with the operator",
    "token_expired": "try again (the SDK fetches a new token)",
    "invalid_client": "have the operator register your public JWK "
    "(xinyi admin add-institution ID --jwk client_jwk.json)",
    "context_not_found": "register your CKKS context first (xinyi bank register-context)",
    "context_parameters": "use a CKKS context with the model's parameters",
    "context_has_secret_key": "send the public context only (the SDK does)",
    "context_has_evaluation_keys": "send the public context without relinearization or Galois keys",
    "invalid_ciphertext": "encrypt exactly the model's bank features under your registered context",
    "model_not_found": "list the models with xinyi bank models",
    "model_not_approved": "wait until the platform operator approves the model",
    "model_not_owner": "name your own models as 'YOUR_ID/NAME'",
    "model_owner_untrusted": "check the model id; pass the owner as trusted if you mean it",
    "score_model_limit": "score this enterprise with a model you already used for it",
    "no_data": "the gateway cannot score this enterprise",
    "too_large": "send fewer enterprises per batch",
    "audit_unavailable": "retry later; nothing was served",
    "gateway_unreachable": "check the gateway URL and that it is running",
    "wrong_passphrase": "set XINYI_BANK_PASSPHRASE to the passphrase used at xinyi bank init",
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
