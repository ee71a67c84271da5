"""The story ``xinyi demo`` tells, as one typed object the steps read and write.

Each step (``cli/demo/<area>.py``) takes the :class:`Story` and leaves what later steps
need on it; no step imports the runner (``cli/demo/run.py``) or another area's step
module for its state.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import httpx

from common.settings import Settings

if TYPE_CHECKING:  # the SDK (and TenSEAL behind it) loads when a step needs it
    from sqlalchemy import Engine

    from bank.client import GatewayClient
    from bank.profile import BankProfile
    from bank.scoring import Scorer

STEP = "\n\033[1m== {} ==\033[0m" if sys.stdout.isatty() else "\n== {} =="
DEMO_PASSWORD = "demo password 2025"  # noqa: S105 (a published demo sign-in, printed on screen)


def say(text: str) -> None:
    click.echo(text)


def step(title: str) -> None:
    click.echo(STEP.format(title))


@dataclass
class DemoBank:
    """The story's bank: its keys, its SDK client and its scorer."""

    profile: BankProfile
    client: GatewayClient
    scorer: Scorer


@dataclass
class Story:
    settings: Settings
    base: str
    http: httpx.Client
    home: Path
    # Asked for (options of ``xinyi demo`` or a test):
    enterprises: int = 3000
    """Size of the synthetic city."""
    password: str = DEMO_PASSWORD
    """The password of every person the story creates."""
    score_applicants: int = 400
    train_enterprises: int | None = None
    """Train on the first N of the bank's training rows only (None: all)."""
    train_epochs: int = 8
    department: str | None = None
    """The department whose console the story points to."""
    model_file: Path | None = None
    """A joint model (``xinyi models import`` JSON) to serve instead of training one."""
    # Written by the steps:
    accounts: list[tuple[str, str, str]] = field(default_factory=list)
    """(role, login, password) of every person created."""
    engine: Engine | None = None
    bank: DemoBank | None = None
    bank_id: str | None = None
    city_dir: Path | None = None
    city: dict[str, Any] | None = None
    enterprise: str | None = None
    """The USCC the story follows."""
    data_grant: str | None = None
    data_consent_id: str | None = None
    tax_auditor: tuple[str, str] | None = None
    """(login, password) of the tax bureau's auditor."""
    train_grants: dict[str, str] = field(default_factory=dict)
    train_revoked: list[str] = field(default_factory=list)
    train_report: str | None = None
    model_ref: str | None = None
    auc: dict[str, Any] | None = None

    def person(self, login: str, password: str) -> httpx.Client:
        c = httpx.Client(base_url=self.base, timeout=30)
        r = c.post("/v1/session", json={"login": login, "password": password})
        r.raise_for_status()
        c.headers["X-CSRF-Token"] = r.json()["csrf_token"]
        return c

    def the_bank(self) -> DemoBank:
        if self.bank is None:
            from bank.errors import BankError

            raise BankError("bank_not_initialized", "run step_bank_onboarding first")
        return self.bank

    def the_enterprise(self) -> str:
        if self.enterprise is None:
            raise RuntimeError("no enterprise yet: run step_city first")
        return self.enterprise

    def the_city(self) -> Path:
        if self.city_dir is None:
            raise RuntimeError("no city yet: run step_city first")
        return self.city_dir

    def the_model(self) -> str:
        if self.model_ref is None:
            raise RuntimeError("no joint model yet: run step_joint_model first")
        return self.model_ref
