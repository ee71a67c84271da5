"""The bank's side of federated training: its report, and training against a gateway.

Invariants:
- the bank's labels and features never leave this process in any readable form: the
  gateway receives only CKKS ciphertexts under the bank's key, ciphertexts under its own
  key masked slot by slot, and flooded, rounded sums (``federated.training``);
- this module talks to the gateway only over HTTP (it never imports the gateway's
  packages).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_report(report: dict[str, Any], path: Path) -> Path:
    """Write the training report as JSON at ``path`` and its plot (loss and validation
    AUC per epoch) as PNG beside it; returns the PNG's path."""
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    png = path.with_suffix(".png")
    plot_epochs(report.get("epochs", []), png, title=str(report.get("model_id", "")))
    return png


def plot_epochs(epochs: list[dict[str, Any]], png: Path, *, title: str = "") -> None:
    """Loss (left axis) and validation AUC (right axis) per epoch."""
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
        ax2.set_ylabel("validation AUC", color="tab:red")
    ax.set_title(f"federated training {title}".strip())
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png)
    plt.close(fig)
