"""The joint model every scoring benchmark uses (``bench.score``, ``bench.score_http``,
``bench.load``): 6 catalog features at the gateway, 10 at the bank, fixed seed."""

from __future__ import annotations

import numpy as np

from federated import he
from federated.models import JointModel, parse_model

BANK_FEATURES = 10
GATEWAY_FEATURES = 6
CATALOG_FEATURES = [
    "tax.paid_12m",
    "tax.revenue_12m",
    "social_security.insured_employees",
    "social_security.months_in_arrears_12m",
    "housing_fund.contributors",
    "utilities.power_kwh_12m",
]


def bench_model(params: he.CKKSParams = he.DEFAULT_PARAMS, seed: int = 1) -> JointModel:
    rng = np.random.default_rng(seed)
    return parse_model(
        {
            "id": "bench-model",
            "gateway_features": CATALOG_FEATURES[:GATEWAY_FEATURES],
            "bank_features": [f"bank_f{j}" for j in range(BANK_FEATURES)],
            "gateway_weights": rng.uniform(-2, 2, GATEWAY_FEATURES).tolist(),
            "bank_weights": rng.uniform(-2, 2, BANK_FEATURES).tolist(),
            "intercept": -1.2,
            "gateway_standardization": {
                "mean": [1e6] * GATEWAY_FEATURES,
                "std": [5e5] * GATEWAY_FEATURES,
                "clip": 5.0,
            },
            "bank_standardization": {
                "mean": [0.0] * BANK_FEATURES,
                "std": [1.0] * BANK_FEATURES,
                "clip": 5.0,
            },
            "context_params": params.as_dict(),
        }
    )
