"""Sum-only products for vertical training: no decryption oracle for either party.

The bank makes one CKKS key pair per batch (``BatchKey``) and encrypts its columns under
it; the gateway holds no secret key and never decrypts. For a bank ciphertext Enc(c) and a
gateway plaintext column p (slot = row) the gateway computes Enc(c ⊙ p), one plaintext
multiplication and rescale, and hands back only:

- ``c1`` of the product **re-randomized** with a fresh encryption of zero under the batch
  public key (without it c1 = c1_in·P, and the bank, who made c1_in, divides P out);
- the **constant coefficient** of ``c0`` (plus an offset the gateway chooses), instead of
  ``c0`` itself.

The bank can then compute exactly one number, the constant coefficient of the decryption
c0 + c1·s, which is N⁻¹·Σ_k of the evaluation (NTT) form, i.e. (scale / (N/2)) · Σ_slots
Re(c ⊙ p) + offset + noise: the sum over the slots and nothing per slot. Sending only the
constant coefficient of c0 is the same as adding to c0 a polynomial whose other N − 1
coefficients are uniform mod q: every other coefficient of the decryption is perfectly
hidden, whatever noise or plaintext the bank put into its input ciphertext (a crafted
input changes *which* linear functional of p the bank reads, never how many).

The public key's second half ``a`` is expanded from a 32-byte seed with SHAKE-256 (the
gateway expands it itself), so a deviating bank cannot pick a structured ``a`` (say 0) that
would make the re-randomization transparent.

Conventions (checked by ``tests/federated/test_sumonly.py`` on known values): SEAL keeps
CKKS ciphertexts and the secret key in evaluation (NTT) form, one row per RNS prime; the
negacyclic NTT evaluates a polynomial at the N odd powers of a 2N-th root of unity, so the
sum of the N evaluations is N·(constant coefficient) mod q.

Units: a slot sum S is the constant coefficient ``S · scale / (N/2)``
(``to_coefficient``/``from_coefficient``); after the rescale the ciphertext lives mod the
single first prime q0 (60 bits): |S| < 2^(59 − log2(scale / (N/2))).
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tenseal.sealapi as sealapi
import zstandard

from common.errors import InvalidInput
from federated.he.params import CKKSParams, InvalidCiphertext, PayloadTooLarge, WrongParameters
from federated.he.wire import _check_seal_header, _Malformed, _memory_file

SEED_BYTES = 32
_HEADER = struct.Struct("<HBBBBHQ")  # magic, header size, major, minor, compr, -, size
_MAGIC = 0xA15E
_CT_META = struct.Struct("<4QBQQQdQ")  # parms_id, ntt, size, N, primes, scale, correction
_PT_META = struct.Struct("<4QQd")  # parms_id, coeff count, scale
_ARRAY_COUNT = struct.Struct("<Q")
_MAX_DECOMPRESSED = 1 << 26


_EXTENDED = np.finfo(np.longdouble).nmant >= 63  # x86-64: 80-bit long double


def mulmod(a: np.ndarray, b: np.ndarray, q: int) -> np.ndarray:
    """a·b mod q elementwise for uint64 arrays with values < q < 2^62, exactly: the
    quotient is estimated in 64-bit-mantissa long double (off by at most one) and the
    remainder computed in wrapping 64-bit integers, then corrected. Where long double is
    no wider than double, Python integers do it (slower, as exact)."""
    if not _EXTENDED:
        exact = [int(x) * int(y) % q for x, y in zip(a.tolist(), b.tolist(), strict=True)]
        return np.asarray(exact, dtype=np.uint64)
    ql = np.longdouble(q)
    quot = np.floor(a.astype(np.longdouble) * b.astype(np.longdouble) / ql).astype(np.uint64)
    r = (a * b - quot * np.uint64(q)).view(np.int64)
    r = np.where(r < 0, r + q, r)
    r = np.where(r >= q, r - q, r)
    out: np.ndarray = r.astype(np.uint64)
    return out


def _sum_mod(values: np.ndarray, q: int) -> int:
    """Σ values mod q for uint64 values (exact: 32-bit halves summed separately)."""
    lo = int((values & np.uint64(0xFFFFFFFF)).sum(dtype=np.uint64))
    hi = int((values >> np.uint64(32)).sum(dtype=np.uint64))
    return ((hi << 32) + lo) % q


def expand_uniform(seed: bytes, primes: Sequence[int], n: int) -> np.ndarray:
    """A polynomial uniform mod each prime (one row per prime), from ``seed`` with
    SHAKE-256 and rejection sampling: what both parties compute for the public key's a."""
    rows = []
    for i, q in enumerate(primes):
        bits = q.bit_length()
        mask = np.uint64((1 << bits) - 1)
        got = np.zeros(0, dtype=np.uint64)
        counter = 0
        while len(got) < n:
            stream = hashlib.shake_256(
                b"xinyi-batch-pk-a" + seed + struct.pack("<II", i, counter)
            ).digest(8 * 2 * n)
            words = np.frombuffer(stream, dtype=np.uint64) & mask
            got = np.concatenate([got, words[words < np.uint64(q)]])
            counter += 1
        rows.append(got[:n])
    return np.stack(rows)


@dataclass(frozen=True)
class SumOnly:
    """One product as it travels: ``c1`` (N words mod q0) and the constant coefficient
    of c0 plus the gateway's offset (mod q0)."""

    c1: bytes
    t0: int


class SumOnlyContext:
    """The parameter set both parties compute with (no key): moduli, encoder, evaluator,
    and the raw (uncompressed) SEAL serialization used to reach the NTT-form words."""

    def __init__(self, params: CKKSParams, *, plain_scale_bits: int | None = None) -> None:
        if len(params.coeff_mod_bit_sizes) != 3:
            raise WrongParameters(
                "sum-only products need exactly two data primes and the special prime"
            )
        self.params = params
        self.n = params.poly_modulus_degree
        parms = sealapi.EncryptionParameters(sealapi.SCHEME_TYPE.CKKS)
        parms.set_poly_modulus_degree(self.n)
        try:
            parms.set_coeff_modulus(
                sealapi.CoeffModulus.Create(self.n, list(params.coeff_mod_bit_sizes))
            )
            self.context = sealapi.SEALContext(parms, True, sealapi.SEC_LEVEL_TYPE.TC128)
        except Exception as e:  # SEAL refuses parameters it cannot use
            raise WrongParameters(f"invalid CKKS parameters {params.as_dict()}: {e}") from e
        if not self.context.parameters_set():
            raise WrongParameters(f"invalid CKKS parameters {params.as_dict()}")
        key = self.context.key_context_data()
        first = self.context.first_context_data()
        self.key_primes = [int(m.value()) for m in key.parms().coeff_modulus()]
        self.input_primes = [int(m.value()) for m in first.parms().coeff_modulus()]
        self.q0 = self.input_primes[0]
        self.key_parms_id = list(self.context.key_parms_id())
        self.input_parms_id = list(self.context.first_parms_id())
        self.product_parms_id = list(first.next_context_data().parms_id())
        self.input_scale = params.scale
        # The gateway's plaintext scale is the dropped prime's size, so that the product
        # comes back near the input scale after the rescale.
        self.plain_scale = 2.0 ** (plain_scale_bits or self.input_primes[1].bit_length())
        self.product_scale = self.input_scale * self.plain_scale / self.input_primes[1]
        self.n_inverse = pow(self.n, -1, self.q0)
        self.encoder = sealapi.CKKSEncoder(self.context)
        self.evaluator = sealapi.Evaluator(self.context)
        self._dctx = zstandard.ZstdDecompressor()
        with _memory_file() as path:
            sealapi.Plaintext().save(path)
            header = _HEADER.unpack_from(Path(path).read_bytes())
        self._version = (header[2], header[3])

    # Units ---------------------------------------------------------------------------
    @property
    def coefficient_per_unit(self) -> float:
        """How many constant-coefficient units one unit of a slot sum is."""
        return self.product_scale / (self.n // 2)

    def to_coefficient(self, value: float) -> int:
        """A slot-sum value as a constant-coefficient offset (mod q0)."""
        return round(value * self.coefficient_per_unit) % self.q0

    def from_coefficient(self, c: int) -> float:
        """A constant coefficient mod q0, centred, back in slot-sum units."""
        c %= self.q0
        if c > self.q0 // 2:
            c -= self.q0
        return c / self.coefficient_per_unit

    # Raw SEAL objects ----------------------------------------------------------------
    def _raw(self, obj: Any) -> bytes:
        """The members of a saved SEAL object, decompressed (header stripped)."""
        with _memory_file() as path:
            obj.save(path)
            blob = Path(path).read_bytes()
        return self._members(blob)

    def _members(self, blob: bytes) -> bytes:
        _magic, _hs, _major, _minor, compr, _r, _size = _HEADER.unpack_from(blob)
        body = blob[_HEADER.size :]
        if compr == 2:
            return bytes(self._dctx.decompress(body, max_output_size=_MAX_DECOMPRESSED))
        if compr == 1:
            return zlib.decompress(body)
        return body

    def _framed(self, members: bytes) -> bytes:
        """An uncompressed SEAL header for ``members`` (this SEAL's version)."""
        major, minor = self._version
        return _HEADER.pack(_MAGIC, _HEADER.size, major, minor, 0, 0, _HEADER.size + len(members))

    def _array(self, words: np.ndarray) -> bytes:
        """A SEAL ``DynArray`` of uint64 words, uncompressed."""
        data = np.ascontiguousarray(words, dtype="<u8").tobytes()
        return (
            self._framed(_ARRAY_COUNT.pack(words.size) + data)
            + _ARRAY_COUNT.pack(words.size)
            + data
        )

    def ciphertext_words(self, ct: Any) -> tuple[float, np.ndarray]:
        """(scale, words of shape (polynomials, primes, N)) of a SEAL ciphertext."""
        members = self._raw(ct)
        meta = _CT_META.unpack_from(members)
        size, n, k, scale = meta[5], meta[6], meta[7], meta[8]
        start = _CT_META.size + _HEADER.size + _ARRAY_COUNT.size
        words = np.frombuffer(members, dtype="<u8", count=size * k * n, offset=start)
        return float(scale), words.reshape(size, k, n).copy()

    def ciphertext_bytes(self, ct: Any) -> bytes:
        """SEAL's own (compressed) serialization of a ciphertext, as the bank sends it."""
        with _memory_file() as path:
            ct.save(path)
            return Path(path).read_bytes()

    def build_ciphertext(self, parms_id: Sequence[int], scale: float, words: np.ndarray) -> Any:
        """A SEAL ciphertext in NTT form from its words (shape (polynomials, primes, N))."""
        size, k, n = words.shape
        members = _CT_META.pack(*parms_id, 1, size, n, k, scale, 1) + self._array(words)
        return self._load(sealapi.Ciphertext(), self._framed(members) + members)

    def _load(self, obj: Any, blob: bytes) -> Any:
        try:
            with _memory_file() as path:
                Path(path).write_bytes(blob)
                obj.load(self.context, path)
        except Exception as e:  # SEAL refuses data outside the moduli, wrong sizes...
            raise InvalidCiphertext("the object cannot be loaded under these parameters") from e
        return obj

    # The gateway's side --------------------------------------------------------------
    def input_ciphertext(self, data: bytes, *, max_bytes: int = 1 << 20) -> Any:
        """An untrusted fresh bank ciphertext (SEAL bytes, seeded or not): two
        polynomials at the first level, the input scale, NTT form."""
        if len(data) > max_bytes:
            raise PayloadTooLarge(f"the ciphertext is {len(data)} bytes; at most {max_bytes}")
        try:
            _check_seal_header(bytes(data), "ciphertext")
        except _Malformed as e:
            raise InvalidCiphertext(f"the ciphertext cannot be parsed: {e}") from e
        ct = self._load(sealapi.Ciphertext(), bytes(data))
        if (
            ct.size() != 2
            or list(ct.parms_id()) != self.input_parms_id
            or ct.scale != self.input_scale
            or not ct.is_ntt_form()
        ):
            raise InvalidCiphertext(
                "the ciphertext is not a fresh encryption under these parameters "
                "(two polynomials, first level, the input scale)"
            )
        return ct

    def public_key(self, seed: bytes, p0: bytes) -> BatchPublicKey:
        """The bank's batch public key from its wire form: the seed of a and the words of
        p0 = −a·s + e for the two data primes. Any value outside the moduli is refused."""
        n, primes = self.n, self.input_primes
        if len(seed) != SEED_BYTES:
            raise InvalidCiphertext(f"the public key seed must be {SEED_BYTES} bytes")
        if len(p0) != 8 * n * len(primes):
            raise InvalidCiphertext("the public key has the wrong size")
        words = np.frombuffer(p0, dtype="<u8").reshape(len(primes), n)
        if any(bool(np.any(words[i] >= np.uint64(q))) for i, q in enumerate(primes)):
            raise InvalidCiphertext("the public key has a value outside its modulus")
        a = expand_uniform(seed, primes, n)
        # The special prime's row is never read (zero encryptions are made one level
        # below the key level); zeros keep the object valid.
        full = np.zeros((2, len(self.key_primes), n), dtype=np.uint64)
        full[0, : len(primes)] = words
        full[1, : len(primes)] = a
        meta = _CT_META.pack(*self.key_parms_id, 1, 2, n, len(self.key_primes), 1.0, 1)
        members = meta + self._array(full)
        key = self._load(sealapi.PublicKey(), self._framed(members) + members)
        return BatchPublicKey(self, sealapi.Encryptor(self.context, key))

    def encode(self, values: np.ndarray) -> Any:
        """The gateway's plaintext column (zero-padded to the slots) at the input level."""
        arr = np.asarray(values, dtype=np.float64).ravel()
        if not 0 < len(arr) <= self.params.slots or not np.all(np.isfinite(arr)):
            raise InvalidInput("plaintext values must be 1..slots finite numbers")
        pt = sealapi.Plaintext()
        self.encoder.encode(arr.tolist(), self.context.first_parms_id(), self.plain_scale, pt)
        return pt


class BatchPublicKey:
    """The gateway's view of one batch key: it only encrypts zeros with it."""

    def __init__(self, he: SumOnlyContext, encryptor: Any) -> None:
        self.he = he
        self._encryptor = encryptor

    def product(self, ct: Any, plain: Any, offset: int) -> SumOnly:
        """Enc(c ⊙ p) in sum-only form, ``offset`` (mod q0) added to the constant
        coefficient the bank will read."""
        he = self.he
        zero = sealapi.Ciphertext()
        self._encryptor.encrypt_zero(he.product_parms_id, zero)
        if plain.is_zero():  # c ⊙ 0 = 0 (SEAL refuses to compute a transparent result)
            out = zero
        else:
            out = sealapi.Ciphertext()
            try:
                he.evaluator.multiply_plain(ct, plain, out)
                he.evaluator.rescale_to_next_inplace(out)
                zero.scale = out.scale  # a zero has no scale to match
                he.evaluator.add_inplace(out, zero)
            except Exception as e:  # mismatched levels or scales
                raise InvalidCiphertext(f"cannot compute on this ciphertext: {e}") from e
        _, words = he.ciphertext_words(out)
        c0, c1 = words[0, 0], words[1, 0]
        t0 = (_sum_mod(c0, he.q0) * he.n_inverse + offset) % he.q0
        return SumOnly(c1.astype("<u8").tobytes(), t0)


class BatchKey:
    """The bank's key pair for one batch: encrypts the bank's columns, reads the constant
    coefficient of the gateway's sum-only products, and is dropped after the batch."""

    def __init__(self, he: SumOnlyContext, seed: bytes) -> None:
        if len(seed) != SEED_BYTES:
            raise InvalidInput(f"the seed must be {SEED_BYTES} bytes")
        self.he = he
        self.seed = seed
        keygen = sealapi.KeyGenerator(he.context)
        self._secret = keygen.secret_key()
        members = he._raw(self._secret.data())
        start = _PT_META.size + _HEADER.size + _ARRAY_COUNT.size
        k = len(he.key_primes)
        s = np.frombuffer(members, dtype="<u8", count=k * he.n, offset=start).reshape(k, he.n)
        self._s = s.copy()
        self._encryptor = sealapi.Encryptor(he.context, self._secret)
        # p0 = −a·s + e with a from the seed: a symmetric encryption of zero is
        # (−r·s + e, r); adding (r − a)·s to its first half gives −a·s + e.
        zero = sealapi.Ciphertext()
        self._encryptor.encrypt_zero_symmetric(he.input_parms_id, zero)
        _, z = he.ciphertext_words(zero)
        a = expand_uniform(seed, he.input_primes, he.n)
        rows = []
        for i, q in enumerate(he.input_primes):
            qq = np.uint64(q)
            diff = np.where(z[1, i] >= a[i], z[1, i] - a[i], z[1, i] + (qq - a[i]))
            p0 = z[0, i] + mulmod(diff, self._s[i], q)
            rows.append(np.where(p0 >= qq, p0 - qq, p0))
        self.p0 = np.stack(rows).astype("<u8").tobytes()

    def encrypt(self, values: np.ndarray) -> bytes:
        """SEAL bytes of ``values`` (zero-padded) encrypted with the batch secret key in
        seeded form (the second half travels as a seed: about half the bytes)."""
        arr = np.asarray(values, dtype=np.float64).ravel()
        if not 0 < len(arr) <= self.he.params.slots or not np.all(np.isfinite(arr)):
            raise InvalidInput("values must be 1..slots finite numbers")
        pt = sealapi.Plaintext()
        self.he.encoder.encode(arr.tolist(), self.he.input_scale, pt)
        serializable = self._encryptor.encrypt_symmetric(pt)
        with _memory_file() as path:
            serializable.save(path)
            return Path(path).read_bytes()

    def read(self, product: SumOnly) -> int:
        """The constant coefficient (mod q0) of the product's decryption: t0 + [c1·s]_0.
        Only this coefficient is computed; the others are not defined by what the
        gateway sent."""
        he, q = self.he, self.he.q0
        if len(product.c1) != 8 * he.n or not 0 <= product.t0 < q:
            raise InvalidCiphertext("a sum-only product has the wrong size")
        c1 = np.frombuffer(product.c1, dtype="<u8")
        if bool(np.any(c1 >= np.uint64(q))):
            raise InvalidCiphertext("a sum-only product has a value outside its modulus")
        dot = _sum_mod(mulmod(c1, self._s[0], q), q)
        return (product.t0 + dot * he.n_inverse) % q
