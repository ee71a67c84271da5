"""The OpenAPI 3.1 document served at ``/openapi.json``, generated from the route table
and each route's declared operation (``gateway.contract.operation``) and models
(``gateway.api.schemas``): nothing about a path is written twice.

Pages (blueprints named ``web…``) and static files are not part of the JSON API and
are left out; every other route must declare its operation (a test checks it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from flask import Blueprint, Flask, current_app
from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import JsonSchemaMode, models_json_schema
from werkzeug.routing import IntegerConverter, Rule

from gateway.contract import JSON, Error, OpenAnswer, Operation, operation, operation_of

bp = Blueprint("openapi", __name__)

S = dict[str, Any]
REF = "#/components/schemas/{model}"
PEOPLE = frozenset({"enterprise", "department", "operator"})
INFO = {
    "title": "Xinyi Gateway API",
    "version": "1",
    "description": "Consent, data services under consent, HE joint scoring "
    "and a Merkle audit log for SME credit (信易贷).",
}


class OpenApiDocument(OpenAnswer):
    openapi: str
    info: dict[str, Any]
    paths: dict[str, Any]


def is_api(rule: Rule) -> bool:
    """Is ``rule`` part of the JSON API (not a page, not a static file)?"""
    endpoint = rule.endpoint
    return not (endpoint.startswith("web") or endpoint == "static")


def api_rules(app: Flask) -> list[Rule]:
    return [r for r in app.url_map.iter_rules() if is_api(r)]


def openapi_path(rule: Rule) -> str:
    """``/v1/consents/<consent_id>`` → ``/v1/consents/{consent_id}``."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)


def _methods(rule: Rule) -> list[str]:
    return sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})


def _security(roles: tuple[str, ...] | None) -> list[S]:
    if roles is None:
        return []
    kinds = set(roles)
    if not kinds:
        return [{"bearer": []}, {"session": []}]
    out: list[S] = []
    if "institution" in kinds:
        out.append({"bearer": []})
    if kinds & PEOPLE:
        out.append({"session": []})
    return out


class _Schemas:
    """Every model the operations name, as one set of components."""

    def __init__(self, ops: Iterable[Operation]) -> None:
        wanted: dict[tuple[type[BaseModel], JsonSchemaMode], None] = {
            (Error, "serialization"): None
        }
        for op in ops:
            if op.body is not None:
                wanted[(op.body, "validation")] = None
            if op.query is not None:
                wanted[(op.query, "validation")] = None
            if op.answer is not None:
                wanted[(op.answer, "serialization")] = None
            if op.error is not None:
                wanted[(op.error, "serialization")] = None
        refs, defs = models_json_schema(list(wanted), ref_template=REF)
        self.refs = refs
        self.components: S = defs.get("$defs", {})

    def ref(self, model: type[BaseModel], mode: JsonSchemaMode) -> S:
        return dict(self.refs[(model, mode)])

    def properties(self, model: type[BaseModel]) -> tuple[S, set[str]]:
        """A query model's parameters: (name → schema, required names)."""
        schema = model.model_json_schema(ref_template=REF)
        return schema.get("properties", {}), set(schema.get("required", []))


def _path_parameters(rule: Rule, op: Operation) -> list[S]:
    out = []
    for name in sorted(rule.arguments, key=rule.rule.index):
        if name in op.path:
            schema = TypeAdapter(op.path[name]).json_schema()
        elif isinstance(rule._converters.get(name), IntegerConverter):
            schema = {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}
        else:
            schema = {"type": "string"}
        out.append({"name": name, "in": "path", "required": True, "schema": schema})
    return out


def _query_parameters(schemas: _Schemas, op: Operation) -> list[S]:
    if op.query is None:
        return []
    props, required = schemas.properties(op.query)
    return [
        {"name": name, "in": "query", "required": name in required, "schema": schema}
        for name, schema in props.items()
    ]


def _content(media: str, schema: S) -> S:
    return {media: {"schema": schema}}


def _media_schema(media: str) -> S:
    if media == "application/octet-stream":
        return {"type": "string", "format": "binary"}
    return {"type": "string"}


def _operation(rule: Rule, method: str, op: Operation, roles: Any, schemas: _Schemas) -> S:
    ok: S = {"description": "OK"}
    if op.answer is not None:
        ok["content"] = _content(op.answer_media, schemas.ref(op.answer, "serialization"))
    elif op.status != 204:
        ok["content"] = _content(op.answer_media, _media_schema(op.answer_media))
    out: S = {
        "operationId": rule.endpoint,
        "summary": op.summary,
        "tags": [op.tag],
        "responses": {
            str(op.status): ok,
            "default": {
                "description": "refused: a stable code and a message",
                "content": _content(JSON, schemas.ref(op.error or Error, "serialization")),
            },
        },
    }
    params = _path_parameters(rule, op) + _query_parameters(schemas, op)
    if params:
        out["parameters"] = params
    if op.body_media:
        content: S = {}
        for media in op.body_media:
            if op.body is not None and media in (
                JSON,
                "application/x-www-form-urlencoded",
                "multipart/form-data",
            ):
                content[media] = {"schema": schemas.ref(op.body, "validation")}
            else:
                content[media] = {"schema": _media_schema(media)}
        out["requestBody"] = {"required": True, "content": content}
    security = _security(roles)
    if security:
        out["security"] = security
    return out


def document(app: Flask) -> S:
    """The whole document for ``app``'s routes."""
    declared: list[tuple[Rule, str, Operation, Any]] = []
    for rule in api_rules(app):
        view = app.view_functions[rule.endpoint]
        op = operation_of(view)
        if op is None:
            continue
        for method in _methods(rule):
            declared.append((rule, method, op, getattr(view, "roles", None)))
    schemas = _Schemas(op for _, _, op, _ in declared)
    paths: S = {}
    for rule, method, op, roles in sorted(declared, key=lambda d: (d[0].rule, d[1])):
        paths.setdefault(openapi_path(rule), {})[method.lower()] = _operation(
            rule, method, op, roles, schemas
        )
    return {
        "openapi": "3.1.0",
        "info": INFO,
        "paths": paths,
        "components": {
            "schemas": schemas.components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "session": {"type": "apiKey", "in": "cookie", "name": "xinyi_session"},
            },
        },
    }


@bp.get("/openapi.json")
@operation("This document", tag="ops", answer=OpenApiDocument)
def openapi() -> S:
    doc: S | None = current_app.extensions.get("xinyi_openapi")
    if doc is None:  # the route table is fixed once the app serves
        doc = current_app.extensions.setdefault("xinyi_openapi", document(current_app))
    return doc
