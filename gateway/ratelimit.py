"""Per-institution request rate limits: a sliding one-minute window per key, in this
worker (``limits.requests_per_minute`` shared out over the workers by
``gateway.metrics.init_app``, which installs the limiter).

Kept apart from ``gateway.metrics`` and ``gateway.auth`` so that authentication can
count a request without importing the metrics endpoint, which itself authenticates.
"""

from __future__ import annotations

import threading
import time
from collections import deque

from flask import Flask

from common.errors import RateLimited


class RateLimiter:
    """Sliding one-minute window per key, in this process."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = max(per_minute, 1)
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            window = self._hits.setdefault(key, deque())
            while window and window[0] <= now - 60:
                window.popleft()
            if len(window) >= self.per_minute:
                raise RateLimited(
                    f"more than {self.per_minute} requests a minute", code="rate_limited"
                )
            window.append(now)


def limit(app: Flask, key: str) -> None:
    """Count one request of ``key`` (an institution) against its rate limit."""
    limiter: RateLimiter = app.extensions["xinyi_rate_limiter"]
    limiter.hit(key)
