"""The department's witness page: the last checkpoint it cosigned, and a loud warning
when the log's current checkpoint does not extend it."""

from __future__ import annotations

import time
from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient

from audit import store as audit_store
from audit.checkpoint import Checkpoint, sign_checkpoint
from audit.note import ALG_COSIGNATURE_V1, Ed25519Signer
from common.db import write_session
from tests.web.conftest import Bank, Person, request_consent, settle


def _cosign(app: Flask) -> int:
    """The tax department's witness cosigns the log's newest checkpoint."""
    audit = app.extensions["xinyi"].audit
    witness = Ed25519Signer.generate("xinyi-witness/tax")
    audit.register_witness("tax", witness.verifier(ALG_COSIGNATURE_V1).vkey)
    cp = audit.latest_checkpoint()
    audit.add_cosignature(cp.checkpoint.size, witness.cosign(cp.note.text, int(time.time())).line())
    return int(cp.checkpoint.size)


def test_witness_page_shows_the_last_cosigned_checkpoint_and_how_far_behind_it_is(
    app: Flask,
    client: FlaskClient,
    make_bank: Callable[..., Bank],
    make_person: Callable[..., Person],
) -> None:
    bank = make_bank()
    tax = make_person("department", department="tax")
    request_consent(bank, client)
    settle(app)
    size = _cosign(app)
    request_consent(bank, client)
    request_consent(bank, client)
    settle(app)
    page = tax.page("/department/witness")
    assert "xinyi-witness/tax" in page
    assert f"<dd>{size}</dd>" in page
    assert "落后当前日志 2 条记录" in page
    assert 'role="alert"' not in page


def test_a_forked_checkpoint_after_the_cosigned_one_raises_the_alarm(
    app: Flask,
    client: FlaskClient,
    make_bank: Callable[..., Bank],
    make_person: Callable[..., Person],
) -> None:
    svc = app.extensions["xinyi"]
    bank = make_bank()
    tax = make_person("department", department="tax")
    request_consent(bank, client)
    settle(app)
    _cosign(app)
    request_consent(bank, client)
    svc.audit.integrate_pending()
    # Whoever holds the log key signs a checkpoint of the current size with another root:
    # a fork. The stored tree cannot prove it extends what the department cosigned.
    size = svc.audit.size()
    forged = sign_checkpoint(
        Checkpoint(svc.audit.origin, size, bytes(32)), svc.keys.checkpoint_signer()
    )
    with write_session(svc.engine) as s:
        audit_store.insert_checkpoint(
            s, audit_store.StoredCheckpoint(size, bytes(32), forged.text(), time.time())
        )
    page = tax.page("/department/witness")
    assert 'role="alert"' in page
    assert "审计日志未通过一致性检查" in page
    english = tax.page("/department/witness?lang=en")
    assert "FAILED a consistency check" in english
