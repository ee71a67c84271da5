"""Errors of the grading core (codes are stable; clients may rely on them)."""

from __future__ import annotations

from common.errors import InvalidInput


class StatementsInconsistent(InvalidInput):
    """Self-declared financial statements that do not add up (JY 附件2 三.3)."""

    code = "statements_inconsistent"


class InvalidDishonestyRecords(InvalidInput):
    """A public-credit cell that is not a list of ``YYYY-MM-DD:repaired|open`` items."""

    code = "invalid_dishonesty_records"
