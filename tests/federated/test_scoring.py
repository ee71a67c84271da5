"""federated.scoring: encrypt → compute at the gateway → decrypt equals the plaintext
logit; no single slot tells a feature product; batch slots are logits, refused slots
carry nothing."""

from __future__ import annotations

import struct
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.errors import InvalidInput
from federated import he, scoring
from federated.models import JointModel, parse_model
from tests.federated.conftest import model_json

TOLERANCE = 1e-4
_prop = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(scope="module")
def ev() -> he.Evaluator:
    return he.Evaluator(he.DEFAULT_PARAMS)


@_prop
@given(
    seed=st.integers(0, 2**32 - 1),
    gateway=st.integers(1, 7),
    bank=st.integers(1, 40),
    seeded=st.booleans(),
)
def test_decrypted_sum_is_the_plaintext_logit(
    secret: he.SecretContext,
    ev: he.Evaluator,
    seed: int,
    gateway: int,
    bank: int,
    seeded: bool,
) -> None:
    rng = np.random.default_rng(seed)
    model = parse_model(model_json(rng, gateway=gateway, bank=bank))
    # Realistic raw department values (amounts up to 1e8, some missing) and standardized,
    # clipped bank features.
    x_g = [None if rng.random() < 0.2 else float(rng.uniform(0, 1e8)) for _ in range(gateway)]
    z_b = np.clip(rng.normal(0, 2, bank), -5, 5)
    data = he.encrypt_seeded(secret, z_b) if seeded else secret.encrypt(z_b).to_bytes()
    ct = ev.ciphertext(data, size=bank)
    out = scoring.score_single(ev, ct, model, model.gateway_share(x_g))
    logit = float(np.sum(secret.decrypt(secret.ciphertext(out))))
    assert abs(logit - model.logit(x_g, z_b)) < TOLERANCE


def test_no_single_slot_is_a_feature_product(
    secret: he.SecretContext, ev: he.Evaluator, make_model: Callable[..., JointModel]
) -> None:
    model = make_model(bank=6)
    z_b = np.array([1.0, -2.0, 0.5, 3.0, -0.25, 1.5])
    products = np.asarray(model.bank_weights) * z_b
    share = model.gateway_share([1e5, 2e5, 3.0])
    slots = []
    for _ in range(2):
        ct = ev.ciphertext(secret.encrypt(z_b).to_bytes(), size=6)
        out = scoring.score_single(ev, ct, model, share)
        slots.append(secret.decrypt(secret.ciphertext(out)))
    for got in slots:
        # Every slot is off its product (and slot 0 off product + share) by mask noise.
        assert np.all(np.abs(got - products - np.eye(6)[0] * share) > 1e-2)
        assert np.max(np.abs(got - products)) > 1000.0
        assert abs(float(np.sum(got)) - model.logit([1e5, 2e5, 3.0], z_b)) < TOLERANCE
    # The mask is fresh per request: the same input never gives the same slots.
    assert np.all(np.abs(slots[0] - slots[1]) > 1e-2)


@settings(max_examples=200, deadline=None)
@given(k=st.integers(1, 4096))
def test_the_mask_sums_to_zero_within_its_bound(k: int) -> None:
    mask = scoring.zero_sum_mask(k)
    assert len(mask) == k
    assert abs(float(np.sum(mask))) < 1e-6  # float rounding: ≤ k·2·bound·2^-53
    assert float(np.max(np.abs(mask))) < 2 * scoring.MASK_BOUND


def test_uniform_draws_cover_their_range() -> None:
    u = scoring.uniform(100_000, 1.0)
    assert -1.0 <= u.min() < -0.99 and 0.99 < u.max() < 1.0
    assert abs(float(u.mean())) < 0.01


def test_single_score_refuses_a_ciphertext_of_another_size(
    secret: he.SecretContext, ev: he.Evaluator, make_model: Callable[..., JointModel]
) -> None:
    model = make_model(bank=4)
    ct = ev.ciphertext(secret.encrypt([1.0, 2.0, 3.0]).to_bytes(), size=3)
    with pytest.raises(he.InvalidCiphertext, match="the model has 4"):
        scoring.score_single(ev, ct, model, 0.5)


def _batch(
    secret: he.SecretContext,
    public: he.PublicContext,
    ev: he.Evaluator,
    model: JointModel,
    z: np.ndarray,
    shares: np.ndarray,
    allowed: np.ndarray,
) -> np.ndarray:
    layout = scoring.BatchLayout(len(z), z.shape[1], public.params.slots)
    cts = [
        ev.ciphertext(he.encrypt_seeded(secret, z[layout.chunk(c), j]), size=layout.chunk_size(c))
        for c in range(layout.chunks)
        for j in range(layout.features)
    ]
    outs = scoring.score_batch(ev, cts, model, shares, allowed, public)
    assert len(outs) == layout.chunks
    return np.concatenate([secret.decrypt(secret.ciphertext(o)) for o in outs])


def test_batch_slots_are_logits_and_refused_slots_carry_nothing(
    secret: he.SecretContext,
    public: he.PublicContext,
    ev: he.Evaluator,
    make_model: Callable[..., JointModel],
) -> None:
    rng = np.random.default_rng(3)
    model = make_model(bank=5)
    n = 300
    z = np.clip(rng.normal(0, 1.5, (n, 5)), -5, 5)
    shares = rng.uniform(-8, 8, n)
    allowed = rng.random(n) > 0.1
    got = _batch(secret, public, ev, model, z, shares, allowed)
    expected = shares + z @ np.asarray(model.bank_weights)
    assert np.max(np.abs(got[allowed] - expected[allowed])) < TOLERANCE
    assert np.max(np.abs(got[~allowed])) < 1e-4


def test_batch_spans_chunks_and_an_all_refused_chunk(
    secret: he.SecretContext,
    public: he.PublicContext,
    ev: he.Evaluator,
    make_model: Callable[..., JointModel],
) -> None:
    model = make_model(bank=2)
    slots = public.params.slots
    n = slots + 10
    rng = np.random.default_rng(4)
    z = rng.normal(0, 1, (n, 2))
    shares = rng.uniform(-3, 3, n)
    allowed = np.ones(n, dtype=bool)
    allowed[slots:] = False  # the whole second chunk refused
    got = _batch(secret, public, ev, model, z, shares, allowed)
    expected = shares + z @ np.asarray(model.bank_weights)
    assert len(got) == n
    assert np.max(np.abs(got[:slots] - expected[:slots])) < TOLERANCE
    assert np.max(np.abs(got[slots:])) < 1e-4


def test_batch_refuses_the_wrong_number_of_ciphertexts(
    secret: he.SecretContext,
    public: he.PublicContext,
    ev: he.Evaluator,
    make_model: Callable[..., JointModel],
) -> None:
    model = make_model(bank=3)
    ct = ev.ciphertext(secret.encrypt([1.0, 2.0]).to_bytes(), size=2)
    with pytest.raises(InvalidInput, match="3 expected"):
        scoring.score_batch(ev, [ct, ct], model, np.zeros(2), np.ones(2, bool), public)
    with pytest.raises(he.InvalidCiphertext, match="chunk 0 has 3"):
        scoring.score_batch(ev, [ct, ct, ct], model, np.zeros(3), np.ones(3, bool), public)


def test_layout_is_chunk_major() -> None:
    layout = scoring.BatchLayout(enterprises=10_000, features=3, slots=4096)
    assert layout.chunks == 3
    assert layout.ciphertexts == 9
    assert layout.chunk_size(2) == 10_000 - 8192
    assert layout.index(1, 2) == 5


def _all_slots(secret: he.SecretContext, wire: bytes) -> np.ndarray:
    """Decrypt every slot, not just the ``size`` the vector claims (what a bank using
    SEAL directly could see)."""
    fields = list(he._fields(wire))
    blob = next(v for n, _, v in fields if n == 2)
    assert isinstance(blob, bytes)
    slots = secret.params.slots
    widened = (
        he._proto_bytes(1, he._encode_varint(slots))
        + he._proto_bytes(2, blob)
        + b"\x19"
        + struct.pack("<d", secret.params.scale)
    )
    return secret.decrypt(secret.ciphertext(widened))


def test_slots_past_the_answer_carry_nothing(
    secret: he.SecretContext,
    public: he.PublicContext,
    ev: he.Evaluator,
    make_model: Callable[..., JointModel],
) -> None:
    model = make_model(bank=4)
    # TenSEAL replicates a short vector over all slots: the gateway must clear them.
    ct = ev.ciphertext(secret.encrypt([1.0, 2.0, 3.0, 4.0]).to_bytes(), size=4)
    single = _all_slots(secret, scoring.score_single(ev, ct, model, 2.5))
    assert np.max(np.abs(single[4:])) < 1e-4
    n = 100
    z = np.ones((n, 4))
    layout = scoring.BatchLayout(n, 4, ev.params.slots)
    cts = [ev.ciphertext(secret.encrypt(z[:, j]).to_bytes(), size=n) for j in range(4)]
    (out,) = scoring.score_batch(ev, cts, model, np.ones(n), np.ones(n, bool), public)
    batch = _all_slots(secret, out)
    assert layout.chunks == 1
    assert np.max(np.abs(batch[n:])) < 1e-4
