"""The trained halves as the model registry's ``JointModel`` (``federated.models``): the
bank folds its standardization into weights on raw features; the gateway keeps its
standardization and weights."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from federated.models import JointModel, Standardization


@dataclass(frozen=True)
class BankHalf:
    """The bank's weights on its RAW features (standardization folded in) and the
    intercept."""

    features: tuple[str, ...]
    weights: tuple[float, ...]
    intercept: float


def fold_bank_half(
    features: Sequence[str], weights: np.ndarray, intercept: float, std: Standardization
) -> BankHalf:
    """w·(x − mean)/std + b = (w/std)·x + (b − Σ w·mean/std). The bank's clipping is used
    for training only (winsorized fit); the exported half is exact on raw features."""
    w = np.asarray(weights) / np.asarray(std.std)
    b = intercept - float(np.sum(w * np.asarray(std.mean)))
    return BankHalf(tuple(features), tuple(float(v) for v in w), b)


def import_json(model: JointModel) -> dict[str, Any]:
    """The ``xinyi models import`` JSON of a trained model (the CONTRACT.md fields)."""
    return {
        "id": model.id,
        "gateway_features": list(model.gateway_features),
        "bank_features": list(model.bank_features),
        "gateway_weights": list(model.gateway_weights),
        "bank_weights": list(model.bank_weights),
        "intercept": model.intercept,
        "gateway_standardization": model.gateway_standardization.as_dict(),
    }


def joint_model(
    model_id: str,
    gateway_features: Sequence[str],
    gateway_weights: Sequence[float],
    gateway_standardization: Standardization,
    bank: BankHalf,
) -> JointModel:
    """The registry's model type for a trained pair of halves. Not validated against the
    catalog here: the simulation's columns are any CSV names; registering goes through
    ``parse_model`` (``gateway.api.train``, ``xinyi models import``)."""
    return JointModel(
        id=model_id,
        gateway_features=tuple(gateway_features),
        bank_features=bank.features,
        gateway_weights=tuple(float(v) for v in gateway_weights),
        bank_weights=bank.weights,
        intercept=bank.intercept,
        gateway_standardization=gateway_standardization,
    )


def logits(model: JointModel, x_gateway: np.ndarray, x_bank: np.ndarray) -> np.ndarray:
    """The contract formula on raw features for many rows (plaintext; for evaluation)."""
    zg = model.gateway_standardization.apply(np.asarray(x_gateway, dtype=np.float64))
    out: np.ndarray = (
        model.intercept
        + zg @ np.asarray(model.gateway_weights)
        + model.bank_inputs(np.asarray(x_bank, dtype=np.float64)) @ np.asarray(model.bank_weights)
    )
    return out
