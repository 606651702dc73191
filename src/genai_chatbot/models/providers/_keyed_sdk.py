"""The base of providers built on a vendor SDK and enabled by one key (Cohere, AI21).

What they share: the key (and an optional base URL) read from the keys secret at every call, one SDK
client per key and URL (`ClientCache`, built on a worker thread, the old one closed after its last call
when the key rotates), and `doctor` rows that say a key's problem once instead of once per model. A
subclass names its key and builds and closes its SDK's client; it keeps its own catalogue and errors.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from functools import partial
from typing import Any, ClassVar

from genai_chatbot.models.errors import ModelError, ProviderUnavailableError
from genai_chatbot.models.provider import Provider
from genai_chatbot.models.providers._catalog import key_diagnosis
from genai_chatbot.models.providers._clients import ClientCache
from genai_chatbot.models.providers._http_errors import ErrorContext
from genai_chatbot.models.providers._key_checks import failed_check
from genai_chatbot.models.types import Diagnosis
from genai_chatbot.secrets import ProviderKeys


class KeyedSDKProvider(Provider):
    """A provider whose SDK client is made from `api_key_name` (and `base_url_key`) in the keys secret."""

    #: How messages name the vendor, e.g. "Cohere".
    label: ClassVar[str]
    #: The key that turns the provider on, e.g. `COHERE_API_KEY`.
    api_key_name: ClassVar[str]
    #: The key that points the SDK at another host (a proxy, a gateway), e.g. `COHERE_BASE_URL`.
    base_url_key: ClassVar[str]
    #: Where the vendor's API is when no base URL is configured (named in errors).
    default_base_url: ClassVar[str]
    #: What to check when the API says a model does not exist.
    not_found_hint: ClassVar[str] = "check the model name"

    def __init__(self, keys: ProviderKeys, timeout_seconds: float = 60.0, base_url: str | None = None) -> None:
        """`base_url` overrides the base URL key of the keys secret."""
        self._keys = keys
        self._timeout = timeout_seconds
        self._base_url = base_url
        self._clients: ClientCache[Any] = ClientCache(self._close_client)

    @abc.abstractmethod
    def _build_client(self, api_key: str, base_url: str | None) -> Any:
        """The SDK client for this key and base URL (None: the vendor's own); runs on a worker thread."""

    @abc.abstractmethod
    async def _close_client(self, client: Any) -> None:
        """Close what `_build_client` made."""

    @abc.abstractmethod
    def _sdk_error(self, exc: Exception, errors: ErrorContext) -> ModelError:
        """Our error for an exception of the SDK itself (httpx's own are translated already)."""

    def _errors(self, base_url: str | None) -> ErrorContext:
        """How errors name the API at `base_url` and what they tell a person to do."""
        return ErrorContext(
            self.label,
            base_url or self.default_base_url,
            self.api_key_name,
            not_found_hint=self.not_found_hint,
            unreachable_fix=f"check {self.base_url_key} or the network.",
        )

    def _translate(self, exc: Exception, base_url: str | None) -> ModelError:
        """Our error for whatever the SDK (or httpx under it) raised; never includes the key."""
        if isinstance(exc, ModelError):
            return exc
        errors = self._errors(base_url)
        return errors.httpx_failure(exc, self._timeout) or self._sdk_error(exc, errors)

    def _check_failure(self, exc: Exception, base_url: str | None, seconds: float) -> tuple[str, bool] | None:
        """What a failed key check means (see `failed_check`), a refused key worded by `_translate`."""
        return failed_check(exc, self._errors(base_url), seconds, partial(self._translate, exc, base_url))

    async def _credentials(self) -> tuple[str | None, str | None]:
        """The current key (None: not configured) and base URL (None: the vendor's own)."""
        snapshot = await self._keys.current()
        return snapshot.get(self.api_key_name), self._base_url or snapshot.get(self.base_url_key)

    def _lease(self, api_key: str, base_url: str | None) -> AbstractAsyncContextManager[Any]:
        """The SDK client of this key and URL (built when they change), held while the block runs."""
        return self._clients.lease(self.name, (api_key, base_url), lambda: self._build_client(api_key, base_url))

    @asynccontextmanager
    async def _client(self) -> AsyncIterator[tuple[Any, str | None]]:
        """The SDK client of the current key and the base URL it uses; unavailable without the key."""
        api_key, base_url = await self._credentials()
        if api_key is None:
            raise ProviderUnavailableError(
                f"{self.label} is unavailable: {self.api_key_name} is not in the keys secret; add it."
            )
        async with self._lease(api_key, base_url) as client:
            yield client, base_url

    async def diagnose(self) -> list[Diagnosis]:
        """One row for the provider and the key's problem said once (not once per model)."""
        models = await self.list_models()
        return key_diagnosis(self.name, models) if models else await super().diagnose()

    async def aclose(self) -> None:
        await self._clients.aclose()
