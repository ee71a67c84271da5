"""Vertical federated logistic regression between a bank and the gateway: the pure
protocol, split by job — ``wire`` (frames, refusals), ``plan`` (the agreed plan, each
party's privacy parameters), ``optimizer`` (Adam), ``gateway`` and ``bank`` (each party's
state machine), ``reference`` (the same algorithm in the clear, AUC) and ``model`` (the
trained halves as the registry's ``JointModel``). The cryptography is in
``federated.he.sumonly``; ``docs/leakage.md`` says who learns what.

The bank (B) holds labels y ∈ {−1, 1} and its features; the gateway (G) holds department
features of the same enterprises (rows aligned beforehand, in the bank's order). Both
standardize (and clip) their own columns. The model is u = w_0 + Z_b·w_b + Z_g·w_g and the
loss the second-order Taylor expansion of the logistic loss at u = 0, so the residual is
d = ¼·u − ½·y and the gradients are Zᵀd / n (+ λ·w; w_0 is not regularized). Per batch R:
a = ¼u_b − ½y (bank), u_g = Z_g[R]·w_g (gateway), d = a + ¼u_g, and

1. ``columns``      B→G  a fresh batch public key; Enc_b(c) for c ∈ (Z_b columns, a);
2. ``products``     G→B  sum-only Enc_b(c ⊙ (u_g + ν)) for each bank column and sum-only
   Enc_b(a ⊙ z_gj) padded with M_j for each gateway column; Σu_g and Σu_g², noised;
3. ``gateway_sums`` B→G  the bank reads one constant coefficient per product: Σ c·u_g for
   its own gradient (Σ c·d = Σ c·a + ¼Σ c·u_g) and loss; Σ a·z_gj + M_j, flooded and
   rounded, for the gateway; the batch key is dropped;
4. ``batch_done``   G→B  the gateway removes M_j, adds ¼Σ z_gj·u_g, clips, steps.

Both parties step Adam (cosine schedule) with the same step count, so the pair of updates
is one optimizer over all coordinates.
"""

from federated.training.bank import BankState, BankTrainer, BatchResult
from federated.training.gateway import GatewayState, GatewayTrainer
from federated.training.model import BankHalf, fold_bank_half, import_json, joint_model, logits
from federated.training.optimizer import AdamState, adam_step, learning_rate_at
from federated.training.plan import (
    PARAMS,
    InvalidPlan,
    Privacy,
    TrainingPlan,
    auto_batch_size,
)
from federated.training.reference import labels_pm1, roc_auc, train_plaintext
from federated.training.wire import (
    ANSWER,
    MAGIC,
    MAX_MESSAGE_BYTES,
    Kind,
    MalformedMessage,
    Message,
    ReplayedMessage,
    RestartLimit,
    TrainingFinished,
    UnexpectedMessage,
    digest,
)

__all__ = [
    "ANSWER",
    "MAGIC",
    "MAX_MESSAGE_BYTES",
    "PARAMS",
    "AdamState",
    "BankHalf",
    "BankState",
    "BankTrainer",
    "BatchResult",
    "GatewayState",
    "GatewayTrainer",
    "InvalidPlan",
    "Kind",
    "MalformedMessage",
    "Message",
    "Privacy",
    "ReplayedMessage",
    "RestartLimit",
    "TrainingFinished",
    "TrainingPlan",
    "UnexpectedMessage",
    "adam_step",
    "auto_batch_size",
    "digest",
    "fold_bank_half",
    "import_json",
    "joint_model",
    "labels_pm1",
    "learning_rate_at",
    "logits",
    "roc_auc",
    "train_plaintext",
]
