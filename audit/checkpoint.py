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


# Log key transitions --------------------------------------------------------------

TRANSITION_HEADER = "xinyi-log-key-transition/v1"


@dataclass(frozen=True)
class KeyTransition:
    """The log's statement that its checkpoint key changes: signed by the old key (so a
    witness that pinned it can follow) and by the new one (which proves it is held).
    Checkpoints of ``from_size`` entries or more are signed by the new key; the old key
    is trusted for smaller ones only.

    The body is a C2SP signed note text::

        xinyi-log-key-transition/v1
        origin <log origin>
        old <old vkey>
        new <new vkey>
        from-size <N>
    """

    origin: str
    old_vkey: str
    new_vkey: str
    from_size: int

    def body(self) -> str:
        lines = [
            TRANSITION_HEADER,
            f"origin {self.origin}",
            f"old {self.old_vkey}",
            f"new {self.new_vkey}",
            f"from-size {self.from_size}",
        ]
        return "".join(line + "\n" for line in lines)

    @classmethod
    def parse(cls, body: str) -> KeyTransition:
        lines = body[:-1].split("\n") if body.endswith("\n") else []
        fields = dict(line.partition(" ")[::2] for line in lines[1:])
        if (
            len(lines) != 5
            or lines[0] != TRANSITION_HEADER
            or set(fields) != {"origin", "old", "new", "from-size"}
            or not _SIZE.match(fields["from-size"])
        ):
            raise NoteInvalid(f"not a {TRANSITION_HEADER} statement")
        old, new = Verifier.from_vkey(fields["old"]), Verifier.from_vkey(fields["new"])
        if old.name != fields["origin"] or new.name != fields["origin"]:
            raise NoteInvalid("a key transition's keys are named after the log origin")
        if old.alg != ALG_ED25519 or new.alg != ALG_ED25519 or old == new:
            raise NoteInvalid("a key transition names two different Ed25519 log keys")
        return cls(fields["origin"], old.vkey, new.vkey, int(fields["from-size"]))


def sign_transition(transition: KeyTransition, old: CheckpointSigner, new: CheckpointSigner) -> str:
    """The signed statement (a note with the old key's and the new key's signatures)."""
    text = transition.body()
    KeyTransition.parse(text)
    sigs = []
    for signer in (old, new):
        if signer_verifier(signer).vkey not in (transition.old_vkey, transition.new_vkey):
            raise NoteInvalid("a key transition is signed by the two keys it names")
        sigs.append(
            Signature(
                signer.name,
                key_id(signer.name, ALG_ED25519, signer.public_key_bytes()),
                signer.sign(text.encode("utf-8")),
            )
        )
    return Note(text, tuple(sigs)).render()


def open_transition(data: str | bytes, pinned: Verifier) -> KeyTransition:
    """Parse a key transition and check it moves away from ``pinned``: signed by that
    key (the one a witness trusts) and by the new key it names. Anything else, an
    unsigned or otherwise signed change above all, raises SignatureInvalid."""
    note = parse_note(data)
    transition = KeyTransition.parse(note.text)
    if Verifier.from_vkey(transition.old_vkey) != pinned:
        raise SignatureInvalid(
            f"the key transition starts from {transition.old_vkey}, not from the pinned "
            f"log key {pinned.vkey}"
        )
    new = Verifier.from_vkey(transition.new_vkey)
    for key, which in ((pinned, "old (pinned)"), (new, "new")):
        if not any(key.verify(note.text, sig) for sig in note.signatures):
            raise SignatureInvalid(f"the key transition has no valid signature of its {which} key")
    return transition
