"""The gateway's state machine. It holds no CKKS secret key and never decrypts: it
multiplies the bank's per-batch ciphertexts by its plaintext columns and returns sum-only
products (``federated.he.sumonly``).

Per batch R (u_g = Z_g[R]·w_g):
- ``columns`` → ``products``: for each bank column c (its features and a), the sum-only
  Σ c·(u_g + ν) with Gaussian noise T on its readable coefficient; for each gateway
  column j, the sum-only Σ a·z_gj padded with M_j uniform mod q0 (kept in the state);
  and Σu_g, Σu_g² with Gaussian noise, rounded. Columns travel in blocks of the
  coefficient encoding, several inner products per product (``TrainingPlan.reps``).
- ``gateway_sums`` → ``batch_done``: the bank's readings Σ a·z_gj + M_j (flooded by the
  bank); the gateway removes M_j, adds ¼Σ z_gj·u_g, clips the gradient to what an honest
  residual allows, and takes its Adam step.

A message is processed once: a strictly increasing ``seq``; a byte-identical
retransmission of the last request gets the stored answer (only small answers are kept,
so products are never computed twice for the same request); only the kind its phase
expects, only the batch it is at; a batch restarts at most ``max_restarts`` times. On any
refusal the state is left exactly as it was."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from federated.he import SumOnlyContext
from federated.he.sumonly import positions, reversed_blocks
from federated.sampling import secure_below, secure_gaussian
from federated.training.optimizer import take_step
from federated.training.plan import InvalidPlan, Privacy, TrainingPlan, check_matrix
from federated.training.wire import (
    ANSWER,
    STORED_RESPONSE_BYTES,
    Kind,
    Message,
    ReplayedMessage,
    RestartLimit,
    TrainingFinished,
    UnexpectedMessage,
    digest,
    expect,
    pack_ints,
    unpack_ints,
)


@dataclass
class GatewayState:
    """Everything the gateway keeps between messages (persisted by the HTTP layer)."""

    weights: list[float]
    adam_m: list[float]
    adam_v: list[float]
    step: int = 0
    next_epoch: int = 0
    next_batch: int = 0
    phase: str = "idle"  # idle → products → (batch complete) idle
    restarts: int = 0
    last_seq: int = 0
    last_request: str | None = None
    last_response: bytes | None = None
    pads: list[int] | None = None  # M_j of the batch in flight (mod q0)

    @classmethod
    def initial(cls, columns: int) -> GatewayState:
        return cls([0.0] * columns, [0.0] * columns, [0.0] * columns)

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["last_response"] = None if self.last_response is None else self.last_response.hex()
        d["pads"] = None if self.pads is None else [str(p) for p in self.pads]
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> GatewayState:
        d = dict(d)
        raw = d.get("last_response")
        d["last_response"] = None if raw is None else bytes.fromhex(raw)
        pads = d.get("pads")
        d["pads"] = None if pads is None else [int(p) for p in pads]
        d.pop("mask_sums", None)  # a state stored by the previous protocol version
        return cls(**d)


class GatewayTrainer:
    """The gateway's steps: ``handle`` takes one request frame from the bank and returns
    the answer frame."""

    def __init__(
        self,
        plan: TrainingPlan,
        train_features: np.ndarray,
        *,
        privacy: Privacy | None = None,
        state: GatewayState | None = None,
        he: SumOnlyContext | None = None,
    ) -> None:
        self.plan = plan
        self.z = check_matrix(
            train_features, plan.n_train, plan.gateway_columns, "gateway training features"
        )
        self.privacy = privacy or Privacy()
        self.state = state or GatewayState.initial(plan.gateway_columns)
        self.he = he or SumOnlyContext(plan.params)
        if self.he.params != plan.params:
            raise InvalidPlan("the HE context must have the plan's CKKS parameters")

    @property
    def finished(self) -> bool:
        return self.state.next_epoch >= self.plan.epochs

    @property
    def weights(self) -> np.ndarray:
        return np.asarray(self.state.weights)

    def handle(self, request: bytes) -> bytes:
        msg = Message.from_bytes(request)
        if msg.session != self.plan.session:
            raise UnexpectedMessage("the message belongs to another training session")
        st = self.state
        if msg.seq <= st.last_seq:
            if (
                msg.seq == st.last_seq
                and st.last_request == digest(request)
                and st.last_response is not None
            ):
                return st.last_response  # a retransmission: nothing is recomputed
            raise ReplayedMessage(
                f"message {msg.seq} was already processed (last {st.last_seq}); not again"
            )
        if msg.kind == Kind.COLUMNS:
            answer, new = self._columns(msg)
        elif msg.kind == Kind.GATEWAY_SUMS:
            answer, new = self._gateway_sums(msg)
        else:
            raise UnexpectedMessage(f"the gateway does not accept {msg.kind.value} messages")
        out = answer.to_bytes()
        new.last_seq = msg.seq
        new.last_request = digest(request)
        new.last_response = out if len(out) <= STORED_RESPONSE_BYTES else None
        self.state = new
        return out

    def _answer(self, msg: Message, **kw: Any) -> Message:
        return Message(ANSWER[msg.kind], self.plan.session, msg.seq, msg.epoch, msg.batch, **kw)

    def _at_batch(self, msg: Message) -> None:
        st = self.state
        if self.finished:
            raise TrainingFinished("the training has finished")
        if (msg.epoch, msg.batch) != (st.next_epoch, st.next_batch):
            raise UnexpectedMessage(
                f"the gateway is at batch ({st.next_epoch}, {st.next_batch}), "
                f"not ({msg.epoch}, {msg.batch})"
            )

    def _u(self, epoch: int, batch: int) -> tuple[np.ndarray, np.ndarray]:
        rows = self.plan.batch_rows(epoch, batch)
        return self.z[rows], self.z[rows] @ self.weights

    def _columns(self, msg: Message) -> tuple[Message, GatewayState]:
        self._at_batch(msg)
        plan, he, pv = self.plan, self.he, self.privacy
        st = dataclasses.replace(self.state)
        if st.phase != "idle":
            if st.restarts >= pv.max_restarts:
                raise RestartLimit(
                    f"batch ({msg.epoch}, {msg.batch}) was restarted {st.restarts} times"
                )
            st.restarts += 1
        expect(not msg.values, "a columns message carries no numbers")
        expect(
            len(msg.blobs) == 2 + plan.bank_ciphertexts,
            f"a columns message is the key seed, the key and {plan.bank_ciphertexts} ciphertexts",
        )
        key = he.public_key(msg.blobs[0], msg.blobs[1])
        inputs = [he.input_ciphertext(b) for b in msg.blobs[2:]]
        z, u = self._u(msg.epoch, msg.batch)
        n, block = len(u), plan.batch_size
        noisy_u = u + secure_gaussian(n, pv.row_sigma) if pv.row_sigma > 0 else u
        times_u = he.encode(reversed_blocks(noisy_u[:, None], block, he.n))
        products = []
        for i, size in enumerate(plan.product_sizes()[: plan.bank_ciphertexts]):
            noise = [he.to_coefficient(float(t)) for t in secure_gaussian(size, pv.sum_sigma)]
            products.append(key.product(inputs[i], times_u, positions(size, block), noise))
        pads = [secure_below(he.q0) for _ in range(plan.gateway_columns)]
        for g in range(plan.gateway_groups):
            cols = plan.gateway_group(g)
            times_z = he.encode(reversed_blocks(z[:, cols.start : cols.stop], block, he.n))
            readable = positions(len(cols), block)
            products.append(
                key.product(inputs[-1], times_z, readable, pads[cols.start : cols.stop])
            )
        t0s = [t for product in products for t in product.t0]
        sums = np.asarray([u.sum(), u @ u]) + secure_gaussian(2, pv.sum_sigma)
        grid = 2.0**pv.round_bits
        scalars = tuple(float(v) for v in np.round(sums * grid) / grid)
        st.phase, st.pads = "products", pads
        c1s = [product.c1 for product in products]
        answer = self._answer(msg, values=scalars, blobs=(pack_ints(t0s), *c1s))
        return answer, st

    def _gateway_sums(self, msg: Message) -> tuple[Message, GatewayState]:
        self._at_batch(msg)
        st = dataclasses.replace(self.state)
        if st.phase != "products" or st.pads is None:
            raise UnexpectedMessage(f"the gateway expects no gateway sums in phase {st.phase}")
        plan, he = self.plan, self.he
        expect(not msg.values and len(msg.blobs) == 1, "gateway sums are one blob of integers")
        readings = unpack_ints(msg.blobs[0], plan.gateway_columns, he.q0)
        z, u = self._u(msg.epoch, msg.batch)
        n = len(u)
        za = np.asarray(
            [he.from_coefficient(v - m) for v, m in zip(readings, st.pads, strict=True)]
        )
        grad = (za + 0.25 * (z.T @ u)) / n
        # An honest residual has |a| ≤ max_residual: a larger gradient is clipped to it.
        bound = np.abs(z).max(axis=0) * (self.privacy.max_residual + 0.25 * np.abs(u).max())
        grad = np.clip(grad, -bound, bound)
        take_step(plan, st, grad + plan.l2 * self.weights)
        st.pads, st.restarts = None, 0
        st.phase = "idle"
        return self._answer(msg), st
