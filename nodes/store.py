"""Node persistence (migration 0016_nodes): this node's identity, its peers, the
durable outbox, the inbox of message ids acted upon, the children's pushed figures and
the consents requested through a relay.

Invariants:
- ``node_outbox`` rows are written in the transaction of whatever caused them and are
  deleted never: ``delivered_at`` is set once the peer acknowledged the batch; delivery
  is in ``seq`` order per peer (the sender's order);
- ``node_inbox`` has one row per (peer, message id): a message is acted upon in the
  transaction that inserts its row, so a redelivered message has no second effect;
- ``node_child_statistics`` keeps the latest figures a child pushed per (child, region,
  month): a newer push of the same month replaces them (a month is recomputed until
  it closes), an older one (by message sequence) never does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session
from sqlmodel import SQLModel

from common.db import read_connection, write_session
from nodes.core import Message, NodeIdentity, Peer
from nodes.errors import NodeNotInitialized, PeerInvalid

metadata = SQLModel.metadata

node_identity = sa.Table(
    "node_identity",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),  # always 1: one identity per instance
    sa.Column("name", sa.String(32), nullable=False),
    sa.Column("region", sa.String(6), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    extend_existing=True,
)

node_peers = sa.Table(
    "node_peers",
    metadata,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("url", sa.String(300), nullable=False),
    sa.Column("jwk", sa.Text, nullable=False),
    sa.Column("relation", sa.String(8), nullable=False),
    sa.Column("region", sa.String(6), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    # Delivery state of the outbox towards this peer (exponential backoff).
    sa.Column("failures", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt_at", sa.Float, nullable=False, default=0.0),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("status_changed_at", sa.BigInteger, nullable=False),
    extend_existing=True,
)

node_outbox = sa.Table(
    "node_outbox",
    metadata,
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("peer", sa.String(32), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("delivered_at", sa.BigInteger, nullable=True),
    # What the message is about, when it must be sent once only (an overdue objection).
    sa.Column("dedup_key", sa.String(100), nullable=True),
    # The peer's code when it refused this message for good (set aside, not resent).
    sa.Column("refused", sa.String(40), nullable=True),
    sa.Index("ix_node_outbox_pending", "peer", "delivered_at", "seq"),
    sa.UniqueConstraint("peer", "dedup_key", name="uq_node_outbox_dedup"),
    extend_existing=True,
)

node_inbox = sa.Table(
    "node_inbox",
    metadata,
    sa.Column("peer", sa.String(32), primary_key=True),
    sa.Column("message_id", sa.String(80), primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("received_at", sa.BigInteger, nullable=False),
    extend_existing=True,
)

node_child_statistics = sa.Table(
    "node_child_statistics",
    metadata,
    sa.Column("peer", sa.String(32), primary_key=True),
    sa.Column("region", sa.String(6), primary_key=True),
    sa.Column("month", sa.String(7), primary_key=True),
    sa.Column("figures", sa.Text, nullable=False),  # JSON object of counts and sums
    sa.Column("message_id", sa.String(80), nullable=False),
    sa.Column("message_seq", sa.BigInteger, nullable=False),
    sa.Column("received_at", sa.BigInteger, nullable=False),
    extend_existing=True,
)

node_forwarded_objections = sa.Table(
    "node_forwarded_objections",
    metadata,
    sa.Column("peer", sa.String(32), primary_key=True),
    sa.Column("objection_id", sa.String(64), primary_key=True),
    sa.Column("enterprise", sa.String(18), nullable=False),
    sa.Column("feature", sa.String(100), nullable=False),
    sa.Column("due", sa.String(10), nullable=False),  # the deadline at the child (ISO date)
    sa.Column("received_at", sa.BigInteger, nullable=False),
    extend_existing=True,
)

node_relayed_consents = sa.Table(
    "node_relayed_consents",
    metadata,
    # A consent created at a holding node through this one: where to ask about it.
    sa.Column("peer", sa.String(32), primary_key=True),
    sa.Column("consent_id", sa.String(40), primary_key=True),
    sa.Column("institution", sa.String(64), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    extend_existing=True,
)

TABLES = (
    node_identity,
    node_peers,
    node_outbox,
    node_inbox,
    node_child_statistics,
    node_forwarded_objections,
    node_relayed_consents,
)


# Identity and peers --------------------------------------------------------------------
def identity(conn: Connection | Session) -> NodeIdentity | None:
    row = conn.execute(sa.select(node_identity.c.name, node_identity.c.region)).first()
    return None if row is None else NodeIdentity(row.name, row.region)


def require_identity(conn: Connection | Session) -> NodeIdentity:
    found = identity(conn)
    if found is None:
        raise NodeNotInitialized("this instance is no node yet: run `xinyi node init`")
    return found


def init_identity(engine: Engine, ident: NodeIdentity, now: int) -> None:
    with write_session(engine) as s:
        existing = identity(s)
        if existing is not None:
            if existing == ident:
                return
            raise PeerInvalid(
                f"this instance is already node {existing.name!r} serving "
                f"{existing.region!r}; a node's identity does not change"
            )
        s.execute(
            node_identity.insert().values(
                id=1, name=ident.name, region=ident.region, created_at=now
            )
        )


def _peer(row: Any) -> Peer:
    return Peer(
        row["name"],
        row["url"],
        json.loads(row["jwk"]),
        row["relation"],
        row["region"],
        row["status"],
    )


def peers(conn: Connection | Session) -> list[Peer]:
    rows = conn.execute(node_peers.select().order_by(node_peers.c.name)).mappings()
    return [_peer(r) for r in rows]


def peer(conn: Connection | Session, name: str) -> Peer | None:
    row = conn.execute(node_peers.select().where(node_peers.c.name == name)).mappings().first()
    return None if row is None else _peer(row)


def add_peer(engine: Engine, p: Peer, now: int) -> None:
    with write_session(engine) as s:
        if peer(s, p.name) is not None:
            raise PeerInvalid(f"node {p.name!r} is already a peer", field="name")
        if p.relation == "parent" and any(q.relation == "parent" for q in peers(s)):
            raise PeerInvalid("a node has at most one parent", field="relation")
        s.execute(
            node_peers.insert().values(
                name=p.name,
                url=p.url,
                jwk=json.dumps(dict(p.jwk), sort_keys=True),
                relation=p.relation,
                region=p.region,
                status="active",
                failures=0,
                next_attempt_at=0.0,
                created_at=now,
                status_changed_at=now,
            )
        )


def set_status(engine: Engine, name: str, status: str, now: int) -> Peer:
    with write_session(engine) as s:
        found = peer(s, name)
        if found is None:
            raise PeerInvalid(f"no peer {name!r}", field="name")
        if found.relation != "child":
            raise PeerInvalid("only a child is suspended or resumed by its parent")
        s.execute(
            node_peers.update()
            .where(node_peers.c.name == name)
            .values(status=status, status_changed_at=now)
        )
    with read_connection(engine) as c:
        result = peer(c, name)
    assert result is not None
    return result


# Outbox --------------------------------------------------------------------------------
def enqueue(
    s: Session,
    peer_name: str,
    kind: str,
    payload: Mapping[str, Any],
    now: int,
    *,
    dedup_key: str | None = None,
) -> int | None:
    """Queue a message to ``peer_name`` in the caller's transaction; returns its seq, or
    None when a message with ``dedup_key`` was queued for that peer before."""
    if dedup_key is not None:
        before = s.execute(
            sa.select(node_outbox.c.seq).where(
                (node_outbox.c.peer == peer_name) & (node_outbox.c.dedup_key == dedup_key)
            )
        ).first()
        if before is not None:
            return None
    result = s.execute(
        node_outbox.insert().values(
            peer=peer_name,
            kind=kind,
            payload=json.dumps(dict(payload), ensure_ascii=False, sort_keys=True),
            created_at=now,
            delivered_at=None,
            dedup_key=dedup_key,
        )
    )
    return int(result.inserted_primary_key[0])  # type: ignore[attr-defined]


def message_id(sender: str, seq: int) -> str:
    return f"{sender}:{seq}"


def due_peers(conn: Connection | Session, now: float) -> list[str]:
    """Peers with undelivered messages whose backoff has run out."""
    pending = (
        sa.select(node_outbox.c.peer).where(node_outbox.c.delivered_at.is_(None)).distinct()
    ).subquery()
    rows = conn.execute(
        sa.select(node_peers.c.name)
        .where(node_peers.c.name.in_(sa.select(pending.c.peer)))
        .where(node_peers.c.next_attempt_at <= now)
        .where(node_peers.c.status == "active")
        .order_by(node_peers.c.name)
    )
    return [r.name for r in rows]


def pending(conn: Connection | Session, sender: str, peer_name: str, limit: int) -> list[Message]:
    """The oldest undelivered messages to ``peer_name``, in order."""
    rows = conn.execute(
        sa.select(node_outbox)
        .where(node_outbox.c.peer == peer_name, node_outbox.c.delivered_at.is_(None))
        .order_by(node_outbox.c.seq)
        .limit(limit)
    ).mappings()
    return [
        Message(message_id(sender, r["seq"]), r["kind"], json.loads(r["payload"]), r["created_at"])
        for r in rows
    ]


def mark_delivered(engine: Engine, peer_name: str, seqs: Sequence[int], now: int) -> None:
    with write_session(engine) as s:
        for start in range(0, len(seqs), 500):
            s.execute(
                node_outbox.update()
                .where(node_outbox.c.seq.in_(list(seqs[start : start + 500])))
                .where(node_outbox.c.peer == peer_name)
                .values(delivered_at=now)
            )
        s.execute(
            node_peers.update()
            .where(node_peers.c.name == peer_name)
            .values(failures=0, next_attempt_at=0.0)
        )


def mark_refused(engine: Engine, peer_name: str, seq: int, code: str) -> None:
    """Set a message the peer refuses for good aside (a dead letter): it counts as
    handled, with the refusal's code, and is not sent again."""
    with write_session(engine) as s:
        s.execute(
            node_outbox.update()
            .where((node_outbox.c.seq == seq) & (node_outbox.c.peer == peer_name))
            .values(delivered_at=0, refused=code[:40])
        )


def refused(conn: Connection | Session, peer_name: str) -> list[tuple[int, str]]:
    """(seq, code) of the messages ``peer_name`` refused for good."""
    rows = conn.execute(
        sa.select(node_outbox.c.seq, node_outbox.c.refused)
        .where((node_outbox.c.peer == peer_name) & node_outbox.c.refused.is_not(None))
        .order_by(node_outbox.c.seq)
    )
    return [(int(r.seq), str(r.refused)) for r in rows]


def mark_failed(engine: Engine, peer_name: str, next_attempt_at: float) -> int:
    """Count one more failed delivery to ``peer_name``; returns the failures so far."""
    with write_session(engine) as s:
        s.execute(
            node_peers.update()
            .where(node_peers.c.name == peer_name)
            .values(failures=node_peers.c.failures + 1, next_attempt_at=next_attempt_at)
        )
        return int(
            s.execute(
                sa.select(node_peers.c.failures).where(node_peers.c.name == peer_name)
            ).scalar_one()
        )


def outbox_depth(conn: Connection | Session) -> int:
    return int(
        conn.execute(
            sa.select(sa.func.count()).where(node_outbox.c.delivered_at.is_(None))
        ).scalar_one()
    )


# Inbox ---------------------------------------------------------------------------------
def seen(s: Session, peer_name: str, message_ids: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(message_ids), 500):
        rows = s.execute(
            sa.select(node_inbox.c.message_id)
            .where(node_inbox.c.peer == peer_name)
            .where(node_inbox.c.message_id.in_(list(message_ids[start : start + 500])))
        )
        found.update(r.message_id for r in rows)
    return found


def record_received(s: Session, peer_name: str, m: Message, now: int) -> None:
    s.execute(
        node_inbox.insert().values(peer=peer_name, message_id=m.id, kind=m.kind, received_at=now)
    )


def received_count(conn: Connection | Session, peer_name: str) -> int:
    return int(
        conn.execute(sa.select(sa.func.count()).where(node_inbox.c.peer == peer_name)).scalar_one()
    )


# What children push --------------------------------------------------------------------
def put_child_statistics(
    s: Session,
    peer_name: str,
    region: str,
    month: str,
    figures: Mapping[str, Any],
    message: Message,
    seq: int,
    now: int,
) -> None:
    key = (
        (node_child_statistics.c.peer == peer_name)
        & (node_child_statistics.c.region == region)
        & (node_child_statistics.c.month == month)
    )
    row = s.execute(sa.select(node_child_statistics.c.message_seq).where(key)).first()
    values = {
        "figures": json.dumps(dict(figures), sort_keys=True),
        "message_id": message.id,
        "message_seq": seq,
        "received_at": now,
    }
    if row is None:
        s.execute(
            node_child_statistics.insert().values(
                peer=peer_name, region=region, month=month, **values
            )
        )
    elif row.message_seq < seq:
        s.execute(node_child_statistics.update().where(key).values(**values))


def child_statistics(conn: Connection | Session, month: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        sa.select(node_child_statistics)
        .where(node_child_statistics.c.month == month)
        .order_by(node_child_statistics.c.region, node_child_statistics.c.peer)
    ).mappings()
    return [
        {"node": r["peer"], "region": r["region"], "month": month, **json.loads(r["figures"])}
        for r in rows
    ]


def put_forwarded_objection(
    s: Session, peer_name: str, payload: Mapping[str, Any], now: int
) -> None:
    exists = s.execute(
        sa.select(node_forwarded_objections.c.objection_id).where(
            (node_forwarded_objections.c.peer == peer_name)
            & (node_forwarded_objections.c.objection_id == str(payload["id"]))
        )
    ).first()
    if exists is None:
        s.execute(
            node_forwarded_objections.insert().values(
                peer=peer_name,
                objection_id=str(payload["id"]),
                enterprise=str(payload["enterprise"]),
                feature=str(payload["feature"]),
                due=str(payload["due"]),
                received_at=now,
            )
        )


def forwarded_objections(conn: Connection | Session) -> list[dict[str, Any]]:
    rows = conn.execute(
        sa.select(node_forwarded_objections).order_by(
            node_forwarded_objections.c.due, node_forwarded_objections.c.objection_id
        )
    ).mappings()
    return [dict(r) for r in rows]


# Relayed consents ----------------------------------------------------------------------
def remember_relayed_consent(
    engine: Engine, peer_name: str, consent_id: str, institution: str, now: int
) -> None:
    with write_session(engine) as s:
        exists = s.execute(
            sa.select(node_relayed_consents.c.consent_id).where(
                (node_relayed_consents.c.peer == peer_name)
                & (node_relayed_consents.c.consent_id == consent_id)
            )
        ).first()
        if exists is None:
            s.execute(
                node_relayed_consents.insert().values(
                    peer=peer_name, consent_id=consent_id, institution=institution, created_at=now
                )
            )


def relayed_consent_peer(
    conn: Connection | Session, consent_id: str, institution: str
) -> str | None:
    row = conn.execute(
        sa.select(node_relayed_consents.c.peer).where(
            (node_relayed_consents.c.consent_id == consent_id)
            & (node_relayed_consents.c.institution == institution)
        )
    ).first()
    return None if row is None else str(row.peer)


# Up: what a child queues for its parent -------------------------------------------------
def parent(conn: Connection | Session) -> Peer | None:
    return next((p for p in peers(conn) if p.relation == "parent"), None)


def push_statistics(
    s: Session, month: str, figures_by_region: Mapping[str, Mapping[str, Any]], now: int
) -> int:
    """Queue one ``statistics`` message per region for the parent, in the caller's
    transaction; returns how many (0 when this node has no parent)."""
    up = parent(s)
    if up is None:
        return 0
    own = require_identity(s)
    # Only regions of this node: the parent refuses any other (its enterprises
    # registered elsewhere are counted by the node that holds their region).
    mine = {r: f for r, f in figures_by_region.items() if r.startswith(own.region)}
    for region, figures in sorted(mine.items()):
        enqueue(
            s, up.name, "statistics", {"region": region, "month": month, "figures": figures}, now
        )
    return len(mine)


def enqueue_up(
    s: Session, kind: str, payload: Mapping[str, Any], now: int, *, dedup_key: str | None = None
) -> int | None:
    """Queue one message for the parent; None when this node has none (or the
    ``dedup_key`` was sent up before)."""
    up = parent(s)
    if up is None:
        return None
    return enqueue(s, up.name, kind, payload, now, dedup_key=dedup_key)


def children_statistics(engine: Engine, month: str) -> list[dict[str, Any]]:
    """The figures this node's children pushed for ``month``, one item per (child,
    region): ``{node, region, month, **figures}`` (for a parent's ``GET
    /v1/statistics`` ``by_region``)."""
    with read_connection(engine) as c:
        return child_statistics(c, month)
