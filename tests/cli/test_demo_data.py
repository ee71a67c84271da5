"""The department-data demo steps run end to end over real HTTP."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from cli import demo_data
from cli.demo import Story, _serve, prepare_instance
from tests.live import free_port


def test_the_data_story_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    settings = prepare_instance(
        {"XINYI_HOME": str(tmp_path), "XINYI_KEY_PASSPHRASE": "demo-test"}, port
    )
    server, _thread = _serve(settings, port)
    base = f"http://127.0.0.1:{port}"
    story = Story(settings=settings, base=base, http=httpx.Client(base_url=base, timeout=60),
                  home=settings.home, facts={"enterprises": 400})  # fmt: skip
    try:
        for run in demo_data.STEPS:
            run(story)
    finally:
        server.shutdown()
        story.facts["_engine"].dispose()
    out = capsys.readouterr().out
    assert "snapshot v1 (via the API)" in out
    assert "refused (400 import_rejected)" in out and "negative_amount" in out
    assert "纳税额近12个月: 100万–500万" in out
    assert "tax paid in 12 months ≥ 1M): True" in out
    assert "refused: 403 verify_budget_exhausted" in out
    assert "tax.revenue_12m: used 5 of 5, 0 left" in out
    assert (story.home / "city" / "bank_loans.csv").exists()
