"""Hostile tokens for tests: what a forger would send."""

from __future__ import annotations

import json
from typing import Any

from keys.jwk import b64url


def unsigned(claims: dict[str, Any], header: dict[str, Any] | None = None) -> str:
    """An ``alg=none`` JWT, built by hand so no library refuses to make it."""
    head = b64url(json.dumps({"alg": "none", "typ": "JWT", **(header or {})}).encode())
    return f"{head}.{b64url(json.dumps(claims).encode())}."
