"""The pure core of the node network: identity, peers, routing, assertions, messages.

Invariants:
- a node is named by a short lowercase name and serves one division-code prefix
  (``32`` Jiangsu, ``320281`` Jiangyin; ``""`` would be the national node); an
  enterprise belongs to the node whose prefix is the LONGEST one matching the 6-digit
  division code in its USCC (characters 3-8, GB 32100), among this node and its peers;
- peers are ``parent`` or ``child``; a child is ``active`` or ``suspended`` (有进有出 for
  nodes, AH 11; JS 4): a suspended peer is refused everything and nothing is routed
  to it;
- nodes authenticate each other with ``private_key_jwt`` style assertions
  (``typ`` ``xinyi-node+jwt``, ``common.jwt_rules``) signed by the node key
  (key purpose ``nodes``): ``iss`` the sender's name, ``aud`` the exact URL called,
  ``exp`` at most ``nodes.assertion_max_seconds`` ahead, a one-time ``jti``, and
  ``body`` the base64url SHA-256 of the exact request body, so an assertion is bound
  to one request and cannot be replayed or re-used for another body;
- a relayed call's assertion names the institution the sending node vouches for
  (``institution``) and the call (``method``, ``path``, ``query``); the receiver treats
  it as the institution ``node:<sender>/<institution>``: grants it issues name that
  id as their audience, so a grant obtained through one node cannot be used through
  another, nor by a local institution of the receiver;
- a message has an id unique at its sender (``<node>:<sequence>``); a receiver acts on a
  message id once (the inbox), so redelivery after a lost answer has no second effect.

No Flask, no SQL, no HTTP here.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from common import jwt_rules
from common.errors import InvalidInput
from nodes.errors import MessageInvalid, NodeAssertionInvalid, PeerInvalid

# At most 10 characters: ``node:<name>/<institution id of 48>`` fits the 64 of an
# institution id column at the holding node.
NODE_NAME = re.compile(r"^[a-z][a-z0-9_-]{1,9}$")
REGION = re.compile(r"^[0-9]{0,6}$")
RELATIONS = ("parent", "child")
STATUSES = ("active", "suspended")
TYP_NODE = jwt_rules.TYP_NODE
RELAYED_PREFIX = "node:"
MESSAGE_KINDS = ("statistics", "objection_overdue", "data_import", "note", "webhook")
MAX_MESSAGES_PER_BATCH = 500


@dataclass(frozen=True)
class NodeIdentity:
    name: str
    region: str


@dataclass(frozen=True)
class Peer:
    name: str
    url: str
    jwk: Mapping[str, Any]
    relation: str
    region: str
    status: str = "active"

    @property
    def active(self) -> bool:
        return self.status == "active"


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NODE_NAME.match(name):
        raise PeerInvalid(
            "node names are 2-10 lowercase letters, digits, _ and -, starting with a letter",
            field="name",
        )
    return name


def check_region(region: str) -> str:
    if not isinstance(region, str) or not REGION.match(region):
        raise PeerInvalid("a region is a division-code prefix of 0-6 digits", field="region")
    return region


def check_url(url: str) -> str:
    if (
        not isinstance(url, str)
        or not re.match(r"^https?://[^\s/?#]+(/[^\s?#]*)?$", url)
        or len(url) > 300
    ):
        raise PeerInvalid("a peer URL is http(s)://host[:port][/path]", field="url")
    return url.rstrip("/")


def check_jwk(jwk: Any) -> dict[str, str]:
    """An Ed25519 public JWK (the only kind of node key), private members refused."""
    if (
        not isinstance(jwk, Mapping)
        or jwk.get("kty") != "OKP"
        or jwk.get("crv") != "Ed25519"
        or not isinstance(jwk.get("x"), str)
    ):
        raise PeerInvalid("a node key is an Ed25519 public JWK (kty OKP, crv Ed25519)")
    if "d" in jwk:
        raise PeerInvalid("that JWK holds a private key: give the public one", field="jwk")
    try:
        public_key(jwk)
    except ValueError as e:
        raise PeerInvalid("the JWK's x is not an Ed25519 public key", field="jwk") from e
    return {"kty": "OKP", "crv": "Ed25519", "x": str(jwk["x"])}


def make_peer(
    name: str, *, url: str, jwk: Any, relation: str, region: str, own: NodeIdentity
) -> Peer:
    """A checked peer definition of node ``own``. A child serves a region inside its
    parent's (a longer prefix); a parent serves a region containing the child's."""
    check_name(name)
    if name == own.name:
        raise PeerInvalid("a node is not its own peer", field="name")
    if relation not in RELATIONS:
        raise PeerInvalid("relation is parent or child", field="relation")
    check_region(region)
    if relation == "child" and not (region.startswith(own.region) and region != own.region):
        raise PeerInvalid(
            f"a child serves a region inside this node's {own.region!r}", field="region"
        )
    if relation == "parent" and not (own.region.startswith(region) and region != own.region):
        raise PeerInvalid(
            f"a parent serves a region containing this node's {own.region!r}", field="region"
        )
    return Peer(name, check_url(url), check_jwk(jwk), relation, region)


def division_code(uscc: str) -> str:
    """The 6-digit administrative division code of a USCC (GB 32100: characters 3-8)."""
    return uscc[2:8]


def route(code: str, own: NodeIdentity, peers: Sequence[Peer]) -> Peer | None:
    """The peer that holds an enterprise of division code ``code``, or None when this
    node does (or nobody matches: then this node answers, and knows nothing of it).
    Longest prefix wins; a suspended peer is returned too (the caller refuses: its
    enterprises are nobody else's)."""
    best: Peer | None = None
    best_len = len(own.region) if code.startswith(own.region) else -1
    for p in peers:
        if code.startswith(p.region) and len(p.region) > best_len:
            best, best_len = p, len(p.region)
    return best


def serves(code: str, own: NodeIdentity, peers: Sequence[Peer]) -> bool:
    """Does this node itself hold enterprises of ``code`` (no peer is more specific)?"""
    if not code.startswith(own.region):
        return False
    return all(not code.startswith(p.region) or len(p.region) <= len(own.region) for p in peers)


def relayed_institution(node: str, institution: str) -> str:
    """The id under which a holding node knows an institution vouched for by ``node``."""
    return f"{RELAYED_PREFIX}{node}/{institution}"


def vouching_node(relayed: str) -> tuple[str, str] | None:
    """``node:<node>/<institution>`` → ``(node, institution)``; None for any other id."""
    if not relayed.startswith(RELAYED_PREFIX):
        return None
    node, sep, institution = relayed[len(RELAYED_PREFIX) :].partition("/")
    return (node, institution) if sep and node and institution else None


def body_digest(body: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(body).digest()).rstrip(b"=").decode("ascii")


def assertion_claims(
    *, sender: str, audience: str, body: bytes, now: int, lifetime: int, **extra: Any
) -> dict[str, Any]:
    """The claims of a node assertion for one request."""
    return {
        "iss": sender,
        "sub": sender,
        "aud": audience,
        "iat": now,
        "exp": now + lifetime,
        "jti": secrets.token_urlsafe(16),
        "body": body_digest(body),
        **extra,
    }


def public_key(jwk: Mapping[str, Any]) -> Ed25519PublicKey:
    x = str(jwk["x"])
    raw = base64.urlsafe_b64decode(x + "=" * (-len(x) % 4))
    return Ed25519PublicKey.from_public_bytes(raw)


def unverified_issuer(token: str) -> str:
    """Who claims to have signed ``token`` (to find the key to check it with)."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as e:
        raise NodeAssertionInvalid("the node assertion is not a JWT") from e
    iss = claims.get("iss") if isinstance(claims, dict) else None
    if not isinstance(iss, str) or not NODE_NAME.match(iss):
        raise NodeAssertionInvalid("the node assertion names no node (iss)")
    return iss


def verify_assertion(
    token: str,
    peer: Peer,
    *,
    audience: str,
    body: bytes,
    now: float,
    max_seconds: int,
) -> dict[str, Any]:
    """The claims of ``token`` once it verifies as ``peer``'s assertion for this very
    request (signature, typ, iss, aud, dates, body digest); raises NodeAssertionInvalid.
    The jti's one-time use is the caller's (it needs the store)."""
    try:
        header = jwt.get_unverified_header(token)
        jwt_rules.require_typ(header, TYP_NODE)
        claims: dict[str, Any] = jwt.decode(
            token,
            public_key(peer.jwk),
            algorithms=["EdDSA"],
            audience=audience,
            issuer=peer.name,
            options={"require": ["exp", "iat", "jti", "aud", "iss"], "verify_exp": False},
        )
        jwt_rules.check_numeric_dates(claims, required=("exp", "iat"))
    except (jwt.PyJWTError, InvalidInput, ValueError) as e:
        raise NodeAssertionInvalid(f"the node assertion does not verify ({e})") from e
    exp = float(claims["exp"])
    if exp <= now:
        raise NodeAssertionInvalid("the node assertion has expired")
    if exp - now > max_seconds or float(claims["iat"]) > now + 60:
        raise NodeAssertionInvalid(f"node assertions may live at most {max_seconds} s")
    if not isinstance(claims.get("jti"), str) or not 8 <= len(claims["jti"]) <= 64:
        raise NodeAssertionInvalid("the node assertion's jti is not a short string")
    if claims.get("body") != body_digest(body):
        raise NodeAssertionInvalid("the node assertion is for another request body")
    return claims


def replay_key(claims: Mapping[str, Any]) -> tuple[str, int]:
    """(key, expiry) under which the assertion's jti is used once."""
    return f"node:{claims['iss']}:{claims['jti']}", math.ceil(float(claims["exp"]))


@dataclass(frozen=True)
class Message:
    """One node-to-node message: ``id`` unique at the sender, ``kind`` one of
    MESSAGE_KINDS, ``payload`` a JSON object, ``created_at`` POSIX seconds."""

    id: str
    kind: str
    payload: Mapping[str, Any]
    created_at: int

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "payload": dict(self.payload),
            "created_at": self.created_at,
        }


def parse_batch(sender: str, data: Any) -> list[Message]:
    """The messages of a batch ``{"messages": [...]}`` sent by ``sender``; every id must
    be the sender's own (``<sender>:<n>``) and appear once; raises MessageInvalid."""
    if not isinstance(data, Mapping) or set(data) != {"messages"}:
        raise MessageInvalid('a batch is {"messages": [...]}')
    items = data["messages"]
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_MESSAGES_PER_BATCH:
        raise MessageInvalid(f"a batch holds 1 to {MAX_MESSAGES_PER_BATCH} messages")
    out: list[Message] = []
    seen: set[str] = set()
    for i, m in enumerate(items):
        if not isinstance(m, Mapping) or set(m) != {"id", "kind", "payload", "created_at"}:
            raise MessageInvalid(f"message {i}: fields are id, kind, payload, created_at")
        mid, kind, payload, at = m["id"], m["kind"], m["payload"], m["created_at"]
        if not isinstance(mid, str) or not mid.startswith(f"{sender}:") or len(mid) > 80:
            raise MessageInvalid(f"message {i}: an id is '{sender}:<n>', the sender's own")
        if mid in seen:
            raise MessageInvalid(f"message {i}: id {mid!r} appears twice in the batch")
        seen.add(mid)
        if kind not in MESSAGE_KINDS:
            raise MessageInvalid(f"message {i}: kind is one of {list(MESSAGE_KINDS)}")
        if not isinstance(payload, Mapping):
            raise MessageInvalid(f"message {i}: payload is a JSON object")
        if isinstance(at, bool) or not isinstance(at, int) or at < 0:
            raise MessageInvalid(f"message {i}: created_at is POSIX seconds")
        out.append(Message(mid, kind, payload, at))
    return out


def backoff_seconds(failures: int, base: float, cap: float) -> float:
    """Exponential backoff after ``failures`` consecutive failed deliveries to a peer."""
    if failures <= 0:
        return 0.0
    return float(min(cap, base * 2 ** min(failures - 1, 30)))
