"""bank.vault: secrets at rest open only with their passphrase and unchanged."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from bank import vault
from bank.errors import BankError


def test_sealed_bytes_open_with_the_passphrase() -> None:
    blob = vault.seal(b"the CKKS secret context", "correct horse")
    assert b"CKKS" not in blob
    assert vault.unseal(blob, "correct horse") == b"the CKKS secret context"


def test_a_wrong_passphrase_is_refused() -> None:
    blob = vault.seal(b"secret", "correct horse")
    with pytest.raises(BankError) as e:
        vault.unseal(blob, "wrong horse")
    assert e.value.code == "wrong_passphrase"


@pytest.mark.parametrize("position", [8, 12, 30, -1])
def test_any_changed_byte_is_refused(position: int) -> None:
    blob = bytearray(vault.seal(b"secret", "correct horse"))
    blob[position] ^= 0x01
    with pytest.raises(BankError) as e:
        vault.unseal(bytes(blob), "correct horse")
    # AES-GCM cannot tell a changed byte from a wrong passphrase: both fail its tag.
    assert e.value.code == "wrong_passphrase"


def test_not_a_vault_file_is_refused() -> None:
    with pytest.raises(BankError) as e:
        vault.unseal(b"plain text", "x")
    assert e.value.code == "vault_corrupt"


def test_an_empty_passphrase_protects_nothing() -> None:
    with pytest.raises(BankError):
        vault.seal(b"secret", "")


def test_private_files_are_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "f"
    vault.write_private(path, b"x" * 100_000)
    assert path.read_bytes() == b"x" * 100_000
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
