"""An attacker's tools for the training tests: raw NTT access to SEAL objects (through a
BFV context over the same primes, whose NTT tables are the ones CKKS uses), forged
ciphertexts, and the issue's key-recovery decoder (balanced ternary digits)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import tenseal.sealapi as sealapi

from federated.he import SumOnlyContext
from federated.he.sumonly import _CT_META
from federated.he.wire import _memory_file


class Ntt:
    """Forward and inverse negacyclic NTT of polynomials mod the input primes."""

    def __init__(self, he: SumOnlyContext) -> None:
        self.he = he
        parms = sealapi.EncryptionParameters(sealapi.SCHEME_TYPE.BFV)
        parms.set_poly_modulus_degree(he.n)
        parms.set_coeff_modulus(
            sealapi.CoeffModulus.Create(he.n, list(he.params.coeff_mod_bit_sizes))
        )
        parms.set_plain_modulus(sealapi.PlainModulus.Batching(he.n, 20))
        self.context = sealapi.SEALContext(parms, True, sealapi.SEC_LEVEL_TYPE.TC128)
        self.evaluator = sealapi.Evaluator(self.context)
        self.parms_id = list(self.context.first_parms_id())
        self.primes = [
            int(m.value()) for m in self.context.first_context_data().parms().coeff_modulus()
        ]
        assert self.primes == he.input_primes

    def _ct(self, rows: np.ndarray, ntt: bool) -> Any:
        k, n = rows.shape
        words = np.zeros((2, len(self.primes), n), dtype=np.uint64)
        words[0, :k] = rows
        words[1, :, 1] = 1  # SEAL refuses transparent ciphertexts; row 1 is ignored
        he = self.he
        members = _CT_META.pack(*self.parms_id, int(ntt), 2, n, len(self.primes), 1.0, 1)
        members += he._array(words)
        ct = sealapi.Ciphertext()
        with _memory_file() as path:
            Path(path).write_bytes(he._framed(members) + members)
            ct.load(self.context, path)
        return ct

    def forward(self, coefficients: np.ndarray) -> np.ndarray:
        """Signed integer coefficients (length N) → evaluation form, one row per prime."""
        c = np.asarray(coefficients, dtype=object)
        rows = np.stack([np.asarray([int(v) % q for v in c], dtype=np.uint64) for q in self.primes])
        ct = self._ct(rows, ntt=False)
        self.evaluator.transform_to_ntt_inplace(ct)
        words: np.ndarray = self.he.ciphertext_words(ct)[1][0]
        return words

    def inverse(self, rows: np.ndarray) -> np.ndarray:
        """Evaluation form (rows per prime, at least the first) → centred coefficients mod
        the first prime."""
        full = np.zeros((len(self.primes), self.he.n), dtype=np.uint64)
        full[: rows.shape[0]] = rows[: len(self.primes)]
        ct = self._ct(full, ntt=True)
        self.evaluator.transform_from_ntt_inplace(ct)
        c = self.he.ciphertext_words(ct)[1][0, 0].astype(object)
        q = self.primes[0]
        return np.asarray([int(v) - q if int(v) > q // 2 else int(v) for v in c], dtype=np.int64)


def ternary_probe(positions: list[int], k: int, n: int) -> np.ndarray:
    """The issue's forged polynomial K·Σ_t 3^t·X^{i_t}."""
    out = np.zeros(n, dtype=object)
    for t, i in enumerate(positions):
        out[i] = k * 3**t
    return out


def decode_balanced_ternary(value: int, digits: int) -> list[int]:
    """Σ_t 3^t·d_t with d_t ∈ {−1, 0, 1} → the digits (lowest first)."""
    out = []
    for _ in range(digits):
        r = value % 3
        d = r - 3 if r == 2 else r
        out.append(d)
        value = (value - d) // 3
    return out


def secret_coefficients(key: Any, ntt: Ntt) -> np.ndarray:
    """A bank batch key's secret polynomial in coefficient form (ternary)."""
    return ntt.inverse(key._s[:1])


def read_all(key: Any, plan: Any, answer: Any) -> list[int]:
    """Every readable coefficient of a ``products`` answer, in the plan's order (bank
    columns, a·u_g, gateway columns), as the bank reads them."""
    from federated.he import SumOnly
    from federated.he.sumonly import positions
    from federated.training.wire import unpack_ints

    t0s = unpack_ints(answer.blobs[0], plan.readings, key.he.q0)
    out: list[int] = []
    for c1, size in zip(answer.blobs[1:], plan.product_sizes(), strict=True):
        t0, t0s = tuple(t0s[:size]), t0s[size:]
        out.extend(key.read(SumOnly(c1, t0), positions(size, plan.batch_size)))
    return out
