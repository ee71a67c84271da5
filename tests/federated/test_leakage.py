"""What each party can read of what it receives (docs/leakage.md), checked on real
ciphertexts: decrypting everything a party can decrypt with its own key yields nothing
correlated with the other party's features, labels or residuals, and every sum that
leaves a key holder is flooded and rounded."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from scipy.stats import chi2

from federated.he import SecretContext, decrypt_checked
from federated.training import (
    PARAMS,
    VALIDATION_ROUND_BITS,
    Kind,
    Message,
    Privacy,
    flood_and_round,
)
from federated.transport import LocalChannel, run_bank
from tests.federated.test_training import Parties, make_parties

# Correlations of n ≈ 900 independent pairs have a standard deviation of about 0.033: a
# bound of 0.15 is 4.5 standard deviations, while an unmasked slot correlates at ~1.
NO_CORRELATION = 0.15


@pytest.fixture(scope="module")
def keys() -> tuple[SecretContext, SecretContext]:
    return SecretContext.generate(PARAMS), SecretContext.generate(PARAMS)


@dataclass
class Batch:
    """One batch run in the open, with what each side received and the hidden truth."""

    rows: np.ndarray
    forward: Message  # bank received
    residual: Message  # gateway received
    gateway_products: Message  # bank received
    bank_reply: Message  # gateway received
    bank_sums: Message  # bank received
    bank_mask_sums: np.ndarray
    gateway_mask_sums: np.ndarray
    zb: np.ndarray  # the bank's standardized rows of the batch
    zg: np.ndarray
    y: np.ndarray
    u_b: np.ndarray
    u_g: np.ndarray

    @property
    def d(self) -> np.ndarray:
        return np.asarray(0.25 * (self.u_b + self.u_g) - 0.5 * self.y)

    @property
    def a(self) -> np.ndarray:
        return 0.25 * self.u_b - 0.5 * self.y


def run_batch(p: Parties) -> Batch:
    d, tr = p.data, p.data.train
    epoch, batch = p.bank.state.next_epoch, p.bank.state.next_batch
    rows = p.plan.batch_rows(epoch, batch)
    zb, zg = p.sb.apply(d.xb[tr][rows]), p.sg.apply(d.xg[tr][rows])
    u_b = zb @ p.bank.weights + p.bank.intercept
    u_g = zg @ p.gateway.weights
    channel = LocalChannel(p.gateway)
    channel.send(p.bank.forward_request())
    forward = channel.receive()
    residual = p.bank.on_forward(forward)
    channel.send(residual)
    products = channel.receive()
    assert p.gateway.state.mask_sums is not None
    gateway_masks = np.asarray(p.gateway.state.mask_sums)
    reply = p.bank.on_gateway_products(products)
    assert p.bank.pending is not None and p.bank.pending.mask_sums is not None
    bank_masks = p.bank.pending.mask_sums.copy()
    channel.send(reply)
    sums = channel.receive()
    p.bank.on_bank_sums(sums)
    m = Message.from_bytes
    return Batch(
        rows,
        m(forward),
        m(residual),
        m(products),
        m(reply),
        m(sums),
        bank_masks,
        gateway_masks,
        zb,
        zg,
        d.y[tr][rows],
        u_b,
        u_g,
    )


@pytest.fixture(scope="module")
def trained(keys: tuple[SecretContext, SecretContext]) -> tuple[Parties, list[Batch]]:
    """One epoch run normally (so weights are not zero), then one epoch in the open."""
    p = make_parties(keys, epochs=2, batch_size=1024)
    channel = LocalChannel(p.gateway)
    while p.bank.state.next_epoch == 0:
        channel.send(p.bank.forward_request())
        channel.send(p.bank.on_forward(channel.receive()))
        channel.send(p.bank.on_gateway_products(channel.receive()))
        p.bank.on_bank_sums(channel.receive())
    batches = [run_batch(p) for _ in range(p.plan.batches_per_epoch)]
    return p, batches


def corr(a: np.ndarray, b: np.ndarray) -> float:
    return abs(float(np.corrcoef(a, b)[0, 1]))


def blocks(secret: SecretContext, msg: Message, block: int, columns: int) -> list[np.ndarray]:
    """Every column block of every ciphertext of ``msg``, decrypted with ``secret``."""
    out: list[np.ndarray] = []
    for blob in msg.blobs:
        values = decrypt_checked(secret, secret.ciphertext(blob, max_bytes=1 << 20))
        out.extend(values.reshape(-1, block))
    return out[:columns]


def test_what_the_bank_decrypts_reveals_no_gateway_feature_or_residual(
    keys: tuple[SecretContext, SecretContext], trained: tuple[Parties, list[Batch]]
) -> None:
    p, batches = trained
    for b in batches:
        n = len(b.rows)
        decrypted = blocks(keys[0], b.gateway_products, p.plan.batch_size, p.plan.gateway_columns)
        assert len(decrypted) == p.plan.gateway_columns
        for j, slots in enumerate(decrypted):
            seen = slots[:n]
            assert np.median(np.abs(seen)) > 2.0**30  # masks of 2^36 dominate every slot
            for hidden in (b.zg[:, j], b.zg[:, j] * b.d, b.d, b.u_g):
                assert corr(seen, hidden) < NO_CORRELATION


def test_what_the_gateway_decrypts_reveals_no_bank_feature_label_or_residual(
    keys: tuple[SecretContext, SecretContext], trained: tuple[Parties, list[Batch]]
) -> None:
    p, batches = trained
    for b in batches:
        n = len(b.rows)
        cols = p.plan.bank_product_columns
        decrypted = blocks(keys[1], b.bank_reply, p.plan.batch_size, cols)
        assert len(decrypted) == cols
        own = np.column_stack([b.zb, np.ones(n), b.a])
        for j, slots in enumerate(decrypted):
            seen = slots[:n]
            assert np.median(np.abs(seen)) > 2.0**30
            for hidden in (b.y, b.d, b.a, b.u_b, own[:, j] * b.d):
                assert corr(seen, hidden) < NO_CORRELATION
            if j < p.plan.bank_columns:
                assert corr(seen, b.zb[:, j]) < NO_CORRELATION


def test_ciphertexts_under_the_other_key_do_not_decrypt_under_ones_own(
    keys: tuple[SecretContext, SecretContext], trained: tuple[Parties, list[Batch]]
) -> None:
    _, batches = trained
    bank_secret, gateway_secret = keys
    for b in batches:
        n = len(b.rows)
        # The bank holds Enc_g(u_g); its own key gives noise, not u_g.
        fwd = bank_secret.ciphertext(b.forward.blobs[0], max_bytes=1 << 20)
        garbage = bank_secret.decrypt(fwd)[:n]
        assert corr(garbage, b.u_g) < NO_CORRELATION
        # The gateway holds Enc_b(a); its own key gives noise, not the labels or a.
        res = gateway_secret.ciphertext(b.residual.blobs[0], max_bytes=1 << 20)
        garbage = gateway_secret.decrypt(res)[:n]
        assert corr(garbage, b.a) < NO_CORRELATION and corr(garbage, b.y) < NO_CORRELATION


def _flooding_noise(returned: np.ndarray, masks: np.ndarray, exact: np.ndarray) -> np.ndarray:
    return np.asarray(returned - masks - exact)


def _assert_flooding_scale(noise: list[float]) -> None:
    """The noise is N(0, σ²) flooding, not a raw decryption: the mean square of its n
    samples over σ² lies within the χ²(n)/n bounds at a 1e-6 tail on each side (a
    batch gives a dozen samples; fixed bounds like 0.6σ failed a few runs in a hundred).
    The lower bound, ≈0.23σ for 12 samples, is still 14 times a raw decryption's error."""
    n, sigma = len(noise), Privacy().flood_sigma
    ratio = float(np.mean(np.square(noise))) / sigma**2
    assert chi2.ppf(1e-6, n) / n < ratio < chi2.ppf(1 - 1e-6, n) / n


def test_sums_the_gateway_returns_are_flooded_and_rounded(
    trained: tuple[Parties, list[Batch]],
) -> None:
    _, batches = trained
    noise: list[float] = []
    for b in batches:
        n = len(b.rows)
        returned = np.asarray(b.bank_sums.values)
        assert np.all(returned * 2.0**20 == np.round(returned * 2.0**20))  # on the grid
        exact = np.column_stack([b.zb, np.ones(n), b.a]).T @ b.d
        noise.extend(_flooding_noise(returned, b.bank_mask_sums, exact))
    # A raw decryption would differ from the exact sum by ~1e-9 (CKKS) + ~1e-3 (the
    # doubles of the masked slots); the flooding adds σ = 2^-4.
    _assert_flooding_scale(noise)
    sigma = Privacy().flood_sigma
    assert abs(float(np.mean(noise))) < 5 * sigma / np.sqrt(len(noise)) + 1e-3


def test_sums_the_bank_returns_are_flooded_and_rounded(
    trained: tuple[Parties, list[Batch]],
) -> None:
    _, batches = trained
    noise: list[float] = []
    for b in batches:
        returned = np.asarray(b.bank_reply.values)
        assert np.all(returned * 2.0**20 == np.round(returned * 2.0**20))
        exact = b.zg.T @ b.d
        noise.extend(_flooding_noise(returned, b.gateway_mask_sums, exact))
    assert len(noise) >= 8
    _assert_flooding_scale(noise)


def test_every_decryption_is_flooded_afresh() -> None:
    """The same sums flooded twice differ by independent noise of σ: a party that gets the
    same decryption again (a restarted batch) sees new noise, and restarts are bounded
    (test_training), so averaging cannot strip it."""
    sums = np.full(4000, 123.456)
    first, second = flood_and_round(sums, Privacy()), flood_and_round(sums, Privacy())
    sigma = Privacy().flood_sigma
    assert 0.9 * sigma < float(np.std(first - sums)) < 1.1 * sigma
    assert corr(first - sums, second - sums) < 0.1
    assert np.all(first * 2.0**20 == np.round(first * 2.0**20))


class Recording(LocalChannel):
    def __init__(self, *args: object) -> None:
        super().__init__(*args)  # type: ignore[arg-type]
        self.answers: list[Message] = []

    def receive(self) -> bytes:
        raw = super().receive()
        self.answers.append(Message.from_bytes(raw))
        return raw


def test_validation_answers_are_only_the_gateway_logit_part_rounded(
    keys: tuple[SecretContext, SecretContext],
) -> None:
    p = make_parties(keys, epochs=1, batch_size=1024)
    channel = Recording(p.gateway)
    run_bank(p.bank, channel)
    (answer,) = [m for m in channel.answers if m.kind == Kind.VALIDATION]
    d = p.data
    expected = p.sg.apply(d.xg[d.test]) @ p.gateway.weights  # the final weights
    got = np.asarray(answer.values)
    grid = 2.0**VALIDATION_ROUND_BITS
    assert len(got) == len(d.test) and not answer.blobs
    assert np.all(got * grid == np.round(got * grid))
    assert np.abs(got - expected).max() <= 0.5 / grid + 1e-12


def test_products_are_rerandomized_under_the_key_holders_key(
    keys: tuple[SecretContext, SecretContext],
) -> None:
    """Circuit privacy: a product ciphertext is the input times a plaintext plus a fresh
    encryption of zero, so the key holder (who made the input and knows its randomness)
    cannot divide the plaintext out of the second component. Two runs of the same
    product differ as ciphertexts and decrypt to the same values."""
    from federated.he import multiply_add_plain, rerandomize

    bank_secret, _ = keys
    public = bank_secret.public()
    rng = np.random.default_rng(2)
    x, z = rng.normal(size=64), rng.normal(size=64)
    residual = public.encrypt(x)
    plain = multiply_add_plain(residual, z, np.zeros(64))
    first, second = rerandomize(plain, public), rerandomize(plain, public)
    assert len({plain.to_bytes(), first.to_bytes(), second.to_bytes()}) == 3
    for ct in (first, second):
        assert np.allclose(decrypt_checked(bank_secret, ct), x * z, atol=1e-6)
