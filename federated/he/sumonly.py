"""Sum-only products for vertical training: no decryption oracle for either party.

The bank makes one CKKS key pair per batch (``BatchKey``) and encrypts its columns under
it; the gateway holds no secret key and never decrypts. Columns travel in **coefficient
encoding**: the bank's ciphertext holds Σ_c Σ_r x_{c,r}·X^{c·B + r} (``pack_blocks``,
scale 2^40), the gateway multiplies it by the plaintext Σ_j Σ_r p_{j,r}·X^{j·B − r}
(``reversed_blocks``, scale 2^50) and rescales, so coefficient j·B of the product is one
inner product Σ_r x_r·p_{j,r} (or Σ_r x_{c,r}·p_r at c·B): several per product, one per
column, none overlapping while the blocks fit the ring. The gateway hands back only:

- ``c1`` of the product **re-randomized** with a fresh encryption of zero under the batch
  public key (without it c1 = c1_in·P, and the bank, who made c1_in, divides P out);
- the **readable coefficients** of ``c0`` (plus an offset the gateway chooses: Gaussian
  noise, or a one-time pad), instead of ``c0`` itself.

The bank can then compute exactly those numbers of the decryption c0 + c1·s; every other
coefficient of c0 stays with the gateway, which is the same as adding to c0 a polynomial
uniform mod q0 in every other coefficient: perfectly hidden, whatever noise or plaintext
the bank put into its input ciphertext (a crafted input changes *which* linear functional
of the gateway's plaintext each readable number is, never how many).

The public key's second half ``a`` is expanded from a 32-byte seed with SHAKE-256 (the
gateway expands it itself), so a deviating bank cannot pick a structured ``a`` (say 0) that
would make the re-randomization transparent.

Conventions (checked by ``tests/federated/test_sumonly.py`` on known values): SEAL keeps
CKKS ciphertexts and the secret key in evaluation (NTT) form, one row per RNS prime; its
NTT tables depend on (N, q) only, so a BFV context over the same primes moves polynomials
between the two forms (``ntt``/``intt``); the negacyclic NTT evaluates at the N odd powers
of a 2N-th root of unity (the sum of the evaluations is N times the constant coefficient).

Units: after the rescale a product lives mod the single first prime q0 (60 bits) at scale
≈ 2^40, so an inner product S is the coefficient S·2^40 (``to_coefficient``/
``from_coefficient``): |S| < 2^19.
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
    """One product as it travels: ``c1`` (N words mod q0) and, for each readable
    position, that coefficient of c0 plus the gateway's offset (mod q0)."""

    c1: bytes
    t0: tuple[int, ...]


def pack_blocks(columns: np.ndarray, block: int, n: int) -> np.ndarray:
    """Coefficient encoding of the bank's columns: Σ_c Σ_r x_{c,r}·X^{c·block + r}."""
    rows, count = columns.shape
    if rows > block or count * block > n:
        raise InvalidInput(f"{count} blocks of {block} do not fit {n} coefficients")
    out = np.zeros(n)
    for c in range(count):
        out[c * block : c * block + rows] = columns[:, c]
    return out


def reversed_blocks(columns: np.ndarray, block: int, n: int) -> np.ndarray:
    """The gateway's multiplier Σ_j Σ_r p_{j,r}·X^{j·block − r} (X^{−r} = −X^{N−r}):
    multiplied by a column packed at block 0, coefficient j·block of the product is
    Σ_r x_r·p_{j,r}, one inner product per block, with no other term landing there while
    (count)·block ≤ N (``positions``)."""
    rows, count = columns.shape
    if rows > block or count * block > n:
        raise InvalidInput(f"{count} blocks of {block} do not fit {n} coefficients")
    out = np.zeros(n)
    r = np.arange(rows)
    for j in range(count):
        e = j * block - r
        wrap = e < 0
        np.add.at(out, e[~wrap], columns[~wrap, j])
        np.add.at(out, n + e[wrap], -columns[wrap, j])
    return out


def positions(count: int, block: int) -> list[int]:
    """The readable coefficients of a product of ``count`` blocks."""
    return [j * block for j in range(count)]


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
        self.evaluator = sealapi.Evaluator(self.context)
        # SEAL's NTT tables depend on (N, q) only: a BFV context over the same primes lets
        # us move polynomials between coefficient and evaluation form.
        twin = sealapi.EncryptionParameters(sealapi.SCHEME_TYPE.BFV)
        twin.set_poly_modulus_degree(self.n)
        twin.set_coeff_modulus(
            sealapi.CoeffModulus.Create(self.n, list(params.coeff_mod_bit_sizes))
        )
        twin.set_plain_modulus(sealapi.PlainModulus.Batching(self.n, 20))
        self._twin = sealapi.SEALContext(twin, True, sealapi.SEC_LEVEL_TYPE.TC128)
        self._twin_evaluator = sealapi.Evaluator(self._twin)
        twin_first = self._twin.first_context_data()
        self._twin_ids = {
            2: list(twin_first.parms_id()),
            1: list(twin_first.next_context_data().parms_id()),
        }
        self._dctx = zstandard.ZstdDecompressor()
        with _memory_file() as path:
            sealapi.Plaintext().save(path)
            header = _HEADER.unpack_from(Path(path).read_bytes())
        self._version = (header[2], header[3])

    # Units ---------------------------------------------------------------------------
    @property
    def coefficient_per_unit(self) -> float:
        """How many coefficient units one unit of an inner product is."""
        return self.product_scale

    def to_coefficient(self, value: float) -> int:
        """An inner-product value as a coefficient offset (mod q0)."""
        return round(value * self.coefficient_per_unit) % self.q0

    def from_coefficient(self, c: int) -> float:
        """A product coefficient mod q0, centred, back in inner-product units."""
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

    # Coefficient encoding ------------------------------------------------------------
    def rows(self, coefficients: np.ndarray, scale: float, primes: Sequence[int]) -> np.ndarray:
        """round(scale·x) of each coefficient, mod each prime (one row per prime)."""
        x = np.asarray(coefficients, dtype=np.float64).ravel()
        if x.shape != (self.n,) or not np.all(np.isfinite(x)):
            raise InvalidInput(f"a polynomial is {self.n} finite coefficients")
        scaled = np.round(x * scale)
        if np.abs(scaled).max(initial=0.0) >= 2.0**62:
            raise InvalidInput("a coefficient is too large for the scale")
        ints = scaled.astype(np.int64)
        return np.stack([np.mod(ints, q).astype(np.uint64) for q in primes])

    def _twin_transform(self, rows: np.ndarray, *, forward: bool) -> np.ndarray:
        k = rows.shape[0]
        words = np.zeros((2, k, self.n), dtype=np.uint64)
        words[0] = rows
        words[1, :, 1] = 1  # SEAL refuses transparent ciphertexts; this row is ignored
        meta = _CT_META.pack(*self._twin_ids[k], int(not forward), 2, self.n, k, 1.0, 1)
        members = meta + self._array(words)
        ct = sealapi.Ciphertext()
        with _memory_file() as path:
            Path(path).write_bytes(self._framed(members) + members)
            ct.load(self._twin, path)
        if forward:
            self._twin_evaluator.transform_to_ntt_inplace(ct)
        else:
            self._twin_evaluator.transform_from_ntt_inplace(ct)
        out: np.ndarray = self.ciphertext_words(ct)[1][0]
        return out

    def ntt(self, rows: np.ndarray) -> np.ndarray:
        """Coefficient form → evaluation form (rows for the first one or two primes)."""
        return self._twin_transform(rows, forward=True)

    def intt(self, rows: np.ndarray) -> np.ndarray:
        """Evaluation form → coefficient form."""
        return self._twin_transform(rows, forward=False)

    def encode(self, coefficients: np.ndarray) -> Any:
        """The gateway's multiplier (``reversed_blocks``) as a plaintext at the input level
        and the plaintext scale, in evaluation form."""
        words = self.ntt(self.rows(coefficients, self.plain_scale, self.input_primes))
        members = _PT_META.pack(*self.input_parms_id, words.size, self.plain_scale)
        members += self._array(words)
        return self._load(sealapi.Plaintext(), self._framed(members) + members)


class BatchPublicKey:
    """The gateway's view of one batch key: it only encrypts zeros with it."""

    def __init__(self, he: SumOnlyContext, encryptor: Any) -> None:
        self.he = he
        self._encryptor = encryptor

    def product(
        self, ct: Any, plain: Any, readable: Sequence[int], offsets: Sequence[int]
    ) -> SumOnly:
        """Enc(c·p) in sum-only form: c1 re-randomized, and only the coefficients of c0 at
        ``readable`` (each plus its offset, mod q0)."""
        he = self.he
        zero = sealapi.Ciphertext()
        self._encryptor.encrypt_zero(he.product_parms_id, zero)
        if plain.is_zero():  # c·0 = 0 (SEAL refuses to compute a transparent result)
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
        c0 = he.intt(words[0, :1])[0]
        t0 = tuple((int(c0[i]) + off) % he.q0 for i, off in zip(readable, offsets, strict=True))
        return SumOnly(words[1, 0].astype("<u8").tobytes(), t0)


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

    def encrypt(self, coefficients: np.ndarray) -> bytes:
        """SEAL bytes of the polynomial with these coefficients (``pack_blocks``) at the
        input scale, encrypted with the batch secret key in seeded form (the second half
        travels as a seed: about half the bytes)."""
        he = self.he
        message = he.ntt(he.rows(coefficients, he.input_scale, he.input_primes))
        serializable = self._encryptor.encrypt_zero_symmetric(he.input_parms_id)
        with _memory_file() as path:
            serializable.save(path)
            members = he._members(Path(path).read_bytes())
        meta: list[Any] = list(_CT_META.unpack_from(members))
        start = _CT_META.size + _HEADER.size + _ARRAY_COUNT.size
        k = len(he.input_primes)
        c0 = np.frombuffer(members, dtype="<u8", count=k * he.n, offset=start).reshape(k, he.n)
        summed = c0 + message  # < 2^61: no wrap
        for i, q in enumerate(he.input_primes):
            summed[i] = np.where(summed[i] >= np.uint64(q), summed[i] - np.uint64(q), summed[i])
        meta[8] = he.input_scale
        body: bytes = (
            _CT_META.pack(*meta)
            + members[_CT_META.size : start]
            + summed.astype("<u8").tobytes()
            + members[start + 8 * k * he.n :]
        )
        framed: bytes = he._framed(body)
        return framed + body

    def read(self, product: SumOnly, readable: Sequence[int]) -> list[int]:
        """The coefficients at ``readable`` (mod q0) of the product's decryption:
        t0 + (c1·s) there. Nothing else is defined by what the gateway sent."""
        he, q = self.he, self.he.q0
        if len(product.c1) != 8 * he.n or len(product.t0) != len(readable):
            raise InvalidCiphertext("a sum-only product has the wrong size")
        if any(not 0 <= t < q for t in product.t0):
            raise InvalidCiphertext("a sum-only product has a value outside its modulus")
        c1 = np.frombuffer(product.c1, dtype="<u8")
        if bool(np.any(c1 >= np.uint64(q))):
            raise InvalidCiphertext("a sum-only product has a value outside its modulus")
        c1s = he.intt(mulmod(c1, self._s[0], q)[None, :])[0]
        return [(t + int(c1s[i])) % q for t, i in zip(product.t0, readable, strict=True)]
