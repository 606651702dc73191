"""An OpenID Connect provider's discovery document and signing keys (JWKS), fetched asynchronously and cached.

Verifying a token must not cost a round trip to the identity provider, and an attacker must not be able to
make us hammer it. So:

- the discovery document and the JWKS are fetched once, with httpx on the event loop, and kept;
- a token whose `kid` is not in the cached JWKS triggers one refetch at once (the provider rotated its keys:
  the first token signed with the new key works without a restart), but after such a refetch, further
  unknown kids trigger none for `MISS_REFETCH_INTERVAL` seconds (a flood of made-up kids costs one request);
- the JWKS is also refreshed when older than `MAX_AGE`, so a key the provider withdrew stops verifying;
  when that refresh fails, the keys we have keep working and the failure is logged.

Concurrent requests share one fetch (a lock, and the cache is checked again after waiting for it).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import httpx
from jwt import PyJWK
from jwt.exceptions import PyJWKError

from genai_chatbot.auth.principal import AuthenticationError, AuthenticationUnavailable

logger = logging.getLogger(__name__)

#: After a refetch caused by an unknown `kid`, unknown kids cause no other refetch for this long (seconds).
MISS_REFETCH_INTERVAL = 30.0
#: A JWKS older than this (seconds) is fetched again before use.
MAX_AGE = 3600.0
#: A discovery document is kept this long (seconds); its endpoints practically never change.
DISCOVERY_MAX_AGE = 24 * 3600.0
#: After a failed fetch, requests within this many seconds get the same error without a new fetch, so an
#: outage of the provider costs it one request per interval, not one per request we receive.
FAILURE_BACKOFF = 5.0
FETCH_TIMEOUT = httpx.Timeout(10.0)


class IdentityProviderUnavailable(AuthenticationUnavailable):
    """The discovery document or the JWKS cannot be fetched or read: no token can be verified right now."""


def discovery_url(issuer: str) -> str:
    """Where an issuer publishes its OpenID Connect discovery document."""
    return issuer.rstrip("/") + "/.well-known/openid-configuration"


class ProviderKeys:
    """The discovery document and the signing keys of one issuer. Create and use it on one event loop."""

    def __init__(self, issuer: str, jwks_url: str | None = None, http: httpx.AsyncClient | None = None) -> None:
        self.issuer = issuer
        self._jwks_url = jwks_url
        self._http = http or httpx.AsyncClient(timeout=FETCH_TIMEOUT, follow_redirects=False)
        self._owns_http = http is None
        self._lock = asyncio.Lock()
        self._discovery: dict[str, Any] | None = None
        self._discovery_at = 0.0
        self._jwks: list[dict[str, Any]] | None = None
        self._jwks_at = 0.0
        self._last_miss_refetch = float("-inf")
        self._parsed: dict[tuple[str | None, str], PyJWK] = {}
        self._failures: dict[str, tuple[float, IdentityProviderUnavailable]] = {}

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    # Discovery ------------------------------------------------------------------------------------------

    async def discovery(self) -> dict[str, Any]:
        """The issuer's discovery document (cached); `IdentityProviderUnavailable` when it cannot be had."""
        if self._discovery is not None and time.monotonic() - self._discovery_at < DISCOVERY_MAX_AGE:
            return self._discovery
        async with self._lock:
            if self._discovery is None or time.monotonic() - self._discovery_at >= DISCOVERY_MAX_AGE:
                self._discovery = await self._fetch_discovery()
                self._discovery_at = time.monotonic()
            return self._discovery

    async def _fetch_discovery(self) -> dict[str, Any]:
        url = discovery_url(self.issuer)
        document = await self._get_json(url, "the discovery document", "check oidc.issuer")
        if document.get("issuer") != self.issuer:
            error = IdentityProviderUnavailable(
                f"The discovery document at {url} names the issuer {document.get('issuer')!r}, not {self.issuer!r};"
                " set oidc.issuer to exactly the issuer the provider's tokens carry in 'iss'."
            )
            self._failures[url] = (time.monotonic(), error)
            raise error
        return document

    async def _jwks_location(self) -> str:
        if self._jwks_url:
            return self._jwks_url
        # Called with the lock held: fetch directly rather than through `discovery()`, which takes it.
        if self._discovery is None:
            self._discovery = await self._fetch_discovery()
            self._discovery_at = time.monotonic()
        jwks_uri = self._discovery.get("jwks_uri")
        if not isinstance(jwks_uri, str) or not jwks_uri:
            raise IdentityProviderUnavailable(
                f"The discovery document of {self.issuer} has no jwks_uri; set oidc.jwks_url to the provider's JWKS."
            )
        return jwks_uri

    # Keys -----------------------------------------------------------------------------------------------

    async def key(self, kid: str | None, algorithm: str) -> Any:
        """The public key for a token's `kid` and `alg`, ready for PyJWT; `AuthenticationError` when none fits."""
        if self._jwks is None or time.monotonic() - self._jwks_at >= MAX_AGE:
            await self._refresh(reason="first use" if self._jwks is None else "age")
        found = self._find(kid, algorithm)
        if found is None and time.monotonic() - self._last_miss_refetch >= MISS_REFETCH_INTERVAL:
            await self._refresh(reason="miss", kid=kid, algorithm=algorithm)
            found = self._find(kid, algorithm)
        if found is None:
            named = f"key id {kid!r}" if kid is not None else "no key id (kid)"
            raise AuthenticationError(
                f"The token names {named}, which is not among the signing keys of {self.issuer}"
                " (for its algorithm); sign in again to get a token from the configured provider."
            )
        return found.key

    async def _refresh(self, reason: str, kid: str | None = None, algorithm: str = "") -> None:
        started = time.monotonic()
        async with self._lock:
            # Another request may have fetched while we waited: use its result instead of fetching again.
            if reason == "miss":
                if self._last_miss_refetch >= started or self._find(kid, algorithm) is not None:
                    return
                self._last_miss_refetch = time.monotonic()
            elif self._jwks is not None and time.monotonic() - self._jwks_at < MAX_AGE:
                return
            try:
                location = await self._jwks_location()
                document = await self._get_json(location, "the signing keys (JWKS)", "check oidc.jwks_url")
                keys = document.get("keys")
                if not isinstance(keys, list):
                    raise IdentityProviderUnavailable(
                        f"{location} is not a JWKS (no 'keys' list); set oidc.jwks_url to the provider's JWKS."
                    )
            except IdentityProviderUnavailable as exc:
                if self._jwks is None:
                    raise
                logger.warning("Keeping the cached signing keys of %s: %s", self.issuer, exc)
                self._jwks_at = time.monotonic()  # try again after MAX_AGE, not on every request
                return
            self._jwks = [k for k in keys if isinstance(k, dict)]
            self._jwks_at = time.monotonic()
            self._parsed.clear()
            logger.info("Fetched %d signing keys of %s (%s)", len(self._jwks), self.issuer, reason)

    def _find(self, kid: str | None, algorithm: str) -> PyJWK | None:
        if (kid, algorithm) in self._parsed:
            return self._parsed[(kid, algorithm)]
        candidates = [
            jwk
            for jwk in self._jwks or []
            if jwk.get("use", "sig") == "sig"
            and jwk.get("alg", algorithm) == algorithm
            and (kid is None or jwk.get("kid") == kid)
        ]
        # A token without a kid is accepted only when the provider publishes a single usable key.
        if not candidates or (kid is None and len(candidates) > 1):
            return None
        try:
            parsed = PyJWK(candidates[0], algorithm)
        except (PyJWKError, ValueError, TypeError):
            return None  # e.g. an EC key for an RSA algorithm: it cannot have signed this token
        self._parsed[(kid, algorithm)] = parsed
        return parsed

    async def _get_json(self, url: str, what: str, fix: str) -> dict[str, Any]:
        failed = self._failures.get(url)
        if failed is not None and time.monotonic() - failed[0] < FAILURE_BACKOFF:
            raise failed[1]
        try:
            document = await self._fetch_json(url, what, fix)
        except IdentityProviderUnavailable as exc:
            self._failures[url] = (time.monotonic(), exc)
            raise
        self._failures.pop(url, None)
        return document

    async def _fetch_json(self, url: str, what: str, fix: str) -> dict[str, Any]:
        try:
            response = await self._http.get(url, headers={"accept": "application/json"})
        except httpx.HTTPError as exc:
            raise IdentityProviderUnavailable(
                f"Cannot fetch {what} of the identity provider from {url} ({type(exc).__name__}: {exc});"
                f" {fix} and that this server can reach the provider."
            ) from None
        if response.status_code != 200:
            raise IdentityProviderUnavailable(
                f"Fetching {what} from {url} answered HTTP {response.status_code}; {fix}."
            )
        try:
            document = response.json()
        except ValueError:
            document = None
        if not isinstance(document, dict):
            raise IdentityProviderUnavailable(f"{url} did not answer a JSON object for {what}; {fix}.")
        return document
