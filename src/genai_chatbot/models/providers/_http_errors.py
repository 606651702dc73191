"""The one translation of an HTTP provider's failure into `models.errors`, worded the same for every provider.

Every provider that talks HTTP (ours over aiohttp, or an SDK over httpx) describes who answered in an
`ErrorContext` and hands it the status, the detail and the `Retry-After` it got; `ErrorContext` words the
error. Messages name the key to fix, never its value: the context scrubs the key (and anything shaped like
an OpenAI key) out of every detail a provider echoes back.

    status            error                       why
    429               RateLimitedError            throttled; `retry_after` from the response
    401, 403, 498     ProviderUnavailableError    the key was refused (498: Cohere's "invalid token")
    404               ProviderUnavailableError    no such model or endpoint for this key
    400, 413, 422     InvalidRequestError         the request cannot be served as asked
    anything else     ProviderError               the provider failed
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from genai_chatbot.models.errors import (
    InvalidRequestError,
    ModelError,
    ProviderError,
    ProviderUnavailableError,
    RateLimitedError,
)
from genai_chatbot.secrets import mask_url_credentials
from genai_chatbot.wording import clause

_SECRET_LIKE = re.compile(r"sk-[A-Za-z0-9_\-*]{6,}")
_KEY_REFUSED = (401, 403, 498)


def key_refused(status: int | None) -> bool:
    """Whether an HTTP status says the key itself was refused (so every model of the key is unusable)."""
    return status in _KEY_REFUSED


@dataclass(frozen=True, slots=True)
class ErrorContext:
    """Who answered and what to tell a person about it; builds every HTTP-level error of one provider."""

    label: str
    base_url: str | None = None
    key_name: str | None = None
    #: The key value itself, only ever used to scrub it out of provider messages.
    secret: str | None = None
    not_found_hint: str = "check the model name"
    #: What to do when the server cannot be reached (ends the message, so it carries its own punctuation).
    unreachable_fix: str = "is the server running?"
    #: What to do when the server wants a key and none is configured.
    no_key_fix: str = "set api_key_name for it and add that key to the keys secret"

    def __repr__(self) -> str:
        # The key never shows, nor credentials written into the base URL (which the label may repeat).
        base = mask_url_credentials(self.base_url) if self.base_url else None
        return (
            f"ErrorContext(label={mask_url_credentials(self.label)!r}, base_url={base!r}, "
            f"key_name={self.key_name!r}, secret={'***' if self.secret else None!r})"
        )

    def scrub(self, text: str) -> str:
        """`text` without the key, nor anything that looks like an OpenAI key."""
        if self.secret:
            text = text.replace(self.secret, "***")
        return _SECRET_LIKE.sub("sk-***", text)

    def _where(self) -> str:
        return f"endpoint {mask_url_credentials(self.base_url)} " if self.base_url else ""

    def unreachable(self, cause: BaseException | str) -> ProviderUnavailableError:
        """The server could not be reached (refused, reset, DNS, TLS); `cause` says how."""
        detail = cause if isinstance(cause, str) else str(cause) or type(cause).__name__
        return ProviderUnavailableError(
            f"Cannot reach {self.label}: {self._where()}did not answer: {self.scrub(detail)}; {self.unreachable_fix}"
        )

    def timed_out(self, seconds: float | None = None) -> ProviderError:
        """The server took longer than `seconds` (the request timeout when not given)."""
        within = f"within {seconds:g} s" if seconds is not None else "in time"
        return ProviderError(
            f"{self.label}: {self._where()}did not answer {within}; retry, or raise request_timeout_seconds."
        )

    def status_error(self, status: int, detail: str | None, retry_after: float | None = None) -> ModelError:
        """Our error for an HTTP error answer, with the provider's message (scrubbed) and what to do."""
        said = clause(self.scrub(detail)) if detail else ""
        if status == 429:
            whom = "this key" if self.key_name else "requests"
            return RateLimitedError(
                f"{self.label} is rate limiting {whom}: {said or 'too many requests'}. "
                "Retry later, or raise the quota.",
                retry_after,
            )
        if key_refused(status):
            if self.key_name:
                return ProviderUnavailableError(
                    f"{self.label}: the key {self.key_name} was refused (HTTP {status}); put a valid key in the "
                    "keys secret."
                )
            return ProviderUnavailableError(f"{self.label} requires a key (HTTP {status}); {self.no_key_fix}.")
        if status == 404:
            return ProviderUnavailableError(
                f"{self.label}: the model or endpoint does not exist (HTTP 404): {said or 'not found'}; "
                f"{self.not_found_hint}."
            )
        if status in (400, 413, 422):
            return InvalidRequestError(f"{self.label} rejected the request: {said or f'HTTP {status}'}.")
        return ProviderError(f"{self.label} failed (HTTP {status}): {said or 'no details'}; try again later.")

    def httpx_failure(self, exc: BaseException, seconds: float) -> ModelError | None:
        """Our error for an httpx timeout or transport failure (the SDKs' HTTP client); None for anything else."""
        import httpx

        if isinstance(exc, httpx.TimeoutException):
            return self.timed_out(seconds)
        if isinstance(exc, httpx.TransportError):
            return self.unreachable(type(exc).__name__)
        return None


def body_message(body: object) -> str | None:
    """The human part of an error body: OpenAI's `{"error": {"message"}}`, FastAPI's `{"detail"}`, or text."""
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return str(inner["message"])
        if isinstance(inner, str):
            return inner
        for name in ("detail", "message"):
            if isinstance(body.get(name), str):
                return str(body[name])
    return body if isinstance(body, str) and body else None
