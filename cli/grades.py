"""`xinyi grades`: credit grades by JY 附件2 (docs/grading.md).

``compute`` grades every enterprise for a month and keeps it (a month is computed
once); ``explain`` prints one enterprise's stored grade and why. Exit 2 with a
stable code for a malformed or future month, a month already stored, or a grade
asked before any computation.
"""

from __future__ import annotations

import getpass
import json
import time
from datetime import UTC, datetime
from typing import Any

import click

from common import uscc as uscc_rules
from common.db import make_engine
from grading import service


def _settings(ctx: click.Context) -> Any:
    from cli.instance import settings_from

    return settings_from(ctx)


@click.group(name="grades")
def group() -> None:
    """Credit grades by the Jiangyin guide (JY 附件2): 高级 / 一级 / 备选."""


@group.command("compute")
@click.option("--month", default=None, help="YYYY-MM (default: the current month, UTC).")
@click.pass_context
def compute(ctx: click.Context, month: str | None) -> None:
    """Grade every registered enterprise for MONTH and keep the result; prints the
    count per grade. A month already computed is refused (history is never rewritten)."""
    settings = _settings(ctx)
    today = datetime.now(UTC).date()
    chosen = month or today.strftime("%Y-%m")
    engine = make_engine(settings.database_url)
    started = time.monotonic()
    try:
        run = service.compute(
            engine,
            settings,
            chosen,
            today=today,
            now=int(time.time()),
            actor=f"cli:{getpass.getuser()}",
        )
    finally:
        engine.dispose()
    click.echo(
        f"graded {run.enterprises} enterprises for {run.month} (as of {run.as_of.isoformat()}) "
        f"in {time.monotonic() - started:.1f} s"
    )
    for name, count in run.counts.items():
        click.echo(f"  {name}\t{count}")


@group.command("explain")
@click.argument("uscc")
@click.option("--month", default=None, help="YYYY-MM (default: the newest computed month).")
@click.option("--json", "as_json", is_flag=True, help="Print the explanation as JSON.")
@click.pass_context
def explain(ctx: click.Context, uscc: str, month: str | None, as_json: bool) -> None:
    """USCC's stored grade: the method, every indicator's letter and why."""
    code = uscc_rules.validate(uscc)
    settings = _settings(ctx)
    engine = make_engine(settings.database_url)
    try:
        out = service.explain(engine, code, month)
    finally:
        engine.dispose()
    if as_json:
        click.echo(json.dumps(out, ensure_ascii=False, indent=2))
        return
    click.echo(f"{out['enterprise']}  {out['month']}  {out['grade']} ({out['grade_en']})")
    click.echo(f"method: {out['method']}")
    for k, item in out["indicators"].items():
        letter = item["letter"] or "-"
        click.echo(f"  {k:>2} {item['name']}: {letter}  {item['reason']}")
    for label, key in (("indicator method", "indicator_grade"), ("direct method", "direct_grade")):
        if out[key]:
            click.echo(f"{label}: {out[key]}")
    if out["score"] is not None:
        click.echo(f"100-point score: {out['score']:.2f}")
    if out["bonus"]:
        click.echo(f"bonus points: {out['bonus']:g}")
    if out["cap"]:
        click.echo(f"capped at {out['cap']} by the standards of 二.2")
    for hint in out["raise"]:
        click.echo(f"to raise it: ({hint['indicator']}) {hint['hint']}")
