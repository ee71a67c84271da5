"""Joint models: the definition, its validation and the plaintext logit (pure).

A joint model is a logistic regression over gateway features x_g (department data held
by the gateway) and bank features x_b (held by the bank)::

    logit = intercept + Σ w_g · clip((x_g − mean_g) / std_g, ±clip_g) + Σ w_b · z_b

where z_b = x_b, or clip((x_b − mean_b) / std_b, ±clip_b) when the model documents a
``bank_standardization`` (the bank SDK applies it before encrypting; the gateway never
sees x_b).

Gateway features are the column specs of the department data store
(``records.store.feature_matrix``): ``category.feature`` (numbers as they are, booleans
0/1, enums their position in the catalog's values, dates years until today),
``log1p(category.feature)`` for a numeric feature, and ``category.feature=VALUE`` (1.0 or
0.0) for an enum or boolean one. Bank features are names of the bank's own columns, or
``log1p(name)``, which the bank SDK computes as log(1 + max(x, 0)) before standardizing.

Invariants:
- models enter only from the operator (``xinyi models import``) or from federated
  training (``federated.store.register_model``), never from an institution: choosing the
  gateway weights would let it read a feature through a unit weight vector;
- a model id is ``owner/name`` (the institution that trained it) or a bare ``name``
  (the operator's); only the owner adds versions (``federated.store``), and a model
  serves only once the operator approved it (status ``approved``);
- every number is finite, every std > 0, every clip > 0, and the gateway's part of the
  logit is bounded: |intercept| + Σ |w_g|·clip_g ≤ LOGIT_BOUND, and when the bank's
  inputs are clipped, Σ |w_b|·clip_b ≤ LOGIT_BOUND too. The CKKS slot budget
  (``federated.scoring``) relies on these bounds;
- at least one bank weight is non-zero (a model without a bank part is not joint, and
  its score would reveal the gateway's share in clear);
- the definition round-trips: ``parse_model(model.definition()) == model`` (minus
  registration metadata).

Missing gateway data: a gateway feature the department data store does not hold for an
enterprise is imputed with its training mean, i.e. the standardized value 0, so it adds
nothing to the logit and the score rests on the evidence that exists (the usual
convention for a standardized logistic model; refusing instead would make every firm
without, say, housing-fund records unscorable). When the store holds *none* of the
model's gateway features the enterprise is unknown to the gateway and scoring refuses
(``no_data``): a score made of the intercept alone would look like an answer and is not.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from common.errors import InvalidInput
from common.settings import Category
from federated.errors import (
    InvalidModel as InvalidModel,
)
from federated.he import DEFAULT_PARAMS, CKKSParams

LOGIT_BOUND = 2.0**14
MAX_GATEWAY_FEATURES = 64
MAX_BANK_FEATURES = 256
# ``owner/name``: the owner is the institution that trained the model (institution ids
# are lower-case letters, digits, '_' and '-'); a bare ``name`` belongs to the operator.
MODEL_ID = re.compile(r"^(?=.{1,64}$)(?:[a-z][a-z0-9_-]{1,47}/)?[a-z0-9][a-z0-9_.-]{0,63}$")
OPERATOR = "_operator"  # no institution id starts with "_"
STATUSES = ("pending", "approved", "rejected")
_FEATURE_ID = r"[a-z][a-z0-9_]{0,47}\.[a-z][a-z0-9_]{0,47}"
GATEWAY_COLUMN = re.compile(
    rf"^(?:log1p\((?P<log>{_FEATURE_ID})\)|(?P<ind>{_FEATURE_ID})=(?P<eq>[A-Za-z0-9_.-]{{1,48}})"
    rf"|(?P<raw>{_FEATURE_ID}))$"
)
_BANK_NAME = r"[A-Za-z_][A-Za-z0-9_.-]{0,63}"
BANK_FEATURE = re.compile(rf"^(?:log1p\((?P<log>{_BANK_NAME})\)|(?P<raw>{_BANK_NAME}))$")
NUMERIC_TYPES = ("integer", "amount", "number")
REQUIRED_FIELDS = (
    "id",
    "gateway_features",
    "bank_features",
    "gateway_weights",
    "bank_weights",
    "intercept",
    "gateway_standardization",
)
IMPORT_FIELDS = frozenset(
    {*REQUIRED_FIELDS, "bank_standardization", "context_params", "description", "metadata"}
)


@dataclass(frozen=True)
class Standardization:
    """Per feature: z = clip((x − mean) / std, −clip, clip)."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    clip: tuple[float, ...]

    @classmethod
    def fit(cls, x: np.ndarray, clip: float | None) -> Standardization:
        """Mean and standard deviation of each column of ``x`` (a constant column gets
        std 1, so it stays 0 after centring); ``clip`` None means no clipping."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] < 2:
            raise InvalidInput("standardization needs a matrix of at least 2 rows")
        if not np.all(np.isfinite(x)):
            raise InvalidInput("features must be finite numbers", code="invalid_features")
        std = x.std(axis=0)
        std = np.where(std > 1e-12, std, 1.0)
        bound = math.inf if clip is None else float(clip)
        return cls(
            tuple(float(v) for v in x.mean(axis=0)),
            tuple(float(v) for v in std),
            (bound,) * x.shape[1],
        )

    def apply(self, x: np.ndarray, *, clip: bool = True) -> np.ndarray:
        """Standardize a vector (or the rows of a matrix) of raw values; ``clip=False``
        leaves the standardized values unclipped."""
        mean, std, bound = (
            np.asarray(v, dtype=np.float64) for v in (self.mean, self.std, self.clip)
        )
        x = np.asarray(x, dtype=np.float64)
        if x.shape[-1] != len(self.mean):
            raise InvalidInput(
                f"expected {len(self.mean)} feature columns, got {x.shape}",
                code="invalid_features",
            )
        z: np.ndarray = (x - mean) / std
        return np.clip(z, -bound, bound) if clip else z

    def as_dict(self) -> dict[str, list[float]]:
        return {"mean": list(self.mean), "std": list(self.std), "clip": list(self.clip)}

    @classmethod
    def from_dict(cls, d: Any) -> Standardization:
        """The ``as_dict`` form back (a scalar ``clip`` applies to every column)."""
        try:
            mean = tuple(float(v) for v in d["mean"])
            clip = d["clip"]
            bounds = (
                tuple(float(v) for v in clip)
                if isinstance(clip, list)
                else (math.inf if clip is None else float(clip),) * len(mean)
            )
            return cls(mean, tuple(float(v) for v in d["std"]), bounds)
        except (KeyError, TypeError, ValueError) as e:
            raise InvalidInput(f"malformed standardization: {e}") from e


@dataclass(frozen=True)
class JointModel:
    """A registered (or about to be registered) joint model. ``version`` is 0 until the
    store assigns one."""

    id: str
    gateway_features: tuple[str, ...]
    bank_features: tuple[str, ...]
    gateway_weights: tuple[float, ...]
    bank_weights: tuple[float, ...]
    intercept: float
    gateway_standardization: Standardization
    bank_standardization: Standardization | None = None
    params: CKKSParams = DEFAULT_PARAMS
    description: str = ""
    metadata: Mapping[str, Any] | None = None
    version: int = 0
    registered_by: str | None = None
    created_at: int | None = None
    status: str | None = None  # pending | approved | rejected (set by the store)

    @property
    def owner(self) -> str:
        """Who may add versions of this id: the ``owner/`` prefix, else the operator."""
        return model_owner(self.id)

    @property
    def approved(self) -> bool:
        return self.status == "approved"

    @property
    def ref(self) -> str:
        """``id@version``: names exactly the weights that computed a score (audit)."""
        return f"{self.id}@{self.version}"

    @property
    def gateway_feature_ids(self) -> tuple[str, ...]:
        """The catalog features (``category.feature``) the gateway columns read, sorted."""
        return tuple(sorted({gateway_feature_id(c) for c in self.gateway_features}))

    @property
    def gateway_categories(self) -> tuple[str, ...]:
        """The catalog categories a grant must cover to score with this model."""
        return tuple(sorted({f.partition(".")[0] for f in self.gateway_feature_ids}))

    # The plaintext protocol ----------------------------------------------------------
    def standardized_gateway(self, values: Sequence[float | None] | np.ndarray) -> np.ndarray:
        """Standardized, clipped gateway features; a missing value (None or NaN) is
        imputed with its training mean (0 after standardization, see the module
        docstring)."""
        if len(values) != len(self.gateway_features):
            raise InvalidInput(
                f"{len(values)} gateway values for {len(self.gateway_features)} features",
                code="invalid_model_input",
            )
        raw = np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
        raw[~np.isfinite(raw)] = np.nan
        z = self.gateway_standardization.apply(raw)
        return np.where(np.isnan(raw), 0.0, z)

    def gateway_share(self, values: Sequence[float | None] | np.ndarray) -> float:
        """intercept + Σ w_g·z_g: the gateway's part of the logit."""
        z = self.standardized_gateway(values)
        return float(self.intercept + np.dot(np.asarray(self.gateway_weights), z))

    def bank_inputs(self, values: Sequence[float] | np.ndarray) -> np.ndarray:
        """What the bank encrypts: its raw columns (``bank_columns`` order), ``log1p``
        applied where a feature says so, standardized and clipped when the model says
        so. Rows of a matrix are applicants."""
        x = np.asarray(values, dtype=np.float64)
        if x.shape[-1] != len(self.bank_features):
            raise InvalidInput(
                f"{x.shape[-1]} bank values for {len(self.bank_features)} features",
                code="invalid_model_input",
            )
        if not np.all(np.isfinite(x)):
            raise InvalidInput("bank feature values must be finite", code="invalid_model_input")
        logs = [j for j, name in enumerate(self.bank_features) if name.startswith("log1p(")]
        if logs:
            x = x.copy()
            x[..., logs] = np.log1p(np.maximum(x[..., logs], 0.0))
        return x if self.bank_standardization is None else self.bank_standardization.apply(x)

    def logit(
        self,
        gateway_values: Sequence[float | None] | np.ndarray,
        bank_values: Sequence[float] | np.ndarray,
    ) -> float:
        """The plaintext logit of one applicant (raw values on both sides)."""
        z_b = self.bank_inputs(bank_values)
        return self.gateway_share(gateway_values) + float(
            np.dot(np.asarray(self.bank_weights), z_b)
        )

    @property
    def bank_columns(self) -> tuple[str, ...]:
        """The bank's raw column behind each bank feature (``log1p(x)`` reads ``x``)."""
        return tuple(bank_column(f) for f in self.bank_features)

    # Views -----------------------------------------------------------------------------
    def definition(self) -> dict[str, Any]:
        """The ``xinyi models import`` JSON of this model (weights included)."""
        out: dict[str, Any] = {
            "id": self.id,
            "gateway_features": list(self.gateway_features),
            "bank_features": list(self.bank_features),
            "gateway_weights": list(self.gateway_weights),
            "bank_weights": list(self.bank_weights),
            "intercept": self.intercept,
            "gateway_standardization": self.gateway_standardization.as_dict(),
            "context_params": self.params.as_dict(),
        }
        if self.bank_standardization is not None:
            out["bank_standardization"] = self.bank_standardization.as_dict()
        if self.description:
            out["description"] = self.description
        if self.metadata:
            out["metadata"] = dict(self.metadata)
        return out

    def public_view(self) -> dict[str, Any]:
        """What institutions may see (``GET /v1/models``): never the gateway's weights
        or standardization, nor the bank weights (the bank learns its logit only)."""
        out: dict[str, Any] = {
            "id": self.id,
            "version": self.version,
            "gateway_features": list(self.gateway_features),
            "gateway_categories": list(self.gateway_categories),
            "bank_features": list(self.bank_features),
            "context_params": self.params.as_dict(),
            "bank_standardization": (
                self.bank_standardization.as_dict() if self.bank_standardization else None
            ),
            "created_at": self.created_at,
            "owner": self.owner,
            "status": self.status,
        }
        if self.description:
            out["description"] = self.description
        return out

    def registered(
        self, version: int, registered_by: str, created_at: int, status: str | None = None
    ) -> JointModel:
        return replace(
            self,
            version=version,
            registered_by=registered_by,
            created_at=created_at,
            status=status,
        )


def model_owner(model_id: str) -> str:
    """The owner of a model id: ``bank_a/risk`` → ``bank_a``; a bare id → the operator."""
    owner, slash, _ = model_id.partition("/")
    return owner if slash else OPERATOR


@dataclass(frozen=True)
class WeightSummary:
    """What the operator reviews of a model's weights (no data value, no enterprise)."""

    gateway_l2: float
    gateway_l1: float
    bank_l2: float
    intercept: float
    largest: tuple[tuple[str, float], ...]  # gateway columns by |weight|, largest first
    share_bound: float  # |intercept| + Σ|w_g|·clip_g: the widest gateway share

    @property
    def dominant_fraction(self) -> float:
        """The largest |w_g| over Σ|w_g|: near 1, the gateway share is one feature."""
        return abs(self.largest[0][1]) / self.gateway_l1 if self.gateway_l1 > 0 else 0.0


def weight_summary(model: JointModel, top: int = 5) -> WeightSummary:
    w_g = np.asarray(model.gateway_weights, dtype=np.float64)
    order = np.argsort(-np.abs(w_g), kind="stable")[:top]
    clip = np.asarray(model.gateway_standardization.clip, dtype=np.float64)
    return WeightSummary(
        gateway_l2=float(np.linalg.norm(w_g)),
        gateway_l1=float(np.abs(w_g).sum()),
        bank_l2=float(np.linalg.norm(np.asarray(model.bank_weights, dtype=np.float64))),
        intercept=model.intercept,
        largest=tuple((model.gateway_features[i], float(w_g[i])) for i in order),
        share_bound=float(abs(model.intercept) + np.sum(np.abs(w_g) * clip)),
    )


# Parsing ---------------------------------------------------------------------------------


def _fail(field: str, why: str) -> InvalidModel:
    return InvalidModel(f"{field}: {why}", field=field)


def _number(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(field, "must be a number")
    out = float(value)
    if not math.isfinite(out):
        raise _fail(field, "must be finite")
    return out


def _numbers(value: Any, field: str, n: int) -> tuple[float, ...]:
    if not isinstance(value, list):
        raise _fail(field, "must be a list of numbers")
    if len(value) != n:
        raise _fail(field, f"has {len(value)} entries; expected {n}")
    return tuple(_number(v, f"{field}[{i}]") for i, v in enumerate(value))


def _names(value: Any, field: str, pattern: re.Pattern[str], limit: int) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _fail(field, "must be a list of names")
    if not 0 < len(value) <= limit:
        raise _fail(field, f"must name 1 to {limit} features")
    for i, v in enumerate(value):
        if not pattern.match(v):
            raise _fail(f"{field}[{i}]", f"{v!r} is not a valid feature name")
    if len(set(value)) != len(value):
        raise _fail(field, "names a feature twice")
    return tuple(value)


def _standardization(value: Any, field: str, n: int) -> Standardization:
    if not isinstance(value, Mapping):
        raise _fail(field, "must be an object {mean, std, clip}")
    unknown = set(value) - {"mean", "std", "clip"}
    if unknown:
        raise _fail(f"{field}.{sorted(unknown)[0]}", "unknown field")
    for key in ("mean", "std", "clip"):
        if key not in value:
            raise _fail(f"{field}.{key}", "is required")
    mean = _numbers(value["mean"], f"{field}.mean", n)
    std = _numbers(value["std"], f"{field}.std", n)
    clip_raw = value["clip"]
    clip = (
        (_number(clip_raw, f"{field}.clip"),) * n
        if not isinstance(clip_raw, list)
        else _numbers(clip_raw, f"{field}.clip", n)
    )
    for i, s in enumerate(std):
        if s <= 0:
            raise _fail(f"{field}.std[{i}]", "must be positive")
    for i, c in enumerate(clip):
        if c <= 0:
            raise _fail(
                f"{field}.clip" + ("" if not isinstance(clip_raw, list) else f"[{i}]"),
                "must be positive",
            )
    return Standardization(mean, std, clip)


def parse_model(raw: Any, *, default_params: CKKSParams = DEFAULT_PARAMS) -> JointModel:
    """Validate the ``xinyi models import`` JSON (see the module invariants). Errors name
    the offending field (``InvalidModel``, code ``invalid_model``)."""
    if not isinstance(raw, Mapping):
        raise _fail("(top level)", "a model is a JSON object")
    unknown = set(raw) - IMPORT_FIELDS
    if unknown:
        raise _fail(sorted(unknown)[0], "unknown field")
    for key in REQUIRED_FIELDS:
        if key not in raw:
            raise _fail(key, "is required")
    model_id = raw["id"]
    if not isinstance(model_id, str) or not MODEL_ID.match(model_id):
        raise _fail(
            "id",
            "'owner/name' or 'name': lower-case letters, digits, '_', '.', '-'; at most 64",
        )
    gateway = _names(
        raw["gateway_features"], "gateway_features", GATEWAY_COLUMN, MAX_GATEWAY_FEATURES
    )
    bank = _names(raw["bank_features"], "bank_features", BANK_FEATURE, MAX_BANK_FEATURES)
    w_g = _numbers(raw["gateway_weights"], "gateway_weights", len(gateway))
    w_b = _numbers(raw["bank_weights"], "bank_weights", len(bank))
    intercept = _number(raw["intercept"], "intercept")
    g_std = _standardization(
        raw["gateway_standardization"], "gateway_standardization", len(gateway)
    )
    b_std = (
        None
        if raw.get("bank_standardization") is None
        else _standardization(raw["bank_standardization"], "bank_standardization", len(bank))
    )
    params = (
        default_params
        if raw.get("context_params") is None
        else CKKSParams.from_dict(raw["context_params"])
    )
    if len(bank) > params.slots:
        raise _fail("bank_features", f"more features than the {params.slots} slots of a ciphertext")
    if not any(w != 0 for w in w_b):
        raise _fail("bank_weights", "at least one bank weight must be non-zero")
    gateway_bound = abs(intercept) + sum(abs(w) * c for w, c in zip(w_g, g_std.clip, strict=True))
    if gateway_bound > LOGIT_BOUND:
        raise _fail(
            "gateway_weights",
            f"|intercept| + Σ|w_g|·clip is {gateway_bound:.4g}; at most {LOGIT_BOUND:.0f} "
            "(the CKKS slot budget)",
        )
    if b_std is not None:
        bank_bound = sum(abs(w) * c for w, c in zip(w_b, b_std.clip, strict=True))
        if bank_bound > LOGIT_BOUND:
            raise _fail(
                "bank_weights",
                f"Σ|w_b|·clip is {bank_bound:.4g}; at most {LOGIT_BOUND:.0f} "
                "(the CKKS slot budget)",
            )
    description = raw.get("description", "")
    if not isinstance(description, str) or len(description) > 2000:
        raise _fail("description", "must be a string of at most 2000 characters")
    metadata = raw.get("metadata")
    if metadata is not None and not isinstance(metadata, Mapping):
        raise _fail("metadata", "must be an object")
    return JointModel(
        id=model_id,
        gateway_features=gateway,
        bank_features=bank,
        gateway_weights=w_g,
        bank_weights=w_b,
        intercept=intercept,
        gateway_standardization=g_std,
        bank_standardization=b_std,
        params=params,
        description=description,
        metadata=dict(metadata) if metadata else None,
    )


def gateway_feature_id(column: str) -> str:
    """The catalog feature a gateway column reads: ``log1p(tax.paid_12m)`` → ``tax.paid_12m``."""
    m = GATEWAY_COLUMN.match(column)
    if m is None:
        raise InvalidModel(f"{column!r} is not a gateway feature column", field="gateway_features")
    return str(m.group("log") or m.group("ind") or m.group("raw"))


def bank_column(feature: str) -> str:
    """The bank's raw column behind a bank feature: ``log1p(avg_balance)`` → ``avg_balance``."""
    m = BANK_FEATURE.match(feature)
    if m is None:
        raise InvalidModel(f"{feature!r} is not a bank feature name", field="bank_features")
    return str(m.group("log") or m.group("raw"))


def check_catalog(model: JointModel, categories: Mapping[str, Category]) -> None:
    """Every gateway column reads a catalog feature the way the data store can encode
    it: ``log1p`` of a number, an indicator of an enum value or a boolean, or any
    feature that is not free text."""
    for i, column in enumerate(model.gateway_features):
        m = GATEWAY_COLUMN.match(column)
        assert m is not None  # parse_model checked the syntax
        feature_id = gateway_feature_id(column)
        cat_name, _, feat_name = feature_id.partition(".")
        cat = categories.get(cat_name)
        feature = cat.features.get(feat_name) if cat is not None else None
        field = f"gateway_features[{i}]"
        if feature is None:
            raise _fail(field, f"{feature_id!r} is not in the data catalog")
        if m.group("log") and feature.type not in NUMERIC_TYPES:
            raise _fail(field, f"log1p needs a numeric feature; {feature_id} is {feature.type}")
        if m.group("ind"):
            equals = m.group("eq")
            if feature.type == "enum":
                if equals not in (feature.values or ()):
                    raise _fail(field, f"{equals!r} is not a value of {feature_id}")
            elif feature.type != "boolean" or equals not in ("true", "false"):
                raise _fail(field, f"indicators need an enum or boolean feature: {column}")
        if m.group("raw") and feature.type == "string":
            raise _fail(field, f"{feature_id} is text; a model needs numbers")


def review_entry(
    model: JointModel,
    status: str,
    categories: Mapping[str, Category],
    *,
    request_id: str,
    now: int,
) -> dict[str, Any]:
    """The audit entry of the operator's decision on a model version (``approved`` or
    ``rejected``): which model, whose, which departments' data it reads; never a
    weight."""
    cats = model.gateway_categories
    return {
        "request_id": request_id,
        "time": now,
        "institution": None if model.owner == OPERATOR else model.owner,
        "enterprise": None,
        "departments": sorted({categories[c].department for c in cats if c in categories}),
        "categories": list(cats),
        "features": list(model.gateway_feature_ids),
        "operation": "model.approve" if status == "approved" else "model.reject",
        "grant_id": None,
        "model_id": model.ref,
        "decision": "allowed",
    }
