"""The training protocol on two CSV files, with the bank and the gateway in two processes.

Each party process reads only its own CSV, standardizes its own columns, makes its own
CKKS key pair and sends the other only its public context; from then on they exchange
exactly the frames of ``federated.training`` over a pipe (real encryption, the same bytes
as over HTTP). The parent process reads only the id columns (standing in for private set
intersection) and, at the end, receives each party's half of the model, as the model
registry would. Nothing else crosses between the processes.

Rows: the ids present in both files, in the bank file's order. With a train-id list, the
listed ids train and the other common ids validate; without one, a seeded
``validation_fraction`` of them validates.
"""

from __future__ import annotations

import csv
import dataclasses
import multiprocessing as mp
import queue
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

from common.errors import Error, InvalidInput, Unavailable
from federated.models import JointModel, Standardization
from federated.training import (
    BankTrainer,
    GatewayTrainer,
    Privacy,
    TrainingPlan,
    auto_batch_size,
    fold_bank_half,
    joint_model,
    labels_pm1,
)
from federated.transport import EpochResult, PipeChannel, run_bank, serve_pipe

MAX_CSV_ROWS = 5_000_000


@dataclass(frozen=True)
class PartyTable:
    ids: list[str]
    features: tuple[str, ...]
    x: np.ndarray
    y: np.ndarray | None


def read_ids(path: Path | str, id_column: str) -> list[str]:
    """The id column only (what the parties would compare in a set intersection)."""
    ids: list[str] = []
    with _open(path) as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or id_column not in reader.fieldnames:
            raise InvalidInput(f"{path}: no column {id_column!r}", code="invalid_csv")
        for row in reader:
            ids.append((row[id_column] or "").strip())
    return ids


def read_party_csv(path: Path | str, id_column: str, label_column: str | None = None) -> PartyTable:
    """A party's CSV: an id column, optionally a 0/1 (or −1/1) label column, and numeric
    feature columns (every other column). Every bad cell is reported with its line."""
    with _open(path) as f:
        reader = csv.reader(f)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration as e:
            raise InvalidInput(f"{path}: the file is empty", code="invalid_csv") from e
        if len(set(header)) != len(header):
            raise InvalidInput(f"{path}: duplicate column names", code="invalid_csv")
        if id_column not in header:
            raise InvalidInput(f"{path}: no id column {id_column!r}", code="invalid_csv")
        if label_column is not None and label_column not in header:
            raise InvalidInput(f"{path}: no label column {label_column!r}", code="invalid_csv")
        id_at = header.index(id_column)
        label_at = header.index(label_column) if label_column is not None else -1
        feature_at = [i for i in range(len(header)) if i not in (id_at, label_at)]
        if not feature_at:
            raise InvalidInput(f"{path}: no feature columns", code="invalid_csv")
        ids: list[str] = []
        rows: list[list[float]] = []
        labels: list[float] = []
        seen: set[str] = set()
        problems: list[str] = []
        for line, row in enumerate(reader, start=2):
            if len(rows) >= MAX_CSV_ROWS:
                raise InvalidInput(f"{path}: more than {MAX_CSV_ROWS} rows", code="invalid_csv")
            if len(row) != len(header):
                problems.append(f"line {line}: {len(row)} cells, expected {len(header)}")
                continue
            rid = row[id_at].strip()
            if not rid or rid in seen:
                problems.append(f"line {line}: empty or duplicate id")
                continue
            try:
                values = [float(row[i]) for i in feature_at]
                label = float(row[label_at]) if label_at >= 0 else 0.0
            except ValueError:
                problems.append(f"line {line}: a feature or label is not a number")
                continue
            if not all(np.isfinite(values)) or not np.isfinite(label):
                problems.append(f"line {line}: a value is not finite")
                continue
            seen.add(rid)
            ids.append(rid)
            rows.append(values)
            labels.append(label)
    if problems:
        shown = "; ".join(problems[:10])
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        raise InvalidInput(f"{path}: {shown}{more}", code="invalid_csv", problems=problems)
    x = np.asarray(rows, dtype=np.float64).reshape(len(rows), len(feature_at))
    y = labels_pm1(np.asarray(labels)) if label_column is not None else None
    return PartyTable(ids, tuple(header[i] for i in feature_at), x, y)


def _open(path: Path | str) -> Any:
    try:
        return open(path, newline="", encoding="utf-8-sig")
    except OSError as e:
        raise InvalidInput(f"{path}: cannot be read: {e.strerror}", code="invalid_csv") from e


@dataclass(frozen=True)
class SimulationConfig:
    epochs: int = 16
    batch_size: int | None = None  # None: auto_batch_size
    learning_rate: float = 0.1
    l2: float = 1e-4
    seed: int = 0
    bank_clip: float | None = 3.0
    gateway_clip: float | None = 3.0
    validation_fraction: float = 0.1
    privacy: Privacy = field(default_factory=Privacy)
    progress: bool = False


@dataclass(frozen=True)
class Split:
    train: list[str]
    validation: list[str]


def split_rows(
    bank_ids: Sequence[str],
    gateway_ids: Sequence[str],
    train_ids: Sequence[str] | None,
    validation_fraction: float,
    seed: int,
) -> Split:
    """Common ids in the bank's order; the train list (or a seeded fraction) trains."""
    at_gateway = set(gateway_ids)
    common = [i for i in bank_ids if i in at_gateway]
    if train_ids is not None:
        wanted = set(train_ids)
        train = [i for i in common if i in wanted]
        validation = [i for i in common if i not in wanted]
    else:
        if not 0 <= validation_fraction < 1:
            raise InvalidInput("validation_fraction must be in [0, 1)")
        rng = np.random.default_rng(seed)
        is_val = rng.random(len(common)) < validation_fraction
        train = [i for i, v in zip(common, is_val, strict=True) if not v]
        validation = [i for i, v in zip(common, is_val, strict=True) if v]
    if len(train) < 2:
        raise InvalidInput(
            f"only {len(train)} training rows are common to both files", code="too_few_rows"
        )
    return Split(train, validation)


def _select(table: PartyTable, ids: Sequence[str]) -> np.ndarray:
    where = {rid: k for k, rid in enumerate(table.ids)}
    return np.asarray([where[i] for i in ids], dtype=np.int64)


# The two party processes ------------------------------------------------------------------


def _bank_process(
    conn: Connection,
    results: Any,
    path: str,
    id_column: str,
    label_column: str,
    split: Split,
    plan: TrainingPlan,
    clip: float | None,
    privacy: Privacy,
    progress: bool,
) -> None:
    try:
        t0 = time.perf_counter()
        table = read_party_csv(path, id_column, label_column)
        tr, va = _select(table, split.train), _select(table, split.validation)
        assert table.y is not None
        std = Standardization.fit(table.x[tr], clip)
        channel = PipeChannel(conn)
        bank = BankTrainer(
            plan,
            std.apply(table.x[tr]),
            table.y[tr],
            std.apply(table.x[va]),
            table.y[va],
            privacy=privacy,
        )
        setup = time.perf_counter() - t0
        bar = _progress(plan) if progress else None
        t1, cpu1 = time.perf_counter(), time.process_time()
        epochs = run_bank(
            bank,
            channel,
            on_batch=(lambda r: bar.update(1)) if bar is not None else None,
            on_epoch=(lambda e: _describe(bar, e, t1)) if bar is not None else None,
        )
        training, cpu = time.perf_counter() - t1, time.process_time() - cpu1
        if bar is not None:
            bar.close()
        channel.close()
        half = fold_bank_half(table.features, bank.weights, bank.intercept, std)
        results.put(
            (
                "bank",
                {
                    "half": half,
                    "epochs": epochs,
                    "setup_seconds": setup,
                    "training_seconds": training,
                    "cpu_seconds": cpu,
                    "sent": channel.traffic.sent,
                    "received": channel.traffic.received,
                    "messages": channel.traffic.messages,
                    "per_epoch": channel.traffic.per_epoch,
                    "losses": [r.loss for r in bank.state.history],
                },
            )
        )
    except Error as e:
        results.put(("error", {"party": "bank", "code": e.code, "message": e.message}))
    except Exception:  # the parent must learn why a party died, not hang
        results.put(
            ("error", {"party": "bank", "code": "crash", "message": traceback.format_exc()})
        )


def _gateway_process(
    conn: Connection,
    results: Any,
    path: str,
    id_column: str,
    split: Split,
    plan: TrainingPlan,
    clip: float | None,
    privacy: Privacy,
) -> None:
    try:
        table = read_party_csv(path, id_column)
        tr = _select(table, split.train)
        std = Standardization.fit(table.x[tr], clip)
        gateway = GatewayTrainer(plan, std.apply(table.x[tr]), privacy=privacy)
        cpu0 = time.process_time()
        serve_pipe(gateway, conn)
        cpu = time.process_time() - cpu0
        half = (table.features, tuple(float(v) for v in gateway.weights), std)
        results.put(("gateway", {"half": half, "cpu_seconds": cpu}))
    except Error as e:
        results.put(("error", {"party": "gateway", "code": e.code, "message": e.message}))
    except Exception:  # the parent must learn why a party died, not hang
        results.put(
            ("error", {"party": "gateway", "code": "crash", "message": traceback.format_exc()})
        )


def _progress(plan: TrainingPlan) -> Any:
    from tqdm import tqdm

    return tqdm(total=plan.total_steps, unit="batch", desc="epoch 1", leave=True)


def _describe(bar: Any, e: EpochResult, started: float) -> None:
    auc = "" if e.validation_auc is None else f" auc={e.validation_auc:.4f}"
    bar.set_description(f"epoch {e.epoch + 1}")
    bar.set_postfix_str(f"loss={e.loss:.4f}{auc} {time.perf_counter() - started:.1f}s")


# The parent -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SimulationResult:
    model: JointModel
    report: dict[str, Any]


def simulate(
    bank_csv: Path | str,
    gateway_csv: Path | str,
    *,
    id_column: str,
    label_column: str,
    train_ids: Sequence[str] | None = None,
    config: SimulationConfig | None = None,
    model_id: str = "federated",
    timeout: float = 3600.0,
) -> SimulationResult:
    """Train with both parties in their own processes; return the joint model and a
    report (wall time, bytes each way and per epoch, loss and validation AUC per epoch)."""
    cfg = config or SimulationConfig()
    started = time.perf_counter()
    bank_ids = read_ids(bank_csv, id_column)
    gateway_ids = read_ids(gateway_csv, id_column)
    split = split_rows(bank_ids, gateway_ids, train_ids, cfg.validation_fraction, cfg.seed)
    bank_cols = _feature_count(bank_csv, (id_column, label_column), required=label_column)
    gateway_cols = _feature_count(gateway_csv, (id_column,))
    plan = TrainingPlan(
        session=f"sim-{model_id}"[:64],
        n_train=len(split.train),
        n_validation=len(split.validation),
        bank_columns=bank_cols,
        gateway_columns=gateway_cols,
        epochs=cfg.epochs,
        batch_size=cfg.batch_size or auto_batch_size(len(split.train)),
        learning_rate=cfg.learning_rate,
        l2=cfg.l2,
        seed=cfg.seed,
    )
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    bank_end, gateway_end = ctx.Pipe(duplex=True)
    bank = ctx.Process(
        target=_bank_process,
        args=(
            bank_end,
            results,
            str(bank_csv),
            id_column,
            label_column,
            split,
            plan,
            cfg.bank_clip,
            cfg.privacy,
            cfg.progress,
        ),
        name="xinyi-sim-bank",
    )
    gateway = ctx.Process(
        target=_gateway_process,
        args=(
            gateway_end,
            results,
            str(gateway_csv),
            id_column,
            split,
            plan,
            cfg.gateway_clip,
            cfg.privacy,
        ),
        name="xinyi-sim-gateway",
    )
    bank.start()
    gateway.start()
    got: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout
    try:
        while len(got) < 2:
            try:
                kind, payload = results.get(timeout=0.5)
            except queue.Empty:
                dead = [p.name for p in (bank, gateway) if p.exitcode not in (None, 0)]
                if dead:
                    raise Unavailable(
                        f"{', '.join(dead)} exited without a result", code="simulation_failed"
                    ) from None
                if time.monotonic() > deadline:
                    raise Unavailable(
                        "the simulation timed out", code="simulation_timeout"
                    ) from None
                continue
            if kind == "error":
                raise Error(
                    f"the {payload['party']} process failed: {payload['message']}",
                    code=payload["code"],
                )
            got[kind] = payload
    finally:
        for p in (bank, gateway):
            p.join(timeout=10)
            if p.is_alive():
                p.terminate()
                p.join()
    wall = time.perf_counter() - started
    b, g = got["bank"], got["gateway"]
    features, weights, standardization = g["half"]
    model = joint_model(model_id, features, weights, standardization, b["half"])
    epochs: list[EpochResult] = b["epochs"]
    report = {
        "model_id": model_id,
        "rows": {"train": plan.n_train, "validation": plan.n_validation},
        "features": {"bank": bank_cols, "gateway": gateway_cols},
        "plan": plan.as_dict(),
        "privacy": dataclasses.asdict(cfg.privacy),
        "clip": {"bank": cfg.bank_clip, "gateway": cfg.gateway_clip},
        "seconds": {
            "wall": round(wall, 2),
            "training": round(b["training_seconds"], 2),
            "bank_setup": round(b["setup_seconds"], 2),
            # CPU time of each party's training (the machine may be shared: wall time
            # alone depends on what else runs)
            "cpu_bank": round(b["cpu_seconds"], 2),
            "cpu_gateway": round(g["cpu_seconds"], 2),
        },
        "bytes": {
            "bank_to_gateway": b["sent"],
            "gateway_to_bank": b["received"],
            "per_epoch": [
                {"epoch": ep, "bank_to_gateway": s, "gateway_to_bank": r}
                for ep, (s, r) in sorted(b["per_epoch"].items())
            ],
        },
        "messages": b["messages"],
        "epochs": [e.report() for e in epochs],
    }
    return SimulationResult(model, report)


def _feature_count(
    path: Path | str, not_features: Sequence[str], *, required: str | None = None
) -> int:
    """Checked before any process starts: the header names the columns asked for."""
    with _open(path) as f:
        try:
            header = [h.strip() for h in next(csv.reader(f))]
        except StopIteration as e:
            raise InvalidInput(f"{path}: the file is empty", code="invalid_csv") from e
    if required is not None and required not in header:
        raise InvalidInput(f"{path}: no column {required!r}", code="invalid_csv")
    count = len([h for h in header if h not in not_features])
    if count == 0:
        raise InvalidInput(f"{path}: no feature columns", code="invalid_csv")
    return count
