"""Demo steps of federated training, for ``xinyi demo`` (the lead wires them in):

1. ``step_train_grants``: the bank asks the enterprises of the training half of its loan
   book for consent to op ``train`` (purpose ``joint_model_training``, the categories of
   the demo model's gateway columns). Most approve; a few decline; a few approve and then
   revoke before training starts;
2. ``step_train``: the bank trains the joint model with the gateway over HTTP
   (``xinyi bank train``: CKKS under two key pairs, masked products, flooded sums). The
   gateway leaves out the revoked enterprises and says so. Before it, the same bank tries
   the extraction of issue 12 (a session of two enterprises and one gateway column,
   which would have let it read raw values) and is refused. The bank consents to
   serving, so the joint model is registered under the bank's own prefix
   (``story.model_ref``, which the scoring steps use), pending review. The training
   report (JSON and PNG) goes into the demo folder;
3. ``step_train_review``: the operator opens the model's review page on the console
   (features, departments, training size, weight summary) and approves it; only then
   does it serve.

Run them after ``cli.demo.score.step_bank_onboarding`` and ``step_city`` and before
``step_joint_model``. Facts read: ``bank`` (``DemoBank``), ``city_dir``, optional
``train_epochs`` (default 8) and ``train_enterprises`` (default: the whole training
half). Facts written: ``train_grants``, ``train_revoked``, ``model_ref``,
``train_report``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import numpy as np

from cli.demo.story import Story, say, step

MODEL_ID = "sme-risk-federated"
LOG_COLUMNS = ("avg_balance", "loan_amount")


def _bank(story: Story) -> Any:
    return story.the_bank()


def _training_book(story: Story) -> Any:
    """The training half of the bank's loan book, amounts on a log scale (the model's
    bank features name it: ``log1p(avg_balance)``)."""
    from bank.training import LoanBook
    from cli.demo.score import _loan_book

    book = _loan_book(story)
    train, _ = book.split()
    limit = story.train_enterprises
    if limit:
        train = train[:limit]
    x = book.x[train].copy()
    names = []
    for j, c in enumerate(book.columns):
        if c in LOG_COLUMNS:
            x[:, j] = np.log1p(np.maximum(x[:, j], 0.0))
            names.append(f"log1p({c})")
        else:
            names.append(c)
    y = np.where(book.y[train] == 1, 1.0, -1.0)
    return LoanBook([book.usccs[i] for i in train], tuple(names), x, y)


def _columns() -> list[str]:
    from records import synth

    return list(synth.MODEL_COLUMNS)


def step_train_grants(story: Story) -> None:
    """The training set's enterprises grant op train; a few decline, a few revoke."""
    from bank.training import TokenAuth, grant_categories
    from cli.demo.score import _approve_in_process

    step("Consent to joint training / 联合建模授权")
    bank = _bank(story)
    book = _training_book(story)
    http = httpx.Client(base_url=story.base, auth=TokenAuth(bank.client.token), timeout=60)
    categories = grant_categories(http, _columns())
    rng = np.random.default_rng(7)
    asked: list[tuple[str, str]] = []
    declined = 0
    for uscc in book.usccs:
        answer = bank.client.request_consent(
            uscc,
            purpose="joint_model_training",
            ops=["train"],
            categories=categories,
            duration_days=90,
            max_uses=3,
        )
        if rng.random() < 0.03:
            declined += 1  # never approved: the bank has no grant for it
            continue
        asked.append((str(answer["id"]), uscc))
    grants = _approve_in_process(story, asked)
    revoked = _revoke_some(story, asked[:5])
    say(
        f"{len(book.usccs)} enterprises asked for op train on {categories}; "
        f"{len(grants)} approved, {declined} did not answer, {len(revoked)} approved and "
        "then revoked"
    )
    story.train_grants = grants
    story.train_revoked = revoked


def _revoke_some(story: Story, consents: list[tuple[str, str]]) -> list[str]:
    """Demo shortcut: these enterprises revoke in-process (the same call and audit entry
    as POST /v1/consents/{id}/revoke)."""
    from gateway import create_app
    from gateway.enforce import ConsentAudit

    app = create_app(story.settings, background=False)
    svc = app.extensions["xinyi"]
    try:
        with app.test_request_context():
            for consent_id, uscc in consents:
                svc.consent.act(consent_id, "revoke", uscc, audit=ConsentAudit(svc))
    finally:
        svc.stop()
    return [u for _, u in consents]


def _extraction_attempt(http: httpx.Client, grants: dict[str, str]) -> None:
    """Issue 12, attack 1: two enterprises whose values the bank knows and one gateway
    column would let it solve the standardization and read every other row's raw value.
    Refused before any grant is used."""
    import base64

    from federated.he import SecretContext
    from federated.training import PARAMS

    two = list(grants.items())[:2]
    body = {
        "enterprises": [{"uscc": u, "grant": g} for u, g in two],
        "gateway_features": ["tax.paid_12m"],
        "bank_features": ["balance"],
        "context": base64.b64encode(SecretContext.generate(PARAMS).public_bytes()).decode(),
    }
    r = http.post("/v1/training/sessions", json=body)
    say(
        "an extraction attempt first: a session of 2 enterprises over 1 gateway column "
        f"(tax.paid_12m) is refused: {r.status_code} {r.json().get('error')} "
        "(no grant used, nothing stored)"
    )


def step_train(story: Story) -> None:
    """The bank and the gateway train the joint model; it is registered, pending review."""
    from bank.training import TokenAuth, train_with_gateway, write_report

    step("Federated training under HE / 同态加密联合建模")
    bank = _bank(story)
    book = _training_book(story)
    grants = story.train_grants
    http = httpx.Client(base_url=story.base, auth=TokenAuth(bank.client.token), timeout=300)
    _extraction_attempt(http, grants)
    say("the honest session: the training half of the loan book over the model's 16 columns")
    outcome = train_with_gateway(
        http,
        book,
        grants,
        _columns(),
        epochs=story.train_epochs,
        seed=7,
        model_id=MODEL_ID,
        register=True,
        progress=False,
        say=say,
    )
    r = outcome.report
    for e in r["epochs"]:
        auc = "" if e["validation_auc"] is None else f", validation AUC {e['validation_auc']:.3f}"
        say(f"  epoch {e['epoch']}: loss {e['loss']:.4f}{auc} ({e['seconds']:.1f} s)")
    sent, got = r["bytes"]["bank_to_gateway"], r["bytes"]["gateway_to_bank"]
    say(
        f"{r['rows']['train']} enterprises trained in {r['seconds']['training']} s; "
        f"{(sent + got) / 1e6:.0f} MB exchanged, all of it ciphertext or flooded sums"
    )
    report = Path(story.home) / "training-report.json"
    png = write_report(r, report)
    say(f"training report: {report} and {png}")
    if outcome.model:
        story.model_ref = f"{outcome.model['id']}@{outcome.model['version']}"
        say(
            f"joint model {story.model_ref} registered (the bank consented to "
            "serving); it is pending until the operator approves it"
        )
    story.train_report = str(report)


def step_train_review(story: Story) -> None:
    """The operator reviews the trained model on the console and approves it."""
    import re

    from cli.demo.data import account

    ref = story.model_ref
    if not ref:
        return
    step("The operator reviews the model / 运营方审核模型")
    operator = account(story, "operator", "operator_demo")
    page = operator.get(f"/operator/models/{ref}", params={"lang": "en"})
    page.raise_for_status()
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    size = re.search(r"Enterprises trained on</dt><dd>(\d+)", page.text)
    say(
        f"review page /operator/models/{ref}: {size.group(1) if size else '?'} enterprises "
        "trained on, features, departments, weight summary"
    )
    r = operator.post(
        f"/operator/models/{ref}/review",
        data={"decision": "approve", "csrf_token": token.group(1) if token else ""},
    )
    if r.status_code != 302:
        raise RuntimeError(f"the review was refused: {r.status_code}")
    say(f"approved on the console (an audit log entry, operation model.approve): {ref} serves")
