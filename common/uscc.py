"""Unified Social Credit Code (统一社会信用代码), GB 32100-2015.

An 18-character code: registration authority (1), institution type (1), administrative
division (6 digits), organization identifier (9), check digit (1).  The alphabet is
the 31 characters ``0-9`` and ``A-Y`` without ``I O Z S V``; character *i* (0-based)
of the first 17 has weight ``3**i mod 31``; the check digit is ``31 - sum mod 31``
(31 maps to ``0``).
"""

from __future__ import annotations

import re

from common.errors import InvalidInput

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_VALUE = {c: i for i, c in enumerate(ALPHABET)}
WEIGHTS = tuple(pow(3, i, 31) for i in range(17))

# Registration authority code -> institution type codes it may issue (GB 32100-2015
# Table 1 as amended).
AUTHORITY_TYPES: dict[str, str] = {
    "1": "1239",  # 机构编制
    "2": "19",  # 外交
    "3": "123459",  # 司法行政
    "4": "19",  # 文化
    "5": "1239",  # 民政
    "6": "12",  # 旅游
    "7": "129",  # 宗教
    "8": "19",  # 工会
    "9": "123",  # 市场监督管理（工商）
    "A": "19",  # 中央军委改革和编制办公室
    "N": "1239",  # 农业
    "Y": "1",  # 其他
}

_SHAPE = re.compile(r"^[0-9A-HJ-NP-RTUWXY]{2}[0-9]{6}[0-9A-HJ-NP-RTUWXY]{10}$")


class InvalidUSCC(InvalidInput):
    code = "invalid_uscc"


def check_digit(body: str) -> str:
    """The check character for the first 17 characters of a code."""
    if len(body) != 17 or any(c not in _VALUE for c in body):
        raise InvalidUSCC(f"cannot compute a check digit for {body!r}")
    total = sum(_VALUE[c] * w for c, w in zip(body, WEIGHTS, strict=True))
    return ALPHABET[(31 - total % 31) % 31]


def problem(code: str) -> str | None:
    """Why ``code`` is not a valid USCC, or None when it is."""
    if not isinstance(code, str):
        return "not a string"
    if len(code) != 18:
        return f"must be 18 characters, got {len(code)}"
    if not _SHAPE.match(code):
        return "contains characters outside the GB 32100 alphabet or a non-digit division code"
    types = AUTHORITY_TYPES.get(code[0])
    if types is None:
        return f"unknown registration authority code {code[0]!r}"
    if code[1] not in types:
        return f"institution type {code[1]!r} is not issued by authority {code[0]!r}"
    if check_digit(code[:17]) != code[17]:
        return "check digit does not match"
    return None


def is_valid(code: str) -> bool:
    return problem(code) is None


def validate(code: str) -> str:
    """Return ``code`` when valid (upper-case input only: codes are printed upper-case),
    otherwise raise :class:`InvalidUSCC` naming the reason."""
    why = problem(code)
    if why is not None:
        raise InvalidUSCC(f"invalid USCC: {why}")  # never the value: it may be anything
    return code


def complete(body: str) -> str:
    """Append the check digit to a 17-character body."""
    return body + check_digit(body)
