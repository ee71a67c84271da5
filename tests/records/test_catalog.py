"""The catalog's rules: cells, bands, predicates, encodings."""

from __future__ import annotations

import math
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.errors import InvalidInput
from common.settings import Feature, load_settings
from records.catalog import (
    Catalog,
    CellProblem,
    InvalidValue,
    band,
    bands,
    cell_parser,
    column_checker,
    en_number,
    encode,
    evaluate,
    parse_cell,
    parse_column,
    parse_value,
    zh_number,
)

# Hypothesis tests cannot take function-scoped fixtures: one catalog for them.
_CATALOG = Catalog(load_settings(env={}).config)


def spec(catalog: Catalog, fid: str) -> Feature:
    return catalog.rule(fid).spec


# Cells ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fid", "text", "value"),
    [
        ("tax.paid_12m", "1234567.89", 1234567.89),
        ("tax.paid_12m", "0", 0),
        ("tax.paid_12m", "0.00", 0.0),
        ("tax.paid_12m", "007", 7),
        ("social_security.insured_employees", "42", 42),
        ("social_security.months_in_arrears_12m", "12", 12),
        ("utilities.power_kwh_12m", "12345.678", 12345.678),
        ("tax.credit_rating", "M", "M"),
        ("registration.established", "2015-02-28", "2015-02-28"),
        ("admin_penalty.dishonest", "false", False),
        ("admin_penalty.dishonest", "TRUE", True),
        ("registration.name", "杭州华信贸易有限公司", "杭州华信贸易有限公司"),
        ("registration.name", 'say "hi", \\ ok', 'say "hi", \\ ok'),
    ],
)
def test_cells_parse_to_their_typed_value(
    catalog: Catalog, fid: str, text: str, value: object
) -> None:
    parsed = parse_cell(spec(catalog, fid), text)
    assert parsed == value and type(parsed) is type(value)


@pytest.mark.parametrize(
    ("fid", "text", "code"),
    [
        ("tax.paid_12m", "", "missing_value"),
        ("tax.paid_12m", "-5", "negative_amount"),
        ("tax.paid_12m", "-0.01", "negative_amount"),
        ("tax.paid_12m", "12.345", "wrong_type"),
        ("tax.paid_12m", "1e6", "wrong_type"),
        ("tax.paid_12m", "1,000", "wrong_type"),
        ("tax.paid_12m", "NaN", "wrong_type"),
        ("social_security.insured_employees", "4.5", "wrong_type"),
        ("social_security.insured_employees", "-1", "out_of_range"),
        ("social_security.months_in_arrears_12m", "13", "out_of_range"),
        ("utilities.power_kwh_12m", "-3.5", "out_of_range"),
        ("tax.credit_rating", "AAA", "unknown_value"),
        ("registration.established", "2015-02-30", "bad_date"),
        ("registration.established", "15/02/2015", "bad_date"),
        ("registration.established", "20150228", "bad_date"),
        ("admin_penalty.dishonest", "maybe", "wrong_type"),
        ("registration.name", "x" * 201, "too_long"),
        ("registration.name", "a\x07b", "wrong_type"),
    ],
)
def test_bad_cells_have_a_stable_code(catalog: Catalog, fid: str, text: str, code: str) -> None:
    with pytest.raises(CellProblem) as e:
        parse_cell(spec(catalog, fid), text)
    assert e.value.code == code


@given(st.text(min_size=4, max_size=40))
def test_a_problem_never_repeats_the_value(text: str) -> None:
    cat = _CATALOG
    marked = "Z9" + text + "Q7"
    for fid in (
        "tax.paid_12m",
        "tax.credit_rating",
        "registration.established",
        "social_security.insured_employees",
        "admin_penalty.dishonest",
    ):
        reasons = []
        try:
            parse_cell(cat.rule(fid).spec, marked)
        except CellProblem as e:
            reasons.append(e.reason)
        assert not any(marked in r for r in reasons)


def test_the_json_fragment_is_valid_json_for_every_number_form(catalog: Catalog) -> None:
    amount = cell_parser(spec(catalog, "tax.paid_12m"))
    for text, fragment in [("12", "12"), ("012", "12"), ("12.50", "12.50"), ("0012.5", "12.5")]:
        assert amount(text) == fragment


# Bands ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fid", "value", "label", "label_en"),
    [
        ("tax.paid_12m", 1_234_567, "100万–500万", "1M–5M"),
        ("tax.paid_12m", 1_000_000, "100万–500万", "1M–5M"),  # half-open: lower bound in
        ("tax.paid_12m", 999_999.99, "10万–100万", "100K–1M"),
        ("tax.paid_12m", 0, "0–10万", "0–100K"),
        ("tax.paid_12m", 250_000_000, "≥1亿", "≥100M"),
        ("tax.revenue_12m", 30_000_000, "1000万–5000万", "10M–50M"),
        ("tax.arrears", 0, "<1", "<1"),
        ("tax.arrears", 0.99, "<1", "<1"),
        ("tax.arrears", 1, "1–10万", "1–100K"),
        ("social_security.insured_employees", 9, "0–9", "0–9"),
        ("social_security.insured_employees", 10, "10–49", "10–49"),
        ("social_security.insured_employees", 5000, "≥1000", "≥1K"),
        ("social_security.months_in_arrears_12m", 0, "0", "0"),
        ("social_security.months_in_arrears_12m", 12, "6–12", "6–12"),
        ("utilities.late_payments_12m", 2, "1–2", "1–2"),
        ("utilities.power_kwh_12m", 50_000.5, "1万–10万", "10K–100K"),
    ],
)
def test_a_value_is_reported_as_its_band(
    catalog: Catalog, fid: str, value: float, label: str, label_en: str
) -> None:
    out = band(spec(catalog, fid), value)
    assert (out["band"], out["band_en"]) == (label, label_en)
    assert out["unit"] == spec(catalog, fid).unit
    assert value not in (out["band"], out["band_en"])


@given(st.floats(min_value=0, max_value=1e12, allow_nan=False))
def test_every_value_falls_in_exactly_one_band(value: float) -> None:
    for rule in _CATALOG.features.values():
        if not rule.spec.bands:
            continue
        if rule.spec.max is not None and value > rule.spec.max:
            continue
        if rule.spec.type == "integer":
            value = math.floor(value)
        hits = [
            b
            for b in bands(rule.spec)
            if (b.lower is None or value >= b.lower) and (b.upper is None or value < b.upper)
        ]
        assert len(hits) == 1, (rule.id, value, hits)


def test_bands_only_for_numbers(catalog: Catalog) -> None:
    with pytest.raises(InvalidInput):
        band(spec(catalog, "tax.credit_rating"), "A")


@pytest.mark.parametrize(
    ("x", "zh", "en"),
    [
        (0, "0", "0"),
        (5000, "5000", "5K"),
        (1e5, "10万", "100K"),
        (2e7, "2000万", "20M"),
        (1e8, "1亿", "100M"),
        (1e9, "10亿", "1B"),
        (1.5e8, "1.5亿", "150M"),
    ],
)
def test_numbers_read_in_chinese_and_english_units(x: float, zh: str, en: str) -> None:
    assert (zh_number(x), en_number(x)) == (zh, en)


# Predicates ----------------------------------------------------------------------------


def test_predicates_compare_numbers_enums_and_refuse_other_ops(catalog: Catalog) -> None:
    paid = spec(catalog, "tax.paid_12m")
    assert evaluate(paid, 1_500_000, ">=", 1_000_000) is True
    assert evaluate(paid, 999_999.99, ">=", 1_000_000) is False
    assert evaluate(paid, 1_000_000, "<=", 1_000_000) is True
    rating = spec(catalog, "tax.credit_rating")
    assert evaluate(rating, "A", "==", "A") is True
    assert evaluate(rating, "A", "!=", "A") is False
    with pytest.raises(InvalidInput) as e:
        evaluate(paid, 1, "==", 1)  # not among the feature's verify_ops
    assert e.value.code == "op_not_allowed"


@pytest.mark.parametrize(
    ("fid", "raw"),
    [
        ("tax.paid_12m", "1000000"),
        ("tax.paid_12m", True),
        ("tax.paid_12m", float("inf")),
        ("tax.paid_12m", 10**400),  # once an OverflowError (500) in math.isfinite
        ("tax.paid_12m", -(10**400)),
        ("tax.paid_12m", 10**15 + 1),
        ("tax.paid_12m", None),
        ("social_security.insured_employees", 10.5),
        ("tax.credit_rating", "AA"),
        ("tax.credit_rating", 1),
    ],
)
def test_request_values_of_the_wrong_kind_are_refused(
    catalog: Catalog, fid: str, raw: object
) -> None:
    with pytest.raises(InvalidValue) as e:
        parse_value(spec(catalog, fid), raw)
    assert e.value.details["field"] == "value"


def test_request_values_of_the_right_kind_pass(catalog: Catalog) -> None:
    assert parse_value(spec(catalog, "tax.paid_12m"), 1_000_000) == 1_000_000
    assert parse_value(spec(catalog, "tax.credit_rating"), "B") == "B"
    assert parse_value(spec(catalog, "registration.established"), "2020-01-01") == "2020-01-01"


# Encodings -----------------------------------------------------------------------------


def test_encodings_for_models(catalog: Catalog) -> None:
    as_of = date(2025, 1, 1)

    def enc(col: str, value: object) -> float:
        column = parse_column(catalog, col)
        return encode(catalog.rule(column.feature), column, value, as_of)  # type: ignore[arg-type]

    assert enc("tax.paid_12m", 1000) == 1000.0
    assert enc("log1p(tax.paid_12m)", 1000) == pytest.approx(math.log1p(1000))
    assert enc("tax.credit_rating", "A") == 0.0
    assert enc("tax.credit_rating", "D") == 4.0
    assert enc("registration.size", "large") == 3.0
    assert enc("registration.industry=C", "C") == 1.0
    assert enc("registration.industry=C", "F") == 0.0
    assert enc("admin_penalty.dishonest", True) == 1.0
    assert enc("admin_penalty.dishonest=false", True) == 0.0
    assert enc("registration.established", "2015-01-01") == pytest.approx(10.0, abs=0.01)


@pytest.mark.parametrize(
    "col",
    [
        "registration.name",
        "log1p(tax.credit_rating)",
        "registration.industry=Z",
        "tax.paid_12m=1",
        "nope.nothing",
    ],
)
def test_unusable_model_columns_are_refused(catalog: Catalog, col: str) -> None:
    with pytest.raises(InvalidInput):
        parse_column(catalog, col)


def test_catalog_knows_departments_and_their_features(catalog: Catalog) -> None:
    tax = catalog.department_features("tax")
    assert set(tax) == {"tax.paid_12m", "tax.revenue_12m", "tax.credit_rating", "tax.arrears"}
    mr = catalog.department_features("market_regulation")
    assert "registration.name" in mr and "admin_penalty.dishonest" in mr
    assert catalog.rule("judicial.litigation_36m").department == "court"
    assert catalog.rule("registration.name").public
    assert not catalog.rule("tax.paid_12m").public


# The fast column path agrees with the cell-by-cell path ---------------------------------

_CELL_TEXT = st.one_of(
    st.from_regex(r"-?[0-9]{1,17}(\.[0-9]{0,10})?", fullmatch=True),
    st.sampled_from(
        [
            "0",
            "00",
            "-0",
            "12",
            "13",
            "1e5",
            " 7",
            "true",
            "FALSE",
            "Yes",
            "是",
            "A",
            "M",
            "micro",
            "2020-02-29",
            "2021-02-29",
            "",
            "x\ny",
            "3\n4",
        ]
    ),
    st.text(max_size=12),
)


@given(st.sampled_from(sorted(_CATALOG.features)), st.lists(_CELL_TEXT, max_size=12))
def test_the_column_check_agrees_with_the_cell_check(fid: str, cells: list[str]) -> None:
    feature = _CATALOG.rule(fid).spec
    one_by_one: list[str] | None = []
    parse = cell_parser(feature)
    for text in cells:
        try:
            one_by_one.append(parse(text))  # type: ignore[union-attr]
        except CellProblem:
            one_by_one = None
            break
    fast = column_checker(feature)(cells)
    # The fast path may defer to the slow one (None), never disagree with it.
    assert fast is None or fast == one_by_one
    if one_by_one is None:
        assert fast is None


@pytest.mark.parametrize(
    ("fid", "cells"),
    [
        ("tax.paid_12m", ["0", "12.5", "1000000.00"]),
        ("social_security.months_in_arrears_12m", ["0", "12"]),
        ("utilities.power_kwh_12m", ["0", "1234.5"]),
        ("tax.credit_rating", ["A", "D"]),
        ("admin_penalty.dishonest", ["true", "false"]),
        ("registration.established", ["2020-02-29", "1999-12-31"]),
        ("registration.name", ["杭州华信贸易有限公司", 'a "b"']),
    ],
)
def test_clean_columns_take_the_fast_path(catalog: Catalog, fid: str, cells: list[str]) -> None:
    feature = spec(catalog, fid)
    parse = cell_parser(feature)
    assert column_checker(feature)(cells) == [parse(c) for c in cells]
