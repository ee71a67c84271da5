"""The demo's console wiring: one account per role that really signs in, printed with
the URL."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from cli.demo.story import Story
from cli.demo.web import print_web, step_web_accounts
from common.db import make_engine, migrate
from common.settings import Settings
from registry import Registry
from tests.web.conftest import ENTERPRISE


def test_demo_creates_one_account_per_role_and_prints_how_to_sign_in(
    tmp_path: Path, make_settings: Callable[..., Settings], capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    migrate(url)
    settings = make_settings(database_url=url)
    engine = make_engine(url)
    registry = Registry(engine)
    registry.add_department("tax", name="税务局")
    story = Story(
        settings=settings,
        base="http://127.0.0.1:8600",
        http=httpx.Client(),
        home=tmp_path,
        enterprise=ENTERPRISE,
    )
    step_web_accounts(story)
    step_web_accounts(story)  # a second call adds nobody
    accounts = story.accounts
    assert sorted(role for role, _, _ in accounts) == ["department", "enterprise", "operator"]
    for role, login, password in accounts:
        user = registry.authenticate(login, password)
        assert user is not None and user.role == role
    enterprise = next(login for role, login, _ in accounts if role == "enterprise")
    assert registry.authenticate(enterprise, "wrong password!") is None
    signed_in = registry.authenticate(enterprise, accounts[0][2])
    assert signed_in is not None and signed_in.uscc == ENTERPRISE

    print_web(story)
    out = capsys.readouterr().out
    assert "http://127.0.0.1:8600/login" in out
    for _, login, password in accounts:
        assert login in out and password in out
    assert "UNSAFE" in out
    engine.dispose()


def test_demo_keeps_the_accounts_other_steps_made(
    tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    migrate(url)
    story = Story(
        settings=make_settings(database_url=url),
        base="http://127.0.0.1:8600",
        http=httpx.Client(),
        home=tmp_path,
        accounts=[("department", "tax_bureau", "pw of the data step")],
    )
    step_web_accounts(story)
    roles = [role for role, _, _ in story.accounts]
    assert roles == ["department", "operator"]  # no enterprise in this story yet
