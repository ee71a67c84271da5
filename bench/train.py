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

import os
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SEED = 42
EPOCHS = 16


def data_dir() -> Path:
    return Path(os.environ.get("XINYI_FATE_DATA") or ROOT.parent / "shared" / "data" / "fate")


def _dataset(name: str, epochs: int = EPOCHS) -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    from federated.simulate import SimulationConfig, read_party_csv, simulate
    from federated.training import (
        Standardization,
        TrainingPlan,
        auto_batch_size,
        roc_auc,
        train_plaintext,
    )

    guest = data_dir() / f"{name}_hetero_guest.csv"
    host = data_dir() / f"{name}_hetero_host.csv"
    bank = read_party_csv(guest, "id", "y")
    gateway = read_party_csv(host, "id")
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
        id_column="id",
        label_column="y",
        train_ids=[ids[k] for k in tr],
        config=config,
        model_id=f"bench-{name}",
    )
    auc_federated = roc_auc(y[te], result.model.logits(xg[te], xb[te]))

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
    he_wb = np.asarray(result.model.bank.weights) * np.asarray(sb.std)
    he_wg = np.asarray(result.model.gateway.weights)

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
        },
        "bytes": {
            "bank_to_gateway": r["bytes"]["bank_to_gateway"],
            "gateway_to_bank": r["bytes"]["gateway_to_bank"],
            "per_epoch": int(per_epoch),
        },
        "validation_auc_per_epoch": [e["validation_auc"] for e in r["epochs"]],
        "loss_per_epoch": [e["loss"] for e in r["epochs"]],
    }


def run() -> dict[str, Any]:
    out: dict[str, Any] = {
        "setup": {
            "split": f"70/30 stratified, seed {SEED}",
            "machine_cores": os.cpu_count(),
            "privacy": {"mask_bits": 36, "flood_sigma": 2.0**-4, "round_bits": 20},
            "ckks": {"poly_modulus_degree": 8192, "coeff_mod_bit_sizes": [60, 50, 50, 58]},
            "command": "python -m bench train",
        }
    }
    for name in ("default_credit", "breast"):
        out[name] = _dataset(name)
    return out
