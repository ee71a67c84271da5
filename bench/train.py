"""Federated training against centralized scikit-learn on FATE's hetero data sets.

For each data set (bank = guest with the label ``y``, gateway = host; id column ``id``): a
70/30 stratified split with a fixed seed; the protocol runs with both parties in separate
processes (``federated.simulate``, real encryption) on the 70 %; the exported model (the
``xinyi models import`` formula on raw features) is scored on the 30 % holdout, and so are
scikit-learn's centralized ``LogisticRegression`` and the same algorithm without
encryption (same batches, same optimizer), which separates the Taylor approximation's
cost from the precision cost of the encryption, masking and flooding.

Data: ``$XINYI_FATE_DATA``, default ``../shared/data/fate`` from the repository root.
Run: ``python -m bench train``.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SEED = 42
EPOCHS = 16


def data_dir() -> Path:
    return Path(os.environ.get("XINYI_FATE_DATA") or ROOT.parent / "shared" / "data" / "fate")


def _dataset(
    name: str, guest: Path, host: Path, id_column: str, label: str, epochs: int = EPOCHS
) -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    from federated.models import Standardization
    from federated.simulate import SimulationConfig, read_party_csv, simulate
    from federated.training import (
        TrainingPlan,
        auto_batch_size,
        logits,
        roc_auc,
        train_plaintext,
    )

    bank = read_party_csv(guest, id_column, label)
    gateway = read_party_csv(host, id_column)
    assert bank.y is not None
    at = {rid: k for k, rid in enumerate(gateway.ids)}
    common = [k for k, rid in enumerate(bank.ids) if rid in at]
    xb = bank.x[common]
    xg = gateway.x[[at[bank.ids[k]] for k in common]]
    y = bank.y[common]
    ids = [bank.ids[k] for k in common]
    tr, te = train_test_split(np.arange(len(ids)), test_size=0.3, stratify=y, random_state=SEED)
    tr = np.sort(tr)  # the simulation keeps the bank file's order

    config = SimulationConfig(epochs=epochs, seed=SEED)
    result = simulate(
        guest,
        host,
        id_column=id_column,
        label_column=label,
        train_ids=[ids[k] for k in tr],
        config=config,
        model_id=f"bench-{name}",
    )
    auc_federated = roc_auc(y[te], logits(result.model, xg[te], xb[te]))

    central = LogisticRegression(max_iter=5000).fit(np.hstack([xb, xg])[tr], y[tr])
    auc_central = roc_auc(y[te], central.decision_function(np.hstack([xb, xg])[te]))

    sb = Standardization.fit(xb[tr], config.bank_clip)
    sg = Standardization.fit(xg[tr], config.gateway_clip)
    plan = TrainingPlan(
        "plain",
        len(tr),
        0,
        xb.shape[1],
        xg.shape[1],
        epochs=epochs,
        batch_size=auto_batch_size(len(tr)),
        seed=SEED,
    )
    wb, w0, wg = train_plaintext(plan, sb.apply(xb[tr]), y[tr], sg.apply(xg[tr]))
    # the same fold as the exported model: bank standardization folded, unclipped
    plain_logits = w0 + sb.apply(xb[te], clip=False) @ wb + sg.apply(xg[te]) @ wg
    auc_plain = roc_auc(y[te], plain_logits)
    he_wb = np.asarray(result.model.bank_weights) * np.asarray(sb.std)
    he_wg = np.asarray(result.model.gateway_weights)

    r = result.report
    n_epochs = len(r["epochs"])
    per_epoch = (r["bytes"]["bank_to_gateway"] + r["bytes"]["gateway_to_bank"]) / n_epochs
    return {
        "rows": {"train": len(tr), "holdout": len(te)},
        "features": {"bank": xb.shape[1], "gateway": xg.shape[1]},
        "epochs": n_epochs,
        "batch_size": r["plan"]["batch_size"],
        "auc_federated": round(auc_federated, 5),
        "auc_centralized_sklearn": round(auc_central, 5),
        "auc_gap": round(auc_federated - auc_central, 5),
        "auc_same_algorithm_plaintext": round(auc_plain, 5),
        "encryption_cost": {
            "auc": round(auc_federated - auc_plain, 5),
            "max_abs_weight_difference": float(
                max(np.abs(he_wb - wb).max(), np.abs(he_wg - wg).max())
            ),
        },
        "seconds": {
            "training": r["seconds"]["training"],
            "per_epoch": round(r["seconds"]["training"] / n_epochs, 3),
            "wall_with_process_start_and_keys": r["seconds"]["wall"],
            "cpu_bank": r["seconds"]["cpu_bank"],
            "cpu_gateway": r["seconds"]["cpu_gateway"],
            "load_average_after": round(os.getloadavg()[0], 2),
        },
        "bytes": {
            "bank_to_gateway": r["bytes"]["bank_to_gateway"],
            "gateway_to_bank": r["bytes"]["gateway_to_bank"],
            "per_epoch": int(per_epoch),
        },
        "validation_auc_per_epoch": [e["validation_auc"] for e in r["epochs"]],
        "loss_per_epoch": [e["loss"] for e in r["epochs"]],
    }


def city_csvs(out: Path, enterprises: int = 3000) -> tuple[Path, Path]:
    """The synthetic city as the two parties' CSVs: the bank's loan book (amounts as
    log1p) and the gateway's model columns as the department data store encodes them
    (imported into a scratch database; a missing value becomes the column mean, the
    scoring convention). Needs the ``records`` package."""
    import csv
    from datetime import date

    from common.db import make_engine, migrate
    from common.settings import load_settings
    from records import store as records
    from records import synth
    from records.catalog import Catalog
    from records.service import import_csv

    settings = load_settings(env={"XINYI_HOME": str(out / "instance")})
    catalog = Catalog(settings.config)
    synth.write(synth.generate(catalog, enterprises, SEED), out)
    url = f"sqlite:///{out / 'city.db'}"
    migrate(url)
    engine = make_engine(url)
    for department in catalog.departments:
        path = out / f"{department}.csv"
        if path.exists():
            import_csv(
                engine, catalog, department, path.read_bytes(), file_name=path.name, actor="bench"
            )
    with (out / "bank_loans.csv").open(encoding="utf-8") as f:
        loans = list(csv.DictReader(f))
    usccs = [r["uscc"] for r in loans]
    columns = list(synth.MODEL_COLUMNS)
    _, g = records.feature_matrix(engine, settings, usccs, columns, as_of=date(2025, 6, 30))
    g = np.where(np.isnan(g), np.nanmean(g, axis=0), g)
    engine.dispose()
    gateway = out / "gateway.csv"
    with gateway.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["uscc", *columns])
        w.writerows([u, *row] for u, row in zip(usccs, g.tolist(), strict=True))
    bank = out / "bank.csv"
    names = list(synth.BANK_COLUMNS[1:-1])
    with bank.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["uscc", "default", *[f"log1p_{c}" if c in LOG1P else c for c in names]])
        for r in loans:
            values = [
                float(np.log1p(max(float(r[c]), 0.0))) if c in LOG1P else float(r[c]) for c in names
            ]
            w.writerow([r["uscc"], r["default"], *values])
    return bank, gateway


LOG1P = ("avg_balance", "loan_amount")


def run() -> dict[str, Any]:
    from federated.training import PARAMS, Privacy

    out: dict[str, Any] = {
        "setup": {
            "split": f"70/30 stratified, seed {SEED}",
            "machine_cores": os.cpu_count(),
            "load_average_before": round(os.getloadavg()[0], 2),
            "privacy": dataclasses.asdict(Privacy()),
            "ckks": PARAMS.as_dict(),
            "protocol": "sum-only products under per-batch bank keys (docs/leakage.md)",
            "command": "python -m bench train",
        }
    }
    for name in ("default_credit", "breast"):
        out[name] = _dataset(
            name,
            data_dir() / f"{name}_hetero_guest.csv",
            data_dir() / f"{name}_hetero_host.csv",
            "id",
            "y",
        )
    try:
        import records  # noqa: F401  (the synthetic city needs the department data store)
    except ModuleNotFoundError:
        out["synthetic_city"] = "not available: the records package is not installed"
        return out
    with tempfile.TemporaryDirectory() as tmp:
        bank, gateway = city_csvs(Path(tmp))
        out["synthetic_city"] = _dataset("synthetic_city", bank, gateway, "uscc", "default")
    return out
