"""The registry: institutions with public JWKs, departments, people with Argon2id."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine

from common.errors import Conflict, InvalidInput, NotFound
from keys.jwk import public_jwk
from registry import Registry

ENTERPRISE = "91330100716105852F"


@pytest.fixture
def registry(engine: Engine) -> Registry:
    return Registry(engine)


def jwk() -> dict[str, str]:
    return public_jwk(Ed25519PrivateKey.generate().public_key())


def test_institution_lifecycle(registry: Registry) -> None:
    inst = registry.add_institution("hz_bank", name="杭州银行", jwk=jwk())
    assert inst.status == "active"
    assert registry.suspend_institution("hz_bank").status == "suspended"
    assert registry.resume_institution("hz_bank").status == "active"
    assert [i.id for i in registry.institutions()] == ["hz_bank"]
    with pytest.raises(Conflict):
        registry.add_institution("hz_bank", name="again", jwk=jwk())
    with pytest.raises(NotFound):
        registry.suspend_institution("nobody")


@pytest.mark.parametrize(
    ("iid", "key"),
    [
        ("Bad-Id", jwk()),
        ("bank", {**jwk(), "d": "private"}),
        ("bank", {"kty": "oct", "k": "c2VjcmV0"}),
        ("bank", {"kty": "EC", "crv": "P-384", "x": "a", "y": "b"}),
        ("bank", "not a dict"),
    ],
)
def test_bad_institutions_are_refused(registry: Registry, iid: str, key: object) -> None:
    with pytest.raises(InvalidInput):
        registry.add_institution(iid, name="x", jwk=key)
    assert registry.institutions() == []


def test_webhook_urls_are_validated(registry: Registry) -> None:
    registry.add_institution("bank", name="b", jwk=jwk())
    assert registry.set_webhook("bank", "https://bank.example/hook").webhook_url
    with pytest.raises(InvalidInput):
        registry.set_webhook("bank", "file:///etc/passwd")


def test_passwords_are_argon2id_and_authenticate(registry: Registry, engine: Engine) -> None:
    registry.add_user(
        login="ent1", password="correct horse battery", role="enterprise", uscc=ENTERPRISE
    )
    with engine.connect() as c:
        stored = c.execute(sa.text("SELECT password_hash FROM users")).scalar_one()
    assert stored.startswith("$argon2id$")
    user = registry.authenticate("ent1", "correct horse battery")
    assert user is not None and user.uscc == ENTERPRISE and user.role == "enterprise"
    assert registry.authenticate("ent1", "wrong password!") is None
    assert registry.authenticate("nobody", "correct horse battery") is None


def test_users_are_validated(registry: Registry) -> None:
    with pytest.raises(InvalidInput):
        registry.add_user(
            login="e", password="correct horse battery", role="enterprise", uscc=ENTERPRISE
        )
    with pytest.raises(InvalidInput):
        registry.add_user(login="ent", password="short", role="enterprise", uscc=ENTERPRISE)
    with pytest.raises(InvalidInput):
        registry.add_user(
            login="ent",
            password="correct horse battery",
            role="enterprise",
            uscc="91330100716105852X",
        )
    with pytest.raises(NotFound):
        registry.add_user(
            login="dep", password="correct horse battery", role="department", department_id="tax"
        )
    with pytest.raises(InvalidInput):
        registry.add_user(login="root", password="correct horse battery", role="admin")


def test_a_suspended_department_cannot_sign_in(registry: Registry) -> None:
    registry.add_department("tax", name="税务局")
    registry.add_user(
        login="tax_clerk", password="correct horse battery", role="department", department_id="tax"
    )
    assert registry.authenticate("tax_clerk", "correct horse battery") is not None
    registry.suspend_department("tax")
    assert registry.authenticate("tax_clerk", "correct horse battery") is None
    registry.resume_department("tax")
    assert registry.authenticate("tax_clerk", "correct horse battery") is not None


def test_a_client_assertion_is_accepted_once_until_it_expires(engine: Engine) -> None:
    now = [1_000_000.0]
    registry = Registry(engine, clock=lambda: now[0])
    assert registry.use_assertion("hz_bank:jti-1", expires_at=1_000_120)
    assert not registry.use_assertion("hz_bank:jti-1", expires_at=1_000_120)  # a replay
    assert registry.use_assertion("other_bank:jti-1", expires_at=1_000_120)
    now[0] = 1_000_120 + 3601.0  # an hour after it expired, it is forgotten
    assert registry.use_assertion("hz_bank:jti-2", expires_at=int(now[0]) + 120)
    with engine.connect() as c:
        kept = c.execute(sa.text("SELECT jti FROM used_assertions ORDER BY jti")).scalars().all()
    assert kept == ["hz_bank:jti-2"]


def test_the_oauth_client_view_and_the_enterprises_with_accounts(registry: Registry) -> None:
    key = jwk()
    registry.add_institution("hz_bank", name="杭州银行", jwk=key)
    registry.suspend_institution("hz_bank")
    found = registry.client("hz_bank")
    assert found is not None and (found.jwk, found.status) == (key, "suspended")
    assert registry.client("nobody") is None
    registry.add_user(login="ent-a", password="a long password", role="enterprise", uscc=ENTERPRISE)
    registry.add_user(login="ent-b", password="a long password", role="enterprise", uscc=ENTERPRISE)
    registry.add_user(login="operator1", password="a long password", role="operator")
    assert registry.enterprise_usccs() == [ENTERPRISE]
