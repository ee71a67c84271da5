"""federated.models: the import format, its validation and the plaintext logit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from common.settings import Settings
from federated.models import (
    LOGIT_BOUND,
    InvalidModel,
    JointModel,
    check_catalog,
    parse_model,
)
from tests.federated.conftest import model_json


def raw(**overrides: Any) -> dict[str, Any]:
    return model_json(np.random.default_rng(7), **overrides)


def test_a_valid_model_parses_and_round_trips() -> None:
    model = parse_model(
        raw(bank_standardization={"mean": [0, 1, 2, 3], "std": [1, 2, 3, 4], "clip": [3, 3, 3, 3]})
    )
    assert model.gateway_categories == ("social_security", "tax")
    assert parse_model(model.definition()) == model
    assert model.ref == "sme-risk@0"


def test_the_logit_is_the_documented_formula() -> None:
    model = parse_model(raw())
    x_g = [250_000.0, None, 12.0]
    x_b = [0.5, -1.0, 2.0, 0.0]
    std = model.gateway_standardization
    z = []
    for i, v in enumerate(x_g):
        if v is None:
            z.append(0.0)  # imputed with the training mean
        else:
            z.append(float(np.clip((v - std.mean[i]) / std.std[i], -std.clip[i], std.clip[i])))
    expected = (
        model.intercept
        + sum(w * zi for w, zi in zip(model.gateway_weights, z, strict=True))
        + sum(w * x for w, x in zip(model.bank_weights, x_b, strict=True))
    )
    assert model.logit(x_g, x_b) == pytest.approx(expected, abs=1e-12)


def test_gateway_values_are_clipped() -> None:
    model = parse_model(raw())
    huge = [1e15, -1e15, 1e15]
    z = model.standardized_gateway(huge)
    assert list(np.abs(z)) == [5.0, 5.0, 5.0]


def test_bank_standardization_is_applied_to_bank_inputs() -> None:
    model = parse_model(
        raw(bank_standardization={"mean": [10, 0, 0, 0], "std": [2, 1, 1, 1], "clip": 3})
    )
    np.testing.assert_allclose(model.bank_inputs([14.0, 0.5, -9.0, 1.0]), [2.0, 0.5, -3.0, 1.0])


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"id": "Bad Id"}, "id"),
        ({"gateway_features": ["tax"]}, "gateway_features[0]"),
        ({"gateway_features": ["log1p(tax.a", "tax.b", "tax.c"]}, "gateway_features[0]"),
        ({"bank_features": ["a", "b c", "d", "e"]}, "bank_features[1]"),
        ({"gateway_weights": [1.0]}, "gateway_weights"),
        ({"bank_weights": [0.0, 0.0, 0.0, 0.0]}, "bank_weights"),
        ({"bank_weights": [1.0, float("nan"), 1.0, 1.0]}, "bank_weights[1]"),
        ({"intercept": "1"}, "intercept"),
        ({"intercept": True}, "intercept"),
        (
            {"gateway_standardization": {"mean": [0, 0, 0], "std": [1, 0, 1], "clip": 5}},
            "gateway_standardization.std[1]",
        ),
        (
            {"gateway_standardization": {"mean": [0, 0, 0], "std": [1, 1, 1], "clip": -1}},
            "gateway_standardization.clip",
        ),
        (
            {"gateway_standardization": {"mean": [0, 0, 0], "std": [1, 1, 1]}},
            "gateway_standardization.clip",
        ),
        ({"gateway_weights": [5000.0, 0.0, 0.0]}, "gateway_weights"),
        ({"weights": [1]}, "weights"),
        (
            {
                "bank_weights": [900.0, 900.0, 900.0, 900.0],
                "bank_standardization": {"mean": [0] * 4, "std": [1] * 4, "clip": 5},
            },
            "bank_weights",
        ),
        ({"bank_features": ["a", "a", "b", "c"]}, "bank_features"),
    ],
)
def test_invalid_models_name_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidModel) as e:
        parse_model(raw(**change))
    assert e.value.code == "invalid_model"
    assert e.value.details["field"] == field


def test_the_gateway_bound_is_the_slot_budget() -> None:
    ok = raw(intercept=0.0, gateway_weights=[LOGIT_BOUND / 5, 0.0, 0.0])
    parse_model(ok)
    with pytest.raises(InvalidModel):
        parse_model({**ok, "intercept": 1.0})


def test_catalog_check_refuses_unknown_and_non_numeric_features(
    make_settings: Callable[..., Settings],
) -> None:
    categories = make_settings().config.categories
    check_catalog(parse_model(raw()), categories)
    with pytest.raises(InvalidModel, match="not in the data catalog"):
        check_catalog(
            parse_model(raw(gateway_features=["tax.nope", "tax.paid_12m", "tax.arrears"])),
            categories,
        )
    with pytest.raises(InvalidModel, match="text"):
        check_catalog(
            parse_model(raw(gateway_features=["registration.name", "tax.paid_12m", "tax.arrears"])),
            categories,
        )


def test_the_public_view_never_shows_weights(make_model: Callable[..., JointModel]) -> None:
    model = make_model()
    view = model.public_view()
    assert {"id", "gateway_features", "bank_features", "context_params"} <= set(view)
    for secret_field in ("gateway_weights", "bank_weights", "intercept", "gateway_standardization"):
        assert secret_field not in view
    text = repr(view)
    for w in (*model.gateway_weights, *model.bank_weights, model.intercept):
        assert repr(w) not in text


def test_columns_name_catalog_features_and_their_encoding(
    make_settings: Callable[..., Settings],
) -> None:
    categories = make_settings().config.categories
    model = parse_model(
        raw(
            gateway_features=[
                "log1p(tax.paid_12m)",
                "tax.credit_rating=A",
                "registration.established",
            ],
            bank_features=["years_with_bank", "log1p(avg_balance)", "overdue_count_24m", "x"],
        )
    )
    check_catalog(model, categories)
    assert model.gateway_feature_ids == (
        "registration.established",
        "tax.credit_rating",
        "tax.paid_12m",
    )
    assert model.gateway_categories == ("registration", "tax")
    assert model.bank_columns == ("years_with_bank", "avg_balance", "overdue_count_24m", "x")
    np.testing.assert_allclose(model.bank_inputs([2.0, np.e - 1, 1.0, -3.0]), [2.0, 1.0, 1.0, -3.0])
    for bad, why in (
        ("log1p(tax.credit_rating)", "log1p needs a numeric"),
        ("tax.credit_rating=Z", "not a value"),
        ("tax.paid_12m=1", "indicators need"),
        ("registration.name", "text"),
    ):
        with pytest.raises(InvalidModel, match=why):
            check_catalog(
                parse_model(raw(gateway_features=[bad, "tax.paid_12m", "tax.arrears"])),
                categories,
            )
