"""Vertical federated logistic regression between a bank and the gateway: the pure protocol.

The bank (B) holds labels y ∈ {−1, 1} and its features; the gateway (G) holds department
features of the same enterprises (rows aligned beforehand, in the bank's order). Both
sides standardize (and clip) their own columns locally. The model is
u = w_0 + Z_b·w_b + Z_g·w_g and the loss the second-order Taylor expansion of the logistic
loss at u = 0: ℓ(u) ≈ log 2 − ½·y·u + ⅛·u², so the residual is d = ¼·u − ½·y and the
gradients are Zᵀd / n (+ λ·w; the intercept w_0 is not regularized). Each party has its own
CKKS key pair (sk_b at the bank, sk_g at the gateway). Per mini-batch R of n_R rows:

1. ``forward_request``  B→G  which batch (epoch, batch).
2. ``forward``          G→B  Enc_g(u_g), u_g = Z_g[R]·w_g, one ciphertext (slot = row,
   replicated once per packed column block); and the scalar Σu_g² for the loss.
3. ``residual``         B→G  Enc_b(a), a = ¼·u_b − ½·y with u_b = w_0 + Z_b[R]·w_b.
4. ``gateway_products`` G→B  for each gateway column j: Enc_b(z_gj ⊙ d + m_gj), computed as
   Enc_b(a)⊙z_gj + (¼u_g⊙z_gj + m_gj): the residual under the bank's key, multiplied by the
   gateway's plaintext column, masked slot by slot.
5. ``bank_reply``       B→G  the bank decrypts step 4, sums each column's block, floods and
   rounds the sums (for G); and, for each bank column c ∈ (Z_b, 1, a):
   Enc_g(z_bc ⊙ d + m_bc) = Enc_g(u_g)⊙¼z_bc + (a⊙z_bc + m_bc): the residual under the
   gateway's key, masked.
6. ``bank_sums``        G→B  the gateway decrypts step 5, sums, floods and rounds.

Each owner subtracts its mask sums and has its own gradient Σ z·d; the bank's column ``a``
gives Σ a·d, from which it computes the batch loss (with Σu_g²). At the end of an epoch the
bank may ask for ``validation``: the gateway's part u_g of the logits of the validation rows
(the same as scoring them), so the bank can compute a validation AUC. ``docs/leakage.md``
lists what each party sees.

Invariants:
- a CKKS decryption never leaves its key holder raw: what is returned is a sum over the
  slots of a column block plus Gaussian flooding noise of ``flood_sigma`` (OS CSPRNG),
  rounded to a grid of 2^-``round_bits`` (Li–Micciancio 2021);
- every ciphertext given to the other party to decrypt is masked slot by slot with fresh
  uniform masks in ±2^``mask_bits`` from the OS CSPRNG; masks are never reused: a batch's
  products are computed once per ``forward_request`` and a request is processed once;
- messages carry (session, seq, kind, epoch, batch). The gateway accepts only a strictly
  increasing ``seq`` (a retransmission of its last request, byte for byte, gets the stored
  answer and nothing is recomputed), only the kind its state expects, and only the batch
  it is at; the bank accepts only the answer to its pending request. Anything else is
  refused and changes no state;
- a batch may be restarted (dropped connection) at most ``max_restarts`` times, so flooded
  decryptions cannot be averaged at will;
- weights change only when a batch completes; both parties' optimizers (Adam with a cosine
  learning-rate schedule, coordinate-wise) see exactly the same step count, so the joint
  update is the one a single optimizer over all coordinates would make.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np

from common.errors import Conflict, InvalidInput
from federated.he import (
    Ciphertext,
    CKKSParams,
    PublicContext,
    SecretContext,
    ZeroPool,
    decrypt_checked,
    multiply_add_plain,
    rerandomize,
)

PARAMS = CKKSParams(8192, (60, 50, 50, 58), 50)
"""CKKS parameters of both training contexts. Three data primes: a fresh ciphertext at
scale 2^50 is multiplied by a plaintext once (rescaled back to 2^50) and keeps a 110-bit
modulus, room for slot masks of 2^36 with 20 bits to spare; 218 bits in total is the
128-bit-security bound of the HE standard for N = 8192. Measured slot error after one
multiplication: ~1e-10; error of a 4096-slot sum: ~2e-9 (see docs/leakage.md)."""

MAGIC = b"XYVT\x01"
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
STORED_RESPONSE_BYTES = 64 * 1024
VALIDATION_ROUND_BITS = 16


class MalformedMessage(InvalidInput):
    code = "training_message_malformed"


class ReplayedMessage(Conflict):
    code = "training_message_replayed"


class UnexpectedMessage(Conflict):
    code = "training_message_unexpected"


class RestartLimit(Conflict):
    code = "training_restart_limit"


class TrainingFinished(Conflict):
    code = "training_finished"


class InvalidPlan(InvalidInput):
    code = "training_plan"


class Kind(StrEnum):
    FORWARD_REQUEST = "forward_request"
    FORWARD = "forward"
    RESIDUAL = "residual"
    GATEWAY_PRODUCTS = "gateway_products"
    BANK_REPLY = "bank_reply"
    BANK_SUMS = "bank_sums"
    VALIDATION_REQUEST = "validation_request"
    VALIDATION = "validation"


ANSWER: dict[Kind, Kind] = {
    Kind.FORWARD_REQUEST: Kind.FORWARD,
    Kind.RESIDUAL: Kind.GATEWAY_PRODUCTS,
    Kind.BANK_REPLY: Kind.BANK_SUMS,
    Kind.VALIDATION_REQUEST: Kind.VALIDATION,
}


# Messages ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    """One protocol message: a JSON header (canonical key order) and binary blobs
    (ciphertexts). Frame: MAGIC ‖ u32 header length ‖ header ‖ blobs."""

    kind: Kind
    session: str
    seq: int
    epoch: int
    batch: int
    values: tuple[float, ...] = ()
    blobs: tuple[bytes, ...] = ()

    def to_bytes(self) -> bytes:
        header = json.dumps(
            {
                "kind": self.kind.value,
                "session": self.session,
                "seq": self.seq,
                "epoch": self.epoch,
                "batch": self.batch,
                "values": [float(v) for v in self.values],
                "blobs": [len(b) for b in self.blobs],
            },
            sort_keys=True,
            separators=(",", ":"),
            allow_nan=False,
        ).encode()
        return b"".join((MAGIC, struct.pack(">I", len(header)), header, *self.blobs))

    @classmethod
    def from_bytes(cls, data: bytes, *, max_bytes: int = MAX_MESSAGE_BYTES) -> Message:
        """Parse an untrusted frame; anything off is ``MalformedMessage``."""
        if len(data) > max_bytes:
            raise MalformedMessage(f"the message is {len(data)} bytes; at most {max_bytes}")
        if len(data) < len(MAGIC) + 4 or not data.startswith(MAGIC):
            raise MalformedMessage("not a training message (bad magic or version)")
        (hlen,) = struct.unpack(">I", data[len(MAGIC) : len(MAGIC) + 4])
        start = len(MAGIC) + 4
        if hlen > len(data) - start:
            raise MalformedMessage("the header length runs past the end of the message")
        try:
            header = json.loads(data[start : start + hlen])
        except (ValueError, UnicodeDecodeError) as e:
            raise MalformedMessage("the header is not JSON") from e
        expected = {"kind", "session", "seq", "epoch", "batch", "values", "blobs"}
        if not isinstance(header, dict) or set(header) != expected:
            raise MalformedMessage(f"the header must have exactly the keys {sorted(expected)}")
        try:
            kind = Kind(header["kind"])
        except ValueError as e:
            raise MalformedMessage(f"unknown message kind {header['kind']!r}") from e
        for key in ("seq", "epoch", "batch"):
            v = header[key]
            if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < 2**53:
                raise MalformedMessage(f"{key} must be a non-negative integer")
        if not isinstance(header["session"], str) or not 0 < len(header["session"]) <= 64:
            raise MalformedMessage("session must be a short string")
        values = header["values"]
        if not isinstance(values, list) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in values
        ):
            raise MalformedMessage("values must be a list of numbers")
        if not all(math.isfinite(v) for v in values):
            raise MalformedMessage("values must be finite")
        lengths = header["blobs"]
        if not isinstance(lengths, list) or not all(
            isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in lengths
        ):
            raise MalformedMessage("blobs must be a list of positive lengths")
        body = data[start + hlen :]
        if sum(lengths) != len(body):
            raise MalformedMessage("the blob lengths do not add up to the message body")
        blobs: list[bytes] = []
        offset = 0
        for n in lengths:
            blobs.append(body[offset : offset + n])
            offset += n
        return cls(
            kind=kind,
            session=header["session"],
            seq=header["seq"],
            epoch=header["epoch"],
            batch=header["batch"],
            values=tuple(float(v) for v in values),
            blobs=tuple(blobs),
        )


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# Plan, privacy parameters, standardization ------------------------------------------------


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
    def bank_product_columns(self) -> int:
        """The bank's features, the intercept (a column of ones) and the loss column a."""
        return self.bank_columns + 2

    def reps(self, columns: int) -> int:
        """How many column blocks one ciphertext carries for a party with ``columns``."""
        return max(1, min(self.params.slots // self.batch_size, columns))

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

    ``mask_bits``: slot masks are uniform in ±2^mask_bits: a slot value |s| ≤ 2^3 is hidden
    up to statistical distance 2^(3 − mask_bits). ``flood_sigma``: standard deviation of
    the Gaussian noise added to every sum of decrypted slots before it leaves the key
    holder; ``round_bits``: the flooded sum is rounded to a multiple of 2^-round_bits.
    ``max_restarts``: restarts of one batch the gateway accepts."""

    mask_bits: int = 36
    flood_sigma: float = 2.0**-4
    round_bits: int = 20
    max_restarts: int = 3

    def __post_init__(self) -> None:
        if not 8 <= self.mask_bits <= 40:
            raise InvalidPlan("mask_bits must be 8..40 (the modulus left holds 2^58)")
        if not 0 < self.flood_sigma <= 1:
            raise InvalidPlan("flood_sigma must be in (0, 1]")
        if not 8 <= self.round_bits <= 40:
            raise InvalidPlan("round_bits must be 8..40")


@dataclass(frozen=True)
class Standardization:
    """z = clip((x − mean) / std) per column; ``clip`` None means no clipping."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    clip: float | None

    @classmethod
    def fit(cls, x: np.ndarray, clip: float | None) -> Standardization:
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] < 2:
            raise InvalidInput("standardization needs a matrix of at least 2 rows")
        if not np.all(np.isfinite(x)):
            raise InvalidInput("features must be finite numbers", code="invalid_features")
        mean = x.mean(axis=0)
        std = x.std(axis=0)
        std = np.where(std > 1e-12, std, 1.0)  # a constant column stays 0 after centring
        return cls(tuple(float(v) for v in mean), tuple(float(v) for v in std), clip)

    def apply(self, x: np.ndarray, *, clip: bool = True) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != len(self.mean):
            raise InvalidInput(
                f"expected {len(self.mean)} feature columns, got {x.shape}", code="invalid_features"
            )
        z: np.ndarray = (x - np.asarray(self.mean)) / np.asarray(self.std)
        if clip and self.clip is not None:
            z = np.clip(z, -self.clip, self.clip)
        return z

    def as_dict(self) -> dict[str, Any]:
        return {"mean": list(self.mean), "std": list(self.std), "clip": self.clip}

    @classmethod
    def from_dict(cls, d: Any) -> Standardization:
        try:
            clip = d["clip"]
            return cls(
                tuple(float(v) for v in d["mean"]),
                tuple(float(v) for v in d["std"]),
                None if clip is None else float(clip),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise InvalidInput(f"malformed standardization: {e}") from e


# Optimizer --------------------------------------------------------------------------------

BETA1 = 0.9
BETA2 = 0.999
EPSILON = 1e-8


@dataclass
class AdamState:
    """Adam's moments for one party's coordinates and the shared step count."""

    m: np.ndarray
    v: np.ndarray
    t: int = 0

    @classmethod
    def zeros(cls, n: int) -> AdamState:
        return cls(np.zeros(n), np.zeros(n), 0)


def learning_rate_at(plan: TrainingPlan, step: int) -> float:
    """Cosine decay from ``learning_rate`` at step 1 towards 0 at the last step."""
    return plan.learning_rate * 0.5 * (1.0 + math.cos(math.pi * (step - 1) / plan.total_steps))


def adam_step(
    plan: TrainingPlan, weights: np.ndarray, grad: np.ndarray, state: AdamState
) -> tuple[np.ndarray, AdamState]:
    t = state.t + 1
    m = BETA1 * state.m + (1 - BETA1) * grad
    v = BETA2 * state.v + (1 - BETA2) * grad * grad
    m_hat = m / (1 - BETA1**t)
    v_hat = v / (1 - BETA2**t)
    new = weights - learning_rate_at(plan, t) * m_hat / (np.sqrt(v_hat) + EPSILON)
    return new, AdamState(m, v, t)


# Randomness, packing, flooding ----------------------------------------------------------


def secure_uniform(n: int, bound: float) -> np.ndarray:
    """n reals uniform in [−bound, bound) from the OS CSPRNG (53 random bits each)."""
    raw = np.frombuffer(os.urandom(8 * n), dtype=np.uint64) >> np.uint64(11)
    return (raw.astype(np.float64) * 2.0**-52 - 1.0) * bound


def secure_gaussian(n: int, sigma: float) -> np.ndarray:
    """n normal deviates N(0, sigma²) from the OS CSPRNG (Box–Muller)."""
    u1 = (np.frombuffer(os.urandom(8 * n), dtype=np.uint64) >> np.uint64(11)).astype(np.float64)
    u2 = (np.frombuffer(os.urandom(8 * n), dtype=np.uint64) >> np.uint64(11)).astype(np.float64)
    u1 = (u1 + 1.0) * 2.0**-53  # (0, 1]
    u2 = u2 * 2.0**-53
    return sigma * np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


def flood_and_round(sums: np.ndarray, privacy: Privacy) -> np.ndarray:
    """What a key holder may hand over: the sums plus fresh Gaussian noise, rounded."""
    noisy = sums + secure_gaussian(len(sums), privacy.flood_sigma)
    grid = 2.0**privacy.round_bits
    out: np.ndarray = np.round(noisy * grid) / grid
    return out


def replicate(vector: np.ndarray, block: int, reps: int) -> np.ndarray:
    """``vector`` (≤ block values) zero-padded to one block, repeated ``reps`` times."""
    out = np.zeros(block * reps)
    for r in range(reps):
        out[r * block : r * block + len(vector)] = vector
    return out


def pack_columns(z: np.ndarray, block: int, reps: int) -> list[np.ndarray]:
    """Columns of z (n_R × c) in groups of ``reps``, each group one vector of reps blocks."""
    n, c = z.shape
    out: list[np.ndarray] = []
    for start in range(0, c, reps):
        vec = np.zeros(block * reps)
        for k, j in enumerate(range(start, min(start + reps, c))):
            vec[k * block : k * block + n] = z[:, j]
        out.append(vec)
    return out


def block_sums(vectors: Sequence[np.ndarray], block: int, columns: int) -> np.ndarray:
    """Sum of every block of every vector, the first ``columns`` blocks in order."""
    sums = [vec.reshape(-1, block).sum(axis=1) for vec in vectors]
    return np.concatenate(sums)[:columns]


def masked_products(
    residual: Ciphertext,
    factor_columns: np.ndarray,
    offset_columns: np.ndarray,
    block: int,
    reps: int,
    privacy: Privacy,
    key_holder: PublicContext | ZeroPool,
) -> tuple[list[Ciphertext], np.ndarray]:
    """For each column j: residual ⊙ factor_j + offset_j + mask_j (one ciphertext per
    ``reps`` columns), each re-randomized under ``key_holder``'s public key so that the
    ciphertext itself reveals nothing of the factors. Returns the ciphertexts and each
    column's mask sum."""
    factors = pack_columns(factor_columns, block, reps)
    offsets = pack_columns(offset_columns, block, reps)
    cts: list[Ciphertext] = []
    mask_sums: list[np.ndarray] = []
    for f, o in zip(factors, offsets, strict=True):
        mask = secure_uniform(len(f), 2.0**privacy.mask_bits)
        product = multiply_add_plain(residual, f, o + mask)
        cts.append(
            key_holder.rerandomize(product)
            if isinstance(key_holder, ZeroPool)
            else rerandomize(product, key_holder)
        )
        mask_sums.append(mask.reshape(-1, block).sum(axis=1))
    return cts, np.concatenate(mask_sums)[: factor_columns.shape[1]]


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (ties count one half); NaN without both classes."""
    y = np.asarray(labels) > 0
    s = np.asarray(scores, dtype=np.float64)
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    _, first, counts = np.unique(s[order], return_index=True, return_counts=True)
    ranks = np.empty(len(s))
    ranks[order] = np.repeat(first + (counts + 1) / 2.0, counts)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def _check_matrix(x: np.ndarray, rows: int, cols: int, what: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.shape != (rows, cols):
        raise InvalidInput(f"{what}: expected shape {(rows, cols)}, got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise InvalidInput(f"{what}: values must be finite", code="invalid_features")
    return x


def _expect(ok: bool, message: str) -> None:
    if not ok:
        raise MalformedMessage(message)


# The gateway's side -----------------------------------------------------------------------


@dataclass
class GatewayState:
    """Everything the gateway keeps between messages (persisted by the HTTP layer)."""

    weights: list[float]
    adam_m: list[float]
    adam_v: list[float]
    step: int = 0
    next_epoch: int = 0
    next_batch: int = 0
    phase: str = "idle"  # idle → forward → products → (batch complete) idle
    restarts: int = 0
    last_seq: int = 0
    last_request: str | None = None
    last_response: bytes | None = None
    mask_sums: list[float] | None = None

    @classmethod
    def initial(cls, columns: int) -> GatewayState:
        return cls([0.0] * columns, [0.0] * columns, [0.0] * columns)

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["last_response"] = None if self.last_response is None else self.last_response.hex()
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> GatewayState:
        d = dict(d)
        raw = d.get("last_response")
        d["last_response"] = None if raw is None else bytes.fromhex(raw)
        return cls(**d)


class GatewayTrainer:
    """The gateway's steps. ``handle`` takes one request frame from the bank and returns
    the answer frame; on any refusal ``state`` is left exactly as it was."""

    def __init__(
        self,
        plan: TrainingPlan,
        train_features: np.ndarray,
        validation_features: np.ndarray,
        secret: SecretContext,
        bank_public: PublicContext,
        *,
        privacy: Privacy | None = None,
        state: GatewayState | None = None,
        zero_pool: bool = False,
    ) -> None:
        if secret.params != plan.params or bank_public.params != plan.params:
            raise InvalidPlan("both contexts must have the plan's CKKS parameters")
        self.plan = plan
        self.z = _check_matrix(
            train_features, plan.n_train, plan.gateway_columns, "gateway training features"
        )
        self.z_val = _check_matrix(
            validation_features, plan.n_validation, plan.gateway_columns, "gateway validation"
        )
        self.secret = secret
        self.bank_public = bank_public
        self.privacy = privacy or Privacy()
        self.state = state or GatewayState.initial(plan.gateway_columns)
        # zero_pool: encryptions of zero made while waiting for the bank (one thread)
        self.rerandomizer: PublicContext | ZeroPool = (
            ZeroPool(bank_public) if zero_pool else bank_public
        )

    @property
    def finished(self) -> bool:
        return self.state.next_epoch >= self.plan.epochs

    @property
    def weights(self) -> np.ndarray:
        return np.asarray(self.state.weights)

    def handle(self, request: bytes) -> bytes:
        msg = Message.from_bytes(request)
        if msg.session != self.plan.session:
            raise UnexpectedMessage("the message belongs to another training session")
        st = self.state
        if msg.seq <= st.last_seq:
            if (
                msg.seq == st.last_seq
                and st.last_request == digest(request)
                and st.last_response is not None
            ):
                return st.last_response  # a retransmission: nothing is recomputed
            raise ReplayedMessage(
                f"message {msg.seq} was already processed (last {st.last_seq}); not again"
            )
        if msg.kind == Kind.FORWARD_REQUEST:
            answer, new = self._forward(msg)
        elif msg.kind == Kind.RESIDUAL:
            answer, new = self._residual(msg)
        elif msg.kind == Kind.BANK_REPLY:
            answer, new = self._bank_reply(msg)
        elif msg.kind == Kind.VALIDATION_REQUEST:
            answer, new = self._validation(msg)
        else:
            raise UnexpectedMessage(f"the gateway does not accept {msg.kind.value} messages")
        out = answer.to_bytes()
        new.last_seq = msg.seq
        new.last_request = digest(request)
        new.last_response = out if len(out) <= STORED_RESPONSE_BYTES else None
        self.state = new
        return out

    def _answer(self, msg: Message, **kw: Any) -> Message:
        return Message(ANSWER[msg.kind], self.plan.session, msg.seq, msg.epoch, msg.batch, **kw)

    def _at_batch(self, msg: Message) -> None:
        st = self.state
        if self.finished:
            raise TrainingFinished("the training has finished")
        if (msg.epoch, msg.batch) != (st.next_epoch, st.next_batch):
            raise UnexpectedMessage(
                f"the gateway is at batch ({st.next_epoch}, {st.next_batch}), "
                f"not ({msg.epoch}, {msg.batch})"
            )

    def _u(self, epoch: int, batch: int) -> tuple[np.ndarray, np.ndarray]:
        rows = self.plan.batch_rows(epoch, batch)
        return rows, self.z[rows] @ self.weights

    def _forward(self, msg: Message) -> tuple[Message, GatewayState]:
        self._at_batch(msg)
        _expect(not msg.values and not msg.blobs, "a forward request carries nothing")
        st = dataclasses.replace(self.state)
        if st.phase != "idle":
            if st.restarts >= self.privacy.max_restarts:
                raise RestartLimit(
                    f"batch ({msg.epoch}, {msg.batch}) was restarted {st.restarts} times"
                )
            st.restarts += 1
        _, u = self._u(msg.epoch, msg.batch)
        reps = self.plan.reps(self.plan.bank_product_columns)
        ct = self.secret.encrypt(replicate(u, self.plan.batch_size, reps))
        st.phase, st.mask_sums = "forward", None
        return self._answer(msg, values=(float(u @ u),), blobs=(ct.to_bytes(),)), st

    def _residual(self, msg: Message) -> tuple[Message, GatewayState]:
        self._at_batch(msg)
        if self.state.phase != "forward":
            raise UnexpectedMessage(f"the gateway expects no residual in phase {self.state.phase}")
        _expect(len(msg.blobs) == 1 and not msg.values, "a residual is one ciphertext")
        plan = self.plan
        reps = plan.reps(plan.gateway_columns)
        ct = self.bank_public.ciphertext(msg.blobs[0], max_bytes=1 << 20)
        _expect(
            ct.size == plan.batch_size * reps,
            f"the residual must hold {plan.batch_size * reps} values",
        )
        rows, u = self._u(msg.epoch, msg.batch)
        z = self.z[rows]
        cts, mask_sums = masked_products(
            ct, z, 0.25 * u[:, None] * z, plan.batch_size, reps, self.privacy, self.rerandomizer
        )
        st = dataclasses.replace(self.state)
        st.phase, st.mask_sums = "products", [float(v) for v in mask_sums]
        return self._answer(msg, blobs=tuple(c.to_bytes() for c in cts)), st

    def _bank_reply(self, msg: Message) -> tuple[Message, GatewayState]:
        self._at_batch(msg)
        st = dataclasses.replace(self.state)
        if st.phase != "products" or st.mask_sums is None:
            raise UnexpectedMessage(f"the gateway expects no bank reply in phase {st.phase}")
        plan = self.plan
        cols = plan.bank_product_columns
        reps = plan.reps(cols)
        _expect(len(msg.values) == plan.gateway_columns, "one sum per gateway column")
        _expect(len(msg.blobs) == math.ceil(cols / reps), "one ciphertext per column group")
        decrypted = []
        for blob in msg.blobs:
            ct = self.secret.ciphertext(blob, max_bytes=1 << 20)
            _expect(ct.size == plan.batch_size * reps, "a bank product has the wrong size")
            decrypted.append(decrypt_checked(self.secret, ct))
        sums = flood_and_round(block_sums(decrypted, plan.batch_size, cols), self.privacy)
        rows = plan.batch_rows(msg.epoch, msg.batch)
        w = self.weights
        grad = (np.asarray(msg.values) - np.asarray(st.mask_sums)) / len(rows) + plan.l2 * w
        new_w, adam = adam_step(
            plan, w, grad, AdamState(np.asarray(st.adam_m), np.asarray(st.adam_v), st.step)
        )
        st.weights = [float(v) for v in new_w]
        st.adam_m, st.adam_v, st.step = (
            [float(v) for v in adam.m],
            [float(v) for v in adam.v],
            adam.t,
        )
        st.phase, st.mask_sums, st.restarts = "idle", None, 0
        st.next_batch += 1
        if st.next_batch == plan.batches_per_epoch:
            st.next_epoch, st.next_batch = st.next_epoch + 1, 0
        return self._answer(msg, values=tuple(float(v) for v in sums)), st

    def _validation(self, msg: Message) -> tuple[Message, GatewayState]:
        st = self.state
        _expect(
            not msg.values and not msg.blobs and msg.batch == 0,
            "a validation request carries nothing",
        )
        if self.plan.n_validation == 0:
            raise UnexpectedMessage("this session has no validation rows")
        if (st.next_epoch, st.next_batch, st.phase) != (msg.epoch + 1, 0, "idle"):
            raise UnexpectedMessage("validation is answered right after its epoch completes")
        grid = 2.0**VALIDATION_ROUND_BITS
        u = np.round((self.z_val @ self.weights) * grid) / grid
        return self._answer(msg, values=tuple(float(v) for v in u)), dataclasses.replace(st)


# The bank's side --------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchResult:
    epoch: int
    batch: int
    rows: int
    loss: float  # mean Taylor loss of the batch, before the update


@dataclass
class _Pending:
    request: Message
    raw: bytes
    u_ct: Ciphertext | None = None
    u_sq: float = 0.0
    a: np.ndarray | None = None
    rows: np.ndarray | None = None
    products: list[bytes] | None = None
    mask_sums: np.ndarray | None = None
    gateway_sums: np.ndarray | None = None


@dataclass
class BankState:
    weights: list[float]  # the bank's features, then the intercept
    adam_m: list[float]
    adam_v: list[float]
    step: int = 0
    next_epoch: int = 0
    next_batch: int = 0
    seq: int = 0
    history: list[BatchResult] = field(default_factory=list)


class BankTrainer:
    """The bank's steps. It makes every request (``forward_request``, ``on_forward`` …)
    and accepts only the answer to the request it has pending."""

    def __init__(
        self,
        plan: TrainingPlan,
        train_features: np.ndarray,
        train_labels: np.ndarray,
        validation_features: np.ndarray,
        validation_labels: np.ndarray,
        secret: SecretContext,
        gateway_public: PublicContext,
        *,
        privacy: Privacy | None = None,
        zero_pool: bool = False,
    ) -> None:
        if secret.params != plan.params or gateway_public.params != plan.params:
            raise InvalidPlan("both contexts must have the plan's CKKS parameters")
        self.plan = plan
        self.z = _check_matrix(train_features, plan.n_train, plan.bank_columns, "bank features")
        self.z_val = _check_matrix(
            validation_features, plan.n_validation, plan.bank_columns, "bank validation"
        )
        self.y = _labels(train_labels, plan.n_train)
        self.y_val = _labels(validation_labels, plan.n_validation)
        self.secret = secret
        self.gateway_public = gateway_public
        self.privacy = privacy or Privacy()
        k = plan.bank_columns + 1
        self.state = BankState([0.0] * k, [0.0] * k, [0.0] * k)
        self.pending: _Pending | None = None
        # zero_pool: encryptions of zero made while waiting for the gateway (one thread)
        self.rerandomizer: PublicContext | ZeroPool = (
            ZeroPool(gateway_public) if zero_pool else gateway_public
        )

    @property
    def finished(self) -> bool:
        return self.state.next_epoch >= self.plan.epochs

    @property
    def weights(self) -> np.ndarray:
        return np.asarray(self.state.weights[:-1])

    @property
    def intercept(self) -> float:
        return float(self.state.weights[-1])

    def _request(self, kind: Kind, epoch: int, batch: int, **kw: Any) -> bytes:
        self.state.seq += 1
        msg = Message(kind, self.plan.session, self.state.seq, epoch, batch, **kw)
        raw = msg.to_bytes()
        prior = self.pending
        self.pending = _Pending(msg, raw)
        if prior is not None and kind != Kind.FORWARD_REQUEST:
            self.pending = dataclasses.replace(prior, request=msg, raw=raw)
        return raw

    def resync(self, gateway_last_seq: int) -> None:
        """After a dropped connection: continue numbering above what the gateway saw."""
        self.state.seq = max(self.state.seq, gateway_last_seq)

    def _accept(self, data: bytes) -> Message:
        if self.pending is None:
            raise UnexpectedMessage("the bank has no request pending")
        msg = Message.from_bytes(data)
        req = self.pending.request
        if msg.session != self.plan.session:
            raise UnexpectedMessage("the message belongs to another training session")
        if msg.seq != req.seq or msg.kind != ANSWER[req.kind]:
            if msg.seq < req.seq:
                raise ReplayedMessage(f"answer {msg.seq} is stale; the bank waits for {req.seq}")
            raise UnexpectedMessage(f"the bank waits for the {ANSWER[req.kind].value} of {req.seq}")
        _expect((msg.epoch, msg.batch) == (req.epoch, req.batch), "the answer names another batch")
        return msg

    # Per batch ---------------------------------------------------------------------------

    def forward_request(self) -> bytes:
        """Ask for the next batch, or restart the pending one."""
        if self.finished:
            raise TrainingFinished("the training has finished")
        return self._request(Kind.FORWARD_REQUEST, self.state.next_epoch, self.state.next_batch)

    def on_forward(self, data: bytes) -> bytes:
        msg = self._accept(data)
        _expect(msg.kind == Kind.FORWARD, "expected a forward message")
        _expect(len(msg.blobs) == 1 and len(msg.values) == 1, "a forward is 1 ciphertext + Σu²")
        _expect(msg.values[0] >= 0, "Σu_g² cannot be negative")
        plan = self.plan
        reps_g = plan.reps(plan.bank_product_columns)
        ct = self.gateway_public.ciphertext(msg.blobs[0], max_bytes=1 << 20)
        _expect(ct.size == plan.batch_size * reps_g, "the forward ciphertext has the wrong size")
        rows = plan.batch_rows(msg.epoch, msg.batch)
        u_b = self.z[rows] @ self.weights + self.intercept
        a = 0.25 * u_b - 0.5 * self.y[rows]
        reps_b = plan.reps(plan.gateway_columns)
        residual = self.secret.encrypt(replicate(a, plan.batch_size, reps_b))
        raw = self._request(Kind.RESIDUAL, msg.epoch, msg.batch, blobs=(residual.to_bytes(),))
        assert self.pending is not None
        self.pending.u_ct, self.pending.u_sq = ct, msg.values[0]
        self.pending.a, self.pending.rows = a, rows
        return raw

    def bank_products(self) -> None:
        """Compute the masked products for the gateway to decrypt (can overlap with the
        gateway's own work on the residual)."""
        p = self.pending
        if p is None or p.u_ct is None or p.a is None or p.rows is None:
            raise UnexpectedMessage("no forward to compute products for")
        if p.products is not None:
            return
        z = np.column_stack([self.z[p.rows], np.ones(len(p.rows)), p.a])
        reps = self.plan.reps(self.plan.bank_product_columns)
        cts, mask_sums = masked_products(
            p.u_ct,
            0.25 * z,
            p.a[:, None] * z,
            self.plan.batch_size,
            reps,
            self.privacy,
            self.rerandomizer,
        )
        p.products, p.mask_sums = [c.to_bytes() for c in cts], mask_sums

    def on_gateway_products(self, data: bytes) -> bytes:
        msg = self._accept(data)
        plan = self.plan
        reps = plan.reps(plan.gateway_columns)
        _expect(not msg.values, "gateway products carry no values")
        _expect(
            len(msg.blobs) == math.ceil(plan.gateway_columns / reps), "wrong number of products"
        )
        decrypted = []
        for blob in msg.blobs:
            ct = self.secret.ciphertext(blob, max_bytes=1 << 20)
            _expect(ct.size == plan.batch_size * reps, "a gateway product has the wrong size")
            decrypted.append(decrypt_checked(self.secret, ct))
        sums = flood_and_round(
            block_sums(decrypted, plan.batch_size, plan.gateway_columns), self.privacy
        )
        self.bank_products()
        p = self.pending
        assert p is not None and p.products is not None
        return self._request(
            Kind.BANK_REPLY,
            msg.epoch,
            msg.batch,
            values=tuple(float(v) for v in sums),
            blobs=tuple(p.products),
        )

    def on_bank_sums(self, data: bytes) -> BatchResult:
        msg = self._accept(data)
        p = self.pending
        assert p is not None
        if p.rows is None or p.a is None or p.mask_sums is None:
            raise UnexpectedMessage("no batch pending")
        plan = self.plan
        cols = plan.bank_product_columns
        _expect(len(msg.values) == cols and not msg.blobs, "one sum per bank column")
        sums = np.asarray(msg.values) - p.mask_sums  # Σ z·d per column (features, 1, a)
        n = len(p.rows)
        y = self.y[p.rows]
        u_b = p.a * 4.0 + 2.0 * y
        ua_g = 4.0 * (sums[-1] - float(p.a @ p.a))  # Σ u_g·a
        loss = (
            math.log(2.0)
            + (float(np.sum(-0.5 * y * u_b + 0.125 * u_b * u_b)) + ua_g + 0.125 * p.u_sq) / n
        )
        w = np.asarray(self.state.weights)
        reg = np.append(np.full(plan.bank_columns, plan.l2), 0.0)
        grad = sums[:-1] / n + reg * w
        st = self.state
        new_w, adam = adam_step(
            plan, w, grad, AdamState(np.asarray(st.adam_m), np.asarray(st.adam_v), st.step)
        )
        st.weights = [float(v) for v in new_w]
        st.adam_m, st.adam_v, st.step = (
            [float(v) for v in adam.m],
            [float(v) for v in adam.v],
            adam.t,
        )
        result = BatchResult(msg.epoch, msg.batch, n, loss)
        st.history.append(result)
        st.next_batch += 1
        if st.next_batch == plan.batches_per_epoch:
            st.next_epoch, st.next_batch = st.next_epoch + 1, 0
        self.pending = None
        return result

    # Validation ---------------------------------------------------------------------------

    def validation_request(self) -> bytes:
        if self.plan.n_validation == 0:
            raise UnexpectedMessage("this session has no validation rows")
        if self.state.next_batch != 0 or self.state.next_epoch == 0:
            raise UnexpectedMessage("validation comes right after an epoch completes")
        return self._request(Kind.VALIDATION_REQUEST, self.state.next_epoch - 1, 0)

    def on_validation(self, data: bytes) -> float:
        msg = self._accept(data)
        _expect(len(msg.values) == self.plan.n_validation and not msg.blobs, "one value per row")
        self.pending = None
        u = self.z_val @ self.weights + self.intercept + np.asarray(msg.values)
        return roc_auc(self.y_val, u)

    @property
    def last_request(self) -> bytes | None:
        """The frame of the pending request (for a retransmission after a dropped
        connection)."""
        return None if self.pending is None else self.pending.raw


def _labels(y: np.ndarray, n: int) -> np.ndarray:
    y = np.asarray(y, dtype=np.float64).ravel()
    if y.shape != (n,):
        raise InvalidInput(f"expected {n} labels, got {y.shape[0]}", code="invalid_labels")
    if not np.all((y == 1.0) | (y == -1.0)):
        raise InvalidInput("labels must be −1 or 1", code="invalid_labels")
    return y


def labels_pm1(y: np.ndarray) -> np.ndarray:
    """0/1 (or −1/1) labels as −1/1."""
    y = np.asarray(y, dtype=np.float64).ravel()
    if np.all((y == 0.0) | (y == 1.0)):
        return 2.0 * y - 1.0
    if np.all((y == -1.0) | (y == 1.0)):
        return y
    raise InvalidInput("labels must be 0/1 or −1/1", code="invalid_labels")


# Plaintext reference ----------------------------------------------------------------------


def train_plaintext(
    plan: TrainingPlan, z_bank: np.ndarray, labels: np.ndarray, z_gateway: np.ndarray
) -> tuple[np.ndarray, float, np.ndarray]:
    """The same algorithm (batches, Taylor residual, L2, Adam schedule) without encryption,
    masks or flooding: the reference the protocol's precision loss is measured against.
    Returns (bank weights, intercept, gateway weights)."""
    y = _labels(labels, plan.n_train)
    kb, kg = plan.bank_columns, plan.gateway_columns
    wb, wg = np.zeros(kb + 1), np.zeros(kg)
    sb, sg = AdamState.zeros(kb + 1), AdamState.zeros(kg)
    reg_b = np.append(np.full(kb, plan.l2), 0.0)
    for epoch in range(plan.epochs):
        for batch in range(plan.batches_per_epoch):
            rows = plan.batch_rows(epoch, batch)
            zb = np.column_stack([z_bank[rows], np.ones(len(rows))])
            d = 0.25 * (zb @ wb + z_gateway[rows] @ wg) - 0.5 * y[rows]
            gb = zb.T @ d / len(rows) + reg_b * wb
            gg = z_gateway[rows].T @ d / len(rows) + plan.l2 * wg
            wb, sb = adam_step(plan, wb, gb, sb)
            wg, sg = adam_step(plan, wg, gg, sg)
    return wb[:-1], float(wb[-1]), wg


# The joint model --------------------------------------------------------------------------


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


@dataclass(frozen=True)
class GatewayHalf:
    features: tuple[str, ...]
    weights: tuple[float, ...]
    standardization: Standardization


@dataclass(frozen=True)
class JointModel:
    """The ``xinyi models import`` format (CONTRACT.md): logit = intercept +
    Σ w_g·clip((x_g − mean)/std) + Σ w_b·x_b."""

    id: str
    gateway: GatewayHalf
    bank: BankHalf

    def as_import_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "gateway_features": list(self.gateway.features),
            "bank_features": list(self.bank.features),
            "gateway_weights": list(self.gateway.weights),
            "bank_weights": list(self.bank.weights),
            "intercept": self.bank.intercept,
            "gateway_standardization": self.gateway.standardization.as_dict(),
        }

    def logits(self, x_gateway: np.ndarray, x_bank: np.ndarray) -> np.ndarray:
        """The contract formula on raw features (plaintext; for evaluation)."""
        zg = self.gateway.standardization.apply(x_gateway)
        out: np.ndarray = (
            self.bank.intercept
            + zg @ np.asarray(self.gateway.weights)
            + np.asarray(x_bank, dtype=np.float64) @ np.asarray(self.bank.weights)
        )
        return out
