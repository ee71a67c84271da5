"""`xinyi bank`: init makes the folder; errors are readable and exit 2."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from cli import main

PASS = {"XINYI_BANK_PASSPHRASE": "a passphrase for tests"}


def test_init_then_errors_are_readable(tmp_path: Path) -> None:
    runner = CliRunner()
    home = tmp_path / "bank"
    result = runner.invoke(
        main,
        [
            "bank",
            "init",
            "--id",
            "demo_bank",
            "--home",
            str(home),
            "--gateway",
            "http://127.0.0.1:9",
        ],
        env=PASS,
    )
    assert result.exit_code == 0, result.output
    assert "xinyi admin add-institution demo_bank" in result.output
    assert json.loads((home / "client_jwk.json").read_text())["kty"] == "OKP"
    # Nothing listens on port 9: a clear error, exit 2.
    down = runner.invoke(main, ["bank", "models", "--home", str(home)], env=PASS)
    assert down.exit_code == 2
    assert "gateway_unreachable" in down.output and "check the gateway URL" in down.output
    # Scoring before registering a context says what to do.
    early = runner.invoke(
        main, ["bank", "score", "--model", "m", "--grant", "g", "--home", str(home)], env=PASS
    )
    assert early.exit_code == 2 and "xinyi bank register-context" in early.output
    wrong = runner.invoke(
        main, ["bank", "models", "--home", str(home)], env={"XINYI_BANK_PASSPHRASE": "nope"}
    )
    assert wrong.exit_code == 2 and "wrong_passphrase" in wrong.output


def test_init_needs_a_passphrase(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["bank", "init", "--id", "b", "--home", str(tmp_path / "b"), "--gateway", "http://x"],
        env={"XINYI_BANK_PASSPHRASE": ""},
    )
    assert result.exit_code == 2 and "XINYI_BANK_PASSPHRASE" in result.output


def test_score_refuses_a_model_of_an_untrusted_owner_before_asking_the_gateway(
    tmp_path: Path,
) -> None:
    from bank.profile import BankProfile

    runner = CliRunner()
    home = tmp_path / "bank"
    url = "http://127.0.0.1:9"  # nothing listens: any request would be gateway_unreachable
    args = ["bank", "init", "--id", "demo_bank", "--home", str(home), "--gateway", url]
    assert runner.invoke(main, args, env=PASS).exit_code == 0
    BankProfile.open(home, PASS["XINYI_BANK_PASSPHRASE"]).remember_context("ctx_test", url)
    score = ["bank", "score", "--grant", "g", "--home", str(home), "--model"]
    hijacked = runner.invoke(main, [*score, "evil_bank/sme-risk@2"], env=PASS)
    assert hijacked.exit_code == 2
    assert "model_owner_untrusted" in hijacked.output and "evil_bank" in hijacked.output
    trusted = runner.invoke(
        main, [*score, "evil_bank/sme-risk", "--trust-owner", "evil_bank"], env=PASS
    )
    assert trusted.exit_code == 2 and "gateway_unreachable" in trusted.output
    own = runner.invoke(main, [*score, "demo_bank/sme-risk"], env=PASS)
    assert own.exit_code == 2 and "gateway_unreachable" in own.output
