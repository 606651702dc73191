"""Bearer JWTs of an OpenID Connect provider (Amazon Cognito, Okta, Entra ID, Keycloak) turned into principals.

PyJWT checks the signature, `exp`, `nbf` and `iss`; this module adds what PyJWT cannot know: which
algorithms are acceptable (never `none`, never the symmetric HS* family, whose "secret" an attacker could set
to our public key), which key signed the token (`ProviderKeys`), and what counts as the right audience:
`aud` equal to (or containing) `oidc.audience`, or, for Amazon Cognito access tokens, which carry no `aud`,
`token_use: access` with `client_id` equal to it.

A verified token is cached by its SHA-256 until it expires (at most `TOKEN_CACHE_SECONDS`), so steady-state
requests do no cryptography and no I/O. The user id is `sub`; the role is the highest of `admin`, `manager`,
`user` found in `oidc.role_claim` (default `user`).
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

import jwt
from jwt.exceptions import (
    ExpiredSignatureError,
    ImmatureSignatureError,
    InvalidIssuedAtError,
    InvalidIssuerError,
    InvalidSignatureError,
    InvalidTokenError,
    MissingRequiredClaimError,
)

from genai_chatbot.auth.oidc_keys import ProviderKeys
from genai_chatbot.auth.principal import AuthenticationError, Principal, role_from_groups
from genai_chatbot.config import ConfigError, OIDCSettings

#: Clock skew tolerated between us and the provider for `exp`, `nbf` and `iat` (seconds).
LEEWAY_SECONDS = 30
#: A verified token is trusted again without verification for at most this long (seconds).
TOKEN_CACHE_SECONDS = 60.0
TOKEN_CACHE_SIZE = 10_000
#: Asymmetric algorithms PyJWT verifies; anything else in `oidc.algorithms` is a configuration error.
SUPPORTED_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES256K", "ES384", "ES512", "EdDSA"}
)


def validate_oidc_settings(settings: OIDCSettings) -> None:
    """Refuse settings that cannot verify a token, with the fix: call it when `auth = "oidc"` is chosen."""
    missing = [name for name in ("issuer", "audience") if not getattr(settings, name)]
    if missing:
        names = " and ".join(f"oidc.{name}" for name in missing)
        raise ConfigError(
            f'auth = "oidc" needs {names}: set oidc.issuer to the issuer URL your provider puts in tokens'
            " (Cognito: https://cognito-idp.<region>.amazonaws.com/<pool id>) and oidc.audience to the app"
            " client id (or GENAI_CHATBOT_OIDC__ISSUER / GENAI_CHATBOT_OIDC__AUDIENCE)."
        )
    assert settings.issuer is not None
    if not settings.issuer.startswith(("https://", "http://127.0.0.1", "http://localhost")):
        raise ConfigError(
            f"oidc.issuer {settings.issuer!r} is not an https:// URL; tokens and keys must come over TLS."
        )
    refused = [a for a in settings.algorithms if a not in SUPPORTED_ALGORITHMS]
    if refused or not settings.algorithms:
        raise ConfigError(
            "oidc.algorithms may list only asymmetric signature algorithms"
            f" ({', '.join(sorted(SUPPORTED_ALGORITHMS))});"
            f" remove {', '.join(repr(a) for a in refused) or 'nothing'} (and list at least one)."
            " 'none' and HS* are never accepted: anyone holding the public key could sign with them."
        )


def _claim(claims: dict[str, Any], name: str) -> Any:
    """A claim by name; a dotted name that is not itself a claim walks nested objects (`realm_access.roles`)."""
    if name in claims:
        return claims[name]
    value: Any = claims
    for part in name.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _strings(value: Any) -> tuple[str, ...]:
    """A claim holding a list of names, or one name, as a tuple of names."""
    if isinstance(value, str):
        return (value,) if value else ()
    if isinstance(value, list):
        return tuple(item for item in value if isinstance(item, str) and item)
    return ()


class OIDCAuthenticator:
    """An `Authenticator` for bearer JWTs of one OpenID Connect issuer. Create and use it on one event loop."""

    def __init__(self, settings: OIDCSettings) -> None:
        validate_oidc_settings(settings)
        assert settings.issuer is not None and settings.audience is not None
        self.settings = settings
        self.issuer: str = settings.issuer
        self.audience: str = settings.audience
        self.algorithms = frozenset(settings.algorithms)
        self.keys = ProviderKeys(settings.issuer, settings.jwks_url)
        self._verified: dict[bytes, tuple[Principal, float]] = {}

    async def aclose(self) -> None:
        await self.keys.aclose()

    async def authenticate(self, token: str) -> Principal:
        """The principal a valid token proves; `AuthenticationError` saying why otherwise (never with the token)."""
        digest = hashlib.sha256(token.encode()).digest()
        cached = self._verified.get(digest)
        now = time.time()
        if cached is not None:
            if now < cached[1]:
                return cached[0]
            del self._verified[digest]
        claims = await self._verify(token)
        principal = self._principal(claims)
        self._remember(digest, principal, min(float(claims["exp"]), now + TOKEN_CACHE_SECONDS))
        return principal

    async def _verify(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except InvalidTokenError:  # not three base64url parts, a header that is not JSON, a kid not a string
            raise AuthenticationError(
                "The bearer token is not a well-formed JWT; sign in through the identity provider and send its token."
            ) from None
        algorithm = header.get("alg")
        if not isinstance(algorithm, str) or algorithm not in self.algorithms:
            raise AuthenticationError(
                f"The token is signed with {str(algorithm)[:20]!r}, which this server does not accept"
                f" (accepted: {', '.join(sorted(self.algorithms))}); use a token issued by {self.issuer}."
            )
        kid = header.get("kid")
        key = await self.keys.key(kid if isinstance(kid, str) else None, algorithm)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=[algorithm],
                issuer=self.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iss", "sub"], "verify_aud": False},
            )
        except ExpiredSignatureError:
            raise AuthenticationError("The token has expired; sign in again.") from None
        except (ImmatureSignatureError, InvalidIssuedAtError):
            raise AuthenticationError(
                "The token is not valid yet (its nbf or iat is in the future); check this server's clock."
            ) from None
        except InvalidIssuerError:
            raise AuthenticationError(
                f"The token was not issued by {self.issuer} (oidc.issuer); sign in through that provider."
            ) from None
        except MissingRequiredClaimError as exc:
            raise AuthenticationError(
                f"The token has no {exc.claim!r} claim; send an ID or access token of {self.issuer}."
            ) from None
        except InvalidSignatureError:
            raise AuthenticationError(
                f"The token's signature does not verify with the keys of {self.issuer}; sign in again."
            ) from None
        except InvalidTokenError as exc:
            raise AuthenticationError(f"The token is invalid ({type(exc).__name__}); sign in again.") from None
        self._check_audience(claims)
        if not isinstance(claims["sub"], str) or not claims["sub"]:
            raise AuthenticationError("The token's 'sub' claim is empty; send a token that names its user.")
        return claims

    def _check_audience(self, claims: dict[str, Any]) -> None:
        audience = claims.get("aud")
        if audience is not None:
            accepted = audience == self.audience or (isinstance(audience, list) and self.audience in audience)
        else:
            # Amazon Cognito access tokens name their app client in client_id instead of aud.
            accepted = claims.get("token_use") == "access" and claims.get("client_id") == self.audience
        if not accepted:
            raise AuthenticationError(
                f"The token is meant for another application (its audience is not {self.audience!r},"
                " oidc.audience); sign in through this chatbot's app client."
            )

    def _principal(self, claims: dict[str, Any]) -> Principal:
        role_values = _strings(_claim(claims, self.settings.role_claim))
        groups_claim = self.settings.groups_claim or self.settings.role_claim
        groups = role_values if groups_claim == self.settings.role_claim else _strings(_claim(claims, groups_claim))
        return Principal(user_id=claims["sub"], role=role_from_groups(role_values), groups=groups, method="oidc")

    def _remember(self, digest: bytes, principal: Principal, until: float) -> None:
        if len(self._verified) >= TOKEN_CACHE_SIZE:
            now = time.time()
            for stale in [d for d, (_, expiry) in self._verified.items() if expiry <= now]:
                del self._verified[stale]
            while len(self._verified) >= TOKEN_CACHE_SIZE:  # still full of live tokens: drop the oldest
                del self._verified[next(iter(self._verified))]
        self._verified[digest] = (principal, until)
