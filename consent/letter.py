"""The authorization letter (授权书) the enterprise reads and accepts.

Its exact text is rendered from the request and the catalog; the SHA-256 of its UTF-8
bytes becomes the grant's ``letter`` claim, so a grant proves which words were agreed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

OPERATION_NAMES: dict[str, str] = {
    "report": "查询分级报告（非公开数据仅以区间呈现）",
    "verify": "核验是否满足条件（仅返回是或否）",
    "score": "联合模型评分（同态加密计算，仅返回评分）",
    "train": "联合建模训练（数据不出平台）",
    "grade": "查询信用等级（高级/一级/备选，仅返回等级与各指标字母）",
}


@dataclass(frozen=True)
class LetterTerms:
    enterprise: str
    institution_id: str
    institution_name: str
    purpose_code: str
    purpose_name: str
    ops: tuple[str, ...]
    categories: tuple[tuple[str, str, str], ...]  # (code, name, department name)
    duration_days: int
    max_uses: int


def render(terms: LetterTerms) -> str:
    """The letter text. Deterministic: the same terms always give the same bytes."""
    ops = "\n".join(f"  {i}. {OPERATION_NAMES[o]}（{o}）" for i, o in enumerate(terms.ops, 1))
    cats = "\n".join(
        f"  {i}. {name}（{code}），数据提供单位：{dept}"
        for i, (code, name, dept) in enumerate(terms.categories, 1)
    )
    return (
        "信用信息查询使用授权书\n"
        "\n"
        f"授权人（信息主体）统一社会信用代码：{terms.enterprise}\n"
        f"被授权机构：{terms.institution_name}（{terms.institution_id}）\n"
        f"授权用途：{terms.purpose_name}（{terms.purpose_code}）\n"
        "\n"
        "本企业同意被授权机构通过信易贷数据网关，在下列范围内使用本企业的涉企信用信息：\n"
        f"一、授权操作：\n{ops}\n"
        f"二、数据类别：\n{cats}\n"
        f"三、授权期限：自本企业同意之日起 {terms.duration_days} 日。\n"
        f"四、使用次数上限：{terms.max_uses} 次。\n"
        "\n"
        "被授权机构不得获取非公开数据的原始明细，仅能获得计算结果（评分、是否核验、区间报告）。"
        "每一次使用均记入不可篡改的审计日志，本企业与数据提供单位可随时查看。"
        "本企业可随时暂停或撤销本授权，撤销后立即生效。\n"
    )


def letter_hash(text: str) -> str:
    """``sha256:`` followed by the lowercase hex digest of the UTF-8 text."""
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def format_day(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")
