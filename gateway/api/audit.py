"""Audit log endpoints (CONTRACT.md "Audit log"), plus what witnesses need.

Who sees what: a department the entries that touch its data, an enterprise the entries
about itself, an institution its own, the operator all. Checkpoints, the verifier key,
consistency proofs and leaf hashes are public: they reveal no entry (entries are
salted), and witnesses and outside verifiers need them without an account. A
cosignature authenticates itself: it must verify under a registered witness key.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request

from audit.note import b64
from audit.service import AuditLog
from audit.store import Viewer
from common.errors import InvalidInput
from gateway import openapi
from gateway.api.consent import json_body
from gateway.auth import Principal, authenticated, current_principal
from gateway.services import services

bp = Blueprint("audit", __name__)
# Sizes and indices are 64-bit in the store: a larger number is bad input, not a crash.
MAX_INDEX = 2**63 - 1
TEXT = "text/plain; charset=utf-8"
VIEWERS = ("department", "enterprise", "institution", "operator")


def _log() -> AuditLog:
    return services().audit


def _viewer(p: Principal) -> Viewer:
    if p.kind == "department":
        return Viewer("department", p.department or p.id)
    if p.kind == "enterprise":
        return Viewer("enterprise", p.uscc or p.id)
    return Viewer(p.kind, p.id)


def _int(name: str, default: int | None = None, *, minimum: int = 0) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        if default is None:
            raise InvalidInput(
                f"query parameter {name!r} is required", code="invalid_query", field=name
            )
        return default
    try:
        value = int(raw)
    except ValueError as e:
        raise InvalidInput(f"{name} must be an integer", code="invalid_query", field=name) from e
    if value < minimum:
        raise InvalidInput(f"{name} must be at least {minimum}", code="invalid_query", field=name)
    if value > MAX_INDEX:
        raise InvalidInput(f"{name} must be below 2**63", code="invalid_query", field=name)
    return value


def _b64(hashes: list[bytes]) -> list[str]:
    return [b64(h) for h in hashes]


@bp.get("/v1/audit/checkpoint")
def checkpoint() -> Response:
    size = request.args.get("size")
    log = _log()
    signed = log.latest_checkpoint() if size is None else log.checkpoint_at(_int("size"))
    return Response(signed.text(), content_type=TEXT)


@bp.get("/v1/audit/vkey")
def vkey() -> Response:
    return Response(_log().vkey() + "\n", content_type=TEXT)


@bp.get("/v1/audit/key-transitions")
def key_transitions() -> dict[str, Any]:
    """The log's checkpoint-key changes, each signed by the old and the new key: a
    witness that pinned an older key follows them (``xinyi audit witness``)."""
    return {"transitions": services().keys.transitions()}


@bp.get("/v1/audit/witnesses")
def witnesses() -> dict[str, Any]:
    return {"witnesses": _log().witnesses()}


@bp.post("/v1/audit/cosignatures")
def cosign() -> tuple[dict[str, Any], int]:
    body = json_body()
    size, line = body.get("size"), body.get("cosignature")
    if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= MAX_INDEX:
        raise InvalidInput("size: the checkpoint size cosigned", code="invalid_json", field="size")
    if not isinstance(line, str) or len(line) > 1000:
        raise InvalidInput(
            "cosignature: one signature line '— <name> <base64>'",
            code="invalid_json",
            field="cosignature",
        )
    department = _log().add_cosignature(size, line)
    return {"size": size, "department": department}, 201


@bp.get("/v1/audit/entries")
@authenticated(*VIEWERS)
def entries() -> dict[str, Any]:
    after = _int("after", -1, minimum=-1)
    limit = _int("limit", 100, minimum=1)
    views, nxt = _log().entries(_viewer(current_principal()), after, limit)
    return {"entries": [v.as_json() for v in views], "next": nxt}


@bp.get("/v1/audit/entries/<int:index>")
@authenticated(*VIEWERS)
def entry(index: int) -> dict[str, Any]:
    return _log().entry(_viewer(current_principal()), index).as_json()


@bp.get("/v1/audit/proof/inclusion")
@authenticated(*VIEWERS)
def inclusion() -> dict[str, Any]:
    index = _int("index")
    size = _int("size") if request.args.get("size") else None
    size, proof = _log().inclusion_proof(_viewer(current_principal()), index, size)
    return {"index": index, "size": size, "hashes": _b64(proof)}


@bp.get("/v1/audit/proof/consistency")
def consistency() -> dict[str, Any]:
    first, second = _int("first"), _int("second")
    return {
        "first": first,
        "second": second,
        "hashes": _b64(_log().consistency_proof(first, second)),
    }


@bp.get("/v1/audit/leaves")
def leaves() -> Response:
    """Leaf hashes of entries [start, end), 32 bytes each, recomputed from the stored
    entries: a witness audits them against the signed root."""
    start, end = _int("start"), _int("end")
    return Response(b"".join(_log().leaf_hashes(start, end)), mimetype="application/octet-stream")


# OpenAPI -----------------------------------------------------------------------------------

_S = openapi.S
_ENTRY: _S = openapi._obj(
    {"index": openapi.INT, "entry": {"type": "object"}, "leaf_hash": openapi.STR},
    ["index", "entry", "leaf_hash"],
)
_HASHES: _S = {"type": "array", "items": openapi.STR}
_VIEWER_SECURITY = "any"


def _q(name: str, required: bool = False) -> _S:
    return openapi._query(name, openapi.INT, required)


openapi.add_paths(
    {
        "/v1/audit/checkpoint": {
            "get": openapi._op(
                "The newest signed checkpoint (C2SP tlog-checkpoint, signed note) with its "
                "witness cosignatures; ?size= for an older one",
                tag="audit",
                security="none",
                text=True,
                params=[_q("size")],
            )
        },
        "/v1/audit/vkey": {
            "get": openapi._op(
                "The log's C2SP verifier key", tag="audit", security="none", text=True
            )
        },
        "/v1/audit/key-transitions": {
            "get": openapi._op(
                "Signed checkpoint-key transitions (old key signs the new vkey and the "
                "size from which it applies)",
                tag="audit",
                security="none",
            )
        },
        "/v1/audit/witnesses": {
            "get": openapi._op(
                "Registered witness keys (cosignature/v1 vkeys) by department",
                tag="audit",
                security="none",
            )
        },
        "/v1/audit/cosignatures": {
            "post": openapi._op(
                "A witness's cosignature of a checkpoint (C2SP tlog-cosignature line)",
                tag="audit",
                security="none",
                ok_status="201",
                body=openapi._obj(
                    {"size": openapi.INT, "cosignature": openapi.STR}, ["size", "cosignature"]
                ),
                ok=openapi._obj({"size": openapi.INT, "department": openapi.STR}),
            )
        },
        "/v1/audit/entries": {
            "get": openapi._op(
                "Entries visible to the caller after index `after`",
                tag="audit",
                security=_VIEWER_SECURITY,
                params=[_q("after"), _q("limit")],
                ok=openapi._obj(
                    {
                        "entries": {"type": "array", "items": _ENTRY},
                        "next": {"type": ["integer", "null"]},
                    },
                    ["entries", "next"],
                ),
            )
        },
        "/v1/audit/entries/{index}": {
            "get": openapi._op(
                "One entry visible to the caller",
                tag="audit",
                security=_VIEWER_SECURITY,
                params=[openapi._path_param("index", openapi.INT)],
                ok=_ENTRY,
            )
        },
        "/v1/audit/proof/inclusion": {
            "get": openapi._op(
                "RFC 9162 inclusion proof of a visible entry (size: default the newest "
                "checkpoint's)",
                tag="audit",
                security=_VIEWER_SECURITY,
                params=[_q("index", True), _q("size")],
                ok=openapi._obj(
                    {"index": openapi.INT, "size": openapi.INT, "hashes": _HASHES},
                    ["index", "size", "hashes"],
                ),
            )
        },
        "/v1/audit/proof/consistency": {
            "get": openapi._op(
                "RFC 9162 consistency proof between two tree sizes",
                tag="audit",
                security="none",
                params=[_q("first", True), _q("second", True)],
                ok=openapi._obj(
                    {"first": openapi.INT, "second": openapi.INT, "hashes": _HASHES},
                    ["first", "second", "hashes"],
                ),
            )
        },
        "/v1/audit/leaves": {
            "get": {
                "summary": "Leaf hashes of entries [start, end), 32 raw bytes each",
                "tags": ["audit"],
                "parameters": [_q("start", True), _q("end", True)],
                "responses": {
                    "200": {
                        "description": "OK",
                        "content": {"application/octet-stream": {"schema": {"type": "string"}}},
                    },
                    "default": {"description": "error", **openapi._json(openapi.ERROR)},
                },
            }
        },
    }
)
