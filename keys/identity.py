"""The identity key: the secret the legal representative's id is hashed with
(``records.identity.legal_rep_id_hash``), kept in the key store like the signing keys.

Invariants:
- it rests in the key folder as an Ed25519 private key of purpose ``identity``
  (``keys/identity/<kid>.pem``): encrypted with the key passphrase, mode 0600, moved by
  ``xinyi keys change-passphrase`` with the others. It never signs and is never
  published (``KeyRing`` serves the signing purposes only);
- the HMAC key is HKDF-SHA256 of the private key's 32 raw bytes with a fixed label, so
  it is a key of its own, not comparable with anything the signing key makes;
- it is never rotated: every stored registration hash is a function of it (a rotation
  would need every registration file imported again);
- the first caller creates it (``xinyi init`` does, before workers start); when two
  processes raced to create one, the oldest (then smallest kid) wins everywhere.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from common.settings import Settings
from keys.jwk import public_jwk, thumbprint
from keys.ring import passphrase_for
from keys.store import FileKeyStore, KeyRecord, KeyStore

PURPOSE = "identity"
_LABEL = b"xinyi legal-representative id hash v1"


def _pick(records: list[KeyRecord]) -> KeyRecord | None:
    mine = [r for r in records if r.purpose == PURPOSE]
    return min(mine, key=lambda r: (r.created_at, r.kid)) if mine else None


def hmac_key_of(record: KeyRecord) -> bytes:
    raw = record.private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_LABEL).derive(raw)


def identity_key(store: KeyStore, clock: Callable[[], float] = time.time) -> bytes:
    """The 32-byte HMAC key for legal representatives' ids (created when missing)."""
    found = _pick(store.load_all())
    if found is None:
        private = Ed25519PrivateKey.generate()
        store.save(
            KeyRecord(
                kid=thumbprint(public_jwk(private.public_key())),
                purpose=PURPOSE,
                created_at=int(clock()),
                retired_at=None,
                private=private,
            )
        )
        found = _pick(store.load_all())
        assert found is not None  # just saved
    return hmac_key_of(found)


def identity_key_for(settings: Settings) -> bytes:
    """The identity key of the instance ``settings`` names (its key folder)."""
    return identity_key(FileKeyStore(settings.home / "keys", passphrase_for(settings)))


__all__ = ["PURPOSE", "hmac_key_of", "identity_key", "identity_key_for"]
