"""Audit log endpoints (CONTRACT.md "Audit log"), plus what witnesses need.

Who sees what: a department the entries that touch its data, an enterprise the entries
about itself, an institution its own, the operator all. Of an entry, a department is
shown only its own part opened, the other departments' parts and the grant and model
ids as salted commitments, from which it still recomputes the leaf hash; the others are
shown everything (``audit/entry.py``, ``docs/audit.md``). Checkpoints, the verifier key,
consistency proofs and leaf hashes are public: they reveal no entry (entries are
salted), and witnesses and outside verifiers need them without an account. A
cosignature authenticates itself: it must verify under a registered witness key.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response

from audit.note import b64
from audit.service import AuditLog
from audit.store import Viewer
from gateway.api import schemas
from gateway.auth import Principal, authenticated, current_principal
from gateway.contract import operation
from gateway.services import services

bp = Blueprint("audit", __name__)
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


def _b64(hashes: list[bytes]) -> list[str]:
    return [b64(h) for h in hashes]


@bp.get("/v1/audit/checkpoint")
@operation(
    "The newest signed checkpoint (C2SP tlog-checkpoint, signed note) with its witness "
    "cosignatures; ?size= for an older one",
    tag="audit",
    query=schemas.CheckpointQuery,
    answer_media="text/plain",
)
def checkpoint(query: schemas.CheckpointQuery) -> Response:
    size = query.size
    log = _log()
    signed = log.latest_checkpoint() if size is None else log.checkpoint_at(size)
    return Response(signed.text(), content_type=TEXT)


@bp.get("/v1/audit/vkey")
@operation("The log's C2SP verifier key", tag="audit", answer_media="text/plain")
def vkey() -> Response:
    return Response(_log().vkey() + "\n", content_type=TEXT)


@bp.get("/v1/audit/key-transitions")
@operation(
    "Signed checkpoint-key transitions (the old key signs the new vkey and the size from "
    "which it applies)",
    tag="audit",
    answer=schemas.KeyTransitions,
)
def key_transitions() -> dict[str, Any]:
    """The log's checkpoint-key changes, each signed by the old and the new key: a
    witness that pinned an older key follows them (``xinyi audit witness``)."""
    return {"transitions": services().keys.transitions()}


@bp.get("/v1/audit/witnesses")
@operation(
    "Registered witness keys (cosignature/v1 vkeys) by department",
    tag="audit",
    answer=schemas.Witnesses,
)
def witnesses() -> dict[str, Any]:
    return {"witnesses": _log().witnesses()}


@bp.post("/v1/audit/cosignatures")
@operation(
    "A witness's cosignature of a checkpoint (C2SP tlog-cosignature line)",
    tag="audit",
    body=schemas.Cosignature,
    answer=schemas.Cosigned,
    status=201,
)
def cosign(body: schemas.Cosignature) -> tuple[dict[str, Any], int]:
    size, line = body.size, body.cosignature
    department = _log().add_cosignature(size, line)
    return {"size": size, "department": department}, 201


@bp.get("/v1/audit/entries")
@authenticated(*VIEWERS)
@operation(
    "Entries visible to the caller after index `after` (a department: its own part of "
    "each, the rest as commitments; see docs/audit.md)",
    tag="audit",
    query=schemas.EntriesQuery,
    answer=schemas.Entries,
)
def entries(query: schemas.EntriesQuery) -> dict[str, Any]:
    after, limit = query.after, query.limit
    views, nxt = _log().entries(_viewer(current_principal()), after, limit)
    return {"entries": [v.as_json() for v in views], "next": nxt}


@bp.get("/v1/audit/entries/<int:index>")
@authenticated(*VIEWERS)
@operation("One entry visible to the caller", tag="audit", answer=schemas.Entry)
def entry(index: int) -> dict[str, Any]:
    return _log().entry(_viewer(current_principal()), index).as_json()


@bp.get("/v1/audit/proof/inclusion")
@authenticated(*VIEWERS)
@operation(
    "RFC 9162 inclusion proof of a visible entry (size: default the newest checkpoint's)",
    tag="audit",
    query=schemas.InclusionQuery,
    answer=schemas.InclusionProof,
)
def inclusion(query: schemas.InclusionQuery) -> dict[str, Any]:
    index, size = query.index, query.size
    size, proof = _log().inclusion_proof(_viewer(current_principal()), index, size)
    return {"index": index, "size": size, "hashes": _b64(proof)}


@bp.get("/v1/audit/proof/consistency")
@operation(
    "RFC 9162 consistency proof between two tree sizes",
    tag="audit",
    query=schemas.ConsistencyQuery,
    answer=schemas.ConsistencyProof,
)
def consistency(query: schemas.ConsistencyQuery) -> dict[str, Any]:
    first, second = query.first, query.second
    return {
        "first": first,
        "second": second,
        "hashes": _b64(_log().consistency_proof(first, second)),
    }


@bp.get("/v1/audit/leaves")
@operation(
    "Leaf hashes of entries [start, end), 32 raw bytes each",
    tag="audit",
    query=schemas.LeavesQuery,
    answer_media="application/octet-stream",
)
def leaves(query: schemas.LeavesQuery) -> Response:
    """Leaf hashes of entries [start, end), 32 bytes each, recomputed from the stored
    entries: a witness audits them against the signed root."""
    start, end = query.start, query.end
    return Response(b"".join(_log().leaf_hashes(start, end)), mimetype="application/octet-stream")
