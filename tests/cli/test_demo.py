"""`xinyi demo` (what `make demo` runs) tells the whole story end to end and every
claim it prints holds: one run, a small city, real HTTP, SQLite and keys in files."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from cli import main
from tests.live import free_port


def test_the_whole_demo_story_runs(tmp_path: Path) -> None:
    env = {"XINYI_HOME": str(tmp_path), "XINYI_KEY_PASSPHRASE": "demo-test", "CI": "true"}
    result = CliRunner().invoke(
        main, ["demo", "--port", str(free_port()), "--enterprises", "700", "--no-serve"], env=env
    )
    out = result.output
    assert result.exit_code == 0, out[-3000:]
    # consent
    assert "the bank's next request is refused: grant_revoked (HTTP 403)" in out
    # department data
    assert "snapshot v1 (via the API)" in out
    assert "refused (400 import_rejected)" in out and "negative_amount" in out
    assert "纳税额近12个月: 100万–500万" in out
    assert "tax paid in 12 months ≥ 1M): True" in out
    assert "refused: 403 verify_budget_exhausted" in out
    assert "tax.revenue_12m: used 5 of 5, 0 left" in out
    # audit
    assert "entries touch tax data" in out
    assert "cosigned by: tax" in out
    assert "xinyi audit verify: OK" in out
    # federated training
    assert "training without them" in out and "grant_revoked" in out
    assert "is refused: 403 too_few_gateway_features (no grant used" in out
    assert "using hz_demo_bank/sme-risk-federated@1 from federated training" in out
    assert "approved on the console" in out
    # financing (docs/financing.md)
    assert "the enterprise sees its application approved" in out
    assert "1 approved, CNY 500,000 disbursed, weighted rate 3.85 %" in out
    # scoring
    assert "after the enterprise revoked: refused — grant_revoked" in out
    assert "AUC joint HE model" in out
    # credit grades (JY 附件2): distribution, one explanation, a bank under a grant,
    # the whitelist
    assert "xinyi grades compute --month" in out and "高级\t" in out
    assert "xinyi grades explain" in out and "method" in out.split("xinyi grades explain")[-1]
    assert "under a grant for op grade" in out and "never ⑦" in out
    assert "GET /v1/whitelist?month=" in out and "each listing is one audit entry" in out
    # sign-up: an enterprise of the city, with its real name
    assert "a mistyped id number: 400 invalid_resident_id" in out
    assert "'real_name': True" in out and ": 409 already_registered" in out
    # objections and risk alerts
    assert "the tax bureau corrects it on" in out and "provenance objection:obj_" in out
    assert "the bank's receiver got a signed risk.alert" in out
    assert "tax_arrears" in out and "no value, only bands" in out
    # web consoles: where to look, and one account per role
    assert "/login" in out
    for role in (
        "平台运营 Operator",
        "数据提供单位 Department",
        "企业 Enterprise",
        "企业（自助注册） Enterprise, signed up",
    ):
        assert role in out.split("Web consoles / 网页控制台")[-1]
    assert (tmp_path / "demo" / "city" / "bank_loans.csv").exists()
