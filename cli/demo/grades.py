"""Demo step of credit grades (JY 附件2), for ``xinyi demo``: a share of the city opts
in to the whitelist, the operator computes this month's grades (the distribution),
one enterprise's explanation, a bank reading a grade under a grant for op ``grade``
(letters only, with its audit index), and the whitelist the bank is told about.

Facts read: ``bank`` (``demo_score.step_bank_onboarding``), ``city_dir``
(``demo_data.step_city``), optional ``enterprise``. Writes nothing on the story.
"""

from __future__ import annotations

import random
import time
from typing import Any

from cli.demo.story import Story, say, step
from common.db import make_engine
from common.workdays import china_date
from grading import service
from grading.engine import FIRST, GRADES, HIGH

OPT_IN_SHARE = 0.3  # enterprises of the city that opted in to be recommended
SEED = 15


def _graded(engine: Any, month: str) -> dict[str, int]:
    import sqlalchemy as sa

    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(service.grades.c.uscc, service.grades.c.grade).where(
                service.grades.c.month == month
            )
        ).all()
    return {str(u): int(g) for u, g in rows}


def step_grades(story: Story) -> None:
    """Grade the city, explain one grade, a bank reads one under a grant, the whitelist."""
    from gateway.grades import grade_categories
    from records import store as records
    from registry import Registry

    step("Credit grades by the Jiangyin guide / 信用等级（江阴指引附件2）")
    engine = make_engine(story.settings.database_url)
    try:
        everyone = records.enterprises(engine, "market_regulation")
        # Demo shortcut (labelled): opting in is each enterprise's own choice on its
        # console page; here a share of the city chose so before the month was graded.
        chosen = random.Random(SEED).sample(everyone, int(len(everyone) * OPT_IN_SHARE))  # noqa: S311 - a demo sample, not a secret
        for uscc in chosen:
            service.set_recommendation(
                engine, uscc, True, now=int(time.time()), actor="demo:opt-in"
            )
        say(f"{len(chosen)} of {len(everyone)} enterprises opted in to be recommended (demo)")
        today = china_date(time.time())
        month = today.strftime("%Y-%m")
        started = time.monotonic()
        run = service.get_run(engine, month) or service.compute(
            engine, story.settings, month, today=today, now=int(time.time()), actor="demo"
        )
        say(
            f"xinyi grades compute --month {month}: {run.enterprises} enterprises in "
            f"{time.monotonic() - started:.1f} s"
        )
        for name, count in run.counts.items():
            say(f"  {name}\t{count}\t{'#' * max(1, round(60 * count / max(run.enterprises, 1)))}")

        graded = _graded(engine, month)
        good = [u for u in sorted(graded) if graded[u] in (HIGH, FIRST)]
        follow = story.enterprise if story.enterprise in graded else (good or sorted(graded))[0]
        out = service.explain(engine, follow, month)
        say(f"\nxinyi grades explain {follow}: {out['grade']} ({out['grade_en']}), "
            f"method {out['method']}")  # fmt: skip
        for k, item in out["indicators"].items():
            say(f"  {k:>2} {item['name']}: {item['letter'] or '-'}  {item['reason']}")
        for hint in out["raise"]:
            say(f"  to raise it: ({hint['indicator']}) {hint['hint']} / {hint['hint_en']}")
    finally:
        engine.dispose()

    bank = story.the_bank()
    granted, _ = grade_categories(story.settings.config)
    consent = bank.client.request_consent(
        follow,
        purpose="working_capital_loan",
        ops=["grade"],
        categories=granted,
        duration_days=30,
        max_uses=5,
    )
    login = f"grade-{follow[-6:].lower()}"
    engine = make_engine(story.settings.database_url)
    try:
        Registry(engine).add_user(
            login=login, password=story.password, role="enterprise", uscc=follow
        )
    finally:
        engine.dispose()
    person = story.person(login, story.password)
    grant = person.post(f"/v1/consents/{consent['id']}/approve").json()["grant"]
    answer = bank.client.call("GET", f"/v1/enterprises/{follow}/grade", params={"grant": grant})
    letters = " ".join(f"{k}:{v or '-'}" for k, v in answer["indicators"].items())
    say(
        f"\nthe bank reads {follow}'s grade under a grant for op grade: {answer['grade']} "
        f"({answer['method']}), letters {letters}; audit index {answer['audit_index']} "
        "(no values, and never ⑦, the legal representative's personal credit)"
    )
    own = person.get(f"/v1/enterprises/{follow}/grade").json()
    say(f"the enterprise reads its own grade free, with {len(own['explanation'])} explanations")

    listed = bank.client.call("GET", "/v1/whitelist", params={"month": month})
    say(
        f"\nGET /v1/whitelist?month={month}: {len(listed['enterprises'])} enterprises graded "
        f"{GRADES[HIGH]} or {GRADES[FIRST]} that opted in; each listing is one audit entry"
    )
    for e in listed["enterprises"][:5]:
        say(f"  {e['uscc']}  {e['name']}  {e['grade']}  industry {e['industry']}  "
            f"region {e['region']}  audit {e['audit_index']}")  # fmt: skip
    say("  (a signed webhook whitelist.published told every institution: month and count)")
