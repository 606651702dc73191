"""The one error hierarchy of the model interface.

    ModelError
    ├── ModelNotFoundError        the id names no model we know          -> HTTP 404
    ├── InvalidRequestError       the request cannot be served as asked  -> HTTP 400
    ├── ProviderUnavailableError  missing key, no access, endpoint down  -> HTTP 503
    ├── RateLimitedError          the provider throttled us              -> HTTP 429
    └── ProviderError             the provider failed while answering    -> HTTP 502

Each provider translates its SDK's exceptions into these inside its own module, so nothing above the
model interface ever sees a vendor exception. Messages say what happened and what to do, and never
contain a key.
"""

from __future__ import annotations

from collections.abc import Sequence


class ModelError(Exception):
    """Base of every error raised through the model interface."""

    status_code = 500
    error_type = "model_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ModelNotFoundError(ModelError):
    """The model id names no model we know; `available` lists the ids that do exist."""

    status_code = 404
    error_type = "model_not_found"

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

    status_code = 400
    error_type = "invalid_request_error"

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class ProviderUnavailableError(ModelError):
    """The model exists but cannot be used now: no key, access not granted, endpoint down, model missing."""

    status_code = 503
    error_type = "provider_unavailable"


class RateLimitedError(ModelError):
    """The provider throttled the request; `retry_after` is in seconds when the provider said."""

    status_code = 429
    error_type = "rate_limited"

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ProviderError(ModelError):
    """The provider failed while answering."""

    status_code = 502
    error_type = "provider_error"
