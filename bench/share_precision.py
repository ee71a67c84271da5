"""What rounding the gateway share costs ranking: ``python -m bench.share_precision``.

For the synthetic city (3,000 enterprises, the model columns of ``records.synth``) and
FATE's default_credit (host = the gateway's columns), a logistic regression is fitted
in the clear on a 70/30 stratified split (the joint model federated training
approximates), and the holdout AUC is computed with the exact logit and with the
gateway share ``intercept + Σ w_g·z_g`` rounded to each candidate precision, as
``federated.scoring.round_share`` does at serving. Also reported per precision: the
narrowest interval, in standardized units of a gateway column, that one rounded share
leaves an attacker who knows every other input (``p / max|w_g|``).

Writes ``bench/results/share_precision.json``.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from bench.train import SEED, city_csvs, data_dir
from federated.scoring import round_share

PRECISIONS = (0.0, 0.05, 0.1, 0.25, 0.5, 1.0)
RESULTS = Path(__file__).resolve().parent / "results" / "share_precision.json"


def _read(path: Path, id_column: str) -> tuple[list[str], list[str], np.ndarray]:
    import csv

    with path.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    columns = [c for c in rows[0] if c != id_column]
    ids = [r[id_column] for r in rows]
    return ids, columns, np.array([[float(r[c]) for c in columns] for r in rows])


def _dataset(guest: Path, host: Path, id_column: str, label: str) -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split

    gids, gcols, gx = _read(guest, id_column)
    hids, _, hx = _read(host, id_column)
    position = {h: i for i, h in enumerate(hids)}
    hx = hx[[position[g] for g in gids]]
    y = gx[:, gcols.index(label)]
    bx = np.delete(gx, gcols.index(label), axis=1)
    train, test = train_test_split(np.arange(len(y)), test_size=0.3, stratify=y, random_state=SEED)
    x = np.hstack([hx, bx])
    mean, std = x[train].mean(axis=0), x[train].std(axis=0)
    std[std == 0] = 1.0
    z = np.clip((x - mean) / std, -5, 5)
    fit = LogisticRegression(C=1e3, max_iter=2000).fit(z[train], y[train])
    k = hx.shape[1]
    w_g, w_b = fit.coef_[0][:k], fit.coef_[0][k:]
    share = fit.intercept_[0] + z[:, :k] @ w_g
    bank = z[:, k:] @ w_b
    out: dict[str, Any] = {
        "enterprises": len(y),
        "gateway_columns": k,
        "largest_gateway_weight": round(float(np.max(np.abs(w_g))), 4),
        "gateway_share_std": round(float(share[test].std()), 4),
        "auc": {},
    }
    exact = float(roc_auc_score(y[test], share[test] + bank[test]))
    for p in PRECISIONS:
        rounded = share if p == 0 else np.array([round_share(float(s), p) for s in share])
        auc = float(roc_auc_score(y[test], rounded[test] + bank[test]))
        out["auc"][str(p)] = {
            "auc": round(auc, 5),
            "cost": round(exact - auc, 5),
            "attacker_interval_z": None if p == 0 else round(p / float(np.max(np.abs(w_g))), 3),
        }
    return out


def run() -> dict[str, Any]:
    out: dict[str, Any] = {"command": "python -m bench.share_precision", "precisions": PRECISIONS}
    out["default_credit"] = _dataset(
        data_dir() / "default_credit_hetero_guest.csv",
        data_dir() / "default_credit_hetero_host.csv",
        "id",
        "y",
    )
    with tempfile.TemporaryDirectory() as tmp:
        bank, gateway = city_csvs(Path(tmp))
        out["synthetic_city"] = _dataset(bank, gateway, "uscc", "default")
    return out


if __name__ == "__main__":
    result = run()
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
