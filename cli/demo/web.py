"""Demo steps for the console pages: a sign-in account for each role, and the URL and
the accounts printed so a person can look around while ``xinyi demo`` keeps serving.

Facts read (all optional): ``accounts`` (list of ``(role, login, password)``, as the
other demo modules keep them), ``password`` (for the people this module creates),
``data_enterprise`` / ``enterprise`` (the USCC of the story), ``department``.
Facts written: ``accounts`` (one more entry per role that had none).

The demo passwords are printed: they guard a throwaway instance on a loopback port,
nothing else (``UNSAFE`` in the output says so).
"""

from __future__ import annotations

import click
import sqlalchemy as sa

from cli.demo.story import Story, step
from common.db import make_engine
from consent import store as consent_store
from registry import Registry

ROLE_NAMES = {
    "enterprise": "企业 Enterprise",
    "department": "数据提供单位 Department",
    "operator": "平台运营 Operator",
    "enterprise_signup": "企业（自助注册） Enterprise, signed up",
}


def _story_enterprise(story: Story, registry: Registry) -> str | None:
    if story.enterprise is not None:
        return story.enterprise
    with registry.engine.connect() as c:
        found = c.execute(
            sa.select(consent_store.consents.c.enterprise)
            .order_by(consent_store.consents.c.created_at)
            .limit(1)
        ).scalar()
    return str(found) if found else None


def _story_department(story: Story, registry: Registry) -> str | None:
    active = [d.id for d in registry.departments() if d.status == "active"]
    wanted = story.department
    for candidate in (wanted, "tax", "social_security", *active):
        if isinstance(candidate, str) and candidate in active:
            return candidate
    return None


def step_web_accounts(story: Story) -> None:
    """Make sure each role has an account to sign in to the pages with: the operator
    always, a department and the story's enterprise when the story has them."""
    step("Web consoles: one account per role")
    accounts = list(story.accounts)
    have = {role for role, _, _ in accounts}
    password = story.password
    engine = make_engine(story.settings.database_url)
    try:
        registry = Registry(engine)
        wanted: list[tuple[str, str, str | None, str | None]] = []
        if "operator" not in have:
            wanted.append(("operator", "operator", None, None))
        dept = _story_department(story, registry)
        if "department" not in have and dept is not None:
            wanted.append(("department", f"{dept}_staff", None, dept))
        uscc = _story_enterprise(story, registry)
        if "enterprise" not in have and uscc is not None:
            wanted.append(("enterprise", f"ent_{uscc[-6:].lower()}", uscc, None))
        for role, login, ent, dep in wanted:
            if registry.authenticate(login, password) is None:
                registry.add_user(
                    login=login, password=password, role=role, uscc=ent, department_id=dep
                )
            accounts.append((role, login, password))
    finally:
        engine.dispose()
    story.accounts = accounts
    for role, login, _ in accounts:
        click.echo(f"  {ROLE_NAMES.get(role, role)}: {login}")


def print_web(story: Story) -> None:
    """The URL of the consoles and the accounts to sign in with."""
    accounts = list(story.accounts)
    click.echo("")
    click.echo(click.style("Web consoles / 网页控制台", bold=True))
    click.echo(
        f"  open {story.base}/login   (中文 by default; English: {story.base}/login?lang=en)"
    )
    if not accounts:
        click.echo("  (no accounts yet: step_web_accounts creates one per role)")
        return
    click.echo("  UNSAFE demo accounts (a throwaway instance on a loopback port):")
    width = max(len(login) for _, login, _ in accounts)
    for role, login, password in accounts:
        click.echo(f"  {ROLE_NAMES.get(role, role):<26} {login:<{width}}  password: {password}")
