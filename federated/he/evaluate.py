"""Plaintext-with-ciphertext arithmetic on SEAL directly (the gateway's scoring)."""

from __future__ import annotations

import math
import struct
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from common.errors import InvalidInput
from federated.he.params import CKKSParams, InvalidCiphertext, PayloadTooLarge, WrongParameters
from federated.he.wire import (
    _as_list,
    _check_vector_wire,
    _encode_varint,
    _Malformed,
    _memory_file,
    _proto_bytes,
)


class EvalCiphertext:
    """A ciphertext held by an ``Evaluator`` (SEAL directly, no TenSEAL vector around
    it); ``size`` is the number of meaningful slots."""

    __slots__ = ("_ct", "size")

    def __init__(self, ct: Any, size: int) -> None:
        self._ct = ct
        self.size = size


class Evaluated:
    """An encoded plaintext for an ``Evaluator`` (weights are encoded once per model)."""

    __slots__ = ("_pt",)

    def __init__(self, pt: Any) -> None:
        self._pt = pt


class Evaluator:
    """Plaintext-with-ciphertext arithmetic for one parameter set, on SEAL directly.

    The gateway's scoring needs no key at all: multiplying by and adding plaintexts only
    needs the parameters. Going around TenSEAL's vector lets the gateway encode a model's
    weights once (not per request), multiply k ciphertexts and add them before a single
    rescale (batch), and encode the added values at the ciphertext's exact scale. Inputs
    are untrusted bytes checked like ``PublicContext.ciphertext(fresh=True)``; outputs
    are TenSEAL ``CKKSVector`` bytes, so the key holder reads them with
    ``SecretContext.ciphertext``. Thread-safe: SEAL's encoder and evaluator keep no
    per-call state, and the weight cache is locked.
    """

    def __init__(self, params: CKKSParams, *, cache_size: int = 256) -> None:
        import tenseal.sealapi as sealapi

        self.params = params
        self._sa = sealapi
        parms = sealapi.EncryptionParameters(sealapi.SCHEME_TYPE.CKKS)
        parms.set_poly_modulus_degree(params.poly_modulus_degree)
        try:
            parms.set_coeff_modulus(
                sealapi.CoeffModulus.Create(
                    params.poly_modulus_degree, list(params.coeff_mod_bit_sizes)
                )
            )
            self._context = sealapi.SEALContext(parms, True, sealapi.SEC_LEVEL_TYPE.TC128)
        except Exception as e:  # SEAL refuses parameters it cannot use
            raise WrongParameters(f"invalid CKKS parameters {params.as_dict()}: {e}") from e
        if not self._context.parameters_set():
            raise WrongParameters(
                f"invalid CKKS parameters {params.as_dict()}: "
                f"{self._context.parameters_error_message()}"
            )
        self._first = list(self._context.first_parms_id())
        self._evaluator = sealapi.Evaluator(self._context)
        self._encoder = sealapi.CKKSEncoder(self._context)
        self._lock = threading.Lock()
        self._cache: dict[tuple[float, ...], Evaluated] = {}
        self._cache_size = cache_size

    # Untrusted input -------------------------------------------------------------------
    def ciphertext(self, data: bytes, *, size: int, max_bytes: int = 512 * 1024) -> EvalCiphertext:
        """A fresh single ciphertext of ``size`` values (see ``PublicContext.ciphertext``)."""
        if len(data) > max_bytes:
            raise PayloadTooLarge(f"the ciphertext is {len(data)} bytes; at most {max_bytes}")
        if not data:
            raise InvalidCiphertext("the ciphertext is empty")
        try:
            wire = _check_vector_wire(bytes(data), self.params)
        except _Malformed as e:
            raise InvalidCiphertext(f"the ciphertext cannot be parsed: {e}") from e
        if len(wire.ciphertexts) != 1 or wire.sizes[0] != size:
            raise InvalidCiphertext(
                f"the ciphertext holds {sum(wire.sizes)} values in {len(wire.ciphertexts)} "
                f"ciphertext(s); expected {size} in one"
            )
        ct = self._sa.Ciphertext()
        try:
            with _memory_file() as path:
                Path(path).write_bytes(wire.ciphertexts[0])
                ct.load(self._context, path)
        except Exception as e:  # any SEAL failure on untrusted bytes is bad input
            raise InvalidCiphertext("the ciphertext cannot be parsed under these parameters") from e
        if (
            ct.size() != 2
            or list(ct.parms_id()) != self._first
            or ct.scale != self.params.scale
            or not ct.is_ntt_form()
        ):
            raise InvalidCiphertext(
                "the ciphertext is not a fresh encryption under these parameters "
                "(two polynomials, first level, the context's scale)"
            )
        return EvalCiphertext(ct, size)

    # Plaintexts --------------------------------------------------------------------------
    def encode(self, values: Sequence[float] | np.ndarray) -> Evaluated:
        """Values (zero-padded to the slot count) at the first level and global scale:
        a multiplier for a fresh ciphertext."""
        vals = _as_list(values)
        if not 0 < len(vals) <= self.params.slots:
            raise InvalidInput(
                f"{len(vals)} values; 1 to {self.params.slots}", code="invalid_plaintext"
            )
        pt = self._sa.Plaintext()
        self._encoder.encode(vals, self._context.first_parms_id(), self.params.scale, pt)
        return Evaluated(pt)

    def encode_scalar(self, value: float) -> Evaluated:
        """One number in every slot (no FFT: cheap)."""
        if not math.isfinite(value):
            raise InvalidInput("plaintext values must be finite", code="invalid_plaintext")
        pt = self._sa.Plaintext()
        self._encoder.encode(float(value), self._context.first_parms_id(), self.params.scale, pt)
        return Evaluated(pt)

    def weights(self, values: Sequence[float]) -> Evaluated:
        """``encode`` with a cache: a model's weights are encoded once."""
        key = tuple(float(v) for v in values)
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None:
            return hit
        encoded = self.encode(key)
        with self._lock:
            if len(self._cache) >= self._cache_size:
                self._cache.pop(next(iter(self._cache)))
            self._cache[key] = encoded
        return encoded

    # Arithmetic ------------------------------------------------------------------------
    def multiply(self, ct: EvalCiphertext, plain: Evaluated) -> EvalCiphertext:
        """ct ⊙ plain, not yet rescaled (scale squared)."""
        out = self._sa.Ciphertext()
        self._run(self._evaluator.multiply_plain, ct._ct, plain._pt, out)
        return EvalCiphertext(out, ct.size)

    def add(self, cts: Sequence[EvalCiphertext]) -> EvalCiphertext:
        """The slot-wise sum of ciphertexts at the same level and scale."""
        if not cts:
            raise InvalidInput("nothing to add", code="invalid_plaintext")
        out = self._sa.Ciphertext()
        self._run(self._evaluator.add_many, [c._ct for c in cts], out)
        return EvalCiphertext(out, cts[0].size)

    def rescale(self, ct: EvalCiphertext) -> EvalCiphertext:
        """Divide by the last data prime: the scale is back to ~2^scale_bits, one level
        down."""
        out = self._sa.Ciphertext()
        self._run(self._evaluator.rescale_to_next, ct._ct, out)
        return EvalCiphertext(out, ct.size)

    def add_values(
        self, ct: EvalCiphertext, values: Sequence[float] | np.ndarray
    ) -> EvalCiphertext:
        """ct + values, the values encoded at the ciphertext's exact level and scale."""
        vals = _as_list(values)
        if len(vals) != ct.size:
            raise InvalidInput(
                f"{len(vals)} plaintext values for a ciphertext of {ct.size}",
                code="invalid_plaintext",
            )
        pt = self._sa.Plaintext()
        out = self._sa.Ciphertext()
        self._run(self._encoder.encode, vals, ct._ct.parms_id(), ct._ct.scale, pt)
        self._run(self._evaluator.add_plain, ct._ct, pt, out)
        return EvalCiphertext(out, ct.size)

    def to_bytes(self, ct: EvalCiphertext) -> bytes:
        """TenSEAL ``CKKSVector`` bytes of ``ct`` (``ct.size`` values)."""
        with _memory_file() as path:
            ct._ct.save(path)
            blob = Path(path).read_bytes()
        return (
            _proto_bytes(1, _encode_varint(ct.size))
            + _proto_bytes(2, blob)
            + b"\x19"
            + struct.pack("<d", self.params.scale)
        )

    @staticmethod
    def _run(fn: Any, *args: Any) -> None:
        try:
            fn(*args)
        except Exception as e:  # SEAL refuses mismatched levels/scales, transparent results
            raise InvalidCiphertext(f"cannot compute on this ciphertext: {e}") from e
