"""`xinyi models import` / `list`: the operator's way in for joint models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from cli import main
from tests.federated.conftest import model_json


def _env(database_url: str, tmp_path: Path) -> dict[str, str]:
    return {"XINYI_DATABASE_URL": database_url, "XINYI_HOME": str(tmp_path / "instance")}


def test_import_registers_versions_and_list_shows_no_weights(
    database_url: str, tmp_path: Path
) -> None:
    runner = CliRunner()
    env = _env(database_url, tmp_path)
    raw = model_json(np.random.default_rng(1))
    path = tmp_path / "model.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    first = runner.invoke(main, ["models", "import", str(path)], env=env)
    assert first.exit_code == 0, first.output
    assert "model sme-risk@1" in first.output and "social_security, tax" in first.output
    raw["intercept"] = raw["intercept"] + 1.0
    path.write_text(json.dumps(raw), encoding="utf-8")
    second = runner.invoke(main, ["models", "import", str(path)], env=env)
    assert "model sme-risk@2" in second.output
    listed = runner.invoke(main, ["models", "list", "--json"], env=env)
    assert listed.exit_code == 0, listed.output
    views = json.loads(listed.output)
    assert [(v["id"], v["version"]) for v in views] == [("sme-risk", 2)]
    assert "gateway_weights" not in listed.output and "intercept" not in listed.output


def test_a_bad_model_file_names_the_problem(database_url: str, tmp_path: Path) -> None:
    runner = CliRunner()
    env = _env(database_url, tmp_path)
    raw = model_json(
        np.random.default_rng(1),
        gateway_features=["log1p(tax.credit_rating)", "tax.paid_12m", "tax.arrears"],
    )
    path = tmp_path / "model.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    result = runner.invoke(main, ["models", "import", str(path)], env=env)
    assert result.exit_code == 2
    assert "invalid_model" in result.output and "tax.credit_rating" in result.output
    path.write_text("{not json", encoding="utf-8")
    result = runner.invoke(main, ["models", "import", str(path)], env=env)
    assert result.exit_code == 2 and "not a JSON document" in result.output


def test_the_operators_import_is_approved_and_logged_unless_left_pending(
    database_url: str, tmp_path: Path
) -> None:
    import sqlalchemy as sa

    from common.db import make_engine

    runner = CliRunner()
    env = _env(database_url, tmp_path)
    path = tmp_path / "model.json"
    raw = {**model_json(np.random.default_rng(1)), "id": "bank_a/risk"}
    path.write_text(json.dumps(raw), encoding="utf-8")
    engine = make_engine(database_url)

    def queued() -> int:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM audit_queue")).scalar() or 0)

    before = queued()
    pending = runner.invoke(main, ["models", "import", "--pending", str(path)], env=env)
    assert pending.exit_code == 0, pending.output
    assert "bank_a/risk@1" in pending.output and "pending" in pending.output
    assert queued() == before  # nothing decided, nothing logged
    listed = runner.invoke(main, ["models", "list", "--json"], env=env)
    assert json.loads(listed.output) == []
    raw["intercept"] = raw["intercept"] + 1.0
    path.write_text(json.dumps(raw), encoding="utf-8")
    approved = runner.invoke(main, ["models", "import", str(path)], env=env)
    assert approved.exit_code == 0, approved.output
    assert "bank_a/risk@2" in approved.output and "approved" in approved.output
    assert queued() == before + 1  # the operator's approval is in the audit queue
    every = runner.invoke(main, ["models", "list", "--all"], env=env)
    assert "bank_a/risk@1" in every.output and "pending" in every.output
    assert "bank_a/risk@2" in every.output and "approved" in every.output
    engine.dispose()
