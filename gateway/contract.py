"""The HTTP contract, stated once: each JSON API route declares its operation (summary,
request model, query model, answer model, status) with :func:`operation`; the route
receives the validated models; ``/openapi.json`` is generated from the same
declarations and the route table (``gateway.openapi``), so the document and the code
cannot drift apart.

Invariants:
- a request model coerces nothing (``"1"`` is not an integer, ``true`` is not 1) and
  forbids unknown fields, except the few bodies that always ignored them (sign-in,
  webhook, cosignature); a query model reads strings as a query string does;
- a body or query that does not validate is refused with :class:`InvalidInput` (400),
  carrying the model's stable code (or the code named for that field) and the field's
  path; the message says what was expected and never echoes the value sent;
- the model is validated after authentication (``gateway.auth.authenticated`` wraps
  outside it) and before anything else of the route runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import wraps
from typing import Any, ClassVar, TypeVar, get_args

from flask import request
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import ErrorDetails

from common import json_input
from common.errors import InvalidInput, shown

F = TypeVar("F", bound=Callable[..., Any])
JSON = "application/json"


class Body(BaseModel):
    """A JSON request body: unknown fields refused, no coercion."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    CODE: ClassVar[str] = "invalid_json"
    """The stable error code of a body that does not validate."""
    CODES: ClassVar[Mapping[str, str]] = {}
    """Codes for particular fields, by dotted path without list indices
    (``"enterprises.uscc"``); the others get ``CODE``."""


class Query(BaseModel):
    """Query-string parameters: values arrive as strings; unknown ones are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    CODE: ClassVar[str] = "invalid_query"
    CODES: ClassVar[Mapping[str, str]] = {}


class Answer(BaseModel):
    """A JSON answer, as documented: the route returns a dict of this shape (the tests
    check every answer against it, ``tests/answers.py``)."""

    model_config = ConfigDict(extra="forbid")


class OpenAnswer(Answer):
    """An answer that may carry members beyond the documented ones."""

    model_config = ConfigDict(extra="allow")


class Error(Answer):
    """Every refusal: a stable snake_case code and a readable message; some carry the
    field at fault or the audit index of the logged refusal."""

    model_config = ConfigDict(extra="allow")
    error: str
    message: str


@dataclass(frozen=True)
class Operation:
    """What one route takes and answers."""

    summary: str
    tag: str
    body: type[BaseModel] | None = None
    query: type[Query] | None = None
    answer: type[BaseModel] | None = None
    status: int = 200
    answer_media: str = JSON
    body_media: tuple[str, ...] = ()
    path: Mapping[str, Any] = field(default_factory=dict)
    error: type[BaseModel] | None = None
    """The refusal's shape when it is not :class:`Error` (OAuth's own)."""


def operation(
    summary: str,
    *,
    tag: str,
    body: type[BaseModel] | None = None,
    query: type[Query] | None = None,
    answer: type[BaseModel] | None = None,
    status: int = 200,
    answer_media: str = JSON,
    body_media: tuple[str, ...] | None = None,
    path: Mapping[str, Any] | None = None,
    error: type[BaseModel] | None = None,
) -> Callable[[F], F]:
    """Route decorator: declare the operation and hand the route its validated models
    as the keyword arguments ``body`` and ``query``. A body of another media type
    (``body_media``: CSV, protocol frames, the OAuth form) is documented by its model,
    if any, and read by the route itself."""
    if body_media is None:  # JSON when there is a body model, else no body at all
        body_media = (JSON,) if body is not None else ()
    op = Operation(
        summary=summary,
        tag=tag,
        body=body,
        query=query,
        answer=answer,
        status=status,
        answer_media=answer_media,
        body_media=body_media,
        path=dict(path or {}),
        error=error,
    )
    parses_body = body is not None and body_media == (JSON,)

    def decorate(view: F) -> F:
        if parses_body or query is not None:

            @wraps(view)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                if parses_body:
                    assert body is not None
                    kwargs["body"] = parse(body, json_body())
                if query is not None:
                    kwargs["query"] = parse(query, request.args.to_dict())
                return view(*args, **kwargs)

            target: Any = wrapper
        else:
            target = view
        target.operation = op
        return target  # type: ignore[no-any-return]

    return decorate


def operation_of(view: Callable[..., Any]) -> Operation | None:
    found = getattr(view, "operation", None)
    return found if isinstance(found, Operation) else None


def json_body() -> dict[str, Any]:
    """The request's JSON object (400 ``invalid_json`` for anything else), its nesting
    bounded before the parser recurses (``common.json_input``: 400 ``json_too_deep``;
    50,000 levels were a RecursionError, a 500, on the unauthenticated sign-in)."""
    if not request.is_json:
        raise InvalidInput("the body must be a JSON object", code="invalid_json")
    body = json_input.loads(request.get_data(cache=True))
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object", code="invalid_json")
    return body


M = TypeVar("M", bound=BaseModel)


def parse(model: type[M], data: Any) -> M:
    """``data`` validated as ``model``; a failure becomes the model's coded 400."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise refusal(model, e) from None


def refusal(model: type[BaseModel], error: ValidationError) -> InvalidInput:
    """The one mapping of a validation failure to the contract's error: the first
    problem, its field path, the code for that field, and Pydantic's description of
    what was expected, without the value that was sent."""
    details = error.errors(include_url=False, include_context=False, include_input=False)
    first: ErrorDetails = details[0]
    loc = first["loc"] if first["type"] == "extra_forbidden" else _fields_of(model, first["loc"])
    where = field_path(loc)
    codes: Mapping[str, str] = getattr(model, "CODES", {})
    code = codes.get(".".join(str(p) for p in loc if isinstance(p, str)))
    code = code or getattr(model, "CODE", "invalid_json")
    if first["type"] == "extra_forbidden":
        message = f"unknown field {shown(where)}"
    elif first["type"] == "missing":
        message = f"{where}: required"
    else:
        message = f"{where}: {first['msg']}" if where else first["msg"]
    return InvalidInput(message, code=code, **({"field": where} if where else {}))


def _fields_of(model: type[BaseModel], loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    """``loc`` without the union members Pydantic names in it (``("value", "bool")`` →
    ``("value",)``): only the fields and list indices of the caller's document."""
    out: list[int | str] = []
    current: type[BaseModel] | None = model
    for part in loc:
        if isinstance(part, int):
            out.append(part)
            continue
        if current is None:
            continue
        fields = {(f.alias or name): f for name, f in current.model_fields.items()}
        if part in fields:
            out.append(part)
            current = _nested_model(fields[part].annotation)
    return tuple(out)


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _nested_model(arg)
        if found is not None:
            return found
    return None


def field_path(loc: tuple[int | str, ...]) -> str:
    """``("enterprises", 3, "uscc")`` → ``"enterprises[3].uscc"``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out
