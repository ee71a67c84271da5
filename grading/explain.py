"""Why one enterprise got its grade: every indicator's letter and reason, the methods'
results, the caps, and what would raise it (JY 附件2; docs/grading.md).

The explanation carries the enterprise's own values (ratios, ranks, scores): it is for
the operator (``xinyi grades explain``) and for the enterprise itself, never for an
institution, which gets letters only (CONTRACT "Credit grades").
"""

from __future__ import annotations

import math
from typing import Any

from grading.engine import (
    ALTERNATE,
    FIRST,
    GRADES,
    GRADES_EN,
    HIGH,
    INDICATORS,
    LETTERS,
    METHODS,
    NO_GRADE,
    Grades,
)
from grading.population import ENVIRONMENT, PERSONAL_LEVELS, PUBLIC_GRADES, Population
from grading.ranking import CITY, DIVISION, SECTION

NAMES = {
    1: ("纳税", "Tax paid"),
    2: ("水电气消费", "Water, power and gas"),
    3: ("社保缴纳", "Social insurance"),
    4: ("公积金缴存", "Housing fund"),
    5: ("经营年限", "Years in business"),
    6: ("不动产", "Premises"),
    7: ("法人或实际控制人信用", "Legal representative's credit"),
    8: ("环境评价", "Environmental rating"),
    9: ("公共信用", "Public credit"),
    10: ("金融信贷记录", "Financial credit record"),
    11: ("产业政策", "Industry policy"),
    12: ("工业绩效", "Industrial performance"),
    13: ("信用互认及其他信息", "Mutual recognition and other information"),
}
LEVELS = {
    DIVISION: ("行业大类", "division"),
    SECTION: ("行业门类", "section"),
    CITY: ("全市", "city"),
}
HINTS = {
    1: ("提高本期纳税额（同比）", "pay more tax than in the same period last year"),
    2: ("提高本期水电气消费（同比）", "grow water, power and gas use year on year"),
    3: ("足额缴纳五项社会保险", "pay all five social insurances without arrears"),
    4: ("为员工缴存住房公积金", "contribute to the housing fund"),
    6: ("取得经营场所产权", "own the premises (or qualify as high-tech)"),
    7: ("提升法定代表人个人信用等级", "improve the legal representative's credit level"),
    8: ("提升环境信用等级", "improve the environmental credit rating"),
    9: ("修复失信记录", "repair the dishonesty records"),
    10: ("结清欠息、减少信贷失信记录", "clear interest arrears and credit defaults"),
    12: ("提升工业绩效评价得分", "improve the industrial performance score"),
}


def _ranked(grades: Grades, i: int, slot: int, unit: str) -> tuple[str, str, dict[str, Any]]:
    r = grades.letters.ranked[slot]
    value = float(grades.letters.values[slot][i])
    if r.level[i] < 0:
        return "无可比数据，不参与评价", "nothing to compare with: not used", {}
    zh, en = LEVELS[int(r.level[i])]
    rank, size = int(r.rank[i]), int(r.size[i])
    facts = {"value": round(value, 4), "rank": rank, "of": size, "group": en}
    return (
        f"{unit}{value:.2f}，在{zh}内排名第{rank}/{size}",
        f"{unit and 'ratio '}{value:.2f}, rank {rank} of {size} in the {en}",
        facts,
    )


def _fixed(pop: Population, i: int, k: int) -> tuple[str, str]:
    if k == 3:
        paid = int(pop.insurances_paid[i])
        return (f"五险中已缴{max(paid, 0)}项", f"{max(paid, 0)} of the five insurances paid")
    if k == 4:
        return (
            ("已缴存公积金", "contributes")
            if pop.housing_contributors[i] > 0
            else (
                "未缴存，不进行分类",
                "no contributions: not classified",
            )
        )
    if k == 5:
        return ("按成立日期计算", "from the date of establishment")
    if k == 6:
        owned = int(pop.premises[i]) == 1
        tech = bool(pop.high_tech[i])
        return (
            "自有" if owned else ("租赁（高新技术企业）" if tech else "租赁或无登记"),
            "owned" if owned else ("leased (high-tech)" if tech else "leased or not registered"),
        )
    if k == 7:
        level = int(pop.personal_level[i])
        name = PERSONAL_LEVELS[level] if level >= 0 else "无"
        return (f"信用等级{name}", f"credit level {name if level >= 0 else 'none'}")
    if k == 8:
        env = int(pop.environment[i])
        name = ENVIRONMENT[env] if env >= 0 else "out_of_scope"
        if name == "out_of_scope":
            return ("不属于环境信用评定范围，不使用此指标", "out of scope: not used")
        return (f"环境信用{name}", f"rated {name}")
    if k == 9:
        total, recent = int(pop.dishonesty_total[i]), int(pop.dishonesty_open_24m[i])
        return (
            f"失信记录{total}条，其中两年内未修复{recent}条",
            f"{total} dishonesty records, {recent} open within two years",
        )
    if k == 10:
        loans = int(pop.loan_record[i]) == 1
        return (
            f"{'有' if loans else '无'}贷款记录，信贷失信{int(pop.default_records[i])}条"
            + ("，存在欠息" if pop.interest_arrears[i] else ""),
            f"{'has' if loans else 'no'} loans, {int(pop.default_records[i])} defaults"
            + (", interest in arrears" if pop.interest_arrears[i] else ""),
        )
    if k == 11:
        d = int(pop.division[i])
        return (f"行业大类{d:02d}", f"division {d:02d}")
    raise ValueError(k)


def explain(pop: Population, grades: Grades, i: int) -> dict[str, Any]:
    """The explanation of enterprise ``i`` (a JSON-ready mapping)."""
    g = int(grades.grade[i])
    indicators: dict[str, Any] = {}
    for k in range(1, INDICATORS + 1):
        letter = LETTERS[int(grades.letters.letters[i, k - 1])] or None
        facts: dict[str, Any] = {}
        if k in (1, 2, 12):
            slot = {1: 0, 2: 1, 12: 2}[k]
            zh, en, facts = _ranked(grades, i, slot, "" if k == 12 else "同比")
        else:
            zh, en = _fixed(pop, i, k)
        indicators[str(k)] = {
            "name": NAMES[k][0],
            "name_en": NAMES[k][1],
            "letter": letter,
            "reason": zh,
            "reason_en": en,
            **facts,
        }
    indicators["13"] = {
        "name": NAMES[13][0],
        "name_en": NAMES[13][1],
        "letter": None,
        "reason": "仅作参考依据，不评定类别",
        "reason_en": "reference only: no letter",
    }
    direct = int(grades.direct[i])
    public = int(pop.public_grade[i])
    score = float(grades.score[i])
    raise_it = [
        {"indicator": str(k), "hint": HINTS[k][0], "hint_en": HINTS[k][1]}
        for k in HINTS
        if LETTERS[int(grades.letters.letters[i, k - 1])] in ("B", "C")
    ]
    return {
        "enterprise": str(pop.uscc[i]),
        "as_of": grades.as_of.isoformat(),
        "grade": GRADES[g],
        "grade_en": GRADES_EN[g],
        "method": METHODS[int(grades.method[i])],
        "indicators": indicators,
        "counts": {
            letter: int((grades.letters.letters[i] == code).sum())
            for code, letter in ((1, "A"), (2, "B"), (3, "C"))
        },
        "indicator_grade": GRADES[int(grades.indicator[i])]
        if grades.indicator[i] != NO_GRADE
        else None,
        "bonus": float(grades.bonus[i]),
        "direct_grade": GRADES[direct] if direct != NO_GRADE else None,
        "public_credit_grade": PUBLIC_GRADES[public] if public >= 0 else None,
        "score": None if math.isnan(score) else score,
        "statements_used": bool(grades.statements_used[i]),
        "cap": GRADES[int(grades.cap[i])] if grades.cap[i] in (FIRST, ALTERNATE) else None,
        "raise": raise_it if g != HIGH else [],
    }


# What each letter of a fixed rule means (JY 附件2 三.1(3); docs/grading.md), for a
# stored grade whose inputs may since have changed.
RULES: dict[int, dict[str, tuple[str, str]]] = {
    3: {
        "A": ("正常缴纳五项社会保险", "all five insurances paid, no arrears"),
        "B": ("未足额缴纳五项社会保险", "not all five insurances paid normally"),
    },
    4: {"A": ("正常缴存住房公积金", "contributes to the housing fund")},
    5: {
        "A": ("经营年限满3年", "three years or more in business"),
        "B": ("经营年限不足3年", "under three years"),
    },
    6: {
        "A": ("经营场所自有，或高新技术企业租赁", "owns its premises, or a high-tech lessee"),
        "B": ("经营场所租赁", "leases its premises"),
    },
    7: {
        "A": ("信用积分等级A级及以上", "credit level A or better"),
        "B": ("信用积分等级B级", "credit level B"),
        "C": ("信用积分等级低于B级或无等级", "credit level below B or none"),
    },
    8: {
        "A": ("环评绿牌", "green card"),
        "B": ("环评蓝牌", "blue card"),
        "C": ("环评黄牌或红牌", "yellow or red card"),
    },
    9: {
        "A": ("无失信记录", "no dishonesty record"),
        "B": ("一条失信记录，已修复或在两年以前", "one record, repaired or older than two years"),
        "C": (
            "两条以上失信记录，或两年内未修复",
            "two or more records, or one open within two years",
        ),
    },
    10: {
        "A": ("有贷款记录且无失信记录", "loans and no default"),
        "B": (
            "1–2条失信记录且无欠息，或无贷款记录",
            "1-2 defaults and no interest arrears, or no loans",
        ),
        "C": ("其他", "other"),
    },
    11: {
        "A": ("鼓励、优先或主导产业", "encouraged or leading industry"),
        "B": ("一般发展产业", "general industry"),
        "C": ("限制或禁止发展产业", "restricted or prohibited industry"),
    },
}
NOT_USED = {
    4: ("未缴存，不进行分类", "no contributions: not classified"),
    8: ("不属于环境信用评定范围，不使用此指标", "out of scope: not used"),
}


def explain_stored(
    uscc: str,
    month: str,
    grade: int,
    method: int,
    letters: str,
    score: float | None,
    detail: dict[str, Any],
) -> dict[str, Any]:
    """The explanation of a stored grade (``grading.service``): each indicator's letter
    and the rule that gave it; for ①②⑫ the value, the rank and the group."""
    indicators: dict[str, Any] = {}
    for k in range(1, INDICATORS + 1):
        letter = letters[k - 1] if letters[k - 1] in "ABC" else None
        entry: dict[str, Any] = {"name": NAMES[k][0], "name_en": NAMES[k][1], "letter": letter}
        if k in (1, 2, 12):
            rank, size, level, value = detail["r"][{1: 0, 2: 1, 12: 2}[k]]
            if level < 0:
                entry |= {
                    "reason": "无可比数据，不参与评价",
                    "reason_en": "nothing to compare with: not used",
                }
            else:
                zh, en = LEVELS[level]
                what, what_en = ("得分", "score") if k == 12 else ("同比", "ratio to last year")
                entry |= {
                    "reason": f"{what}{value:.2f}，在{zh}内排名第{rank}/{size}",
                    "reason_en": f"{what_en} {value:.2f}, rank {rank} of {size} in the {en}",
                    "value": value,
                    "rank": rank,
                    "of": size,
                    "group": en,
                }
        elif letter is None:
            zh, en = NOT_USED.get(k, ("不适用", "not applicable"))
            entry |= {"reason": zh, "reason_en": en}
        else:
            zh, en = RULES[k][letter]
            entry |= {"reason": zh, "reason_en": en}
        indicators[str(k)] = entry
    indicators["13"] = {
        "name": NAMES[13][0],
        "name_en": NAMES[13][1],
        "letter": None,
        "reason": "仅作参考依据，不评定类别",
        "reason_en": "reference only: no letter",
    }
    direct, cap, indicator = int(detail["d"]), int(detail["c"]), int(detail["i"])
    return {
        "enterprise": uscc,
        "month": month,
        "grade": GRADES[grade],
        "grade_en": GRADES_EN[grade],
        "method": METHODS[method],
        "indicators": indicators,
        "indicator_grade": GRADES[indicator] if indicator != NO_GRADE else None,
        "bonus": detail["b"],
        "direct_grade": GRADES[direct] if direct != NO_GRADE else None,
        "score": score,
        "cap": GRADES[cap] if cap in (FIRST, ALTERNATE) else None,
        "raise": [
            {"indicator": str(k), "hint": HINTS[k][0], "hint_en": HINTS[k][1]}
            for k in HINTS
            if grade != HIGH and letters[k - 1] in "BC"
        ],
    }
