"""Signing keys: Ed25519 per purpose, encrypted PKCS#8 at rest, rotation with overlap,
the JWKS. ``KeyRing`` is what the rest of the system holds."""

from keys.ring import PURPOSES, CheckpointSigner, KeyRing

__all__ = ["PURPOSES", "CheckpointSigner", "KeyRing"]
