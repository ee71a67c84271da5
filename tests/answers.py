"""Every JSON answer the tests' gateway gives is checked against the model its route
declares (``gateway.contract.operation``): the success model for the declared status,
the error model for any refusal. A mismatch is recorded, and the test that caused it
fails at teardown, so the OpenAPI document cannot say one thing while a route answers
another."""

from __future__ import annotations

import json

from flask import Flask, Response, request
from pydantic import ValidationError

from gateway.contract import JSON, Error, operation_of

KEY = "xinyi_answer_mismatches"


def check_answers(app: Flask) -> list[str]:
    """Install the check on ``app``; returns the (live) list of mismatches."""
    mismatches: list[str] = app.extensions.setdefault(KEY, [])

    @app.after_request
    def _check(resp: Response) -> Response:
        rule = request.url_rule
        view = app.view_functions.get(rule.endpoint) if rule is not None else None
        op = operation_of(view) if view is not None else None
        if op is None or resp.mimetype != JSON or resp.direct_passthrough:
            return resp
        model = op.answer if resp.status_code < 400 else (op.error or Error)
        if model is None:
            mismatches.append(f"{request.method} {rule}: JSON answered, none declared")
            return resp
        if resp.status_code < 400 and resp.status_code != op.status:
            mismatches.append(f"{request.method} {rule}: {resp.status_code}, not {op.status}")
        try:
            model.model_validate(json.loads(resp.get_data()))
        except (ValidationError, ValueError) as e:
            mismatches.append(f"{request.method} {rule} {resp.status_code}: {e}"[:2000])
        return resp

    return mismatches
