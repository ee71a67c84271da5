"""The console pages for people: enterprises (企业), departments (数据提供单位) and the
platform operator (平台运营). Server-rendered Jinja2, Simplified Chinese first with an
English switch, on the same session as ``POST /v1/session``; no front-end build step.

Blueprints whose names start with ``web`` are pages, not JSON API: they are not in the
OpenAPI document.
"""

from __future__ import annotations

from flask import Flask


def register(app: Flask) -> None:
    from gateway.web import (
        accounts,
        bank,
        common,
        department,
        enterprise,
        financing_pages,  # its enterprise and operator routes sit on the role blueprints
        grades,  # noqa: F401  (its routes sit on the enterprise blueprint)
        objections,  # noqa: F401  (its routes sit on the role blueprints)
        operator,
    )

    for bp in (common.bp, accounts.bp, enterprise.bp, department.bp, operator.bp):
        app.register_blueprint(bp)
    app.register_blueprint(bank.bp)  # the bank console (financing)
    app.register_blueprint(financing_pages.public)  # the public product page
