"""The bank's side of federated training: its report, and training against a gateway.

Invariants:
- the bank's labels and features never leave this process in any readable form: the
  gateway receives only CKKS ciphertexts under a key pair the bank makes for one batch
  and drops after it, and flooded, rounded sums padded by the gateway
  (``federated.training``, ``docs/leakage.md``);
- this module talks to the gateway only over HTTP (it never imports the gateway's
  packages).
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from common.errors import InvalidInput
from federated.he import SecretContext
from federated.models import Standardization
from federated.training import (
    PARAMS,
    BankHalf,
    BankTrainer,
    TrainingPlan,
    fold_bank_half,
)
from federated.transport import ConnectionLost, EpochResult, HttpChannel, PeerRefused, run_bank


def write_report(report: dict[str, Any], path: Path) -> Path:
    """Write the training report as JSON at ``path`` and its plot (loss and validation
    AUC per epoch) as PNG beside it; returns the PNG's path."""
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    png = path.with_suffix(".png")
    plot_epochs(report.get("epochs", []), png, title=str(report.get("model_id", "")))
    return png


def plot_epochs(epochs: list[dict[str, Any]], png: Path, *, title: str = "") -> None:
    """Loss (left axis) and the validation AUC of the bank's half (right axis) per epoch."""
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    xs = [e["epoch"] for e in epochs]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    ax.plot(xs, [e["loss"] for e in epochs], marker="o", color="tab:blue", label="loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss (Taylor)", color="tab:blue")
    aucs = [(x, e["validation_auc"]) for x, e in zip(xs, epochs, strict=True)]
    aucs = [(x, a) for x, a in aucs if a is not None]
    if aucs:
        ax2 = ax.twinx()
        ax2.plot([x for x, _ in aucs], [a for _, a in aucs], marker="s", color="tab:red")
        ax2.set_ylabel("validation AUC (bank half)", color="tab:red")
    ax.set_title(f"federated training {title}".strip())
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png)
    plt.close(fig)


# Training against a gateway over HTTP ---------------------------------------------------------


class TokenAuth(httpx.Auth):
    """Bearer tokens from ``token(fresh=...)`` (e.g. ``GatewayClient.token``); one retry
    with a fresh token when the gateway answers 401."""

    def __init__(self, token: Callable[..., str]) -> None:
        self.token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.token(fresh=False)}"
        response = yield request
        if response.status_code == 401:
            request.headers["Authorization"] = f"Bearer {self.token(fresh=True)}"
            yield request


@dataclass(frozen=True)
class LoanBook:
    """The bank's labelled training data: one row per enterprise."""

    usccs: list[str]
    feature_names: tuple[str, ...]
    x: np.ndarray
    y: np.ndarray  # −1/1


def read_loan_book(
    path: Path,
    *,
    uscc_column: str = "uscc",
    label_column: str = "default",
    features: Sequence[str] | None = None,
    log1p: Sequence[str] = (),
) -> LoanBook:
    """A CSV with a USCC column, a 0/1 label column and numeric feature columns (all the
    others, or ``features``); bad cells are reported with their line. Columns in
    ``log1p`` become ``log1p(name)``: log(1 + max(x, 0)), as the scoring SDK computes
    them for a model's bank feature of that name."""
    from federated.simulate import read_party_csv

    table = read_party_csv(path, uscc_column, label_column)
    assert table.y is not None
    names = list(table.features)
    pick = list(range(len(names)))
    if features is not None:
        unknown = [f for f in features if f not in names]
        if unknown:
            raise InvalidInput(f"{path}: no column {unknown[0]!r}", code="invalid_csv")
        pick = [names.index(f) for f in features]
    x = table.x[:, pick].copy()
    out_names = []
    for j, k in enumerate(pick):
        if names[k] in log1p:
            x[:, j] = np.log1p(np.maximum(x[:, j], 0.0))
            out_names.append(f"log1p({names[k]})")
        else:
            out_names.append(names[k])
    return LoanBook(table.ids, tuple(out_names), x, table.y)


def train_grants(consents: Sequence[dict[str, Any]], categories: Sequence[str]) -> dict[str, str]:
    """For each enterprise, the grant of the newest active consent (by expiry) that
    allows op ``train`` on all of ``categories``."""
    best: dict[str, tuple[int, str]] = {}
    for c in consents:
        grant = c.get("grant")
        if (
            not isinstance(grant, str)
            or c.get("status", "active") != "active"
            or "train" not in c.get("ops", [])
            or not set(categories) <= set(c.get("categories", []))
        ):
            continue
        expires = int(c.get("expires_at") or 0)
        enterprise = str(c.get("enterprise"))
        if enterprise not in best or expires > best[enterprise][0]:
            best[enterprise] = (expires, grant)
    return {e: g for e, (_, g) in best.items()}


def grant_categories(http: httpx.Client, columns: Sequence[str]) -> list[str]:
    """The non-public catalog categories gateway columns read (``GET /v1/catalog``):
    what an op-train grant must cover. Public categories need no grant."""
    try:
        r = http.get("/v1/catalog")
    except httpx.HTTPError as e:
        raise ConnectionLost(f"GET /v1/catalog: the gateway cannot be reached: {e}") from e
    catalog = _check(r).get("categories", {})
    return [
        c
        for c in column_categories(columns)
        if not isinstance(catalog.get(c), dict) or catalog[c].get("visibility") != "public"
    ]


def column_categories(columns: Sequence[str]) -> list[str]:
    """The catalog categories gateway columns read: ``log1p(tax.paid_12m)`` → ``tax``."""
    out = set()
    for c in columns:
        inner = c[len("log1p(") : -1] if c.startswith("log1p(") and c.endswith(")") else c
        out.add(inner.split("=", 1)[0].split(".", 1)[0])
    return sorted(out)


@dataclass
class TrainingOutcome:
    session_id: str
    report: dict[str, Any]
    model: dict[str, Any] | None  # {"id", "version"} when registered
    bank_half: BankHalf


def _post(http: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    try:
        return _check(http.post(path, json=body))
    except httpx.HTTPError as e:
        raise ConnectionLost(f"POST {path}: the gateway cannot be reached: {e}") from e


def _check(r: httpx.Response) -> dict[str, Any]:
    try:
        body = r.json()
    except ValueError:
        body = None
    if r.status_code >= 400 or not isinstance(body, dict):
        code = body.get("error", "http_error") if isinstance(body, dict) else "http_error"
        message = body.get("message", r.text[:200]) if isinstance(body, dict) else r.text[:200]
        raise PeerRefused(f"{message} (HTTP {r.status_code})", code=str(code))
    return body


def train_with_gateway(
    http: httpx.Client,
    book: LoanBook,
    grants: dict[str, str],
    gateway_features: list[str],
    *,
    epochs: int = 16,
    batch_size: int | None = None,
    learning_rate: float = 0.1,
    l2: float = 1e-4,
    seed: int = 0,
    validation_fraction: float = 0.1,
    clip: float | None = 3.0,
    model_id: str | None = None,
    register: bool = False,
    progress: bool = True,
    say: Callable[[str], None] = print,
) -> TrainingOutcome:
    """Open a session for the rows of ``book`` that have a grant, train, finish.

    ``http`` carries the gateway's base URL and the bank's bearer token (``TokenAuth``).
    With ``register`` the bank consents to the joint model being served: its half goes
    to the gateway, which registers the model. Without it the bank keeps its half."""
    rows = [k for k, u in enumerate(book.usccs) if u in grants]
    missing = len(book.usccs) - len(rows)
    if missing:
        say(f"{missing} enterprises of the loan book have no op-train grant here: left out")
    rng = np.random.default_rng(seed)
    is_val = rng.random(len(rows)) < validation_fraction
    # The session's context declares the CKKS parameters; the keys that encrypt are made
    # per batch (BankTrainer) and never leave the bank.
    secret = SecretContext.generate(PARAMS)
    plan_options: dict[str, Any] = {
        "epochs": epochs,
        "learning_rate": learning_rate,
        "l2": l2,
        "seed": seed,
    }
    if batch_size:
        plan_options["batch_size"] = batch_size
    body = {
        "enterprises": [
            {"uscc": book.usccs[k], "grant": grants[book.usccs[k]], "validation": bool(v)}
            for k, v in zip(rows, is_val, strict=True)
        ],
        "gateway_features": gateway_features,
        "bank_features": list(book.feature_names),
        "context": base64.b64encode(secret.public_bytes()).decode("ascii"),
        "plan": plan_options,
        **({"model_id": model_id} if model_id else {}),
    }
    opened = _post(http, "/v1/training/sessions", body)
    session_id = str(opened["id"])
    refused = opened.get("refused", [])
    if refused:
        codes: dict[str, int] = {}
        for r in refused:
            codes[str(r.get("error"))] = codes.get(str(r.get("error")), 0) + 1
        listed = ", ".join(f"{n} {c}" for c, n in sorted(codes.items()))
        say(f"the gateway left out {len(refused)} enterprises ({listed}); training without them")
    plan = TrainingPlan.from_dict(opened["plan"])
    where = {u: k for k, u in enumerate(book.usccs)}
    train = np.asarray([where[u] for u in opened["train"]], dtype=np.int64)
    val = np.asarray([where[u] for u in opened["validation"]], dtype=np.int64)
    if plan.n_train != len(train) or plan.bank_columns != len(book.feature_names):
        raise PeerRefused("the gateway's plan does not match the session", code="bad_response")
    if plan.params != PARAMS:
        raise PeerRefused("the gateway's plan has other CKKS parameters", code="bad_response")
    std = Standardization.fit(book.x[train], clip)
    bank = BankTrainer(
        plan,
        std.apply(book.x[train]),
        book.y[train],
        std.apply(book.x[val]),
        book.y[val],
    )
    say(
        f"session {session_id}: {plan.n_train} enterprises train, {plan.n_validation} "
        f"validate, {plan.epochs} epochs of {plan.batches_per_epoch} batches"
    )
    channel = HttpChannel(http, session_id)
    started = time.perf_counter()
    bar = _bar(plan, progress)
    epochs_done = run_bank(
        bank,
        channel,
        on_batch=lambda r: bar.update(1) if bar is not None else None,
        on_epoch=lambda e: _describe(bar, e, started),
    )
    if bar is not None:
        bar.close()
    seconds = time.perf_counter() - started
    half = fold_bank_half(book.feature_names, bank.weights, bank.intercept, std)
    finish: dict[str, Any] = {"register": register}
    if register:
        finish["bank_half"] = {
            "bank_features": list(half.features),
            "bank_weights": list(half.weights),
            "intercept": half.intercept,
        }
        if model_id:
            finish["model_id"] = model_id
    done = _post(http, f"/v1/training/sessions/{session_id}/finish", finish)
    report = {
        "model_id": model_id or session_id,
        "session": session_id,
        "rows": {"train": plan.n_train, "validation": plan.n_validation},
        "refused": refused,
        "left_out_without_grant": missing,
        "plan": plan.as_dict(),
        "seconds": {"training": round(seconds, 2)},
        "bytes": {
            "bank_to_gateway": channel.traffic.sent,
            "gateway_to_bank": channel.traffic.received,
        },
        "epochs": [e.report() for e in epochs_done],
        "registered": done.get("model"),
        "bank_half": {
            "bank_features": list(half.features),
            "bank_weights": list(half.weights),
            "intercept": half.intercept,
        },
    }
    return TrainingOutcome(session_id, report, done.get("model"), half)


def _bar(plan: TrainingPlan, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=plan.total_steps, unit="batch", desc="epoch 1")


def _describe(bar: Any, e: EpochResult, started: float) -> None:
    if bar is None:
        return
    auc = "" if e.validation_auc is None else f" auc={e.validation_auc:.4f}"
    bar.set_description(f"epoch {e.epoch + 1}")
    bar.set_postfix_str(f"loss={e.loss:.4f}{auc} {time.perf_counter() - started:.1f}s")
