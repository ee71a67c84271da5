"""The same algorithm without encryption (the reference the protocol's precision is
measured against), labels and the ROC AUC."""

from __future__ import annotations

import numpy as np

from common.errors import InvalidInput
from federated.training.optimizer import AdamState, adam_step
from federated.training.plan import TrainingPlan, check_labels


def train_plaintext(
    plan: TrainingPlan, z_bank: np.ndarray, labels: np.ndarray, z_gateway: np.ndarray
) -> tuple[np.ndarray, float, np.ndarray]:
    """The same batches, Taylor residual, L2 and Adam schedule without encryption or
    noise. Returns (bank weights, intercept, gateway weights)."""
    y = check_labels(labels, plan.n_train)
    kb, kg = plan.bank_columns, plan.gateway_columns
    wb, wg = np.zeros(kb + 1), np.zeros(kg)
    sb, sg = AdamState.zeros(kb + 1), AdamState.zeros(kg)
    reg_b = np.append(np.full(kb, plan.l2), 0.0)
    for epoch in range(plan.epochs):
        for batch in range(plan.batches_per_epoch):
            rows = plan.batch_rows(epoch, batch)
            zb = np.column_stack([z_bank[rows], np.ones(len(rows))])
            d = 0.25 * (zb @ wb + z_gateway[rows] @ wg) - 0.5 * y[rows]
            gb = zb.T @ d / len(rows) + reg_b * wb
            gg = z_gateway[rows].T @ d / len(rows) + plan.l2 * wg
            wb, sb = adam_step(plan, wb, gb, sb)
            wg, sg = adam_step(plan, wg, gg, sg)
    return wb[:-1], float(wb[-1]), wg


def labels_pm1(y: np.ndarray) -> np.ndarray:
    """0/1 (or −1/1) labels as −1/1."""
    y = np.asarray(y, dtype=np.float64).ravel()
    if np.all((y == 0.0) | (y == 1.0)):
        return 2.0 * y - 1.0
    if np.all((y == -1.0) | (y == 1.0)):
        return y
    raise InvalidInput("labels must be 0/1 or −1/1", code="invalid_labels")


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (ties count one half); NaN without both classes."""
    y = np.asarray(labels) > 0
    s = np.asarray(scores, dtype=np.float64)
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    _, first, counts = np.unique(s[order], return_index=True, return_counts=True)
    ranks = np.empty(len(s))
    ranks[order] = np.repeat(first + (counts + 1) / 2.0, counts)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))
