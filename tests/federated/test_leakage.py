"""What each party can learn (docs/leakage.md), checked on real ciphertexts as an attacker
would mount it: a deviating bank forging or crafting its ciphertexts, a deviating gateway
crafting its products. The gateway holds no CKKS secret key and never decrypts; the bank
reads one coefficient per product, under a key it makes for one batch."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
import tenseal.sealapi as sealapi
from scipy.stats import chi2

from federated.he import BatchKey, SumOnly
from federated.he.sumonly import mulmod
from federated.training import GatewayTrainer, Kind, Message, Privacy
from federated.training.wire import pack_ints, unpack_ints
from federated.transport import LocalChannel, run_bank
from tests.federated.attack import (
    Ntt,
    decode_balanced_ternary,
    read_all,
    secret_coefficients,
    ternary_probe,
)
from tests.federated.test_training import Parties, make_parties

# Correlations of n ≈ 256 independent pairs have a standard deviation of about 0.063: a
# bound of 0.3 is 4.7 standard deviations, while an unmasked slot correlates at ~1.
NO_CORRELATION = 0.3


def corr(a: np.ndarray, b: np.ndarray) -> float:
    return abs(float(np.corrcoef(a, b)[0, 1]))


def one_epoch(p: Parties) -> None:
    channel = LocalChannel(p.gateway)
    while p.bank.state.next_epoch == 0:
        channel.send(p.bank.batch_request())
        channel.send(p.bank.on_products(channel.receive()))
        p.bank.on_done(channel.receive())


@pytest.fixture
def trained() -> Parties:
    """Parties after one normal epoch (so the weights, and u_g, are not zero)."""
    p = make_parties(epochs=3)
    one_epoch(p)
    return p


def batch_truth(p: Parties) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, z_g of the rows, u_g of the rows) of the batch the parties are at."""
    rows = p.plan.batch_rows(p.bank.state.next_epoch, p.bank.state.next_batch)
    z = p.gateway.z[rows]
    return rows, z, z @ p.gateway.weights


# The gateway never decrypts ----------------------------------------------------------------


@pytest.fixture
def decryptions(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Counts every SEAL decryptor, key generator and batch-key reading made while the
    gateway handles a message."""
    counts = {"inside": 0, "decryptor": 0, "keygen": 0, "read": 0}
    for name, key in (("Decryptor", "decryptor"), ("KeyGenerator", "keygen")):
        original = getattr(sealapi, name)

        def spy(*args: Any, _original: Any = original, _key: str = key) -> Any:
            if counts["inside"]:
                counts[_key] += 1
            return _original(*args)

        monkeypatch.setattr(sealapi, name, spy)
    read = BatchKey.read

    def spy_read(self: BatchKey, product: SumOnly, readable: list[int]) -> list[int]:
        if counts["inside"]:
            counts["read"] += 1
        return read(self, product, readable)

    monkeypatch.setattr(BatchKey, "read", spy_read)
    handle = GatewayTrainer.handle

    def spy_handle(self: GatewayTrainer, request: bytes) -> bytes:
        counts["inside"] += 1
        try:
            return handle(self, request)
        finally:
            counts["inside"] -= 1

    monkeypatch.setattr(GatewayTrainer, "handle", spy_handle)
    return counts


def test_the_gateway_holds_no_secret_key_and_never_decrypts(
    decryptions: dict[str, int],
) -> None:
    p = make_parties(epochs=2)
    run_bank(p.bank, LocalChannel(p.gateway))
    assert p.gateway.finished
    assert decryptions == {"inside": 0, "decryptor": 0, "keygen": 0, "read": 0}
    held = [type(v).__name__ for v in vars(p.gateway).values()]
    assert not {"BatchKey", "SecretContext", "SecretKey"} & set(held)


def test_the_issues_forged_probes_sent_as_the_bank_columns_recover_no_key_coefficient(
    trained: Parties, decryptions: dict[str, int]
) -> None:
    """The issue's attack: ciphertexts (0, K·Σ_t 3^t·X^{i_t}) in place of the bank's
    columns, and its decoder run on every answer. Against the old protocol each answer
    gave 20 ternary coefficients of the gateway's key. Now the gateway has no key and
    decrypts nothing; what comes back is one noisy functional of u_g per column, whose
    'digits' change from batch to batch (a fixed secret would repeat them)."""
    p = trained
    he, ntt = p.gateway.he, Ntt(p.gateway.he)
    k, digits = 2**20, 20
    probe = ntt.forward(ternary_probe([17 + 97 * t for t in range(digits)], k, he.n))
    decoded: list[list[int]] = []
    for _ in range(2):
        columns = Message.from_bytes(p.bank.batch_request())
        forged = he.build_ciphertext(
            he.input_parms_id,
            he.input_scale,
            np.stack([np.zeros_like(probe), probe]),
        )
        blob = he.ciphertext_bytes(forged)
        frame = dataclasses.replace(
            columns, blobs=(*columns.blobs[:2], *[blob] * p.plan.bank_ciphertexts)
        ).to_bytes()
        assert p.bank.pending is not None
        p.bank.pending = dataclasses.replace(p.bank.pending, request=Message.from_bytes(frame))
        answer = Message.from_bytes(p.gateway.handle(frame))
        key = p.bank.pending.key
        assert key is not None
        for value in read_all(key, p.plan, answer)[: p.plan.bank_columns + 1]:
            centred = value - he.q0 if value > he.q0 // 2 else value
            decoded.append(decode_balanced_ternary(round(centred / k), digits))
        p.gateway.handle(p.bank.on_products(answer.to_bytes()))
        p.bank.on_done(
            Message(
                Kind.BATCH_DONE, p.plan.session, p.bank.state.seq, answer.epoch, answer.batch
            ).to_bytes()
        )
    assert decryptions["decryptor"] == decryptions["read"] == decryptions["keygen"] == 0
    half = len(decoded) // 2
    first, second = np.asarray(decoded[:half]), np.asarray(decoded[half:])
    agreement = float(np.mean(first == second))
    assert agreement < 0.6  # a fixed secret would give 1.0; chance for ternary is ~1/3


# A deviating bank ----------------------------------------------------------------------------


def _computable_coefficients(key: BatchKey, c1: bytes) -> np.ndarray:
    """Everything a key holder can compute of a sum-only product beyond its readable
    coefficients: c1·s, coefficient by coefficient (c0 is not sent)."""
    he = key.he
    c1s = mulmod(np.frombuffer(c1, dtype="<u8"), key._s[0], he.q0)
    coefficients = he.intt(c1s[None, :])[0].astype(object)
    return np.asarray([he.from_coefficient(int(c)) for c in coefficients])


def test_crafted_noise_in_the_bank_residual_reveals_no_gateway_value_per_row(
    trained: Parties,
) -> None:
    """The second hole: a key holder that adds noise of its choosing to Enc_b(a) used to
    decrypt the product Enc_b(a)·z_g exactly and read e·Z per coefficient. Now it gets c1
    re-randomized and only the readable coefficients of c0: every coefficient it can
    compute, at the places where row r of z_gj would land, is uncorrelated with z_g, u_g
    or z_g·a row by row."""
    p = trained
    he, ntt = p.gateway.he, Ntt(p.gateway.he)
    rows, z, u = batch_truth(p)
    n, block = len(rows), p.plan.batch_size
    columns = Message.from_bytes(p.bank.batch_request())
    key = p.bank.pending.key if p.bank.pending is not None else None
    assert key is not None
    ct = he.input_ciphertext(columns.blobs[-1])  # a, alone
    _, words = he.ciphertext_words(ct)
    noise = ntt.forward(np.random.default_rng(5).integers(-(2**30), 2**30, he.n))
    for i, q in enumerate(he.input_primes):
        words[0, i] = (words[0, i] + noise[i]) % np.uint64(q)
    blob = he.ciphertext_bytes(he.build_ciphertext(he.input_parms_id, he.input_scale, words))
    frame = dataclasses.replace(columns, blobs=(*columns.blobs[:-1], blob)).to_bytes()
    answer = Message.from_bytes(p.gateway.handle(frame))
    a = 0.25 * (p.bank.z[rows] @ p.bank.weights + p.bank.intercept) - 0.5 * p.bank.y[rows]
    first_gateway = p.plan.bank_ciphertexts
    for g in range(p.plan.gateway_groups):
        seen_all = _computable_coefficients(key, answer.blobs[1 + first_gateway + g])
        for at, j in enumerate(p.plan.gateway_group(g)):
            seen = seen_all[(at * block - np.arange(n)) % he.n]
            for hidden in (z[:, j], u, z[:, j] * a):
                assert corr(seen, hidden) < NO_CORRELATION
    seen_all = _computable_coefficients(key, answer.blobs[first_gateway])  # a × u_g
    assert corr(seen_all[(-np.arange(n)) % he.n], u) < NO_CORRELATION


def _indicator_readings(p: Parties, scale: float) -> list[tuple[float, float]]:
    """One batch with the bank's feature columns replaced by ``scale``·(indicator of one
    row each): (the bank's estimate of u_g at that row, the true u_g)."""
    rows, _, u = batch_truth(p)
    picks = list(range(p.plan.bank_columns))
    original = p.bank.z.copy()
    for col, r in enumerate(picks):
        p.bank.z[rows, col] = 0.0
        p.bank.z[rows[r], col] = scale
    columns = p.bank.batch_request()
    p.bank.z[:] = original
    key = p.bank.pending.key if p.bank.pending is not None else None
    assert key is not None
    answer = Message.from_bytes(p.gateway.handle(columns))
    he = p.gateway.he
    readings = read_all(key, p.plan, answer)
    out = []
    for col, r in enumerate(picks):
        out.append((he.from_coefficient(readings[col]) / scale, float(u[r])))
    p.gateway.handle(p.bank.on_products(answer.to_bytes()))
    done = Message(Kind.BATCH_DONE, p.plan.session, p.bank.state.seq, answer.epoch, answer.batch)
    p.bank.on_done(done.to_bytes())
    return out


@pytest.mark.parametrize("scale", [3.0, 1000.0])
def test_indicator_columns_read_u_g_only_through_the_row_noise_whatever_their_scale(
    trained: Parties, scale: float
) -> None:
    """A bank whose 'features' are indicator columns reads single entries of u_g. The row
    noise ν is multiplied by the bank's column too, so scaling the indicator up does not
    sharpen the reading: the error stays N(0, row_sigma²)."""
    p = trained
    readings = [r for _ in range(4) for r in _indicator_readings(p, scale)]
    errors = np.asarray([est - true for est, true in readings])
    sigma = Privacy().row_sigma
    ratio = float(np.mean(errors**2)) / sigma**2
    n = len(errors)
    assert chi2.ppf(1e-6, n) / n < ratio < chi2.ppf(1 - 1e-6, n) / n


def test_without_row_noise_the_indicator_attack_reads_u_g_exactly() -> None:
    """The test above can fail: with row_sigma = 0 the same attack reads u_g to ~1e-3."""
    p = make_parties(epochs=3, privacy=Privacy(row_sigma=0.0))
    one_epoch(p)
    readings = _indicator_readings(p, 1000.0)
    assert max(abs(est - true) for est, true in readings) < 1e-3


# A deviating gateway ---------------------------------------------------------------------------


def test_a_crafted_gateway_product_gets_one_key_functional_per_value_and_a_fresh_key_next_batch(
    trained: Parties,
) -> None:
    """The gateway's side of the same attack: products (t0 = 0, c1 = K·Σ 3^t·X^{i_t}) in
    place of its columns. The bank returns exactly one value per gateway column; each is
    one linear functional of that batch's key (here 11 ternary coefficients, decoded
    exactly: the functional is the bound, not the flooding). The next batch runs under a
    fresh key, which the decoded digits match only by chance."""
    p = trained
    he, ntt = p.gateway.he, Ntt(p.gateway.he)
    k, digits = 2**40, 11
    rng = np.random.default_rng(9)
    recovered: dict[int, int] = {}
    key_of_batch: list[np.ndarray] = []
    for batch in range(2):
        columns = p.bank.batch_request()
        key = p.bank.pending.key if p.bank.pending is not None else None
        assert key is not None
        key_of_batch.append(secret_coefficients(key, ntt))
        honest = Message.from_bytes(p.gateway.handle(columns))
        t0s = unpack_ints(honest.blobs[0], p.plan.readings, he.q0)
        blobs = list(honest.blobs[1:])
        probes: list[tuple[int, list[int]]] = []  # (readable position, probe) per column
        first_reading = p.plan.bank_columns + 1
        for g in range(p.plan.gateway_groups):
            probe = sorted(rng.choice(np.arange(1, he.n), digits, replace=False).tolist())
            c1 = ntt.forward(ternary_probe(probe, k, he.n))[0]
            blobs[p.plan.bank_ciphertexts + g] = c1.astype("<u8").tobytes()
            for at, j in enumerate(p.plan.gateway_group(g)):
                t0s[first_reading + j] = 0
                probes.append((at * p.plan.batch_size, probe))
        forged = dataclasses.replace(honest, blobs=(pack_ints(t0s), *blobs)).to_bytes()
        sums = Message.from_bytes(p.bank.on_products(forged))
        values = unpack_ints(sums.blobs[0], p.plan.gateway_columns, he.q0)
        assert len(values) == p.plan.gateway_columns  # one value per gateway column
        if batch == 0:
            for (at, probe), v in zip(probes, values, strict=True):
                centred = v - he.q0 if v > he.q0 // 2 else v
                found = decode_balanced_ternary(round(centred / k), digits)
                for i, d in zip(probe, found, strict=True):
                    # (X^i·s)_at = s_{at−i}, or −s_{N+at−i} when it wraps
                    recovered[(at - i) % he.n] = d if at >= i else -d
        p.gateway.handle(sums.to_bytes())  # whatever the gateway does with them
        p.bank.on_done(
            Message(
                Kind.BATCH_DONE, p.plan.session, p.bank.state.seq, sums.epoch, sums.batch
            ).to_bytes()
        )
    where = np.asarray(sorted(recovered))
    guessed = np.asarray([recovered[i] for i in where])
    assert len(where) > 0.9 * digits * p.plan.gateway_columns
    assert float(np.mean(guessed == key_of_batch[0][where])) == 1.0  # the bound is real
    assert float(np.mean(guessed == key_of_batch[1][where])) < 0.5  # and worthless next batch


# Noise on what leaves a party ------------------------------------------------------------------


def _assert_noise_scale(noise: np.ndarray, sigma: float) -> None:
    n = len(noise)
    ratio = float(np.mean(np.square(noise))) / sigma**2
    assert chi2.ppf(1e-6, n) / n < ratio < chi2.ppf(1 - 1e-6, n) / n


def test_the_scalars_the_gateway_sends_are_noised_and_rounded(trained: Parties) -> None:
    p = trained
    noise = []
    for _ in range(p.plan.batches_per_epoch):
        _, _, u = batch_truth(p)
        channel = LocalChannel(p.gateway)
        channel.send(p.bank.batch_request())
        products = Message.from_bytes(channel.receive())
        assert len(products.values) == 2
        got = np.asarray(products.values)
        assert np.all(got * 2.0**20 == np.round(got * 2.0**20))
        noise.extend(got - [u.sum(), u @ u])
        channel.send(p.bank.on_products(products.to_bytes()))
        p.bank.on_done(channel.receive())
    _assert_noise_scale(np.asarray(noise), Privacy().sum_sigma)


def test_the_sums_the_bank_returns_are_noised_flooded_and_rounded(trained: Parties) -> None:
    """What the gateway reads, Σ z_gj·(a + ν_b) + η: the bank's row noise ν_b (scaled by
    the gateway's own column) and its flooding η, on the 2^-20 grid."""
    p = trained
    he = p.gateway.he
    pv = Privacy()
    standardized: list[float] = []
    for _ in range(p.plan.batches_per_epoch):
        rows, z, _ = batch_truth(p)
        a = 0.25 * (p.bank.z[rows] @ p.bank.weights + p.bank.intercept) - 0.5 * p.bank.y[rows]
        products = p.gateway.handle(p.bank.batch_request())
        pads = list(p.gateway.state.pads or [])
        sums = Message.from_bytes(p.bank.on_products(products))
        values = unpack_ints(sums.blobs[0], p.plan.gateway_columns, he.q0)
        grid = round(he.coefficient_per_unit * 2.0**-20)
        assert all(v % grid == 0 or (v + he.q0) % grid == 0 for v in values)
        got = np.asarray([he.from_coefficient(v - m) for v, m in zip(values, pads, strict=True)])
        sd = np.sqrt(pv.sum_sigma**2 + pv.row_sigma**2 * np.sum(z * z, axis=0))
        standardized.extend((got - z.T @ a) / sd)
        p.bank.on_done(p.gateway.handle(sums.to_bytes()))
    _assert_noise_scale(np.asarray(standardized), 1.0)


def test_gateway_indicator_columns_read_a_only_through_the_banks_row_noise(
    trained: Parties,
) -> None:
    """The gateway's indicator attack on the bank's residual a = ¼u_b − ½y: its 'columns'
    K·(indicator of one row) read a[r] + ν_b[r], whatever K: the error is
    N(0, row_sigma²). (A label bit still shows through: docs/leakage.md.)"""
    p = trained
    he = p.gateway.he
    k = 1000.0
    errors = []
    for _ in range(4):
        rows, _, _ = batch_truth(p)
        a = 0.25 * (p.bank.z[rows] @ p.bank.weights + p.bank.intercept) - 0.5 * p.bank.y[rows]
        original = p.gateway.z.copy()
        for j in range(p.plan.gateway_columns):
            p.gateway.z[rows, j] = 0.0
            p.gateway.z[rows[j], j] = k
        products = p.gateway.handle(p.bank.batch_request())
        pads = list(p.gateway.state.pads or [])
        sums = Message.from_bytes(p.bank.on_products(products))
        values = unpack_ints(sums.blobs[0], p.plan.gateway_columns, he.q0)
        for j, (v, m) in enumerate(zip(values, pads, strict=True)):
            errors.append(he.from_coefficient(v - m) / k - a[j])
        p.bank.on_done(p.gateway.handle(sums.to_bytes()))
        p.gateway.z[:] = original
    _assert_noise_scale(np.asarray(errors), Privacy().row_sigma)


def test_no_message_carries_a_per_row_value_validation_included() -> None:
    p = make_parties(epochs=1, batch_size=1024)

    class Recording(LocalChannel):
        def __init__(self, gateway: GatewayTrainer) -> None:
            super().__init__(gateway)
            self.answers: list[Message] = []

        def receive(self) -> bytes:
            raw = super().receive()
            self.answers.append(Message.from_bytes(raw))
            return raw

    channel = Recording(p.gateway)
    epochs = run_bank(p.bank, channel)
    assert {m.kind for m in channel.answers} == {Kind.PRODUCTS, Kind.BATCH_DONE}
    assert all(len(m.values) <= 2 for m in channel.answers)
    # The bank's validation AUC is of its own half, computed from its own data.
    own = p.bank.z_val @ p.bank.weights + p.bank.intercept
    from federated.training import roc_auc

    assert epochs[-1].validation_auc == pytest.approx(roc_auc(p.bank.y_val, own))
