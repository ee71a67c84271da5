"""The bank's folder: its identity at the gateway and its keys, encrypted at rest.

Layout (folder 0700, files 0600)::

    bank.json            institution id, gateway URL, registered context ids (no secret)
    client_key.pem       Ed25519 private key of private_key_jwt, encrypted PKCS#8
    client_jwk.json      its public JWK: give it to the operator (xinyi admin add-institution)
    ckks_secret.vault    the CKKS secret context, sealed (bank.vault: scrypt + AES-GCM)
    ckks_public.bin      the CKKS public context (public key and parameters only)

Invariants: the private key and the CKKS secret context never leave this folder and are
never written unencrypted; both are encrypted under the passphrase of
``XINYI_BANK_PASSPHRASE``; only ``ckks_public.bin`` and ``client_jwk.json`` are meant to
be shared.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bank import vault
from bank.errors import BankError
from federated import he

PASSPHRASE_ENV = "XINYI_BANK_PASSPHRASE"  # noqa: S105 (the variable's name, not a secret)
HOME_ENV = "XINYI_BANK_HOME"


def passphrase_from_env(env: dict[str, str] | None = None) -> str:
    value = (os.environ if env is None else env).get(PASSPHRASE_ENV, "")
    if not value:
        raise BankError(
            "wrong_passphrase", f"set {PASSPHRASE_ENV}: it encrypts the bank's keys at rest"
        )
    return value


def public_jwk(key: Ed25519PrivateKey) -> dict[str, Any]:
    """The RFC 8037 OKP JWK of the public half."""
    import base64

    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
    return {"kty": "OKP", "crv": "Ed25519", "x": x, "alg": "EdDSA", "use": "sig"}


@dataclass
class BankProfile:
    """An opened bank folder: identity, signing key and CKKS secret context."""

    home: Path
    institution_id: str
    gateway: str
    signing_key: Ed25519PrivateKey
    secret: he.SecretContext
    contexts: dict[str, str] = field(default_factory=dict)

    # Creating and opening ------------------------------------------------------------
    @classmethod
    def init(
        cls,
        home: Path,
        institution_id: str,
        gateway: str,
        passphrase: str,
        params: he.CKKSParams = he.DEFAULT_PARAMS,
    ) -> BankProfile:
        """Create the folder with fresh keys; refuses to overwrite an existing one."""
        home = Path(home)
        if (home / "bank.json").exists():
            raise BankError(
                "bank_exists", f"{home} already holds a bank; use another folder or remove it"
            )
        home.mkdir(parents=True, exist_ok=True, mode=0o700)
        home.chmod(0o700)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(passphrase.encode("utf-8")),
        )
        vault.write_private(home / "client_key.pem", pem)
        vault.write_private(
            home / "client_jwk.json", (json.dumps(public_jwk(key), indent=2) + "\n").encode()
        )
        secret = he.SecretContext.generate(params)
        vault.write_private(
            home / "ckks_secret.vault", vault.seal(secret.secret_bytes(), passphrase)
        )
        vault.write_private(home / "ckks_public.bin", secret.public_bytes())
        profile = cls(home, institution_id, gateway.rstrip("/"), key, secret)
        profile.save()
        return profile

    @classmethod
    def open(cls, home: Path, passphrase: str) -> BankProfile:
        home = Path(home)
        try:
            meta = json.loads((home / "bank.json").read_text(encoding="utf-8"))
        except FileNotFoundError as e:
            raise BankError("bank_not_initialized", f"{home} holds no bank") from e
        try:
            key = serialization.load_pem_private_key(
                (home / "client_key.pem").read_bytes(), passphrase.encode("utf-8")
            )
        except (ValueError, TypeError) as e:
            raise BankError(
                "wrong_passphrase", "the passphrase does not open client_key.pem"
            ) from e
        if not isinstance(key, Ed25519PrivateKey):
            raise BankError("bank_not_initialized", "client_key.pem is not an Ed25519 key")
        secret = he.SecretContext.from_secret_bytes(
            vault.unseal((home / "ckks_secret.vault").read_bytes(), passphrase)
        )
        return cls(
            home,
            str(meta["institution_id"]),
            str(meta["gateway"]),
            key,
            secret,
            dict(meta.get("contexts", {})),
        )

    def save(self) -> None:
        """Write bank.json (no secrets in it)."""
        meta = {
            "institution_id": self.institution_id,
            "gateway": self.gateway,
            "context_params": self.secret.params.as_dict(),
            "contexts": self.contexts,
            "saved_at": int(time.time()),
        }
        vault.write_private(
            self.home / "bank.json",
            (json.dumps(meta, indent=2, ensure_ascii=False) + "\n").encode(),
        )

    @property
    def jwk_path(self) -> Path:
        return self.home / "client_jwk.json"

    def context_id(self, gateway: str | None = None) -> str | None:
        """The id the gateway gave our public context, if registered there."""
        return self.contexts.get((gateway or self.gateway).rstrip("/"))

    def remember_context(self, context_id: str, gateway: str | None = None) -> None:
        self.contexts[(gateway or self.gateway).rstrip("/")] = context_id
        self.save()
