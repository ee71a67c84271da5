"""`xinyi init`, `xinyi admin …` and `xinyi keys …` on a fresh instance folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cli import main
from keys.jwk import public_jwk


@pytest.fixture
def env(tmp_path: Path, database_url: str) -> dict[str, str]:
    return {
        "XINYI_HOME": str(tmp_path / "home"),
        "XINYI_KEY_PASSPHRASE": "cli-test-passphrase",
        "XINYI_DATABASE_URL": database_url,
    }


def xinyi(env: dict[str, str], *args: str, stdin: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), env=env, input=stdin)
    return result.exit_code, result.output


def test_onboarding_through_the_cli(env: dict[str, str], tmp_path: Path) -> None:
    code, out = xinyi(env, "init")
    assert code == 0, out
    assert out.count("key: ") == 5  # grants, tokens, checkpoints, events, nodes
    jwk_file = tmp_path / "bank.jwk"
    jwk_file.write_text(json.dumps(public_jwk(Ed25519PrivateKey.generate().public_key())))
    assert (
        xinyi(
            env, "admin", "add-institution", "hz_bank", "--name", "杭州银行", "--jwk", str(jwk_file)
        )[0]
        == 0
    )
    code, out = xinyi(
        env, "admin", "add-institution", "bank-a", "--name", "A 银行", "--jwk", str(jwk_file)
    )
    assert code == 0 and "bank-a" in out, out  # OAuth client ids often have hyphens
    code, out = xinyi(env, "admin", "suspend-institution", "hz_bank")
    assert code == 0 and "suspended" in out
    code, out = xinyi(env, "admin", "resume-institution", "hz_bank")
    assert code == 0 and "active" in out
    assert xinyi(env, "admin", "add-department", "tax", "--name", "税务局")[0] == 0
    code, out = xinyi(
        env,
        "admin",
        "add-user",
        "--role",
        "department",
        "--login",
        "tax_clerk",
        "--department",
        "tax",
        "--password-stdin",
        stdin="correct horse battery\n",
    )
    assert code == 0, out
    code, out = xinyi(
        env,
        "admin",
        "add-user",
        "--role",
        "enterprise",
        "--login",
        "ent",
        "--uscc",
        "91330100716105852F",
        "--password-stdin",
        stdin="correct horse battery\n",
    )
    assert code == 0, out


def test_errors_are_readable_with_exit_code_2(env: dict[str, str], tmp_path: Path) -> None:
    assert xinyi(env, "init")[0] == 0
    private = tmp_path / "private.jwk"
    private.write_text(
        json.dumps({**public_jwk(Ed25519PrivateKey.generate().public_key()), "d": "secret"})
    )
    code, out = xinyi(env, "admin", "add-institution", "bank", "--name", "b", "--jwk", str(private))
    assert code == 2 and "invalid_registration" in out and "private" in out
    code, out = xinyi(
        env,
        "admin",
        "add-user",
        "--role",
        "enterprise",
        "--login",
        "ent",
        "--uscc",
        "91330100716105852X",
        "--password-stdin",
        stdin="correct horse battery\n",
    )
    assert code == 2 and "invalid_uscc" in out
    code, out = xinyi(env, "admin", "suspend-institution", "nobody")
    assert code == 2 and "nobody" in out


def test_keys_rotate_and_list(env: dict[str, str]) -> None:
    assert xinyi(env, "init")[0] == 0
    code, out = xinyi(env, "keys", "rotate", "grants")
    assert code == 0 and "new key" in out
    code, out = xinyi(env, "keys", "list")
    assert code == 0
    grants = [line for line in out.splitlines() if line.startswith("grants")]
    assert len(grants) == 2
    assert sum("retired" in line for line in grants) == 1
    assert all("published" in line for line in grants)
    assert xinyi(env, "keys", "rotate", "nonsense")[0] != 0


def test_disable_user_ends_the_open_session_and_enable_user_lets_them_back(
    env: dict[str, str],
) -> None:
    from common.settings import load_settings
    from gateway import create_app

    assert xinyi(env, "init")[0] == 0
    code, out = xinyi(
        env,
        "admin",
        "add-user",
        "--role",
        "operator",
        "--login",
        "op-1",
        "--password-stdin",
        stdin="correct horse battery\n",
    )
    assert code == 0, out
    app = create_app(load_settings(env=env), background=False)
    try:
        person = app.test_client()
        body = {"login": "op-1", "password": "correct horse battery"}
        assert person.post("/v1/session", json=body).status_code == 200
        assert person.get("/v1/session").status_code == 200
        code, out = xinyi(env, "admin", "disable-user", "op-1")
        assert code == 0 and "disabled" in out, out
        assert person.get("/v1/session").status_code == 401
        assert person.post("/v1/session", json=body).status_code == 401
        code, out = xinyi(env, "admin", "enable-user", "op-1")
        assert code == 0 and "enabled" in out, out
        assert person.post("/v1/session", json=body).status_code == 200
        code, out = xinyi(env, "admin", "disable-user", "nobody")
        assert code == 2 and "nobody" in out
    finally:
        app.extensions["xinyi"].engine.dispose()


def test_the_cli_rotates_every_key_purpose() -> None:
    from cli.admin import KEY_PURPOSES
    from keys.ring import PURPOSES

    assert set(KEY_PURPOSES) == set(PURPOSES)


def test_add_user_of_role_institution(env: dict[str, str], tmp_path: Path) -> None:
    """Bank console staff: the institution must exist, and is recorded."""
    from common.db import make_engine
    from registry import Registry

    assert xinyi(env, "init")[0] == 0
    jwk_file = tmp_path / "bank.jwk"
    jwk_file.write_text(json.dumps(public_jwk(Ed25519PrivateKey.generate().public_key())))
    assert (
        xinyi(env, "admin", "add-institution", "bank-a", "--name", "A", "--jwk", str(jwk_file))[0]
        == 0
    )
    args = ["admin", "add-user", "--role", "institution", "--login", "officer"]
    code, out = xinyi(
        env, *args, "--institution", "nobody", "--password-stdin", stdin="correct horse battery\n"
    )
    assert code == 2 and "nobody" in out
    code, out = xinyi(env, *args, "--password-stdin", stdin="correct horse battery\n")
    assert code == 2 and "--institution" in out
    code, out = xinyi(
        env, *args, "--institution", "bank-a", "--password-stdin", stdin="correct horse battery\n"
    )
    assert code == 0, out
    engine = make_engine(env["XINYI_DATABASE_URL"])
    try:
        user = Registry(engine).user("officer")
    finally:
        engine.dispose()
    assert user.role == "institution" and user.institution_id == "bank-a" and user.uscc is None


def test_verify_real_name_offline(env: dict[str, str]) -> None:
    from common.db import make_engine
    from registry import Registry

    assert xinyi(env, "init")[0] == 0
    engine = make_engine(env["XINYI_DATABASE_URL"])
    try:
        reg = Registry(engine)
        reg.add_user(
            login="ent",
            password="correct horse battery",
            role="enterprise",
            uscc="91330100716105852F",
            real_name=False,
        )
        assert not reg.user("ent").real_name
        code, out = xinyi(env, "admin", "verify-real-name", "ent")
        assert code == 0 and "real-named" in out, out
        assert reg.user("ent").real_name
        code, out = xinyi(env, "admin", "verify-real-name", "nobody")
        assert code == 2 and "no such enterprise account" in out
    finally:
        engine.dispose()
