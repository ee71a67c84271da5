"""The bank's state machine. It makes every request and accepts only the answer to the
request it has pending.

Per batch R: a fresh key pair (``BatchKey``, its public half's a expanded from a fresh
seed); Enc_b(c) for its standardized columns and a = ¼u_b − ½y, packed in blocks; then,
from the gateway's sum-only products, the constant coefficients only: Σ c·u_g (+ noise)
for its own gradient and loss, and Σ a·z_gj + M_j for the gateway, which it floods and
rounds before returning. The batch key is dropped as soon as the products are read. The
weights change when the gateway confirms the batch (``batch_done``), so both parties
update in the same step."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from federated.he import BatchKey, SumOnly, SumOnlyContext
from federated.he.sumonly import pack_blocks, positions
from federated.sampling import secure_bytes, secure_gaussian
from federated.training.optimizer import take_step
from federated.training.plan import (
    InvalidPlan,
    Privacy,
    TrainingPlan,
    check_labels,
    check_matrix,
)
from federated.training.reference import roc_auc
from federated.training.wire import (
    ANSWER,
    Kind,
    Message,
    ReplayedMessage,
    TrainingFinished,
    UnexpectedMessage,
    expect,
    pack_ints,
    unpack_ints,
)


@dataclass(frozen=True)
class BatchResult:
    epoch: int
    batch: int
    rows: int
    loss: float  # mean Taylor loss of the batch, before the update


@dataclass
class _Pending:
    request: Message
    raw: bytes
    key: BatchKey | None = None
    rows: np.ndarray | None = None
    a: np.ndarray | None = None
    grad: np.ndarray | None = None  # computed from the products, applied on batch_done
    loss: float = 0.0


@dataclass
class BankState:
    weights: list[float]  # the bank's features, then the intercept
    adam_m: list[float]
    adam_v: list[float]
    step: int = 0
    next_epoch: int = 0
    next_batch: int = 0
    seq: int = 0
    history: list[BatchResult] = field(default_factory=list)


class BankTrainer:
    def __init__(
        self,
        plan: TrainingPlan,
        train_features: np.ndarray,
        train_labels: np.ndarray,
        validation_features: np.ndarray,
        validation_labels: np.ndarray,
        *,
        privacy: Privacy | None = None,
        he: SumOnlyContext | None = None,
    ) -> None:
        self.plan = plan
        self.z = check_matrix(train_features, plan.n_train, plan.bank_columns, "bank features")
        self.z_val = check_matrix(
            validation_features, plan.n_validation, plan.bank_columns, "bank validation"
        )
        self.y = check_labels(train_labels, plan.n_train)
        self.y_val = check_labels(validation_labels, plan.n_validation)
        self.privacy = privacy or Privacy()
        self.he = he or SumOnlyContext(plan.params)
        if self.he.params != plan.params:
            raise InvalidPlan("the HE context must have the plan's CKKS parameters")
        k = plan.bank_columns + 1
        self.state = BankState([0.0] * k, [0.0] * k, [0.0] * k)
        self.pending: _Pending | None = None
        self._prepared: tuple[tuple[int, int], BatchKey, list[bytes]] | None = None

    @property
    def finished(self) -> bool:
        return self.state.next_epoch >= self.plan.epochs

    @property
    def weights(self) -> np.ndarray:
        return np.asarray(self.state.weights[:-1])

    @property
    def intercept(self) -> float:
        return float(self.state.weights[-1])

    def _request(self, kind: Kind, epoch: int, batch: int, **kw: object) -> tuple[Message, bytes]:
        self.state.seq += 1
        msg = Message(kind, self.plan.session, self.state.seq, epoch, batch, **kw)  # type: ignore[arg-type]
        return msg, msg.to_bytes()

    def resync(self, gateway_last_seq: int) -> None:
        """After a dropped connection: continue numbering above what the gateway saw."""
        self.state.seq = max(self.state.seq, gateway_last_seq)

    def _accept(self, data: bytes) -> Message:
        if self.pending is None:
            raise UnexpectedMessage("the bank has no request pending")
        msg = Message.from_bytes(data)
        req = self.pending.request
        if msg.session != self.plan.session:
            raise UnexpectedMessage("the message belongs to another training session")
        if msg.seq != req.seq or msg.kind != ANSWER[req.kind]:
            if msg.seq < req.seq:
                raise ReplayedMessage(f"answer {msg.seq} is stale; the bank waits for {req.seq}")
            raise UnexpectedMessage(f"the bank waits for the {ANSWER[req.kind].value} of {req.seq}")
        expect((msg.epoch, msg.batch) == (req.epoch, req.batch), "the answer names another batch")
        return msg

    # Per batch ---------------------------------------------------------------------------

    def batch_request(self) -> bytes:
        """Start the next batch (or restart the pending one) under a fresh key pair."""
        if self.finished:
            raise TrainingFinished("the training has finished")
        plan = self.plan
        epoch, batch = self.state.next_epoch, self.state.next_batch
        rows = plan.batch_rows(epoch, batch)
        u_b = self.z[rows] @ self.weights + self.intercept
        a = 0.25 * u_b - 0.5 * self.y[rows]
        prepared, self._prepared = self._prepared, None
        if prepared is None or prepared[0] != (epoch, batch):
            prepared = self._prepare(epoch, batch)
        _, key, blobs = prepared
        # The gateway multiplies Enc(a) by its columns: what it reads, Σ a·z_gj, gets the
        # bank's own row noise (a crafted indicator column cannot read a[r] more exactly
        # than row_sigma, whatever its scale).
        noise = self.privacy.row_sigma
        a_sent = a + secure_gaussian(len(a), noise) if noise else a
        packed = pack_blocks(a_sent[:, None], plan.batch_size, self.he.n)
        ordered = (*blobs, key.encrypt(packed))
        msg, raw = self._request(Kind.COLUMNS, epoch, batch, blobs=(key.seed, key.p0, *ordered))
        self.pending = _Pending(msg, raw, key=key, rows=rows, a=a)
        return raw

    def prepare_next(self) -> None:
        """Make the next batch's key and encrypt its feature-only ciphertexts ahead (they
        do not depend on the weights), while the gateway computes. Used once: a restart
        makes everything afresh."""
        plan, st = self.plan, self.state
        nxt = (st.next_epoch, st.next_batch + 1)
        if nxt[1] == plan.batches_per_epoch:
            nxt = (nxt[0] + 1, 0)
        if nxt[0] < plan.epochs:
            self._prepared = self._prepare(*nxt)

    def _prepare(self, epoch: int, batch: int) -> tuple[tuple[int, int], BatchKey, list[bytes]]:
        plan = self.plan
        rows = plan.batch_rows(epoch, batch)
        key = BatchKey(self.he, secure_bytes(32))
        blobs = []
        for i in range(plan.feature_ciphertexts):
            cols = plan.feature_group(i)
            packed = pack_blocks(self.z[rows, cols.start : cols.stop], plan.batch_size, self.he.n)
            blobs.append(key.encrypt(packed))
        return (epoch, batch), key, blobs

    def on_products(self, data: bytes) -> bytes:
        msg = self._accept(data)
        p = self.pending
        assert p is not None
        if p.key is None or p.rows is None or p.a is None or p.request.kind != Kind.COLUMNS:
            raise UnexpectedMessage("no batch is waiting for products")
        plan, he, pv = self.plan, self.he, self.privacy
        expect(len(msg.values) == 2, "products carry Σu_g and Σu_g²")
        expect(len(msg.blobs) == 1 + plan.products, f"{plan.products} products expected")
        t0s = unpack_ints(msg.blobs[0], plan.readings, he.q0)
        readings: list[int] = []
        for c1, size in zip(msg.blobs[1:], plan.product_sizes(), strict=True):
            t0, t0s = tuple(t0s[:size]), t0s[size:]
            readings.extend(p.key.read(SumOnly(c1, t0), positions(size, plan.batch_size)))
        p.key = None  # the batch key is used for this batch only
        kb = plan.bank_columns + 1
        cu = np.asarray([he.from_coefficient(r) for r in readings[:kb]])  # Σ c·u_g, Σ a·u_g
        sum_u, sum_u2 = msg.values
        expect(sum_u2 >= -1.0, "Σu_g² cannot be negative")
        n, y, a = len(p.rows), self.y[p.rows], p.a
        zb = self.z[p.rows]
        grad_sums = np.append(zb.T @ a + 0.25 * cu[:-1], a.sum() + 0.25 * sum_u)
        w = np.asarray(self.state.weights)
        reg = np.append(np.full(plan.bank_columns, plan.l2), 0.0)
        p.grad = grad_sums / n + reg * w
        u_b = 4.0 * a + 2.0 * y
        p.loss = (
            math.log(2.0)
            + (float(np.sum(-0.5 * y * u_b + 0.125 * u_b * u_b)) + cu[-1] + 0.125 * sum_u2) / n
        )
        # The gateway's readings: flooded in coefficient units, rounded to the grid.
        unit = he.coefficient_per_unit
        grid = max(1, round(unit * 2.0**-pv.round_bits))
        flood = secure_gaussian(plan.gateway_columns, pv.sum_sigma) * unit
        out = []
        for r, f in zip(readings[kb:], flood, strict=True):
            v = (r + round(float(f))) % he.q0
            out.append((round(v / grid) * grid) % he.q0)
        msg2, raw = self._request(Kind.GATEWAY_SUMS, msg.epoch, msg.batch, blobs=(pack_ints(out),))
        p.request, p.raw = msg2, raw
        return raw

    def on_done(self, data: bytes) -> BatchResult:
        msg = self._accept(data)
        p = self.pending
        assert p is not None
        if p.grad is None or p.rows is None:
            raise UnexpectedMessage("no batch is waiting for confirmation")
        expect(not msg.values and not msg.blobs, "batch_done carries nothing")
        st = self.state
        take_step(self.plan, st, p.grad)
        result = BatchResult(msg.epoch, msg.batch, len(p.rows), p.loss)
        st.history.append(result)
        self.pending = None
        return result

    # Validation ---------------------------------------------------------------------------

    def validation_auc(self) -> float | None:
        """The AUC of the bank's own half of the logit on its validation rows: all the bank
        can compute by itself. The gateway sends no per-row value (its share of a
        validation logit would be the scoring answer for that enterprise)."""
        if self.plan.n_validation == 0:
            return None
        return roc_auc(self.y_val, self.z_val @ self.weights + self.intercept)

    @property
    def last_request(self) -> bytes | None:
        """The frame of the pending request (for a retransmission after a dropped
        connection)."""
        return None if self.pending is None else self.pending.raw
