"""Structured logging with structlog.

One event name per line, key-value context, a request id bound per request by the
gateway. Never log a secret or a raw data value: log names and ids.

Rendering: JSON, one object per line, for machines (a file, a pipe, a journal, CI); on
a terminal, structlog's console renderer for people (so ``make demo`` shows readable
lines, not JSON, between the story's). ``XINYI_LOG_FORMAT=json|console`` overrides.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from typing import Any, TextIO

import structlog


def configure(
    level: str = "INFO", stream: TextIO | None = None, env: Mapping[str, str] | None = None
) -> None:
    """Configure structlog: JSON lines, or the console renderer on a terminal
    (``for_people``). ``env`` defaults to ``os.environ``."""
    out = stream or sys.stderr
    env = os.environ if env is None else env
    logging.basicConfig(format="%(message)s", stream=out, level=getattr(logging, level), force=True)
    # Libraries that narrate every request or migration step speak only when it matters;
    # Authlib's debug lines would print the access tokens it issues.
    for noisy in ("httpx", "httpcore", "alembic", "werkzeug", "authlib"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, getattr(logging, level)))
    renderer: Any
    if for_people(out, env):
        renderer = structlog.dev.ConsoleRenderer(colors=_colors(out, env))
    else:
        renderer = structlog.processors.JSONRenderer(ensure_ascii=False)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level)),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )


def for_people(stream: TextIO, env: Mapping[str, str]) -> bool:
    """Console rendering: asked for, or a terminal outside CI; JSON otherwise."""
    chosen = env.get("XINYI_LOG_FORMAT", "").strip().lower()
    if chosen in ("json", "console"):
        return chosen == "console"
    if env.get("CI", "").lower() == "true":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _colors(stream: TextIO, env: Mapping[str, str]) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and "NO_COLOR" not in env


def get_logger(name: str, **context: Any) -> Any:
    """A lazy logger: it follows ``configure`` even when made at import time."""
    return structlog.get_logger(name, logger_name=name, **context)
