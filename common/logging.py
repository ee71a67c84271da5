"""Structured JSON logging with structlog.

One event name per line, key-value context, a request id bound per request by the
gateway. Never log a secret or a raw data value: log names and ids.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog


def configure(level: str = "INFO", stream: TextIO | None = None) -> None:
    """Configure structlog to write one JSON object per line."""
    out = stream or sys.stderr
    logging.basicConfig(format="%(message)s", stream=out, level=getattr(logging, level), force=True)
    # Libraries that narrate every request or migration step speak only when it matters;
    # Authlib's debug lines would print the access tokens it issues.
    for noisy in ("httpx", "httpcore", "alembic", "werkzeug", "authlib"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, getattr(logging, level)))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(ensure_ascii=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level)),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str, **context: Any) -> Any:
    """A lazy logger: it follows ``configure`` even when made at import time."""
    return structlog.get_logger(name, logger_name=name, **context)
