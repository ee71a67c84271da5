"""The only place that maps project errors to HTTP: ``{"error": CODE, "message": TEXT}``."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, g, jsonify
from sqlalchemy.exc import InterfaceError, OperationalError, ProgrammingError
from werkzeug.exceptions import HTTPException

from common import errors
from common.logging import get_logger

log = get_logger("gateway.errors")

# SQLSTATE of PostgreSQL's "permission denied" (insufficient_privilege).
INSUFFICIENT_PRIVILEGE = "42501"

STATUS: tuple[tuple[type[errors.Error], int], ...] = (
    (errors.InvalidInput, 400),
    (errors.AuthenticationFailed, 401),
    (errors.Forbidden, 403),
    (errors.NotFound, 404),
    (errors.Conflict, 409),
    (errors.TooLarge, 413),
    (errors.RateLimited, 429),
    (errors.Unavailable, 503),
)

# Details that are safe to return to the caller (never values, never internals).
PUBLIC_DETAILS = (
    "field",
    "audit_index",
    "feature",
    "categories",
    "max_uses",
    "rejects",
    "line",
    "column",
    "left",
    "budget",
    "retry_after",
)


# The longest message and public detail an answer carries. Messages quote a caller's
# value through ``errors.shown``; this bounds any that does not (a library's text).
MESSAGE_MAX = 300
DETAIL_MAX = 120


def status_for(error: errors.Error) -> int:
    for kind, status in STATUS:
        if isinstance(error, kind):
            return status
    return 500


def error_response(error: errors.Error) -> tuple[Response, int]:
    body: dict[str, Any] = {
        "error": error.code,
        "message": errors.bounded(error.message, MESSAGE_MAX),
    }
    body.update(
        {
            k: errors.bounded(v, DETAIL_MAX) if isinstance(v, str) else v
            for k, v in error.details.items()
            if k in PUBLIC_DETAILS
        }
    )
    status = status_for(error)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    retry_after = error.details.get("retry_after")
    if status == 429 and isinstance(retry_after, int):
        headers["Retry-After"] = str(retry_after)
    resp = jsonify(body)
    resp.headers.update(headers)
    return resp, status


def init_app(app: Flask) -> None:
    @app.errorhandler(errors.Error)
    def _project_error(e: errors.Error) -> tuple[Response, int]:
        status = status_for(e)
        log.info(
            "request_refused" if status < 500 else "request_failed",
            code=e.code,
            status=status,
            request_id=g.get("request_id"),
        )
        return error_response(e)

    @app.errorhandler(HTTPException)
    def _http_error(e: HTTPException) -> tuple[Response, int]:
        code = {
            400: "bad_request",
            404: "not_found",
            405: "method_not_allowed",
            413: "too_large",
            415: "unsupported_media_type",
        }.get(e.code or 500, "http_error")
        resp = jsonify({"error": code, "message": e.description or e.name})
        return resp, e.code or 500

    @app.errorhandler(OperationalError)
    @app.errorhandler(InterfaceError)
    def _database_unavailable(e: Exception) -> tuple[Response, int]:
        # The database is unreachable (restarting, connection lost): nothing was served
        # and the request may be retried. Any other database error is a bug (500).
        log.warning(
            "database_unavailable", request_id=g.get("request_id"), error_type=type(e).__name__
        )
        body = {"error": "database_unavailable", "message": "the database is unavailable; retry"}
        return jsonify(body), 503

    @app.errorhandler(ProgrammingError)
    def _database_refused(e: ProgrammingError) -> tuple[Response, int]:
        if getattr(e.orig, "sqlstate", None) != INSUFFICIENT_PRIVILEGE:
            return _unexpected(e)
        # The gateway's login lacks a privilege (a role set up by hand, a table added
        # without `xinyi db roles`): nothing was served, and every request touching that
        # table fails the same way until the operator fixes the roles; /readyz names the
        # privilege. The driver's message names the table, never a value: log it, but
        # do not show the caller the schema.
        log.error(
            "database_privilege_missing",
            request_id=g.get("request_id"),
            detail=str(e.orig).splitlines()[0][:200],
        )
        body = {
            "error": "database_privilege_missing",
            "message": "the gateway's database login lacks a privilege; the operator must "
            "run `xinyi db roles` (see /readyz)",
        }
        return jsonify(body), 503

    @app.errorhandler(Exception)
    def _unexpected(e: Exception) -> tuple[Response, int]:
        log.exception(
            "unhandled_error", request_id=g.get("request_id"), error_type=type(e).__name__
        )
        return jsonify({"error": "internal_error", "message": "internal error"}), 500
