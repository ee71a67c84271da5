"""The OpenAPI 3.1 document served at ``/openapi.json``.

Kept as data beside the routes; a test checks that every route the app registers is
documented here and every documented path exists, so the two cannot drift apart.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify

bp = Blueprint("openapi", __name__)

S = dict[str, Any]


def _obj(props: S, required: list[str] | None = None, extra: bool = False) -> S:
    out: S = {"type": "object", "properties": props, "additionalProperties": extra}
    if required:
        out["required"] = required
    return out


STR: S = {"type": "string"}
INT: S = {"type": "integer"}
USCC: S = {
    "type": "string",
    "pattern": "^[0-9A-HJ-NP-RTUWXY]{18}$",
    "description": "统一社会信用代码 (GB 32100-2015)",
}
STR_LIST: S = {"type": "array", "items": STR}
ERROR: S = _obj({"error": STR, "message": STR}, ["error", "message"], extra=True)

CONSENT: S = _obj(
    {
        "id": STR,
        "status": STR,
        "enterprise": USCC,
        "institution": STR,
        "purpose": STR,
        "ops": STR_LIST,
        "categories": STR_LIST,
        "expires_at": {"type": ["integer", "null"]},
        "uses": INT,
        "max_uses": INT,
        "grant": {"type": ["string", "null"]},
    },
    extra=True,
)


def _json(schema: S) -> S:
    return {"content": {"application/json": {"schema": schema}}}


def _op(
    summary: str,
    *,
    tag: str,
    body: S | None = None,
    ok: S | None = None,
    ok_status: str = "200",
    params: list[S] | None = None,
    security: str = "bearer",
    text: bool = False,
) -> S:
    op: S = {
        "summary": summary,
        "tags": [tag],
        "responses": {
            ok_status: (
                {"description": "OK", "content": {"text/plain": {"schema": STR}}}
                if text
                else {"description": "OK", **_json(ok or {"type": "object"})}
            ),
            "default": {"description": "error", **_json(ERROR)},
        },
    }
    if body is not None:
        op["requestBody"] = {"required": True, **_json(body)}
    if params:
        op["parameters"] = params
    if security == "bearer":
        op["security"] = [{"bearer": []}]
    elif security == "any":
        op["security"] = [{"bearer": []}, {"session": []}]
    elif security == "session":
        op["security"] = [{"session": []}]
    return op


def _path_param(name: str, schema: S | None = None) -> S:
    return {"name": name, "in": "path", "required": True, "schema": schema or STR}


def _query(name: str, schema: S, required: bool = False) -> S:
    return {"name": name, "in": "query", "required": required, "schema": schema}


PATHS: S = {
    "/oauth/token": {
        "post": {
            "summary": "Access token: client_credentials with private_key_jwt (RFC 7523)",
            "tags": ["auth"],
            "requestBody": {
                "required": True,
                "content": {
                    "application/x-www-form-urlencoded": {
                        "schema": _obj(
                            {
                                "grant_type": {"const": "client_credentials"},
                                "client_assertion_type": STR,
                                "client_assertion": STR,
                            },
                            ["grant_type"],
                        )
                    }
                },
            },
            "responses": {
                "200": {
                    "description": "token",
                    **_json(
                        _obj(
                            {"access_token": STR, "token_type": STR, "expires_in": INT}, extra=True
                        )
                    ),
                },
                "default": {"description": "OAuth error", **_json({"type": "object"})},
            },
        }
    },
    "/.well-known/jwks.json": {
        "get": _op(
            "Public signing keys (grants, tokens, checkpoints, events)", tag="auth", security="none"
        )
    },
    "/v1/session": {
        "post": _op(
            "Sign in (enterprise, department, operator users)",
            tag="auth",
            security="none",
            body=_obj({"login": STR, "password": STR}, ["login", "password"]),
        ),
        "get": _op("Who is signed in", tag="auth", security="session"),
        "delete": {
            "summary": "Sign out",
            "tags": ["auth"],
            "responses": {"204": {"description": "signed out"}},
        },
    },
    "/v1/catalog": {
        "get": _op("Departments, purposes, categories and features", tag="catalog", security="any")
    },
    "/v1/consents": {
        "post": _op(
            "Ask an enterprise for consent",
            tag="consent",
            ok_status="201",
            ok=CONSENT,
            body=_obj(
                {
                    "enterprise": USCC,
                    "purpose": STR,
                    "ops": STR_LIST,
                    "categories": STR_LIST,
                    "duration_days": INT,
                    "max_uses": INT,
                },
                ["enterprise", "purpose", "ops", "categories", "duration_days", "max_uses"],
            ),
        ),
        "get": _op(
            "My consents (institution or enterprise)",
            tag="consent",
            security="any",
            params=[_query("status", STR)],
        ),
    },
    "/v1/consents/{consent_id}": {
        "get": _op(
            "One consent",
            tag="consent",
            security="any",
            ok=CONSENT,
            params=[_path_param("consent_id")],
        )
    },
    "/v1/consents/{consent_id}/{action}": {
        "post": _op(
            "Enterprise decision: approve, reject, pause, resume, revoke",
            tag="consent",
            security="session",
            ok=CONSENT,
            params=[
                _path_param("consent_id"),
                _path_param("action", {"enum": ["approve", "reject", "pause", "resume", "revoke"]}),
            ],
        )
    },
    "/v1/webhook": {
        "get": _op("My webhook URL (institution)", tag="consent"),
        "put": _op(
            "Register or remove my webhook URL (signed consent events)",
            tag="consent",
            body=_obj({"url": {"type": ["string", "null"]}}, ["url"]),
        ),
    },
    "/healthz": {"get": _op("Liveness", tag="ops", security="none")},
    "/readyz": {"get": _op("Readiness (database reachable)", tag="ops", security="none")},
    "/openapi.json": {"get": _op("This document", tag="ops", security="none")},
}


def document(extra_paths: S | None = None) -> S:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Xinyi Gateway API",
            "version": "1",
            "description": "Consent, data services under consent, HE joint scoring "
            "and a Merkle audit log for SME credit (信易贷).",
        },
        "paths": {**PATHS, **(extra_paths or {})},
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "session": {"type": "apiKey", "in": "cookie", "name": "xinyi_session"},
            }
        },
    }


EXTRA: S = {}


def add_paths(paths: S) -> None:
    """Areas document their own paths here (called at import of their blueprint)."""
    EXTRA.update(paths)


@bp.get("/openapi.json")
def openapi() -> Response:
    return jsonify(document(EXTRA))
