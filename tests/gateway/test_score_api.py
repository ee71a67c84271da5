"""HE joint scoring over HTTP: contexts, models, single and batch scores, refusals, and
untrusted bytes. The bank side is the real SDK talking to the app in-process."""

from __future__ import annotations

import base64
import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bank.client import GatewayClient
from bank.errors import BankError
from bank.scoring import Refusal, Score, Scorer
from casework import objections
from casework import store as objection_store
from common import uscc
from common.db import write_session
from federated import he
from federated import store as fstore
from federated.models import JointModel, parse_model
from federated.scoring import round_share
from records.catalog import Catalog
from records.service import import_csv
from tests.gateway.conftest import ENTERPRISE, OTHER_ENTERPRISE, Bank, grant_for

UNKNOWN_ENTERPRISE = uscc.complete("91110108MA01C3Q62")
TOLERANCE = 1e-4
TAX = {ENTERPRISE: (1_200_000, 9_000_000), OTHER_ENTERPRISE: (30_000, 800_000)}
SOCIAL = {ENTERPRISE: (45, 0), OTHER_ENTERPRISE: (3, 4)}


def _model_json() -> dict[str, Any]:
    return {
        "id": "sme-risk",
        "gateway_features": [
            "log1p(tax.paid_12m)",
            "log1p(tax.revenue_12m)",
            "social_security.insured_employees",
            "social_security.months_in_arrears_12m",
            "admin_penalty.dishonest",  # public: needs no grant; not loaded: imputed
        ],
        "bank_features": ["years_with_bank", "log1p(avg_balance)", "overdue_count_24m"],
        "gateway_weights": [-0.4, -0.2, -0.01, 0.3, 0.8],
        "bank_weights": [-0.1, -0.25, 0.6],
        "intercept": -1.5,
        "gateway_standardization": {
            "mean": [11.0, 14.0, 20.0, 1.0, 0.05],
            "std": [2.0, 2.0, 30.0, 2.0, 0.2],
            "clip": 5.0,
        },
        "bank_standardization": {"mean": [4.0, 11.0, 0.5], "std": [3.0, 2.0, 1.0], "clip": 5.0},
    }


@pytest.fixture(scope="module")
def secret() -> he.SecretContext:
    return he.SecretContext.generate(he.DEFAULT_PARAMS)


@dataclass
class World:
    app: Flask
    client: FlaskClient
    bank: Bank
    model: JointModel
    sdk: GatewayClient
    scorer: Scorer
    context_id: str
    make_person: Callable[..., FlaskClient]
    _people: dict[str, FlaskClient] = field(default_factory=dict)

    def person_of(self, enterprise: str = ENTERPRISE) -> FlaskClient:
        """The enterprise's signed-in person (made on first use: sign-in costs an
        Argon2 hash)."""
        if enterprise not in self._people:
            self._people[enterprise] = self.make_person("enterprise", uscc=enterprise)
        return self._people[enterprise]

    @property
    def person(self) -> FlaskClient:
        return self.person_of(ENTERPRISE)

    def grant(self, **kw: Any) -> str:
        return grant_for(self.bank, self.client, self.person, **kw)

    def expected_logit(self, enterprise: str, bank_columns: list[float]) -> float:
        paid, revenue = TAX[enterprise]
        employees, arrears = SOCIAL[enterprise]
        x_g = [np.log1p(paid), np.log1p(revenue), employees, arrears, None]
        precision = self.app.extensions["xinyi"].settings.config.scoring.share_precision
        share = round_share(self.model.gateway_share(x_g), precision)
        bank = float(np.dot(self.model.bank_weights, self.model.bank_inputs(bank_columns)))
        return share + bank

    def body(self, grant: str | None, ct: bytes, **kw: Any) -> dict[str, Any]:
        return {
            "grant": grant,
            "model": "sme-risk",
            "context": self.context_id,
            "ciphertext": base64.b64encode(ct).decode(),
            **kw,
        }


def _load_department_data(app: Flask) -> None:
    svc = app.extensions["xinyi"]
    catalog = Catalog(svc.settings.config)
    tax = "uscc,tax.paid_12m,tax.revenue_12m\n" + "".join(
        f"{u},{p},{r}\n" for u, (p, r) in TAX.items()
    )
    social = "uscc,social_security.insured_employees,social_security.months_in_arrears_12m\n"
    social += "".join(f"{u},{e},{a}\n" for u, (e, a) in SOCIAL.items())
    import_csv(svc.engine, catalog, "tax", tax.encode(), file_name="tax.csv", actor="test")
    import_csv(
        svc.engine, catalog, "social_security", social.encode(), file_name="ss.csv", actor="test"
    )


@pytest.fixture
def world(
    app: Flask,
    client: FlaskClient,
    make_bank: Callable[..., Bank],
    make_person: Callable[..., FlaskClient],
    secret: he.SecretContext,
) -> Iterator[World]:
    svc = app.extensions["xinyi"]
    _load_department_data(app)
    model = fstore.register_model(
        svc.engine,
        parse_model(_model_json()),
        "operator:test",
        catalog=svc.settings.config.categories,
    )
    bank = make_bank("demo_bank")
    base = svc.settings.config.server.public_url.rstrip("/")
    http = httpx.Client(base_url=base, transport=httpx.WSGITransport(app=app))
    sdk = GatewayClient(base, bank.id, bank.key, http=http)
    context_id = sdk.register_context(secret.public_bytes())
    scorer = Scorer(sdk, secret, context_id)
    yield World(app, client, bank, model, sdk, scorer, context_id, make_person)
    http.close()


# Contexts and models ------------------------------------------------------------------


def test_contexts_register_once_and_bad_ones_are_refused(
    world: World, secret: he.SecretContext
) -> None:
    assert world.context_id.startswith("ctx_")
    assert world.sdk.register_context(secret.public_bytes()) == world.context_id
    listed = world.bank.get(world.client, "/v1/contexts").get_json()["contexts"]
    assert [c["id"] for c in listed] == [world.context_id]
    other_params = he.SecretContext.generate(he.CKKSParams(8192, (60, 40, 40, 60), 40))
    cases = [
        (secret.secret_bytes(), 400, "context_has_secret_key"),
        (secret.public_bytes() + b"\x00" * (1 << 20), 413, "too_large"),
        (b"\x00garbage" * 100, 400, "invalid_context"),
        (other_params.public_bytes(), 400, "context_parameters"),
        (
            he.SecretContext.generate(he.DEFAULT_PARAMS, symmetric=True).public_bytes(),
            400,
            "invalid_context",
        ),
    ]
    for data, status, code in cases:
        resp = world.bank.post(
            world.client, "/v1/contexts", {"context": base64.b64encode(data).decode()}
        )
        assert (resp.status_code, resp.get_json()["error"]) == (status, code)
    resp = world.bank.post(world.client, "/v1/contexts", {"context": "not base64!"})
    assert (resp.status_code, resp.get_json()["error"]) == (400, "invalid_base64")
    resp = world.bank.post(world.client, "/v1/contexts", {"context": "AA==", "extra": 1})
    assert (resp.status_code, resp.get_json()["error"]) == (400, "invalid_json")
    assert world.client.post("/v1/contexts", json={"context": "AA=="}).status_code == 401


def test_models_are_listed_without_weights(world: World) -> None:
    resp = world.bank.get(world.client, "/v1/models")
    assert resp.status_code == 200
    (view,) = resp.get_json()["models"]
    assert view["id"] == "sme-risk" and view["version"] == 1
    assert view["gateway_categories"] == ["admin_penalty", "social_security", "tax"]
    assert view["grant_categories"] == ["social_security", "tax"]
    assert view["context_params"] == he.DEFAULT_PARAMS.as_dict()
    text = resp.get_data(as_text=True)
    for hidden in ("gateway_weights", "bank_weights", "intercept", "gateway_standardization"):
        assert hidden not in text
    assert world.bank.get(world.client, "/v1/models/sme-risk@1").get_json()["version"] == 1
    assert world.bank.get(world.client, "/v1/models/nope").status_code == 404
    # No route registers a model.
    for path in ("/v1/models", "/v1/models/sme-risk"):
        resp = world.bank.post(world.client, path, _model_json())
        assert resp.status_code == 405


# Single score --------------------------------------------------------------------------


def test_the_bank_gets_the_joint_logit_and_nothing_else(
    world: World, secret: he.SecretContext
) -> None:
    grant = world.grant()
    columns = [6.0, 80_000.0, 1.0]
    info = world.scorer.model("sme-risk")
    result = world.scorer.score(info, grant, dict(zip(info.bank_columns, columns, strict=True)))
    assert abs(result.logit - world.expected_logit(ENTERPRISE, columns)) < TOLERANCE
    assert isinstance(result.audit_index, int)
    logged = world.bank.get(world.client, f"/v1/audit/entries/{result.audit_index}")
    entry = logged.get_json()["entry"]
    assert (entry["operation"], entry["decision"], entry["model_id"]) == (
        "score",
        "allowed",
        "sme-risk@1",
    )
    assert entry["enterprise"] == ENTERPRISE
    assert entry["categories"] == ["admin_penalty", "social_security", "tax"]
    assert "tax.paid_12m" in entry["features"] and "admin_penalty.dishonest" in entry["features"]
    # The raw answer: no slot is a weight times a feature.
    z = world.model.bank_inputs(columns)
    resp = world.bank.post(
        world.client, "/v1/score", world.body(grant, secret.encrypt(z).to_bytes())
    )
    assert resp.status_code == 200, resp.get_json()
    answer = resp.get_json()
    assert answer["model"] == "sme-risk@1"
    slots = secret.decrypt(secret.ciphertext(base64.b64decode(answer["ciphertext"])))
    products = np.asarray(world.model.bank_weights) * z
    assert np.all(np.abs(slots - products) > 1e-2)
    assert abs(float(slots.sum()) - world.expected_logit(ENTERPRISE, columns)) < TOLERANCE


def test_refusals_are_coded_and_logged(
    world: World, secret: he.SecretContext, make_bank: Callable[..., Bank]
) -> None:
    ct = secret.encrypt([0.0, 0.0, 0.0]).to_bytes()
    resp = world.bank.post(world.client, "/v1/score", world.body(None, ct))
    body = resp.get_json()
    assert (resp.status_code, body["error"]) == (403, "grant_missing")
    assert isinstance(body["audit_index"], int)
    info = world.scorer.model("sme-risk")
    for kw, code in (
        ({"ops": ["report"]}, "scope_operation"),
        ({"categories": ["tax"]}, "scope_category"),
    ):
        with pytest.raises(BankError) as e:
            world.scorer.score(info, world.grant(**kw), [1.0, 1.0, 1.0])
        assert e.value.code == code and e.value.audit_index is not None
    # Revoked: allowed once, refused after the enterprise revokes.
    grant = world.grant()
    world.scorer.score(info, grant, [1.0, 1.0, 1.0])
    consent = next(
        c for c in world.person.get("/v1/consents").get_json()["consents"] if c["grant"] == grant
    )
    assert world.person.post(f"/v1/consents/{consent['id']}/revoke").status_code == 200
    with pytest.raises(BankError) as e:
        world.scorer.score(info, grant, [1.0, 1.0, 1.0])
    assert e.value.code == "grant_revoked"
    # An enterprise the gateway holds no data about.
    unknown = world.person_of(UNKNOWN_ENTERPRISE)
    grant = grant_for(world.bank, world.client, unknown, enterprise=UNKNOWN_ENTERPRISE)
    with pytest.raises(BankError) as e:
        world.scorer.score(info, grant, [1.0, 1.0, 1.0])
    assert (e.value.code, e.value.status) == ("no_data", 404)
    assert e.value.audit_index is not None
    # Another institution cannot use this bank's context.
    other = make_bank("other_bank")
    resp = other.post(world.client, "/v1/score", world.body("x", ct))
    assert (resp.status_code, resp.get_json()["error"]) == (404, "context_not_found")


# Untrusted ciphertexts -------------------------------------------------------------------


def _uses(world: World) -> list[int]:
    return [c["uses"] for c in world.person.get("/v1/consents").get_json()["consents"]]


def test_bad_ciphertexts_are_400_or_413_and_cost_no_use(
    world: World, secret: he.SecretContext
) -> None:
    grant = world.grant()
    good = he.encrypt_seeded(secret, [0.1, 0.2, 0.3])
    used = he.PublicContext.load(secret.public_bytes()).ciphertext(good).mul_scalar(2.0).to_bytes()
    other = he.SecretContext.generate(he.CKKSParams(8192, (60, 40, 40, 60), 40))
    cases: list[tuple[bytes, int, str]] = [
        (b"", 400, "invalid_json"),
        (b"\x00\x01garbage", 400, "invalid_ciphertext"),
        (good[: len(good) // 2], 400, "invalid_ciphertext"),  # truncated
        (secret.encrypt([0.1, 0.2]).to_bytes(), 400, "invalid_ciphertext"),  # wrong size
        (used, 400, "invalid_ciphertext"),  # not fresh
        (other.encrypt([0.1, 0.2, 0.3]).to_bytes(), 400, "invalid_ciphertext"),  # other params
        (b"\x00" * (600 * 1024), 413, "too_large"),  # oversized
    ]
    before = _uses(world)
    for data, status, code in cases:
        body = world.body(grant, data)
        if not data:
            body["ciphertext"] = ""
        resp = world.bank.post(world.client, "/v1/score", body)
        assert (resp.status_code, resp.get_json()["error"]) == (status, code), resp.get_json()
    assert _uses(world) == before
    # The worker still serves.
    ok = world.bank.post(world.client, "/v1/score", world.body(grant, good))
    assert ok.status_code == 200


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(min_size=1, max_size=4096), cut=st.integers(0, 120_000))
def test_hypothesis_bytes_never_break_the_routes(
    world: World, secret: he.SecretContext, data: bytes, cut: int
) -> None:
    good = he.encrypt_seeded(secret, [0.1, 0.2, 0.3])
    public = secret.public_bytes()
    for candidate in (data, good[:cut] + data):
        resp = world.bank.post(world.client, "/v1/score", world.body("not-a-grant", candidate))
        assert resp.status_code in (400, 403, 413), resp.get_json()
        with contextlib.suppress(KeyError):
            assert resp.get_json()["error"] != "internal_error"
    for candidate in (data, public[: cut * 3] + data):
        body = {"context": base64.b64encode(candidate).decode()}
        resp = world.bank.post(world.client, "/v1/contexts", body)
        assert resp.status_code in (400, 413), resp.get_json()


# Batch ---------------------------------------------------------------------------------


def test_batch_scores_each_enterprise_and_refuses_one_visibly(
    world: World, secret: he.SecretContext
) -> None:
    other_person = world.person_of(OTHER_ENTERPRISE)
    g1 = world.grant()
    g2 = grant_for(world.bank, world.client, other_person, enterprise=OTHER_ENTERPRISE)
    g3 = grant_for(world.bank, world.client, other_person, enterprise=OTHER_ENTERPRISE)
    consents = other_person.get("/v1/consents").get_json()["consents"]
    third = next(c for c in consents if c["grant"] == g3)
    assert other_person.post(f"/v1/consents/{third['id']}/pause").status_code == 200
    rows = np.array([[6.0, 80_000.0, 1.0], [1.0, 2_000.0, 3.0], [2.0, 5_000.0, 0.0]])
    info = world.scorer.model("sme-risk")
    results = world.scorer.score_batch(info, [g1, g2, g3], rows)
    assert isinstance(results[0], Score) and isinstance(results[1], Score)
    assert abs(results[0].logit - world.expected_logit(ENTERPRISE, list(rows[0]))) < TOLERANCE
    assert abs(results[1].logit - world.expected_logit(OTHER_ENTERPRISE, list(rows[1]))) < TOLERANCE
    refused = results[2]
    assert isinstance(refused, Refusal) and refused.error == "grant_paused"
    assert isinstance(refused.audit_index, int)
    assert len({results[0].audit_index, results[1].audit_index, refused.audit_index}) == 3
    # The layout and the size limit are checked before any grant.
    ct = base64.b64encode(he.encrypt_seeded(secret, [0.0])).decode()
    body = {
        "grants": ["a", "b"],
        "model": "sme-risk",
        "context": world.context_id,
        "ciphertexts": [ct],
    }
    resp = world.bank.post(world.client, "/v1/score/batch", body)
    assert (resp.status_code, resp.get_json()["error"]) == (400, "invalid_ciphertext")
    body["grants"] = ["g"] * 5000
    resp = world.bank.post(world.client, "/v1/score/batch", body)
    assert resp.status_code == 413


# Governance: approval, ownership, the score-extraction bound (issue 12) ----------------


def _log_size(world: World) -> int:
    """Entries in the audit log once everything queued is integrated."""
    from audit import store as audit_store

    svc = world.app.extensions["xinyi"]
    svc.audit.integrate_pending()
    with svc.engine.connect() as conn:
        return audit_store.read_state(conn).size


def _entry(world: World, index: int) -> dict[str, Any]:
    return dict(world.bank.get(world.client, f"/v1/audit/entries/{index}").get_json()["entry"])


def _register(world: World, model_id: str, *, owner: str = "_operator", **changes: Any) -> str:
    raw = {**_model_json(), "id": model_id, **changes}
    svc = world.app.extensions["xinyi"]
    stored = fstore.register_model(
        svc.engine,
        parse_model(raw),
        "operator:test" if owner == "_operator" else "training:trn_test",
        owner=owner,
        catalog=svc.settings.config.categories,
    )
    return stored.ref


def test_a_pending_model_is_neither_listed_nor_scored_until_the_operator_approves_it(
    world: World, secret: he.SecretContext
) -> None:
    ref = _register(world, "demo_bank/own-risk", owner="demo_bank", intercept=-1.0)
    assert ref == "demo_bank/own-risk@1"
    listed = [m["id"] for m in world.bank.get(world.client, "/v1/models").get_json()["models"]]
    assert listed == ["sme-risk"]
    grant = world.grant()
    before = _uses(world)
    ct = base64.b64encode(he.encrypt_seeded(secret, [0.0, 0.0, 0.0])).decode()
    for model in (ref, "demo_bank/own-risk"):
        body = {"grant": grant, "model": model, "context": world.context_id, "ciphertext": ct}
        resp = world.bank.post(world.client, "/v1/score", body)
        assert (resp.status_code, resp.get_json()["error"]) == (403, "model_not_approved")
    with pytest.raises(BankError) as e:
        world.scorer.model(ref)
    assert e.value.code == "model_not_approved"
    assert _uses(world) == before  # refused before any grant use

    # The operator reviews it on the console and approves it; the decision is logged.
    operator = world.make_person("operator")
    page = operator.get(f"/operator/models/{ref}")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    token = operator.environ_base["HTTP_X_CSRF_TOKEN"]
    assert "待审核" in text and "税务局" in text and "log1p(tax.paid_12m)" in text
    size = _log_size(world)
    resp = operator.post(
        f"/operator/models/{ref}/review", data={"decision": "approve", "csrf_token": token}
    )
    assert resp.status_code == 302
    assert _log_size(world) == size + 1
    entry = _entry(world, size)
    assert (entry["operation"], entry["model_id"], entry["institution"]) == (
        "model.approve",
        ref,
        "demo_bank",
    )
    assert entry["departments"] == ["market_regulation", "social_security", "tax"]
    resp = operator.post(
        f"/operator/models/{ref}/review", data={"decision": "reject", "csrf_token": token}
    )
    assert resp.status_code == 409  # decided once
    info = world.scorer.model("demo_bank/own-risk")
    assert info.ref == ref and info.owner == "demo_bank"
    assert world.scorer.score(info, grant, [1.0, 1.0, 1.0]).audit_index is not None


def test_another_owners_model_gets_no_version_and_the_victims_score_is_unchanged(
    world: World, make_bank: Callable[..., Bank]
) -> None:
    victim_model = _register(world, "demo_bank/risk")
    info = world.scorer.model("demo_bank/risk")
    grant = world.grant()
    first = world.scorer.score(info, grant, [6.0, 80_000.0, 1.0])
    # Another bank's session registers under its own prefix only: the victim's id is
    # refused, whoever's session it is, and nothing is stored.
    with pytest.raises(fstore.ModelNotOwned):
        _register(world, "demo_bank/risk", owner="evil_bank", intercept=9.0)
    with pytest.raises(fstore.ModelNotOwned):
        _register(world, "sme-risk", owner="evil_bank", intercept=9.0)
    assert fstore.newest_version(world.app.extensions["xinyi"].engine, "demo_bank/risk") == 1
    # The victim's next score is the same (an unpinned reference too).
    again = world.scorer.score(world.scorer.model("demo_bank/risk"), grant, [6.0, 80_000.0, 1.0])
    assert abs(again.logit - first.logit) < TOLERANCE and again.model == victim_model
    # The SDK refuses a model of an owner the bank does not trust.
    _register(world, "evil_bank/risk", owner="evil_bank")
    with pytest.raises(BankError) as e:
        world.scorer.model("evil_bank/risk")
    assert e.value.code == "model_owner_untrusted"


def test_a_third_distinct_model_for_one_enterprise_in_a_grants_period_is_refused(
    world: World,
) -> None:
    second = _register(world, "second", intercept=-1.0)
    third = _register(world, "third", intercept=-0.5)
    grant = world.grant()
    row = [6.0, 80_000.0, 1.0]
    for ref in ("sme-risk@1", second, "sme-risk@1"):
        world.scorer.score(world.scorer.model(ref), grant, row)
    before = _uses(world)
    with pytest.raises(BankError) as e:
        world.scorer.score(world.scorer.model(third), grant, row)
    assert (e.value.code, e.value.status) == ("score_model_limit", 403)
    assert e.value.audit_index is not None
    entry = _entry(world, e.value.audit_index)
    assert (entry["decision"], entry["model_id"], entry["enterprise"]) == (
        "score_model_limit",
        third,
        ENTERPRISE,
    )
    assert _uses(world) == before  # the refused score took no use
    # A second grant from the same enterprise, issued later, opens no second allowance.
    time.sleep(1.1)
    with pytest.raises(BankError) as e:
        world.scorer.score(world.scorer.model(third), world.grant(), row)
    assert e.value.code == "score_model_limit"
    # In a batch too, enterprise by enterprise: another enterprise may use the third.
    other = grant_for(
        world.bank, world.client, world.person_of(OTHER_ENTERPRISE), enterprise=OTHER_ENTERPRISE
    )
    results = world.scorer.score_batch(
        world.scorer.model(third), [grant, other], np.array([row, row])
    )
    assert isinstance(results[0], Refusal) and results[0].error == "score_model_limit"
    assert isinstance(results[1], Score)
    # The models already used still score.
    assert world.scorer.score(world.scorer.model(second), grant, row).audit_index is not None


def test_thousands_of_junk_pairs_in_a_batch_write_one_audit_entry(
    world: World, secret: he.SecretContext
) -> None:
    grant = world.grant()
    other_bank_grant = "eyJhbGciOiJFZERTQSIsImtpZCI6Im5vcGUifQ.e30.c2ln"
    grants = [grant] + [f"junk-{i}" for i in range(2999)] + [other_bank_grant]
    info = world.scorer.model("sme-risk")
    size = _log_size(world)
    results = world.scorer.score_batch(info, grants, np.ones((len(grants), 3)))
    written = _log_size(world) - size
    assert written <= 2  # the real grant's entry and one for every junk pair
    assert isinstance(results[0], Score)
    junk = results[1:]
    assert all(isinstance(r, Refusal) and r.error == "grant_invalid" for r in junk)
    (shared,) = {r.audit_index for r in junk}
    entry = _entry(world, int(shared))  # type: ignore[arg-type]
    assert entry["enterprise"] is None and entry["decision"] == "grant_invalid"


# Objections (JS 14) ------------------------------------------------------------------------


def test_scores_say_which_features_they_used_are_disputed(
    world: World, secret: he.SecretContext
) -> None:
    grant = world.grant()
    other_grant = grant_for(
        world.bank, world.client, world.person_of(OTHER_ENTERPRISE), enterprise=OTHER_ENTERPRISE
    )
    info = world.scorer.model("sme-risk")
    rows = np.array([[6.0, 80_000.0, 1.0], [1.0, 2_000.0, 3.0], [2.0, 5_000.0, 0.0]])
    z = info.inputs(rows)

    def single() -> Any:
        resp = world.bank.post(
            world.client, "/v1/score", world.body(grant, secret.encrypt(z[0]).to_bytes())
        )
        assert resp.status_code == 200, resp.get_json()
        return resp.get_json()["disputed"]

    def batch() -> Any:
        cts = [base64.b64encode(secret.encrypt(z[:, j]).to_bytes()).decode() for j in range(3)]
        body = {
            "grants": [grant, other_grant, "not-a-grant"],
            "model": "sme-risk",
            "context": world.context_id,
            "ciphertexts": cts,
        }
        resp = world.bank.post(world.client, "/v1/score/batch", body)
        assert resp.status_code == 200, resp.get_json()
        return resp.get_json()["disputed"]

    assert single() == [] and batch() == [[], [], []]
    svc = world.app.extensions["xinyi"]
    with write_session(svc.engine) as s:
        for feature in ("tax.paid_12m", "registration.industry"):  # the second: not in the model
            filed = objections.file(
                id=f"obj_{feature}",
                enterprise=ENTERPRISE,
                feature=feature,
                department=svc.catalog.rule(feature).department,
                claim="wrong",
                filed_by="enterprise:x",
                now=1790733600,
                calendar=svc.calendar,
                working_days=2,
                max_claim_chars=100,
            )
            objection_store.insert(s, filed)
    assert single() == ["tax.paid_12m"]
    assert batch() == [["tax.paid_12m"], [], []]
