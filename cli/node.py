"""`xinyi node`: this instance as a node of the network (CONTRACT v2 "Nodes",
docs/network.md): identity, node key, peers, suspending a child, the outbox."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from cli.instance import instance_settings
from common.db import make_engine, read_connection, write_session
from common.errors import InvalidInput


@click.group(name="node")
def group() -> None:
    """This instance as a node: city, province or national (docs/network.md)."""


def _engine(ctx: click.Context):  # type: ignore[no-untyped-def]
    return make_engine(instance_settings(ctx).database_url)


@group.command("init")
@click.option("--name", required=True, help="This node's name, e.g. jiangsu, jiangyin.")
@click.option("--region", required=True, help="The division-code prefix served: 32, 320281.")
@click.pass_context
def init(ctx: click.Context, name: str, region: str) -> None:
    """Make this instance node NAME serving division codes starting with REGION."""
    from keys import KeyRing
    from nodes import core, store

    ident = core.NodeIdentity(core.check_name(name), core.check_region(region))
    settings = instance_settings(ctx)
    KeyRing(settings).ensure_all()  # the *nodes* key of an instance made before nodes
    store.init_identity(make_engine(settings.database_url), ident, int(time.time()))
    click.echo(f"node {ident.name} serving {ident.region or '(all)'}")


@group.command("key")
@click.pass_context
def key(ctx: click.Context) -> None:
    """Print this node's public JWK (give it to the peers: `xinyi node add-peer --jwk`)."""
    from keys import KeyRing
    from keys.jwk import public_jwk

    ring = KeyRing(instance_settings(ctx))
    ring.ensure_all()
    record = ring.signing_key("nodes")
    click.echo(json.dumps({**public_jwk(record.private.public_key()), "kid": record.kid}))


@group.command("add-peer")
@click.argument("name")
@click.option("--url", required=True, help="The peer's public URL (its server.public_url).")
@click.option(
    "--jwk",
    "jwk_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The peer's public node JWK (its `xinyi node key`).",
)
@click.option("--relation", type=click.Choice(["parent", "child"]), required=True)
@click.option("--region", required=True, help="The division-code prefix the peer serves.")
@click.pass_context
def add_peer(
    ctx: click.Context, name: str, url: str, jwk_path: Path, relation: str, region: str
) -> None:
    """Link a peer node: a parent (province, national) or a child (city, province)."""
    from nodes import core, store

    try:
        jwk = json.loads(jwk_path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidInput(f"{jwk_path}: not a JSON JWK", code="node_peer_invalid") from e
    if isinstance(jwk, dict):
        jwk.pop("kid", None)
    engine = _engine(ctx)
    with read_connection(engine) as c:
        own = store.require_identity(c)
    peer = core.make_peer(name, url=url, jwk=jwk, relation=relation, region=region, own=own)
    store.add_peer(engine, peer, int(time.time()))
    click.echo(f"peer {peer.name} ({peer.relation}, {peer.region or '(all)'}) at {peer.url}")


@group.command("suspend")
@click.argument("name")
@click.pass_context
def suspend(ctx: click.Context, name: str) -> None:
    """Cut a child off (有进有出, AH 11; JS 4): its calls are refused node_suspended and
    nothing is relayed or sent to it; its messages wait."""
    from nodes import store

    peer = store.set_status(_engine(ctx), name, "suspended", int(time.time()))
    click.echo(f"peer {peer.name} is {peer.status}")


@group.command("resume")
@click.argument("name")
@click.pass_context
def resume(ctx: click.Context, name: str) -> None:
    """Let a suspended child back in."""
    from nodes import store

    peer = store.set_status(_engine(ctx), name, "active", int(time.time()))
    click.echo(f"peer {peer.name} is {peer.status}")


@group.command("peers")
@click.pass_context
def peers(ctx: click.Context) -> None:
    """This node and its peers, one a line."""
    from nodes import store

    with read_connection(_engine(ctx)) as c:
        own = store.require_identity(c)
        found = store.peers(c)
        waiting = store.outbox_depth(c)
    click.echo(f"self\t{own.name}\t{own.region}\t(outbox: {waiting} waiting)")
    for p in found:
        click.echo(f"{p.relation}\t{p.name}\t{p.region}\t{p.status}\t{p.url}")


@group.command("push-statistics")
@click.option("--month", required=True, help="YYYY-MM")
@click.pass_context
def push_statistics(ctx: click.Context, month: str) -> None:
    """Queue this node's statistics of MONTH for the parent, by region: the figures
    ``GET /v1/statistics`` answers here (its children's included) and the grade counts
    (JY 三(三)3); delivered by the outbox loop; a later push of a month replaces it
    there."""
    import re

    from gateway.node_up import push_statistics as push

    if not re.fullmatch(r"[0-9]{4}-(0[1-9]|1[0-2])", month):
        raise InvalidInput("--month is YYYY-MM", code="node_message_invalid")
    n = push(instance_settings(ctx), _engine(ctx), month, int(time.time()))
    click.echo(f"{n} messages queued for the parent")


@group.command("deliver")
@click.pass_context
def deliver(ctx: click.Context) -> None:
    """Deliver what waits in the outbox now (the server does it in the background)."""
    from keys import KeyRing
    from nodes import core
    from nodes.delivery import NodeOutbox

    settings = instance_settings(ctx)
    ring = KeyRing(settings)
    outbox = NodeOutbox(
        settings,
        make_engine(settings.database_url),
        lambda claims: ring.sign_jwt("nodes", claims, headers={"typ": core.TYP_NODE}),
    )
    try:
        click.echo(f"{outbox.deliver_due(max_seconds=60)} messages delivered")
    finally:
        outbox.close()


@group.command("forward-overdue")
@click.pass_context
def forward_overdue(ctx: click.Context) -> None:
    """Queue the objections overdue here for the parent, with their deadline (JS 14);
    each goes up once (the server does this every nodes.forward_interval_seconds)."""
    from gateway.node_up import forward_overdue_objections

    click.echo(f"{forward_overdue_objections(_engine(ctx))} overdue objections queued")


# Witnessing: every node cosigns its peers' checkpoints (audit/witness.py) -------------
WITNESS_KEY_FILE = "node-witness.key"


def witness_department(node: str) -> str:
    """The name under which a peer registers this node's witness key."""
    return f"node-{node}"


@group.command("witness-key")
@click.pass_context
def witness_key(ctx: click.Context) -> None:
    """Print this node's cosignature vkey (created on first use in the instance folder);
    each peer registers it: `xinyi node add-witness NAME VKEY`."""
    from audit.note import ALG_COSIGNATURE_V1
    from cli.audit import _load_or_create_key
    from nodes import store

    settings = instance_settings(ctx)
    with read_connection(make_engine(settings.database_url)) as c:
        own = store.require_identity(c)
    signer = _load_or_create_key(
        settings.home / WITNESS_KEY_FILE, witness_department(own.name), create=True
    )
    click.echo(signer.verifier(ALG_COSIGNATURE_V1).vkey)


@group.command("add-witness")
@click.argument("name")
@click.argument("vkey")
@click.pass_context
def add_witness(ctx: click.Context, name: str, vkey: str) -> None:
    """Register peer NAME's witness key for this node's audit log."""
    from audit.service import AuditLog
    from keys import KeyRing
    from nodes import store

    settings = instance_settings(ctx)
    engine = make_engine(settings.database_url)
    with read_connection(engine) as c:
        if store.peer(c, name) is None:
            raise InvalidInput(f"no peer {name!r}", code="node_peer_invalid")
    log = AuditLog(engine, settings, KeyRing(settings).checkpoint_signer())
    verifier = log.register_witness(witness_department(name), vkey)
    click.echo(f"witness {verifier.name} of node {name} registered")


@group.command("witness")
@click.pass_context
def witness(ctx: click.Context) -> None:
    """One witness round over every active peer: check its newest checkpoint against the
    last this node cosigned (consistency proof, the new entries' hashes) and cosign it.
    A fork or rollback at any peer exits 1 naming it (run from cron, like a
    department's witness)."""
    import httpx

    from audit.errors import LogInconsistent, SignatureInvalid
    from cli.audit import run_witness
    from nodes import store

    settings = instance_settings(ctx)
    with read_connection(make_engine(settings.database_url)) as c:
        own = store.require_identity(c)
        found = [p for p in store.peers(c) if p.active]
    failed = []
    for p in found:
        state = settings.home / "node-witness" / f"{p.name}.json"
        with httpx.Client(base_url=p.url, timeout=30.0, trust_env=False) as client:
            try:
                new = run_witness(
                    client,
                    department=witness_department(own.name),
                    state_path=state,
                    key_path=settings.home / WITNESS_KEY_FILE,
                )
            except (LogInconsistent, SignatureInvalid) as e:
                click.echo(f"REFUSED {p.name}: {e.code}: {e.message}", err=True)
                failed.append(p.name)
                continue
        click.echo(f"cosigned {p.name}'s checkpoint of size {new.size}")
    if failed:
        raise SystemExit(1)


@group.command("send-down")
@click.argument("child")
@click.argument("department")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_context
def send_down(ctx: click.Context, child: str, department: str, file: Path) -> None:
    """Queue a CSV for CHILD, to load there as DEPARTMENT (a department named for this
    node in the child's catalog, its nodes.parent_departments); all or nothing there."""
    from nodes import store

    text = file.read_text(encoding="utf-8")
    engine = _engine(ctx)
    with write_session(engine) as s:
        found = store.peer(s, child)
        if found is None or found.relation != "child":
            raise InvalidInput(f"{child!r} is not a child of this node", code="node_peer_invalid")
        payload = {"department": department, "csv": text, "file_name": file.name}
        store.enqueue(s, child, "data_import", payload, int(time.time()))
    click.echo(f"{file.name} queued for {child} as {department}")
