"""From catalog features to a :class:`grading.population.Population`.

The grade reads the catalog features in :data:`FEATURES` (ids of ``config.yaml``);
each arrives as one array per feature over the same enterprises, ``None`` where the
department has no row for an enterprise (the store's current values). Missing values
read as "no record", which each indicator rule handles (docs/grading.md "Data").
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

import numpy as np

from grading.population import (
    ENVIRONMENT,
    PERSONAL_LEVELS,
    PUBLIC_GRADES,
    Population,
    Statements,
    dishonesty_counts,
)

FEATURES = (
    "registration.status",
    "registration.industry_division",
    "registration.established",
    "registration.registered_capital",
    "registration.high_tech",
    "admin_penalty.dishonest",
    "admin_penalty.penalties_36m",
    "honours.famous_brand",
    "honours.contract_honouring",
    "honours.quality_credit_aa",
    "honours.quality_award",
    "tax.paid_12m",
    "tax.paid_prev_12m",
    "tax.credit_rating",
    "utilities.power_spend_12m",
    "utilities.power_spend_prev_12m",
    "utilities.water_spend_12m",
    "utilities.water_spend_prev_12m",
    "gas.spend_12m",
    "gas.spend_prev_12m",
    "social_security.pension_paid",
    "social_security.medical_paid",
    "social_security.injury_paid",
    "social_security.unemployment_paid",
    "social_security.maternity_paid",
    "social_security.months_in_arrears_12m",
    "housing_fund.contributors",
    "real_estate.premises",
    "environment.credit_colour",
    "public_credit.dishonesty_records",
    "public_credit.grade",
    "public_credit.credit_demo",
    "personal_credit.legal_representative_level",
    "financial_credit.has_loan_record",
    "financial_credit.default_records",
    "financial_credit.interest_arrears",
    "industrial_performance.evaluated",
    "industrial_performance.score",
    "customs.advanced_certified",
    "financial_statements.total_assets",
    "financial_statements.current_assets",
    "financial_statements.total_liabilities",
    "financial_statements.current_liabilities",
    "financial_statements.equity",
    "financial_statements.revenue",
    "financial_statements.revenue_prev",
    "financial_statements.net_profit",
)
INSURANCES = ("pension", "medical", "injury", "unemployment", "maternity")


_NONE = np.array(None, dtype=object)


def _present(col: np.ndarray) -> np.ndarray:
    """Where a value is present (not None; not NaN in a float column)."""
    if col.dtype.kind == "f":
        known: np.ndarray = ~np.isnan(col)
        return known
    out: np.ndarray = np.not_equal(col, _NONE)
    return out


def _is(col: np.ndarray | None, value: object, n: int) -> np.ndarray:
    """Where the value equals ``value`` (never where missing)."""
    if col is None:
        return np.zeros(n, dtype=bool)
    if col.dtype.kind == "f":  # a typed boolean column: 1.0 / 0.0 / NaN
        if not isinstance(value, bool):
            return np.zeros(n, dtype=bool)
        flags: np.ndarray = col == float(value)
        return flags
    out: np.ndarray = np.equal(col, np.array(value, dtype=object)).astype(bool)
    return out


def _numbers(col: np.ndarray | None, n: int) -> np.ndarray:
    """Floats, NaN for None."""
    if col is None:
        return np.full(n, np.nan)
    if col.dtype != object:
        return col.astype(np.float64)
    out = np.full(n, np.nan)
    present = _present(col)
    out[present] = col[present].astype(np.float64)
    return out


def _flags(col: np.ndarray | None, n: int) -> np.ndarray:
    """True only where the value is true (None and false are false)."""
    return _is(col, True, n)


def _codes(col: np.ndarray | None, values: tuple[str, ...], n: int) -> np.ndarray:
    """Index of each value in ``values``; -1 for None or anything else."""
    out = np.full(n, -1, dtype=np.int8)
    if col is None:
        return out
    for k, v in enumerate(values):
        out[_is(col, v, n)] = k
    return out


def population(uscc: np.ndarray, columns: Mapping[str, np.ndarray], as_of: date) -> Population:
    """The population of ``uscc`` (object array) from feature columns: object arrays
    with None where missing, or typed ones (float64 with NaN, booleans as 1.0/0.0;
    datetime64 with NaT); a feature absent from ``columns`` is missing for all."""
    n = len(uscc)

    def col(fid: str) -> np.ndarray | None:
        return columns.get(fid)

    def num(fid: str) -> np.ndarray:
        return _numbers(col(fid), n)

    def flag(fid: str) -> np.ndarray:
        return _flags(col(fid), n)

    status = col("registration.status")
    active = _is(status, "active", n)
    divisions = col("registration.industry_division")
    division = np.zeros(n, dtype=np.int16)
    if divisions is not None:
        present = _present(divisions)
        division[present] = divisions[present].astype(np.int16)
    established_text = col("registration.established")
    established = np.full(n, np.datetime64("1900-01-01", "D"))
    if established_text is not None and established_text.dtype.kind == "M":
        known = ~np.isnat(established_text)
        established[known] = established_text[known]
    elif established_text is not None:
        present = _present(established_text)
        established[present] = established_text[present].astype("datetime64[D]")

    def spend(*fids: str) -> np.ndarray:
        parts = np.vstack([num(f) for f in fids])
        total = np.nansum(parts, axis=0)
        out: np.ndarray = np.where(np.isnan(parts).all(axis=0), np.nan, total)
        return out

    insured = [col(f"social_security.{k}_paid") for k in INSURANCES]
    if all(c is None for c in insured):
        paid = np.full(n, -1, dtype=np.int8)
    else:
        paid = sum((_flags(c, n).astype(np.int8) for c in insured), np.zeros(n, dtype=np.int8))
        first = insured[0] if insured[0] is not None else next(c for c in insured if c is not None)
        paid = np.where(_present(first), paid, -1).astype(np.int8)
    premises_col = col("real_estate.premises")
    premises = np.full(n, -1, dtype=np.int8)
    if premises_col is not None:
        premises[_is(premises_col, "owned", n)] = 1
        premises[_is(premises_col, "leased", n)] = 0
    loans_col = col("financial_credit.has_loan_record")
    loan_record = np.full(n, -1, dtype=np.int8)
    if loans_col is not None:
        loan_record[_is(loans_col, True, n)] = 1
        loan_record[_is(loans_col, False, n)] = 0
    records = col("public_credit.dishonesty_records")
    total, open_24m, within_36m = dishonesty_counts(
        records.tolist() if records is not None else [None] * n, as_of
    )
    evaluated = flag("industrial_performance.evaluated")
    tax_a = _is(col("tax.credit_rating"), "A", n)
    personal = _codes(col("personal_credit.legal_representative_level"), PERSONAL_LEVELS, n)
    statements = Statements(
        *(
            num(f"financial_statements.{name}")
            for name in (
                "total_assets",
                "current_assets",
                "total_liabilities",
                "current_liabilities",
                "equity",
                "revenue",
                "revenue_prev",
                "net_profit",
            )
        )
    )
    return Population.build(
        n,
        uscc=uscc,
        active=active,
        division=division,
        established=established,
        registered_capital=np.nan_to_num(num("registration.registered_capital")),
        high_tech=flag("registration.high_tech"),
        tax_paid=num("tax.paid_12m"),
        tax_paid_prev=num("tax.paid_prev_12m"),
        tax_a=tax_a,
        utility_spend=spend(
            "utilities.power_spend_12m", "utilities.water_spend_12m", "gas.spend_12m"
        ),
        utility_spend_prev=spend(
            "utilities.power_spend_prev_12m",
            "utilities.water_spend_prev_12m",
            "gas.spend_prev_12m",
        ),
        insurances_paid=paid,
        insurance_arrears_months=num("social_security.months_in_arrears_12m"),
        housing_contributors=num("housing_fund.contributors"),
        premises=premises,
        personal_level=personal,
        environment=_codes(col("environment.credit_colour"), ENVIRONMENT, n),
        dishonesty_total=total,
        dishonesty_open_24m=open_24m,
        dishonesty_36m=within_36m,
        serious=flag("admin_penalty.dishonest"),
        penalties_36m=np.nan_to_num(num("admin_penalty.penalties_36m")).astype(np.int32),
        public_grade=_codes(col("public_credit.grade"), PUBLIC_GRADES, n),
        loan_record=loan_record,
        default_records=np.nan_to_num(num("financial_credit.default_records")).astype(np.int32),
        interest_arrears=flag("financial_credit.interest_arrears"),
        industrial_evaluated=evaluated,
        industrial_score=np.where(evaluated, num("industrial_performance.score"), np.nan),
        honours={
            "famous_brand": flag("honours.famous_brand"),
            "tax_a": tax_a,
            "contract_honouring": flag("honours.contract_honouring"),
            "credit_demo": flag("public_credit.credit_demo"),
            "customs_advanced": flag("customs.advanced_certified"),
            "quality_credit_aa": flag("honours.quality_credit_aa"),
            "quality_award": flag("honours.quality_award"),
        },
        statements=statements,
    )
