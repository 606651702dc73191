"""What an HTTP-based provider SDK's failure means for us, said the same way for every such provider.

Cohere's and AI21's SDKs (both on httpx) fail with an HTTP status and a detail, or with an httpx transport
error; each provider extracts those from its own exception types and lets these functions word the error.
Messages name the key to fix, never its value.
"""

from __future__ import annotations

from genai_chatbot.models.errors import (
    InvalidRequestError,
    ModelError,
    ProviderError,
    ProviderUnavailableError,
    RateLimitedError,
)
from genai_chatbot.wording import clause


def error_for_status(
    label: str, key_name: str, status: int, detail: str | None, retry_after: float | None = None
) -> ModelError:
    """Our error for an HTTP error answer from provider `label`, whose key is named `key_name`."""
    detail = clause(detail) if detail else detail
    if status == 429:
        return RateLimitedError(f"{label} is rate limiting this key: {detail or 'too many requests'}.", retry_after)
    if key_refused(status):
        return ProviderUnavailableError(
            f"{label} rejected {key_name} (HTTP {status}); put a valid key in the keys secret."
        )
    if status == 404:
        return ProviderUnavailableError(f"{label} does not offer this model to this key (HTTP 404): {detail}")
    if status in (400, 422):
        return InvalidRequestError(f"{label} refused the request: {detail or f'HTTP {status}'}")
    return ProviderError(f"{label} failed (HTTP {status}): {detail or 'no details'}; try again later.")


def error_for_transport(
    label: str, exc: Exception, timeout_seconds: float, base_url_key: str, url: str | None = None
) -> ModelError | None:
    """Our error for an httpx timeout or transport failure; None for any other exception.

    `url` (the base URL in use) is named when given, so a wrong `base_url_key` is seen at once.
    """
    import httpx

    if isinstance(exc, httpx.TimeoutException):
        return ProviderError(
            f"{label} did not answer within {timeout_seconds:g} s; try again or raise request_timeout_seconds."
        )
    if isinstance(exc, httpx.TransportError):
        where = f" at {url}" if url else ""
        return ProviderUnavailableError(
            f"Cannot reach {label}{where} ({type(exc).__name__}); check {base_url_key} or the network."
        )
    return None


def key_refused(status: int | None) -> bool:
    """Whether an HTTP status says the key itself was refused (so every model of the key is unusable)."""
    return status in (401, 403, 498)  # 498: Cohere's "invalid token"
