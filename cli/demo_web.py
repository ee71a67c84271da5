"""Demo steps for the console pages: sign-in accounts for the three roles, and the URL
and accounts printed so a person can look around while ``xinyi demo`` keeps serving.

The passwords are generated for each demo run and printed: they protect a throwaway
instance on a loopback port, nothing else (``UNSAFE`` in the output says so).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import click
import sqlalchemy as sa

from cli.demo import Story, say, step
from common.db import make_engine
from consent import store as consent_store
from registry import Registry


@dataclass(frozen=True)
class WebAccount:
    role: str
    login: str
    password: str
    who: str  # the USCC, the department id, or "platform"


ROLE_NAMES = {
    "enterprise": "企业 Enterprise",
    "department": "数据提供单位 Department",
    "operator": "平台运营 Operator",
}


def _first_enterprise(story: Story, registry: Registry) -> str | None:
    for key in ("enterprise", "uscc"):
        value = story.facts.get(key)
        if isinstance(value, str) and len(value) == 18:
            return value
    with registry.engine.connect() as c:
        found = c.execute(
            sa.select(consent_store.consents.c.enterprise)
            .order_by(consent_store.consents.c.created_at)
            .limit(1)
        ).scalar()
    return str(found) if found else None


def _department(story: Story, registry: Registry) -> str | None:
    wanted = story.facts.get("department")
    registered = [d.id for d in registry.departments() if d.status == "active"]
    if isinstance(wanted, str) and wanted in registered:
        return wanted
    for preferred in ("tax", "social_security"):
        if preferred in registered:
            return preferred
    return registered[0] if registered else None


def step_web_accounts(story: Story) -> None:
    """Create one sign-in account per role (operator, a department, an enterprise the
    story used) unless the story made them already; kept in ``story.facts``."""
    step("Console accounts for the web pages")
    engine = make_engine(story.settings.database_url)
    try:
        registry = Registry(engine)
        accounts: list[WebAccount] = list(story.facts.get("web_accounts", []))
        have = {a.role for a in accounts}
        plan: list[tuple[str, str | None, str | None]] = []
        if "operator" not in have:
            plan.append(("operator", None, None))
        dept = _department(story, registry)
        if "department" not in have and dept is not None:
            plan.append(("department", None, dept))
        uscc = _first_enterprise(story, registry)
        if "enterprise" not in have and uscc is not None:
            plan.append(("enterprise", uscc, None))
        for role, ent, dep in plan:
            login = {"operator": "operator", "department": f"{dep}-staff", "enterprise": ent}[role]
            assert login is not None
            password = "demo-" + secrets.token_urlsafe(9)
            registry.add_user(
                login=login, password=password, role=role, uscc=ent, department_id=dep
            )
            accounts.append(WebAccount(role, login, password, ent or dep or "platform"))
            say(f"  {ROLE_NAMES[role]}: {login}")
        story.facts["web_accounts"] = accounts
    finally:
        engine.dispose()


def print_web(story: Story) -> None:
    """The URL of the consoles and the accounts to sign in with."""
    accounts: list[WebAccount] = list(story.facts.get("web_accounts", []))
    click.echo("")
    click.echo(click.style("Web consoles / 网页控制台", bold=True))
    click.echo(f"  open   {story.base}/login   (中文; add ?lang=en for English)")
    if not accounts:
        click.echo("  (no console accounts: run step_web_accounts first)")
        return
    click.echo("  UNSAFE demo passwords, generated for this run only:")
    width = max(len(a.login) for a in accounts)
    for a in accounts:
        click.echo(f"  {ROLE_NAMES[a.role]:<28} {a.login:<{width}}  {a.password}   ({a.who})")
