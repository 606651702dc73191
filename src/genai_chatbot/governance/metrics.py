"""Prometheus metrics: HTTP requests, model turns and their errors, time to first token, tokens, cost, and
turns in flight, by model. `GET /metrics` serves them (api/metrics_routes.py).

`MetricsGovernor` is a part of the governor: `admit` counts a turn in flight, `finish` counts how it ended
from its `Outcome`. It is on the hot path of every turn, so it does no work per streamed chunk (the outcome
comes once per turn), and the label children of each model, route and status are bound once and kept:
counting a finished turn is a few dictionary lookups and increments.

Label values are bounded: models are the configured ones (only models the registry resolved are admitted),
routes are route templates (`/api/sessions/{session_id}`, not raw paths), methods outside the usual few
are counted as `other`. No label holds a user id.

Cost: `genai_chatbot_cost_usd_total` is fed by the `pricing` callable given to `Metrics` (a price table's
`(model_id, prompt_tokens, completion_tokens) -> USD or None`); without one it stays empty.

Several server processes (`serve --workers N`): each process counts its own requests. Set the environment
variable `PROMETHEUS_MULTIPROC_DIR` to an empty directory before the server starts and every process
writes its counts there, and `/metrics` serves the sum of all of them (prometheus-client's multiprocess
mode).
"""

from __future__ import annotations

import os
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from genai_chatbot.auth.principal import Principal
from genai_chatbot.governance.gate import Admission, Governor, Outcome, Surface
from genai_chatbot.models.types import ModelInfo

#: The cost in US dollars of a model's tokens: `(model_id, prompt_tokens, completion_tokens)`, or `None`
#: when the model has no price.
Pricing = Callable[[str, int, int], float | None]

#: Seconds to the first token: a local model answers in tens of milliseconds, a loaded remote one in seconds.
FIRST_TOKEN_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})


class _ModelMetrics:
    """The label children of one model, bound once."""

    __slots__ = ("_errors", "_turns", "completion", "cost", "first_token", "in_flight", "metrics", "model_id", "prompt")

    def __init__(self, metrics: Metrics, model_id: str) -> None:
        self.metrics = metrics
        self.model_id = model_id
        self.in_flight = metrics.in_flight.labels(model_id)
        self.first_token = metrics.first_token.labels(model_id)
        self.prompt = metrics.tokens.labels(model_id, "prompt")
        self.completion = metrics.tokens.labels(model_id, "completion")
        self.cost = metrics.cost.labels(model_id)
        self._turns: dict[tuple[str, str], Counter] = {}
        self._errors: dict[str, Counter] = {}

    def ended(self, surface: str, outcome: Outcome) -> None:
        """Count a finished turn of this model from its outcome."""
        key = (surface, outcome.status)
        turns = self._turns.get(key)
        if turns is None:
            turns = self._turns[key] = self.metrics.turns.labels(self.model_id, surface, outcome.status)
        turns.inc()
        kind = outcome.error_type
        if kind is not None:
            errors = self._errors.get(kind)
            if errors is None:
                errors = self._errors[kind] = self.metrics.errors.labels(self.model_id, kind)
            errors.inc()
        if outcome.first_token_seconds is not None:
            self.first_token.observe(outcome.first_token_seconds)
        prompt, completion = outcome.prompt_tokens or 0, outcome.completion_tokens or 0
        if prompt:
            self.prompt.inc(prompt)
        if completion:
            self.completion.inc(completion)
        pricing = self.metrics.pricing
        if pricing is not None and (prompt or completion):
            cost = pricing(self.model_id, prompt, completion)
            if cost:
                self.cost.inc(cost)


class Metrics:
    """The metric families of one server, in their own registry (several apps may live in one process)."""

    def __init__(self, pricing: Pricing | None = None) -> None:
        self.pricing = pricing
        self.registry = registry = CollectorRegistry()
        self.http_requests = Counter(
            "genai_chatbot_http_requests",
            "HTTP requests answered, by route template, method and status code.",
            ["route", "method", "status"],
            registry=registry,
        )
        self.turns = Counter(
            "genai_chatbot_turns",
            "Turns and /v1 requests a model ran, by model, surface (page, terminal, v1) and how they ended "
            "(complete, failed, cancelled). A fallback's answer counts under the model that gave it.",
            ["model", "surface", "status"],
            registry=registry,
        )
        self.errors = Counter(
            "genai_chatbot_model_errors",
            "Turns a model failed, by model and kind (rate_limited, provider_unavailable, provider_error, ...).",
            ["model", "kind"],
            registry=registry,
        )
        self.first_token = Histogram(
            "genai_chatbot_time_to_first_token_seconds",
            "Seconds from the start of a turn to its first token, by the model that answered.",
            ["model"],
            buckets=FIRST_TOKEN_BUCKETS,
            registry=registry,
        )
        self.tokens = Counter(
            "genai_chatbot_tokens",
            "Tokens of finished turns, by model and kind (prompt, completion).",
            ["model", "kind"],
            registry=registry,
        )
        self.cost = Counter(
            "genai_chatbot_cost_usd",
            "Cost of finished turns in US dollars, by model, from the price table.",
            ["model"],
            registry=registry,
        )
        self.refusals = Counter(
            "genai_chatbot_refusals",
            "Turns and requests the governor refused before they started, by reason (model_not_allowed, "
            "budget_exceeded, rate_limited).",
            ["reason"],
            registry=registry,
        )
        self.in_flight = Gauge(
            "genai_chatbot_turns_in_flight",
            "Turns and /v1 requests admitted and not yet ended, by model.",
            ["model"],
            multiprocess_mode="livesum",
            registry=registry,
        )
        self._models: dict[str, _ModelMetrics] = {}
        self._requests: dict[tuple[str, str, int], Counter] = {}
        self._refusals: dict[str, Counter] = {}

    def model(self, model_id: str) -> _ModelMetrics:
        bound = self._models.get(model_id)
        if bound is None:
            bound = self._models[model_id] = _ModelMetrics(self, model_id)
        return bound

    def http_request(self, route: str, method: str, status: int) -> None:
        """Count one answered HTTP request; `route` is its route template, "" when no route matched."""
        key = (route, method, status)
        counter = self._requests.get(key)
        if counter is None:
            label = method if method in _METHODS else "other"
            counter = self._requests[key] = self.http_requests.labels(route or "unmatched", label, str(status))
        counter.inc()

    def refused(self, reason: str) -> None:
        """Count a turn or request the governor refused, by its error code."""
        counter = self._refusals.get(reason)
        if counter is None:
            counter = self._refusals[reason] = self.refusals.labels(reason)
        counter.inc()

    def exposition(self) -> bytes:
        """The metrics in Prometheus' text format: this process's, or every process's in multiprocess mode."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)


class _Metered:
    """One admitted turn: out of flight and counted once it ends."""

    __slots__ = ("_model", "_surface")

    def __init__(self, model: _ModelMetrics, surface: str) -> None:
        self._model = model
        self._surface = surface

    async def finish(self, outcome: Outcome) -> None:
        model = self._model
        model.in_flight.dec()
        answered = model if outcome.model_id == model.model_id else model.metrics.model(outcome.model_id)
        answered.ended(self._surface, outcome)


def metrics_of(governor: Governor) -> Metrics | None:
    """The metrics a governor counts into: its own, or its metrics part's when it is a chain."""
    parts = getattr(governor, "parts", (governor,))
    return next((part.metrics for part in parts if isinstance(part, MetricsGovernor)), None)


class MetricsGovernor:
    """The metrics part of the governor: admits everything, counts turns in flight and how they ended.

    It belongs last in the chain, so that it counts only the turns every other part admitted.
    """

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    async def visible_models(self, caller: Principal, models: list[ModelInfo]) -> list[ModelInfo]:
        return models

    async def admit(self, caller: Principal, model: ModelInfo, surface: Surface, max_tokens: int) -> Admission:
        bound = self.metrics.model(model.id)
        bound.in_flight.inc()
        return _Metered(bound, surface)
