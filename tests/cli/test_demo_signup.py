"""The demo's sign-up step: an enterprise of the registration data without an account
signs up with its real name, through the HTTP API."""

from __future__ import annotations

import httpx
import pytest
from flask import Flask

from cli.demo.signup import step_signup
from cli.demo.story import Story
from common import uscc as uscc_rules
from tests.registration_data import resident_id, seed_registration

TAKEN = uscc_rules.complete("91320281MA1XY0101")
FREE = uscc_rules.complete("91320281MA1XY0102")


def test_the_demo_enterprise_signs_up_with_its_real_name(
    app: Flask, capsys: pytest.CaptureFixture[str]
) -> None:
    svc = app.extensions["xinyi"]
    seed_registration(
        svc,
        {
            TAKEN: ("甲", resident_id("32028119800101123")),
            FREE: ("乙", resident_id("32028119800101124")),
        },
    )
    svc.registry.add_user(
        login="taken", password="correct horse battery", role="enterprise", uscc=TAKEN
    )
    story = Story(
        settings=svc.settings,
        base="http://gateway",
        http=httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://gateway"),
        home=svc.settings.home,
    )
    step_signup(story)
    out = capsys.readouterr().out
    login = f"signup_{FREE[-6:].lower()}"
    user = svc.registry.user(login)
    assert user.uscc == FREE and user.real_name
    assert ("enterprise_signup", login, story.password) in story.accounts
    assert "invalid_resident_id" in out and "already_registered" in out
