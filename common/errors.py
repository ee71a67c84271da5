"""The one exception tree.

Every error the project raises derives from :class:`Error` and carries a stable,
snake_case ``code`` that clients may rely on, and a readable ``message``.  The
intermediate classes name the *kind* of failure; only ``gateway/errors.py`` maps a
kind to an HTTP status.  Library exceptions are converted at the boundary with
``raise ... from e`` so no foreign exception type escapes a package.
"""

from __future__ import annotations

from typing import Any

# How much of a caller's own value an error message repeats: enough to recognise it,
# never a megabyte of it (the value is the caller's, and so is whatever it hides).
SHOWN_MAX = 64


def shown(value: str) -> str:
    """A caller's value as an error message quotes it: ``repr`` (quotes added, control
    characters escaped), at most ``SHOWN_MAX`` characters of it, a cut marked ``…``."""
    if len(value) > SHOWN_MAX:
        return repr(value[:SHOWN_MAX]) + "…"
    return repr(value)


def bounded(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, the cut marked ``…`` (an answer's last
    bound on a message that quotes what the caller sent)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


class Error(Exception):
    """Root of every project error."""

    code: str = "error"

    def __init__(self, message: str, *, code: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class InvalidInput(Error):
    """The caller sent something malformed (HTTP 400)."""

    code = "invalid_input"


class AuthenticationFailed(Error):
    """The caller could not be authenticated (HTTP 401)."""

    code = "unauthenticated"


class Forbidden(Error):
    """The caller is authenticated but refused (HTTP 403)."""

    code = "forbidden"


class NotFound(Error):
    """The named thing does not exist or is not visible to the caller (HTTP 404)."""

    code = "not_found"


class Conflict(Error):
    """The request conflicts with the current state (HTTP 409)."""

    code = "conflict"


class TooLarge(Error):
    """The payload exceeds a configured size limit (HTTP 413)."""

    code = "too_large"


class RateLimited(Error):
    """Too many requests from one caller (HTTP 429)."""

    code = "rate_limited"


class Unavailable(Error):
    """A dependency the request needs is down; nothing was served (HTTP 503)."""

    code = "unavailable"


class ConfigError(Error):
    """The configuration or the instance folder is unusable; raised at start-up."""

    code = "config_invalid"
