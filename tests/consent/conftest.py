"""Fixtures for consent tests: a service over a migrated database with one bank."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import jwt
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from sqlalchemy import Engine

from common.settings import Settings
from consent.service import ConsentService


class OneKeyPerPurpose:
    """The two methods consent needs from a key ring, with throwaway keys."""

    def __init__(self) -> None:
        self.private: dict[str, Ed25519PrivateKey] = {}

    def sign_jwt(
        self, purpose: str, claims: Mapping[str, Any], headers: Mapping[str, Any] | None = None
    ) -> str:
        key = self.private.setdefault(purpose, Ed25519PrivateKey.generate())
        return jwt.encode(
            dict(claims),
            key,
            algorithm="EdDSA",
            headers={"kid": f"kid-{purpose}", **(headers or {})},
        )

    def public_key(self, kid: str, purpose: str | None = None) -> Ed25519PublicKey | None:
        p = kid.removeprefix("kid-")
        if (purpose is not None and p != purpose) or p not in self.private:
            return None
        return self.private[p].public_key()


def add_institution(engine: Engine, iid: str, status: str = "active") -> None:
    with engine.begin() as c:
        c.execute(
            sa.text(
                "INSERT INTO institutions (id, name, jwk, status, created_at, "
                "status_changed_at) VALUES (:id, :n, :j, :s, 0, 0)"
            ),
            {"id": iid, "n": f"{iid} 银行", "j": json.dumps({}), "s": status},
        )


class Clock:
    def __init__(self, t: float = 1_800_000_000) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def consent_service(
    engine: Engine, database_url: str, make_settings: Callable[..., Settings], clock: Clock
) -> ConsentService:
    settings = make_settings(database_url=database_url)
    add_institution(engine, "bank_a")
    add_institution(engine, "bank_b")
    return ConsentService(settings=settings, engine=engine, keys=OneKeyPerPurpose(), clock=clock)
