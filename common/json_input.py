"""JSON from outside parties, parsed with its nesting bounded.

Invariants:
- nesting deeper than ``MAX_DEPTH`` arrays and objects is refused with
  ``json_too_deep`` *before* the parser recurses into it (Python's parser recurses per
  level: 50,000 levels would exhaust the stack and answer 500);
- anything that is not UTF-8 JSON is refused with ``invalid_json``; numbers the
  parser turns into infinities (``1e400``) are refused too, since no field of the API
  is infinite and ``float('inf')`` breaks every later comparison or conversion;
- the refusal names no part of the body.
"""

from __future__ import annotations

import json
import re
from typing import Any

from common.errors import InvalidInput

MAX_DEPTH = 64

# A JSON string (skipped whole, so brackets inside strings do not count) or one bracket.
_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


class JsonTooDeep(InvalidInput):
    code = "json_too_deep"


def nesting_depth(data: bytes, limit: int = MAX_DEPTH) -> int:
    """The deepest nesting of arrays and objects in ``data`` (JSON text), counting at
    most to ``limit + 1``: the scan stops as soon as the limit is passed. Unbalanced
    text is left for the parser to refuse."""
    if data.count(b"[") + data.count(b"{") <= limit:
        # Cannot be deeper than the number of opening brackets (strings included).
        return min(data.count(b"[") + data.count(b"{"), limit)
    depth = deepest = 0
    for match in _TOKENS.finditer(data):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return deepest
        elif token in (b"]", b"}"):
            depth -= 1
    return deepest


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError("the number is out of range")
    return value


def loads(data: bytes | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse JSON text from an outside party; raises ``JsonTooDeep`` or
    ``InvalidInput(code="invalid_json")``."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if nesting_depth(raw, max_depth) > max_depth:
        raise JsonTooDeep(f"the JSON body is nested deeper than {max_depth} levels")
    try:
        return json.loads(raw, parse_constant=_no_constant, parse_float=_finite_float)
    except (ValueError, RecursionError) as e:
        raise InvalidInput("the body is not valid JSON", code="invalid_json") from e
