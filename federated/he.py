"""The only module that imports TenSEAL: a small typed wrapper around CKKS.

Invariants:
- a context that leaves its owner is public: ``SecretContext.public_bytes`` never
  serializes the secret key, Galois keys or relinearization keys;
- bytes from outside are untrusted: ``PublicContext.load`` refuses oversized input, a
  context that carries a secret key and parameters other than the registered ones;
  ``PublicContext.ciphertext`` refuses oversized or unparseable ciphertexts. Every
  TenSEAL failure becomes one of our errors (never a library exception);
- untrusted bytes are checked in Python *before* TenSEAL sees them (``_check_vector_wire``,
  ``_check_context_wire``): TenSEAL trusts the chunk sizes of a serialized vector and
  dereferences past the end of its chunk list when they disagree with the ciphertexts
  (a zero or missing size crashes the process with SIGSEGV), so a vector reaches
  TenSEAL only with one size per ciphertext, each within the slot count, and the
  context's scale;
- a vector encrypted under one context is only ever combined with plaintexts or with
  ciphertexts of the same context.

Units: CKKS slots hold real numbers; the precision of a fresh encryption at scale 2^40
is about 2^-20 absolute, each plaintext multiplication consumes one level (rescale).

Parameters (measured, ``bench/score.py``): N=8192 with moduli [60, 40, 60] and scale
2^40 is the default. A fresh ciphertext sits at the level {60, 40}; one plaintext
multiplication and rescale leave it at {60} with scale ~2^40, so a slot can hold
|value| < 2^19 after the multiplication: that is the budget the scoring mask and the
model's logit share (``federated.scoring``), and 160 of the 218 bits N=8192 allows at
128-bit security. Alternatives measured: N=4096 [40, 29, 40] (109 bits, the most N=4096
allows) halves bytes and time and, with ``Evaluator``'s exact-scale arithmetic, still
reaches ~1e-5 precision, but its 40-bit q0 over a 2^29 scale leaves about one bit of
margin for a 2^16 mask over 10 slots and none for more features; N=8192 [60, 30, 60]
saves 10% of the bytes for ~1e-5 precision. TenSEAL's vector API resets the scale to
2^scale_bits after each rescale, an error of |q1/2^scale_bits − 1| relative to the
product (~1e-3 absolute at a 29-bit prime), which is why the gateway computes with
``Evaluator``.
"""

from __future__ import annotations

import math
import os
import struct
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tenseal as ts

from common.errors import InvalidInput, TooLarge


class InvalidContext(InvalidInput):
    code = "invalid_context"


class ContextHasSecretKey(InvalidInput):
    code = "context_has_secret_key"


class ContextHasEvaluationKeys(InvalidInput):
    code = "context_has_evaluation_keys"


class WrongParameters(InvalidInput):
    code = "context_parameters"


class InvalidCiphertext(InvalidInput):
    code = "invalid_ciphertext"


class PayloadTooLarge(TooLarge):
    code = "too_large"


@dataclass(frozen=True)
class CKKSParams:
    """CKKS parameters: ring degree N (slots = N/2), modulus chain bit sizes, scale."""

    poly_modulus_degree: int = 8192
    coeff_mod_bit_sizes: tuple[int, ...] = (60, 40, 60)
    global_scale_bits: int = 40

    @property
    def slots(self) -> int:
        return self.poly_modulus_degree // 2

    @property
    def scale(self) -> float:
        return float(2.0**self.global_scale_bits)

    def as_dict(self) -> dict[str, Any]:
        """The contract's ``context_params`` object."""
        return {
            "poly_modulus_degree": self.poly_modulus_degree,
            "coeff_mod_bit_sizes": list(self.coeff_mod_bit_sizes),
            "global_scale_bits": self.global_scale_bits,
        }

    @classmethod
    def from_dict(cls, d: Any) -> CKKSParams:
        try:
            return cls(
                int(d["poly_modulus_degree"]),
                tuple(int(b) for b in d["coeff_mod_bit_sizes"]),
                int(d["global_scale_bits"]),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise InvalidInput(f"malformed CKKS parameters: {e}", code="context_parameters") from e


DEFAULT_PARAMS = CKKSParams()


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


def _as_list(values: Sequence[float] | np.ndarray) -> list[float]:
    arr = np.asarray(values, dtype=np.float64).ravel()
    if not np.all(np.isfinite(arr)):
        raise InvalidInput("plaintext values must be finite", code="invalid_plaintext")
    out: list[float] = arr.tolist()
    return out


# Untrusted wire formats --------------------------------------------------------------
#
# TenSEAL serializes a vector as the protobuf ``CKKSVectorProto`` (field 1: repeated
# uint32 chunk sizes, 2: repeated bytes SEAL ciphertexts, 3: double scale) and a context
# as ``TenSEALContextProto`` (1: bytes SEAL parameters, 2: public part {1 public key,
# 2 flags, 3 scale, 4 relin keys, 5 Galois keys}, 3: private part {1 secret key, ...},
# 4: encryption type). The reader below only understands what those messages use.

_SEAL_MAGIC = 0xA15E
_SEAL_HEADER = struct.Struct("<HBBBBHQ")  # magic, header size, major, minor, compr, -, size


class _Malformed(Exception):
    """The bytes are not the protobuf message we expect (internal)."""


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    value = 0
    for shift in range(0, 64, 7):
        if i >= len(buf):
            raise _Malformed("truncated varint")
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, i
    raise _Malformed("varint longer than 64 bits")


def _fields(buf: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """(field number, wire type, value) of a protobuf message, strictly."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise _Malformed("field number 0")
        if wire == 0:
            value, i = _varint(buf, i)
            yield number, wire, value
        elif wire == 1:
            if i + 8 > len(buf):
                raise _Malformed("truncated fixed64")
            yield number, wire, buf[i : i + 8]
            i += 8
        elif wire == 2:
            length, i = _varint(buf, i)
            if i + length > len(buf):
                raise _Malformed("truncated length-delimited field")
            yield number, wire, buf[i : i + length]
            i += length
        elif wire == 5:
            if i + 4 > len(buf):
                raise _Malformed("truncated fixed32")
            yield number, wire, buf[i : i + 4]
            i += 4
        else:
            raise _Malformed(f"unsupported wire type {wire}")


def _packed_varints(buf: bytes) -> list[int]:
    out, i = [], 0
    while i < len(buf):
        value, i = _varint(buf, i)
        out.append(value)
    return out


def _check_seal_header(blob: bytes, what: str) -> None:
    """A SEAL serialization starts with a 16-byte header whose size field is the whole
    object; anything else is refused before SEAL parses it."""
    if len(blob) < _SEAL_HEADER.size:
        raise _Malformed(f"{what}: shorter than a SEAL header")
    magic, header_size, major, _minor, compr, _reserved, size = _SEAL_HEADER.unpack_from(blob)
    if magic != _SEAL_MAGIC or header_size != _SEAL_HEADER.size or major != 4:
        raise _Malformed(f"{what}: not a SEAL 4 object")
    if compr not in (0, 1, 2):
        raise _Malformed(f"{what}: unknown compression mode")
    if size != len(blob):
        raise _Malformed(f"{what}: the SEAL header claims {size} bytes, {len(blob)} present")


@dataclass(frozen=True)
class _VectorWire:
    sizes: tuple[int, ...]
    ciphertexts: tuple[bytes, ...]
    scale: float


def _check_vector_wire(data: bytes, params: CKKSParams) -> _VectorWire:
    sizes: list[int] = []
    blobs: list[bytes] = []
    scale: float | None = None
    for number, wire, value in _fields(data):
        if number == 1 and wire == 2 and isinstance(value, bytes):
            sizes.extend(_packed_varints(value))
        elif number == 1 and wire == 0 and isinstance(value, int):
            sizes.append(value)
        elif number == 2 and wire == 2 and isinstance(value, bytes):
            blobs.append(value)
        elif number == 3 and wire == 1 and isinstance(value, bytes):
            scale = struct.unpack("<d", value)[0]
        else:
            raise _Malformed(f"unexpected field {number} (wire type {wire})")
    if not blobs:
        raise _Malformed("no ciphertext")
    if len(sizes) != len(blobs):
        raise _Malformed(f"{len(sizes)} chunk sizes for {len(blobs)} ciphertexts")
    if any(not 0 < s <= params.slots for s in sizes):
        raise _Malformed(f"a chunk size is outside 1..{params.slots}")
    if any(s != params.slots for s in sizes[:-1]):
        raise _Malformed("only the last chunk may be partly filled")
    if scale != params.scale:
        raise _Malformed(f"the vector's scale is not 2^{params.global_scale_bits}")
    for blob in blobs:
        _check_seal_header(blob, "ciphertext")
    return _VectorWire(tuple(sizes), tuple(blobs), scale)


def _check_context_wire(
    data: bytes, *, allow_evaluation_keys: bool, require_public_key: bool
) -> None:
    parms: bytes | None = None
    public: bytes | None = None
    for number, wire, value in _fields(data):
        if number == 1 and wire == 2 and isinstance(value, bytes):
            parms = value
        elif number == 2 and wire == 2 and isinstance(value, bytes):
            public = value
        elif number == 3 and wire == 2 and isinstance(value, bytes):
            for sub, sub_wire, sub_value in _fields(value):
                if sub == 1 and sub_wire == 2 and sub_value:
                    raise ContextHasSecretKey(
                        "the context carries a secret key; send the public one"
                    )
        elif number == 4 and wire == 0:
            continue
        else:
            raise _Malformed(f"unexpected context field {number} (wire type {wire})")
    if parms is None:
        raise _Malformed("no encryption parameters")
    _check_seal_header(parms, "encryption parameters")
    has_public_key = False
    for number, wire, value in _fields(public or b""):
        if number == 1 and wire == 2 and isinstance(value, bytes) and value:
            _check_seal_header(value, "public key")
            has_public_key = True
        elif number in (4, 5) and wire == 2 and value and not allow_evaluation_keys:
            raise ContextHasEvaluationKeys(
                "the context carries relinearization or Galois keys; scoring needs neither: "
                "serialize with save_secret_key=False, save_relin_keys=False, "
                "save_galois_keys=False"
            )
    if require_public_key and not has_public_key:
        raise InvalidContext("the context has no public key")


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
        return bytes(
            self._ctx.serialize(
                save_public_key=True,
                save_secret_key=False,
                save_galois_keys=False,
                save_relin_keys=False,
            )
        )

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
        return bytes(
            self._ctx.serialize(
                save_public_key=True,
                save_secret_key=False,
                save_galois_keys=False,
                save_relin_keys=False,
            )
        )

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


# Scoring additions (owned by the scoring area) ---------------------------------------


def _proto_bytes(number: int, payload: bytes) -> bytes:
    key = _encode_varint((number << 3) | 2)
    return key + _encode_varint(len(payload)) + payload


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        if value:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


_PROC_FDS = Path("/proc/self/fd")


@contextmanager
def _memory_file() -> Iterator[str]:
    """A path SEAL's file-based save/load can use without the bytes touching a disk: an
    anonymous memory file on Linux, else a private temporary file removed at once."""
    if hasattr(os, "memfd_create") and _PROC_FDS.is_dir():
        fd = os.memfd_create("xinyi-seal", os.MFD_CLOEXEC)
        try:
            yield str(_PROC_FDS / str(fd))
        finally:
            os.close(fd)
        return
    with tempfile.TemporaryDirectory(prefix="xinyi-seal-") as d:  # pragma: no cover
        yield str(Path(d) / "object")


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


# --- vertical training ---
# Added for the vertical-training protocol (federated.training): module-level functions
# and one helper class (ZeroPool); nothing above this block is changed by it. Every
# TenSEAL failure becomes InvalidCiphertext.


def _plain(values: Sequence[float] | np.ndarray, size: int) -> list[float]:
    arr = np.asarray(values, dtype=np.float64).ravel()
    if arr.shape != (size,):
        raise InvalidCiphertext(f"the ciphertext holds {size} values; the plaintext {arr.size}")
    if not np.all(np.isfinite(arr)):
        raise InvalidInput("plaintext values must be finite", code="invalid_plaintext")
    out: list[float] = arr.tolist()
    return out


def multiply_add_plain(
    ct: Ciphertext,
    factor: Sequence[float] | np.ndarray,
    offset: Sequence[float] | np.ndarray,
) -> Ciphertext:
    """``ct ⊙ factor + offset`` slot by slot (one plaintext multiplication, one level).

    Both plaintexts must have exactly ``ct.size`` values. Works on the native vector (no
    Python-level plaintext tensors): this is the protocol's hot loop."""
    f, o = _plain(factor, ct.size), _plain(offset, ct.size)
    try:
        out = ct._v.data * f
        out += o
    except (ValueError, RuntimeError, TypeError) as e:
        raise InvalidCiphertext(
            "the ciphertext cannot be multiplied (wrong level or scale for these parameters)"
        ) from e
    return Ciphertext(ts.CKKSVector(data=out))


def rerandomize(ct: Ciphertext, public: PublicContext) -> Ciphertext:
    """``ct`` plus a fresh encryption of zero under ``public`` (the key holder's
    context), at ``ct``'s scale and level: circuit privacy. Without it, the key holder,
    who made the input ciphertext and knows its randomness, could read the plaintext
    multiplier out of the result's second component (c1 = c1_in · plaintext)."""
    if not public._ctx.has_public_key():
        raise InvalidContext("this context has no public key to encrypt with")
    try:
        scale = ct._v.data.ciphertext()[0].scale
        zero = ts.ckks_vector(public._ctx, [0.0] * ct.size, scale)
        return Ciphertext(ts.CKKSVector(data=ct._v.data + zero.data))
    except (ValueError, RuntimeError, TypeError, IndexError) as e:
        raise InvalidCiphertext("the ciphertext cannot be re-randomized under this context") from e


class ZeroPool:
    """Fresh encryptions of zero under ``public``, made ahead of time by a daemon thread
    while the owner waits for its peer (TenSEAL holds the GIL while it computes, so the
    thread only uses moments when the main thread is blocked on I/O). Each one is used
    once. ``rerandomize`` works like the module function, from the pool when it can."""

    def __init__(self, public: PublicContext, *, capacity: int = 32) -> None:
        self.public = public
        self.capacity = capacity
        self._ready: list[tuple[int, float, Any]] = []
        self._want: tuple[int, float] | None = None
        self._cond = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._fill, name="he-zero-pool", daemon=True)
        self._thread.start()

    def _fill(self) -> None:
        while True:
            with self._cond:
                while not self._stopped and (
                    self._want is None or len(self._ready) >= self.capacity
                ):
                    self._cond.wait()
                if self._stopped:
                    return
                size, scale = self._want  # type: ignore[misc]  # checked in the loop above
            zero = ts.ckks_vector(self.public._ctx, [0.0] * size, scale)
            with self._cond:
                self._ready.append((size, scale, zero))

    def rerandomize(self, ct: Ciphertext) -> Ciphertext:
        try:
            scale = ct._v.data.ciphertext()[0].scale
        except (ValueError, RuntimeError, IndexError) as e:
            raise InvalidCiphertext("the ciphertext cannot be re-randomized") from e
        key = (ct.size, scale)
        with self._cond:
            self._want = key
            found = next((i for i, r in enumerate(self._ready) if r[:2] == key), None)
            zero = self._ready.pop(found)[2] if found is not None else None
            self._cond.notify()
        if zero is None:
            return rerandomize(ct, self.public)
        try:
            return Ciphertext(ts.CKKSVector(data=ct._v.data + zero.data))
        except (ValueError, RuntimeError, TypeError) as e:
            raise InvalidCiphertext("the ciphertext cannot be re-randomized") from e

    def close(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()


def decrypt_checked(secret: SecretContext, ct: Ciphertext) -> np.ndarray:
    """``secret.decrypt(ct)`` with TenSEAL failures converted. The result is the raw CKKS
    decryption: never send it to another party as is (see ``SecretContext.decrypt``)."""
    try:
        out = secret.decrypt(ct)
    except (ValueError, RuntimeError, TypeError) as e:
        raise InvalidCiphertext("the ciphertext cannot be decrypted under this context") from e
    if not np.all(np.isfinite(out)):
        raise InvalidCiphertext("the ciphertext does not decrypt to finite values")
    return out
