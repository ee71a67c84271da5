"""The key ring: one Ed25519 signing key per purpose, rotation with overlap, the JWKS.

Invariants:
- purposes are fixed: ``grants`` (consent grants), ``tokens`` (access tokens),
  ``checkpoints`` (audit log checkpoints), ``events`` (webhook events), ``nodes`` (node
  assertions to peer nodes, ``nodes.core``); a key signs for
  one purpose only and a verifier asks for a kid *and* its purpose, so a token key can
  never pass for a grant key, nor an event for a grant (each kind also has its own
  ``typ``, ``common.jwt_rules``);
- ``kid`` is the RFC 7638 thumbprint of the public JWK;
- the newest unretired key of a purpose signs; a retired key stays published in the
  JWKS until everything it could have signed has expired (tokens: the token lifetime;
  grants: the longest purpose duration; events: the longest retry of a delivery;
  checkpoints: forever, since old checkpoints must stay verifiable by witnesses);
- several worker processes share the key folder: a worker notices a rotation done by
  ``xinyi keys rotate`` within a second, and reloads at once when asked for an unknown
  kid.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from common.errors import ConfigError, InvalidInput
from common.files import generated_secret
from common.logging import get_logger
from common.settings import Settings
from keys.jwk import public_jwk, raw_public, thumbprint
from keys.store import FileKeyStore, KeyRecord, KeyStore

PURPOSES: tuple[str, ...] = ("grants", "tokens", "checkpoints", "events", "nodes")
# grades: the secret behind keyed hashes of personal identifiers (records/pseudonyms.py).
# Kept in the same encrypted store, but it signs nothing, is never published and is never
# rotated (a new one would orphan every hash stored under the old one).
PSEUDONYM_PURPOSE = "pseudonyms"
_REFRESH_SECONDS = 1.0
log = get_logger("keys")


class UnknownPurpose(InvalidInput):
    code = "unknown_key_purpose"


def passphrase_for(settings: Settings) -> bytes:
    """The key passphrase from ``XINYI_KEY_PASSPHRASE``; without it, an *unsafe* dev
    passphrase generated once into the instance folder, with a loud warning."""
    if settings.key_passphrase is not None:
        return settings.key_passphrase.get_secret_value().encode("utf-8")
    return unsafe_dev_passphrase(settings.home)


_warned: set[Path] = set()
# The file name of the generated dev passphrase (not a secret itself).
DEV_PASSPHRASE_FILE = "UNSAFE-dev-key-passphrase"  # noqa: S105 -- a file name, not a password


def unsafe_dev_passphrase(home: Path) -> bytes:
    """The generated dev passphrase; warns once per process and folder."""
    path = home / DEV_PASSPHRASE_FILE
    passphrase, _ = generated_secret(path)
    if path not in _warned:
        _warned.add(path)
        log.warning(
            "UNSAFE_DEV_KEY_PASSPHRASE",
            path=str(path),
            warning="private keys are encrypted with a passphrase stored next to them; "
            "set XINYI_KEY_PASSPHRASE for any real deployment",
        )
    return passphrase.encode("utf-8")


def publish_seconds(settings: Settings, purpose: str) -> int | None:
    """How long a retired key stays published; None: forever."""
    cfg = settings.config
    if purpose == "tokens":
        return cfg.tokens.access_token_seconds + 60
    if purpose == "grants":
        return max(p.max_days for p in cfg.purposes.values()) * 86_400 + 86_400
    if purpose == "events":
        # An event signed just before the rotation may be retried this long after it.
        c = cfg.consent
        retries = sum(
            c.webhook_backoff_seconds * 2 ** min(k, 16) for k in range(c.webhook_max_attempts)
        )
        return int(retries + c.webhook_lease_seconds) + 86_400
    if purpose == "nodes":
        # Peers pin the node key they were given (`xinyi node add-peer --jwk`): after a
        # rotation the old key verifies nothing new; assertions live minutes.
        return settings.config.nodes.assertion_max_seconds + 60
    return None


class KeyRing:
    def __init__(
        self,
        settings: Settings,
        store: KeyStore | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.store: KeyStore = store or FileKeyStore(
            settings.home / "keys", passphrase_for(settings)
        )
        self.clock = clock
        self._lock = threading.Lock()
        self._records: list[KeyRecord] = []
        self._pseudonym: KeyRecord | None = None
        self._version = -1.0
        self._checked = 0.0
        self._reload()

    # Loading ----------------------------------------------------------------------
    def _reload(self) -> None:
        version = self.store.version()
        loaded = self.store.load_all()
        records = [r for r in loaded if r.purpose != PSEUDONYM_PURPOSE]
        secrets = sorted(
            (r for r in loaded if r.purpose == PSEUDONYM_PURPOSE),
            key=lambda r: (r.created_at, r.kid),
        )
        with self._lock:
            self._records = records
            self._pseudonym = secrets[0] if secrets else None
            self._version = version
            self._checked = time.monotonic()

    def _maybe_reload(self, force: bool = False) -> None:
        # Checking is a stat of a few small files; loading (decrypting) only happens when
        # the folder changed, so an unknown kid from an attacker costs no decryption.
        now = time.monotonic()
        if not force and now - self._checked < _REFRESH_SECONDS:
            return
        self._checked = now
        if self.store.version() != self._version:
            self._reload()

    def refresh(self) -> None:
        """Reload now if the key folder changed (instead of within a second)."""
        self._maybe_reload(force=True)

    def ensure_all(self) -> None:
        """Create a key for every purpose that has none (``xinyi init``)."""
        for purpose in PURPOSES:
            if self._active(purpose) is None:
                self._create(purpose)
        if self._pseudonym is None:
            self._create(PSEUDONYM_PURPOSE)

    def pseudonym_key(self, label: str) -> bytes:
        """32 bytes for keyed hashes of one kind of identifier (``label``), derived with
        HKDF-SHA256 from the store's pseudonym secret (created by ``xinyi init``, or
        here on first use); the same for every worker and for ever."""
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF

        self._maybe_reload()
        if self._pseudonym is None:
            self._create(PSEUDONYM_PURPOSE)
        assert self._pseudonym is not None
        seed = self._pseudonym.private.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        info = b"xinyi pseudonym " + label.encode("utf-8")
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(seed)

    def _create(self, purpose: str) -> KeyRecord:
        private = Ed25519PrivateKey.generate()
        record = KeyRecord(
            kid=thumbprint(public_jwk(private.public_key())),
            purpose=purpose,
            created_at=int(self.clock()),
            retired_at=None,
            private=private,
        )
        self.store.save(record)
        self._reload()
        log.info("key_created", purpose=purpose, kid=record.kid)
        return record

    # Rotation ---------------------------------------------------------------------
    def rotate(self, purpose: str) -> KeyRecord:
        """A new signing key for ``purpose``; the old one is retired but stays published
        (see the module invariants)."""
        if purpose not in PURPOSES:
            raise UnknownPurpose(f"purpose must be one of {list(PURPOSES)}")
        # Key files of earlier versions (PBKDF2) move to the memory-hard form first.
        migrated = self.store.migrate_legacy()
        if migrated:
            log.info("keys_reencrypted", files=migrated, kdf="scrypt")
        old = self._active(purpose)
        new = self._create(purpose)
        if old is not None:
            self.store.retire(purpose, old.kid, int(self.clock()))
            self._reload()
        log.info("key_rotated", purpose=purpose, old=old.kid if old else None, new=new.kid)
        return new

    def change_passphrase(self, new_passphrase: bytes) -> int:
        """Re-encrypt every key file under ``new_passphrase`` (scrypt); returns how many.
        The processes that hold the old passphrase keep their keys in memory; restart
        them with the new one."""
        count = self.store.reencrypt(new_passphrase)
        self._reload()
        log.info("key_passphrase_changed", files=count, kdf="scrypt")
        return count

    # Lookups ----------------------------------------------------------------------
    def _active(self, purpose: str) -> KeyRecord | None:
        live = [r for r in self._records if r.purpose == purpose and r.retired_at is None]
        return max(live, key=lambda r: (r.created_at, r.kid)) if live else None

    def _published(self, record: KeyRecord) -> bool:
        if record.retired_at is None:
            return True
        window = publish_seconds(self.settings, record.purpose)
        return window is None or self.clock() < record.retired_at + window

    def signing_key(self, purpose: str) -> KeyRecord:
        self._maybe_reload()
        record = self._active(purpose)
        if record is None:
            raise ConfigError(
                f"no signing key for {purpose!r}: run `xinyi init`", code="key_missing"
            )
        return record

    def public_key(self, kid: str, purpose: str | None = None) -> Ed25519PublicKey | None:
        """The published key ``kid`` (of ``purpose`` when given), or None."""
        self._maybe_reload()
        found = self._find(kid, purpose)
        if found is None:
            self._maybe_reload(force=True)
            found = self._find(kid, purpose)
        return found.private.public_key() if found is not None else None

    def _find(self, kid: str, purpose: str | None) -> KeyRecord | None:
        for r in self._records:
            if r.kid == kid and (purpose is None or r.purpose == purpose):
                return r if self._published(r) else None
        return None

    def records(self) -> list[KeyRecord]:
        self._maybe_reload()
        return list(self._records)

    # Use --------------------------------------------------------------------------
    def sign_jwt(
        self, purpose: str, claims: Mapping[str, Any], headers: Mapping[str, Any] | None = None
    ) -> str:
        record = self.signing_key(purpose)
        return jwt.encode(
            dict(claims),
            record.private,
            algorithm="EdDSA",
            headers={**(headers or {}), "kid": record.kid},
        )

    def jwks(self) -> dict[str, list[dict[str, Any]]]:
        """Every published public key, with its purpose and lifetime."""
        self._maybe_reload()
        keys = []
        for r in sorted(self._records, key=lambda r: (r.purpose, r.created_at)):
            if not self._published(r):
                continue
            jwk: dict[str, Any] = {
                **public_jwk(r.private.public_key()),
                "kid": r.kid,
                "alg": "EdDSA",
                "use": "sig",
                "xinyi_purpose": r.purpose,
                "xinyi_created_at": r.created_at,
            }
            if r.retired_at is not None:
                jwk["xinyi_retired_at"] = r.retired_at
            keys.append(jwk)
        return {"keys": keys}

    def add_transition(self, statement: str) -> None:
        """Keep a signed checkpoint-key transition (served to witnesses)."""
        self.store.add_transition(statement)

    def transitions(self) -> list[str]:
        return self.store.transitions()

    def checkpoint_signer(self) -> CheckpointSigner:
        return CheckpointSigner(self, self.settings.config.audit.origin)


class CheckpointSigner:
    """Signs audit checkpoints with the current *checkpoints* key (C2SP signed note);
    ``verifier_keys`` lists every checkpoint key ever used, newest first."""

    def __init__(self, ring: KeyRing, name: str) -> None:
        self._ring = ring
        self.name = name

    def sign(self, message: bytes) -> bytes:
        return self._ring.signing_key("checkpoints").private.sign(message)

    def public_key_bytes(self) -> bytes:
        # Checked afresh (a stat of the key folder): a checkpoint signed after
        # `xinyi audit rotate-log-key` released the log lock carries the new key, as
        # the transition statement says (see cli.audit.rotate_log_key).
        self._ring.refresh()
        return raw_public(self._ring.signing_key("checkpoints").private.public_key())

    def verifier_keys(self) -> list[bytes]:
        records = [r for r in self._ring.records() if r.purpose == "checkpoints"]
        records.sort(key=lambda r: (r.retired_at is None, r.created_at), reverse=True)
        return [raw_public(r.private.public_key()) for r in records]
