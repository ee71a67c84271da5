"""Fixtures for the grading core: the bundled grading config and a small one."""

from __future__ import annotations

from datetime import date

import pytest

from common.settings import Grading, load_settings

AS_OF = date(2025, 6, 30)


@pytest.fixture(scope="session")
def bundled() -> Grading:
    return load_settings(env={}).config.grading


@pytest.fixture
def plain() -> Grading:
    """No bonus, no score items, no direct method, no caps: the indicator method alone."""
    return Grading.model_validate(
        {"min_group": 5, "combine": {"direct": "off", "standards_cap": False}}
    )
