"""Secrets at rest in the bank's folder: scrypt-derived key, AES-256-GCM.

File format (all binary): ``b"XYVAULT1"`` ‖ log2(N) ‖ r ‖ p (one byte each) ‖ 16-byte salt
‖ 12-byte nonce ‖ AES-GCM(ciphertext ‖ tag), the header being the associated data, so a
changed parameter or salt fails authentication like a changed byte does.

The passphrase comes from the environment (``XINYI_BANK_PASSPHRASE``), never from a file
or a command-line argument; files are written 0600 atomically (write, fsync, rename).
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from bank.errors import BankError

MAGIC = b"XYVAULT1"
_HEADER = struct.Struct("<8sBBB16s12s")
SCRYPT_LOG2_N = 15  # 2^15 · 128 · r bytes = 32 MiB of memory, ~0.1 s per unlock
SCRYPT_R = 8
SCRYPT_P = 1


def _key(passphrase: str, salt: bytes, log2_n: int, r: int, p: int) -> bytes:
    if not passphrase:
        raise BankError("wrong_passphrase", "an empty passphrase cannot protect keys")
    kdf = Scrypt(salt=salt, length=32, n=2**log2_n, r=r, p=p)
    return kdf.derive(passphrase.encode("utf-8"))


def seal(plaintext: bytes, passphrase: str) -> bytes:
    """Encrypt ``plaintext`` under ``passphrase``."""
    salt, nonce = os.urandom(16), os.urandom(12)
    header = _HEADER.pack(MAGIC, SCRYPT_LOG2_N, SCRYPT_R, SCRYPT_P, salt, nonce)
    key = _key(passphrase, salt, SCRYPT_LOG2_N, SCRYPT_R, SCRYPT_P)
    return header + AESGCM(key).encrypt(nonce, plaintext, header)


def unseal(blob: bytes, passphrase: str) -> bytes:
    """Decrypt what ``seal`` wrote; a wrong passphrase or any changed byte is refused."""
    if len(blob) < _HEADER.size + 16 or not blob.startswith(MAGIC):
        raise BankError("vault_corrupt", "not a sealed file of the bank SDK")
    _magic, log2_n, r, p, salt, nonce = _HEADER.unpack_from(blob)
    if not (10 <= log2_n <= 22 and 1 <= r <= 32 and 1 <= p <= 16):
        raise BankError("vault_corrupt", "implausible key-derivation parameters")
    header = blob[: _HEADER.size]
    key = _key(passphrase, salt, log2_n, r, p)
    try:
        return AESGCM(key).decrypt(nonce, blob[_HEADER.size :], header)
    except InvalidTag as e:
        raise BankError(
            "wrong_passphrase", "the passphrase does not open this file (or it was changed)"
        ) from e


def write_private(path: Path, data: bytes) -> None:
    """Write a file readable by its owner only, atomically."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
