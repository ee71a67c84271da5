"""The identity key: in the key store, stable, never a published signing key."""

from __future__ import annotations

from common.settings import Settings
from keys import KeyRing
from keys.identity import PURPOSE, identity_key, identity_key_for


def test_the_identity_key_is_made_once_kept_encrypted_and_never_published(
    settings: Settings,
) -> None:
    ring = KeyRing(settings)
    ring.ensure_all()
    first = identity_key(ring.store)
    assert len(first) == 32
    assert identity_key_for(settings) == first  # another process reads the same key
    pem = next((settings.home / "keys" / PURPOSE).glob("*.pem")).read_bytes()
    assert b"ENCRYPTED" in pem
    ring.refresh()
    assert all(k["xinyi_purpose"] != PURPOSE for k in ring.jwks()["keys"])
    assert all(r.purpose != PURPOSE for r in ring.records())
