"""The governance settings' shapes: `[groups.NAME]`, `[prices."MODEL"]`, `[models."MODEL"]`, `[retries]`.

They are plain pydantic models with no dependency on the rest of the package, so `config.Settings` can
hold them and the admin API and CLI can validate the same shapes they accept.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

BudgetPeriod = Literal["day", "month"]
#: At most this many model patterns per group, each at most `MAX_PATTERN_CHARS` long: every listing and
#: every turn of a member matches model ids against them.
MAX_MODEL_PATTERNS = 100
MAX_PATTERN_CHARS = 200
ModelPattern = Annotated[str, Field(min_length=1, max_length=MAX_PATTERN_CHARS)]


class Limits(BaseModel):
    """Budgets and rate limits of one user or one group; `None` means no limit of that kind."""

    model_config = ConfigDict(extra="forbid")

    budget_usd: float | None = Field(default=None, ge=0)
    budget_tokens: int | None = Field(default=None, ge=0)
    budget_period: BudgetPeriod = "month"
    requests_per_minute: int | None = Field(default=None, ge=1)
    tokens_per_minute: int | None = Field(default=None, ge=1)


class GroupPolicy(Limits):
    """`[groups.NAME]`: which models the group's members may use, and the group's limits.

    `models` holds glob patterns over model ids (`"local/*"`, `"bedrock/amazon.nova-*"`); absent means
    every model. A user in several groups may use the union of their models, and every group's limits
    apply to them.
    """

    models: list[ModelPattern] | None = Field(default=None, max_length=MAX_MODEL_PATTERNS)


class ModelPrice(BaseModel):
    """`[prices."MODEL_ID"]`: US dollars per million prompt (input) and completion (output) tokens."""

    model_config = ConfigDict(extra="forbid")

    input_per_million: float = Field(ge=0)
    output_per_million: float = Field(ge=0)


class ModelPolicy(BaseModel):
    """`[models."MODEL_ID"]`: per-model settings; `fallbacks` are tried in order when this model fails
    before its first token (throttled, unavailable, failing)."""

    model_config = ConfigDict(extra="forbid")

    fallbacks: list[str] = Field(default_factory=list)


class RetrySettings(BaseModel):
    """`[retries]`: retries of a model that fails before its first token, before its fallbacks are tried."""

    model_config = ConfigDict(extra="forbid")

    attempts: int = Field(default=2, ge=0, le=10)
    deadline_seconds: float = Field(default=20.0, gt=0)
    backoff_seconds: float = Field(default=0.5, ge=0)
