"""bank.profile: the bank's folder keeps its keys encrypted and gives them back."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import numpy as np
import pytest

from bank.errors import BankError
from bank.profile import BankProfile, passphrase_from_env

PASS = "bank passphrase for tests"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bank") / "home"
    BankProfile.init(path, "demo_bank", "http://127.0.0.1:8600/", PASS)
    return path


def test_init_writes_owner_only_files_without_plain_secrets(home: Path) -> None:
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    names = sorted(p.name for p in home.iterdir())
    assert names == [
        "bank.json",
        "ckks_public.bin",
        "ckks_secret.vault",
        "client_jwk.json",
        "client_key.pem",
    ]
    for p in home.iterdir():
        assert stat.S_IMODE(p.stat().st_mode) == 0o600
    assert b"ENCRYPTED PRIVATE KEY" in (home / "client_key.pem").read_bytes()
    jwk = json.loads((home / "client_jwk.json").read_text())
    assert jwk["kty"] == "OKP" and jwk["crv"] == "Ed25519" and "d" not in jwk
    meta = json.loads((home / "bank.json").read_text())
    assert meta["institution_id"] == "demo_bank"
    assert meta["gateway"] == "http://127.0.0.1:8600"


def test_the_secret_context_survives_a_reopen(home: Path) -> None:
    first = BankProfile.open(home, PASS)
    ct = first.secret.encrypt([1.5, -2.0]).to_bytes()
    second = BankProfile.open(home, PASS)
    got = second.secret.decrypt(second.secret.ciphertext(ct))
    np.testing.assert_allclose(got, [1.5, -2.0], atol=1e-6)
    # The secret key is not in any file in clear: the public context is, the secret is not.
    assert second.secret.public_bytes() == (home / "ckks_public.bin").read_bytes()


def test_a_wrong_passphrase_opens_nothing(home: Path) -> None:
    with pytest.raises(BankError) as e:
        BankProfile.open(home, "not the passphrase")
    assert e.value.code == "wrong_passphrase"


def test_init_never_overwrites(home: Path) -> None:
    with pytest.raises(BankError) as e:
        BankProfile.init(home, "other", "http://x", PASS)
    assert e.value.code == "bank_exists"


def test_contexts_are_remembered_per_gateway(home: Path) -> None:
    profile = BankProfile.open(home, PASS)
    profile.remember_context("ctx_123", "http://127.0.0.1:8600/")
    assert BankProfile.open(home, PASS).context_id() == "ctx_123"
    assert BankProfile.open(home, PASS).context_id("http://elsewhere") is None


def test_missing_folder_and_passphrase_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(BankError) as e:
        BankProfile.open(tmp_path / "none", PASS)
    assert e.value.code == "bank_not_initialized"
    with pytest.raises(BankError) as e2:
        passphrase_from_env({})
    assert "XINYI_BANK_PASSPHRASE" in e2.value.message
