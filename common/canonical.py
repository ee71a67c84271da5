"""Canonical bytes for anything hashed or signed: RFC 8785 (JCS)."""

from __future__ import annotations

from typing import Any

import rfc8785

from common.errors import InvalidInput


def canonical_json(value: Any) -> bytes:
    """RFC 8785 canonical UTF-8 JSON of ``value`` (floats must be finite)."""
    try:
        return bytes(rfc8785.dumps(value))
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as e:
        raise InvalidInput(f"value cannot be canonicalized: {e}") from e
