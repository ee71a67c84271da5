"""C2SP tlog-checkpoint bodies and the log's signed checkpoints (pure).

A checkpoint body (https://c2sp.org/tlog-checkpoint) is three newline-terminated
lines, the origin, the tree size in decimal without leading zeros, the standard
base64 of the 32-byte RFC 9162 root, then optional extension lines. The log signs
it as a C2SP signed note whose key name is the origin; witnesses add cosignature
lines to the same note.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from audit.errors import NoteInvalid, SignatureInvalid
from audit.merkle import HASH_SIZE
from audit.note import (
    ALG_ED25519,
    Note,
    Signature,
    Verifier,
    b64,
    check_name,
    key_id,
    parse_note,
    unb64,
)

_SIZE = re.compile(r"^(0|[1-9][0-9]{0,19})$")


class CheckpointSigner(Protocol):
    """The log's checkpoint key (implemented by ``keys``; any Ed25519 key will do)."""

    @property
    def name(self) -> str:
        """The log origin, which is also the note key name."""
        ...

    def sign(self, message: bytes) -> bytes:
        """Ed25519 signature of ``message``."""
        ...

    def public_key_bytes(self) -> bytes:
        """The 32 raw bytes of the Ed25519 public key."""
        ...


def signer_verifier(signer: CheckpointSigner) -> Verifier:
    return Verifier(signer.name, signer.public_key_bytes(), ALG_ED25519)


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin or "\n" in self.origin:
            raise NoteInvalid("a checkpoint origin is one non-empty line")
        if not 0 <= self.size < 1 << 64:
            raise NoteInvalid("a checkpoint size is a 64-bit unsigned integer")
        if len(self.root) != HASH_SIZE:
            raise NoteInvalid("a checkpoint root is 32 bytes")
        if any(not e or "\n" in e for e in self.extensions):
            raise NoteInvalid("an extension line is one non-empty line")

    def body(self) -> str:
        lines = [self.origin, str(self.size), b64(self.root), *self.extensions]
        return "".join(line + "\n" for line in lines)

    @classmethod
    def parse(cls, body: str) -> Checkpoint:
        if not body.endswith("\n"):
            raise NoteInvalid("a checkpoint body ends with a newline")
        lines = body[:-1].split("\n")
        if len(lines) < 3:
            raise NoteInvalid("a checkpoint has an origin, a size and a root hash line")
        origin, size, root, *ext = lines
        if not _SIZE.match(size):
            raise NoteInvalid("a checkpoint size is decimal without leading zeros")
        return cls(origin, int(size), unb64(root, "a checkpoint root"), tuple(ext))


@dataclass(frozen=True)
class SignedCheckpoint:
    checkpoint: Checkpoint
    note: Note

    def text(self) -> str:
        return self.note.render()

    def with_signatures(self, extra: Iterable[Signature]) -> SignedCheckpoint:
        """The same note with more signature lines (cosignatures), duplicates dropped."""
        sigs = list(self.note.signatures)
        for s in extra:
            if s not in sigs:
                sigs.append(s)
        return SignedCheckpoint(self.checkpoint, Note(self.note.text, tuple(sigs)))


def sign_checkpoint(checkpoint: Checkpoint, signer: CheckpointSigner) -> SignedCheckpoint:
    if signer.name != checkpoint.origin:
        raise NoteInvalid("the checkpoint key name must be the log origin")
    check_name(signer.name)
    text = checkpoint.body()
    sig = Signature(
        signer.name,
        key_id(signer.name, ALG_ED25519, signer.public_key_bytes()),
        signer.sign(text.encode("utf-8")),
    )
    return SignedCheckpoint(checkpoint, Note(text, (sig,)))


def open_checkpoint(data: str | bytes, log_keys: Sequence[Verifier]) -> SignedCheckpoint:
    """Parse a signed checkpoint and check it carries a valid signature of one of the
    log's keys (whose name is the origin). Cosignature lines are kept, unverified."""
    note = parse_note(data)
    checkpoint = Checkpoint.parse(note.text)
    for verifier in log_keys:
        if verifier.name != checkpoint.origin:
            continue
        for sig in note.signatures:
            if verifier.verify(note.text, sig):
                return SignedCheckpoint(checkpoint, note)
    raise SignatureInvalid(
        f"the checkpoint of {checkpoint.origin!r} at size {checkpoint.size} "
        "has no valid signature of the log's key"
    )
