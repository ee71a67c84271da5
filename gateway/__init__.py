"""The gateway: the Flask composition root. Only this package imports Flask.

``create_app(settings)`` builds the services once, registers one blueprint per area and
the OAuth server, and starts the background loops (audit checkpoints, webhooks) unless
asked not to (tests drive them by hand).
"""

from __future__ import annotations

from datetime import timedelta

from flask import Flask, Response, g
from werkzeug.routing import IntegerConverter, Map

from common.db import make_engine
from common.files import generated_secret
from common.logging import get_logger
from common.settings import Settings, load_settings
from gateway import errors, metrics, oauth, request_ids
from gateway.auth import PAGE_COOKIE
from gateway.services import build

log = get_logger("gateway")


def create_app(settings: Settings | None = None, *, background: bool = True) -> Flask:
    settings = settings or load_settings()
    app = Flask(__name__)
    secret = _session_secret(settings)
    https = settings.config.server.https
    app.config.update(
        SECRET_KEY=secret,
        MAX_CONTENT_LENGTH=settings.config.limits.max_request_bytes,
        # Flask's signed cookie carries only page state (the sign-in form's token and
        # one-time notices); who is signed in lives server-side (gateway.auth).
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=https,
        SESSION_COOKIE_NAME=PAGE_COOKIE,
        PERMANENT_SESSION_LIFETIME=timedelta(seconds=settings.config.tokens.session_seconds),
        JSON_SORT_KEYS=False,
    )
    # Every <int:...> in a route is a 64-bit database key: a larger number matches no
    # route (404) instead of overflowing the driver (500).
    app.url_map.converters["int"] = Int64Converter
    # A pooled connection for every request thread (each holds at most one at a time,
    # the audit integrator included) and the background loops: an overflow connection
    # is opened and closed per checkout, a new PostgreSQL backend each time.
    engine = make_engine(settings.database_url, pool_size=settings.config.server.threads + 4)
    svc = build(settings, engine, secret.encode("utf-8"))
    app.extensions["xinyi"] = svc

    request_ids.init_app(app)

    @app.after_request
    def _headers(resp: Response) -> Response:
        resp.headers["X-Request-Id"] = g.get("request_id", "")
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("Cache-Control", "no-store")
        if https:  # browsers that once saw the gateway over TLS never try plain HTTP
            resp.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return resp

    errors.init_app(app)
    metrics.init_app(app, svc)
    oauth.init_app(app)
    from gateway.api import register

    register(app)
    if background:
        svc.start_background()
    # The node network (issue 18): the relay hook and the node outbox loop.
    from gateway import relay

    relay.init_app(app, background=background)
    return app


class Int64Converter(IntegerConverter):
    """``<int:...>`` bounded to the signed 64-bit range of the database keys."""

    def __init__(
        self,
        url_map: Map,
        fixed_digits: int = 0,
        min: int | None = None,
        max: int | None = 2**63 - 1,
        signed: bool = False,
    ) -> None:
        super().__init__(url_map, fixed_digits, min, max, signed)


def _session_secret(settings: Settings) -> str:
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value()
    # Dev convenience: one generated secret in the instance folder, shared by workers.
    path = settings.home / "dev-session-secret"
    secret, created = generated_secret(path)
    if created:
        log.warning(
            "unsafe_dev_session_secret", path=str(path), hint="set XINYI_SECRET_KEY in production"
        )
    return secret
