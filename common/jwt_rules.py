"""Rules every kind of JWT the gateway signs or accepts shares: its ``typ`` header and
its numeric dates.

Kinds, each with its own ``typ`` (RFC 8725 §3.11: explicit typing, so a token of one
kind is never accepted as another) and, for the gateway's own, its own key purpose:

| kind | ``typ`` | signed by |
|---|---|---|
| consent grant | ``xinyi-grant+jwt`` | gateway, *grants* key |
| access token | ``at+jwt`` (RFC 9068) | gateway, *tokens* key |
| webhook event | ``xinyi-event+jwt`` | gateway, *events* key |
| client assertion | none, ``JWT`` or ``client-authentication+jwt`` | the institution |
| node assertion | ``xinyi-node+jwt`` | a peer node, its *nodes* key (``nodes.core``) |

Numeric dates (``exp``, ``nbf``, ``iat``) are JSON numbers: ``int`` or a finite
``float``, never a ``bool`` (``True`` is an ``int`` to Python), within years 0..9999;
anything else is refused before a comparison, a conversion or a database column sees
it (``1e20`` once overflowed an INTEGER column, a float once skipped a lifetime cap).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from common.errors import InvalidInput

TYP_GRANT = "xinyi-grant+jwt"
TYP_ACCESS_TOKEN = "at+jwt"  # noqa: S105 -- a token type name, not a secret
TYP_EVENT = "xinyi-event+jwt"
TYP_NODE = "xinyi-node+jwt"  # node-to-node assertions (nodes.core)
# RFC 7523 sets no type for client assertions; draft-ietf-oauth-rfc7523bis names
# "client-authentication+jwt". Absent and the generic "JWT" stay accepted for clients
# written before it.
CLIENT_ASSERTION_TYPS = (None, "jwt", "client-authentication+jwt")
NUMERIC_DATES = ("exp", "nbf", "iat")
MAX_NUMERIC_DATE = 253_402_300_799  # 9999-12-31T23:59:59Z


class TokenTypeInvalid(InvalidInput):
    """A JWT whose ``typ`` header names another kind of token."""

    code = "jwt_type_invalid"


class ClaimInvalid(InvalidInput):
    """A JWT claim of the wrong type or out of range."""

    code = "jwt_claim_invalid"


def _typ(header: Mapping[str, Any]) -> str | None:
    typ = header.get("typ")
    if typ is None:
        return None
    if not isinstance(typ, str):
        raise TokenTypeInvalid("the JWT's typ header is not a string")
    # RFC 7515 §4.1.9: the "application/" prefix may be omitted, and media types
    # compare case-insensitively.
    typ = typ.lower()
    return typ.removeprefix("application/")


def require_typ(header: Mapping[str, Any], expected: str) -> None:
    """Refuse a JWT whose ``typ`` is not ``expected`` (absent included)."""
    if _typ(header) != expected:
        raise TokenTypeInvalid(f"this is not a {expected} token")


def require_client_assertion_typ(header: Mapping[str, Any]) -> None:
    """Refuse a client assertion typed as anything but a client assertion."""
    if _typ(header) not in CLIENT_ASSERTION_TYPS:
        raise TokenTypeInvalid("this is not a client assertion")


def numeric_date(claims: Mapping[str, Any], name: str, *, required: bool = False) -> float | None:
    """The claim ``name`` as a NumericDate (seconds since the epoch), or None when it is
    absent and not ``required``; raises ClaimInvalid."""
    if name not in claims:
        if required:
            raise ClaimInvalid(f"the JWT has no {name!r} claim", field=name)
        return None
    value = claims[name]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ClaimInvalid(f"the JWT's {name!r} claim is not a number", field=name)
    # An int is compared exactly: float(10**400) would itself overflow.
    if isinstance(value, float) and not math.isfinite(value):
        raise ClaimInvalid(f"the JWT's {name!r} claim is out of range", field=name)
    if not 0 <= value <= MAX_NUMERIC_DATE:
        raise ClaimInvalid(f"the JWT's {name!r} claim is out of range", field=name)
    return float(value)


def check_numeric_dates(claims: Mapping[str, Any], *, required: tuple[str, ...] = ()) -> None:
    """Check every numeric date claim present (and the ``required`` ones exist)."""
    for name in NUMERIC_DATES:
        numeric_date(claims, name, required=name in required)
