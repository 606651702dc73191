"""Why the governor refused a turn: the model is not allowed, a budget is spent, a rate limit is hit.

They say what happened and what to do; `api/errors.py` answers them 403 `model_not_allowed` and 429
`budget_exceeded` / `rate_limited` with `Retry-After`, and the terminal prints the message.
"""

from __future__ import annotations


class GovernanceError(Exception):
    """A turn or request the governor refused; nothing was generated or stored."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ModelNotAllowedError(GovernanceError):
    """The caller's groups do not allow this model (403 `model_not_allowed`)."""

    def __init__(self, model_id: str) -> None:
        super().__init__(
            f"Your groups do not allow model {model_id!r}. GET /v1/models lists the models you may use; "
            "ask an admin for access."
        )
        self.model_id = model_id


class LimitReachedError(GovernanceError):
    """A budget or rate limit is reached until `reset_at` (epoch seconds): answered 429 with `Retry-After`."""

    code = "rate_limited"

    def __init__(self, message: str, *, limit: str, reset_at: float, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.limit = limit  # which limit, e.g. "group interns: budget_usd 5.0 per month"
        self.reset_at = reset_at
        self.retry_after_seconds = max(1, retry_after_seconds)


class BudgetExceededError(LimitReachedError):
    """A user's or group's budget for the period is spent (429 `budget_exceeded`)."""

    code = "budget_exceeded"


class RateLimitedError(LimitReachedError):
    """Too many requests or tokens this minute (429 `rate_limited`)."""

    code = "rate_limited"
