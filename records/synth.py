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
from datetime import date
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
    rate_of_default = float(default[b].mean()) if b.any() else 0.0
    return City(n, seed, as_of, tables, rate_of_default)


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
