"""Signing keys: encrypted at rest, strict file modes, RFC 7638 kids, rotation overlap."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from pathlib import Path

import jwt
import pytest
import structlog
from pydantic import SecretStr

from common.settings import Settings
from keys import PURPOSES, KeyRing
from keys.jwk import thumbprint
from keys.store import KeyPermissions, KeyUnreadable


class Clock:
    def __init__(self, t: float = 1_800_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


def test_rfc_8037_thumbprint_known_answer() -> None:
    # RFC 8037 Appendix A.3: the thumbprint of the Ed25519 example key.
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
    assert thumbprint(jwk) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


def test_init_creates_one_encrypted_key_per_purpose_with_strict_modes(settings: Settings) -> None:
    ring = KeyRing(settings)
    ring.ensure_all()
    root = settings.home / "keys"
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    pems = sorted(root.glob("*/*.pem"))
    assert len(pems) == len(PURPOSES) + 1  # and the pseudonym secret (records/pseudonyms.py)
    for pem in pems:
        assert stat.S_IMODE(pem.stat().st_mode) == 0o600
        assert b"ENCRYPTED PRIVATE KEY" in pem.read_bytes()
    jwks = ring.jwks()["keys"]
    assert {k["xinyi_purpose"] for k in jwks} == set(PURPOSES)
    for k in jwks:
        assert "d" not in k
        assert k["kid"] == thumbprint(k)
    ring.ensure_all()  # idempotent
    assert len(list(root.glob("*/*.pem"))) == len(PURPOSES) + 1  # and the pseudonym secret


def test_wrong_passphrase_is_refused(
    settings: Settings, make_settings: Callable[..., Settings]
) -> None:
    KeyRing(settings).ensure_all()
    wrong = settings.model_copy(update={"key_passphrase": None})
    (settings.home / "UNSAFE-dev-key-passphrase").write_text("another passphrase")
    (settings.home / "UNSAFE-dev-key-passphrase").chmod(0o600)
    with pytest.raises(KeyUnreadable):
        KeyRing(wrong)


def test_key_files_readable_by_others_are_refused(settings: Settings) -> None:
    KeyRing(settings).ensure_all()
    pem = next((settings.home / "keys").glob("grants/*.pem"))
    pem.chmod(0o644)
    with pytest.raises(KeyPermissions) as caught:
        KeyRing(settings)
    assert str(pem) in caught.value.message
    pem.chmod(0o600)
    (settings.home / "keys").chmod(0o755)
    with pytest.raises(KeyPermissions):
        KeyRing(settings)


def test_dev_passphrase_is_generated_with_a_loud_warning(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings().model_copy(update={"key_passphrase": None})
    with structlog.testing.capture_logs() as logs:
        KeyRing(settings).ensure_all()
    path = settings.home / "UNSAFE-dev-key-passphrase"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    warnings = [e for e in logs if e["event"] == "UNSAFE_DEV_KEY_PASSPHRASE"]
    assert warnings and warnings[0]["log_level"] == "warning"


def test_rotation_keeps_the_old_key_published_until_what_it_signed_expired(
    settings: Settings,
) -> None:
    clock = Clock()
    ring = KeyRing(settings, clock=clock)
    ring.ensure_all()
    old_token = ring.sign_jwt("tokens", {"sub": "x"})
    old_grant = ring.sign_jwt("grants", {"sub": "x"})
    old_kids = {p: ring.signing_key(p).kid for p in PURPOSES}
    for p in PURPOSES:
        ring.rotate(p)
        assert ring.signing_key(p).kid != old_kids[p]
    published = {k["kid"] for k in ring.jwks()["keys"]}
    assert set(old_kids.values()) <= published
    for token, purpose in ((old_token, "tokens"), (old_grant, "grants")):
        kid = jwt.get_unverified_header(token)["kid"]
        key = ring.public_key(kid, purpose)
        assert key is not None
        assert jwt.decode(token, key, algorithms=["EdDSA"])["sub"] == "x"
    new_token = ring.sign_jwt("tokens", {"sub": "y"})
    assert jwt.get_unverified_header(new_token)["kid"] == ring.signing_key("tokens").kid

    clock.t += settings.config.tokens.access_token_seconds + 61
    assert ring.public_key(old_kids["tokens"], "tokens") is None
    assert ring.public_key(old_kids["grants"], "grants") is not None
    clock.t += 400 * 86_400
    published = {k["kid"] for k in ring.jwks()["keys"]}
    assert old_kids["grants"] not in published
    # Old checkpoints stay verifiable forever.
    assert old_kids["checkpoints"] in published


def test_a_key_of_one_purpose_never_verifies_for_another(settings: Settings) -> None:
    ring = KeyRing(settings)
    ring.ensure_all()
    kid = ring.signing_key("tokens").kid
    assert ring.public_key(kid, "tokens") is not None
    assert ring.public_key(kid, "grants") is None


def test_another_process_sees_a_rotation_at_once(settings: Settings) -> None:
    worker = KeyRing(settings)
    worker.ensure_all()
    operator = KeyRing(settings)
    new = operator.rotate("grants")
    token = operator.sign_jwt("grants", {"sub": "z"})
    assert jwt.get_unverified_header(token)["kid"] == new.kid
    assert worker.public_key(new.kid, "grants") is not None


def test_a_half_written_key_is_ignored(settings: Settings) -> None:
    ring = KeyRing(settings)
    ring.ensure_all()
    meta = next((settings.home / "keys").glob("tokens/*.json"))
    data = json.loads(meta.read_text())
    os.remove(meta)  # as if the process died between the two writes
    fresh = KeyRing(settings)
    assert all(r.kid != data["kid"] for r in fresh.records())


def test_checkpoint_signer_signs_with_the_current_key(settings: Settings) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    ring = KeyRing(settings)
    ring.ensure_all()
    signer = ring.checkpoint_signer()
    assert signer.name == settings.config.audit.origin
    sig = signer.sign(b"hello")
    Ed25519PublicKey.from_public_bytes(signer.public_key_bytes()).verify(sig, b"hello")
    ring.rotate("checkpoints")
    assert len(signer.verifier_keys()) == 2
    assert signer.verifier_keys()[0] == signer.public_key_bytes()


def test_home_path_of_keys(settings: Settings) -> None:
    KeyRing(settings).ensure_all()
    assert Path(settings.home / "keys" / "grants").is_dir()


def _write_legacy(settings: Settings, purpose: str) -> str:
    """A key file as earlier versions wrote it: PKCS#8 encrypted with PBKDF2."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from keys.jwk import public_jwk

    private = Ed25519PrivateKey.generate()
    kid = thumbprint(public_jwk(private.public_key()))
    folder = settings.home / "keys" / purpose
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    (settings.home / "keys").chmod(0o700)
    assert settings.key_passphrase is not None
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(settings.key_passphrase.get_secret_value().encode()),
    )
    for name, data in (
        (f"{kid}.pem", pem),
        (
            f"{kid}.json",
            json.dumps(
                {"kid": kid, "purpose": purpose, "created_at": 1_700_000_000, "retired_at": None}
            ).encode(),
        ),
    ):
        fd = os.open(folder / name, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, data)
        os.close(fd)
    return kid


def test_key_files_use_scrypt_with_one_salt_per_folder(settings: Settings) -> None:
    KeyRing(settings).ensure_all()
    headers = {pem.read_text().splitlines()[1] for pem in (settings.home / "keys").glob("*/*.pem")}
    assert len(headers) == 1
    assert next(iter(headers)).startswith("KDF: scrypt ln=10 r=8 p=1 salt=")


def test_legacy_pbkdf2_files_are_read_and_migrated_by_a_rotation(settings: Settings) -> None:
    from keys.store import FileKeyStore

    kids = {p: _write_legacy(settings, p) for p in PURPOSES}
    ring = KeyRing(settings)
    assert {p: ring.signing_key(p).kid for p in PURPOSES} == kids
    store = ring.store
    assert isinstance(store, FileKeyStore) and len(store.legacy_files()) == len(PURPOSES)
    token = ring.sign_jwt("tokens", {"sub": "x"})
    ring.rotate("grants")
    assert store.legacy_files() == []
    again = KeyRing(settings)
    assert again.signing_key("tokens").kid == kids["tokens"]
    key = again.public_key(kids["tokens"], "tokens")
    assert key is not None and jwt.decode(token, key, algorithms=["EdDSA"])["sub"] == "x"


def test_change_passphrase_reencrypts_every_file_and_migrates_legacy_ones(
    settings: Settings, tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from cli import main

    legacy = _write_legacy(settings, "tokens")
    env = {
        "XINYI_HOME": str(settings.home),
        "XINYI_KEY_PASSPHRASE": "test-passphrase-not-secret",
        "XINYI_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
    }
    runner = CliRunner()
    assert runner.invoke(main, ["init"], env=env).exit_code == 0
    weak = runner.invoke(main, ["keys", "change-passphrase"], env=env, input="short\n")
    assert weak.exit_code == 2 and "passphrase_weak" in weak.output
    result = runner.invoke(
        main, ["keys", "change-passphrase"], env=env, input="a much longer new passphrase\n"
    )
    assert result.exit_code == 0, result.output
    # One per purpose, and the pseudonym secret.
    assert f"re-encrypted {len(PURPOSES) + 1} key files" in result.output
    with pytest.raises(KeyUnreadable):
        KeyRing(settings)
    new = settings.model_copy(update={"key_passphrase": SecretStr("a much longer new passphrase")})
    ring = KeyRing(new)
    assert ring.signing_key("tokens").kid == legacy
    assert all(
        b"KDF: scrypt" in pem.read_bytes() for pem in (settings.home / "keys").glob("*/*.pem")
    )
    # Without XINYI_KEY_PASSPHRASE the old passphrase is the first stdin line; a wrong
    # one is refused and changes nothing.
    bare = {k: v for k, v in env.items() if k != "XINYI_KEY_PASSPHRASE"}
    wrong = runner.invoke(
        main, ["keys", "change-passphrase"], env=bare, input="not it at all\nthird passphrase!!\n"
    )
    assert wrong.exit_code == 2 and "key_unreadable" in wrong.output
    assert KeyRing(new).signing_key("tokens").kid == legacy
    back = runner.invoke(
        main,
        ["keys", "change-passphrase"],
        env=bare,
        input="a much longer new passphrase\nthird passphrase!!\n",
    )
    assert back.exit_code == 0, back.output
    third = new.model_copy(update={"key_passphrase": SecretStr("third passphrase!!")})
    assert KeyRing(third).signing_key("tokens").kid == legacy
