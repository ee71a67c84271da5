"""Request ids: the server's own for every request, the caller's kept apart.

Invariants:
- ``g.request_id`` is generated here for every request (96 random bits, hex); it is the
  id in the logs, in the ``X-Request-Id`` response header and in every audit entry. A
  caller can never choose it, so no caller can make two entries share one or make an
  entry look like another's;
- the caller's ``X-Request-Id`` is kept as ``g.client_request_id`` only when it is 1 to
  64 characters of ``A-Z a-z 0-9 . _ : -`` (otherwise dropped), logged and recorded in
  the audit entry as ``client_request_id``: a label the caller chose, trusted for
  nothing.
"""

from __future__ import annotations

import re
import secrets

import structlog
from flask import Flask, g, request

CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def client_request_id(header: str | None) -> str | None:
    """The caller's request id when it is short and plain, else None."""
    if header is None or not CLIENT_REQUEST_ID.fullmatch(header):
        return None
    return header


def for_entry() -> dict[str, str]:
    """The request id fields of an audit entry written for the current request."""
    ids = {"request_id": g.get("request_id") or secrets.token_hex(12)}
    given = g.get("client_request_id")
    if given:
        ids["client_request_id"] = given
    return ids


def init_app(app: Flask) -> None:
    @app.before_request
    def _request_id() -> None:
        g.request_id = secrets.token_hex(12)
        g.client_request_id = client_request_id(request.headers.get("X-Request-Id"))
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(
            request_id=g.request_id, client_request_id=g.client_request_id
        )

    @app.teardown_request
    def _forget_request_id(_error: BaseException | None) -> None:
        structlog.contextvars.clear_contextvars()
