"""Demo steps for the audit log (wired into `xinyi demo` by ``cli.demo.steps``).

Run them after the steps that create traffic (consents, reports, verifications):
``step_audit_witness_joins`` → ``step_audit_department_view`` →
``step_audit_witness_cosigns`` → ``step_audit_verified_checkpoint``. Each talks to the
gateway over HTTP as outside parties do; only the operator's acts (registering the
witness key, forcing a checkpoint instead of waiting for the background loop, the
full database verification) use the instance directly, as `xinyi audit ...` would.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from audit import merkle
from audit.checkpoint import open_checkpoint
from audit.note import ALG_COSIGNATURE_V1, Verifier, parse_note
from audit.service import AuditLog
from cli.audit import _load_or_create_key, run_witness
from cli.demo.story import Story, say, step
from common.db import make_engine
from registry import Registry

DEPARTMENT = "tax"
AUDITOR = ("tax_auditor", "tax-auditor-demo-password")


@contextmanager
def _operator_log(story: Story) -> Iterator[AuditLog]:
    from keys import KeyRing

    engine = make_engine(story.settings.database_url)
    try:
        yield AuditLog(engine, story.settings, KeyRing(story.settings).checkpoint_signer())
    finally:
        engine.dispose()


def _witness_files(story: Story) -> tuple[Path, Path]:
    folder = story.home / "witness"
    folder.mkdir(exist_ok=True, mode=0o700)
    return folder / f"{DEPARTMENT}.key", folder / f"{DEPARTMENT}-state.json"


def step_audit_witness_joins(story: Story) -> None:
    """The tax bureau makes its own witness key; the operator registers it."""
    step("审计日志见证 · the tax bureau becomes a witness of the audit log")
    key_path, _ = _witness_files(story)
    signer = _load_or_create_key(key_path, DEPARTMENT, create=True)
    vkey = signer.verifier(ALG_COSIGNATURE_V1).vkey
    with _operator_log(story) as log:
        log.register_witness(DEPARTMENT, vkey)
    say(f"witness key (kept by the tax bureau): {key_path}")
    say(f"registered cosignature vkey: {vkey}")
    say(f"log verifier key:            {story.http.get('/v1/audit/vkey').text.strip()}")


def _auditor(story: Story) -> httpx.Client:
    engine = make_engine(story.settings.database_url)
    try:
        registry = Registry(engine)
        if registry.get_department(DEPARTMENT) is None:
            registry.add_department(DEPARTMENT, name="税务局")
        if registry.authenticate(*AUDITOR) is None:
            registry.add_user(
                login=AUDITOR[0], password=AUDITOR[1], role="department", department_id=DEPARTMENT
            )
    finally:
        engine.dispose()
    story.tax_auditor = AUDITOR
    return story.person(*AUDITOR)


def step_audit_department_view(story: Story) -> None:
    """The tax bureau sees every access to its data, and checks one against the log."""
    step("税务局查看数据使用记录 · the tax bureau's view of who used its data")
    with _operator_log(story) as log:
        log.background_step()
        log.checkpoint(force=True)
    auditor = _auditor(story)
    rows, after = [], -1
    while True:
        page = auditor.get("/v1/audit/entries", params={"after": after, "limit": 200}).json()
        rows += page["entries"]
        if page["next"] is None:
            break
        after = page["next"]
    say(f"{len(rows)} entries touch tax data (showing the last 8):")
    say(f"  {'index':>5}  {'institution':<14} {'enterprise':<18}  {'operation':<16} decision")
    for row in rows[-8:]:
        e = row["entry"]
        say(
            f"  {row['index']:>5}  {e['institution'] or '-':<14} {e['enterprise'] or '-':<18}  "
            f"{e['operation']:<16} {e['decision']}"
        )
    if not rows:
        return
    latest = rows[-1]
    proof = auditor.get("/v1/audit/proof/inclusion", params={"index": latest["index"]}).json()
    key = Verifier.from_vkey(story.http.get("/v1/audit/vkey").text)
    cp = open_checkpoint(story.http.get("/v1/audit/checkpoint").text, [key]).checkpoint
    ok = merkle.verify_inclusion(
        latest["index"],
        proof["size"],
        base64.b64decode(latest["leaf_hash"]),
        [base64.b64decode(h) for h in proof["hashes"]],
        cp.root,
    )
    say(
        f"entry {latest['index']} is in the signed tree of size {cp.size}: "
        f"{'verified' if ok else 'NOT VERIFIED'} ({len(proof['hashes'])}-hash RFC 9162 proof)"
    )


def step_audit_witness_cosigns(story: Story) -> None:
    """The tax bureau's witness checks the newest checkpoint and cosigns it."""
    step("见证人联署检查点 · the tax bureau's witness cosigns the checkpoint")
    key_path, state_path = _witness_files(story)
    with _operator_log(story) as log:
        log.background_step()
        log.checkpoint(force=True)
    with httpx.Client(base_url=story.base, timeout=30) as client:
        state = run_witness(
            client,
            department=DEPARTMENT,
            state_path=state_path,
            key_path=key_path,
            log_vkey=client.get("/v1/audit/vkey").text.strip(),
        )
    say(f"checked signature, consistency and {state.size} entry hashes; cosigned size {state.size}")
    say(f"witness state: {state_path}")


def step_audit_verified_checkpoint(story: Story) -> None:
    """A verified checkpoint with its cosignature, and a full verification of the log."""
    step("已验证的检查点 · a verified checkpoint, and the whole log verified")
    text = story.http.get("/v1/audit/checkpoint").text
    key = Verifier.from_vkey(story.http.get("/v1/audit/vkey").text)
    signed = open_checkpoint(text, [key])
    witnesses = story.http.get("/v1/audit/witnesses").json()["witnesses"]
    note = parse_note(text)
    cosigned = [
        w["department"]
        for w in witnesses
        if any(Verifier.from_vkey(w["vkey"]).verify(note.text, s) for s in note.signatures)
    ]
    say(text.rstrip())
    say(
        f"log signature valid; cosigned by: {', '.join(cosigned) or 'nobody yet'} "
        f"(size {signed.checkpoint.size})"
    )
    _, state_path = _witness_files(story)
    external = state_path.read_text(encoding="utf-8") if state_path.exists() else None
    with _operator_log(story) as log:
        report = log.verify(external=external)
    say(
        f"xinyi audit verify: {'OK' if report.ok else 'FAILED'}, {report.entries_checked} "
        f"entries, {report.checkpoints_checked} checkpoints"
        + (", consistent with the witness's checkpoint" if external else "")
    )
