"""The one secure random sampler of the federated package: every mask, pad, flooding
noise and seed comes from the OS CSPRNG through these functions (never from numpy's
generators, which are for the public batch order only)."""

from __future__ import annotations

import os

import numpy as np


def secure_bytes(n: int) -> bytes:
    return os.urandom(n)


def secure_uniform(n: int, bound: float) -> np.ndarray:
    """n reals uniform in [−bound, bound) (53 random bits each)."""
    raw = np.frombuffer(os.urandom(8 * n), dtype=np.uint64) >> np.uint64(11)
    return (raw.astype(np.float64) * 2.0**-52 - 1.0) * bound


def secure_gaussian(n: int, sigma: float) -> np.ndarray:
    """n normal deviates N(0, sigma²) (Box–Muller)."""
    u1 = (np.frombuffer(os.urandom(8 * n), dtype=np.uint64) >> np.uint64(11)).astype(np.float64)
    u2 = (np.frombuffer(os.urandom(8 * n), dtype=np.uint64) >> np.uint64(11)).astype(np.float64)
    u1 = (u1 + 1.0) * 2.0**-53  # (0, 1]
    u2 = u2 * 2.0**-53
    out: np.ndarray = sigma * np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)
    return out


def secure_below(modulus: int) -> int:
    """One integer uniform in [0, modulus) (rejection sampling, no modulo bias)."""
    if modulus < 1:
        raise ValueError("the modulus must be positive")
    bits = modulus.bit_length() + 64  # 64 extra bits: a bias below 2^-64 before rejection
    while True:
        value = int.from_bytes(os.urandom((bits + 7) // 8), "little") >> (-bits % 8)
        limit = (1 << bits) - (1 << bits) % modulus
        if value < limit:
            return value % modulus
