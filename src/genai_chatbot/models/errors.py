"""The one error hierarchy of the model interface.

    ModelError
    ├── ModelNotFoundError        the id names no model we know
    ├── InvalidRequestError       the request cannot be served as asked
    ├── ProviderUnavailableError  missing key, no access, endpoint down
    ├── RateLimitedError          the provider throttled us
    └── ProviderError             the provider failed while answering

Each provider translates its SDK's exceptions into these inside its own module, so nothing above the
model interface ever sees a vendor exception. Messages say what happened and what to do, and never
contain a key. What each error is over HTTP (status, type) is the API's business: `api/errors.py`.
"""

from __future__ import annotations

from collections.abc import Sequence


class ModelError(Exception):
    """Base of every error raised through the model interface."""

    #: What went wrong, in one word that metrics, traces and usage records use (not an HTTP status).
    kind = "model_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ModelNotFoundError(ModelError):
    """The model id names no model we know; `available` lists the ids that do exist."""

    kind = "model_not_found"

    def __init__(self, model_id: str, available: Sequence[str]) -> None:
        known = ", ".join(available) if available else "none"
        super().__init__(
            f"Model {model_id!r} does not exist. Available models: {known}. "
            "Run 'genai-chatbot models' to see every model and why some are unavailable."
        )
        self.model_id = model_id
        self.available = list(available)


class InvalidRequestError(ModelError):
    """The request is well-formed JSON but cannot be served as asked (e.g. prompt longer than the context)."""

    kind = "invalid_request"

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class ProviderUnavailableError(ModelError):
    """The model exists but cannot be used now: no key, access not granted, endpoint down, model missing."""

    kind = "provider_unavailable"


class RateLimitedError(ModelError):
    """The provider throttled the request; `retry_after` is in seconds when the provider said."""

    kind = "rate_limited"

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ProviderError(ModelError):
    """The provider failed while answering."""

    kind = "provider_error"
