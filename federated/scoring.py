"""HE joint scoring: the gateway's steps over the bank's ciphertexts (pure).

Single score: the bank sends Enc(z_b) with its k (standardized) features in slots
0…k−1. The gateway returns

    Enc(w_b ⊙ z_b) + (share in slot 0) + mask,   share = intercept + Σ w_g·z_g,

where the mask is fresh per request, drawn from the operating system's CSPRNG, and sums
to zero over the k slots. The bank decrypts and sums the k slots: the logit. One slot on
its own is w_j·z_j (+ share) plus a uniform value of magnitude up to 2·MASK_BOUND, so it
tells nothing of a weight, a feature product or the share.

Batch score: column-packed. The bank sends one ciphertext per bank feature j holding
z_{i,j} for enterprise i in slot i (chunks of ``slots`` enterprises; ciphertext index
``chunk * k + j``); the gateway returns one ciphertext per chunk whose slot i is the logit
of enterprise i. Each slot is that enterprise's own answer, so no mask is needed; a slot
whose enterprise was refused (grant, or no data) is multiplied by 0 and gets no share: it
decrypts to ~0 and carries nothing (the refusal itself is reported in clear).

Slot budget (N=8192, moduli [60, 40, 60], scale 2^40): a fresh ciphertext sits on
q0·q1 (100 bits), a product before rescaling has scale 2^80 on it, and after the rescale
the scale is ~2^40 on q0 (60 bits): at every stage a slot decrypts correctly while
|value| < 2^19. Values are bounded by |mask| < 2·MASK_BOUND = 2^17, |share| ≤ LOGIT_BOUND
= 2^14 and Σ|w_j·z_j| ≤ 2^14 when the bank clips its inputs as the model documents (both
by model validation): < 2^18, a margin of two, for one slot of a single score and for a
batch slot (a sum of k products) alike. CKKS noise is ~1e-7 per slot; the sum of k slots
stays within 1e-4 of the plaintext logit (tests/federated, bench/score.py).

What the bank can still learn: the logit is linear in its own inputs, so a bank that
sends crafted inputs learns w_b·z for them (each query is a grant use, audited). The
gateway's share of one enterprise is logit − w_b·z_b, i.e. what the score is: the
routes round it first (``round_share``, ``scoring.share_precision``) and bound the
distinct models per enterprise, so a zero-input score tells one rounded linear
functional per model (docs/leakage.md, "Scoring"). Slots at k and beyond are never set
by the gateway (they hold only CKKS noise).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from common.errors import InvalidInput
from federated import he
from federated.models import JointModel

MASK_BOUND = 2.0**16


def round_share(share: float, precision: float) -> float:
    """The gateway share rounded to the nearest multiple of ``precision`` (logit units).

    Deterministic on purpose: asking again returns the same value, so repeated scores
    cannot average a rounding error away. What it costs and what it protects:
    docs/leakage.md, "Scoring"."""
    if not math.isfinite(share):
        raise InvalidInput("the gateway share is not finite", code="invalid_model_input")
    if precision <= 0:
        raise InvalidInput("the share precision must be positive")
    return float(round(share / precision) * precision)


def uniform(n: int, bound: float) -> np.ndarray:
    """n values uniform in [−bound, bound) from the operating system's CSPRNG."""
    words = np.frombuffer(os.urandom(8 * n), dtype=np.uint64)
    unit = (words >> np.uint64(11)).astype(np.float64) * 2.0**-53  # [0, 1), 53 random bits
    out: np.ndarray = (2.0 * unit - 1.0) * bound
    return out


def zero_sum_mask(k: int, bound: float = MASK_BOUND) -> np.ndarray:
    """A fresh mask over k slots that sums to zero up to float rounding (at most
    k·2·bound·2^-53, < 1e-7 for k ≤ 4096); every slot is within ±2·bound."""
    u = uniform(k, bound)
    out: np.ndarray = u - u.mean()
    return out


def score_single(
    ev: he.Evaluator,
    ct: he.EvalCiphertext,
    model: JointModel,
    share: float,
    *,
    mask: np.ndarray | None = None,
) -> bytes:
    """Enc(w_b ⊙ z_b) + share·e_0 + mask, as wire bytes. ``ct`` holds exactly the model's
    k bank features; ``mask`` is for tests (default: a fresh ``zero_sum_mask``)."""
    k = len(model.bank_features)
    if ct.size != k:
        raise he.InvalidCiphertext(f"the ciphertext holds {ct.size} values; the model has {k}")
    if not math.isfinite(share):
        raise InvalidInput("the gateway share is not finite", code="invalid_model_input")
    m = zero_sum_mask(k) if mask is None else np.asarray(mask, dtype=np.float64)
    plain = m.copy()
    plain[0] += share
    product = ev.rescale(ev.multiply(ct, ev.weights(model.bank_weights)))
    return ev.to_bytes(ev.add_values(product, plain))


@dataclass(frozen=True)
class BatchLayout:
    """Where enterprise i and bank feature j live in a column-packed batch."""

    enterprises: int
    features: int
    slots: int

    @property
    def chunks(self) -> int:
        return -(-self.enterprises // self.slots)

    @property
    def ciphertexts(self) -> int:
        return self.chunks * self.features

    def chunk(self, c: int) -> slice:
        """The enterprises (grant indexes) chunk c holds."""
        return slice(c * self.slots, min(self.enterprises, (c + 1) * self.slots))

    def chunk_size(self, c: int) -> int:
        s = self.chunk(c)
        return int(s.stop - s.start)

    def index(self, c: int, j: int) -> int:
        """Position in the request's ``ciphertexts`` of chunk c, bank feature j."""
        return c * self.features + j


def score_batch(
    ev: he.Evaluator,
    cts: Sequence[he.EvalCiphertext],
    model: JointModel,
    shares: np.ndarray,
    allowed: np.ndarray,
    public: he.PublicContext | None,
) -> list[bytes]:
    """One output ciphertext (wire bytes) per chunk: slot i = logit of enterprise i where
    ``allowed[i]``, ~0 elsewhere. ``shares[i]`` is the gateway share of enterprise i
    (ignored where not allowed). The k products are added before one rescale. ``public``
    (the bank's public context) is needed only when a whole chunk is refused."""
    layout = BatchLayout(len(shares), len(model.bank_features), ev.params.slots)
    if len(cts) != layout.ciphertexts:
        raise InvalidInput(
            f"{len(cts)} ciphertexts; {layout.chunks} chunk(s) × {layout.features} bank "
            f"features = {layout.ciphertexts} expected",
            code="invalid_ciphertext",
        )
    allowed = np.asarray(allowed, dtype=bool)
    shares = np.asarray(shares, dtype=np.float64)
    out: list[bytes] = []
    for c in range(layout.chunks):
        part = layout.chunk(c)
        ok = allowed[part]
        size = layout.chunk_size(c)
        for j in range(layout.features):
            got = cts[layout.index(c, j)].size
            if got != size:
                raise he.InvalidCiphertext(
                    f"ciphertext {layout.index(c, j)} holds {got} values; chunk {c} has {size}"
                )
        if not ok.any():
            # Nothing to compute: a fresh encryption of zeros under the bank's key.
            if public is None:
                raise InvalidInput("a refused chunk needs the bank's public context")
            out.append(public.encrypt(np.zeros(size)).to_bytes())
            continue
        # A constant multiplier is cheapest, but it would also keep whatever the bank's
        # encryption left in the slots past the chunk (TenSEAL replicates a short vector);
        # a zero-padded vector clears them.
        full = bool(ok.all()) and size == ev.params.slots
        products = [
            ev.multiply(
                cts[layout.index(c, j)],
                ev.encode_scalar(w) if full else ev.encode(np.where(ok, w, 0.0)),
            )
            for j, w in enumerate(model.bank_weights)
            if w != 0.0
        ]
        total = ev.rescale(ev.add(products))
        out.append(ev.to_bytes(ev.add_values(total, np.where(ok, shares[part], 0.0))))
    return out
