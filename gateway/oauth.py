"""OAuth 2.0 token endpoint: ``client_credentials`` with ``private_key_jwt`` (RFC 7523).

The institution signs a client assertion with the private key whose public JWK it
registered (Ed25519 or P-256); ``aud`` must be the token endpoint URL; every assertion's
``jti`` is accepted once (stored until it expires). Access tokens are short-lived EdDSA
JWTs signed by the gateway's *tokens* key (see ``gateway.auth``).
"""

from __future__ import annotations

import binascii
import math
import time
import warnings
from base64 import urlsafe_b64decode
from typing import Any

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import ClientMixin, InvalidClientError, grants
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from flask import Flask, Response
from joserfc import jwt as jose_jwt
from joserfc.errors import JoseError
from joserfc.jwk import Key

from common import json_input, jwt_rules
from common.errors import InvalidInput
from gateway.api.schemas import OAuthError, Token, TokenForm
from gateway.auth import issue_access_token
from gateway.contract import operation
from gateway.services import services

ASSERTION_ALGORITHMS = ["EdDSA", "Ed25519", "ES256"]
# RFC 9864 deprecates the JWS name "EdDSA" in favour of "Ed25519"; institutions written
# against CONTRACT.md sign with "EdDSA", and both names are accepted.
warnings.filterwarnings("ignore", message="EdDSA is deprecated via RFC 9864")


class InstitutionClient(ClientMixin):  # type: ignore[misc]
    """An institution as Authlib sees it: confidential, private_key_jwt only."""

    def __init__(self, client_id: str, jwk: dict[str, Any], status: str) -> None:
        self.client_id = client_id
        self.jwk = jwk
        self.status = status

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> None:
        return None

    def get_allowed_scope(self, scope: str) -> str:
        return ""

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return False

    def check_client_secret(self, client_secret: str) -> bool:
        return False

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == PrivateKeyJWTAuth.CLIENT_AUTH_METHOD and endpoint == "token"

    def check_response_type(self, response_type: str) -> bool:
        return False

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "client_credentials" and self.status == "active"


class PrivateKeyJWTAuth(JWTBearerClientAssertion):  # type: ignore[misc]
    CLIENT_AUTH_METHOD = "private_key_jwt"

    def get_audiences(self) -> list[str]:
        return [services().settings.token_endpoint]

    def resolve_client_public_key(self, client: InstitutionClient) -> dict[str, Any]:
        return client.jwk

    def extract_assertion(self, assertion: str) -> tuple[Any, dict[str, Any]]:
        # Authlib parses the payload before anything is verified, with a parser that
        # recurses per nesting level: bound the nesting first (a RecursionError was a
        # 500 for anyone).
        for segment in assertion.split(".")[:2]:
            try:
                raw = urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
            except (ValueError, binascii.Error):
                continue  # Authlib refuses it as not a JWT
            if json_input.nesting_depth(raw) > json_input.MAX_DEPTH:
                raise InvalidClientError(description="the client assertion is not a JWT")
        return super().extract_assertion(assertion)  # type: ignore[no-any-return]

    def process_assertion_claims(self, assertion: str, resolve_key: Key) -> Any:
        # Only asymmetric algorithms: an HMAC assertion "signed" with the public key
        # (algorithm confusion) or alg=none never verifies.
        try:
            token = jose_jwt.decode(assertion, resolve_key, algorithms=ASSERTION_ALGORITHMS)
        except (JoseError, ValueError) as e:
            raise InvalidClientError(description="the client assertion does not verify") from e
        try:
            # A grant, access token or event is never a client assertion.
            jwt_rules.require_client_assertion_typ(token.header)
            # int or float, never bool, finite and in range: a float ``exp`` once skipped
            # the lifetime cap and ``1e20`` overflowed the jti table (500).
            jwt_rules.check_numeric_dates(token.claims, required=("exp",))
        except InvalidInput as e:
            raise InvalidClientError(description=e.message) from e
        max_age = services().settings.config.tokens.client_assertion_max_seconds
        if token.claims["exp"] - time.time() > max_age:
            raise InvalidClientError(description=f"assertions may live at most {max_age} s")
        expected = self.get_audiences()[0]
        aud = token.claims.get("aud")
        if expected not in (aud if isinstance(aud, list) else [aud]):
            # Name the value to use: a gateway behind a proxy has a public URL the
            # institution may not have guessed (server.public_url).
            raise InvalidClientError(
                description=f"the assertion's aud must be the token endpoint {expected}"
            )
        self.verify_claims(token.claims)
        return token.claims

    def validate_jti(self, claims: dict[str, Any], jti: str) -> bool:
        now = int(time.time())
        # ``exp`` was checked (a number within the lifetime cap) before this is called.
        exp = math.ceil(claims.get("exp", now + 600))
        return services().registry.use_assertion(f"{claims['sub']}:{jti}", exp)


class ClientCredentials(grants.ClientCredentialsGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = [PrivateKeyJWTAuth.CLIENT_AUTH_METHOD]


def _query_client(client_id: str) -> InstitutionClient | None:
    found = services().registry.client(client_id)
    if found is None:
        return None
    return InstitutionClient(client_id, found.jwk, found.status)


def _generate_token(
    *,
    grant_type: str,
    client: InstitutionClient,
    user: Any = None,
    scope: Any = None,
    expires_in: Any = None,
    include_refresh_token: bool = False,
) -> dict[str, Any]:
    token, ttl = issue_access_token(client.client_id)
    return {"access_token": token, "token_type": "Bearer", "expires_in": ttl}


def init_app(app: Flask) -> None:
    server = AuthorizationServer(
        app, query_client=_query_client, save_token=lambda token, request: None
    )
    server.register_client_auth_method(
        PrivateKeyJWTAuth.CLIENT_AUTH_METHOD, PrivateKeyJWTAuth(validate_jti=True)
    )
    server.register_grant(ClientCredentials)
    server.register_token_generator("default", _generate_token)

    @app.post("/oauth/token")
    @operation(
        "Access token: client_credentials with private_key_jwt (RFC 7523); errors are "
        "OAuth's {error, error_description}",
        tag="auth",
        body=TokenForm,
        body_media=("application/x-www-form-urlencoded",),
        answer=Token,
        error=OAuthError,
    )
    def token() -> Response:
        resp: Response = server.create_token_response()
        return resp
