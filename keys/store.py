"""Where private keys rest: encrypted PKCS#8 files in the instance folder.

Layout: ``$XINYI_HOME/keys/<purpose>/<kid>.pem`` (the PKCS#8 key encrypted with the key
passphrase, see below) beside ``<kid>.json`` (purpose, created_at, retired_at), and
``keys/transitions/NNNNNN.note``: the signed statements of checkpoint-key changes that
witnesses follow. The folder is
0700, every file 0600; a key file that group or others can read is refused, because a
leaked private key forges grants, access tokens or checkpoints.

Encryption at rest: AES-256-GCM under a key derived from the passphrase with scrypt
(memory-hard: N=2^16, r=8, p=1, 64 MiB per guess), in a small PEM block
``XINYI ENCRYPTED PRIVATE KEY`` whose header names the KDF parameters and salt. All
files of a folder share one salt, so a process derives the key once. Files written by
earlier versions (PKCS#8 with PBKDF2, 2,048 rounds) are still read, and rewritten in
the new form by ``xinyi keys change-passphrase`` and by any rotation.

``KeyStore`` is the port; ``FileKeyStore`` the embedded adapter. A KMS adapter would
implement the same four methods.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import stat
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

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

    def reencrypt(self, new_passphrase: bytes) -> int:
        """Rewrite every private key under ``new_passphrase``; returns how many."""
        ...

    def migrate_legacy(self) -> int:
        """Rewrite keys still in an older at-rest form; returns how many files."""
        ...

    def transitions(self) -> list[str]:
        """Every kept transition statement, oldest first."""
        ...


# scrypt cost: 2^16 x 128 x r bytes = 64 MiB and about half a second per derivation on
# a slow core, paid once per process (every worker start); each file records its cost,
# so raising it later needs no migration. Tests lower it (tests/conftest.py).
SCRYPT_LOG_N = 16
SCRYPT_R = 8
SCRYPT_P = 1
_BEGIN = "-----BEGIN XINYI ENCRYPTED PRIVATE KEY-----"
_END = "-----END XINYI ENCRYPTED PRIVATE KEY-----"
_HEADER = re.compile(r"^KDF: scrypt ln=(\d{1,2}) r=(\d{1,2}) p=(\d{1,2}) salt=([A-Za-z0-9+/=]+)$")
_AAD = b"xinyi-key/v1"

_derived: dict[tuple[bytes, bytes, int, int, int], bytes] = {}
_derived_lock = threading.Lock()


def _derive(passphrase: bytes, salt: bytes, log_n: int, r: int, p: int) -> bytes:
    """The AES key for ``passphrase`` (kept per process: deriving costs a second)."""
    if not 10 <= log_n <= 22 or not 1 <= r <= 32 or not 1 <= p <= 16:
        raise KeyUnreadable(f"unsupported scrypt parameters ln={log_n} r={r} p={p}")
    cache_key = (hashlib.sha256(passphrase).digest(), salt, log_n, r, p)
    with _derived_lock:
        found = _derived.get(cache_key)
        if found is None:
            found = Scrypt(salt=salt, length=32, n=1 << log_n, r=r, p=p).derive(passphrase)
            _derived[cache_key] = found
        return found


@dataclass(frozen=True)
class Kdf:
    salt: bytes
    log_n: int = SCRYPT_LOG_N
    r: int = SCRYPT_R
    p: int = SCRYPT_P

    @classmethod
    def fresh(cls) -> Kdf:
        return cls(os.urandom(16), SCRYPT_LOG_N, SCRYPT_R, SCRYPT_P)

    def header(self) -> str:
        salt = base64.b64encode(self.salt).decode()
        return f"KDF: scrypt ln={self.log_n} r={self.r} p={self.p} salt={salt}"


def encrypt_private(key: Ed25519PrivateKey, passphrase: bytes, kdf: Kdf) -> bytes:
    der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    nonce = os.urandom(12)
    aes = AESGCM(_derive(passphrase, kdf.salt, kdf.log_n, kdf.r, kdf.p))
    body = base64.encodebytes(nonce + aes.encrypt(nonce, der, _AAD)).decode().strip()
    return f"{_BEGIN}\n{kdf.header()}\n\n{body}\n{_END}\n".encode()


def read_kdf(data: bytes) -> Kdf | None:
    """The KDF of a file in the current form; None for the legacy PKCS#8 form."""
    lines = data.decode("ascii", "replace").strip().splitlines()
    if not lines or lines[0] != _BEGIN:
        return None
    match = _HEADER.match(lines[1]) if len(lines) > 1 else None
    if match is None:
        raise ValueError("no KDF header")
    ln, r, p, salt = match.groups()
    return Kdf(base64.b64decode(salt), int(ln), int(r), int(p))


def decrypt_private(data: bytes, passphrase: bytes) -> Ed25519PrivateKey:
    """Either form; raises ValueError for a wrong passphrase or a damaged file."""
    kdf = read_kdf(data)
    if kdf is None:  # legacy: PKCS#8 encrypted with PBKDF2 by an earlier version
        key = serialization.load_pem_private_key(data, password=passphrase)
    else:
        lines = data.decode("ascii").strip().splitlines()
        if lines[-1] != _END or lines[2] != "":
            raise ValueError("a damaged key file")
        blob = base64.b64decode("".join(lines[3:-1]))
        aes = AESGCM(_derive(passphrase, kdf.salt, kdf.log_n, kdf.r, kdf.p))
        try:
            der = aes.decrypt(blob[:12], blob[12:], _AAD)
        except InvalidTag as e:
            raise ValueError("wrong passphrase or a damaged file") from e
        key = serialization.load_der_private_key(der, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise TypeError("not an Ed25519 key")
    return key


class FileKeyStore:
    def __init__(self, root: Path, passphrase: bytes) -> None:
        self.root = root
        self._passphrase = passphrase
        self._kdf: Kdf | None = None

    def _folder_kdf(self) -> Kdf:
        """The salt and cost the folder's files share (a fresh one for a new folder)."""
        if self._kdf is None:
            for pem in sorted(self.root.glob("*/*.pem")):
                try:
                    found = read_kdf(pem.read_bytes())
                except (OSError, ValueError):
                    continue
                if found is not None:
                    self._kdf = found
                    break
            else:
                self._kdf = Kdf.fresh()
        return self._kdf

    def legacy_files(self) -> list[Path]:
        """Key files still in the PBKDF2 form of earlier versions."""
        out = []
        for pem in sorted(self.root.glob("*/*.pem")):
            try:
                if read_kdf(pem.read_bytes()) is None:
                    out.append(pem)
            except ValueError:
                continue
        return out

    def reencrypt(self, new_passphrase: bytes) -> int:
        """Rewrite every key file under ``new_passphrase`` (a fresh salt, the current
        KDF); reads each with the passphrase this store was opened with. Every new file
        is written and synced before the first one replaces its old version."""
        records = self.load_all()
        kdf = Kdf.fresh()
        staged = []
        for record in records:
            path = self.root / record.purpose / f"{record.kid}.pem"
            staged_path = path.with_name(path.name + ".new")
            _write_private(staged_path, encrypt_private(record.private, new_passphrase, kdf))
            staged.append((staged_path, path))
        for staged_path, path in staged:
            os.replace(staged_path, path)
        self._passphrase, self._kdf = new_passphrase, kdf
        return len(staged)

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
                key = decrypt_private(pem_path.read_bytes(), self._passphrase)
            except TypeError as e:
                raise KeyUnreadable(f"{pem_path} is not an Ed25519 key", path=str(pem_path)) from e
            except (OSError, ValueError) as e:
                raise KeyUnreadable(
                    f"cannot read key {pem_path}: wrong XINYI_KEY_PASSPHRASE or a damaged file",
                    path=str(pem_path),
                ) from e
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
        pem = encrypt_private(record.private, self._passphrase, self._folder_kdf())
        _write_private(folder / f"{record.kid}.pem", pem)
        # The metadata file is written last: a key without it is not loaded, so a crash
        # between the two writes leaves no half key behind.
        _write_private(folder / f"{record.kid}.json", _meta(record))

    def retire(self, purpose: str, kid: str, at: int) -> None:
        path = self.root / purpose / f"{kid}.json"
        meta = json.loads(path.read_text(encoding="utf-8"))
        meta["retired_at"] = at
        _write_private(path, json.dumps(meta, sort_keys=True).encode())

    def migrate_legacy(self) -> int:
        return self.reencrypt(self._passphrase) if self.legacy_files() else 0

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
