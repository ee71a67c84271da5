"""Sum-only products (federated.he.sumonly) on known values: the evaluation-form
conventions the protocol builds on, exact modular arithmetic, the batch public key, and
refusal of untrusted bytes."""

from __future__ import annotations

import os

import numpy as np
import pytest

from federated.he import BatchKey, InvalidCiphertext, SumOnly, SumOnlyContext
from federated.he.sumonly import (
    _sum_mod,
    expand_uniform,
    mulmod,
    pack_blocks,
    positions,
    reversed_blocks,
)
from federated.training import PARAMS
from tests.federated.attack import Ntt, secret_coefficients


@pytest.fixture(scope="module")
def he() -> SumOnlyContext:
    return SumOnlyContext(PARAMS)


@pytest.fixture(scope="module")
def ntt(he: SumOnlyContext) -> Ntt:
    return Ntt(he)


def test_the_sum_of_the_evaluations_is_n_times_the_constant_coefficient(
    he: SumOnlyContext, ntt: Ntt
) -> None:
    rng = np.random.default_rng(0)
    coefficients = rng.integers(-(2**40), 2**40, he.n).astype(object)
    words = ntt.forward(coefficients)
    for i, q in enumerate(he.input_primes):
        assert _sum_mod(words[i], q) * pow(he.n, -1, q) % q == coefficients[0] % q
    assert list(ntt.inverse(words)) == [int(c) for c in coefficients]


def test_the_twin_ntt_matches_the_reference_and_inverts(he: SumOnlyContext, ntt: Ntt) -> None:
    coefficients = np.random.default_rng(4).integers(-(2**40), 2**40, he.n)
    rows = he.rows(coefficients.astype(np.float64), 1.0, he.input_primes)
    assert np.array_equal(he.ntt(rows), ntt.forward(coefficients.astype(object)))
    assert np.array_equal(he.intt(he.ntt(rows)), rows)


def _negacyclic(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    full = np.convolve(a, b)
    n = len(a)
    out = full[:n].copy()
    out[: len(full) - n] -= full[n:]
    return out


def test_coefficient_c_times_block_of_the_product_is_block_cs_inner_product() -> None:
    """The encoding on known values, in the clear: pack_blocks(x)·reversed_blocks(p) has
    Σ_r x_{c,r}·p_r at coefficient c·block (and, with a single x column, Σ_r x_r·p_{j,r} at
    j·block) — no other term lands on a readable position."""
    n, block, rows = 256, 32, 30
    rng = np.random.default_rng(5)
    x = rng.integers(-9, 9, size=(rows, n // block)).astype(np.float64)
    p = rng.integers(-9, 9, size=rows).astype(np.float64)
    product = _negacyclic(pack_blocks(x, block, n), reversed_blocks(p[:, None], block, n))
    assert [product[i] for i in positions(x.shape[1], block)] == list(x.T @ p)
    z = rng.integers(-9, 9, size=(rows, n // block)).astype(np.float64)
    a = rng.integers(-9, 9, size=rows).astype(np.float64)
    product = _negacyclic(pack_blocks(a[:, None], block, n), reversed_blocks(z, block, n))
    assert [product[i] for i in positions(z.shape[1], block)] == list(z.T @ a)


def test_mulmod_is_exact_on_60_and_50_bit_primes() -> None:
    rng = np.random.default_rng(2)
    for q in PARAMS_PRIMES:
        a = rng.integers(0, q, 4000, dtype=np.uint64)
        b = rng.integers(0, q, 4000, dtype=np.uint64)
        a[:3], b[:3] = [q - 1, 0, q - 1], [q - 1, q - 1, 1]
        assert [int(v) for v in mulmod(a, b, q)] == [
            int(x) * int(y) % q for x, y in zip(a, b, strict=True)
        ]


PARAMS_PRIMES = SumOnlyContext(PARAMS).key_primes


def test_a_product_reads_as_the_inner_products_plus_the_offsets(he: SumOnlyContext) -> None:
    rng = np.random.default_rng(3)
    key = BatchKey(he, os.urandom(32))
    public = he.public_key(key.seed, key.p0)
    block = 2048
    x, p = rng.normal(size=(2000, 4)), rng.normal(size=2000)
    ct = he.input_ciphertext(key.encrypt(pack_blocks(x, block, he.n)))
    readable = positions(4, block)
    times_p = he.encode(reversed_blocks(p[:, None], block, he.n))
    for offset in (0.0, 12.5, -3.25):
        offsets = [he.to_coefficient(offset)] * 4
        got = key.read(public.product(ct, times_p, readable, offsets), readable)
        assert [he.from_coefficient(v) for v in got] == pytest.approx(
            list(x.T @ p + offset), abs=1e-6
        )
    assert he.product_scale == pytest.approx(2.0**40, rel=1e-4)


def test_the_batch_public_key_is_valid_and_its_a_comes_from_the_seed(
    he: SumOnlyContext, ntt: Ntt
) -> None:
    """p0 + a·s is the small error e: the key the gateway builds from (seed, p0) is the
    bank's, and a is the seed's expansion, not something the bank chose."""
    key = BatchKey(he, os.urandom(32))
    a = expand_uniform(key.seed, he.input_primes, he.n)
    p0 = np.frombuffer(key.p0, dtype="<u8").reshape(2, he.n)
    q = he.input_primes[0]
    e = (p0[0] + mulmod(a[0], key._s[0], q)) % np.uint64(q)
    coefficients = ntt.inverse(e[None, :])
    assert np.abs(coefficients).max() < 64  # SEAL's error: σ = 3.2, bounded at 6σ
    s = secret_coefficients(key, ntt)
    assert set(np.unique(s)) <= {-1, 0, 1}


def test_every_batch_key_is_fresh(he: SumOnlyContext, ntt: Ntt) -> None:
    first, second = BatchKey(he, os.urandom(32)), BatchKey(he, os.urandom(32))
    s1, s2 = secret_coefficients(first, ntt), secret_coefficients(second, ntt)
    assert 0.25 < float(np.mean(s1 == s2)) < 0.42  # chance for two ternary keys: 1/3


@pytest.mark.parametrize(
    "damage",
    [
        lambda seed, p0: (seed[:-1], p0),
        lambda seed, p0: (seed, p0[:-8]),
        lambda seed, p0: (seed, b"\xff" * len(p0)),  # outside the moduli
    ],
)
def test_a_malformed_public_key_is_refused(he: SumOnlyContext, damage: object) -> None:
    key = BatchKey(he, os.urandom(32))
    seed, p0 = damage(key.seed, key.p0)  # type: ignore[operator]
    with pytest.raises(InvalidCiphertext):
        he.public_key(seed, p0)


def test_untrusted_input_ciphertexts_are_refused(he: SumOnlyContext) -> None:
    key = BatchKey(he, os.urandom(32))
    good = key.encrypt(pack_blocks(np.ones((10, 1)), 16, he.n))
    public = he.public_key(key.seed, key.p0)
    times = he.encode(reversed_blocks(np.ones((10, 1)), 16, he.n))
    product = public.product(he.input_ciphertext(good), times, [0], [0])
    lower = he.build_ciphertext(
        he.product_parms_id,
        he.product_scale,
        np.stack([np.zeros((1, he.n), np.uint64), np.frombuffer(product.c1, "<u8")[None]]),
    )
    lower_bytes = he.ciphertext_bytes(lower)
    for bad in (b"", b"junk" * 10, good[:-50], good[:16] + b"\x00" * (len(good) - 16), lower_bytes):
        with pytest.raises(InvalidCiphertext):
            he.input_ciphertext(bad)


def test_a_sum_only_product_with_values_outside_the_modulus_is_refused(he: SumOnlyContext) -> None:
    key = BatchKey(he, os.urandom(32))
    with pytest.raises(InvalidCiphertext):
        key.read(SumOnly(b"\xff" * (8 * he.n), (0,)), [0])
    with pytest.raises(InvalidCiphertext):
        key.read(SumOnly(b"\x00" * (8 * he.n), (he.q0,)), [0])
    with pytest.raises(InvalidCiphertext):
        key.read(SumOnly(b"\x00" * 8, (0,)), [0])
