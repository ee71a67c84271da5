"""Audit fixtures: a log over a migrated database (SQLite and PostgreSQL), entries,
an adjustable clock, and a witness that talks to the log in-process."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from audit.note import Ed25519Signer
from audit.service import AuditLog
from common.db import is_sqlite, write_session
from common.settings import Settings

ENTERPRISE = "91330100716105852F"
OTHER_ENTERPRISE = "9144030071526726XG"


class Clock:
    def __init__(self, t: float = 1_800_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def make_entry(i: int = 0, **overrides: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "request_id": f"req-{i:06d}",
        "time": 1_800_000_000 + i,
        "institution": "bank_a",
        "enterprise": ENTERPRISE,
        "departments": ["tax"],
        "categories": ["tax"],
        "features": ["tax.paid_12m"],
        "operation": "verify",
        "grant_id": "grant-1",
        "model_id": None,
        "decision": "allowed",
    }
    entry.update(overrides)
    return entry


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def audit_settings(database_url: str, make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(database_url=database_url, audit={"batch_max": 16})


@pytest.fixture
def log_signer(audit_settings: Settings) -> Ed25519Signer:
    return Ed25519Signer.generate(audit_settings.config.audit.origin)


@pytest.fixture
def audit_log(
    engine: Engine, audit_settings: Settings, log_signer: Ed25519Signer, clock: Clock
) -> AuditLog:
    return AuditLog(engine, audit_settings, log_signer, clock=clock)


@pytest.fixture
def append(audit_log: AuditLog, engine: Engine) -> Callable[..., list[int]]:
    """Append entries (each in its own transaction) and return their log indices."""

    def factory(n: int = 1, **overrides: Any) -> list[int]:
        qids = []
        for i in range(n):
            with write_session(engine) as s:
                qids.append(audit_log.enqueue(s, make_entry(i, **overrides)))
        return [audit_log.await_index(q, 5.0) for q in qids]

    return factory


@dataclass
class InProcessLog:
    """The witness's view of the log, served by the AuditLog as the HTTP API does."""

    log: AuditLog

    def checkpoint(self) -> str:
        return self.log.latest_checkpoint().text()

    def consistency(self, first: int, second: int) -> list[bytes]:
        return self.log.consistency_proof(first, second)

    def leaves(self, start: int, end: int) -> list[bytes]:
        return self.log.leaf_hashes(start, end)

    def cosign(self, size: int, line: str) -> None:
        self.log.add_cosignature(size, line)


def allow_rewrites(engine: Engine, table: str) -> None:
    """What an attacker with database access does first: drop the append-only guard."""
    with engine.begin() as conn:
        if is_sqlite(engine):
            conn.execute(sa.text(f"DROP TRIGGER IF EXISTS {table}_no_update"))
            conn.execute(sa.text(f"DROP TRIGGER IF EXISTS {table}_no_delete"))
        else:
            conn.execute(sa.text(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}"))
