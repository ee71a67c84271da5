"""Contexts (ours with the secret key, others' public ones) and TenSEAL vectors."""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tenseal as ts

from common.errors import InvalidInput
from federated.he.params import (
    CKKSParams,
    ContextHasSecretKey,
    InvalidCiphertext,
    InvalidContext,
    PayloadTooLarge,
    WrongParameters,
)
from federated.he.wire import (
    _as_list,
    _check_context_wire,
    _check_vector_wire,
    _encode_varint,
    _fields,
    _Malformed,
    _memory_file,
    _proto_bytes,
)


def _params_of(ctx: ts.Context) -> CKKSParams:
    """Read the parameters back from a (deserialized) context."""
    data = ctx.seal_context().data
    if data.key_context_data().parms().scheme() != ts.SCHEME_TYPE.CKKS.value:
        raise WrongParameters("the context is not a CKKS context")
    # The bindings cannot return the moduli themselves; the total bit count per level of
    # the modulus chain gives each prime's size by difference (key level first).
    totals: list[int] = []
    level = data.key_context_data()
    while level is not None:
        totals.append(int(level.total_coeff_modulus_bit_count()))
        level = level.next_context_data()
    sizes = [b - a for a, b in zip(totals[1:], totals[:-1], strict=True)][::-1]
    bits = (totals[-1], *sizes)
    # The special prime is last in the user's list; TenSEAL keeps the user's order for the
    # data primes, so the chain read from the bottom gives the list back.
    scale = ctx.global_scale
    scale_bits = round(float(np.log2(scale))) if scale > 0 else 0
    n = int(data.key_context_data().parms().poly_modulus_degree())
    return CKKSParams(n, tuple(int(b) for b in bits), scale_bits)


def _new_context(params: CKKSParams, *, symmetric: bool) -> ts.Context:
    kind = ts.ENCRYPTION_TYPE.SYMMETRIC if symmetric else ts.ENCRYPTION_TYPE.ASYMMETRIC
    try:
        ctx = ts.context(
            ts.SCHEME_TYPE.CKKS,
            poly_modulus_degree=params.poly_modulus_degree,
            coeff_mod_bit_sizes=list(params.coeff_mod_bit_sizes),
            encryption_type=kind,
        )
    except ValueError as e:
        raise WrongParameters(f"invalid CKKS parameters {params.as_dict()}: {e}") from e
    ctx.global_scale = 2.0**params.global_scale_bits
    return ctx


class Ciphertext:
    """An encrypted vector of reals; arithmetic with plaintext vectors or same-context
    ciphertexts only. A failing operation (for example a ciphertext at the wrong level)
    raises ``InvalidCiphertext``."""

    __slots__ = ("_v",)

    def __init__(self, vector: ts.CKKSVector) -> None:
        self._v = vector

    @property
    def size(self) -> int:
        return int(self._v.size())

    def to_bytes(self) -> bytes:
        return bytes(self._v.serialize())

    def mul_plain(self, values: Sequence[float] | np.ndarray) -> Ciphertext:
        return self._op("multiply", self._v.data.mul_plain, self._checked(values))

    def add_plain(self, values: Sequence[float] | np.ndarray) -> Ciphertext:
        return self._op("add to", self._v.data.add_plain, self._checked(values))

    def mul_scalar(self, value: float) -> Ciphertext:
        """Multiply every slot by one number (cheaper than a vector: no encoding FFT)."""
        if not math.isfinite(value):
            raise InvalidInput("plaintext values must be finite", code="invalid_plaintext")
        return self._op("multiply", self._v.data.mul_plain, float(value))

    def add(self, other: Ciphertext) -> Ciphertext:
        return self._op("add", self._v.data.add, other._v.data)

    def sub(self, other: Ciphertext) -> Ciphertext:
        return self._op("subtract", self._v.data.sub, other._v.data)

    def _checked(self, values: Sequence[float] | np.ndarray) -> list[float]:
        out = _as_list(values)
        if len(out) != self.size:
            raise InvalidInput(
                f"{len(out)} plaintext values for a ciphertext of {self.size}",
                code="invalid_plaintext",
            )
        return out

    @staticmethod
    def _op(what: str, fn: Any, arg: Any) -> Ciphertext:
        try:
            return Ciphertext(ts.CKKSVector(data=fn(arg)))
        except Exception as e:  # TenSEAL raises ValueError/RuntimeError/...: convert them all
            raise InvalidCiphertext(f"cannot {what} this ciphertext: {e}") from e


def _public_bytes(ctx: ts.Context) -> bytes:
    """A context's public part: parameters and public key, no secret or evaluation keys."""
    return bytes(
        ctx.serialize(
            save_public_key=True,
            save_secret_key=False,
            save_galois_keys=False,
            save_relin_keys=False,
        )
    )


class PublicContext:
    """Somebody else's context: public key and parameters only. Encrypts, computes,
    never decrypts."""

    __slots__ = ("_ctx", "params")

    def __init__(self, ctx: ts.Context, params: CKKSParams) -> None:
        self._ctx = ctx
        self.params = params

    @classmethod
    def load(
        cls,
        data: bytes,
        *,
        expected: CKKSParams | None = None,
        max_bytes: int = 1 << 20,
        allow_evaluation_keys: bool = True,
        require_public_key: bool = False,
    ) -> PublicContext:
        """Parse untrusted context bytes (see the module invariants).
        ``allow_evaluation_keys=False`` also refuses relinearization and Galois keys
        (``context_has_evaluation_keys``); ``require_public_key=True`` refuses a context
        others cannot encrypt under (a symmetric one)."""
        if len(data) > max_bytes:
            raise PayloadTooLarge(f"the context is {len(data)} bytes; at most {max_bytes}")
        if not data:
            raise InvalidContext("the context is empty")
        try:
            _check_context_wire(
                bytes(data),
                allow_evaluation_keys=allow_evaluation_keys,
                require_public_key=require_public_key,
            )
        except _Malformed as e:
            raise InvalidContext(f"the context cannot be parsed: {e}") from e
        try:
            ctx = ts.Context.load(bytes(data), n_threads=1)
        except Exception as e:  # any TenSEAL/SEAL failure on untrusted bytes is bad input
            raise InvalidContext("the context cannot be parsed") from e
        try:
            if ctx.has_secret_key() or ctx.is_private():
                raise ContextHasSecretKey("the context carries a secret key; send the public one")
            if require_public_key and not ctx.has_public_key():
                raise InvalidContext("the context has no public key")
            params = _params_of(ctx)
        except InvalidInput:
            raise
        except Exception as e:  # a context SEAL accepted but cannot describe
            raise InvalidContext("the context's parameters cannot be read") from e
        if expected is not None and params != expected:
            raise WrongParameters(
                f"the context's parameters {params.as_dict()} are not the registered "
                f"{expected.as_dict()}"
            )
        return cls(ctx, params)

    def to_bytes(self) -> bytes:
        return _public_bytes(self._ctx)

    def encrypt(self, values: Sequence[float] | np.ndarray) -> Ciphertext:
        if not self._ctx.has_public_key():
            raise InvalidContext("this context has no public key to encrypt with")
        return Ciphertext(ts.ckks_vector(self._ctx, _as_list(values)))

    def ciphertext(
        self,
        data: bytes,
        *,
        max_bytes: int = 512 * 1024,
        size: int | None = None,
        fresh: bool = False,
    ) -> Ciphertext:
        """Parse an untrusted ciphertext encrypted under this context. ``size``: the
        number of values it must hold; ``fresh``: it must be one ciphertext as a fresh
        encryption leaves it (two polynomials at the first level, the context's scale),
        so that one plaintext multiplication still has a level to rescale into."""
        return _load_vector(self._ctx, data, max_bytes, self.params, size=size, fresh=fresh)


def _load_vector(
    ctx: ts.Context,
    data: bytes,
    max_bytes: int,
    params: CKKSParams,
    *,
    size: int | None = None,
    fresh: bool = False,
) -> Ciphertext:
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"the ciphertext is {len(data)} bytes; at most {max_bytes}")
    if not data:
        raise InvalidCiphertext("the ciphertext is empty")
    try:
        wire = _check_vector_wire(bytes(data), params)
    except _Malformed as e:
        raise InvalidCiphertext(f"the ciphertext cannot be parsed: {e}") from e
    total = sum(wire.sizes)
    if size is not None and total != size:
        raise InvalidCiphertext(f"the ciphertext holds {total} values; expected {size}")
    if fresh and len(wire.ciphertexts) != 1:
        raise InvalidCiphertext("expected a single ciphertext (at most one slot per value)")
    try:
        vec = ts.ckks_vector_from(ctx, bytes(data))
    except Exception as e:  # any TenSEAL/SEAL failure on untrusted bytes is bad input
        raise InvalidCiphertext("the ciphertext cannot be parsed under this context") from e
    if fresh:
        seal_ct = vec.ciphertext()[0]
        first = ctx.seal_context().data.first_parms_id()
        if (
            seal_ct.size() != 2
            or list(seal_ct.parms_id()) != list(first)
            or seal_ct.scale != params.scale
            or not seal_ct.is_ntt_form()
        ):
            raise InvalidCiphertext(
                "the ciphertext is not a fresh encryption under these parameters "
                "(two polynomials, first level, the context's scale)"
            )
    return Ciphertext(vec)


class SecretContext:
    """Our own context with its secret key: the only thing that decrypts.

    ``symmetric=True`` encrypts with the secret key (seeded ciphertexts, about half the
    bytes); a context for others to encrypt under must be asymmetric."""

    __slots__ = ("_ctx", "_seeded", "params")

    def __init__(self, ctx: ts.Context, params: CKKSParams) -> None:
        self._ctx = ctx
        self.params = params
        self._seeded: _SeededEncryptor | None = None

    @classmethod
    def generate(cls, params: CKKSParams, *, symmetric: bool = False) -> SecretContext:
        return cls(_new_context(params, symmetric=symmetric), params)

    @classmethod
    def from_secret_bytes(cls, data: bytes) -> SecretContext:
        try:
            ctx = ts.context_from(data)
        except (ValueError, RuntimeError, TypeError) as e:
            raise InvalidContext("the secret context cannot be parsed") from e
        if not ctx.has_secret_key():
            raise InvalidContext("this context has no secret key")
        return cls(ctx, _params_of(ctx))

    def secret_bytes(self) -> bytes:
        """Everything, secret key included: encrypt these bytes at rest."""
        return bytes(self._ctx.serialize(save_secret_key=True))

    def public_bytes(self) -> bytes:
        """The public context (public key and parameters only) for others."""
        return _public_bytes(self._ctx)

    def public(self) -> PublicContext:
        return PublicContext.load(self.public_bytes(), expected=self.params)

    def encrypt(self, values: Sequence[float] | np.ndarray) -> Ciphertext:
        return Ciphertext(ts.ckks_vector(self._ctx, _as_list(values)))

    def ciphertext(self, data: bytes, *, max_bytes: int = 512 * 1024) -> Ciphertext:
        return _load_vector(self._ctx, data, max_bytes, self.params)

    def decrypt(self, ct: Ciphertext) -> np.ndarray:
        """The raw CKKS decryption. Never send it to another party as is: round or
        noise-flood it first (Li–Micciancio 2021)."""
        ct._v.link_context(self._ctx)
        return np.asarray(ct._v.decrypt(), dtype=np.float64)


class _SeededEncryptor:
    """SEAL's symmetric encryption with a seeded second polynomial (the bindings in
    ``tenseal.sealapi``): the ciphertext travels as its first polynomial plus a 64-byte
    seed, about half the bytes; whoever loads it expands the seed with the parameters
    alone, so the gateway needs no key to read it."""

    def __init__(self, ctx: ts.Context, params: CKKSParams) -> None:
        import tenseal.sealapi as sealapi

        self._sealapi = sealapi
        parms = sealapi.EncryptionParameters(sealapi.SCHEME_TYPE.CKKS)
        parms.set_poly_modulus_degree(params.poly_modulus_degree)
        parms.set_coeff_modulus(
            sealapi.CoeffModulus.Create(
                params.poly_modulus_degree, list(params.coeff_mod_bit_sizes)
            )
        )
        self._context = sealapi.SEALContext(parms, True, sealapi.SEC_LEVEL_TYPE.TC128)
        secret = _secret_key_bytes(ctx)
        key = sealapi.SecretKey()
        with _memory_file() as path:
            Path(path).write_bytes(secret)
            key.load(self._context, path)
        self._encryptor = sealapi.Encryptor(self._context, key)
        self._encoder = sealapi.CKKSEncoder(self._context)
        self._params = params

    def encrypt(self, values: list[float]) -> bytes:
        plain = self._sealapi.Plaintext()
        self._encoder.encode(values, self._params.scale, plain)
        serializable = self._encryptor.encrypt_symmetric(plain)
        with _memory_file() as path:
            serializable.save(path)
            blob = Path(path).read_bytes()
        return (
            _proto_bytes(1, _encode_varint(len(values)))
            + _proto_bytes(2, blob)
            + b"\x19"
            + struct.pack("<d", self._params.scale)
        )


def _secret_key_bytes(ctx: ts.Context) -> bytes:
    full = bytes(ctx.serialize(save_secret_key=True, save_relin_keys=False, save_galois_keys=False))
    for number, wire, value in _fields(full):
        if number == 3 and wire == 2 and isinstance(value, bytes):
            for sub, sub_wire, sub_value in _fields(value):
                if sub == 1 and sub_wire == 2 and isinstance(sub_value, bytes) and sub_value:
                    return sub_value
    raise InvalidContext("this context has no secret key")


def encrypt_seeded(secret: SecretContext, values: Sequence[float] | np.ndarray) -> bytes:
    """Wire bytes of ``values`` encrypted with ``secret``'s secret key in seeded form:
    a TenSEAL ``CKKSVector`` that ``PublicContext.ciphertext`` reads (``fresh``) and
    ``SecretContext.decrypt`` decrypts, at about half the size of ``encrypt().to_bytes()``
    (N=8192: ~115 KB instead of ~230 KB)."""
    vals = _as_list(values)
    if not 0 < len(vals) <= secret.params.slots:
        raise InvalidInput(
            f"{len(vals)} values; one ciphertext holds 1 to {secret.params.slots}",
            code="invalid_plaintext",
        )
    if secret._seeded is None:
        secret._seeded = _SeededEncryptor(secret._ctx, secret.params)
    return secret._seeded.encrypt(vals)
