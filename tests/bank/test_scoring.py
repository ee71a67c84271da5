"""bank.scoring against a stand-in gateway that runs the real gateway steps
(``federated.scoring``) over HTTP-shaped requests: the bank gets the plaintext logit."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bank.client import GatewayClient
from bank.errors import BankError
from bank.scoring import (
    ModelInfo,
    Refusal,
    Score,
    Scorer,
    grants_by_enterprise,
    read_applicants,
    sigmoid,
)
from federated import he, scoring
from federated.models import JointModel, parse_model
from tests.federated.conftest import model_json

BASE = "http://gateway.test"


class StandInGateway:
    """Just enough of the gateway: the model view, single and batch scores. Grants
    named 'refused…' are refused (403 / listed in ``refused``)."""

    def __init__(self, model: JointModel, public_bytes: bytes, shares: dict[str, float]) -> None:
        self.model = model
        self.public = he.PublicContext.load(public_bytes)
        self.ev = he.Evaluator(model.params)
        self.shares = shares
        self.requests: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/oauth/token":
            return httpx.Response(200, json={"access_token": "t", "expires_in": 300})
        if path.startswith("/v1/models/"):
            return httpx.Response(200, json=self.model.public_view())
        body = json.loads(request.content)
        self.requests.append(body)
        if path == "/v1/score":
            if body["grant"].startswith("refused"):
                return httpx.Response(
                    403, json={"error": "grant_revoked", "message": "revoked", "audit_index": 9}
                )
            k = len(self.model.bank_features)
            ct = self.ev.ciphertext(base64.b64decode(body["ciphertext"]), size=k)
            out = scoring.score_single(self.ev, ct, self.model, self.shares[body["grant"]])
            return httpx.Response(
                200, json={"ciphertext": base64.b64encode(out).decode(), "audit_index": 1}
            )
        grants = body["grants"]
        layout = scoring.BatchLayout(
            len(grants), len(self.model.bank_features), self.model.params.slots
        )
        cts = [
            self.ev.ciphertext(base64.b64decode(c), size=layout.chunk_size(i // layout.features))
            for i, c in enumerate(body["ciphertexts"])
        ]
        allowed = np.array([not g.startswith("refused") for g in grants])
        shares = np.array([self.shares.get(g, 0.0) for g in grants])
        outs = scoring.score_batch(self.ev, cts, self.model, shares, allowed, self.public)
        return httpx.Response(
            200,
            json={
                "ciphertexts": [base64.b64encode(o).decode() for o in outs],
                "audit_indexes": list(range(len(grants))),
                "refused": [
                    {"index": i, "error": "grant_paused", "message": "paused", "audit_index": i}
                    for i, g in enumerate(grants)
                    if g.startswith("refused")
                ],
                "model": self.model.ref,
            },
        )


@pytest.fixture(scope="module")
def secret() -> he.SecretContext:
    return he.SecretContext.generate(he.DEFAULT_PARAMS)


@pytest.fixture
def setup(secret: he.SecretContext) -> tuple[Scorer, StandInGateway, JointModel]:
    rng = np.random.default_rng(11)
    raw = model_json(
        rng,
        bank=3,
        bank_features=["bank_f0", "log1p(balance)", "bank_f2"],
        bank_standardization={"mean": [100.0, 9.0, 5.0], "std": [50.0, 2.0, 2.0], "clip": 4.0},
    )
    model = parse_model(raw).registered(2, "operator:test", 0)
    shares = {f"g{i}": float(rng.uniform(-4, 4)) for i in range(5000)}
    gateway = StandInGateway(model, secret.public_bytes(), shares)
    http = httpx.Client(base_url=BASE, transport=httpx.MockTransport(gateway))
    client = GatewayClient(BASE, "demo_bank", Ed25519PrivateKey.generate(), http=http)
    return Scorer(client, secret, "ctx_1"), gateway, model


def test_a_single_score_is_the_plaintext_logit(
    setup: tuple[Scorer, StandInGateway, JointModel],
) -> None:
    scorer, gateway, model = setup
    info = scorer.model("sme-risk")
    assert info.ref == "sme-risk@2"
    features = {"bank_f0": 180.0, "balance": 52_000.0, "bank_f2": 30.0}  # f2 is clipped
    result = scorer.score(info, "g1", features)
    z = model.bank_inputs([180.0, 52_000.0, 30.0])
    assert z[1] == pytest.approx((np.log1p(52_000.0) - 9.0) / 2.0)
    expected = gateway.shares["g1"] + float(np.dot(model.bank_weights, z))
    assert abs(result.logit - expected) < 1e-4
    assert result.probability == pytest.approx(sigmoid(expected), abs=1e-5)
    # The bank sent standardized features only, in a seeded (compact) ciphertext.
    assert len(base64.b64decode(gateway.requests[0]["ciphertext"])) < 130_000


def test_a_refused_single_score_raises_the_gateway_code(
    setup: tuple[Scorer, StandInGateway, JointModel],
) -> None:
    scorer, _, _ = setup
    info = scorer.model("sme-risk")
    with pytest.raises(BankError) as e:
        scorer.score(info, "refused-1", [1.0, 2.0, 3.0])
    assert (e.value.code, e.value.audit_index) == ("grant_revoked", 9)


def test_a_batch_keeps_order_and_reports_refusals_in_place(
    setup: tuple[Scorer, StandInGateway, JointModel],
) -> None:
    scorer, gateway, model = setup
    info = scorer.model("sme-risk")
    rng = np.random.default_rng(5)
    n = 4100  # two chunks
    rows = np.column_stack([rng.normal(100, 60, n), rng.lognormal(9, 2, n), rng.normal(5, 3, n)])
    grants = [f"g{i}" if i % 97 else f"refused-{i}" for i in range(n)]
    results = scorer.score_batch(info, grants, rows)
    assert len(results) == n
    z = model.bank_inputs(rows)
    for i, r in enumerate(results):
        if i % 97 == 0:
            assert isinstance(r, Refusal) and r.error == "grant_paused" and r.audit_index == i
        else:
            assert isinstance(r, Score)
            expected = gateway.shares[grants[i]] + float(np.dot(model.bank_weights, z[i]))
            assert abs(r.logit - expected) < 1e-4


def test_features_must_match_the_model(setup: tuple[Scorer, StandInGateway, JointModel]) -> None:
    scorer, _, _ = setup
    info = scorer.model("sme-risk")
    with pytest.raises(BankError, match="missing bank columns"):
        scorer.score(info, "g1", {"bank_f0": 1.0})
    with pytest.raises(BankError, match="finite"):
        scorer.score(info, "g1", [1.0, float("nan"), 2.0])


def test_applicants_csv_is_read_and_bad_rows_named(tmp_path: Path) -> None:
    info = ModelInfo(
        "m", 1, ("income", "debt"), ("tax.paid_12m",), ("tax",), he.DEFAULT_PARAMS, None
    )
    good = tmp_path / "a.csv"
    good.write_text("uscc,income,debt\n91330100716105852F,1.5,2\n,3,4\n", encoding="utf-8")
    applicants = read_applicants(good, info)
    assert applicants.usccs == ("91330100716105852F", None)
    np.testing.assert_array_equal(applicants.features, [[1.5, 2.0], [3.0, 4.0]])
    bad = tmp_path / "b.csv"
    bad.write_text("uscc,income,debt\nX,1,oops\nY,2,3\n", encoding="utf-8")
    with pytest.raises(BankError, match=re.escape("line 2")):
        read_applicants(bad, info)
    missing = tmp_path / "c.csv"
    missing.write_text("uscc,income\nX,1\n", encoding="utf-8")
    with pytest.raises(BankError, match="missing columns"):
        read_applicants(missing, info)


def test_grants_are_found_by_enterprise() -> None:
    consents = [
        {
            "enterprise": "E1",
            "ops": ["score"],
            "categories": ["tax"],
            "expires_at": 10,
            "grant": "old",
        },
        {
            "enterprise": "E1",
            "ops": ["score", "report"],
            "categories": ["tax", "x"],
            "expires_at": 20,
            "grant": "new",
        },
        {
            "enterprise": "E2",
            "ops": ["report"],
            "categories": ["tax"],
            "expires_at": 30,
            "grant": "no-score",
        },
        {
            "enterprise": "E3",
            "ops": ["score"],
            "categories": ["x"],
            "expires_at": 30,
            "grant": "wrong-categories",
        },
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            return httpx.Response(200, json={"access_token": "t", "expires_in": 300})
        assert request.url.params["status"] == "active"
        return httpx.Response(200, json={"consents": consents})

    client = GatewayClient(
        BASE,
        "demo_bank",
        Ed25519PrivateKey.generate(),
        http=httpx.Client(base_url=BASE, transport=httpx.MockTransport(handler)),
    )
    info = ModelInfo("m", 1, ("a",), ("tax.paid_12m",), ("tax",), he.DEFAULT_PARAMS, None)
    assert grants_by_enterprise(client, info) == {"E1": "new"}
