"""The gateway serves requests as a least-privilege PostgreSQL login set up by
``xinyi db roles``, and ``/readyz`` says so, with a reason, when that login cannot do
what a request does (granting ``xinyi_audit`` alone used to leave every token request
a bare 500 while ``/readyz`` answered ready)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import Flask
from flask.testing import FlaskClient
from pydantic import SecretStr
from structlog.testing import capture_logs

from cli import main
from common.db import make_engine
from common.privileges import REQUIRED
from common.settings import Settings
from tests.gateway.conftest import ENTERPRISE, Bank, public_jwk
from tests.gateway.test_data_api import load


@pytest.fixture
def login(database_url: str, tmp_path: Path) -> Iterator[str]:
    """A fresh LOGIN role with nothing granted, set up by `xinyi db roles --login`."""
    if not database_url.startswith("postgresql"):
        pytest.skip("roles exist on PostgreSQL only")
    name = "xl_" + uuid.uuid4().hex[:10]
    owner = make_engine(database_url)
    with owner.begin() as conn:
        conn.execute(sa.text(f"CREATE ROLE {name} LOGIN"))
    env = {
        "XINYI_HOME": str(tmp_path / "instance"),
        "XINYI_KEY_PASSPHRASE": "test-passphrase-not-secret",
        "XINYI_DATABASE_URL": database_url,
    }
    runner = CliRunner()
    assert runner.invoke(main, ["init"], env=env).exit_code == 0
    result = runner.invoke(main, ["db", "roles", "--login", name], env=env)
    assert result.exit_code == 0, result.output
    yield name
    with owner.begin() as conn:
        conn.execute(sa.text(f"DROP OWNED BY {name}"))
        conn.execute(sa.text(f"DROP ROLE {name}"))
    owner.dispose()


METRICS_TOKEN = "least privilege scraper"


@pytest.fixture
def settings(database_url: str, login: str, make_settings: Callable[..., Settings]) -> Settings:
    """The app's settings, connecting as the least-privilege login."""
    assert "//postgres@" in database_url
    return make_settings(
        database_url=database_url.replace("//postgres@", f"//{login}@")
    ).model_copy(update={"metrics_token": SecretStr(METRICS_TOKEN)})


def test_every_table_has_its_privileges_listed(engine: sa.Engine) -> None:
    """A table added by a migration needs its line in common.privileges, or the
    least-privilege login could not touch it (and /readyz would not notice)."""
    tables = set(sa.inspect(engine).get_table_names()) - {"alembic_version"}
    assert tables == set(REQUIRED), tables ^ set(REQUIRED)


def test_the_least_privilege_login_serves_requests(
    app: Flask,
    client: FlaskClient,
    make_bank: Callable[..., Bank],
    make_person: Callable[..., FlaskClient],
    database_url: str,
    login: str,
) -> None:
    svc = app.extensions["xinyi"]
    with svc.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT current_user")).scalar() == login
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.get_json()
    load(app, "tax", f"uscc,tax.paid_12m\n{ENTERPRISE},1234567.89\n")
    bank = make_bank()
    person = make_person("enterprise", ENTERPRISE)
    resp = bank.post(
        client,
        "/v1/consents",
        {
            "enterprise": ENTERPRISE,
            "purpose": "working_capital_loan",
            "ops": ["report", "verify"],
            "categories": ["tax"],
            "duration_days": 30,
            "max_uses": 5,
        },
    )
    assert resp.status_code == 201, resp.get_json()
    cid = resp.get_json()["id"]
    approved = person.post(f"/v1/consents/{cid}/approve")
    assert approved.status_code == 200, approved.get_json()
    grant = approved.get_json()["grant"]
    report = bank.get(client, f"/v1/enterprises/{ENTERPRISE}/report?grant={grant}")
    assert report.status_code == 200, report.get_json()
    verify = bank.post(
        client,
        "/v1/verify",
        {"grant": grant, "feature": "tax.paid_12m", "op": ">=", "value": 1000},
    )
    assert verify.status_code == 200, verify.get_json()
    assert person.post(f"/v1/consents/{cid}/revoke").status_code == 200
    svc.outbox.deliver_due()
    svc.audit.checkpoint(force=True)
    index = verify.get_json()["audit_index"]
    assert person.get(f"/v1/audit/entries/{index}").status_code == 200
    scraper = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    assert client.get("/metrics", headers=scraper).status_code == 200
    operator = make_person("operator", login="ops_least")
    assert operator.get("/metrics").status_code == 200  # read through a person's session
    assert operator.delete("/v1/session").status_code in (200, 204)
    # The login may not rewrite the audit log nor change the schema.
    with svc.engine.connect() as conn:
        for statement in ("DELETE FROM audit_entries", "DROP TABLE consents"):
            with pytest.raises(sa.exc.ProgrammingError):
                conn.execute(sa.text(statement))
            conn.rollback()
    # Taking one privilege away makes /readyz fail, naming it.
    owner = make_engine(database_url)
    with owner.begin() as conn:
        conn.execute(sa.text("REVOKE UPDATE ON consents FROM xinyi_app"))
    try:
        resp = client.get("/readyz")
        assert resp.status_code == 503
        assert "consents:UPDATE" in resp.get_json()["reason"]
        assert "xinyi db roles" in resp.get_json()["reason"]
    finally:
        with owner.begin() as conn:
            conn.execute(sa.text("GRANT UPDATE ON consents TO xinyi_app"))
        owner.dispose()
    assert client.get("/readyz").status_code == 200


def test_readyz_fails_for_a_login_with_the_audit_role_only(
    database_url: str, make_settings: Callable[..., Settings]
) -> None:
    """What the old docs set up: GRANT xinyi_audit alone."""
    from gateway import create_app

    if not database_url.startswith("postgresql"):
        pytest.skip("roles exist on PostgreSQL only")
    name = "xa_" + uuid.uuid4().hex[:10]
    owner = make_engine(database_url)
    with owner.begin() as conn:
        conn.execute(sa.text(f"CREATE ROLE {name} LOGIN"))
        conn.execute(sa.text(f"GRANT xinyi_audit TO {name}"))
    try:
        settings = make_settings(database_url=database_url.replace("//postgres@", f"//{name}@"))
        # The key folder exists (as after `xinyi init`), made with the owner's settings.
        create_app(make_settings(database_url=database_url), background=False).extensions[
            "xinyi"
        ].engine.dispose()
        app = create_app(settings, background=False)
        resp = app.test_client().get("/readyz")
        assert resp.status_code == 503
        reason = resp.get_json()["reason"]
        assert "institutions:SELECT" in reason and "audit_entries" not in reason
        app.extensions["xinyi"].engine.dispose()
    finally:
        with owner.begin() as conn:
            conn.execute(sa.text(f"DROP OWNED BY {name}"))
            conn.execute(sa.text(f"DROP ROLE {name}"))
        owner.dispose()


def test_a_token_request_by_an_under_privileged_login_is_a_stable_503(
    database_url: str, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    """A login lacking a privilege (here: the audit role only, no ``xinyi_app``) cannot
    read the institution a token is asked for: the answer names the cause (the operator's
    ``xinyi db roles``), not an internal error, and the event is logged."""
    from gateway import create_app

    if not database_url.startswith("postgresql"):
        pytest.skip("roles exist on PostgreSQL only")
    name = "xt_" + uuid.uuid4().hex[:10]
    owner = make_engine(database_url)
    with owner.begin() as conn:
        conn.execute(sa.text(f"CREATE ROLE {name} LOGIN"))
        conn.execute(sa.text(f"GRANT xinyi_audit TO {name}"))
    try:
        owner_app = create_app(make_settings(database_url=database_url), background=False)
        key = Ed25519PrivateKey.generate()
        owner_app.extensions["xinyi"].registry.add_institution(
            "bank_priv", name="bank_priv 银行", jwk=public_jwk(key)
        )
        owner_app.extensions["xinyi"].engine.dispose()
        settings = make_settings(database_url=database_url.replace("//postgres@", f"//{name}@"))
        app = create_app(settings, background=False)
        bank = Bank("bank_priv", key, app)
        with capture_logs() as logs:
            resp = bank.fetch_token(app.test_client())
        assert resp.status_code == 503, resp.get_data(as_text=True)
        body = resp.get_json()
        assert body["error"] == "database_privilege_missing"
        assert "xinyi db roles" in body["message"] and "institutions" not in body["message"]
        logged = [e for e in logs if e["event"] == "database_privilege_missing"]
        assert logged and "institutions" in logged[0]["detail"], logs
        assert logged[0]["log_level"] == "error"
        app.extensions["xinyi"].engine.dispose()
    finally:
        with owner.begin() as conn:
            conn.execute(sa.text(f"DROP OWNED BY {name}"))
            conn.execute(sa.text(f"DROP ROLE {name}"))
        owner.dispose()
