"""A synthetic city: enterprises, the files its departments would load, and one bank's
labelled loan book. Seeded and deterministic: the same (enterprises, seed, as_of) gives
byte-identical files.

The enterprises are drawn like a Chinese prefecture-level city's SMEs: industries by
GB/T 4754 section (wholesale/retail and manufacturing dominate), sizes mostly micro and
small, ages from months to decades, revenue and electricity with each industry's
seasonal profile over the 12 months before ``as_of``, USCCs valid under GB 32100
(authority 9, type 1, Hangzhou district codes, GB 11714 organization codes).

Credit risk is latent. Three independent parts drive it:

- ``shared``: general health, visible both to departments and to the bank;
- ``gov``: tax compliance, payroll and utility discipline, litigation: visible only in
  department data;
- ``bank``: the relationship with the bank (overdues, balances): visible only to it.

Defaults follow a logistic model of all three, so a joint model over department and
bank features separates defaulters measurably better than a bank-only model.

Files (one per department of the catalog, named ``<department>.csv``, each a ``uscc``
column plus the department's feature ids it knows how to draw), and
``bank_loans.csv`` with columns :data:`BANK_COLUMNS`. ``city.json`` describes it all.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from common import uscc as uscc_rules
from common.files import open_private
from records.catalog import Catalog

DEFAULT_AS_OF = date(2025, 6, 30)

SECTIONS = "ABCDEFGHIJKLMNOPQRS"
# Share of enterprises per GB/T 4754-2017 section in a typical city's SME register.
SECTION_WEIGHTS = {
    "A": 0.03, "B": 0.005, "C": 0.20, "D": 0.005, "E": 0.08, "F": 0.30, "G": 0.05,
    "H": 0.06, "I": 0.07, "J": 0.01, "K": 0.03, "L": 0.09, "M": 0.05, "N": 0.005,
    "O": 0.02, "P": 0.01, "Q": 0.005, "R": 0.015, "S": 0.001,
}  # fmt: skip
# Revenue per employee (CNY per year), tax as a share of revenue, kWh per employee.
REVENUE_PER_EMPLOYEE = {"C": 600e3, "F": 1.5e6, "E": 500e3, "I": 400e3, "H": 200e3,
                        "A": 250e3, "K": 2e6, "L": 400e3, "M": 350e3, "G": 500e3,
                        "B": 800e3, "D": 1.2e6, "J": 1e6}  # fmt: skip
TAX_RATE = {"C": 0.04, "F": 0.015, "E": 0.03, "I": 0.05, "H": 0.03, "K": 0.08, "B": 0.06,
            "D": 0.05, "J": 0.07}  # fmt: skip
KWH_PER_EMPLOYEE = {"C": 12000, "D": 50000, "B": 20000, "A": 3000, "H": 6000, "G": 3000,
                    "F": 2000, "I": 2500, "E": 2000}  # fmt: skip
MONTHLY_WAGE = {"I": 14000, "J": 15000, "M": 11000, "K": 9000, "D": 10000, "C": 7000,
                "H": 5000, "F": 6000, "A": 4500, "E": 6500}  # fmt: skip
# Seasonal profiles of monthly activity, January first (mean 1).
SEASON = {
    "A": [0.6, 0.5, 0.7, 0.9, 1.0, 1.0, 1.0, 1.1, 1.5, 1.6, 1.2, 0.9],  # harvest
    "C": [0.9, 0.6, 1.0, 1.0, 1.0, 1.0, 0.95, 0.95, 1.05, 1.1, 1.2, 1.25],  # Spring Festival dip
    "E": [0.5, 0.3, 0.9, 1.1, 1.2, 1.2, 1.1, 1.1, 1.2, 1.1, 1.1, 1.2],  # site work stops
    "F": [1.4, 1.1, 0.9, 0.85, 0.9, 1.0, 0.8, 0.8, 0.9, 1.0, 1.25, 1.1],  # festival, Double 11
    "H": [1.0, 1.3, 0.8, 0.9, 1.0, 0.9, 1.2, 1.3, 0.9, 1.2, 0.7, 0.8],  # holidays
    "R": [1.1, 1.3, 0.8, 0.9, 1.0, 0.9, 1.2, 1.2, 0.9, 1.1, 0.8, 0.8],
}
SIZES = ("micro", "small", "medium", "large")
SIZE_WEIGHTS = (0.62, 0.27, 0.09, 0.02)
EMPLOYEES = {  # lognormal (median, sigma) and bounds per size
    "micro": (4, 0.6, 1, 9),
    "small": (30, 0.6, 10, 99),
    "medium": (160, 0.35, 100, 299),
    "large": (600, 0.6, 300, 5000),
}
DISTRICTS = ("330102", "330105", "330106", "330108", "330109", "330110", "330111", "330112")
# Two-character trade names (字号).
_TRADE_CHARS = (
    "华信恒达鼎盛瑞丰金诚宏远博通天成中科海纳启明正泰新锐永利兴业汇通明德安泰卓越东方"
    "晨光锦程嘉禾润丰泰和同创睿智远航星河和合长青德润众合佳美聚源通达融汇广厦银河万象"
)
_TRADE_NAMES = tuple(_TRADE_CHARS[i : i + 2] for i in range(0, len(_TRADE_CHARS), 2))
_INDUSTRY_WORDS = {
    "A": "农业发展", "B": "矿业", "C": "机械制造", "D": "能源", "E": "建设工程",
    "F": "贸易", "G": "物流", "H": "餐饮管理", "I": "信息技术", "J": "投资管理",
    "K": "置业", "L": "企业管理咨询", "M": "科技", "N": "环境工程", "O": "家政服务",
    "P": "教育科技", "Q": "健康管理", "R": "文化传媒", "S": "服务",
}  # fmt: skip
RATINGS = ("A", "B", "M", "C", "D")

BANK_COLUMNS = (
    "uscc",
    "years_with_bank",  # years the enterprise has banked with the bank
    "avg_balance",  # average deposit balance over 12 months, CNY
    "overdue_count_24m",  # overdue instalments in 24 months
    "inquiries_6m",  # credit-report inquiries by lenders in 6 months
    "loan_amount",  # CNY
    "loan_term_months",
    "interest_rate",  # annual, percent
    "collateral",  # 1 when secured
    "default",  # 1 when the loan defaulted within 12 months
)

# Department-side model inputs that suit a risk model of this city (column specs of
# records.store.feature_matrix): amounts on a log scale, counts as they are.
MODEL_COLUMNS = (
    "log1p(tax.paid_12m)",
    "log1p(tax.revenue_12m)",
    "tax.credit_rating",
    "log1p(tax.arrears)",
    "log1p(social_security.insured_employees)",
    "social_security.months_in_arrears_12m",
    "log1p(housing_fund.contributors)",
    "log1p(housing_fund.paid_12m)",
    "log1p(utilities.power_kwh_12m)",
    "utilities.late_payments_12m",
    "judicial.enforcement_cases",
    "judicial.litigation_36m",
    "admin_penalty.penalties_36m",
    "admin_penalty.dishonest",
    "registration.established",
    "registration.size",
)

# Column formats: how numbers become CSV text.
Format = Callable[[Any], str]


def _int(x: Any) -> str:
    return str(int(x))


def _money(x: Any) -> str:
    return f"{x:.2f}"


def _one_decimal(x: Any) -> str:
    return f"{x:.1f}"


def _str(x: Any) -> str:
    return str(x)


def _bool(x: Any) -> str:
    return "true" if x else "false"


@dataclass
class Table:
    """One file: ordered columns of equal length, and how each is written."""

    columns: dict[str, np.ndarray] = field(default_factory=dict)
    formats: dict[str, Format] = field(default_factory=dict)

    def add(self, name: str, values: np.ndarray, fmt: Format) -> None:
        self.columns[name] = values
        self.formats[name] = fmt

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0

    def text_rows(self, chunk: int = 50_000) -> Iterator[list[tuple[str, ...]]]:
        names = list(self.columns)
        for start in range(0, len(self), chunk):
            cols = [
                [self.formats[n](v) for v in self.columns[n][start : start + chunk].tolist()]
                for n in names
            ]
            yield list(zip(*cols, strict=True))


@dataclass
class City:
    enterprises: int
    seed: int
    as_of: date
    tables: dict[str, Table]  # file stem -> table
    default_rate: float

    def feature_columns(self) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Every enterprise (the registration file's order) and each department
        feature as an object array aligned to it, None where the department has no row:
        what a store's current values would give."""
        uscc = self.tables["market_regulation"].columns["uscc"]
        position = {u: i for i, u in enumerate(uscc.tolist())}
        out: dict[str, np.ndarray] = {}
        for name, table in self.tables.items():
            if name == "bank_loans":
                continue
            rows = np.fromiter(
                (position[u] for u in table.columns["uscc"].tolist()), np.int64, len(table)
            )
            for fid, values in table.columns.items():
                if fid != "uscc":
                    full = np.full(len(uscc), None, dtype=object)
                    full[rows] = values
                    out[fid] = full
        return uscc, out

    def manifest(self) -> dict[str, Any]:
        return {
            "enterprises": self.enterprises,
            "seed": self.seed,
            "as_of": self.as_of.isoformat(),
            "default_rate": round(self.default_rate, 4),
            "files": {
                f"{name}.csv": {"rows": len(t), "columns": list(t.columns)}
                for name, t in self.tables.items()
            },
        }


# The market-regulation file of legal representatives' id numbers (raw: the import
# keeps only their keyed hash, records/pseudonyms.py). A file of its own, so a loader
# that holds no pseudonym key can still load the department's other file.
LEGAL_IDS_TABLE = "market_regulation_legal_ids"
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def resident_id(region: str, born: date, sequence: int) -> str:
    """A GB 11643-1999 citizen id number: region, birth date, sequence, check character."""
    body = f"{region}{born:%Y%m%d}{sequence:03d}"
    total = sum(int(d) * w for d, w in zip(body, _ID_WEIGHTS, strict=True))
    return body + "10X98765432"[total % 11]


def _legal_ids(codes: np.ndarray, seed: int, as_of: date) -> Table:
    """Each enterprise's legal representative's id number, born 25 to 65 years before
    ``as_of`` in the enterprise's division (its own random stream: the other files do
    not change)."""
    rng = np.random.default_rng([seed, 11643])
    n = len(codes)
    ages = rng.integers(25 * 365, 65 * 365, n)
    sequences = rng.integers(0, 1000, n)
    ids = np.array(
        [
            resident_id(code[2:8], as_of - timedelta(days=int(a)), int(q))
            for code, a, q in zip(codes.tolist(), ages.tolist(), sequences.tolist(), strict=True)
        ],
        dtype=object,
    )
    table = Table()
    table.add("uscc", codes, _str)
    table.add("registration.legal_representative_id", ids, _str)
    return table


def _sigmoid(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = 1.0 / (1.0 + np.exp(-x))
    return out


def _org_code(digits: str) -> str:
    """GB 11714 organization code: 8 characters and their check character."""
    weights = (3, 7, 9, 10, 5, 8, 4, 2)
    total = sum(int(c, 36) * w for c, w in zip(digits, weights, strict=True))
    check = 11 - total % 11
    return digits + ("X" if check == 10 else "0" if check == 11 else str(check))


def _usccs(rng: np.random.Generator, n: int) -> np.ndarray:
    serials = rng.choice(90_000_000, size=n, replace=False) + 10_000_000
    districts = rng.choice(len(DISTRICTS), size=n)
    return np.array(
        [
            uscc_rules.complete("91" + DISTRICTS[d] + _org_code(str(s)))
            for d, s in zip(districts.tolist(), serials.tolist(), strict=True)
        ],
        dtype=object,
    )


def _names(rng: np.random.Generator, sections: np.ndarray) -> np.ndarray:
    k = len(_TRADE_NAMES)
    first = rng.integers(0, k, size=len(sections))
    second = rng.integers(0, k, size=len(sections))
    suffix = rng.random(len(sections))
    out = []
    for a, b, sec, s in zip(
        first.tolist(), second.tolist(), sections.tolist(), suffix.tolist(), strict=True
    ):
        trade = _TRADE_NAMES[a] + (_TRADE_NAMES[b][0] if s < 0.3 else "")
        form = "股份有限公司" if s > 0.97 else "有限公司"
        out.append(f"杭州{trade}{_INDUSTRY_WORDS[sec]}{form}")
    return np.array(out, dtype=object)


def _lookup(table: Mapping[str, float], sections: np.ndarray, default: float) -> np.ndarray:
    return np.array([table.get(s, default) for s in sections.tolist()], dtype=np.float64)


def generate(catalog: Catalog, enterprises: int, seed: int, *, as_of: date = DEFAULT_AS_OF) -> City:
    """Draw a city of ``enterprises`` enterprises. Department files hold the features of
    the catalog this generator knows; other catalog features are left out."""
    if enterprises < 1:
        raise ValueError("a city needs at least one enterprise")
    n = enterprises
    rng = np.random.default_rng(seed)

    # Who they are.
    codes = _usccs(rng, n)
    weights = np.array([SECTION_WEIGHTS[s] for s in SECTIONS])
    sections = np.array(list(SECTIONS), dtype=object)[
        rng.choice(len(SECTIONS), size=n, p=weights / weights.sum())
    ]
    size_idx = rng.choice(len(SIZES), size=n, p=SIZE_WEIGHTS)
    sizes = np.array(SIZES, dtype=object)[size_idx]
    employees = np.empty(n)
    for i, s in enumerate(SIZES):
        median, sigma, lo, hi = EMPLOYEES[s]
        m = size_idx == i
        employees[m] = np.clip(np.round(median * rng.lognormal(0, sigma, m.sum())), lo, hi)
    age_years = np.clip(rng.gamma(1.6 + 0.8 * size_idx, 3.0), 0.1, 40.0)
    established = np.datetime64(as_of.isoformat()) - np.round(age_years * 365.25).astype(
        "timedelta64[D]"
    )

    # Latent risk, in three independent parts.
    shared = rng.standard_normal(n)
    gov = rng.standard_normal(n)
    bank = rng.standard_normal(n)
    young = (age_years < 2).astype(float)
    seen_by_gov = 0.55 * shared + 0.85 * gov + 0.3 * young
    seen_by_bank = 0.6 * shared + 0.8 * bank

    # Money and activity with each industry's seasons.
    season = np.array([SEASON.get(s, [1.0] * 12) for s in sections.tolist()])
    season = season / season.mean(axis=1, keepdims=True)
    scale = _lookup(REVENUE_PER_EMPLOYEE, sections, 400e3) * employees
    scale *= rng.lognormal(-0.15 * shared, 0.45)
    monthly_revenue = scale[:, None] / 12 * season * rng.lognormal(0, 0.12, (n, 12))
    revenue = monthly_revenue.sum(axis=1)
    compliance = np.exp(-0.35 * gov + rng.normal(0, 0.2, n))
    tax_paid = revenue * _lookup(TAX_RATE, sections, 0.03) * np.clip(compliance, 0.2, 2.0)
    monthly_kwh = (
        _lookup(KWH_PER_EMPLOYEE, sections, 2500)[:, None]
        * employees[:, None]
        / 12
        * season
        * rng.lognormal(0, 0.25, (n, 1))
    )
    power_kwh = monthly_kwh.sum(axis=1)

    # Registration and standing.
    u = rng.random(n)
    status = np.where(
        u < 0.02 + 0.02 * _sigmoid(2 * seen_by_gov - 2),
        "cancelled",
        np.where(u > 1 - (0.01 + 0.03 * _sigmoid(2 * seen_by_gov - 3)), "revoked", "active"),
    ).astype(object)
    capital_median = np.array([50e4, 300e4, 2000e4, 1e8])[size_idx]
    capital = np.round(capital_median * rng.lognormal(0, 0.7, n) / 1e4) * 1e4
    capital = np.maximum(capital, 1e4)
    penalties = rng.poisson(np.exp(0.6 * seen_by_gov - 2.0 + 0.2 * size_idx))
    dishonest = rng.random(n) < _sigmoid(1.8 * seen_by_gov - 6.0)

    # Tax.
    rating_score = seen_by_gov + rng.normal(0, 0.5, n)
    rating = np.array(RATINGS, dtype=object)[
        np.digitize(rating_score, [-0.6, 0.5, 1.0, 1.9])
    ]  # A < B < (M) < C < D by score; new enterprises are rated M
    rating = np.where((age_years < 1.0) & (rating != "D"), "M", rating).astype(object)
    has_arrears = rng.random(n) < _sigmoid(1.6 * seen_by_gov - 3.0)
    arrears = np.where(has_arrears, np.round(tax_paid * rng.uniform(0.05, 0.6, n), 2), 0.0)

    # Social security and housing fund.
    coverage = np.clip(0.92 - 0.08 * gov + rng.normal(0, 0.08, n), 0.3, 1.0)
    insured = np.round(employees * coverage)
    arrears_months = np.where(
        rng.random(n) < _sigmoid(1.7 * seen_by_gov - 2.6),
        np.minimum(1 + rng.poisson(np.exp(0.5 * seen_by_gov)), 12),
        0,
    )
    hf_share = np.clip(
        np.array([0.35, 0.6, 0.85, 0.95])[size_idx] - 0.15 * gov + rng.normal(0, 0.1, n), 0, 1
    )
    contributors = np.round(insured * hf_share)
    wage = _lookup(MONTHLY_WAGE, sections, 6000) * rng.lognormal(0, 0.2, n)
    hf_paid = np.round(contributors * wage * 0.12 * 2 * 12, 2)

    # Utilities: a late month is likelier in an enterprise's slack months.
    slack = np.clip(1.0 - season, 0.0, None)
    p_late = _sigmoid(-3.4 + 1.1 * seen_by_gov[:, None] + 2.5 * slack)
    late = (rng.random((n, 12)) < p_late).sum(axis=1)

    # Courts.
    enforcement = rng.poisson(np.exp(1.1 * seen_by_gov - 2.8 + 0.15 * size_idx))
    litigation = rng.poisson(np.exp(0.6 * seen_by_gov - 1.3 + 0.35 * size_idx))

    # The bank's own book: active enterprises that borrowed.
    borrower = (status == "active") & (rng.random(n) < 0.75)
    years_with_bank = np.round(np.minimum(age_years, rng.gamma(2.0, 2.0, n)), 1)
    avg_balance = np.round(revenue * 0.04 * np.exp(-0.45 * seen_by_bank + rng.normal(0, 0.4, n)))
    overdue = rng.poisson(np.exp(1.0 * seen_by_bank - 1.6))
    inquiries = rng.poisson(np.exp(0.45 * seen_by_bank - 0.3 + 0.4 * young))
    loan_amount = np.clip(np.round(revenue * rng.uniform(0.05, 0.3, n) / 1e4) * 1e4, 10e4, 3000e4)
    term = rng.choice([6, 12, 24, 36], size=n, p=[0.15, 0.5, 0.25, 0.1])
    internal_rating = seen_by_bank + rng.normal(0, 0.7, n)
    rate = np.round(np.clip(3.45 + 0.9 * (internal_rating + 1.5), 3.1, 9.5), 2)
    collateral = (rng.random(n) < 0.25 + 0.1 * size_idx).astype(int)
    risk = 0.7 * shared + 0.8 * gov + 0.65 * bank + 0.35 * young - 0.15 * size_idx
    default = (rng.random(n) < _sigmoid(-2.9 + 1.25 * risk - 0.3 * collateral)).astype(int)

    active = status != "cancelled"
    grading_draws = _grading_draws(
        np.random.default_rng([seed, 2]),  # its own stream: the older features keep their values
        as_of=as_of,
        sections=sections,
        size_idx=size_idx,
        employees=employees,
        age_years=age_years,
        seen_by_gov=seen_by_gov,
        seen_by_bank=seen_by_bank,
        shared=shared,
        tax_paid=tax_paid,
        revenue=revenue,
        power_kwh=power_kwh,
        dishonest=dishonest,
        active=active,
        borrower=borrower,
    )
    draws: dict[str, tuple[np.ndarray, Format, np.ndarray | None]] = {
        "registration.name": (_names(rng, sections), _str, None),
        "registration.industry": (sections, _str, None),
        "registration.established": (established.astype(str).astype(object), _str, None),
        "registration.registered_capital": (capital, _money, None),
        "registration.size": (sizes, _str, None),
        "registration.status": (status, _str, None),
        "admin_penalty.penalties_36m": (penalties, _int, None),
        "admin_penalty.dishonest": (dishonest, _bool, None),
        "judicial.enforcement_cases": (enforcement, _int, None),
        "judicial.litigation_36m": (litigation, _int, None),
        "tax.paid_12m": (np.round(tax_paid, 2), _money, active),
        "tax.revenue_12m": (np.round(revenue, 2), _money, active),
        "tax.credit_rating": (rating, _str, active),
        "tax.arrears": (arrears, _money, active),
        "social_security.insured_employees": (insured, _int, active),
        "social_security.months_in_arrears_12m": (arrears_months, _int, active),
        "housing_fund.contributors": (contributors, _int, active),
        "housing_fund.paid_12m": (hf_paid, _money, active),
        "utilities.power_kwh_12m": (np.round(power_kwh, 1), _one_decimal, active),
        "utilities.late_payments_12m": (late, _int, active),
        **grading_draws,
    }
    tables: dict[str, Table] = {}
    for department in catalog.departments:
        known = [f for f in catalog.department_features(department) if f in draws]
        if not known:
            continue
        masks = [draws[f][2] for f in known]
        rows = np.ones(n, dtype=bool)
        for m in masks:
            if m is not None:
                rows &= m
        table = Table()
        table.add("uscc", codes[rows], _str)
        for f in known:
            values, fmt, _ = draws[f]
            table.add(f, values[rows], fmt)
        tables[department] = table
    loans = Table()
    b = borrower
    loans.add("uscc", codes[b], _str)
    loans.add("years_with_bank", years_with_bank[b], _one_decimal)
    loans.add("avg_balance", avg_balance[b], _money)
    loans.add("overdue_count_24m", overdue[b], _int)
    loans.add("inquiries_6m", inquiries[b], _int)
    loans.add("loan_amount", loan_amount[b], _money)
    loans.add("loan_term_months", term[b], _int)
    loans.add("interest_rate", rate[b], _str)
    loans.add("collateral", collateral[b], _int)
    loans.add("default", default[b], _int)
    tables["bank_loans"] = loans
    tables[LEGAL_IDS_TABLE] = _legal_ids(codes, seed, as_of)
    rate_of_default = float(default[b].mean()) if b.any() else 0.0
    return City(n, seed, as_of, tables, rate_of_default)


# GB/T 4754-2017 divisions (two-digit) of each section, and the share of a section's
# enterprises in each (weights for the sections this city has most of).
DIVISIONS = {
    "A": range(1, 6), "B": range(6, 13), "C": range(13, 44), "D": range(44, 47),
    "E": range(47, 51), "F": range(51, 53), "G": range(53, 61), "H": range(61, 63),
    "I": range(63, 66), "J": range(66, 70), "K": range(70, 71), "L": range(71, 73),
    "M": range(73, 76), "N": range(76, 80), "O": range(80, 83), "P": range(83, 84),
    "Q": range(84, 86), "R": range(86, 91), "S": range(91, 97),
}  # fmt: skip
DIVISION_WEIGHTS = {
    "C": {17: 5, 18: 4, 26: 3, 28: 2, 29: 3, 30: 2, 31: 1, 32: 1, 33: 5, 34: 5, 35: 4,
          36: 2, 38: 4, 39: 3, 40: 1},
    "E": {47: 4, 48: 3, 49: 1, 50: 3},
    "F": {51: 6, 52: 4},
    "I": {63: 1, 64: 3, 65: 6},
}  # fmt: skip
HIGH_TECH_SHARE = {"C": 0.12, "I": 0.35, "M": 0.30, "D": 0.05, "N": 0.05}
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国文辉鹏飞云峰志宏晓红海燕新春雪"
ENVIRONMENT_SECTIONS = frozenset("BCDEN")  # sections the ecology bureau rates
COLOURS = ("green", "blue", "yellow", "red")
PUBLIC_GRADES = ("A+", "A", "B", "C", "D")
PERSONAL_LEVELS = ("AAA", "AA", "A", "B", "C", "D")


def _grading_draws(
    rng: np.random.Generator,
    *,
    as_of: date,
    sections: np.ndarray,
    size_idx: np.ndarray,
    employees: np.ndarray,
    age_years: np.ndarray,
    seen_by_gov: np.ndarray,
    seen_by_bank: np.ndarray,
    shared: np.ndarray,
    tax_paid: np.ndarray,
    revenue: np.ndarray,
    power_kwh: np.ndarray,
    dishonest: np.ndarray,
    active: np.ndarray,
    borrower: np.ndarray,
) -> dict[str, tuple[np.ndarray, Format, np.ndarray | None]]:
    """What JY 附件2 needs beyond the older features, drawn from the same latent risk
    (``seen_by_gov`` for departments, ``seen_by_bank`` for the credit reference
    center), so grades separate the loan book's defaulters (tests/records)."""
    n = len(sections)
    # Industry division within the section.
    division = np.empty(n, dtype=np.int64)
    for sec, codes in DIVISIONS.items():
        m = sections == sec
        if not m.any():
            continue
        weights = DIVISION_WEIGHTS.get(sec, {})
        w = np.array([weights.get(c, 1.0) for c in codes], dtype=np.float64)
        division[m] = np.array(list(codes))[rng.choice(len(codes), size=m.sum(), p=w / w.sum())]
    divisions = np.array([f"{d:02d}" for d in division.tolist()], dtype=object)
    high_tech = rng.random(n) < _lookup(HIGH_TECH_SHARE, sections, 0.02) * 2 * _sigmoid(-shared)
    surname = rng.integers(0, len(SURNAMES), n)
    given = rng.integers(0, len(GIVEN), (n, 2))
    two = rng.random(n) < 0.7
    legal = np.array(
        [
            SURNAMES[s] + GIVEN[g[0]] + (GIVEN[g[1]] if t else "")
            for s, g, t in zip(surname.tolist(), given.tolist(), two.tolist(), strict=True)
        ],
        dtype=object,
    )

    # Growth over the same period of the previous year: weaker for riskier enterprises;
    # nothing a year ago for those younger than a year, a part year for the next.
    trend = 0.04 - 0.10 * seen_by_gov
    prior = np.clip(age_years - 1.0, 0.0, 1.0)
    tax_growth = np.exp(trend + rng.normal(0, 0.25, n))
    tax_prev = np.round(tax_paid / tax_growth * prior, 2)
    use_growth = np.exp(0.6 * trend + rng.normal(0, 0.15, n))
    power_spend = np.round(power_kwh * rng.uniform(0.6, 0.9, n), 2)
    water_spend = np.round(employees * 450 * rng.lognormal(0, 0.5, n), 2)
    uses_gas = np.isin(sections, ["C", "D", "H"]) | (rng.random(n) < 0.15)
    gas_spend = np.where(uses_gas, np.round(employees * 900 * rng.lognormal(0, 0.6, n), 2), 0.0)

    def previous(current: np.ndarray) -> np.ndarray:
        out: np.ndarray = np.round(current / use_growth * prior, 2)
        return out

    # The five insurances: a riskier or micro enterprise skips some.
    skip = _sigmoid(-4.2 + 1.3 * seen_by_gov + 0.6 * (size_idx == 0))
    insurances = rng.random((n, 5)) >= skip[:, None]
    owned = rng.random(n) < _sigmoid(-1.6 + 0.9 * size_idx + 0.06 * age_years - 0.4 * shared)
    in_scope = np.isin(sections, list(ENVIRONMENT_SECTIONS)) & (rng.random(n) < 0.8)
    colour = np.array(COLOURS, dtype=object)[
        np.digitize(seen_by_gov + rng.normal(0, 0.6, n), [-0.5, 0.9, 2.0])
    ]
    environment = np.where(in_scope, colour, "out_of_scope").astype(object)

    # Public credit: dishonesty records (dates within five years, not before the
    # enterprise existed), the credit office's grade and its model enterprises.
    count = rng.poisson(np.exp(1.1 * seen_by_gov - 2.9))
    count = np.minimum(np.where(dishonest, np.maximum(count, 1), count), 8)
    records = np.full(n, "none", dtype=object)
    for i in np.flatnonzero(count).tolist():
        span = int(min(age_years[i], 5.0) * 365.25)
        back = np.sort(rng.integers(0, max(span, 1), count[i]))
        repaired = rng.random(count[i]) < 0.25 + 0.1 * back / 365.25
        records[i] = ";".join(
            f"{(as_of - _days(b)).isoformat()}:{'repaired' if r else 'open'}"
            for b, r in zip(back.tolist(), repaired.tolist(), strict=True)
        )
    grade_score = seen_by_gov + 0.6 * count + rng.normal(0, 0.5, n)
    public_grade = np.array(PUBLIC_GRADES, dtype=object)[
        np.digitize(grade_score, [-1.95, -1.0, 0.65, 1.55])
    ]
    credit_demo = rng.random(n) < 0.03 * _sigmoid(-2 * seen_by_gov) * (1 + size_idx)
    personal_score = 0.6 * shared + 0.4 * seen_by_gov + rng.normal(0, 0.7, n)
    personal = np.array(PERSONAL_LEVELS, dtype=object)[
        np.digitize(personal_score, [-1.2, -0.4, 0.5, 1.2, 1.9])
    ]

    # The credit reference center sees the bank side of risk.
    has_loans = borrower | (rng.random(n) < 0.3)
    defaults = np.where(has_loans, rng.poisson(np.exp(1.0 * seen_by_bank - 2.3)), 0)
    arrears = (defaults > 0) & (rng.random(n) < _sigmoid(seen_by_bank - 0.8))

    industrial = np.isin(sections, ["B", "C", "D"])
    perf = np.round(np.clip(72 - 7 * seen_by_gov - 3 * shared + rng.normal(0, 6, n), 20, 100), 1)
    perf = np.where(industrial, perf, 0.0)
    good = _sigmoid(-1.5 * seen_by_gov)
    customs = np.isin(sections, ["C", "F"]) & (rng.random(n) < 0.02 * good * (1 + size_idx))
    famous = rng.random(n) < 0.01 * good * (1 + 2 * size_idx)
    contract = rng.random(n) < 0.03 * good * (1 + size_idx)
    quality_aa = (sections == "C") & (rng.random(n) < 0.05 * good * (1 + size_idx))
    award = rng.random(n) < 0.005 * good * (1 + 2 * size_idx)

    # Self-declared statements, filed by a share of enterprises (larger ones more often);
    # they balance: equity is what the assets leave after the liabilities.
    declared = active & (rng.random(n) < 0.18 + 0.12 * size_idx)
    total_assets = np.round(revenue * rng.lognormal(-0.3, 0.4, n), 2)
    debt_ratio = np.clip(0.55 + 0.12 * seen_by_gov + rng.normal(0, 0.12, n), 0.05, 1.3)
    liabilities = np.round(total_assets * debt_ratio, 2)
    equity = np.round(total_assets - liabilities, 2)
    current_assets = np.round(total_assets * rng.uniform(0.3, 0.8, n), 2)
    current_liabilities = np.round(liabilities * rng.uniform(0.5, 0.9, n), 2)
    declared_revenue = np.round(revenue * rng.lognormal(0, 0.05, n), 2)
    revenue_prev = np.round(declared_revenue / tax_growth, 2)
    margin = 0.05 - 0.04 * seen_by_gov + rng.normal(0, 0.02, n)
    net_profit = np.round(declared_revenue * margin, 2)
    period_end = np.full(n, date(as_of.year - 1, 12, 31).isoformat(), dtype=object)

    flag = _bool
    filed = declared
    return {
        "registration.industry_division": (divisions, _str, None),
        "registration.high_tech": (high_tech, flag, None),
        "registration.legal_representative": (legal, _str, None),
        "honours.famous_brand": (famous, flag, None),
        "honours.contract_honouring": (contract, flag, None),
        "honours.quality_credit_aa": (quality_aa, flag, None),
        "honours.quality_award": (award, flag, None),
        "tax.paid_prev_12m": (tax_prev, _money, active),
        "utilities.power_spend_12m": (power_spend, _money, active),
        "utilities.power_spend_prev_12m": (previous(power_spend), _money, active),
        "utilities.water_spend_12m": (water_spend, _money, active),
        "utilities.water_spend_prev_12m": (previous(water_spend), _money, active),
        "gas.spend_12m": (gas_spend, _money, active),
        "gas.spend_prev_12m": (previous(gas_spend), _money, active),
        "social_security.pension_paid": (insurances[:, 0], flag, active),
        "social_security.medical_paid": (insurances[:, 1], flag, active),
        "social_security.injury_paid": (insurances[:, 2], flag, active),
        "social_security.unemployment_paid": (insurances[:, 3], flag, active),
        "social_security.maternity_paid": (insurances[:, 4], flag, active),
        "real_estate.premises": (np.where(owned, "owned", "leased").astype(object), _str, active),
        "environment.credit_colour": (environment, _str, active),
        "public_credit.dishonesty_records": (records, _str, None),
        "public_credit.grade": (public_grade, _str, None),
        "public_credit.credit_demo": (credit_demo, flag, None),
        "personal_credit.legal_representative_level": (personal, _str, None),
        "financial_credit.has_loan_record": (has_loans, flag, active),
        "financial_credit.default_records": (defaults, _int, active),
        "financial_credit.interest_arrears": (arrears, flag, active),
        "industrial_performance.evaluated": (industrial, flag, active),
        "industrial_performance.score": (perf, _one_decimal, active),
        "customs.advanced_certified": (customs, flag, active),
        "financial_statements.period_end": (period_end, _str, filed),
        "financial_statements.total_assets": (total_assets, _money, filed),
        "financial_statements.current_assets": (current_assets, _money, filed),
        "financial_statements.total_liabilities": (liabilities, _money, filed),
        "financial_statements.current_liabilities": (current_liabilities, _money, filed),
        "financial_statements.equity": (equity, _money, filed),
        "financial_statements.revenue": (declared_revenue, _money, filed),
        "financial_statements.revenue_prev": (revenue_prev, _money, filed),
        "financial_statements.net_profit": (net_profit, _money, filed),
    }


def _days(n: int) -> timedelta:
    return timedelta(days=n)


def write(city: City, out: Path) -> list[Path]:
    """Write every table as ``<name>.csv`` (UTF-8, header first) and ``city.json``.

    The files are 0600 from the start and a folder made here is 0700: synthetic or not,
    they have the shape of department records and a bank's loan book."""
    if not out.exists():
        out.mkdir(parents=True, mode=0o700)
    written = []
    for name, table in city.tables.items():
        path = out / f"{name}.csv"
        with open_private(path) as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(list(table.columns))
            for chunk in table.text_rows():
                writer.writerows(chunk)
        written.append(path)
    manifest = out / "city.json"
    with open_private(manifest) as fh:
        fh.write(json.dumps(city.manifest(), ensure_ascii=False, indent=2) + "\n")
    written.append(manifest)
    return written
