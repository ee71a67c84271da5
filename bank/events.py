"""Webhook events from the gateway, checked before an institution acts on one.

The gateway POSTs each event as a JWT (``Content-Type: application/jwt``). An event is
genuine only when all of these hold, and ``verify_event`` checks each:
- its header says ``typ: xinyi-event+jwt`` and ``alg: EdDSA``: a grant or an access
  token (signed by the same gateway) is not an event;
- its ``kid`` is a key of the gateway's JWKS (``/.well-known/jwks.json``) published for
  the purpose ``events``, and the signature verifies with it;
- its ``aud`` is this institution's client id; its numeric dates are numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jwt

from bank.errors import BankError
from common import jwt_rules
from common.errors import InvalidInput


def _refuse(message: str) -> BankError:
    return BankError("event_invalid", message)


def verify_event(token: str, jwks: Mapping[str, Any], client_id: str) -> dict[str, Any]:
    """The claims of a genuine event for ``client_id``; raises BankError
    ``event_invalid``. ``jwks`` is the gateway's ``/.well-known/jwks.json``."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as e:
        raise _refuse("the event is not a JWT") from e
    try:
        jwt_rules.require_typ(header, jwt_rules.TYP_EVENT)
    except InvalidInput as e:
        raise _refuse("the token is not a webhook event") from e
    if header.get("alg") != "EdDSA" or not isinstance(header.get("kid"), str):
        raise _refuse("events are EdDSA JWTs with a kid")
    keys = jwks.get("keys") if isinstance(jwks, Mapping) else None
    found = [
        k
        for k in keys or []
        if isinstance(k, Mapping)
        and k.get("kid") == header["kid"]
        and k.get("xinyi_purpose") == "events"
    ]
    if not found:
        raise _refuse("the event's key is not a published events key")
    try:
        key = jwt.PyJWK(dict(found[0]), algorithm="EdDSA")
        claims: dict[str, Any] = jwt.decode(
            token, key, algorithms=["EdDSA"], audience=client_id, options={"require": ["aud"]}
        )
        jwt_rules.check_numeric_dates(claims)
    except (jwt.PyJWTError, InvalidInput) as e:
        raise _refuse("the event does not verify for this institution") from e
    return claims
