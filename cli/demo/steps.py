"""The order of ``xinyi demo``: each area writes its steps in ``cli/demo/<area>.py``;
this list tells them as one story."""

from __future__ import annotations

from collections.abc import Callable

from cli.demo import alerts as demo_alerts
from cli.demo import audit as demo_audit
from cli.demo import consent as demo_consent
from cli.demo import data as demo_data
from cli.demo import financing as demo_financing
from cli.demo import grades as demo_grades
from cli.demo import score as demo_score
from cli.demo import signup as demo_signup
from cli.demo import train as demo_train
from cli.demo import web as demo_web
from cli.demo.story import Story

STEPS: list[Callable[[Story], None]] = [
    demo_score.step_bank_onboarding,
    demo_data.step_city,
    demo_consent.step_consent_story,
    demo_data.step_data_services,
    demo_audit.step_audit_witness_joins,
    demo_audit.step_audit_department_view,
    demo_audit.step_audit_witness_cosigns,
    demo_audit.step_audit_verified_checkpoint,
    demo_train.step_train_grants,
    demo_train.step_train,
    demo_train.step_train_review,
    demo_score.step_joint_model,
    demo_score.step_score_one,
    demo_score.step_score_applicants,
    demo_grades.step_grades,  # credit grades and the whitelist (JY 附件2)
    demo_signup.step_signup,
    demo_alerts.step_objection_and_alert,
    demo_financing.step_financing,
    demo_web.step_web_accounts,
]


def print_accounts(story: Story) -> None:
    """Where to look around while the demo keeps serving."""
    demo_web.print_web(story)
