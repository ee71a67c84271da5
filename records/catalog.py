"""The catalog's rules for department data, as pure functions over ``config.yaml``.

A feature id is ``category.feature`` (``tax.paid_12m``); its category names the
department that supplies it and its visibility. This module decides:

- what a CSV cell may contain for a feature (``parse_cell``): its type, unit and range;
- which band a non-public value falls in (``band``): bands are half-open intervals
  ``[lower, upper)`` between the catalog's ascending boundaries, labelled in Chinese
  units (``100万–500万``) and in English (``1M–5M``);
- how a verification predicate ``>= <= == !=`` is answered (``evaluate``);
- how a stored value becomes a number for models (``encode``).

Invariants:
- a problem is described by a stable code and a reason that never repeats the value
  (the value may be non-public): reasons say "the value";
- amounts are never negative; integers are whole numbers; dates are ISO ``YYYY-MM-DD``;
- nothing here reads a database or knows about HTTP.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from itertools import pairwise
from typing import Any

from common.errors import InvalidInput
from common.settings import ConfigFile, Feature

# A stored value: what a cell parses to. Dates stay ISO strings (they order correctly).
Value = int | float | str | bool

MAX_STRING = 200

_INTEGER = re.compile(r"-?[0-9]{1,15}")
# Numbers that are already valid JSON (no leading zeros, no "+", no exponent).
_CANONICAL_INTEGER = re.compile(r"-?(?:0|[1-9][0-9]{0,14})")
_CANONICAL_DECIMAL = re.compile(r"-?(?:0|[1-9][0-9]{0,14})(?:\.[0-9]{1,9})?")
_AMOUNT = re.compile(r"-?[0-9]{1,15}(\.[0-9]{1,2})?")
_NUMBER = re.compile(r"-?[0-9]{1,15}(\.[0-9]{1,9})?")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# Whole columns that are already valid JSON numbers, one cell per line (the fast path).
_COLUMN_INTEGERS = re.compile(r"-?(?:0|[1-9][0-9]{0,14})(?:\n-?(?:0|[1-9][0-9]{0,14}))*")
_COLUMN_AMOUNTS = re.compile(
    r"(?:0|[1-9][0-9]{0,14})(?:\.[0-9]{1,2})?(?:\n(?:0|[1-9][0-9]{0,14})(?:\.[0-9]{1,2})?)*"
)
_COLUMN_NUMBERS = re.compile(
    r"-?(?:0|[1-9][0-9]{0,14})(?:\.[0-9]{1,9})?(?:\n-?(?:0|[1-9][0-9]{0,14})(?:\.[0-9]{1,9})?)*"
)
_TRUE = frozenset({"true", "1", "yes", "是"})
_FALSE = frozenset({"false", "0", "no", "否"})
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# JSON string quoting without escaping non-ASCII (json.dumps(ensure_ascii=False) for str).
# (The C implementation when available.)
quote: Callable[[str], str] = json.encoder.encode_basestring


class CellProblem(ValueError):
    """A cell that does not fit its feature: a stable ``code`` and a value-free reason."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class InvalidValue(InvalidInput):
    """A value given in a request (for example a verification threshold) is unusable."""

    code = "invalid_value"


@dataclass(frozen=True)
class FeatureRule:
    """One catalog feature with where it lives."""

    id: str
    category: str
    department: str
    public: bool
    spec: Feature
    # Personal information used only inside the grade (config "restricted"): never a
    # model input, never reported or verified.
    restricted: bool = False


class Catalog:
    """The catalog's features indexed by id and by department."""

    def __init__(self, config: ConfigFile) -> None:
        self.departments: dict[str, str] = {d.id: d.name for d in config.departments}
        self.features: dict[str, FeatureRule] = {}
        for cname, cat in config.categories.items():
            for fname, spec in cat.features.items():
                fid = f"{cname}.{fname}"
                self.features[fid] = FeatureRule(
                    fid,
                    cname,
                    cat.department,
                    cat.visibility == "public",
                    spec,
                    restricted=cat.visibility == "restricted" or spec.keyed_hash,
                )

    def rule(self, feature_id: str) -> FeatureRule:
        try:
            return self.features[feature_id]
        except KeyError:
            raise InvalidInput(f"unknown feature {feature_id!r}", code="unknown_feature") from None

    def department_features(self, department: str) -> dict[str, FeatureRule]:
        return {k: r for k, r in self.features.items() if r.department == department}


# Cells -------------------------------------------------------------------------------


def parse_cell(spec: Feature, text: str) -> Value:
    """The stored value of one CSV cell (already stripped) for ``spec``; raises
    :class:`CellProblem`. An empty cell is refused: a department that has no value for
    a feature leaves the column out of that file."""
    value: Value = json.loads(cell_parser(spec)(text))
    return value


def cell_parser(spec: Feature) -> Callable[[str], str]:
    """A checker for the cells of one column that returns each cell's value as a JSON
    fragment (``12.5``, ``"A"``, ``true``), ready for the stored row. Built once per
    column: an import calls it for every cell, so the type dispatch happens here."""
    kind = spec.type
    lo, hi = spec.min, spec.max

    def empty() -> CellProblem:
        return CellProblem("missing_value", "the cell is empty")

    def ranged(number: float) -> None:
        if lo is not None and number < lo:
            raise CellProblem("out_of_range", f"the value is below the minimum {_plain(lo)}")
        if hi is not None and number > hi:
            raise CellProblem("out_of_range", f"the value is above the maximum {_plain(hi)}")

    def integer(text: str) -> str:
        if _CANONICAL_INTEGER.fullmatch(text):
            ranged(int(text))
            return text
        if not _INTEGER.fullmatch(text):
            raise (
                empty()
                if text == ""
                else CellProblem("wrong_type", "the value is not a whole number")
            )
        number = int(text)
        ranged(number)
        return str(number)

    def decimal(pattern: re.Pattern[str], what: str, negative: str) -> Callable[[str], str]:
        def parse(text: str) -> str:
            if _CANONICAL_DECIMAL.fullmatch(text):  # already valid JSON: no conversion needed
                if text[0] == "-" and negative and float(text) != 0:
                    raise CellProblem(negative, "amounts cannot be negative")
                if lo is not None or hi is not None:
                    ranged(float(text))
                if pattern is _AMOUNT and len(text.partition(".")[2]) > 2:
                    raise CellProblem("wrong_type", what)
                return text
            if not pattern.fullmatch(text):
                raise empty() if text == "" else CellProblem("wrong_type", what)
            number = float(text)
            if number < 0 and negative:
                raise CellProblem(negative, "amounts cannot be negative")
            ranged(number)
            return str(int(number)) if number.is_integer() else repr(number)

        return parse

    seen_dates: dict[str, str] = {}  # a city's dates repeat: check each once

    def day(text: str) -> str:
        fragment = seen_dates.get(text)
        if fragment is None:
            if text == "":
                raise empty()
            fragment = '"' + _date(text) + '"'
            if len(seen_dates) < 100_000:
                seen_dates[text] = fragment
        return fragment

    def boolean(text: str) -> str:
        low = text.lower()
        if low in _TRUE:
            return "true"
        if low in _FALSE:
            return "false"
        raise (
            empty()
            if text == ""
            else CellProblem("wrong_type", "the value is not a boolean (true/false)")
        )

    fragments = {v: json.dumps(v, ensure_ascii=False) for v in spec.values or ()}
    listed = list(spec.values or ())

    def enum(text: str) -> str:
        fragment = fragments.get(text)
        if fragment is None:
            raise (
                empty()
                if text == ""
                else CellProblem("unknown_value", f"the value is not one of {listed}")
            )
        return fragment

    def string(text: str) -> str:
        if text == "":
            raise empty()
        if len(text) > MAX_STRING:
            raise CellProblem("too_long", f"the value is longer than {MAX_STRING} characters")
        if _CONTROL.search(text):
            raise CellProblem("wrong_type", "the value contains control characters")
        return quote(text)

    parsers: dict[str, Callable[[str], str]] = {
        "integer": integer,
        "amount": decimal(
            _AMOUNT, "the value is not an amount (digits, at most 2 decimals)", "negative_amount"
        ),
        "number": decimal(_NUMBER, "the value is not a decimal number", ""),
        "date": day,
        "boolean": boolean,
        "enum": enum,
        "string": string,
    }
    return parsers[kind]


_BOOLEAN_FRAGMENTS = {
    spelling: fragment
    for words, fragment in ((_TRUE, "true"), (_FALSE, "false"))
    for word in words
    for spelling in (word, word.upper(), word.capitalize())
}


def column_checker(spec: Feature) -> Callable[[list[str]], list[str] | None]:
    """The fast path of an import: check a whole column of stripped cells at once and
    return their JSON fragments, or None when any cell is not plainly fine (the caller
    then checks that column cell by cell with :func:`cell_parser` to say what is wrong).
    When it returns fragments they are exactly those :func:`cell_parser` returns."""
    kind = spec.type
    lo, hi = spec.min, spec.max

    def all_match(pattern: re.Pattern[str], cells: list[str]) -> bool:
        """Every cell matches ``pattern``: one regex pass over the column, one cell
        per line (a cell holding a line break of its own fails the count)."""
        joined = "\n".join(cells)
        return joined.count("\n") == len(cells) - 1 and pattern.fullmatch(joined) is not None

    def in_range(numbers: list[float] | list[int]) -> bool:
        return (lo is None or min(numbers) >= lo) and (hi is None or max(numbers) <= hi)

    def integers(cells: list[str]) -> list[str] | None:
        if not all_match(_COLUMN_INTEGERS, cells):
            return None
        return cells if in_range(list(map(int, cells))) else None

    def amounts(cells: list[str]) -> list[str] | None:
        # No minus sign at all here: a negative amount takes the slow path and is named.
        if not all_match(_COLUMN_AMOUNTS, cells):
            return None
        if (lo is not None and lo > 0) or hi is not None:
            return cells if in_range(list(map(float, cells))) else None
        return cells

    def numbers(cells: list[str]) -> list[str] | None:
        if not all_match(_COLUMN_NUMBERS, cells):
            return None
        if lo is not None or hi is not None:
            return cells if in_range(list(map(float, cells))) else None
        return cells

    fragments = {v: quote(v) for v in spec.values or ()}

    def enums(cells: list[str]) -> list[str] | None:
        if not set(cells) <= fragments.keys():
            return None
        return list(map(fragments.__getitem__, cells))

    def booleans(cells: list[str]) -> list[str] | None:
        if not set(cells) <= _BOOLEAN_FRAGMENTS.keys():
            return None
        return list(map(_BOOLEAN_FRAGMENTS.__getitem__, cells))

    checked_dates: dict[str, str] = {}  # a city's dates repeat: check each once

    def dates(cells: list[str]) -> list[str] | None:
        for text in set(cells).difference(checked_dates):
            try:
                fragment = '"' + _date(text) + '"'
            except CellProblem:
                return None
            if len(checked_dates) > 200_000:
                checked_dates.clear()
            checked_dates[text] = fragment
        return list(map(checked_dates.__getitem__, cells))

    def strings(cells: list[str]) -> list[str] | None:
        if not all(cells) or max(map(len, cells)) > MAX_STRING:
            return None
        if _CONTROL.search("".join(cells)):
            return None
        return list(map(quote, cells))

    checkers: dict[str, Callable[[list[str]], list[str] | None]] = {
        "integer": integers,
        "amount": amounts,
        "number": numbers,
        "date": dates,
        "boolean": booleans,
        "enum": enums,
        "string": strings,
    }
    checker = checkers[kind]

    def check(cells: list[str]) -> list[str] | None:
        return checker(cells) if cells else []

    return check


def _date(text: str) -> str:
    if not _DATE.fullmatch(text):
        raise CellProblem("bad_date", "the value is not an ISO date YYYY-MM-DD")
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise CellProblem("bad_date", "the value is not a calendar date") from None
    if day.year < 1900:
        raise CellProblem("bad_date", "the date is before 1900")
    return text


def _plain(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


# Request values ------------------------------------------------------------------------

MAX_REQUEST_NUMBER = 10**15  # the largest magnitude a request may compare a feature with


def parse_value(spec: Feature, raw: Any) -> Value:
    """A value given in JSON (a verification threshold) for ``spec``; raises
    :class:`InvalidValue` (the message does not repeat the value)."""
    kind = spec.type
    if kind in ("integer", "amount", "number"):
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise InvalidValue("value: a JSON number is required for this feature", field="value")
        # An int is compared exactly (math.isfinite(10**400) raises OverflowError).
        if isinstance(raw, int):
            out_of_range = abs(raw) > MAX_REQUEST_NUMBER
        else:
            out_of_range = not math.isfinite(raw) or abs(raw) > MAX_REQUEST_NUMBER
        if out_of_range:
            raise InvalidValue("value: the number is out of range", field="value")
        if kind == "integer" and not float(raw).is_integer():
            raise InvalidValue("value: a whole number is required", field="value")
        return raw
    if kind == "date":
        if not isinstance(raw, str):
            raise InvalidValue("value: an ISO date string is required", field="value")
        try:
            return _date(raw)
        except CellProblem as e:
            raise InvalidValue(f"value: {e.reason}", field="value") from None
    if kind == "boolean":
        if not isinstance(raw, bool):
            raise InvalidValue("value: true or false is required", field="value")
        return raw
    if not isinstance(raw, str):
        raise InvalidValue("value: a string is required", field="value")
    if kind == "enum":
        assert spec.values is not None
        if raw not in spec.values:
            raise InvalidValue(f"value: must be one of {list(spec.values)}", field="value")
    return raw


def evaluate(spec: Feature, stored: Value, op: str, expected: Value) -> bool:
    """Answer ``stored OP expected``. Ordering is numeric for numbers and chronological
    for dates (ISO strings order correctly); ``==``/``!=`` compare like values."""
    if op not in spec.verify_ops:
        raise InvalidInput(f"op {op!r} is not allowed for this feature", code="op_not_allowed")
    if op == "==":
        return _same(stored, expected)
    if op == "!=":
        return not _same(stored, expected)
    a: Any = stored
    b: Any = expected
    if spec.type in ("integer", "amount", "number"):
        a, b = float(stored), float(expected)
    if op == ">=":
        return bool(a >= b)
    if op == "<=":
        return bool(a <= b)
    raise InvalidInput(f"unknown op {op!r}", code="op_not_allowed")


def _same(a: Value, b: Value) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return float(a) == float(b)
    return a == b


# Bands -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Band:
    """The half-open interval ``[lower, upper)`` a value falls in (``None`` = unbounded)."""

    lower: float | None
    upper: float | None
    label: str
    label_en: str

    def as_json(self, unit: str | None) -> dict[str, Any]:
        return {
            "band": self.label,
            "band_en": self.label_en,
            "lower": _json_number(self.lower),
            "upper": _json_number(self.upper),
            "unit": unit,
        }


def _json_number(x: float | None) -> int | float | None:
    if x is None:
        return None
    return int(x) if float(x).is_integer() else x


def zh_number(x: float) -> str:
    """``1000000`` → ``100万``, ``100000000`` → ``1亿``, ``5000`` → ``5000``."""
    for size, suffix in ((1e8, "亿"), (1e4, "万")):
        if abs(x) >= size and (x / size) * 100 == int((x / size) * 100):
            return f"{x / size:g}{suffix}"
    return f"{x:g}"


def en_number(x: float) -> str:
    """``1000000`` → ``1M``, ``100000`` → ``100K``, ``1000000000`` → ``1B``."""
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(x) >= size and (x / size) * 100 == int((x / size) * 100):
            return f"{x / size:g}{suffix}"
    return f"{x:g}"


def bands(spec: Feature) -> list[Band]:
    """Every band of a feature, lowest first: below the first boundary (only when the
    feature's range allows such values), between boundaries, and at or above the last."""
    if not spec.bands:
        return []
    edges = list(spec.bands)
    out: list[Band] = []
    if spec.min is None or spec.min < edges[0]:
        out.append(Band(None, edges[0], f"<{zh_number(edges[0])}", f"<{en_number(edges[0])}"))
    for lo, hi in pairwise(edges):
        out.append(_between(spec, lo, hi))
    if spec.max is None or spec.max >= edges[-1]:
        out.append(Band(edges[-1], None, f"≥{zh_number(edges[-1])}", f"≥{en_number(edges[-1])}"))
    return out


def _between(spec: Feature, lo: float, hi: float) -> Band:
    if spec.type == "integer" and float(lo).is_integer() and float(hi).is_integer():
        # Whole numbers read better as closed ranges: [1, 3) is "1–2", [0, 1) is "0".
        top = hi - 1
        if spec.max is not None:
            top = min(top, spec.max)
        if top == lo:
            return Band(lo, hi, zh_number(lo), en_number(lo))
        return Band(
            lo, hi, f"{zh_number(lo)}–{zh_number(top)}", f"{en_number(lo)}–{en_number(top)}"
        )
    if lo == 0 and hi == 1:  # "none to speak of" (e.g. arrears below one yuan)
        return Band(lo, hi, "<1", "<1")
    return Band(lo, hi, f"{zh_number(lo)}–{zh_number(hi)}", f"{en_number(lo)}–{en_number(hi)}")


def band(spec: Feature, value: Value) -> dict[str, Any]:
    """The band ``value`` falls in, as JSON (labels, bounds, unit); never the value."""
    if not spec.bands or isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput("this feature has no bands", code="feature_not_banded")
    for b in bands(spec):
        if (b.lower is None or value >= b.lower) and (b.upper is None or value < b.upper):
            return b.as_json(spec.unit)
    raise InvalidInput("the value lies outside every band", code="feature_not_banded")


# Encoding for models -------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """One model input derived from a feature: ``tax.paid_12m`` (the number itself),
    ``log1p(tax.paid_12m)``, or ``registration.industry=C`` (1.0 when equal, else 0.0)."""

    spec: str
    feature: str
    transform: str  # "raw" | "log1p" | "indicator"
    equals: str | None = None


def parse_column(catalog: Catalog, text: str) -> Column:
    """Parse a column spec (see :class:`Column`); raises InvalidInput naming it.
    Restricted features (personal information) are never model inputs."""
    if not isinstance(text, str):
        raise InvalidInput("a feature column must be a string", code="unknown_feature")
    named = text[6:-1] if text.startswith("log1p(") and text.endswith(")") else text
    named = named.partition("=")[0]
    restricted = catalog.features.get(named)
    if restricted is not None and restricted.restricted:
        raise InvalidInput(
            f"{named} is personal information used only inside the grade",
            code="feature_restricted",
        )
    if text.startswith("log1p(") and text.endswith(")"):
        fid = text[6:-1]
        rule = catalog.rule(fid)
        if rule.spec.type not in ("integer", "amount", "number"):
            raise InvalidInput(f"log1p needs a numeric feature: {text!r}", code="unknown_feature")
        return Column(text, fid, "log1p")
    if "=" in text:
        fid, _, equals = text.partition("=")
        rule = catalog.rule(fid)
        if rule.spec.type == "enum":
            assert rule.spec.values is not None
            if equals not in rule.spec.values:
                raise InvalidInput(f"{equals!r} is not a value of {fid}", code="unknown_feature")
        elif rule.spec.type != "boolean" or equals not in ("true", "false"):
            raise InvalidInput(
                f"indicators need an enum or boolean feature: {text!r}", code="unknown_feature"
            )
        return Column(text, fid, "indicator", equals)
    rule = catalog.rule(text)
    if rule.spec.type == "string":
        raise InvalidInput(f"{text} is text and cannot be a model input", code="unknown_feature")
    return Column(text, text, "raw")


def encode(rule: FeatureRule, column: Column, value: Value, as_of: date) -> float:
    """A stored value as a model input:

    - integer / amount / number: the number (``log1p`` applies ``log(1 + x)``);
    - boolean: 1.0 for true, 0.0 for false;
    - enum: the position in the catalog's ``values`` (0, 1, …; for example tax credit
      rating A=0 … D=4, size micro=0 … large=3); indicators are 1.0 / 0.0;
    - date: years from the date to ``as_of`` (an establishment date gives the age).
    """
    spec = rule.spec
    if column.transform == "indicator":
        if spec.type == "boolean":
            return 1.0 if value is (column.equals == "true") else 0.0
        return 1.0 if value == column.equals else 0.0
    if spec.type == "boolean":
        return 1.0 if value is True else 0.0
    if spec.type == "enum":
        assert spec.values is not None
        return float(spec.values.index(str(value)))
    if spec.type == "date":
        return (as_of - date.fromisoformat(str(value))).days / 365.25
    number = float(value)
    if column.transform == "log1p":
        return math.log1p(max(number, 0.0))
    return number
