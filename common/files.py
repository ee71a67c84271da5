"""Private files of an instance: the home folder, generated dev secrets, data files.

Invariants:
- the instance home (``$XINYI_HOME``: the SQLite database with department values,
  password hashes and grants, the keys, the dev secrets) is 0700; ``xinyi serve``
  refuses a home that group or others can enter or read, as the key store refuses a
  readable key;
- a generated secret file is created with ``O_CREAT|O_EXCL`` and mode 0600 from the
  first byte (never briefly 0644, never through a link planted at its path) and
  appears whole: it is written under a temporary name, then linked into place;
- data files written for people (``xinyi data synth``) are 0600 from the start.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path
from typing import IO

from common.errors import ConfigError

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


class HomePermissions(ConfigError):
    code = "home_permissions"


class SecretFileUnsafe(ConfigError):
    code = "secret_file_unsafe"


def make_private_dir(path: Path) -> None:
    """Create ``path`` (and parents) if missing and make it 0700."""
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    os.chmod(path, PRIVATE_DIR)


def check_private_dir(path: Path) -> None:
    """Refuse a folder that group or others may read, write or enter."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise HomePermissions(
            f"{path} has mode {mode:04o}; the instance folder holds the database and keys "
            f"and must not be open to group or others (chmod 700 {path}, or run xinyi init)",
            path=str(path),
        )


def create_private_file(path: Path, data: bytes) -> bool:
    """Create ``path`` with ``data`` and mode 0600 unless it exists; True when created.

    The bytes go to a fresh temporary file (``O_CREAT|O_EXCL``, 0600), which is then
    hard-linked to ``path``: a reader sees either no file or the whole file, and when
    two processes race, exactly one link succeeds."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, PRIVATE_FILE)
    try:
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.link(tmp, path, follow_symlinks=False)
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)
    return True


def generated_secret(path: Path) -> tuple[str, bool]:
    """The secret in ``path``, generated (32 random bytes, URL-safe) when missing; and
    whether it was generated now. The folder is created 0700 when missing; a file that
    is not a regular file of ours with mode 0600 (a planted link, a readable copy) is
    refused."""
    if not path.parent.exists():
        make_private_dir(path.parent)
    created = create_private_file(path, secrets.token_urlsafe(32).encode("ascii"))
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as e:
        raise SecretFileUnsafe(f"{path}: cannot open the secret file: {e.strerror}") from e
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode) or stat.S_IMODE(info.st_mode) & 0o077:
            raise SecretFileUnsafe(
                f"{path} must be a regular file that group and others cannot read "
                f"(chmod 600 {path})",
                path=str(path),
            )
        secret = f.read().decode("ascii", "replace").strip()
    return secret, created


def open_private(path: Path) -> IO[str]:
    """Open ``path`` for writing text (UTF-8, no newline translation), mode 0600 from
    the start; an existing file is truncated and made 0600."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, PRIVATE_FILE)
    os.fchmod(fd, PRIVATE_FILE)
    return os.fdopen(fd, "w", encoding="utf-8", newline="")
