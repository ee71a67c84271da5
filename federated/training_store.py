"""Persistence of federated training sessions (table of migration 0005).

A session row holds everything the gateway needs to answer the bank's next message from
any worker process: the plan, the accepted enterprises, the gateway's standardized
feature matrix (snapshotted when the session opened, so a department import mid-way
cannot change a training run), the bank's public context (its declaration of the CKKS
parameters), an empty ``gateway_secret`` (the protocol gives the gateway no CKKS key) and
the protocol state with the last completed batch.

Invariants:
- a session belongs to the institution that opened it; another institution's session is
  as unknown as a missing one;
- state changes are compare-and-set on ``version``: two messages processed concurrently
  cannot both commit (the second gets ``training_concurrent_message`` and nothing of it
  is kept), and no lock is held while the gateway computes;
- the training protocol gives the gateway no CKKS secret key, so ``gateway_secret`` is
  empty; ``seal``/``unseal`` (AES-256-GCM under a key derived with scrypt from the
  instance key passphrase and a per-session salt, the session id as associated data)
  remain for any secret a session must keep at rest.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from sqlalchemy import Engine
from sqlmodel import SQLModel

from common.db import read_session, write_session
from federated.errors import (
    ConcurrentMessage as ConcurrentMessage,
)
from federated.errors import (
    SealBroken as SealBroken,
)
from federated.errors import (
    TrainingSessionNotFound as TrainingSessionNotFound,
)
from federated.models import Standardization
from federated.training import GatewayState, TrainingPlan

metadata = SQLModel.metadata

training_sessions = sa.Table(
    "training_sessions",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("institution_id", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("plan", sa.Text, nullable=False),
    sa.Column("gateway_columns", sa.Text, nullable=False),
    sa.Column("bank_features", sa.Text, nullable=False),
    sa.Column("enterprises", sa.Text, nullable=False),
    sa.Column("refused", sa.Text, nullable=False),
    sa.Column("standardization", sa.Text, nullable=False),
    sa.Column("features", sa.LargeBinary, nullable=False),
    sa.Column("bank_context", sa.LargeBinary, nullable=False),
    sa.Column("gateway_secret", sa.LargeBinary, nullable=False),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("next_epoch", sa.Integer, nullable=False),
    sa.Column("next_batch", sa.Integer, nullable=False),
    sa.Column("model_id", sa.String(64), nullable=True),
    sa.Column("model_version", sa.Integer, nullable=True),
    sa.Column("gateway_half", sa.Text, nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    extend_existing=True,
)

STATUSES = ("training", "trained", "registered")


@dataclass(frozen=True)
class Enterprises:
    """The accepted rows in the bank's order, and the grant each one was accepted under."""

    train: tuple[str, ...]
    validation: tuple[str, ...]
    grants: dict[str, str]  # uscc → grant id

    def as_json(self) -> dict[str, Any]:
        return {
            "train": list(self.train),
            "validation": list(self.validation),
            "grants": self.grants,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Enterprises:
        return cls(tuple(d["train"]), tuple(d["validation"]), dict(d["grants"]))


@dataclass(frozen=True)
class SessionRecord:
    id: str
    institution_id: str
    status: str
    plan: TrainingPlan
    gateway_columns: tuple[str, ...]
    bank_features: tuple[str, ...]
    enterprises: Enterprises
    refused: list[dict[str, Any]]
    standardization: Standardization
    features: bytes  # pack_features(train, validation)
    bank_context: bytes
    gateway_secret: bytes  # empty: the gateway holds no CKKS key (column of migration 0005)
    state: GatewayState
    version: int
    model_id: str | None = None
    model_version: int | None = None
    gateway_half: dict[str, Any] | None = None
    created_at: int = 0
    updated_at: int = 0

    def summary(self) -> dict[str, Any]:
        """What the bank may see of its own session."""
        return {
            "id": self.id,
            "status": self.status,
            "state": self.status,
            "plan": self.plan.as_dict(),
            "gateway_features": list(self.gateway_columns),
            "bank_features": list(self.bank_features),
            "rows": {
                "train": len(self.enterprises.train),
                "validation": len(self.enterprises.validation),
            },
            "refused": len(self.refused),
            "next_epoch": self.state.next_epoch,
            "next_batch": self.state.next_batch,
            "last_seq": self.state.last_seq,
            "training_finished": self.state.next_epoch >= self.plan.epochs,
            "model": (
                None
                if self.model_id is None
                else {"id": self.model_id, "version": self.model_version}
            ),
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


# Feature matrices -----------------------------------------------------------------------


def pack_features(train: np.ndarray, validation: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, train=np.asarray(train, np.float64), validation=validation)
    return buf.getvalue()


def unpack_features(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        return np.asarray(z["train"]), np.asarray(z["validation"])


# Sealing a session secret at rest --------------------------------------------------------

_SEAL_MAGIC = b"XYS1"
_SCRYPT_N = 2**14
_keys: dict[tuple[str, bytes], bytes] = {}
_keys_lock = threading.Lock()


def _seal_key(passphrase: bytes, salt: bytes) -> bytes:
    ident = (hashlib.sha256(passphrase).hexdigest(), salt)
    with _keys_lock:
        key = _keys.get(ident)
        if key is None:
            key = Scrypt(salt=salt, length=32, n=_SCRYPT_N, r=8, p=1).derive(passphrase)
            if len(_keys) > 256:
                _keys.clear()
            _keys[ident] = key
    return key


def seal(data: bytes, passphrase: bytes, session_id: str) -> bytes:
    salt, nonce = os.urandom(16), os.urandom(12)
    box = AESGCM(_seal_key(passphrase, salt)).encrypt(nonce, data, session_id.encode())
    return _SEAL_MAGIC + salt + nonce + box


def unseal(blob: bytes, passphrase: bytes, session_id: str) -> bytes:
    if not blob.startswith(_SEAL_MAGIC) or len(blob) < 4 + 16 + 12 + 16:
        raise SealBroken("the session's secret is not a sealed blob")
    salt, nonce, box = blob[4:20], blob[20:32], blob[32:]
    try:
        return AESGCM(_seal_key(passphrase, salt)).decrypt(nonce, box, session_id.encode())
    except InvalidTag as e:
        raise SealBroken("the session's secret cannot be unsealed (wrong key passphrase?)") from e


# Rows -----------------------------------------------------------------------------------


def _row(rec: SessionRecord) -> dict[str, Any]:
    return {
        "id": rec.id,
        "institution_id": rec.institution_id,
        "status": rec.status,
        "plan": json.dumps(rec.plan.as_dict()),
        "gateway_columns": json.dumps(list(rec.gateway_columns)),
        "bank_features": json.dumps(list(rec.bank_features)),
        "enterprises": json.dumps(rec.enterprises.as_json()),
        "refused": json.dumps(rec.refused),
        "standardization": json.dumps(rec.standardization.as_dict()),
        "features": rec.features,
        "bank_context": rec.bank_context,
        "gateway_secret": rec.gateway_secret,
        "state": json.dumps(rec.state.to_json()),
        "version": rec.version,
        "next_epoch": rec.state.next_epoch,
        "next_batch": rec.state.next_batch,
        "model_id": rec.model_id,
        "model_version": rec.model_version,
        "gateway_half": None if rec.gateway_half is None else json.dumps(rec.gateway_half),
        "created_at": rec.created_at,
        "updated_at": rec.updated_at,
    }


def _record(row: Any) -> SessionRecord:
    half = row["gateway_half"]
    return SessionRecord(
        id=row["id"],
        institution_id=row["institution_id"],
        status=row["status"],
        plan=TrainingPlan.from_dict(json.loads(row["plan"])),
        gateway_columns=tuple(json.loads(row["gateway_columns"])),
        bank_features=tuple(json.loads(row["bank_features"])),
        enterprises=Enterprises.from_json(json.loads(row["enterprises"])),
        refused=json.loads(row["refused"]),
        standardization=Standardization.from_dict(json.loads(row["standardization"])),
        features=bytes(row["features"]),
        bank_context=bytes(row["bank_context"]),
        gateway_secret=bytes(row["gateway_secret"]),
        state=GatewayState.from_json(json.loads(row["state"])),
        version=int(row["version"]),
        model_id=row["model_id"],
        model_version=None if row["model_version"] is None else int(row["model_version"]),
        gateway_half=None if half is None else json.loads(half),
        created_at=int(row["created_at"]),
        updated_at=int(row["updated_at"]),
    )


def create_session(engine: Engine, rec: SessionRecord) -> SessionRecord:
    now = int(time.time())
    rec = SessionRecord(**{**rec.__dict__, "created_at": now, "updated_at": now, "version": 1})
    with write_session(engine) as s:
        s.execute(training_sessions.insert().values(**_row(rec)))
    return rec


def get_session(engine: Engine, session_id: str, institution_id: str) -> SessionRecord:
    with read_session(engine) as s:
        row = (
            s.execute(
                sa.select(training_sessions).where(
                    training_sessions.c.id == session_id,
                    training_sessions.c.institution_id == institution_id,
                )
            )
            .mappings()
            .first()
        )
    if row is None:
        raise TrainingSessionNotFound(f"no training session {session_id!r} of this institution")
    return _record(row)


def version_of(engine: Engine, session_id: str) -> int | None:
    with read_session(engine) as s:
        v = s.execute(
            sa.select(training_sessions.c.version).where(training_sessions.c.id == session_id)
        ).scalar()
    return None if v is None else int(v)


def save_state(
    engine: Engine,
    session_id: str,
    expected_version: int,
    state: GatewayState,
    *,
    status: str | None = None,
) -> int:
    """Store the state after one message, if nobody else stored one since
    ``expected_version``; returns the new version."""
    values: dict[str, Any] = {
        "state": json.dumps(state.to_json()),
        "next_epoch": state.next_epoch,
        "next_batch": state.next_batch,
        "version": expected_version + 1,
        "updated_at": int(time.time()),
    }
    if status is not None:
        values["status"] = status
    return _compare_and_set(engine, session_id, expected_version, values)


def record_result(
    engine: Engine,
    session_id: str,
    expected_version: int,
    *,
    status: str,
    gateway_half: dict[str, Any],
    model_id: str | None,
    model_version: int | None,
) -> int:
    """The end of a session: the gateway's half of the model, and the registered model
    when there is one."""
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r}")
    return _compare_and_set(
        engine,
        session_id,
        expected_version,
        {
            "status": status,
            "gateway_half": json.dumps(gateway_half),
            "model_id": model_id,
            "model_version": model_version,
            "version": expected_version + 1,
            "updated_at": int(time.time()),
        },
    )


def _compare_and_set(
    engine: Engine, session_id: str, expected_version: int, values: dict[str, Any]
) -> int:
    with write_session(engine) as s:
        result = s.execute(
            training_sessions.update()
            .where(
                training_sessions.c.id == session_id,
                training_sessions.c.version == expected_version,
            )
            .values(**values)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]  # CursorResult at runtime
            raise ConcurrentMessage(
                "another message of this session was processed meanwhile; nothing of this "
                "one was kept (ask for the session's status and resume)"
            )
    return int(values["version"])


def exclude_enterprises(
    engine: Engine,
    session_id: str,
    expected_version: int,
    *,
    features: bytes,
    refused: list[dict[str, Any]],
) -> int:
    """Store the feature snapshot with some enterprises' rows blanked (their consent ended
    mid-session) and the longer list of refused enterprises."""
    return _compare_and_set(
        engine,
        session_id,
        expected_version,
        {
            "features": features,
            "refused": json.dumps(refused),
            "version": expected_version + 1,
            "updated_at": int(time.time()),
        },
    )


def list_sessions(engine: Engine, institution_id: str) -> list[dict[str, Any]]:
    with read_session(engine) as s:
        rows = s.execute(
            sa.select(
                training_sessions.c.id,
                training_sessions.c.status,
                training_sessions.c.next_epoch,
                training_sessions.c.next_batch,
                training_sessions.c.model_id,
                training_sessions.c.model_version,
                training_sessions.c.created_at,
            )
            .where(training_sessions.c.institution_id == institution_id)
            .order_by(training_sessions.c.created_at.desc(), training_sessions.c.id)
        ).all()
    return [
        {
            "id": r.id,
            "status": r.status,
            "next_epoch": int(r.next_epoch),
            "next_batch": int(r.next_batch),
            "model": None if r.model_id is None else {"id": r.model_id, "version": r.model_version},
            "created_at": int(r.created_at),
        }
        for r in rows
    ]
