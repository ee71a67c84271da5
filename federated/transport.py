"""Moving training frames between the bank and the gateway, and the bank's driving loop.

The bank makes every request; the gateway answers each with exactly one frame (or a
refusal). A :class:`Channel` is that conversation seen from the bank: ``send`` a request,
``receive`` its answer (so the bank can compute while the gateway works). Three
implementations: in-process (tests), a ``multiprocessing`` pipe to a gateway process (the
simulation) and HTTP to a running gateway. All carry the same bytes.

Invariants:
- a channel never interprets or alters frames; it only counts their bytes;
- a refusal from the gateway arrives as :class:`PeerRefused` carrying the gateway's code;
  a connection that failed arrives as :class:`ConnectionLost`, after which
  :func:`run_bank` asks the gateway where it is and resumes from its last completed batch
  (restarting the pending batch, or retransmitting the last request byte for byte when
  the gateway completed the batch but its answer was lost).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, Protocol

import httpx

from common.errors import Conflict, Error
from common.logging import get_logger
from federated.errors import (
    ConnectionLost as ConnectionLost,
)
from federated.errors import (
    PeerRefused as PeerRefused,
)
from federated.training import BankTrainer, BatchResult, GatewayTrainer, Kind

log = get_logger("federated.transport")

ERROR_MAGIC = b"XYER"
CLOSE = b"XYBYE"


@dataclass(frozen=True)
class GatewayStatus:
    """Where the gateway is: the next batch it will run and the last request it took."""

    next_epoch: int
    next_batch: int
    last_seq: int
    finished: bool


@dataclass
class Traffic:
    """Bytes the bank sent and received, in total and per epoch."""

    sent: int = 0
    received: int = 0
    messages: int = 0
    per_epoch: dict[int, list[int]] = field(default_factory=dict)
    epoch: int = 0

    def count(self, sent: int = 0, received: int = 0) -> None:
        self.sent += sent
        self.received += received
        self.messages += 1 if sent else 0
        row = self.per_epoch.setdefault(self.epoch, [0, 0])
        row[0] += sent
        row[1] += received


class Channel(Protocol):
    traffic: Traffic

    def send(self, request: bytes) -> None: ...

    def receive(self) -> bytes: ...

    def status(self) -> GatewayStatus: ...


def error_frame(e: Error) -> bytes:
    return ERROR_MAGIC + json.dumps({"error": e.code, "message": e.message}).encode()


def raise_if_error(frame: bytes) -> bytes:
    if frame.startswith(ERROR_MAGIC):
        try:
            body = json.loads(frame[len(ERROR_MAGIC) :])
            code, message = str(body["error"]), str(body["message"])
        except (ValueError, KeyError, TypeError) as e:
            raise PeerRefused("the gateway refused the message (unreadable reason)") from e
        raise PeerRefused(message, code=code)
    return frame


def gateway_status(gateway: GatewayTrainer) -> GatewayStatus:
    st = gateway.state
    return GatewayStatus(st.next_epoch, st.next_batch, st.last_seq, gateway.finished)


class LocalChannel:
    """The gateway in the same process (tests): ``send`` runs the gateway's step."""

    def __init__(self, gateway: GatewayTrainer) -> None:
        self.gateway = gateway
        self.traffic = Traffic()
        self._answer: bytes | Error | None = None

    def send(self, request: bytes) -> None:
        self.traffic.count(sent=len(request))
        try:
            self._answer = self.gateway.handle(request)
        except Error as e:
            self._answer = e

    def receive(self) -> bytes:
        answer, self._answer = self._answer, None
        if answer is None:
            raise ConnectionLost("no request is outstanding")
        if isinstance(answer, Error):
            raise PeerRefused(answer.message, code=answer.code)
        self.traffic.count(received=len(answer))
        return answer

    def status(self) -> GatewayStatus:
        return gateway_status(self.gateway)


class PipeChannel:
    """The gateway in another process, over a ``multiprocessing`` pipe (the simulation).
    Status requests travel as a JSON frame ``XYSTATUS``."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.traffic = Traffic()

    def send(self, request: bytes) -> None:
        self.conn.send_bytes(request)
        self.traffic.count(sent=len(request))

    def receive(self) -> bytes:
        try:
            frame = self.conn.recv_bytes()
        except (EOFError, OSError) as e:
            raise ConnectionLost("the gateway process went away") from e
        self.traffic.count(received=len(frame))
        return raise_if_error(frame)

    def status(self) -> GatewayStatus:
        self.conn.send_bytes(b"XYSTATUS")
        return GatewayStatus(**json.loads(self.conn.recv_bytes()))

    def close(self) -> None:
        self.conn.send_bytes(CLOSE)


def serve_pipe(gateway: GatewayTrainer, conn: Connection) -> None:
    """The gateway's loop in the simulation: answer frames until the bank closes."""
    while True:
        try:
            frame = conn.recv_bytes()
        except EOFError:
            return
        if frame == CLOSE:
            return
        if frame == b"XYSTATUS":
            s = gateway_status(gateway)
            conn.send_bytes(json.dumps(s.__dict__).encode())
            continue
        try:
            conn.send_bytes(gateway.handle(frame))
        except Error as e:
            log.info("training_message_refused", code=e.code)
            conn.send_bytes(error_frame(e))


class HttpChannel:
    """A running gateway over HTTP: ``POST /v1/training/sessions/{id}/messages`` with the
    frame as ``application/octet-stream``. ``client`` carries the base URL and the bank's
    bearer token; ``send`` starts the request in a thread so the bank can compute
    meanwhile."""

    def __init__(self, client: httpx.Client, session_id: str) -> None:
        self.client = client
        self.session_id = session_id
        self.traffic = Traffic()
        self._thread: threading.Thread | None = None
        self._result: bytes | Error | None = None

    @property
    def path(self) -> str:
        return f"/v1/training/sessions/{self.session_id}"

    def _post(self, request: bytes) -> None:
        try:
            r = self.client.post(
                self.path + "/messages",
                content=request,
                headers={"Content-Type": "application/octet-stream"},
            )
        except httpx.HTTPError as e:
            self._result = ConnectionLost(f"the connection to the gateway failed: {e}")
            return
        if r.status_code == 200:
            self._result = r.content
            return
        self._result = _http_error(r)

    def send(self, request: bytes) -> None:
        self.traffic.count(sent=len(request))
        self._result = None
        self._thread = threading.Thread(target=self._post, args=(request,), daemon=True)
        self._thread.start()

    def receive(self) -> bytes:
        if self._thread is None:
            raise ConnectionLost("no request is outstanding")
        self._thread.join()
        self._thread = None
        result, self._result = self._result, None
        if isinstance(result, Error):
            raise result
        if result is None:
            raise ConnectionLost("the request ended without an answer")
        self.traffic.count(received=len(result))
        return result

    def status(self) -> GatewayStatus:
        try:
            r = self.client.get(self.path)
        except httpx.HTTPError as e:
            raise ConnectionLost(f"the connection to the gateway failed: {e}") from e
        if r.status_code != 200:
            raise _http_error(r)
        body = r.json()
        return GatewayStatus(
            int(body["next_epoch"]),
            int(body["next_batch"]),
            int(body["last_seq"]),
            body["state"] == "finished" or bool(body.get("training_finished")),
        )


def _http_error(r: httpx.Response) -> Error:
    if r.status_code >= 500:
        return ConnectionLost(f"the gateway answered {r.status_code}")
    try:
        body = r.json()
        return PeerRefused(str(body["message"]), code=str(body["error"]))
    except (ValueError, KeyError, TypeError):
        return PeerRefused(f"the gateway answered {r.status_code}")


# The bank's loop ----------------------------------------------------------------------------


@dataclass(frozen=True)
class EpochResult:
    epoch: int
    loss: float  # row-weighted mean Taylor loss of the epoch's batches
    validation_auc: float | None  # of the bank's half alone (no per-row gateway value)
    seconds: float
    sent: int
    received: int

    def report(self) -> dict[str, Any]:
        """This epoch as a row of a training report (JSON)."""
        return {
            "epoch": self.epoch + 1,
            "loss": round(float(self.loss), 6),
            "validation_auc": None
            if self.validation_auc is None
            else round(self.validation_auc, 6),
            "seconds": round(self.seconds, 3),
            "bank_to_gateway": self.sent,
            "gateway_to_bank": self.received,
        }


def _one_batch(bank: BankTrainer, channel: Channel) -> BatchResult:
    channel.send(bank.batch_request())
    bank.prepare_next()  # overlaps with the gateway's products
    channel.send(bank.on_products(channel.receive()))
    return bank.on_done(channel.receive())


def _recover(bank: BankTrainer, channel: Channel) -> BatchResult | None:
    """After ConnectionLost: find out where the gateway is and line up with it."""
    status = channel.status()
    bank.resync(status.last_seq)
    st = bank.state
    here = (st.next_epoch, st.next_batch)
    if (status.next_epoch, status.next_batch) == here:
        log.info("training_batch_restart", epoch=here[0], batch=here[1])
        return None  # the gateway did not complete the batch: run it again
    pending = bank.pending
    ahead = (here[0], here[1] + 1)
    if here[1] + 1 == bank.plan.batches_per_epoch:
        ahead = (here[0] + 1, 0)
    if (
        (status.next_epoch, status.next_batch) == ahead
        and pending is not None
        and pending.request.kind == Kind.GATEWAY_SUMS
    ):
        log.info("training_retransmit", epoch=here[0], batch=here[1])
        channel.send(pending.raw)
        return bank.on_done(channel.receive())
    raise Conflict(
        f"the gateway is at batch ({status.next_epoch}, {status.next_batch}), the bank at "
        f"{here}: the session cannot be resumed",
        code="training_out_of_step",
    )


def run_bank(
    bank: BankTrainer,
    channel: Channel,
    *,
    on_batch: Callable[[BatchResult], None] | None = None,
    on_epoch: Callable[[EpochResult], None] | None = None,
    max_reconnects: int = 20,
    reconnect_wait: float = 0.5,
) -> list[EpochResult]:
    """Run every remaining batch of ``bank``'s plan (the per-epoch validation AUC is the
    bank's own half on its validation rows: ``BankTrainer.validation_auc``)."""
    epochs: list[EpochResult] = []
    losses: list[tuple[int, float]] = []
    started = time.perf_counter()
    traffic_mark = (channel.traffic.sent, channel.traffic.received)
    reconnects = 0
    while not bank.finished:
        channel.traffic.epoch = bank.state.next_epoch
        try:
            result = _one_batch(bank, channel)
        except ConnectionLost as e:
            reconnects += 1
            if reconnects > max_reconnects:
                raise
            log.warning("training_connection_lost", detail=e.message[:200], attempt=reconnects)
            time.sleep(reconnect_wait)
            recovered = _with_retries(
                lambda: _recover(bank, channel), max_reconnects, reconnect_wait
            )
            if recovered is None:
                continue
            result = recovered
        losses.append((result.rows, result.loss))
        if on_batch:
            on_batch(result)
        if result.batch == bank.plan.batches_per_epoch - 1:
            auc = bank.validation_auc()
            rows = sum(n for n, _ in losses)
            ep = EpochResult(
                epoch=result.epoch,
                loss=sum(n * loss for n, loss in losses) / rows,
                validation_auc=auc,
                seconds=time.perf_counter() - started,
                sent=channel.traffic.sent - traffic_mark[0],
                received=channel.traffic.received - traffic_mark[1],
            )
            epochs.append(ep)
            if on_epoch:
                on_epoch(ep)
            losses = []
            started = time.perf_counter()
            traffic_mark = (channel.traffic.sent, channel.traffic.received)
    return epochs


def _with_retries(step: Callable[[], Any], attempts: int, wait: float) -> Any:
    for attempt in range(attempts):
        try:
            return step()
        except ConnectionLost:
            if attempt == attempts - 1:
                raise
            time.sleep(wait)
    raise AssertionError("unreachable")
