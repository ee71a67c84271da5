"""Adam with a cosine learning-rate schedule, coordinate-wise: each party runs it on its own
coordinates with the shared step count, so the pair of updates is one optimizer over all
coordinates."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

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


class PartyState(Protocol):
    """What each party keeps of its own optimizer and position in the plan."""

    weights: list[float]
    adam_m: list[float]
    adam_v: list[float]
    step: int
    next_epoch: int
    next_batch: int


def take_step(plan: TrainingPlan, state: PartyState, grad: np.ndarray) -> None:
    """One Adam step of a party's weights with ``grad``, and on to the next batch."""
    new_w, adam = adam_step(
        plan,
        np.asarray(state.weights),
        grad,
        AdamState(np.asarray(state.adam_m), np.asarray(state.adam_v), state.step),
    )
    state.weights = [float(v) for v in new_w]
    state.adam_m, state.adam_v, state.step = (
        [float(v) for v in adam.m],
        [float(v) for v in adam.v],
        adam.t,
    )
    state.next_batch += 1
    if state.next_batch == plan.batches_per_epoch:
        state.next_epoch, state.next_batch = state.next_epoch + 1, 0
