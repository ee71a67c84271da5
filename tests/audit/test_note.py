"""C2SP signed notes, vkeys, checkpoints and cosignatures.

Known answers:
- the PeterNeumann key pair and signed note of golang.org/x/mod/sumdb/note
  ``note_test.go`` (BSD-3-Clause, The Go Authors); Ed25519 is deterministic, so our
  signature must equal the published one byte for byte;
- the cosignature/v1 verifier keys and the timestamped cosignature of
  transparency-dev/formats ``note/note_cosigv1_test.go`` (Apache-2.0), which fix the
  0x04 key-id rule and the timestamp layout of C2SP tlog-cosignature.
"""

from __future__ import annotations

import base64

import pytest

from audit.checkpoint import Checkpoint, SignedCheckpoint, open_checkpoint, sign_checkpoint
from audit.errors import NoteInvalid, SignatureInvalid
from audit.note import (
    ALG_COSIGNATURE_V1,
    ALG_ED25519,
    Ed25519Signer,
    Signature,
    Verifier,
    cosignature_time,
    parse_note,
)

VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
SIG_LINE = (
    "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotp"
    "RZb6KE6RyyBwJnAM=\n"
)
NOTE = TEXT + "\n" + SIG_LINE


def test_signing_reproduces_the_reference_note_byte_for_byte() -> None:
    signer = Ed25519Signer.from_private_key_text(SKEY)
    assert signer.verifier().vkey == VKEY
    assert signer.private_key_text() == SKEY
    assert signer.sign_note(TEXT).line() == SIG_LINE


def test_reference_note_verifies_and_any_change_fails() -> None:
    verifier = Verifier.from_vkey(VKEY)
    note = parse_note(NOTE)
    assert note.text == TEXT and note.render() == NOTE
    assert verifier.verify(note.text, note.signatures[0])
    changed = parse_note(NOTE.replace("cryptography", "cryptographY"))
    assert not verifier.verify(changed.text, changed.signatures[0])


def test_mangled_vkeys_are_refused() -> None:
    for i in range(len(VKEY)):
        for bad in (VKEY[:i], VKEY[i + 1 :], VKEY[:i] + chr(ord(VKEY[i]) + 1) + VKEY[i + 1 :]):
            if bad == VKEY:
                continue
            try:
                v = Verifier.from_vkey(bad)
            except NoteInvalid:
                continue
            # A mangling that still parses must name a different key.
            assert (v.name, v.public_key) != ("PeterNeumann", Verifier.from_vkey(VKEY).public_key)


@pytest.mark.parametrize(
    "vkey",
    [
        "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2",
        "TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6",
    ],
)
def test_published_vkeys_have_the_key_ids_the_spec_computes(vkey: str) -> None:
    v = Verifier.from_vkey(vkey)
    assert v.vkey == vkey
    assert v.alg in (ALG_ED25519, ALG_COSIGNATURE_V1)


def test_incorrect_key_ids_are_refused() -> None:
    with pytest.raises(NoteInvalid):
        Verifier.from_vkey("remora.n621.de+00000000+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2")


def test_published_cosignature_timestamp_is_read() -> None:
    blob = base64.b64decode(
        "ZGhGuQAAAABm/qTPeyKXD+R2rzyQsxPiP8mXum7qq/iF0u4vanlqJyocWODBt97w9uL+8qT7S5gxEHWWOworDcFi"
        "EBYJXORmnFBOBA=="
    )
    assert cosignature_time(Signature("w", blob[:4], blob[4:])) == 1727964367
    plain = base64.b64decode(
        "eQjRQm6eSKzFoiYalgwCPXu2y3ijtg68is9M46JKxuZB+dRfTmeQeDBoXnvxZx2ugnkyV+MUMLXpWs1hPb/W/4xk"
        "NQY="
    )
    with pytest.raises(NoteInvalid):
        cosignature_time(Signature("w", plain[:4], plain[4:]))


@pytest.mark.parametrize(
    "bad",
    [
        TEXT,  # no signatures
        TEXT + "\n",  # blank line but no signature
        TEXT + "\n" + SIG_LINE.rstrip("\n"),  # no final newline
        TEXT + "\n" + SIG_LINE.replace("— ", "- "),
        TEXT + "\n" + SIG_LINE.replace("x08go", "x08go!"),
        TEXT + "\n" + "— Peter+Neumann AAAAAAA=\n",
        TEXT.replace("\n", "\r\n", 1) + "\n" + SIG_LINE,
        TEXT + "\n" + SIG_LINE * 101,
    ],
)
def test_malformed_notes_are_refused(bad: str) -> None:
    with pytest.raises(NoteInvalid):
        parse_note(bad)


ROOT = bytes(range(32))


def test_checkpoint_body_follows_tlog_checkpoint() -> None:
    cp = Checkpoint("example.com/log", 20852163, ROOT)
    assert cp.body() == ("example.com/log\n20852163\n" + base64.b64encode(ROOT).decode() + "\n")
    assert Checkpoint.parse(cp.body()) == cp
    ext = Checkpoint("example.com/log", 1, ROOT, ("ext line",))
    assert Checkpoint.parse(ext.body()) == ext


@pytest.mark.parametrize(
    "body",
    [
        "o\n01\n" + base64.b64encode(ROOT).decode() + "\n",
        "o\n-1\n" + base64.b64encode(ROOT).decode() + "\n",
        "o\n1\n" + base64.b64encode(ROOT[:31]).decode() + "\n",
        "o\n1\n" + base64.b64encode(ROOT).decode(),
        "o\n1\n",
    ],
)
def test_malformed_checkpoints_are_refused(body: str) -> None:
    with pytest.raises(NoteInvalid):
        Checkpoint.parse(body)


def signed(size: int = 5, name: str = "example.com/log") -> tuple[Ed25519Signer, SignedCheckpoint]:
    signer = Ed25519Signer.generate(name)
    return signer, sign_checkpoint(Checkpoint(name, size, ROOT), signer)


def test_signed_checkpoint_opens_with_the_log_key_only() -> None:
    signer, cp = signed()
    opened = open_checkpoint(cp.text(), [signer.verifier()])
    assert opened.checkpoint == cp.checkpoint
    other = Ed25519Signer.generate("example.com/log")
    with pytest.raises(SignatureInvalid):
        open_checkpoint(cp.text(), [other.verifier()])
    rewritten = cp.text().replace("\n5\n", "\n6\n")
    with pytest.raises(SignatureInvalid):
        open_checkpoint(rewritten, [signer.verifier()])


def test_checkpoint_key_name_must_be_the_origin() -> None:
    with pytest.raises(NoteInvalid):
        sign_checkpoint(Checkpoint("a.example/log", 1, ROOT), Ed25519Signer.generate("b"))


def test_cosignature_round_trip_and_key_id_rule() -> None:
    log_signer, cp = signed()
    witness = Ed25519Signer.generate("witness.example/tax")
    cosig = witness.cosign(cp.note.text, 1_700_000_000)
    verifier = witness.verifier(ALG_COSIGNATURE_V1)
    assert cosig.key_id == verifier.key_id != witness.verifier(ALG_ED25519).key_id
    assert cosignature_time(cosig) == 1_700_000_000
    assert verifier.verify(cp.note.text, cosig)
    # A note signature of the same key is not a cosignature, and vice versa.
    assert not verifier.verify(cp.note.text, witness.sign_note(cp.note.text))
    assert not witness.verifier(ALG_ED25519).verify(cp.note.text, cosig)
    # The timestamp is signed.
    moved = Signature(cosig.name, cosig.key_id, (1).to_bytes(8, "big") + cosig.signature[8:])
    assert not verifier.verify(cp.note.text, moved)
    # And so is every line of the body, extension lines included.
    assert not verifier.verify(cp.note.text + "ext\n", cosig)
    both = cp.with_signatures([cosig])
    reparsed = parse_note(both.text())
    assert reparsed.signatures == (cp.note.signatures[0], cosig)
    assert open_checkpoint(both.text(), [log_signer.verifier()]).checkpoint.size == 5
