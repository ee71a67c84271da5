"""HTTP API blueprints, one per area."""

from __future__ import annotations

from flask import Flask


def register(app: Flask) -> None:
    """Register every blueprint that exists. Adding an area = adding it here."""
    from gateway import openapi, web
    from gateway.api import (
        alerts,
        audit,
        consent,
        core,
        data,
        financing,
        grades,
        objections,
        score,
    )
    from gateway.api import train as training

    for bp in (core.bp, consent.bp, audit.bp, data.bp, score.bp, objections.bp, openapi.bp):
        app.register_blueprint(bp)
    app.register_blueprint(training.bp)  # federated training sessions
    app.register_blueprint(financing.bp)  # the financing loop (docs/financing.md)
    from gateway.api import accounts

    app.register_blueprint(accounts.bp)  # enterprise sign-up and real name
    app.register_blueprint(grades.bp)  # credit grades and the whitelist (JY 附件2)
    app.register_blueprint(alerts.bp)  # risk alerts (--- alerts ---)
    from gateway.api import nodes

    app.register_blueprint(nodes.bp)  # node-to-node calls (issue 18)
    web.register(app)  # the console pages (gateway/web), not part of the JSON API
