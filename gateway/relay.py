"""THE relay: an institution's call about an enterprise another node holds is forwarded
to that node here, in one ``before_request`` hook, and nowhere else (docs/network.md).

Invariants:
- only the calls of ``RELAYABLE`` are relayed (consent requests and reads, report,
  grade, verify, score, batch score), only for an authenticated institution of this
  node, and only when the enterprise's division code routes to an active peer
  (``nodes.core.route``: longest prefix wins); everything else is handled locally,
  so an instance that is no node behaves exactly as before;
- the relay is logged in THIS node's audit log (operation ``relay``, decision
  ``relayed:<peer>``) and committed BEFORE anything is forwarded (fail closed); the
  answer carries the holding node's ``audit_index`` and this node's
  ``relay_audit_index``;
- the relaying node forwards the institution's own request body byte for byte: it sees
  no more than the institution does, and the grant (issued by the holding node to
  ``node:<this node>/<institution>``) is checked by the holding node alone;
- at the holding node a relayed call is dispatched as the institution
  ``node:<sender>/<institution>`` through the ordinary route, so the one enforcement
  point (``gateway.enforce``) checks, logs and answers it like any other; a relayed call
  is never relayed again (one hop).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
from flask import Flask, Response, current_app, g, request
from sqlalchemy.exc import SQLAlchemyError

from audit.errors import AuditUnavailable
from common import json_input
from common import uscc as uscc_rules
from common.db import read_connection, write_session
from common.errors import Error
from common.logging import get_logger
from gateway import request_ids
from gateway.auth import Principal, current_principal
from gateway.services import Services, services
from nodes import core
from nodes import store as node_store
from nodes.delivery import ASSERTION_HEADER, NodeOutbox
from nodes.errors import (
    NodeAssertionInvalid,
    NodeAssertionReplayed,
    NodeSuspended,
    NodeUnknown,
    PeerUnreachable,
    RegionNotServed,
    RelayRefused,
)
from registry import INSTITUTION_ID

log = get_logger("gateway.relay")
RELAY_PATH = "/v1/node/relay"
_DIRECTORY_SECONDS = 1.0

# (method, path pattern, where the enterprise is named)
RELAYABLE: tuple[tuple[str, re.Pattern[str], str], ...] = (
    ("GET", re.compile(r"^/v1/enterprises/(?P<uscc>[^/]{1,40})/(report|grade)$"), "path"),
    ("POST", re.compile(r"^/v1/verify$"), "grant"),
    ("POST", re.compile(r"^/v1/score$"), "grant"),
    ("POST", re.compile(r"^/v1/score/batch$"), "grants"),
    ("POST", re.compile(r"^/v1/consents$"), "enterprise"),
    ("GET", re.compile(r"^/v1/consents/(?P<consent>[A-Za-z0-9_-]{1,40})$"), "consent"),
    # Calls about no enterprise, for scoring at the holding node: the institution names
    # the node (``X-Xinyi-Node``), as it learnt it from the enterprise's division code.
    ("POST", re.compile(r"^/v1/contexts$"), "node"),
    ("GET", re.compile(r"^/v1/models$"), "node"),
    ("GET", re.compile(r"^/v1/models/(?P<model>[^/]{1,200})$"), "node"),
)
NODE_HEADER = "X-Xinyi-Node"


def relayable(method: str, path: str) -> tuple[str, re.Match[str]] | None:
    for m, pattern, where in RELAYABLE:
        if method == m:
            found = pattern.match(path)
            if found is not None:
                return where, found
    return None


def _grant_subject(grant: Any) -> str | None:
    if not isinstance(grant, str) or len(grant) > 8192:
        return None
    try:
        claims = jwt.decode(grant, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    sub = claims.get("sub") if isinstance(claims, dict) else None
    return sub if isinstance(sub, str) and len(sub) == 18 else None


def enterprises_named(where: str, found: re.Match[str], body: bytes) -> list[str] | None:
    """The valid USCCs a relayable call is about (None: it names none, e.g. a consent
    id). An invalid one is never routed: the local route refuses it with its code, and
    no made-up string reaches an audit entry."""
    named = _named(where, found, body)
    return None if named is None else [u for u in named if uscc_rules.is_valid(u)]


def _named(where: str, found: re.Match[str], body: bytes) -> list[str] | None:
    if where == "path":
        return [found["uscc"]]
    if where in ("consent", "node"):
        return None
    try:
        data = json_input.loads(body) if body else None
    except Error:
        return []
    if not isinstance(data, dict):
        return []
    if where == "enterprise":
        named = data.get("enterprise")
        return [named] if isinstance(named, str) else []
    if where == "grant":
        sub = _grant_subject(data.get("grant"))
        return [sub] if sub else []
    grants = data.get("grants")
    if not isinstance(grants, list):
        return []
    return [s for s in (_grant_subject(x) for x in grants) if s]


@dataclass
class Directory:
    """This node's identity and peers, re-read at most once a second (routing only:
    authenticating a peer always reads the store, so a suspension holds at once)."""

    services: Services
    _at: float = -1e9
    _own: core.NodeIdentity | None = None
    _peers: tuple[core.Peer, ...] = ()
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def current(self) -> tuple[core.NodeIdentity | None, tuple[core.Peer, ...]]:
        now = time.monotonic()
        if now - self._at > _DIRECTORY_SECONDS:
            with read_connection(self.services.engine) as c:
                own, peers = node_store.identity(c), tuple(node_store.peers(c))
            with self._lock:
                self._own, self._peers, self._at = own, peers, now
        return self._own, self._peers


@dataclass
class Network:
    """The node side of one gateway process: directory, signer, outbox, HTTP client."""

    services: Services
    directory: Directory
    outbox: NodeOutbox
    client: httpx.Client
    pool: ThreadPoolExecutor  # writes relay entries while the holding node answers
    vouched: set[str] = field(default_factory=set)  # relayed institutions seen recorded

    def sign(self, claims: Mapping[str, Any]) -> str:
        return self.services.keys.sign_jwt("nodes", claims, headers={"typ": core.TYP_NODE})


def network() -> Network:
    return current_app.extensions["xinyi_nodes"]  # type: ignore[no-any-return]


def init_app(app: Flask, *, background: bool) -> None:
    svc: Services = app.extensions["xinyi"]
    cfg = svc.settings.config.nodes
    net = Network(
        services=svc,
        directory=Directory(svc),
        outbox=NodeOutbox(
            svc.settings,
            svc.engine,
            lambda claims: svc.keys.sign_jwt("nodes", claims, headers={"typ": core.TYP_NODE}),
        ),
        # Kept-alive connections to peers: a relayed call costs no new TCP handshake.
        client=httpx.Client(
            timeout=cfg.relay_timeout_seconds, follow_redirects=False, trust_env=False
        ),
        pool=ThreadPoolExecutor(
            max_workers=svc.settings.config.server.threads, thread_name_prefix="relay-index"
        ),
    )
    app.extensions["xinyi_nodes"] = net
    app.before_request(_relay_hook)
    # The node loops poll the database twice a second per worker: only on an instance
    # that is a node (``xinyi node init`` before serving, or a reload after it).
    if background and _is_node(svc):
        from gateway.node_up import forward_overdue_objections

        svc._spawn("node-outbox", net.outbox.deliver_due, cfg.delivery_interval_seconds)
        from gateway.node_webhooks import forward_relayed_events

        svc._spawn(
            "node-up", lambda: forward_overdue_objections(svc.engine), cfg.forward_interval_seconds
        )
        # Consent events of relayed institutions, to their own node (docs/network.md).
        svc._spawn(
            "node-webhooks",
            lambda: forward_relayed_events(svc.engine),
            cfg.delivery_interval_seconds,
        )


def _is_node(svc: Services) -> bool:
    with read_connection(svc.engine) as conn:
        return node_store.identity(conn) is not None


# The relaying side -------------------------------------------------------------------
def _relay_hook() -> Response | None:
    if g.get("relayed_by") is not None:
        return None  # a relayed call at the holding node: handled here (one hop)
    target = relayable(request.method, request.path)
    if target is None or not request.headers.get("Authorization"):
        return None
    net = network()
    own, peers = net.directory.current()
    if own is None or not peers:
        return None
    where, found = target
    principal = current_principal()
    if principal.kind != "institution":
        return None
    body = request.get_data(cache=True)
    held = _holding_peer(net, own, peers, where, found, body, principal)
    if held is None:
        return None
    return _forward(net, own, held[0], principal, body, held[1])


def _holding_peer(
    net: Network,
    own: core.NodeIdentity,
    peers: tuple[core.Peer, ...],
    where: str,
    found: re.Match[str],
    body: bytes,
    principal: Principal,
) -> tuple[core.Peer, str | None] | None:
    """The peer holding the enterprise(s) of this call and the one enterprise named (if
    exactly one), or None when this node answers itself."""
    if where == "node":
        name = request.headers.get(NODE_HEADER)
        if not name:
            return None  # this node's own contexts and models
        named_peer = next((p for p in peers if p.name == name), None)
        if named_peer is None:
            raise RelayRefused(f"{NODE_HEADER}: {name[:40]!r} is not a peer of this node")
        return _usable(named_peer), None
    named = enterprises_named(where, found, body)
    if named is None:  # a consent read: where was it requested?
        with read_connection(net.services.engine) as c:
            name = node_store.relayed_consent_peer(c, found["consent"], principal.id)
        held = next((p for p in peers if p.name == name), None)
        return None if held is None else (_usable(held), None)
    routed = [core.route(core.division_code(u), own, peers) for u in named]
    if len({p.name if p else None for p in routed}) > 1:
        raise RelayRefused(
            "the enterprises of one batch must be held by one node: send one batch per node"
        )
    target = routed[0] if routed else None
    if target is None:
        return None
    return _usable(target), (named[0] if len(set(named)) == 1 else None)


def _usable(peer: core.Peer) -> core.Peer:
    if not peer.active:
        raise NodeSuspended(
            f"node {peer.name!r} holds this enterprise and is suspended (AH 11; JS 4)"
        )
    return peer


def _forward(
    net: Network,
    own: core.NodeIdentity,
    peer: core.Peer,
    principal: Principal,
    body: bytes,
    enterprise: str | None,
) -> Response:
    svc = net.services
    # A's entry of the relay is written while B answers (the two overlap instead of
    # adding up); the answer is served only once the entry has its place in A's log
    # (fail closed: AuditUnavailable is a 503 and nothing is served).
    entry: dict[str, Any] = {
        **request_ids.for_entry(),
        "time": int(time.time()),
        "institution": principal.id,
        "enterprise": enterprise,
        "departments": [],
        "categories": [],
        "features": [],
        "operation": "relay",
        "grant_id": None,
        "model_id": None,
        "decision": f"relayed:{peer.name}",
    }
    placed = net.pool.submit(_log_relay, svc, entry)
    cfg = svc.settings.config.nodes
    query = request.query_string.decode("latin-1")
    claims = core.assertion_claims(
        sender=own.name,
        audience=peer.url + RELAY_PATH,
        body=body,
        now=int(time.time()),
        lifetime=cfg.assertion_max_seconds // 2,
        institution=principal.id,
        method=request.method,
        path=request.path,
        query=query,
    )
    headers = {
        ASSERTION_HEADER: net.sign(claims),
        "Content-Type": "application/octet-stream",
        "X-Request-Id": str(g.get("request_id", "")),
    }
    try:
        resp = net.client.post(peer.url + RELAY_PATH, content=body, headers=headers)
    except httpx.HTTPError as e:
        log.warning("relay_failed", peer=peer.name, error=type(e).__name__)
        placed.result()  # the attempt is logged all the same
        raise PeerUnreachable(
            f"the node holding this enterprise ({peer.name}) did not answer; nothing served"
        ) from e
    relay_index = placed.result()
    try:
        answer = resp.json()
    except ValueError:
        answer = None
    if isinstance(answer, dict):
        answer["relay_audit_index"] = relay_index
        if request.path == "/v1/consents" and resp.status_code == 201 and "id" in answer:
            node_store.remember_relayed_consent(
                svc.engine, peer.name, str(answer["id"]), principal.id, int(time.time())
            )
        content = json.dumps(answer, ensure_ascii=False).encode("utf-8")
        out = Response(content, status=resp.status_code, mimetype="application/json")
    else:
        out = Response(
            resp.content, status=resp.status_code, content_type=resp.headers.get("Content-Type")
        )
    log.info("relayed", peer=peer.name, path=request.path, status=resp.status_code)
    return out


def _log_relay(svc: Services, entry: Mapping[str, Any]) -> int:
    """Write the relay's entry in this node's log; its final index."""
    try:
        with write_session(svc.engine) as s:
            queue_id = svc.audit.enqueue(s, entry)
    except SQLAlchemyError as e:
        raise AuditUnavailable("the audit log cannot record this relay; nothing served") from e
    return int(svc.audit.await_index(queue_id, svc.settings.config.audit.integrate_wait_seconds))


# The holding side --------------------------------------------------------------------
def authenticate_peer(
    audience_path: str, body: bytes
) -> tuple[core.Peer, dict[str, Any], core.NodeIdentity, list[core.Peer]]:
    """The peer that signed this request's node assertion, and its claims; refuses an
    unknown node, a bad assertion, a replayed one and a suspended child."""
    svc = services()
    token = request.headers.get(ASSERTION_HEADER, "")
    if not token:
        raise NodeAssertionInvalid(f"a node call carries its assertion in {ASSERTION_HEADER}")
    issuer = core.unverified_issuer(token)
    with read_connection(svc.engine) as c:
        own = node_store.identity(c)
        peers = node_store.peers(c)
    peer = next((p for p in peers if p.name == issuer), None)
    if own is None or peer is None:
        raise NodeUnknown(f"node {issuer!r} is not a peer of this node")
    claims = core.verify_assertion(
        token,
        peer,
        audience=svc.issuer + audience_path,
        body=body,
        now=time.time(),
        max_seconds=svc.settings.config.nodes.assertion_max_seconds,
    )
    if not peer.active:
        raise NodeSuspended(f"node {peer.name!r} is suspended by this node (AH 11; JS 4)")
    key, exp = core.replay_key(claims)
    if not svc.registry.use_assertion(key, exp, durable=False):
        raise NodeAssertionReplayed("this node assertion was used before")
    return peer, claims, own, peers


def receive_relay() -> Response:
    """``POST /v1/node/relay`` at the holding node: dispatch the institution's call."""
    body = request.get_data(cache=True)
    peer, claims, own, peers = authenticate_peer(RELAY_PATH, body)
    institution, method, path = claims.get("institution"), claims.get("method"), claims.get("path")
    query = claims.get("query", "")
    if not isinstance(institution, str) or not INSTITUTION_ID.match(institution):
        raise NodeAssertionInvalid("the node assertion names no valid institution")
    if not isinstance(method, str) or not isinstance(path, str) or not isinstance(query, str):
        raise NodeAssertionInvalid("the node assertion names no call (method, path, query)")
    target = relayable(method, path)
    if target is None:
        raise RelayRefused("that call is not relayed between nodes")
    svc = services()
    named = enterprises_named(*target, body)
    for uscc in named or []:
        if not core.serves(core.division_code(uscc), own, peers):
            raise RegionNotServed(
                f"node {own.name!r} does not hold enterprises of that division code "
                "(one hop only: ask the node that does)"
            )
    relayed_id = core.relayed_institution(peer.name, institution)
    vouched = network().vouched
    if relayed_id not in vouched:  # once recorded it stays (its status is the store's)
        svc.registry.vouched_institution(
            relayed_id, name=f"{institution} @ {peer.name}", jwk=dict(peer.jwk)
        )
        vouched.add(relayed_id)
    return _dispatch(method, path, query, body, relayed_id, peer.name)


def _dispatch(
    method: str, path: str, query: str, body: bytes, institution: str, sender: str
) -> Response:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    outer_id = g.get("request_id")
    # Every relayable call with a body takes JSON (RELAYABLE).
    headers = {"Content-Type": "application/json"} if body else {}
    # A fresh application context: the inner request has its own ``g``.
    with (
        app.app_context(),
        app.test_request_context(
            path, method=method, query_string=query, data=body, headers=headers
        ),
    ):
        g.principal = Principal(kind="institution", id=institution)
        g.relayed_by = sender
        resp: Response = app.full_dispatch_request()
        if outer_id:
            resp.headers["X-Request-Id"] = str(outer_id)
        return resp
