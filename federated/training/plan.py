"""The plan both parties agree on before the first message, and each party's own
privacy parameters (not negotiated)."""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from common.errors import InvalidInput
from federated.errors import (
    InvalidPlan as InvalidPlan,
)
from federated.he import CKKSParams
from federated.training.wire import UnexpectedMessage

PARAMS = CKKSParams(8192, (60, 50, 60), 40)
"""CKKS parameters of the training keys. A bank column block is encrypted at scale 2^40
under the two data primes (60 + 50 bits); the gateway multiplies it by a plaintext at scale
2^50 and rescales, which leaves the product at scale ~2^40 modulo the single 60-bit prime:
an inner product S is the coefficient S·2^40, so |S| < 2^19 fits with the flooding noise
and the one-time pads (uniform mod q0). 170 of the 218 bits N = 8192 allows at 128-bit
security; a block is ``batch_size`` coefficients, N / batch_size blocks per ciphertext."""


def auto_batch_size(n_train: int, slots: int = PARAMS.slots) -> int:
    """At least about eight batches per epoch, a power of two between 64 and the slots."""
    target = max(64, math.ceil(n_train / 8))
    size = 1 << (target - 1).bit_length()
    return min(size, slots)


@functools.lru_cache(maxsize=4)
def _epoch_batches(seed: int, epoch: int, n_train: int, batches: int) -> list[np.ndarray]:
    """An epoch's shuffled rows split into batches; both parties ask for the same
    batch several times per step, and the shuffle of a million rows costs ~17 ms."""
    order = np.random.default_rng([seed, epoch]).permutation(n_train)
    order.flags.writeable = False  # shared by every caller: read-only
    return np.array_split(order, batches)


@dataclass(frozen=True)
class TrainingPlan:
    """What both parties agree on before the first message (all of it public to both).

    ``batch_size`` is the capacity of one column block (batches are the n_train rows,
    shuffled per epoch with ``seed``, split into ceil(n_train / batch_size) near-equal
    parts); ``bank_columns``/``gateway_columns`` are the features of each side."""

    session: str
    n_train: int
    n_validation: int
    bank_columns: int
    gateway_columns: int
    epochs: int = 16
    batch_size: int = 4096
    learning_rate: float = 0.1
    l2: float = 1e-4
    seed: int = 0
    params: CKKSParams = PARAMS

    def __post_init__(self) -> None:
        checks = [
            (0 < len(self.session) <= 64, "session must be 1 to 64 characters"),
            (self.n_train >= 2, "at least 2 training rows"),
            (self.n_validation >= 0, "n_validation must be >= 0"),
            (1 <= self.bank_columns <= 1024, "bank_columns must be 1..1024"),
            (1 <= self.gateway_columns <= 1024, "gateway_columns must be 1..1024"),
            (1 <= self.epochs <= 1000, "epochs must be 1..1000"),
            (
                16 <= self.batch_size <= self.params.slots,
                f"batch_size must be 16..{self.params.slots}",
            ),
            (0 < self.learning_rate <= 10, "learning_rate must be in (0, 10]"),
            (0 <= self.l2 <= 10, "l2 must be in [0, 10]"),
            (0 <= self.seed < 2**63, "seed must be a non-negative 63-bit integer"),
        ]
        for ok, why in checks:
            if not ok:
                raise InvalidPlan(f"training plan: {why}")

    @property
    def batches_per_epoch(self) -> int:
        return math.ceil(self.n_train / self.batch_size)

    @property
    def total_steps(self) -> int:
        return self.epochs * self.batches_per_epoch

    @property
    def reps(self) -> int:
        """Column blocks of ``batch_size`` coefficients one bank ciphertext (or one gateway
        multiplier) carries: the product's coefficient c·batch_size is block c's inner
        product while the blocks fit the ring (coefficient encoding)."""
        return max(1, self.params.poly_modulus_degree // self.batch_size)

    @property
    def feature_ciphertexts(self) -> int:
        return math.ceil(self.bank_columns / self.reps)

    @property
    def bank_ciphertexts(self) -> int:
        """The bank's feature ciphertexts and one holding its residual share a alone."""
        return self.feature_ciphertexts + 1

    @property
    def gateway_groups(self) -> int:
        return math.ceil(self.gateway_columns / self.reps)

    @property
    def products(self) -> int:
        """Sum-only products per batch: each feature ciphertext and a times u_g, and a
        times each group of gateway columns."""
        return self.bank_ciphertexts + self.gateway_groups

    @property
    def readings(self) -> int:
        """Readable coefficients per batch: one per bank column, a·u_g, one per gateway
        column."""
        return self.bank_columns + 1 + self.gateway_columns

    def feature_group(self, i: int) -> range:
        return range(i * self.reps, min((i + 1) * self.reps, self.bank_columns))

    def gateway_group(self, g: int) -> range:
        return range(g * self.reps, min((g + 1) * self.reps, self.gateway_columns))

    def product_sizes(self) -> list[int]:
        """How many readable coefficients each product has, in message order."""
        return (
            [len(self.feature_group(i)) for i in range(self.feature_ciphertexts)]
            + [1]
            + [len(self.gateway_group(g)) for g in range(self.gateway_groups)]
        )

    def batch_rows(self, epoch: int, batch: int) -> np.ndarray:
        if not (0 <= epoch < self.epochs and 0 <= batch < self.batches_per_epoch):
            raise UnexpectedMessage(f"no batch ({epoch}, {batch}) in this plan")
        return _epoch_batches(self.seed, epoch, self.n_train, self.batches_per_epoch)[batch]

    def as_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["params"] = self.params.as_dict()
        return d

    @classmethod
    def from_dict(cls, d: Any) -> TrainingPlan:
        if not isinstance(d, dict):
            raise InvalidPlan("the training plan must be an object")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise InvalidPlan(f"unknown training plan fields {sorted(unknown)}")
        try:
            kwargs = dict(d)
            if "params" in kwargs:
                kwargs["params"] = CKKSParams.from_dict(kwargs["params"])
            for key in ("n_train", "n_validation", "bank_columns", "gateway_columns"):
                kwargs[key] = _strict_int(kwargs[key], key)
            for key in ("epochs", "batch_size", "seed"):
                if key in kwargs:
                    kwargs[key] = _strict_int(kwargs[key], key)
            for key in ("learning_rate", "l2"):
                if key in kwargs:
                    kwargs[key] = float(kwargs[key])
            return cls(**kwargs)
        except (KeyError, TypeError, ValueError) as e:
            raise InvalidPlan(f"malformed training plan: {e}") from e


def _strict_int(v: Any, name: str) -> int:
    if not isinstance(v, int) or isinstance(v, bool):
        raise InvalidPlan(f"{name} must be an integer")
    return v


@dataclass(frozen=True)
class Privacy:
    """Each party's own protection of what it hands over (not negotiated).

    ``row_sigma``: each party perturbs the per-row vector the other party's columns are
    multiplied by with ν ~ N(0, row_sigma²), fresh per row and batch: the gateway
    multiplies the bank's columns by u_g + ν, the bank encrypts a + ν_b. What the other
    side reads, Σ c·(u_g + ν), carries noise of standard deviation row_sigma·‖c‖:
    proportional to the reader's own column, so a scaled indicator column cannot
    out-shout it. ``sum_sigma``: Gaussian noise on every sum the
    other party reads (the gateway's Σ c·u_g, Σu_g, Σu_g²; the bank's padded gateway
    sums), ``round_bits``: returned sums are rounded to 2^-round_bits.
    ``max_restarts``: restarts of one batch the gateway accepts.
    ``max_residual``: the honest bound of |a| = |¼u_b − ½y| the gateway clips its
    gradient with (a bank that sends larger residuals cannot steer w_g further)."""

    row_sigma: float = 0.25
    sum_sigma: float = 2.0**-4
    round_bits: int = 20
    max_restarts: int = 3
    max_residual: float = 4.0

    def __post_init__(self) -> None:
        if not 0 <= self.row_sigma <= 16:
            raise InvalidPlan("row_sigma must be in [0, 16]")
        if not 0 < self.sum_sigma <= 1:
            raise InvalidPlan("sum_sigma must be in (0, 1]")
        if not 8 <= self.round_bits <= 28:
            raise InvalidPlan("round_bits must be 8..28 (the coefficient grid is 2^-28)")
        if not 0 <= self.max_restarts <= 100:
            raise InvalidPlan("max_restarts must be 0..100")
        if not 0 < self.max_residual <= 1e6:
            raise InvalidPlan("max_residual must be in (0, 1e6]")


def check_matrix(x: np.ndarray, rows: int, cols: int, what: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.shape != (rows, cols):
        raise InvalidInput(f"{what}: expected shape {(rows, cols)}, got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise InvalidInput(f"{what}: values must be finite", code="invalid_features")
    return x


def check_labels(y: np.ndarray, n: int) -> np.ndarray:
    y = np.asarray(y, dtype=np.float64).ravel()
    if y.shape != (n,):
        raise InvalidInput(f"expected {n} labels, got {y.shape[0]}", code="invalid_labels")
    if not np.all((y == 1.0) | (y == -1.0)):
        raise InvalidInput("labels must be −1 or 1", code="invalid_labels")
    return y
