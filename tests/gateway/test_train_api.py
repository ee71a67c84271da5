"""Federated training over HTTP: sessions, consent per enterprise, resumption, refusals,
registration of the joint model."""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskClient

from bank.training import LoanBook, TokenAuth, train_with_gateway
from common.uscc import complete
from federated.he import SecretContext
from federated.training import PARAMS, Kind, Message, roc_auc
from gateway.enforce import ConsentAudit
from tests.gateway.conftest import Bank

# judicial is public: logged, but no grant needs to cover it.
COLUMNS = [
    "tax.paid_12m",
    "log1p(tax.revenue_12m)",
    "social_security.insured_employees",
    "judicial.enforcement_cases",
]
CATEGORIES = ["social_security", "tax"]


def uscc(k: int) -> str:
    return complete(f"91330100{k:09d}")


@dataclass
class City:
    """Enterprises, the gateway's (fake) department data and the bank's loan book."""

    usccs: list[str]
    gateway: dict[str, np.ndarray]
    book: LoanBook


def make_city(n: int, seed: int = 5) -> City:
    rng = np.random.default_rng(seed)
    codes = [uscc(k) for k in range(n)]
    g = rng.normal(size=(n, 4)) * [1e5, 1.0, 20, 1] + [5e5, 0, 50, 2]
    xb = rng.normal(size=(n, 2))
    logit = 2 * (g[:, 0] - 5e5) / 1e5 - 1.5 * g[:, 1] + 1.5 * xb[:, 0] - 0.5
    y = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), 1.0, -1.0)
    return City(
        codes,
        {c: g[k] for k, c in enumerate(codes)},
        LoanBook(codes, ("balance", "years"), xb, y),
    )


def feature_source(city: City, missing: set[str]) -> Any:
    def source(_svc: Any, usccs: list[str], columns: list[str]) -> np.ndarray:
        assert list(columns) == COLUMNS
        out = np.full((len(usccs), len(columns)), np.nan)
        for i, u in enumerate(usccs):
            if u in city.gateway and u not in missing:
                out[i] = city.gateway[u]
        return out

    source.city = city  # type: ignore[attr-defined]  # the population (see _population)
    return source


@pytest.fixture
def settings(database_url: str, make_settings: Callable[..., Any]) -> Any:
    """These sessions are small (tens of enterprises) to stay fast; the governance
    minimums at their defaults are tested in tests/gateway/test_governance.py."""
    return make_settings(database_url=database_url, training={"min_enterprises": 2})


@pytest.fixture(autouse=True)
def _population(app: Flask) -> None:
    """The gateway's population is the whole fake city the feature source serves."""

    def population(svc: Any, columns: list[str]) -> np.ndarray:
        source = svc.training_features
        return np.asarray(source(svc, source.city.usccs, columns))

    app.extensions["xinyi"].training_population = population


def grants(
    app: Flask, client: FlaskClient, bank: Bank, usccs: list[str], *, ops: list[str], then: str = ""
) -> dict[str, str]:
    """Consent asked over HTTP; the enterprises act in-process (the same service call and
    audit entry as the approve/revoke routes, without a sign-in per enterprise)."""
    svc = app.extensions["xinyi"]
    purpose = "joint_model_training" if ops == ["train"] else "working_capital_loan"
    out: dict[str, str] = {}
    with app.test_request_context():
        for u in usccs:
            r = bank.post(
                client,
                "/v1/consents",
                {
                    "enterprise": u,
                    "purpose": purpose,
                    "ops": ops,
                    "categories": CATEGORIES,
                    "duration_days": 30,
                    "max_uses": 5,
                },
            )
            assert r.status_code == 201, r.get_json()
            row = svc.consent.act(r.get_json()["id"], "approve", u, audit=ConsentAudit(svc))
            out[u] = row.grant_jwt
            if then:
                svc.consent.act(r.get_json()["id"], then, u, audit=ConsentAudit(svc))
    return out


def http_for(app: Flask, bank: Bank, transport: httpx.BaseTransport | None = None) -> httpx.Client:
    return httpx.Client(
        transport=transport or httpx.WSGITransport(app=app),
        base_url="http://testserver",
        auth=TokenAuth(lambda fresh=False: bank.token),
        timeout=60,
    )


@pytest.fixture
def bank(make_bank: Callable[..., Bank]) -> Bank:
    return make_bank("train_bank")


# The whole story ---------------------------------------------------------------------------


def test_training_leaves_out_enterprises_without_an_active_train_grant_and_says_so(
    app: Flask, client: FlaskClient, bank: Bank
) -> None:
    city = make_city(76)
    u = city.usccs
    good = grants(app, client, bank, u[:61], ops=["train"])
    revoked = grants(app, client, bank, u[61:64], ops=["train"], then="revoke")
    wrong_op = grants(app, client, bank, u[64:67], ops=["score"])
    forged = {u[67]: "eyJhbGciOiJub25lIn0.e30."}
    no_data = {u[0]}
    app.extensions["xinyi"].training_features = feature_source(city, no_data)
    said: list[str] = []
    outcome = train_with_gateway(
        http_for(app, bank),
        city.book,
        {**good, **revoked, **wrong_op, **forged},
        COLUMNS,
        epochs=3,
        seed=1,
        model_id="trained-model",
        register=True,
        progress=False,
        say=said.append,
    )
    refused = {r["uscc"]: r["error"] for r in outcome.report["refused"]}
    assert refused == {
        **{x: "grant_revoked" for x in revoked},
        **{x: "scope_operation" for x in wrong_op},
        u[67]: "grant_invalid",
        u[0]: "no_data",
    }
    assert all(isinstance(r["audit_index"], int) for r in outcome.report["refused"])
    assert outcome.report["left_out_without_grant"] == 76 - 68
    assert any("left out 8 enterprises" in s for s in said)
    assert any("8 enterprises of the loan book have no op-train grant" in s for s in said)
    rows = outcome.report["rows"]
    assert rows["train"] + rows["validation"] == 60
    assert len(outcome.report["epochs"]) == 3

    # Registered under the session, the gateway half from the gateway, the bank half as sent.
    from federated import store as fstore

    model = fstore.get_model(app.extensions["xinyi"].engine, "train_bank/trained-model")
    assert model.registered_by == f"training:{outcome.session_id}"
    assert model.gateway_features == tuple(COLUMNS)
    assert model.bank_weights == outcome.bank_half.weights
    assert (model.owner, model.status) == ("train_bank", "pending")
    assert outcome.model == {
        "id": "train_bank/trained-model",
        "version": model.version,
        "status": "pending",
    }
    # The joint model ranks the enterprises it learned from.
    xs = np.array([city.gateway[c] for c in u[1:61]])
    xs[:, 1] = np.log1p(np.maximum(xs[:, 1], 0))  # log1p(tax.revenue_12m) as the store encodes
    logits = [model.logit(g, b) for g, b in zip(xs, city.book.x[1:61], strict=True)]
    assert roc_auc(city.book.y[1:61], np.array(logits)) > 0.75

    status = bank.get(client, f"/v1/training/sessions/{outcome.session_id}").get_json()
    assert status["status"] == "registered" and status["training_finished"]
    assert len(status["refused_enterprises"]) == 8
    listed = bank.get(client, "/v1/training/sessions").get_json()["sessions"]
    assert [s["id"] for s in listed] == [outcome.session_id]


def test_an_institution_with_no_usable_grant_cannot_train(
    app: Flask, client: FlaskClient, bank: Bank
) -> None:
    city = make_city(4)
    revoked = grants(app, client, bank, city.usccs, ops=["train"], then="revoke")
    app.extensions["xinyi"].training_features = feature_source(city, set())
    r = bank.post(client, "/v1/training/sessions", _open_body(revoked))
    assert r.status_code == 403 and r.get_json()["error"] == "too_few_enterprises"


# Opening a session -------------------------------------------------------------------------


def _open_body(grant_map: dict[str, str], **kw: Any) -> dict[str, Any]:
    secret = SecretContext.generate(PARAMS)
    return {
        "enterprises": [{"uscc": u, "grant": g} for u, g in grant_map.items()],
        "gateway_features": COLUMNS,
        "bank_features": ["balance", "years"],
        "context": base64.b64encode(secret.public_bytes()).decode(),
        "plan": {"epochs": 1},
        **kw,
    }


BAD_OPENINGS: list[tuple[dict[str, Any], str]] = [
    ({"gateway_features": ["tax.nonexistent"]}, "unknown_feature"),
    ({"gateway_features": ["registration.name"]}, "unknown_feature"),
    ({"bank_features": []}, "invalid_json"),
    ({"context": "not base64!"}, "invalid_base64"),
    ({"plan": {"epochs": 0}}, "training_plan"),
    ({"surprise": 1}, "invalid_json"),
]


def test_a_bad_opening_request_is_refused_before_any_grant_is_used(
    app: Flask, client: FlaskClient, bank: Bank
) -> None:
    city = make_city(3)
    g = grants(app, client, bank, city.usccs, ops=["train"])
    for change, code in BAD_OPENINGS:
        r = bank.post(client, "/v1/training/sessions", {**_open_body(g), **change})
        assert (r.status_code, r.get_json()["error"]) == (400, code), change
    consents = bank.get(client, "/v1/consents").get_json()["consents"]
    assert consents and all(c["uses"] == 0 for c in consents)


def test_a_context_under_other_parameters_or_with_a_secret_key_is_refused(
    app: Flask, client: FlaskClient, bank: Bank
) -> None:
    from federated.he import CKKSParams

    city = make_city(3)
    g = grants(app, client, bank, city.usccs, ops=["train"])
    scoring_params = SecretContext.generate(CKKSParams())
    body = _open_body(g, context=base64.b64encode(scoring_params.public_bytes()).decode())
    r = bank.post(client, "/v1/training/sessions", body)
    assert r.status_code == 400 and r.get_json()["error"] == "context_parameters"
    own = SecretContext.generate(PARAMS)
    body = _open_body(g, context=base64.b64encode(own.secret_bytes()).decode())
    r = bank.post(client, "/v1/training/sessions", body)
    assert r.status_code == 400 and r.get_json()["error"] == "context_has_secret_key"


# Messages ------------------------------------------------------------------------------------


@pytest.fixture
def session(app: Flask, client: FlaskClient, bank: Bank) -> dict[str, Any]:
    city = make_city(6)
    g = grants(app, client, bank, city.usccs, ops=["train"])
    app.extensions["xinyi"].training_features = feature_source(city, set())
    r = bank.post(client, "/v1/training/sessions", _open_body(g))
    assert r.status_code == 201, r.get_json()
    return dict(r.get_json())


def _post_frame(client: FlaskClient, bank: Bank, sid: str, frame: bytes, **kw: Any) -> Any:
    return client.post(
        f"/v1/training/sessions/{sid}/messages",
        data=frame,
        headers={**bank.headers(), "Content-Type": kw.get("mime", "application/octet-stream")},
    )


def test_replayed_malformed_and_foreign_frames_are_refused(
    client: FlaskClient, bank: Bank, make_bank: Callable[..., Bank], session: dict[str, Any]
) -> None:
    sid = session["id"]
    from federated.training import BankTrainer, TrainingPlan

    plan = TrainingPlan.from_dict(session["plan"])
    trainer = BankTrainer(
        plan,
        np.zeros((plan.n_train, plan.bank_columns)),
        np.ones(plan.n_train),
        np.zeros((plan.n_validation, plan.bank_columns)),
        np.ones(plan.n_validation),
    )
    columns = trainer.batch_request()
    r = _post_frame(client, bank, sid, columns)
    assert r.status_code == 200 and r.mimetype == "application/octet-stream"
    assert Message.from_bytes(r.data).kind == Kind.PRODUCTS
    stale = Message(Kind.GATEWAY_SUMS, sid, 1, 0, 0, (), (b"x",)).to_bytes()
    r = _post_frame(client, bank, sid, stale)
    assert r.status_code == 409 and r.get_json()["error"] == "training_message_replayed"
    r = _post_frame(client, bank, sid, b"XYVT\x02garbage")
    assert r.status_code == 400 and r.get_json()["error"] == "training_message_malformed"
    # Frames may exceed the app's JSON request limit (ciphertexts of many columns).
    big = b"XYVT\x02" + b"\x00" * (5 * 1024 * 1024)
    r = _post_frame(client, bank, sid, big)
    assert r.status_code == 400 and r.get_json()["error"] == "training_message_malformed"
    r = _post_frame(client, bank, sid, columns, mime="application/json")
    assert r.status_code == 400 and r.get_json()["error"] == "invalid_media_type"
    other = make_bank("other_bank")
    r = _post_frame(client, other, sid, Message(Kind.COLUMNS, sid, 9, 0, 0).to_bytes())
    assert r.status_code == 404 and r.get_json()["error"] == "training_session_not_found"
    assert other.get(client, f"/v1/training/sessions/{sid}").status_code == 404
    status = bank.get(client, f"/v1/training/sessions/{sid}").get_json()
    assert (status["last_seq"], status["next_epoch"], status["next_batch"]) == (1, 0, 0)


def test_the_issues_forged_probes_over_http_meet_no_decryption(
    client: FlaskClient,
    bank: Bank,
    session: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 12, attack 2, through the public API: the bank posts the forged ciphertexts
    (0, K·Σ 3^t·X^{i_t}) as its columns. The gateway answers with sum-only products and
    never makes a decryptor or a key (it has none); tests/federated/test_leakage.py shows
    what the answers are worth."""
    import tenseal.sealapi as sealapi

    from federated.training import BankTrainer, TrainingPlan
    from tests.federated.attack import Ntt, ternary_probe

    made: list[str] = []
    for name in ("Decryptor", "KeyGenerator"):
        original = getattr(sealapi, name)

        def spy(*args: Any, _original: Any = original, _name: str = name) -> Any:
            made.append(_name)
            return _original(*args)

        monkeypatch.setattr(sealapi, name, spy)
    plan = TrainingPlan.from_dict(session["plan"])
    trainer = BankTrainer(
        plan,
        np.zeros((plan.n_train, plan.bank_columns)),
        np.ones(plan.n_train),
        np.zeros((plan.n_validation, plan.bank_columns)),
        np.ones(plan.n_validation),
    )
    columns = Message.from_bytes(trainer.batch_request())
    made.clear()  # the bank's own key generation above
    he = trainer.he
    probe = Ntt(he).forward(ternary_probe([5 + 31 * t for t in range(20)], 2**20, he.n))
    forged = he.ciphertext_bytes(
        he.build_ciphertext(
            he.input_parms_id, he.input_scale, np.stack([np.zeros_like(probe), probe])
        )
    )
    frame = dataclasses.replace(
        columns, blobs=(*columns.blobs[:2], *[forged] * plan.bank_ciphertexts)
    ).to_bytes()
    r = _post_frame(client, bank, session["id"], frame)
    assert r.status_code == 200
    answer = Message.from_bytes(r.data)
    assert answer.kind == Kind.PRODUCTS and len(answer.blobs) == 1 + plan.products
    assert made == []


def test_finishing_before_the_last_epoch_is_refused(
    client: FlaskClient, bank: Bank, session: dict[str, Any]
) -> None:
    r = bank.post(client, f"/v1/training/sessions/{session['id']}/finish", {"register": False})
    assert r.status_code == 409 and r.get_json()["error"] == "training_not_finished"


# A dropped connection ------------------------------------------------------------------------


class Dropping(httpx.BaseTransport):
    """Loses chosen message requests: before the gateway sees them, or their answers after
    it processed them (counted over POSTs to .../messages)."""

    def __init__(self, app: Flask, lose_request: set[int], lose_answer: set[int]) -> None:
        self.inner = httpx.WSGITransport(app=app)
        self.n = 0
        self.lose_request, self.lose_answer = lose_request, lose_answer

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/messages"):
            self.n += 1
            if self.n in self.lose_request:
                raise httpx.ConnectError("dropped before the gateway", request=request)
            response = self.inner.handle_request(request)
            if self.n in self.lose_answer:
                response.read()
                raise httpx.ReadError("dropped after the gateway answered", request=request)
            return response
        return self.inner.handle_request(request)


def test_a_session_resumes_from_the_last_completed_batch_after_a_dropped_connection(
    app: Flask, client: FlaskClient, bank: Bank
) -> None:
    city = make_city(40)
    g = grants(app, client, bank, city.usccs, ops=["train"])
    app.extensions["xinyi"].training_features = feature_source(city, set())
    transport = Dropping(app, lose_request={2}, lose_answer={3, 8, 12})
    outcome = train_with_gateway(
        http_for(app, bank, transport),
        city.book,
        g,
        COLUMNS,
        epochs=2,
        batch_size=16,
        seed=3,
        validation_fraction=0.0,
        progress=False,
        say=lambda _s: None,
    )
    status = bank.get(client, f"/v1/training/sessions/{outcome.session_id}").get_json()
    assert status["training_finished"] and status["status"] == "trained"
    assert [e["epoch"] for e in outcome.report["epochs"]] == [1, 2]
    plan = outcome.report["plan"]
    from federated import training_store as tstore

    rec = tstore.get_session(app.extensions["xinyi"].engine, outcome.session_id, bank.id)
    assert rec.state.step == 2 * -(-plan["n_train"] // plan["batch_size"])
    assert rec.gateway_half is not None and outcome.model is None  # no consent to serve


def test_the_openapi_document_lists_the_training_paths(client: FlaskClient) -> None:
    paths = client.get("/openapi.json").get_json()["paths"]
    for p in (
        "/v1/training/sessions",
        "/v1/training/sessions/{session_id}",
        "/v1/training/sessions/{session_id}/messages",
        "/v1/training/sessions/{session_id}/finish",
    ):
        assert p in paths


def test_the_session_plan_is_the_gateways_with_the_training_parameters(
    session: dict[str, Any],
) -> None:
    from federated.training import TrainingPlan

    plan = TrainingPlan.from_dict(session["plan"])
    assert plan.session == session["id"] and plan.params == PARAMS
    assert dataclasses.asdict(plan)["epochs"] == 1


def test_an_enterprise_that_revokes_mid_training_leaves_at_the_next_epoch(
    app: Flask, client: FlaskClient, bank: Bank
) -> None:
    from federated import training_store as tstore
    from federated.models import Standardization
    from federated.training import BankTrainer, TrainingPlan
    from federated.transport import HttpChannel, run_bank

    city = make_city(24)
    g = grants(app, client, bank, city.usccs, ops=["train"])
    svc = app.extensions["xinyi"]
    svc.training_features = feature_source(city, set())
    secret = SecretContext.generate(PARAMS)
    body = {**_open_body(g), "plan": {"epochs": 3, "batch_size": 16}}
    body["context"] = base64.b64encode(secret.public_bytes()).decode()
    opened = bank.post(client, "/v1/training/sessions", body).get_json()
    plan = TrainingPlan.from_dict(opened["plan"])
    rows = [city.usccs.index(u) for u in opened["train"]]
    std = Standardization.fit(city.book.x[rows], 3.0)
    trainer = BankTrainer(
        plan,
        std.apply(city.book.x[rows]),
        city.book.y[rows],
        np.zeros((0, 2)),
        np.zeros(0),
    )
    leaver = opened["train"][3]
    consent_id = next(
        c["id"]
        for c in bank.get(client, "/v1/consents").get_json()["consents"]
        if c["enterprise"] == leaver
    )

    def revoke_after_first(e: Any) -> None:
        if e.epoch == 0:
            with app.test_request_context():
                svc.consent.act(consent_id, "revoke", leaver, audit=ConsentAudit(svc))

    run_bank(trainer, HttpChannel(http_for(app, bank), opened["id"]), on_epoch=revoke_after_first)
    rec = tstore.get_session(svc.engine, opened["id"], bank.id)
    assert rec.state.next_epoch == 3  # training went on
    (left,) = [r for r in rec.refused if r["uscc"] == leaver]
    assert left["error"] == "grant_revoked" and "epoch 2" in left["message"]
    assert isinstance(left["audit_index"], int)
    train, _ = tstore.unpack_features(rec.features)
    k = list(rec.enterprises.train).index(leaver)
    assert np.all(train[k] == 0.0) and np.any(train[k - 1] != 0.0)


# The command line against a served gateway --------------------------------------------------


def test_xinyi_bank_train_against_a_served_gateway(
    database_url: str, make_settings: Callable[..., Any], tmp_path: Any
) -> None:
    import csv
    import json
    import threading

    from click.testing import CliRunner
    from werkzeug.serving import make_server

    from bank.client import GatewayClient
    from bank.profile import BankProfile
    from cli import main
    from federated import store as fstore
    from gateway import create_app
    from tests.live import free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = make_settings(
        database_url=database_url,
        server={"public_url": url, "port": port},
        training={"min_enterprises": 2},
    )
    app = create_app(settings, background=False)
    svc = app.extensions["xinyi"]
    server = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {"XINYI_BANK_PASSPHRASE": "a passphrase for tests"}
    home = tmp_path / "bank"
    try:
        runner = CliRunner()
        r = runner.invoke(
            main,
            ["bank", "init", "--id", "cli_bank", "--home", str(home), "--gateway", url],
            env=env,
        )
        assert r.exit_code == 0, r.output
        jwk = json.loads((home / "client_jwk.json").read_text())
        svc.registry.add_institution("cli_bank", name="CLI 银行", jwk=jwk)
        city = make_city(30)
        svc.training_features = feature_source(city, set())
        svc.training_population = lambda s, cols: feature_source(city, set())(s, city.usccs, cols)
        profile = BankProfile.open(home, env["XINYI_BANK_PASSPHRASE"])
        sdk = GatewayClient(url, "cli_bank", profile.signing_key)
        with app.test_request_context():
            for u in city.usccs[:26]:  # four enterprises never answer
                asked = sdk.request_consent(
                    u,
                    purpose="joint_model_training",
                    ops=["train"],
                    categories=CATEGORIES,
                    duration_days=30,
                    max_uses=3,
                )
                svc.consent.act(asked["id"], "approve", u, audit=ConsentAudit(svc))
        book = tmp_path / "loans.csv"
        with book.open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["uscc", "default", "balance", "years"])
            for u, y, x in zip(city.usccs, city.book.y, city.book.x, strict=True):
                w.writerow([u, int(y > 0), *x])
        report = tmp_path / "report.json"
        r = runner.invoke(
            main,
            [
                "bank",
                "train",
                "--loan-book",
                str(book),
                "--gateway-features",
                ",".join(COLUMNS),
                "--epochs",
                "2",
                "--register",
                "--model-id",
                "cli-model",
                "--report",
                str(report),
                "--no-progress",
                "--home",
                str(home),
            ],
            env=env,
        )
        assert r.exit_code == 0, r.output
        assert "26 enterprises have granted cli_bank op train on social_security, tax" in r.output
        assert "4 enterprises of the loan book have no op-train grant" in r.output
        assert "joint model cli_bank/cli-model@1 registered" in r.output
        assert "pending the operator's approval" in r.output
        assert json.loads(report.read_text())["registered"] == {
            "id": "cli_bank/cli-model",
            "version": 1,
            "status": "pending",
        }
        assert report.with_suffix(".png").read_bytes().startswith(b"\x89PNG")
        stored = fstore.get_model(svc.engine, "cli_bank/cli-model")
        assert stored.bank_features == ("balance", "years")
    finally:
        server.shutdown()
        svc.stop()


# Governance: ownership at finish, the recheck reads grants by id (issues 12 and 13) -------


def test_finish_cannot_publish_a_version_of_another_owners_model(
    app: Flask, client: FlaskClient, bank: Bank, make_bank: Callable[..., Bank]
) -> None:
    from federated import store as fstore
    from federated.models import parse_model
    from tests.federated.conftest import model_json

    svc = app.extensions["xinyi"]
    victim = fstore.register_model(
        svc.engine,
        parse_model({**model_json(np.random.default_rng(2)), "id": "victim_bank/sme-risk"}),
        "operator:test",
    )
    city = make_city(30)
    g = grants(app, client, bank, city.usccs, ops=["train"])
    svc.training_features = feature_source(city, set())
    outcome = train_with_gateway(
        http_for(app, bank),
        city.book,
        g,
        COLUMNS,
        epochs=1,
        seed=2,
        progress=False,
        say=lambda _s: None,
    )
    half = {
        "bank_features": ["balance", "years"],
        "bank_weights": [9.0, 9.0],
        "intercept": 9.0,
    }
    for target, refusal in (
        ("victim_bank/sme-risk", (403, "model_not_owner")),
        ("_operator/x", (400, "invalid_json")),  # not even an id an owner could have
    ):
        r = bank.post(
            client,
            f"/v1/training/sessions/{outcome.session_id}/finish",
            {"register": True, "model_id": target, "bank_half": half},
        )
        assert (r.status_code, r.get_json()["error"]) == refusal, target
    assert fstore.newest_version(svc.engine, "victim_bank/sme-risk") == victim.version == 1
    # Its own name is registered under its own prefix, pending review.
    r = bank.post(
        client,
        f"/v1/training/sessions/{outcome.session_id}/finish",
        {"register": True, "model_id": "sme-risk", "bank_half": half},
    )
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["model"] == {"id": "train_bank/sme-risk", "version": 1, "status": "pending"}


def test_the_recheck_sees_a_revoked_grant_behind_thousands_of_newer_consents(
    app: Flask, client: FlaskClient, bank: Bank
) -> None:
    from consent import store as consent_store
    from federated import training_store as tstore
    from gateway.api.train import recheck_consent

    city = make_city(6)
    g = grants(app, client, bank, city.usccs, ops=["train"])
    svc = app.extensions["xinyi"]
    svc.training_features = feature_source(city, set())
    opened = bank.post(client, "/v1/training/sessions", _open_body(g)).get_json()
    leaver = opened["train"][0]
    mine = bank.get(client, "/v1/consents").get_json()["consents"]
    consent_id = next(c["id"] for c in mine if c["enterprise"] == leaver)
    with app.test_request_context():
        svc.consent.act(consent_id, "revoke", leaver, audit=ConsentAudit(svc))
    # The bank files more newer consents than the old listing looked at (10·n + 1000).
    newer = 10 * 6 + 1001
    with svc.engine.begin() as conn:
        rows = conn.execute(
            consent_store.consents.select().where(consent_store.consents.c.id == consent_id)
        ).mappings()
        template = dict(next(iter(rows)))
        conn.execute(
            consent_store.consents.insert(),
            [
                {
                    **template,
                    "id": f"cst_newer{k:06d}",
                    "enterprise": uscc(100 + k % 50),
                    "status": "pending",
                    "grant_jwt": None,
                    "created_at": template["created_at"] + 10 + k,
                }
                for k in range(newer)
            ],
        )
    rec = tstore.get_session(svc.engine, opened["id"], bank.id)
    with app.test_request_context(headers=bank.headers()):
        assert recheck_consent(svc, rec) is True
    rec = tstore.get_session(svc.engine, opened["id"], bank.id)
    assert [r["error"] for r in rec.refused if r["uscc"] == leaver] == ["grant_revoked"]
