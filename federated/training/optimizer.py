"""Adam with a cosine learning-rate schedule, coordinate-wise: each party runs it on its own
coordinates with the shared step count, so the pair of updates is one optimizer over all
coordinates."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from federated.training.plan import TrainingPlan

BETA1 = 0.9
BETA2 = 0.999
EPSILON = 1e-8


@dataclass
class AdamState:
    """Adam's moments for one party's coordinates and the shared step count."""

    m: np.ndarray
    v: np.ndarray
    t: int = 0

    @classmethod
    def zeros(cls, n: int) -> AdamState:
        return cls(np.zeros(n), np.zeros(n), 0)


def learning_rate_at(plan: TrainingPlan, step: int) -> float:
    """Cosine decay from ``learning_rate`` at step 1 towards 0 at the last step."""
    return plan.learning_rate * 0.5 * (1.0 + math.cos(math.pi * (step - 1) / plan.total_steps))


def adam_step(
    plan: TrainingPlan, weights: np.ndarray, grad: np.ndarray, state: AdamState
) -> tuple[np.ndarray, AdamState]:
    t = state.t + 1
    m = BETA1 * state.m + (1 - BETA1) * grad
    v = BETA2 * state.v + (1 - BETA2) * grad * grad
    m_hat = m / (1 - BETA1**t)
    v_hat = v / (1 - BETA2**t)
    new = weights - learning_rate_at(plan, t) * m_hat / (np.sqrt(v_hat) + EPSILON)
    return new, AdamState(m, v, t)
