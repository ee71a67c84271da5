"""The gateway over HTTP: private_key_jwt token acquisition and the institution calls.

Every non-2xx answer becomes a ``BankError`` with the gateway's ``error`` code and
``message`` (and ``audit_index`` when the gateway logged the refusal); a network failure
is ``gateway_unreachable``. The access token is cached until shortly before it expires
and fetched again once when the gateway says it expired.
"""

from __future__ import annotations

import base64
import threading
import time
import uuid
from collections.abc import Sequence
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bank.errors import BankError

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_SECONDS = 60
REFRESH_MARGIN_SECONDS = 15


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: Any, what: str) -> bytes:
    if not isinstance(text, str):
        raise BankError("bad_response", f"the gateway's {what} is not a base64 string")
    return base64.b64decode(text, validate=True)


class GatewayClient:
    """One institution's session with one gateway."""

    def __init__(
        self,
        base_url: str,
        institution_id: str,
        signing_key: Ed25519PrivateKey,
        *,
        http: httpx.Client | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.institution_id = institution_id
        self._key = signing_key
        self._http = http or httpx.Client(base_url=self.base_url, timeout=timeout)
        self._token: str | None = None
        self._token_until = 0.0
        self._lock = threading.Lock()

    @property
    def token_endpoint(self) -> str:
        return self.base_url + "/oauth/token"

    # Authentication ------------------------------------------------------------------
    def client_assertion(self) -> str:
        """An RFC 7523 client assertion: signed by our key, for the token endpoint."""
        now = int(time.time())
        claims = {
            "iss": self.institution_id,
            "sub": self.institution_id,
            "aud": self.token_endpoint,
            "jti": uuid.uuid4().hex,
            "iat": now,
            "exp": now + ASSERTION_SECONDS,
        }
        return jwt.encode(claims, self._key, algorithm="EdDSA")

    def token(self, *, fresh: bool = False) -> str:
        with self._lock:
            if not fresh and self._token and time.time() < self._token_until:
                return self._token
            resp = self._send(
                "POST",
                "/oauth/token",
                data={
                    "grant_type": "client_credentials",
                    "client_assertion_type": ASSERTION_TYPE,
                    "client_assertion": self.client_assertion(),
                },
            )
            body = self._json(resp)
            if resp.status_code != 200:
                # OAuth errors are {"error", "error_description"} (RFC 6749 §5.2).
                raise BankError(
                    str(body.get("error", "invalid_client")),
                    str(body.get("error_description") or body.get("message") or "token refused"),
                    status=resp.status_code,
                )
            self._token = str(body["access_token"])
            ttl = float(body.get("expires_in", 60))
            self._token_until = time.time() + max(1.0, ttl - REFRESH_MARGIN_SECONDS)
            return self._token

    # Transport -----------------------------------------------------------------------
    def _send(self, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            return self._http.request(method, path, **kw)
        except httpx.HTTPError as e:
            raise BankError(
                "gateway_unreachable", f"{method} {self.base_url}{path}: {type(e).__name__}: {e}"
            ) from e

    @staticmethod
    def _json(resp: httpx.Response) -> dict[str, Any]:
        try:
            body = resp.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise BankError(
                "bad_response",
                f"the gateway answered HTTP {resp.status_code} without a JSON object",
                status=resp.status_code,
            )
        return body

    def call(self, method: str, path: str, body: Any = None, **kw: Any) -> dict[str, Any]:
        """An authenticated call; errors become BankError with the gateway's code."""
        for attempt in (0, 1):
            headers = {"Authorization": f"Bearer {self.token(fresh=attempt == 1)}"}
            resp = self._send(method, path, json=body, headers=headers, **kw)
            answer = self._json(resp)
            if resp.status_code == 401 and answer.get("error") == "token_expired" and not attempt:
                continue
            if resp.is_success:
                return answer
            details = {k: v for k, v in answer.items() if k not in ("error", "message")}
            raise BankError(
                str(answer.get("error", "http_error")),
                str(answer.get("message", resp.reason_phrase)),
                status=resp.status_code,
                **details,
            )
        raise AssertionError("unreachable")  # pragma: no cover

    # Calls ----------------------------------------------------------------------------
    def register_context(self, public_context: bytes) -> str:
        return str(self.call("POST", "/v1/contexts", {"context": _b64(public_context)})["id"])

    def models(self) -> list[dict[str, Any]]:
        return list(self.call("GET", "/v1/models")["models"])

    def model(self, ref: str) -> dict[str, Any]:
        return self.call("GET", f"/v1/models/{ref}")

    def request_consent(
        self,
        enterprise: str,
        *,
        purpose: str,
        ops: Sequence[str],
        categories: Sequence[str],
        duration_days: int,
        max_uses: int,
    ) -> dict[str, Any]:
        return self.call(
            "POST",
            "/v1/consents",
            {
                "enterprise": enterprise,
                "purpose": purpose,
                "ops": list(ops),
                "categories": list(categories),
                "duration_days": duration_days,
                "max_uses": max_uses,
            },
        )

    def consent(self, consent_id: str) -> dict[str, Any]:
        return self.call("GET", f"/v1/consents/{consent_id}")

    def consents(self, status: str | None = None) -> list[dict[str, Any]]:
        params = {"status": status} if status else None
        return list(self.call("GET", "/v1/consents", params=params)["consents"])

    def score(self, grant: str, model: str, context: str, ciphertext: bytes) -> tuple[bytes, int]:
        """One score: (the answer ciphertext, its audit index)."""
        answer = self.call(
            "POST",
            "/v1/score",
            {"grant": grant, "model": model, "context": context, "ciphertext": _b64(ciphertext)},
        )
        return _unb64(answer.get("ciphertext"), "ciphertext"), int(answer["audit_index"])

    def score_batch(
        self, grants: Sequence[str], model: str, context: str, ciphertexts: Sequence[bytes]
    ) -> dict[str, Any]:
        """The batch answer with ``ciphertexts`` decoded to bytes."""
        answer = self.call(
            "POST",
            "/v1/score/batch",
            {
                "grants": list(grants),
                "model": model,
                "context": context,
                "ciphertexts": [_b64(c) for c in ciphertexts],
            },
        )
        answer["ciphertexts"] = [_unb64(c, "ciphertext") for c in answer.get("ciphertexts", [])]
        return answer

    def alerts(self, after: int = 0) -> tuple[list[dict[str, Any]], int]:
        """Every risk alert after ``after`` (``GET /v1/alerts``, oldest first), following
        ``next`` page by page until a page comes back empty: ``(alerts, next)``; pass
        ``next`` as ``after`` the next time to read only newer ones. A page whose
        ``next`` does not move past its ``after`` is ``bad_response`` (a gateway that
        loops is not followed forever)."""
        found: list[dict[str, Any]] = []
        while True:
            page = self.call("GET", "/v1/alerts", params={"after": after})
            alerts = page.get("alerts")
            nxt = page.get("next")
            if not isinstance(alerts, list) or not isinstance(nxt, int) or nxt < after:
                raise BankError("bad_response", "the gateway's alerts page is malformed")
            if not alerts:
                return found, nxt
            if nxt <= after:
                raise BankError("bad_response", "the gateway's alerts page does not advance")
            found.extend(alerts)
            after = nxt

    def close(self) -> None:
        self._http.close()
