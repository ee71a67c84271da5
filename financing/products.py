"""Financial products (金融产品超市, YX 四(一)一; JY 三(三)2: institutions publish
products on the platform).

Pure: no Flask, no SQL, no clock. Invariants:
- amounts are whole CNY yuan, ``0 < amount_min <= amount_max <= amount_max limit``;
  rates are % a year, ``0 < rate_min <= rate_max <= rate_max limit``; terms are whole
  months, ``1 <= term_months_max <= limit``;
- the decision a product needs is an ordinary consent: a catalog purpose, ops that
  the purpose allows, non-empty catalog categories (the same rules as
  ``consent.policy.parse_request`` enforces when the application creates it);
- ``min_grade`` is one of the grade words (JY 附件2) or absent;
- a product is never deleted: withdrawing hides it from the list, past applications
  keep pointing at it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from common.settings import ConfigFile
from financing.errors import InvalidProduct

GRADES: tuple[str, ...] = ("高级", "一级", "备选")
"""The grade words, best first (JY 附件2)."""
GRADE_KEYS: dict[str, str] = {"高级": "top", "一级": "first", "备选": "candidate"}
"""A message key for each grade word (pages in English name them too)."""

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Product:
    id: str
    institution: str
    name: str
    kind: str
    amount_min: int
    amount_max: int
    rate_min: float
    rate_max: float
    term_months_max: int
    purpose: str
    ops: tuple[str, ...]
    categories: tuple[str, ...]
    min_grade: str | None
    status: str  # "active" | "withdrawn"
    created_at: int
    withdrawn_at: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "institution": self.institution,
            "name": self.name,
            "kind": self.kind,
            "amount_min": self.amount_min,
            "amount_max": self.amount_max,
            "rate_min": self.rate_min,
            "rate_max": self.rate_max,
            "term_months_max": self.term_months_max,
            "purpose": self.purpose,
            "ops": list(self.ops),
            "categories": list(self.categories),
            "min_grade": self.min_grade,
            "status": self.status,
            "created_at": self.created_at,
        }


def text(value: str, what: str, limit: int) -> str:
    """A one-line text field, trimmed; refused when empty, too long or with controls."""
    value = value.strip()
    if not value or len(value) > limit or _CONTROL.search(value):
        raise InvalidProduct(f"{what}: 1 to {limit} printable characters", field=what)
    return value


def new_product(
    config: ConfigFile,
    *,
    product_id: str,
    institution: str,
    fields: Mapping[str, Any],
    now: int,
) -> Product:
    """A product from its published fields, every rule above checked."""
    cfg = config.financing
    name = text(str(fields["name"]), "name", cfg.max_text_chars)
    kind = fields["kind"]
    if kind not in cfg.product_kinds:
        raise InvalidProduct(f"kind: one of {list(cfg.product_kinds)}", field="kind")
    a_min, a_max = fields["amount_min"], fields["amount_max"]
    if not 0 < a_min <= a_max <= cfg.amount_max:
        raise InvalidProduct(
            f"amounts: 0 < amount_min <= amount_max <= {cfg.amount_max} (CNY)",
            field="amount_min" if not 0 < a_min <= a_max else "amount_max",
        )
    r_min, r_max = float(fields["rate_min"]), float(fields["rate_max"])
    if not 0 < r_min <= r_max <= cfg.rate_max:
        raise InvalidProduct(
            f"rates: 0 < rate_min <= rate_max <= {cfg.rate_max} (% a year)",
            field="rate_min" if not 0 < r_min <= r_max else "rate_max",
        )
    term = fields["term_months_max"]
    if not 1 <= term <= cfg.term_months_max:
        raise InvalidProduct(
            f"term_months_max: 1 to {cfg.term_months_max}", field="term_months_max"
        )
    purpose = fields["purpose"]
    if purpose not in config.purposes:
        raise InvalidProduct(f"unknown purpose {purpose!r}", field="purpose")
    ops = tuple(dict.fromkeys(fields["ops"]))
    allowed = config.purposes[purpose].ops
    if not ops or any(op not in allowed for op in ops):
        raise InvalidProduct(f"ops: a non-empty subset of {list(allowed)}", field="ops")
    categories = tuple(dict.fromkeys(fields["categories"]))
    if not categories or any(c not in config.categories for c in categories):
        raise InvalidProduct("categories: non-empty, from the catalog", field="categories")
    restricted = [c for c in categories if config.categories[c].visibility == "restricted"]
    if restricted:
        raise InvalidProduct(f"categories: {restricted[0]} is never shared", field="categories")
    min_grade = fields.get("min_grade")
    if min_grade is not None and min_grade not in GRADES:
        raise InvalidProduct(f"min_grade: one of {list(GRADES)}", field="min_grade")
    return Product(
        id=product_id,
        institution=institution,
        name=name,
        kind=kind,
        amount_min=a_min,
        amount_max=a_max,
        rate_min=r_min,
        rate_max=r_max,
        term_months_max=term,
        purpose=purpose,
        ops=ops,
        categories=categories,
        min_grade=min_grade,
        status="active",
        created_at=now,
    )


def grades_at_least(grade: str) -> tuple[str, ...]:
    """The ``min_grade`` values an enterprise of ``grade`` satisfies (itself and below)."""
    if grade not in GRADES:
        raise InvalidProduct(f"grade: one of {list(GRADES)}", field="grade")
    return GRADES[GRADES.index(grade) :]
