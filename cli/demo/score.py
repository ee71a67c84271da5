"""Demo steps of HE joint scoring, for ``xinyi demo`` (the lead wires them in order):

1. ``step_bank_onboarding``: the bank's SDK makes its keys (encrypted at rest), the
   operator registers its public JWK, the bank registers its CKKS public context;
2. (``demo_data.step_city`` loads the synthetic city's department files;)
3. ``step_joint_model``: the joint model in the registry (``story.model_ref`` or
   ``story.model_file`` from federated training; otherwise a clearly labelled
   stand-in fitted by the demo itself);
4. ``step_score_one``: one enterprise grants, the bank scores it under HE, the enterprise
   revokes, the next score is refused;
5. ``step_score_applicants``: the bank scores a batch of loan applicants and compares the
   joint model's AUC with its own bank-only model's.

Facts read: ``city_dir`` (from ``demo_data.step_city``), optional
``model_ref``, ``model_file``, ``score_applicants`` (default 400). Facts written:
``bank`` (a ``DemoBank``), ``bank_id``, ``model_ref``,
``auc`` ({"joint", "bank_only", "applicants"}).
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from bank.client import GatewayClient
from bank.errors import BankError
from bank.profile import PASSPHRASE_ENV, BankProfile
from bank.scoring import ModelInfo, Refusal, Score, Scorer, sigmoid
from cli.demo.story import DemoBank, Story, say, step
from common.errors import NotFound
from common.logging import get_logger
from federated.training import roc_auc

BANK_ID = "hz_demo_bank"
BANK_NAME = "杭州示范银行 (Hangzhou Demo Bank)"
UNSAFE_DEMO_PASSPHRASE = "unsafe-demo-bank-passphrase"  # noqa: S105 (a labelled demo value)
log = get_logger("cli.demo.score")
SEED = 20250630
DEMO_PASSWORD = "demo password 1"  # noqa: S105 (the demo enterprise's printed password)


def _engine(story: Story) -> Any:
    from common.db import make_engine

    return make_engine(story.settings.database_url)


def _passphrase() -> str:
    value = os.environ.get(PASSPHRASE_ENV)
    if value:
        return value
    log.warning(
        "UNSAFE_DEMO_BANK_PASSPHRASE",
        hint=f"{PASSPHRASE_ENV} is not set: the demo bank's keys use a fixed, unsafe passphrase",
    )
    return UNSAFE_DEMO_PASSPHRASE


def step_bank_onboarding(story: Story) -> None:
    """The bank makes its keys, the operator registers it, it registers its context."""
    from registry import Registry

    step("Bank onboarding: keys, registration, CKKS context / 银行接入")
    home = story.home / "bank"
    passphrase = _passphrase()
    if (home / "bank.json").exists():
        profile = BankProfile.open(home, passphrase)
    else:
        profile = BankProfile.init(home, BANK_ID, story.base, passphrase)
    say(f"bank SDK folder: {home} (Ed25519 key and CKKS secret context encrypted at rest)")
    registry = Registry(_engine(story))
    try:
        registry.institution(profile.institution_id)
    except NotFound:  # not registered yet: the operator adds it (xinyi admin add-institution)
        jwk = json.loads(profile.jwk_path.read_text(encoding="utf-8"))
        registry.add_institution(profile.institution_id, name=BANK_NAME, jwk=jwk)
        say(
            f"operator: xinyi admin add-institution {profile.institution_id} "
            f"--jwk {profile.jwk_path}"
        )
    client = GatewayClient(story.base, profile.institution_id, profile.signing_key)
    context_id = client.register_context(profile.secret.public_bytes())
    profile.remember_context(context_id, story.base)
    params = profile.secret.params.as_dict()
    say(f"CKKS public context registered: {context_id} {params} (no secret, no Galois keys)")
    story.bank = DemoBank(profile, client, Scorer(client, profile.secret, context_id))
    story.bank_id = profile.institution_id


# The bank's loan book -------------------------------------------------------------------


@dataclass(frozen=True)
class LoanBook:
    usccs: list[str]
    columns: tuple[str, ...]
    x: np.ndarray  # raw bank columns
    y: np.ndarray  # 1 = defaulted

    def split(self, share: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
        """Deterministic train/test index split."""
        order = np.random.default_rng(SEED).permutation(len(self.y))
        cut = int(share * len(order))
        return np.sort(order[:cut]), np.sort(order[cut:])


def _loan_book(story: Story) -> LoanBook:
    from records import synth

    path = story.the_city() / "bank_loans.csv"
    columns = tuple(synth.BANK_COLUMNS[1:-1])
    with path.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    x = np.array([[float(r[c]) for c in columns] for r in rows], dtype=np.float64)
    y = np.array([int(r["default"]) for r in rows], dtype=np.int64)
    return LoanBook([r["uscc"] for r in rows], columns, x, y)


def _bank_features(columns: tuple[str, ...]) -> list[str]:
    """Amounts on a log scale, the rest as they are."""
    return [f"log1p({c})" if c in ("avg_balance", "loan_amount") else c for c in columns]


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-3) -> tuple[np.ndarray, float]:
    """Logistic regression by Newton's method (IRLS) on standardized inputs: (w, b)."""
    n, k = x.shape
    a = np.hstack([x, np.ones((n, 1))])
    w = np.zeros(k + 1)
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-(a @ w)))
        grad = a.T @ (p - y) + l2 * np.r_[w[:k], 0.0]
        hess = (a * (p * (1 - p))[:, None]).T @ a + l2 * np.diag(np.r_[np.ones(k), 0.0])
        step_ = np.linalg.solve(hess, grad)
        w -= step_
        if np.max(np.abs(step_)) < 1e-8:
            break
    return w[:k], float(w[k])


def _standardize(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    mean, std = x.mean(axis=0), x.std(axis=0)
    std[std == 0] = 1.0
    return (x - mean) / std, mean, std


def _bank_matrix(book: LoanBook) -> np.ndarray:
    x = book.x.copy()
    for j, c in enumerate(book.columns):
        if c in ("avg_balance", "loan_amount"):
            x[:, j] = np.log1p(np.maximum(x[:, j], 0.0))
    return x


def step_joint_model(story: Story) -> None:
    """The joint model in the registry."""
    from federated import store as fstore
    from federated.models import parse_model
    from records import store as records
    from records import synth

    step("Joint model / 联合模型")
    engine = _engine(story)
    if story.model_ref:
        say(f"using {story.model_ref} from federated training")
        return
    if story.model_file is not None:
        raw = json.loads(story.model_file.read_text(encoding="utf-8"))
        stored = fstore.register_model(
            engine, parse_model(raw), "training:demo", catalog=story.settings.config.categories
        )
        story.model_ref = stored.ref
        say(f"imported {stored.ref} (xinyi models import {story.model_file})")
        return
    # Stand-in: no federated training ran before this step. The demo fits the model on
    # the training half of the loan book with both sides' data in one place, which the
    # real protocol never does; it only stands in for `xinyi federated simulate`.
    book = _loan_book(story)
    train, _ = book.split()
    columns = list(synth.MODEL_COLUMNS)
    codes = [book.usccs[i] for i in train]
    unique = list(dict.fromkeys(codes))
    present, gov = records.feature_matrix(engine, story.settings, unique, columns)
    position = {u: j for j, u in enumerate(unique)}
    gov = np.where(present, gov, np.nan)[[position[c] for c in codes]]
    g_mean = np.nanmean(gov, axis=0)
    g_std = np.nanstd(gov, axis=0)
    g_std[g_std == 0] = 1.0
    z_g = np.nan_to_num(np.clip((gov - g_mean) / g_std, -5, 5))
    z_b, b_mean, b_std = _standardize(_bank_matrix(book)[train])
    w, b = fit_logistic(np.hstack([z_g, np.clip(z_b, -5, 5)]), book.y[train])
    model = parse_model(
        {
            "id": "sme-risk-demo",
            "gateway_features": columns,
            "bank_features": _bank_features(book.columns),
            "gateway_weights": w[: len(columns)].tolist(),
            "bank_weights": w[len(columns) :].tolist(),
            "intercept": b,
            "gateway_standardization": {
                "mean": g_mean.tolist(),
                "std": g_std.tolist(),
                "clip": 5.0,
            },
            "bank_standardization": {"mean": b_mean.tolist(), "std": b_std.tolist(), "clip": 5.0},
            "description": "Demo stand-in for a federated model (fitted centrally by xinyi demo).",
        }
    )
    stored = fstore.register_model(
        engine, model, "operator:demo-stand-in", catalog=story.settings.config.categories
    )
    story.model_ref = stored.ref
    say(
        f"stand-in model {stored.ref} registered (operator import; in production it comes "
        "from xinyi federated simulate / training)"
    )
    say(f"  gateway features: {', '.join(stored.gateway_features)}")
    say(f"  bank features:    {', '.join(stored.bank_features)}")


def _demo_bank(story: Story) -> DemoBank:
    return story.the_bank()


def _model(story: Story, bank: DemoBank) -> ModelInfo:
    return bank.scorer.model(story.the_model())


def step_score_one(story: Story) -> None:
    """One enterprise grants; the bank scores it under HE; a revoked grant is refused."""
    from registry import Registry

    step("One HE score under a grant / 同态加密联合评分")
    bank = _demo_bank(story)
    info = _model(story, bank)
    book = _loan_book(story)
    _, test = book.split()
    i = int(test[0])
    enterprise = book.usccs[i]
    consent = bank.client.request_consent(
        enterprise,
        purpose="working_capital_loan",
        ops=["score"],
        categories=info.consent_categories,
        duration_days=30,
        max_uses=5,
    )
    login = f"ent-{enterprise[-6:].lower()}"
    Registry(_engine(story)).add_user(
        login=login, password=DEMO_PASSWORD, role="enterprise", uscc=enterprise
    )
    person = story.person(login, DEMO_PASSWORD)
    approved = person.post(f"/v1/consents/{consent['id']}/approve").json()
    grant = str(approved["grant"])
    say(f"{enterprise} granted {BANK_ID}: ops [score], categories {list(info.consent_categories)}")
    row = dict(zip(book.columns, book.x[i].tolist(), strict=True))
    result = bank.scorer.score(info, grant, row)
    say(
        f"bank decrypts: default probability {result.probability:.4f} (logit {result.logit:+.4f}),"
        f" audit index {result.audit_index}; the gateway saw only ciphertext"
    )
    person.post(f"/v1/consents/{consent['id']}/revoke")
    try:
        bank.scorer.score(info, grant, row)
    except BankError as e:
        say(f"after the enterprise revoked: refused — {e}")


def _approve_in_process(story: Story, consent_ids: list[tuple[str, str]]) -> dict[str, str]:
    """Demo shortcut: the enterprises' approvals through the consent service in-process
    (the same call and audit entry as POST /v1/consents/{id}/approve) instead of hundreds
    of sign-ins, each an Argon2 hash."""
    from gateway import create_app
    from gateway.enforce import ConsentAudit

    app = create_app(story.settings, background=False)
    svc = app.extensions["xinyi"]
    grants: dict[str, str] = {}
    try:
        with app.test_request_context():
            for consent_id, enterprise in consent_ids:
                row = svc.consent.act(consent_id, "approve", enterprise, audit=ConsentAudit(svc))
                if row.grant_jwt:
                    grants[enterprise] = row.grant_jwt
    finally:
        svc.stop()
    return grants


def step_score_applicants(story: Story) -> None:
    """A batch of applicants scored under HE; joint model vs the bank's own, by AUC."""
    step("Batch scoring and what department data adds / 批量评分与效果对比")
    bank = _demo_bank(story)
    info = _model(story, bank)
    book = _loan_book(story)
    train, test = book.split()
    applicants = test[: story.score_applicants]
    consents = []
    for i in applicants:
        answer = bank.client.request_consent(
            book.usccs[i],
            purpose="working_capital_loan",
            ops=["score"],
            categories=info.consent_categories,
            duration_days=30,
            max_uses=3,
        )
        consents.append((str(answer["id"]), book.usccs[i]))
    grants = _approve_in_process(story, consents)
    say(
        f"{len(applicants)} applicants asked for consent; {len(grants)} approved (demo: in-process)"
    )
    asked = [i for i in applicants if book.usccs[i] in grants]
    results = bank.scorer.score_batch(info, [grants[book.usccs[i]] for i in asked], book.x[asked])
    scored = [(i, r) for i, r in zip(asked, results, strict=True) if isinstance(r, Score)]
    refused = [r for r in results if isinstance(r, Refusal)]
    joint = np.array([r.probability for _, r in scored])
    y = book.y[[i for i, _ in scored]]
    # The bank's own model: its features only, fitted on its training half.
    z_train, mean, std = _standardize(_bank_matrix(book)[train])
    w, b = fit_logistic(np.clip(z_train, -5, 5), book.y[train])
    z_test = np.clip((_bank_matrix(book)[[i for i, _ in scored]] - mean) / std, -5, 5)
    bank_only = np.array([sigmoid(float(v)) for v in z_test @ w + b])
    if len(set(y.tolist())) < 2:
        say("not enough defaults among the scored applicants for an AUC")
        return
    joint_auc, bank_auc = roc_auc(y, joint), roc_auc(y, bank_only)
    say(f"{len(scored)} scored in one batch request, {len(refused)} refused")
    say(f"  AUC bank-only model : {bank_auc:.3f}")
    say(f"  AUC joint HE model  : {joint_auc:.3f}   (+{joint_auc - bank_auc:.3f})")
    story.auc = {"joint": joint_auc, "bank_only": bank_auc, "applicants": len(scored)}
