"""The only module that imports TenSEAL: a small typed wrapper around CKKS.

Invariants:
- a context that leaves its owner is public: ``SecretContext.public_bytes`` never
  serializes the secret key, Galois keys or relinearization keys;
- bytes from outside are untrusted: ``PublicContext.load`` refuses oversized input, a
  context that carries a secret key and parameters other than the registered ones;
  ``PublicContext.ciphertext`` refuses oversized or unparseable ciphertexts. Every
  TenSEAL failure becomes one of our errors (never a library exception);
- a vector encrypted under one context is only ever combined with plaintexts or with
  ciphertexts of the same context.

Units: CKKS slots hold real numbers; the precision of a fresh encryption at scale 2^40
is about 2^-20 absolute, each plaintext multiplication consumes one level (rescale).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import tenseal as ts

from common.errors import InvalidInput, TooLarge


class InvalidContext(InvalidInput):
    code = "invalid_context"


class ContextHasSecretKey(InvalidInput):
    code = "context_has_secret_key"


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
    scale_bits = int(round(np.log2(scale))) if scale > 0 else 0
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
    ciphertexts only."""

    __slots__ = ("_v",)

    def __init__(self, vector: ts.CKKSVector) -> None:
        self._v = vector

    @property
    def size(self) -> int:
        return int(self._v.size())

    def to_bytes(self) -> bytes:
        return bytes(self._v.serialize())

    def mul_plain(self, values: Sequence[float] | np.ndarray) -> Ciphertext:
        return Ciphertext(self._v * _as_list(values))

    def add_plain(self, values: Sequence[float] | np.ndarray) -> Ciphertext:
        return Ciphertext(self._v + _as_list(values))

    def add(self, other: Ciphertext) -> Ciphertext:
        return Ciphertext(self._v + other._v)

    def sub(self, other: Ciphertext) -> Ciphertext:
        return Ciphertext(self._v - other._v)


def _as_list(values: Sequence[float] | np.ndarray) -> list[float]:
    arr = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise InvalidInput("plaintext values must be finite", code="invalid_plaintext")
    return [float(x) for x in arr.ravel()]


class PublicContext:
    """Somebody else's context: public key and parameters only. Encrypts, computes,
    never decrypts."""

    __slots__ = ("_ctx", "params")

    def __init__(self, ctx: ts.Context, params: CKKSParams) -> None:
        self._ctx = ctx
        self.params = params

    @classmethod
    def load(
        cls, data: bytes, *, expected: CKKSParams | None = None, max_bytes: int = 1 << 20
    ) -> PublicContext:
        """Parse untrusted context bytes (see the module invariants)."""
        if len(data) > max_bytes:
            raise PayloadTooLarge(f"the context is {len(data)} bytes; at most {max_bytes}")
        if not data:
            raise InvalidContext("the context is empty")
        try:
            ctx = ts.context_from(data)
        except (ValueError, RuntimeError, TypeError) as e:
            raise InvalidContext("the context cannot be parsed") from e
        if ctx.has_secret_key() or ctx.is_private():
            raise ContextHasSecretKey("the context carries a secret key; send the public one")
        try:
            params = _params_of(ctx)
        except (ValueError, RuntimeError, AttributeError) as e:
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

    def ciphertext(self, data: bytes, *, max_bytes: int = 512 * 1024) -> Ciphertext:
        """Parse an untrusted ciphertext encrypted under this context."""
        return _load_vector(self._ctx, data, max_bytes, self.params)


def _load_vector(ctx: ts.Context, data: bytes, max_bytes: int, params: CKKSParams) -> Ciphertext:
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"the ciphertext is {len(data)} bytes; at most {max_bytes}")
    if not data:
        raise InvalidCiphertext("the ciphertext is empty")
    try:
        vec = ts.ckks_vector_from(ctx, data)
    except (ValueError, RuntimeError, TypeError) as e:
        raise InvalidCiphertext("the ciphertext cannot be parsed under this context") from e
    size = int(vec.size())
    if not 0 < size <= params.slots:
        raise InvalidCiphertext(f"the ciphertext holds {size} values; 1 to {params.slots}")
    return Ciphertext(vec)


class SecretContext:
    """Our own context with its secret key: the only thing that decrypts.

    ``symmetric=True`` encrypts with the secret key (seeded ciphertexts, about half the
    bytes); a context for others to encrypt under must be asymmetric."""

    __slots__ = ("_ctx", "params")

    def __init__(self, ctx: ts.Context, params: CKKSParams) -> None:
        self._ctx = ctx
        self.params = params

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


# --- vertical training ---
# Added for the vertical-training protocol (federated.training). Module-level functions
# only; nothing above this line is changed. Every TenSEAL failure becomes InvalidCiphertext.


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
        import threading  # (kept inside this block: the module's imports stay as they were)

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


def add_plain_checked(ct: Ciphertext, values: Sequence[float] | np.ndarray) -> Ciphertext:
    """``ct + values`` with exactly ``ct.size`` values; TenSEAL failures converted."""
    v = _plain(values, ct.size)
    try:
        return Ciphertext(ts.CKKSVector(data=ct._v.data + v))
    except (ValueError, RuntimeError, TypeError) as e:
        raise InvalidCiphertext("the plaintext cannot be added to this ciphertext") from e


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
