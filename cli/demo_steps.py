"""The order of ``xinyi demo``: each area writes its steps in ``cli/demo_<area>.py``;
this list tells them as one story."""

from __future__ import annotations

from collections.abc import Callable

from cli import demo_audit, demo_consent, demo_data, demo_score
from cli.demo import Story, say

STEPS: list[Callable[[Story], None]] = [
    demo_score.step_bank_onboarding,
    demo_data.step_city,
    demo_consent.step_consent_story,
    demo_data.step_data_services,
    demo_audit.step_audit_witness_joins,
    demo_audit.step_audit_department_view,
    demo_audit.step_audit_witness_cosigns,
    demo_audit.step_audit_verified_checkpoint,
    demo_score.step_joint_model,
    demo_score.step_score_one,
    demo_score.step_score_applicants,
]


def print_accounts(story: Story) -> None:
    say(f"\nThe gateway: {story.base}")
    for role, login, password in story.facts.get("accounts", []):
        say(f"  {role:10} {login:24} {password}")
