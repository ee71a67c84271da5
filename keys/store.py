"""Where private keys rest: encrypted PKCS#8 files in the instance folder.

Layout: ``$XINYI_HOME/keys/<purpose>/<kid>.pem`` (PKCS#8, encrypted with the key
passphrase) beside ``<kid>.json`` (purpose, created_at, retired_at), and
``keys/transitions/NNNNNN.note``: the signed statements of checkpoint-key changes that
witnesses follow. The folder is
0700, every file 0600; a key file that group or others can read is refused, because a
leaked private key forges grants, access tokens or checkpoints.

``KeyStore`` is the port; ``FileKeyStore`` the embedded adapter. A KMS adapter would
implement the same four methods.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from common.errors import ConfigError

# Signed statements of checkpoint-key changes (public; see audit.checkpoint).
TRANSITIONS = "transitions"


class KeyPermissions(ConfigError):
    code = "key_permissions"


class KeyUnreadable(ConfigError):
    code = "key_unreadable"


@dataclass(frozen=True)
class KeyRecord:
    """One signing key: its purpose, thumbprint kid and lifetime (Unix seconds)."""

    kid: str
    purpose: str
    created_at: int
    retired_at: int | None
    private: Ed25519PrivateKey


class KeyStore(Protocol):
    def load_all(self) -> list[KeyRecord]: ...

    def save(self, record: KeyRecord) -> None: ...

    def retire(self, purpose: str, kid: str, at: int) -> None: ...

    def version(self) -> float:
        """Changes whenever a key is added or retired (cheap to call)."""
        ...

    def add_transition(self, statement: str) -> None:
        """Keep a signed checkpoint-key transition statement (public)."""
        ...

    def transitions(self) -> list[str]:
        """Every kept transition statement, oldest first."""
        ...


class FileKeyStore:
    def __init__(self, root: Path, passphrase: bytes) -> None:
        self.root = root
        self._passphrase = passphrase

    def _check_mode(self, path: Path, allowed: int) -> None:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & ~allowed:
            raise KeyPermissions(
                f"{path} has mode {mode:04o}; private keys must not be readable by group or "
                f"others (chmod {allowed:04o} {path})",
                path=str(path),
            )

    def load_all(self) -> list[KeyRecord]:
        if not self.root.exists():
            return []
        self._check_mode(self.root, 0o700)
        out: list[KeyRecord] = []
        for meta_path in sorted(self.root.glob("*/*.json")):
            self._check_mode(meta_path.parent, 0o700)
            pem_path = meta_path.with_suffix(".pem")
            self._check_mode(pem_path, 0o600)
            try:
                meta = json.loads(meta_path.read_text(encoding="utf-8"))
                key = serialization.load_pem_private_key(
                    pem_path.read_bytes(), password=self._passphrase
                )
            except (OSError, ValueError, TypeError) as e:
                raise KeyUnreadable(
                    f"cannot read key {pem_path}: wrong XINYI_KEY_PASSPHRASE or a damaged file",
                    path=str(pem_path),
                ) from e
            if not isinstance(key, Ed25519PrivateKey):
                raise KeyUnreadable(f"{pem_path} is not an Ed25519 key", path=str(pem_path))
            out.append(
                KeyRecord(
                    kid=meta["kid"],
                    purpose=meta["purpose"],
                    created_at=int(meta["created_at"]),
                    retired_at=meta.get("retired_at"),
                    private=key,
                )
            )
        return out

    def save(self, record: KeyRecord) -> None:
        folder = self.root / record.purpose
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.root, 0o700)
        os.chmod(folder, 0o700)
        pem = record.private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(self._passphrase),
        )
        _write_private(folder / f"{record.kid}.pem", pem)
        # The metadata file is written last: a key without it is not loaded, so a crash
        # between the two writes leaves no half key behind.
        _write_private(folder / f"{record.kid}.json", _meta(record))

    def retire(self, purpose: str, kid: str, at: int) -> None:
        path = self.root / purpose / f"{kid}.json"
        meta = json.loads(path.read_text(encoding="utf-8"))
        meta["retired_at"] = at
        _write_private(path, json.dumps(meta, sort_keys=True).encode())

    def add_transition(self, statement: str) -> None:
        folder = self.root / TRANSITIONS
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        n = len(list(folder.glob("*.note")))
        _write_private(folder / f"{n + 1:06d}.note", statement.encode("utf-8"))

    def transitions(self) -> list[str]:
        folder = self.root / TRANSITIONS
        return [p.read_text(encoding="utf-8") for p in sorted(folder.glob("*.note"))]

    def version(self) -> float:
        try:
            return max(p.stat().st_mtime_ns for p in self.root.glob("*/*.json")) / 1e9
        except ValueError:
            return 0.0


def _meta(record: KeyRecord) -> bytes:
    return json.dumps(
        {
            "kid": record.kid,
            "purpose": record.purpose,
            "created_at": record.created_at,
            "retired_at": record.retired_at,
        },
        sort_keys=True,
    ).encode()


def _write_private(path: Path, data: bytes) -> None:
    """Write atomically with mode 0600 from the start (never briefly world-readable)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
