"""A new user's first run: ``xinyi serve --port 9000`` with the shipped config serves
tokens and grants for the URL it is reached at, and says which URL that is."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bank.client import GatewayClient
from common.errors import ConfigError
from common.settings import DEFAULT_CONFIG, load_settings
from keys.jwk import public_jwk
from tests.live import free_port, serving, xinyi

ENTERPRISE = "91330100716105852F"


def test_the_shipped_config_leaves_the_public_url_to_host_and_port() -> None:
    assert "\n  public_url:" not in DEFAULT_CONFIG.read_text(encoding="utf-8")
    assert load_settings(env={}).config.server.public_url == "http://127.0.0.1:8600"
    port = load_settings(env={}, overrides={"server": {"port": 9000}})
    assert port.config.server.public_url == "http://127.0.0.1:9000"
    assert port.token_endpoint == "http://127.0.0.1:9000/oauth/token"
    any_host = {"host": "0.0.0.0", "port": 9000}  # noqa: S104 -- a config value, no bind
    wildcard = load_settings(env={}, overrides={"server": any_host})
    assert wildcard.config.server.public_url == "http://127.0.0.1:9000"


def test_the_environment_and_the_command_line_override_the_public_url() -> None:
    env = {"XINYI_PUBLIC_URL": "https://gateway.example/"}
    assert load_settings(env=env).config.server.public_url == "https://gateway.example"
    assert (
        load_settings(env=env, overrides={"server": {"port": 9000}}).config.server.public_url
        == "https://gateway.example"
    )
    flag = load_settings(env=env, overrides={"server": {"public_url": "https://flag.example"}})
    assert flag.config.server.public_url == "https://flag.example"
    assert flag.config.server.https
    for bad in ("ftp://x.example", "gateway.example", "https://x.example/?a=1", "http://"):
        with pytest.raises(ConfigError):
            load_settings(env={"XINYI_PUBLIC_URL": bad})


def test_serve_on_another_port_issues_tokens_and_grants_for_that_port(
    tmp_path: Path,
) -> None:
    port = free_port()
    home = tmp_path / "home"
    url = f"sqlite:///{home / 'xinyi.db'}"
    with serving(home, url, port=port, workers=1) as (base, env):
        assert base == f"http://127.0.0.1:{port}"
        log = (home / "serve.log").read_text(encoding="utf-8")
        assert f"public URL: {base}" in log
        key = Ed25519PrivateKey.generate()
        jwk_file = tmp_path / "bank-a.jwk"
        jwk_file.write_text(json.dumps(public_jwk(key.public_key())))
        xinyi(env, "admin", "add-institution", "bank-a", "--name", "A 银行", "--jwk", str(jwk_file))
        xinyi(
            env,
            "admin",
            "add-user",
            "--role",
            "enterprise",
            "--login",
            "first-run",
            "--uscc",
            ENTERPRISE,
            "--password-stdin",
            stdin="first run password\n",
        )
        bank = GatewayClient(base, "bank-a", key)
        token = bank.token()
        claims = jwt.decode(token, options={"verify_signature": False})
        assert claims["aud"] == base and claims["iss"] == base
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as http:
            asked = http.post(
                "/v1/consents",
                json={
                    "enterprise": ENTERPRISE,
                    "purpose": "working_capital_loan",
                    "ops": ["report"],
                    "categories": ["tax"],
                    "duration_days": 30,
                    "max_uses": 5,
                },
            )
            assert asked.status_code == 201, asked.text
            cid = asked.json()["id"]
            with httpx.Client(base_url=base) as person:
                signed = person.post(
                    "/v1/session", json={"login": "first-run", "password": "first run password"}
                )
                assert signed.status_code == 200, signed.text
                approved = person.post(
                    f"/v1/consents/{cid}/approve",
                    headers={"X-CSRF-Token": signed.json()["csrf_token"]},
                )
                assert approved.status_code == 200, approved.text
            grant = http.get(f"/v1/consents/{cid}").json()["grant"]
            assert jwt.decode(grant, options={"verify_signature": False})["iss"] == base
            report = http.get(f"/v1/enterprises/{ENTERPRISE}/report", params={"grant": grant})
            assert report.status_code == 200, report.text
