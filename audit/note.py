"""C2SP signed notes, verifier keys and Ed25519 cosignatures (pure).

Formats (https://c2sp.org/signed-note, https://c2sp.org/tlog-cosignature):
- a note is UTF-8 text ending in a newline, a blank line, then one or more signature
  lines ``— <name> <base64(key id || signature)>`` (U+2014, a space, the key name, a
  space);
- a key name is non-empty and has no whitespace and no ``+``;
- key id = SHA-256(name || 0x0A || type || public key)[:4], with type 0x01 for an
  Ed25519 note signature and 0x04 for an Ed25519 cosignature/v1;
- a verifier key (vkey) is ``name+<8 hex key id>+base64(type || public key)``;
- a cosignature/v1 signs ``cosignature/v1\\ntime <t>\\n`` followed by the whole note
  text and carries ``u64 big-endian t || Ed25519 signature``;
- a signer private key file uses the Go ``golang.org/x/mod/sumdb/note`` form
  ``PRIVATE+KEY+<name>+<hex id>+base64(0x01 || 32-byte seed)``.

Verification never raises on a bad signature: it answers False, so callers decide
which error to report.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from audit.errors import NoteInvalid

ALG_ED25519 = 0x01
ALG_COSIGNATURE_V1 = 0x04
SIG_PREFIX = "— "  # U+2014 EM DASH, then a space
MAX_SIGNATURES = 100
_NAME = re.compile(r"^[^\s+]+$")
_HEX_ID = re.compile(r"^[0-9a-f]{8}$")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as e:
        raise NoteInvalid(f"{what} is not standard base64") from e


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise NoteInvalid(f"key name {name!r} is empty or has whitespace or '+'")
    return name


def key_id(name: str, alg: int, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([alg]) + public_key).digest()[:4]


def _ed25519_verify(public_key: bytes, signature: bytes, message: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


@dataclass(frozen=True)
class Signature:
    """One signature line of a note."""

    name: str
    key_id: bytes
    signature: bytes

    def line(self) -> str:
        return f"{SIG_PREFIX}{self.name} {b64(self.key_id + self.signature)}\n"


@dataclass(frozen=True)
class Note:
    text: str
    signatures: tuple[Signature, ...]

    def render(self) -> str:
        return self.text + "\n" + "".join(s.line() for s in self.signatures)


def parse_note(data: str | bytes) -> Note:
    """Split a signed note into its text and signature lines (nothing verified)."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise NoteInvalid("a note is UTF-8 text") from e
    if "\r" in data or any(ord(c) < 0x20 and c != "\n" for c in data):
        raise NoteInvalid("a note has no control characters other than newline")
    split = data.rfind("\n\n")
    if split < 0:
        raise NoteInvalid("a note needs a blank line before its signatures")
    text, block = data[: split + 1], data[split + 2 :]
    if not block.endswith("\n"):
        raise NoteInvalid("a note ends with a newline")
    signatures = []
    for line in block[:-1].split("\n"):
        if not line.startswith(SIG_PREFIX):
            raise NoteInvalid("a signature line starts with '— '")
        name, sep, blob = line[len(SIG_PREFIX) :].partition(" ")
        check_name(name)
        raw = unb64(blob, "a signature")
        if not sep or len(raw) < 5:
            raise NoteInvalid("a signature line is '— <name> <base64 key id and signature>'")
        signatures.append(Signature(name, raw[:4], raw[4:]))
    if not signatures or len(signatures) > MAX_SIGNATURES:
        raise NoteInvalid(f"a note has 1 to {MAX_SIGNATURES} signatures")
    return Note(text, tuple(signatures))


@dataclass(frozen=True)
class Verifier:
    """A named Ed25519 public key for one signature type (note or cosignature/v1)."""

    name: str
    public_key: bytes
    alg: int = ALG_ED25519

    def __post_init__(self) -> None:
        check_name(self.name)
        if self.alg not in (ALG_ED25519, ALG_COSIGNATURE_V1):
            raise NoteInvalid(f"unsupported signature type 0x{self.alg:02x}")
        if len(self.public_key) != 32:
            raise NoteInvalid("an Ed25519 public key is 32 bytes")

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, self.alg, self.public_key)

    @property
    def vkey(self) -> str:
        return f"{self.name}+{self.key_id.hex()}+{b64(bytes([self.alg]) + self.public_key)}"

    @classmethod
    def from_vkey(cls, vkey: str) -> Verifier:
        parts = vkey.strip().split("+", 2)  # base64 may contain "+"
        if len(parts) != 3 or not _HEX_ID.match(parts[1]):
            raise NoteInvalid("a vkey is '<name>+<8 hex digits>+<base64 key>'")
        name, hex_id, blob = parts
        raw = unb64(blob, "a vkey's key")
        if len(raw) != 33:
            raise NoteInvalid("a vkey carries a type byte and a 32-byte Ed25519 key")
        verifier = cls(name, raw[1:], raw[0])
        if verifier.key_id.hex() != hex_id:
            raise NoteInvalid("the vkey's key id does not match its name and key")
        return verifier

    def matches(self, sig: Signature) -> bool:
        return sig.name == self.name and sig.key_id == self.key_id

    def verify(self, text: str, sig: Signature) -> bool:
        """Does ``sig`` sign ``text`` (the note text) with this key?"""
        if not self.matches(sig):
            return False
        message = text.encode("utf-8")
        if self.alg == ALG_ED25519:
            return len(sig.signature) == 64 and _ed25519_verify(
                self.public_key, sig.signature, message
            )
        if len(sig.signature) != 72:
            return False
        (timestamp,) = struct.unpack(">Q", sig.signature[:8])
        if timestamp >= 1 << 63:
            return False
        return _ed25519_verify(
            self.public_key, sig.signature[8:], cosignature_message(text, timestamp)
        )


def cosignature_message(text: str, timestamp: int) -> bytes:
    return f"cosignature/v1\ntime {timestamp}\n".encode() + text.encode("utf-8")


def cosignature_time(sig: Signature) -> int:
    if len(sig.signature) != 72:
        raise NoteInvalid("a cosignature/v1 is a timestamp and a 64-byte signature")
    return int(struct.unpack(">Q", sig.signature[:8])[0])


@dataclass(frozen=True)
class Ed25519Signer:
    """An Ed25519 private key with its key name; signs notes and cosignatures."""

    name: str
    private_key: Ed25519PrivateKey

    def __post_init__(self) -> None:
        check_name(self.name)

    @classmethod
    def generate(cls, name: str) -> Ed25519Signer:
        return cls(name, Ed25519PrivateKey.generate())

    def public_key_bytes(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    def sign(self, message: bytes) -> bytes:
        return self.private_key.sign(message)

    def verifier(self, alg: int = ALG_ED25519) -> Verifier:
        return Verifier(self.name, self.public_key_bytes(), alg)

    def sign_note(self, text: str) -> Signature:
        return Signature(
            self.name,
            key_id(self.name, ALG_ED25519, self.public_key_bytes()),
            self.sign(text.encode("utf-8")),
        )

    def cosign(self, text: str, timestamp: int) -> Signature:
        """A C2SP tlog-cosignature/v1 of the note text at POSIX time ``timestamp``."""
        if not 0 <= timestamp < 1 << 63:
            raise NoteInvalid("a cosignature timestamp is a non-negative 63-bit integer")
        sig = self.sign(cosignature_message(text, timestamp))
        return Signature(
            self.name,
            key_id(self.name, ALG_COSIGNATURE_V1, self.public_key_bytes()),
            struct.pack(">Q", timestamp) + sig,
        )

    def private_key_text(self) -> str:
        seed = self.private_key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        kid = key_id(self.name, ALG_ED25519, self.public_key_bytes()).hex()
        return f"PRIVATE+KEY+{self.name}+{kid}+{b64(bytes([ALG_ED25519]) + seed)}"

    @classmethod
    def from_private_key_text(cls, text: str) -> Ed25519Signer:
        parts = text.strip().split("+", 4)  # base64 may contain "+"
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"] or not _HEX_ID.match(parts[3]):
            raise NoteInvalid("a signer key is 'PRIVATE+KEY+<name>+<hex id>+<base64 key>'")
        raw = unb64(parts[4], "a signer key")
        if len(raw) != 33 or raw[0] != ALG_ED25519:
            raise NoteInvalid("a signer key carries 0x01 and a 32-byte Ed25519 seed")
        signer = cls(parts[2], Ed25519PrivateKey.from_private_bytes(raw[1:]))
        if key_id(signer.name, ALG_ED25519, signer.public_key_bytes()).hex() != parts[3]:
            raise NoteInvalid("the signer key's id does not match its name and key")
        return signer
