"""`xinyi audit`: the tamper-evident audit log: verify, witness.

Exit codes: 0 all checks hold; 1 the log failed a check (a bad entry, a fork, a
rollback, a bad signature), with the first bad index or size named; 2 the command
could not run (bad input, unreachable gateway, missing key).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import click
import httpx

from audit import witness as witnessing
from audit.errors import AuditUnavailable, LogInconsistent, NoteInvalid, SignatureInvalid
from audit.note import ALG_COSIGNATURE_V1, ALG_ED25519, Ed25519Signer, Verifier, unb64
from audit.service import AuditLog
from audit.store import StoredLog
from audit.verify import verify_log
from cli.instance import instance_settings, settings_from
from common.db import make_engine
from common.errors import Error, InvalidInput

WITNESS_KEY_NAME = "xinyi-witness/{department}"


@click.group(name="audit")
def group() -> None:
    """The tamper-evident audit log: verify, witness."""


def _refuse(message: str) -> None:
    click.echo(f"REFUSED: {message}", err=True)
    sys.exit(1)


def _log_keys(ctx: click.Context, vkeys: tuple[str, ...]) -> list[Verifier]:
    if vkeys:
        return [Verifier.from_vkey(v) for v in vkeys]
    from keys import KeyRing

    settings = instance_settings(ctx)  # never a new key folder: its keys would trust nothing
    signer = KeyRing(settings).checkpoint_signer()
    return [Verifier(signer.name, pk, ALG_ED25519) for pk in signer.verifier_keys()]


@group.command()
@click.option(
    "--checkpoint",
    "checkpoint_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A checkpoint kept outside the database (a saved checkpoint note or a witness "
    "state file): the log must still contain it.",
)
@click.option(
    "--vkey",
    "vkeys",
    multiple=True,
    help="The log's verifier key(s) to trust (default: the instance's checkpoint keys).",
)
@click.pass_context
def verify(ctx: click.Context, checkpoint_file: Path | None, vkeys: tuple[str, ...]) -> None:
    """Recompute the tree from every stored entry, check every stored checkpoint's
    signature and consistency, and the log against an outside checkpoint."""
    settings = settings_from(ctx)
    keys = _log_keys(ctx, vkeys)
    external = checkpoint_file.read_text(encoding="utf-8") if checkpoint_file else None
    engine = make_engine(settings.database_url)
    started = time.perf_counter()
    try:
        with StoredLog.open(engine) as source:
            report = verify_log(source, keys, external=external)
    finally:
        engine.dispose()
    seconds = max(time.perf_counter() - started, 1e-9)
    click.echo(f"log: {settings.config.audit.origin}, size {report.size}")
    click.echo(
        f"checked {report.entries_checked} entries ({report.entries_checked / seconds:,.0f}/s), "
        f"{report.nodes_checked} tree nodes, {report.checkpoints_checked} checkpoints"
        + (", and the external checkpoint" if external else "")
    )
    if report.ok:
        click.echo("OK: the log is intact")
        return
    first = report.first_bad_index
    for problem in report.problems:
        click.echo(f"  - {problem.message}", err=True)
    if report.missing_from is not None:
        _refuse(
            f"entries are missing from index {report.missing_from} on (the witness cosigned "
            f"{report.witnessed_size}, the log has {report.size}): this restore is older "
            "than what was witnessed; do not serve from it, restore a newer backup or "
            "recover the WAL up to at least that size, then verify again"
        )
    _refuse(
        f"the log does not verify; first bad index: {first}"
        if first is not None
        else "the log does not verify"
    )


@group.command("add-witness")
@click.argument("department")
@click.argument("vkey")
@click.pass_context
def add_witness(ctx: click.Context, department: str, vkey: str) -> None:
    """Register a department's witness key (the vkey `xinyi audit witness-key` prints)."""
    from keys import KeyRing

    settings = instance_settings(ctx)
    engine = make_engine(settings.database_url)
    try:
        log = AuditLog(engine, settings, KeyRing(settings).checkpoint_signer())
        verifier = log.register_witness(department, vkey)
    finally:
        engine.dispose()
    click.echo(f"witness {verifier.name} registered for department {department}")


@group.command("writer-role")
@click.pass_context
def writer_role(ctx: click.Context) -> None:
    """PostgreSQL: create the role that may only INSERT and SELECT the audit tables
    (``xinyi_audit``) and grant it; then ``GRANT xinyi_audit TO <gateway login>``."""
    from audit.store import WRITER_ROLE, grant_writer_role

    settings = instance_settings(ctx)
    engine = make_engine(settings.database_url)
    try:
        if engine.dialect.name != "postgresql":
            raise InvalidInput("roles exist on PostgreSQL only", code="not_postgresql")
        with engine.begin() as conn:
            grant_writer_role(conn)
    finally:
        engine.dispose()
    click.echo(f"role {WRITER_ROLE} may INSERT and SELECT the audit log; grant it to the gateway")


@group.command("rotate-log-key")
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the signed key-transition statement to this file (for witnesses "
    "that take it by hand: `xinyi audit witness --accept-transition FILE`).",
)
@click.pass_context
def rotate_log_key(ctx: click.Context, out_path: Path | None) -> None:
    """Rotate the checkpoint key and sign a key-transition statement with the old key
    (and the new one): witnesses follow it (served at GET /v1/audit/key-transitions),
    never an unsigned key change."""
    from audit import store
    from audit.checkpoint import KeyTransition, sign_transition
    from keys import KeyRing

    settings = instance_settings(ctx)
    origin = settings.config.audit.origin
    ring = KeyRing(settings)
    engine = make_engine(settings.database_url)
    try:
        # Under the log lock, which every checkpoint is signed under: checkpoints of
        # this size or less were signed by the old key, later ones by the new key.
        with store.locked(engine, settings.config.audit.integrate_wait_seconds) as (_, state):
            old = ring.signing_key("checkpoints")
            new = ring.rotate("checkpoints")
            from_size = state.size
    finally:
        engine.dispose()
    old_signer = Ed25519Signer(origin, old.private)
    new_signer = Ed25519Signer(origin, new.private)
    transition = KeyTransition(
        origin, old_signer.verifier().vkey, new_signer.verifier().vkey, from_size
    )
    statement = sign_transition(transition, old_signer, new_signer)
    ring.add_transition(statement)
    if out_path is not None:
        _write_atomically(out_path, statement.rstrip("\n"))
    click.echo(f"checkpoints: new key {new.kid}, from log size {from_size}")
    click.echo(f"new log vkey: {transition.new_vkey}")
    if out_path is not None:
        click.echo(f"key transition written to {out_path}")


def _default_key(department: str) -> Path:
    return Path(f"witness-{department}.key")


def _load_or_create_key(path: Path, department: str, create: bool) -> Ed25519Signer:
    if path.exists():
        try:
            return Ed25519Signer.from_private_key_text(path.read_text(encoding="utf-8"))
        except (NoteInvalid, UnicodeDecodeError) as e:
            raise InvalidInput(f"{path}: not a witness key: {e}", code="witness_key_invalid") from e
    if not create:
        raise InvalidInput(
            f"{path}: no witness key; create one with "
            f"`xinyi audit witness-key --department {department} --key {path}`",
            code="witness_key_missing",
        )
    signer = Ed25519Signer.generate(WITNESS_KEY_NAME.format(department=department))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(signer.private_key_text() + "\n")
    return signer


@group.command("witness-key")
@click.option("--department", required=True, help="The department this witness speaks for.")
@click.option(
    "--key",
    "key_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Private key file (default: ./witness-<department>.key); created when missing.",
)
def witness_key(department: str, key_path: Path | None) -> None:
    """Create (if missing) the witness's Ed25519 key and print its cosignature vkey, which
    the operator registers with `xinyi audit add-witness DEPARTMENT VKEY`."""
    path = key_path or _default_key(department)
    existed = path.exists()
    signer = _load_or_create_key(path, department, create=True)
    click.echo(("using " if existed else "created ") + str(path), err=True)
    click.echo(signer.verifier(ALG_COSIGNATURE_V1).vkey)


class HttpLog:
    """The witness's view of the log over the gateway's public audit endpoints."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self.department: str | None = None  # as the gateway attributes our cosignature

    def _get(self, path: str, **params: Any) -> httpx.Response:
        try:
            resp = self.client.get(path, params=params)
        except httpx.HTTPError as e:
            raise AuditUnavailable(f"the gateway did not answer: {e}") from e
        self._check(resp)
        return resp

    @staticmethod
    def _check(resp: httpx.Response) -> None:
        if resp.is_success:
            return
        try:
            body = resp.json()
            code, message = str(body["error"]), str(body["message"])
        except (ValueError, KeyError, TypeError):
            code, message = "http_error", f"HTTP {resp.status_code}"
        if code == LogInconsistent.code:
            raise LogInconsistent(f"the gateway cannot serve the log: {message}")
        raise Error(f"the gateway refused: {message}", code=code)

    def vkey(self) -> str:
        return self._get("/v1/audit/vkey").text.strip()

    def checkpoint(self) -> str:
        return self._get("/v1/audit/checkpoint").text

    def key_transitions(self) -> list[str]:
        body = self._get("/v1/audit/key-transitions").json()
        return [str(t) for t in body["transitions"]]

    def consistency(self, first: int, second: int) -> list[bytes]:
        body = self._get("/v1/audit/proof/consistency", first=first, second=second).json()
        return [unb64(h, "a proof hash") for h in body["hashes"]]

    def leaves(self, start: int, end: int) -> list[bytes]:
        raw = self._get("/v1/audit/leaves", start=start, end=end).content
        if len(raw) % 32:
            raise LogInconsistent("the gateway served leaf hashes that are not 32 bytes each")
        return [raw[i : i + 32] for i in range(0, len(raw), 32)]

    def cosign(self, size: int, line: str) -> None:
        try:
            resp = self.client.post(
                "/v1/audit/cosignatures", json={"size": size, "cosignature": line}
            )
        except httpx.HTTPError as e:
            raise AuditUnavailable(f"the gateway did not answer: {e}") from e
        self._check(resp)
        self.department = str(resp.json().get("department"))


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def run_witness(
    client: httpx.Client,
    *,
    department: str,
    state_path: Path,
    key_path: Path,
    log_vkey: str | None = None,
    full: bool = False,
    now: int | None = None,
    accept_transition: str | None = None,
) -> witnessing.WitnessState:
    """One witness round over HTTP; raises LogInconsistent/SignatureInvalid when the
    log misbehaves (the state file is then left as it was)."""
    signer = _load_or_create_key(key_path, department, create=False)
    log = HttpLog(client)
    if state_path.exists():
        state = witnessing.WitnessState.from_json(state_path.read_text(encoding="utf-8"))
        if accept_transition is not None:
            state = witnessing.accept_transition(state, accept_transition)
        if log_vkey and Verifier.from_vkey(log_vkey) != state.log_key:
            raise SignatureInvalid(
                f"the log key given ({log_vkey}) is not the one pinned in {state_path}; "
                "a log key changes only through a key transition the old key signed "
                "(followed automatically, or --accept-transition FILE)"
            )
    else:
        if accept_transition is not None:
            raise InvalidInput(
                f"{state_path}: no witness state yet, so no pinned key to move on from; "
                "pin the log key with --log-vkey on the first run",
                code="witness_state_missing",
            )
        if log_vkey is None:
            log_vkey = log.vkey()
            click.echo(
                f"warning: trusting the log key on first use: {log_vkey} (pin it with --log-vkey)",
                err=True,
            )
        state = witnessing.WitnessState(log_vkey=Verifier.from_vkey(log_vkey).vkey)
    new = witnessing.run(
        state,
        log,
        signer,
        int(time.time()) if now is None else now,
        full=full,
        transitions=log.key_transitions,
    )
    _write_atomically(state_path, new.to_json())
    if log.department is not None and log.department != department:
        raise InvalidInput(
            f"the gateway registered this witness key for department {log.department!r}",
            code="witness_department_mismatch",
        )
    return new


@group.command()
@click.option(
    "--gateway", required=True, help="Base URL of the gateway, e.g. http://127.0.0.1:8600"
)
@click.option("--department", required=True, help="The department this witness speaks for.")
@click.option(
    "--state",
    "state_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The witness's memory: the last checkpoint it cosigned and what it audited.",
)
@click.option(
    "--key",
    "key_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The witness's private key (default: ./witness-<department>.key; create it with "
    "`xinyi audit witness-key`).",
)
@click.option("--log-vkey", default=None, help="The log's verifier key to pin on the first run.")
@click.option("--full", is_flag=True, help="Re-audit every entry from index 0, not only new ones.")
@click.option(
    "--accept-transition",
    "transition_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="A log key transition statement (from `xinyi audit rotate-log-key --out`); it "
    "must be signed by the pinned log key. Without it, the gateway's own statements "
    "(GET /v1/audit/key-transitions) are followed when the log key changed.",
)
def witness(
    gateway: str,
    department: str,
    state_path: Path,
    key_path: Path | None,
    log_vkey: str | None,
    full: bool,
    transition_file: Path | None,
) -> None:
    """Check the newest checkpoint against the last one this department cosigned
    (signature, consistency proof, the new entries' hashes) and cosign it. Refuses
    rollbacks and forks with exit code 1."""
    with httpx.Client(base_url=gateway.rstrip("/"), timeout=30.0) as client:
        try:
            new = run_witness(
                client,
                department=department,
                state_path=state_path,
                key_path=key_path or _default_key(department),
                log_vkey=log_vkey,
                full=full,
                accept_transition=(
                    transition_file.read_text(encoding="utf-8") if transition_file else None
                ),
            )
        except (LogInconsistent, SignatureInvalid) as e:
            _refuse(f"{e.message} (state left at {state_path})")
            return
    click.echo(f"cosigned the checkpoint of size {new.size} for department {department}")
