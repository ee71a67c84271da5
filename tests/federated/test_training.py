"""The vertical-training protocol: convergence, precision, refusal of malformed, replayed
and out-of-order messages, resumption after a dropped connection."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from common.errors import Error, InvalidInput
from federated.he import InvalidCiphertext, SecretContext
from federated.training import (
    PARAMS,
    BankTrainer,
    GatewayTrainer,
    Kind,
    MalformedMessage,
    Message,
    Privacy,
    ReplayedMessage,
    RestartLimit,
    Standardization,
    TrainingFinished,
    TrainingPlan,
    UnexpectedMessage,
    fold_bank_half,
    roc_auc,
    train_plaintext,
)
from federated.transport import ConnectionLost, GatewayStatus, LocalChannel, Traffic, run_bank


@pytest.fixture(scope="module")
def keys() -> tuple[SecretContext, SecretContext]:
    """(bank's, gateway's) secret contexts, made once per module (key generation is slow)."""
    return SecretContext.generate(PARAMS), SecretContext.generate(PARAMS)


@dataclass
class Synthetic:
    xb: np.ndarray
    xg: np.ndarray
    y: np.ndarray  # −1/1
    train: np.ndarray
    test: np.ndarray


def synthetic(n: int = 2400, kb: int = 4, kg: int = 5, seed: int = 7) -> Synthetic:
    """A logistic model over both parties' features, with one heavy-tailed bank column."""
    rng = np.random.default_rng(seed)
    xb = rng.normal(size=(n, kb))
    xb[:, 0] = rng.standard_t(3, size=n) * 2 + 5  # heavy tail, not centred
    xg = rng.normal(size=(n, kg)) * 3 + 1
    zb = (xb - xb.mean(0)) / xb.std(0)
    logit = 0.6 * zb @ rng.normal(size=kb) + xg @ rng.normal(size=kg) / 3 - 0.7
    y = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), 1.0, -1.0)
    idx = rng.permutation(n)
    cut = int(n * 0.75)
    return Synthetic(xb, xg, y, np.sort(idx[:cut]), np.sort(idx[cut:]))


@dataclass
class Parties:
    plan: TrainingPlan
    bank: BankTrainer
    gateway: GatewayTrainer
    sb: Standardization
    sg: Standardization
    data: Synthetic


def make_parties(
    keys: tuple[SecretContext, SecretContext],
    data: Synthetic | None = None,
    *,
    epochs: int = 6,
    batch_size: int = 256,
    privacy: Privacy | None = None,
    session: str = "test-session",
) -> Parties:
    d = data or synthetic()
    kb_secret, kg_secret = keys
    tr, te = d.train, d.test
    sb = Standardization.fit(d.xb[tr], 3.0)
    sg = Standardization.fit(d.xg[tr], 3.0)
    plan = TrainingPlan(
        session,
        len(tr),
        len(te),
        d.xb.shape[1],
        d.xg.shape[1],
        epochs=epochs,
        batch_size=batch_size,
        seed=3,
    )
    bank = BankTrainer(
        plan,
        sb.apply(d.xb[tr]),
        d.y[tr],
        sb.apply(d.xb[te]),
        d.y[te],
        kb_secret,
        kg_secret.public(),
        privacy=privacy,
    )
    gateway = GatewayTrainer(
        plan,
        sg.apply(d.xg[tr]),
        sg.apply(d.xg[te]),
        kg_secret,
        kb_secret.public(),
        privacy=privacy,
    )
    return Parties(plan, bank, gateway, sb, sg, d)


def holdout_auc(p: Parties) -> float:
    half = fold_bank_half(
        [f"b{i}" for i in range(p.plan.bank_columns)], p.bank.weights, p.bank.intercept, p.sb
    )
    d = p.data
    logits = (
        half.intercept
        + d.xb[d.test] @ np.asarray(half.weights)
        + p.sg.apply(d.xg[d.test]) @ p.gateway.weights
    )
    return roc_auc(d.y[d.test], logits)


# Convergence and precision -----------------------------------------------------------------


def test_protocol_converges_within_0_01_auc_of_centralized_training(
    keys: tuple[SecretContext, SecretContext],
) -> None:
    p = make_parties(keys, epochs=8)
    epochs = run_bank(p.bank, LocalChannel(p.gateway))
    d = p.data
    central = LogisticRegression(max_iter=2000).fit(np.hstack([d.xb, d.xg])[d.train], d.y[d.train])
    auc_central = roc_auc_score(
        d.y[d.test], central.decision_function(np.hstack([d.xb, d.xg])[d.test])
    )
    assert len(epochs) == 8
    assert holdout_auc(p) >= auc_central - 0.01
    assert epochs[-1].loss < epochs[0].loss
    assert all(e.validation_auc is not None for e in epochs)


def test_encrypted_training_matches_the_plaintext_algorithm_within_the_flooding_bound(
    keys: tuple[SecretContext, SecretContext],
) -> None:
    p = make_parties(keys, epochs=2)
    run_bank(p.bank, LocalChannel(p.gateway))
    d = p.data
    wb, w0, wg = train_plaintext(
        p.plan, p.sb.apply(d.xb[d.train]), d.y[d.train], p.sg.apply(d.xg[d.train])
    )
    # Each gradient entry carries flooding noise σ/n_R ≈ 0.0625/225 ≈ 3e-4; Adam steps are
    # at most ~lr = 0.1 and the noise moves them by a small fraction of that.
    assert np.abs(p.bank.weights - wb).max() < 0.01
    assert abs(p.bank.intercept - w0) < 0.01
    assert np.abs(p.gateway.weights - wg).max() < 0.01


def test_the_bank_reports_the_taylor_loss_of_each_batch(
    keys: tuple[SecretContext, SecretContext],
) -> None:
    p = make_parties(keys, epochs=1)
    channel = LocalChannel(p.gateway)
    d, tr = p.data, p.data.train
    zb, zg = p.sb.apply(d.xb[tr]), p.sg.apply(d.xg[tr])
    for batch in range(3):
        u = zb @ p.bank.weights + p.bank.intercept + zg @ p.gateway.weights  # before the step
        channel.send(p.bank.forward_request())
        channel.send(p.bank.on_forward(channel.receive()))
        channel.send(p.bank.on_gateway_products(channel.receive()))
        result = p.bank.on_bank_sums(channel.receive())
        rows = p.plan.batch_rows(0, batch)
        y, ur = d.y[tr][rows], u[rows]
        expected = float(np.mean(np.log(2) - 0.5 * y * ur + 0.125 * ur * ur))
        # Σu_g·a comes from a flooded sum (σ = 2^-4), times 4, over n_R rows: 6σ bound.
        assert result.loss == pytest.approx(expected, abs=6 * 4 * 2.0**-4 / len(rows))
        assert result.rows == len(rows)


def test_folding_the_bank_standardization_gives_the_same_logits_on_raw_features() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 3)) * [1, 10, 100] + [5, -3, 40]
    std = Standardization.fit(x, None)
    w, b = rng.normal(size=3), 0.3
    half = fold_bank_half(["a", "b", "c"], w, b, std)
    assert np.allclose(std.apply(x) @ w + b, x @ np.asarray(half.weights) + half.intercept)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.booleans(), st.integers(-5, 5)), min_size=2, max_size=60).filter(
        lambda rows: len({r[0] for r in rows}) == 2
    )
)
def test_roc_auc_agrees_with_scikit_learn_including_ties(rows: list[tuple[bool, int]]) -> None:
    y = np.array([1 if r[0] else -1 for r in rows])
    s = np.array([float(r[1]) for r in rows])
    assert roc_auc(y, s) == pytest.approx(roc_auc_score(y, s))


# Message framing ---------------------------------------------------------------------------


@settings(max_examples=80, deadline=None)
@given(
    kind=st.sampled_from(list(Kind)),
    seq=st.integers(0, 2**53 - 1),
    values=st.lists(st.floats(allow_nan=False, allow_infinity=False), max_size=20),
    blobs=st.lists(st.binary(min_size=1, max_size=64), max_size=4),
)
def test_a_message_survives_its_frame(
    kind: Kind, seq: int, values: list[float], blobs: list[bytes]
) -> None:
    msg = Message(kind, "s", seq, 1, 2, tuple(values), tuple(blobs))
    assert Message.from_bytes(msg.to_bytes()) == msg


@settings(max_examples=120, deadline=None)
@given(cut=st.integers(0, 200), flip=st.integers(0, 10_000), byte=st.integers(1, 255))
def test_a_damaged_frame_is_refused_or_parses_to_something_well_formed(
    cut: int, flip: int, byte: int
) -> None:
    raw = bytearray(Message(Kind.BANK_SUMS, "s", 3, 0, 1, (1.5, -2.0), (b"abc",)).to_bytes())
    damaged = bytes(raw[: max(0, len(raw) - cut)])
    if damaged and flip < len(damaged):
        b = bytearray(damaged)
        b[flip] ^= byte
        damaged = bytes(b)
    try:
        msg = Message.from_bytes(damaged)
    except MalformedMessage:
        return
    assert isinstance(msg.kind, Kind)
    assert all(np.isfinite(msg.values))


@pytest.mark.parametrize(
    "frame",
    [
        b"",
        b"XYVT\x02" + b"\x00" * 8,
        b"XYVT\x01\x00\x00\x00\x05{}",
        b"XYVT\x01\x00\x00\x00\x02[]",
        b'XYVT\x01\x00\x00\x00\x10{"kind":"nope"}',
    ],
)
def test_garbage_frames_are_malformed(frame: bytes) -> None:
    with pytest.raises(MalformedMessage):
        Message.from_bytes(frame)


def test_an_oversized_frame_is_refused_before_parsing() -> None:
    with pytest.raises(MalformedMessage, match="at most"):
        Message.from_bytes(b"XYVT\x01" + b"\x00" * 100, max_bytes=50)


# Refusals ----------------------------------------------------------------------------------


def _snapshot(g: GatewayTrainer) -> dict[str, object]:
    return g.state.to_json()


def _start(p: Parties) -> tuple[LocalChannel, bytes]:
    """Run the first two steps of batch (0, 0); return the channel and the residual."""
    channel = LocalChannel(p.gateway)
    channel.send(p.bank.forward_request())
    residual = p.bank.on_forward(channel.receive())
    return channel, residual


def test_the_gateway_refuses_a_replayed_residual_and_changes_nothing(
    keys: tuple[SecretContext, SecretContext],
) -> None:
    p = make_parties(keys, epochs=1)
    _, residual = _start(p)
    p.gateway.handle(residual)
    before = _snapshot(p.gateway)
    # A second residual for the same batch would let the bank see the gateway's columns
    # masked twice; the big products answer is not stored, so the replay is refused.
    with pytest.raises(ReplayedMessage):
        p.gateway.handle(residual)
    assert _snapshot(p.gateway) == before


def test_the_gateway_refuses_a_stale_sequence_number(
    keys: tuple[SecretContext, SecretContext],
) -> None:
    p = make_parties(keys, epochs=1)
    _, residual = _start(p)
    p.gateway.handle(residual)
    old = Message.from_bytes(residual)
    forged = dataclasses.replace(old, kind=Kind.FORWARD_REQUEST, blobs=())
    with pytest.raises(ReplayedMessage):
        p.gateway.handle(forged.to_bytes())


def test_a_retransmitted_bank_reply_gets_the_stored_answer_and_updates_once(
    keys: tuple[SecretContext, SecretContext],
) -> None:
    p = make_parties(keys, epochs=1)
    channel, residual = _start(p)
    channel.send(residual)
    reply = p.bank.on_gateway_products(channel.receive())
    first = p.gateway.handle(reply)
    weights, step = list(p.gateway.state.weights), p.gateway.state.step
    assert p.gateway.handle(reply) == first
    assert p.gateway.state.weights == weights and p.gateway.state.step == step == 1
    changed = Message.from_bytes(reply)
    changed = dataclasses.replace(changed, values=tuple(v + 1 for v in changed.values))
    with pytest.raises(ReplayedMessage):
        p.gateway.handle(changed.to_bytes())


def test_the_bank_refuses_a_replayed_answer(keys: tuple[SecretContext, SecretContext]) -> None:
    p = make_parties(keys, epochs=1)
    channel = LocalChannel(p.gateway)
    channel.send(p.bank.forward_request())
    forward = channel.receive()
    channel.send(p.bank.on_forward(forward))
    with pytest.raises(ReplayedMessage):
        p.bank.on_gateway_products(forward)  # an old answer of an earlier request


def test_out_of_order_messages_are_refused(keys: tuple[SecretContext, SecretContext]) -> None:
    p = make_parties(keys, epochs=1)
    s = p.plan.session
    with pytest.raises(UnexpectedMessage):  # a residual before any forward
        p.gateway.handle(Message(Kind.RESIDUAL, s, 1, 0, 0, (), (b"x",)).to_bytes())
    with pytest.raises(UnexpectedMessage):  # a batch the gateway is not at
        p.gateway.handle(Message(Kind.FORWARD_REQUEST, s, 2, 0, 1).to_bytes())
    with pytest.raises(UnexpectedMessage):  # an answer kind sent as a request
        p.gateway.handle(Message(Kind.BANK_SUMS, s, 3, 0, 0).to_bytes())
    with pytest.raises(UnexpectedMessage):  # another session
        p.gateway.handle(Message(Kind.FORWARD_REQUEST, "other", 4, 0, 0).to_bytes())
    with pytest.raises(UnexpectedMessage):  # validation before an epoch completed
        p.gateway.handle(Message(Kind.VALIDATION_REQUEST, s, 5, 0, 0).to_bytes())
    assert p.gateway.state.last_seq == 0


@pytest.mark.parametrize(
    "damage",
    [
        lambda m: dataclasses.replace(m, blobs=()),
        lambda m: dataclasses.replace(m, blobs=(m.blobs[0], m.blobs[0])),
        lambda m: dataclasses.replace(m, blobs=(b"not a ciphertext",)),
        lambda m: dataclasses.replace(m, blobs=(m.blobs[0][:-100],)),
        lambda m: dataclasses.replace(m, values=(1.0,)),
    ],
)
def test_a_malformed_residual_is_refused_and_changes_nothing(
    keys: tuple[SecretContext, SecretContext], damage: Callable[[Message], Message]
) -> None:
    p = make_parties(keys, epochs=1)
    _, residual = _start(p)
    before = _snapshot(p.gateway)
    with pytest.raises((MalformedMessage, InvalidCiphertext)):
        p.gateway.handle(damage(Message.from_bytes(residual)).to_bytes())
    assert _snapshot(p.gateway) == before
    p.gateway.handle(residual)  # the intact message is still accepted


def test_a_residual_of_the_wrong_size_is_refused(keys: tuple[SecretContext, SecretContext]) -> None:
    p = make_parties(keys, epochs=1)
    _, residual = _start(p)
    m = Message.from_bytes(residual)
    short = keys[0].encrypt(np.zeros(10)).to_bytes()
    with pytest.raises(MalformedMessage, match="must hold"):
        p.gateway.handle(dataclasses.replace(m, blobs=(short,)).to_bytes())


def test_a_residual_under_the_wrong_key_cannot_poison_the_gateway(
    keys: tuple[SecretContext, SecretContext],
) -> None:
    """A ciphertext under the gateway's own key parses (same parameters) but the bank then
    receives garbage it cannot use: the gateway only ever computes, never decrypts it."""
    p = make_parties(keys, epochs=1)
    _, residual = _start(p)
    m = Message.from_bytes(residual)
    size = p.plan.batch_size * p.plan.reps(p.plan.gateway_columns)
    mine = keys[1].encrypt(np.zeros(size)).to_bytes()
    out = Message.from_bytes(p.gateway.handle(dataclasses.replace(m, blobs=(mine,)).to_bytes()))
    assert out.kind == Kind.GATEWAY_PRODUCTS


def test_a_malformed_bank_reply_is_refused(keys: tuple[SecretContext, SecretContext]) -> None:
    p = make_parties(keys, epochs=1)
    channel, residual = _start(p)
    channel.send(residual)
    reply = Message.from_bytes(p.bank.on_gateway_products(channel.receive()))
    before = _snapshot(p.gateway)
    for bad in (
        dataclasses.replace(reply, values=reply.values[:-1]),
        dataclasses.replace(reply, blobs=reply.blobs + reply.blobs),
        dataclasses.replace(reply, blobs=(b"\x00" * 64,)),
    ):
        with pytest.raises((MalformedMessage, InvalidCiphertext)):
            p.gateway.handle(bad.to_bytes())
        assert _snapshot(p.gateway) == before


def test_a_batch_restarts_only_a_bounded_number_of_times(
    keys: tuple[SecretContext, SecretContext],
) -> None:
    p = make_parties(keys, epochs=1, privacy=Privacy(max_restarts=2))
    for _ in range(3):  # the first request and two restarts
        p.gateway.handle(p.bank.forward_request())
    with pytest.raises(RestartLimit):
        p.gateway.handle(p.bank.forward_request())


def test_nothing_is_accepted_after_the_last_epoch(
    keys: tuple[SecretContext, SecretContext],
) -> None:
    p = make_parties(keys, epochs=1, batch_size=1024)
    run_bank(p.bank, LocalChannel(p.gateway))
    assert p.gateway.finished and p.bank.finished
    with pytest.raises(TrainingFinished):
        p.bank.forward_request()
    forged = Message(Kind.FORWARD_REQUEST, p.plan.session, 10_000, 1, 0).to_bytes()
    with pytest.raises(TrainingFinished):
        p.gateway.handle(forged)


def test_the_gateway_state_survives_a_json_round_trip(
    keys: tuple[SecretContext, SecretContext],
) -> None:
    p = make_parties(keys, epochs=1)
    channel, residual = _start(p)
    channel.send(residual)
    p.gateway.handle(p.bank.on_gateway_products(channel.receive()))
    from federated.training import GatewayState

    assert GatewayState.from_json(p.gateway.state.to_json()) == p.gateway.state


def test_a_plan_with_impossible_values_is_refused() -> None:
    with pytest.raises(InvalidInput):
        TrainingPlan("s", 100, 0, 3, 3, batch_size=8192)
    with pytest.raises(InvalidInput):
        TrainingPlan.from_dict({"session": "s", "n_train": "100"})
    with pytest.raises(InvalidInput):
        TrainingPlan.from_dict(
            {
                "session": "s",
                "n_train": 10,
                "n_validation": 0,
                "bank_columns": 1,
                "gateway_columns": 1,
                "surprise": 1,
            }
        )


# Resumption after a dropped connection ------------------------------------------------------


class FlakyChannel:
    """A LocalChannel that loses chosen exchanges: ``drop_request`` loses the n-th request
    before the gateway sees it; ``drop_answer`` loses the n-th answer after the gateway
    processed it (numbered over the whole run)."""

    def __init__(self, gateway: GatewayTrainer, drop_request: set[int], drop_answer: set[int]):
        self.inner = LocalChannel(gateway)
        self.traffic: Traffic = self.inner.traffic
        self.n = 0
        self.drop_request, self.drop_answer = drop_request, drop_answer
        self.lost = False

    def send(self, request: bytes) -> None:
        self.n += 1
        if self.n in self.drop_request:
            self.lost = True
            return
        self.lost = False
        self.inner.send(request)
        if self.n in self.drop_answer:
            self.inner.receive()  # processed, answer lost
            self.lost = True

    def receive(self) -> bytes:
        if self.lost:
            self.lost = False
            raise ConnectionLost("simulated drop")
        return self.inner.receive()

    def status(self) -> GatewayStatus:
        return self.inner.status()


@pytest.mark.parametrize(
    ("drop_request", "drop_answer"),
    [
        ({2}, set()),  # the residual never arrives: the batch restarts
        (set(), {3}),  # the gateway products are lost: the batch restarts
        (set(), {4}),  # the bank sums are lost after the gateway updated: retransmission
        ({9}, {12, 16}),  # several drops, across batches
    ],
)
def test_training_resumes_from_the_last_completed_batch_after_a_dropped_connection(
    keys: tuple[SecretContext, SecretContext], drop_request: set[int], drop_answer: set[int]
) -> None:
    p = make_parties(keys, epochs=2, batch_size=512)
    channel = FlakyChannel(p.gateway, drop_request, drop_answer)
    epochs = run_bank(p.bank, channel, reconnect_wait=0)
    total = p.plan.total_steps
    assert p.gateway.state.step == p.bank.state.step == total
    done = [(r.epoch, r.batch) for r in p.bank.state.history]
    assert done == [(e, b) for e in range(2) for b in range(p.plan.batches_per_epoch)]
    assert len(epochs) == 2


def test_out_of_step_parties_refuse_to_continue(keys: tuple[SecretContext, SecretContext]) -> None:
    p = make_parties(keys, epochs=1)
    p.gateway.state.next_batch = 3  # the gateway is somewhere the bank never was

    class Lost(LocalChannel):
        def receive(self) -> bytes:
            raise ConnectionLost("drop")

    with pytest.raises(Error, match="cannot be resumed"):
        run_bank(p.bank, Lost(p.gateway), reconnect_wait=0)
