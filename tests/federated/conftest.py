"""Federated fixtures: one CKKS key pair per session (generation takes ~0.1 s) and a
model factory with realistic magnitudes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from federated import he
from federated.models import JointModel, parse_model


@pytest.fixture(scope="session")
def secret() -> he.SecretContext:
    return he.SecretContext.generate(he.DEFAULT_PARAMS)


@pytest.fixture(scope="session")
def public(secret: he.SecretContext) -> he.PublicContext:
    return he.PublicContext.load(secret.public_bytes(), expected=he.DEFAULT_PARAMS)


def model_json(
    rng: np.random.Generator, *, gateway: int = 3, bank: int = 4, **overrides: Any
) -> dict[str, Any]:
    """A model in the import format: standardized logistic-regression magnitudes
    (|w| ≤ 3, |intercept| ≤ 3, clip 5)."""
    feats = [
        "tax.paid_12m",
        "tax.revenue_12m",
        "social_security.insured_employees",
        "social_security.months_in_arrears_12m",
        "housing_fund.contributors",
        "utilities.power_kwh_12m",
        "utilities.late_payments_12m",
    ]
    return {
        "id": "sme-risk",
        "gateway_features": feats[:gateway],
        "bank_features": [f"bank_f{j}" for j in range(bank)],
        "gateway_weights": rng.uniform(-3, 3, gateway).round(6).tolist(),
        "bank_weights": rng.uniform(-3, 3, bank).round(6).tolist(),
        "intercept": float(rng.uniform(-3, 3)),
        "gateway_standardization": {
            "mean": rng.uniform(0, 1e6, gateway).round(2).tolist(),
            "std": rng.uniform(1e3, 1e6, gateway).round(2).tolist(),
            "clip": 5.0,
        },
        **overrides,
    }


@pytest.fixture
def make_model() -> Callable[..., JointModel]:
    def factory(seed: int = 0, **kw: Any) -> JointModel:
        return parse_model(model_json(np.random.default_rng(seed), **kw))

    return factory
