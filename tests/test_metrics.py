"""`/metrics` on a live server, parsed with prometheus_client's own parser: the counters move by what was done.

The model is the real OpenAI provider against the fake OpenAI upstream, which reports 9 prompt and 3
completion tokens per reply.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import LiveServer
from fake_openai import FakeOpenAI, Recorded, Reply, default_reply
from genai_chatbot.api.app import create_app
from genai_chatbot.auth.principal import Principal
from genai_chatbot.chat.service import build_chat_service
from genai_chatbot.config import Settings
from genai_chatbot.governance.chain import ChainGovernor
from genai_chatbot.governance.errors import BudgetExceededError, ModelNotAllowedError
from genai_chatbot.governance.gate import Admission, Outcome, Surface
from genai_chatbot.governance.metrics import Metrics, MetricsGovernor
from genai_chatbot.models.types import ModelInfo
from test_isolation import make_users

MODEL = "fake/gpt-4o"
CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples_of(text: str) -> Samples:
    """Every sample of a Prometheus text exposition by (name, sorted labels)."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(client: httpx.Client, **headers: str) -> Samples:
    reply = client.get("/metrics", headers=headers)
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("text/plain")
    return samples_of(reply.text)


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def upstream() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


def settings_for(tmp_path: Path, upstream: FakeOpenAI, **more: object) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        local={"enabled": False},
        default_model=MODEL,
        openai_compatible=[{"name": "fake", "base_url": f"{upstream.url}/v1", "models": ["gpt-4o"]}],
        **more,  # type: ignore[arg-type]
    )


def price(model_id: str, prompt: int, completion: int) -> float | None:
    """$1 per prompt token and $10 per completion token: easy to check."""
    return prompt * 1.0 + completion * 10.0 if model_id == MODEL else None


def test_metrics_count_requests_turns_tokens_cost_and_errors_by_model(tmp_path: Path, upstream: FakeOpenAI) -> None:
    settings = settings_for(tmp_path, upstream)
    service = build_chat_service(settings, metrics=Metrics(pricing=price))
    failures = iter([Reply(status=500, json={"error": {"message": "boom"}})])

    def answer(request: Recorded) -> Reply:
        failure = next(failures, None) if request.path.endswith("/chat/completions") else None
        return failure or default_reply(request)

    with (
        LiveServer(create_app(settings, service=service, close_service=True)) as server,
        httpx.Client(base_url=server.url) as client,
    ):
        before = scrape(client)
        upstream.answer = answer
        assert client.post("/v1/chat/completions", json=CHAT).status_code == 502
        assert client.post("/v1/chat/completions", json=CHAT).status_code == 200
        streamed = client.post("/v1/chat/completions", json={**CHAT, "stream": True, "stream_options": {}})
        assert "Hello" in streamed.text
        assert client.post("/v1/chat/completions", json={**CHAT, "model": "fake/nope"}).status_code == 404
        assert client.get("/api/sessions/no-such-session").status_code == 404
        assert client.get("/no/such/page/42").status_code == 404
        assert client.request("PROPFIND", "/v1/models").status_code == 405
        after = scrape(client)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    requests = "genai_chatbot_http_requests_total"
    assert moved(requests, route="/v1/chat/completions", method="POST", status="200") == 2
    assert moved(requests, route="/v1/chat/completions", method="POST", status="502") == 1
    assert moved(requests, route="/v1/chat/completions", method="POST", status="404") == 1
    # Route templates and a bounded set of methods: no raw path or made-up method becomes a label.
    assert moved(requests, route="/api/sessions/{session_id}", method="GET", status="404") == 1
    assert moved(requests, route="unmatched", method="GET", status="404") == 1
    assert moved(requests, route="/v1/models", method="other", status="405") == 1
    assert moved(requests, route="/metrics", method="GET", status="200") == 1  # the first scrape
    assert not any("42" in dict(labels).get("route", "") or "no-such" in str(labels) for _, labels in after)

    turns = "genai_chatbot_turns_total"
    assert moved(turns, model=MODEL, surface="v1", status="complete") == 2
    assert moved(turns, model=MODEL, surface="v1", status="failed") == 1
    assert moved("genai_chatbot_model_errors_total", model=MODEL, kind="provider_error") == 1
    assert moved("genai_chatbot_tokens_total", model=MODEL, kind="prompt") == 2 * 9
    assert moved("genai_chatbot_tokens_total", model=MODEL, kind="completion") == 2 * 3
    assert moved("genai_chatbot_cost_usd_total", model=MODEL) == 2 * (9 * 1.0 + 3 * 10.0)
    assert moved("genai_chatbot_time_to_first_token_seconds_count", model=MODEL) == 2
    assert value(after, "genai_chatbot_turns_in_flight", model=MODEL) == 0
    assert not any(label == "user" for _, labels in after for label, _ in labels)


def test_a_turn_in_flight_is_counted_until_it_ends(tmp_path: Path, upstream: FakeOpenAI) -> None:
    release = threading.Event()

    def held(request: Recorded) -> Reply:
        """The first chunk, then the rest once the test has looked."""
        reply = default_reply(request)
        if reply.events is None:
            return reply
        first, *rest = reply.events

        def events() -> Iterator[str]:
            yield first
            release.wait(10)
            yield from rest

        return Reply(events=events())

    upstream.answer = held
    settings = settings_for(tmp_path, upstream)
    with LiveServer(create_app(settings)) as server, httpx.Client(base_url=server.url) as client:
        session = client.post("/api/sessions", json={"model": MODEL}).json()
        body = {"content": "hi", "stream": True}
        with client.stream("POST", f"/api/sessions/{session['id']}/messages", json=body) as turn:
            lines = turn.iter_lines()
            assert next(lines) == "event: start"  # admitted and stored: in flight until the stream ends
            assert value(scrape(client), "genai_chatbot_turns_in_flight", model=MODEL) == 1
            release.set()
            rest = "\n".join(lines)
        assert "event: end" in rest
        samples = scrape(client)
        assert value(samples, "genai_chatbot_turns_in_flight", model=MODEL) == 0
        assert value(samples, "genai_chatbot_turns_total", model=MODEL, surface="page", status="complete") == 1


def test_metrics_need_an_admin_or_the_metrics_token_when_auth_is_on(tmp_path: Path, upstream: FakeOpenAI) -> None:
    settings = settings_for(tmp_path, upstream, auth="api-keys", metrics_token="scrape-token-0123456789")
    keys, _ = make_users(settings)
    with LiveServer(create_app(settings)) as server, httpx.Client(base_url=server.url) as client:
        assert client.get("/metrics").status_code == 401
        refused = client.get("/metrics", headers={"Authorization": "Bearer scrape-token-wrong"})
        assert (refused.status_code, refused.headers["www-authenticate"]) == (401, "Bearer")
        user = client.get("/metrics", headers={"Authorization": f"Bearer {keys['alice']}"})
        assert user.status_code == 403 and "metrics_token" in user.json()["error"]["message"]
        assert scrape(client, Authorization=f"Bearer {keys['root']}")
        assert scrape(client, Authorization="Bearer scrape-token-0123456789")


def test_metrics_off_are_neither_served_nor_counted(tmp_path: Path, upstream: FakeOpenAI) -> None:
    settings = settings_for(tmp_path, upstream, metrics=False)
    app = create_app(settings)
    with LiveServer(app) as server, httpx.Client(base_url=server.url) as client:
        off = client.get("/metrics")
        assert off.status_code == 404 and "metrics = true" in off.json()["error"]["message"]
        assert client.post("/v1/chat/completions", json=CHAT).status_code == 200
        assert app.state.metrics is None
        governor = app.state.service.governor
        parts = getattr(governor, "parts", (governor,))
        assert not any(part.__class__.__name__ == "MetricsGovernor" for part in parts)


COUNT_ONE_REQUEST = """
from genai_chatbot.governance.metrics import Metrics
Metrics().http_request("/v1/models", "GET", 200)
"""
SCRAPE = """
import sys
from genai_chatbot.governance.metrics import Metrics
sys.stdout.write(Metrics().exposition().decode())
"""


def test_in_multiprocess_mode_every_process_counts_into_one_scrape(tmp_path: Path) -> None:
    """With PROMETHEUS_MULTIPROC_DIR (what `serve --workers N` needs), a scrape of any process sums them all."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PYTHONPATH": os.pathsep.join(sys.path)}
    for _ in range(2):
        subprocess.run([sys.executable, "-c", COUNT_ONE_REQUEST], env=env, check=True)
    scraped = subprocess.run([sys.executable, "-c", SCRAPE], env=env, check=True, capture_output=True, text=True)
    samples = samples_of(scraped.stdout)
    assert value(samples, "genai_chatbot_http_requests_total", route="/v1/models", method="GET", status="200") == 2


@dataclass
class Refusing:
    """A governance part that refuses what `refusals` holds, in order, then admits."""

    refusals: list[Exception]

    async def visible_models(self, caller: Principal, models: list[ModelInfo]) -> list[ModelInfo]:
        return models

    async def admit(self, caller: Principal, model: ModelInfo, surface: Surface, max_tokens: int) -> Admission:
        if self.refusals:
            raise self.refusals.pop(0)
        return self

    async def finish(self, outcome: Outcome) -> None:
        return None


def test_refusals_are_counted_by_reason_and_never_counted_in_flight(tmp_path: Path, upstream: FakeOpenAI) -> None:
    settings = settings_for(tmp_path, upstream)
    metrics = Metrics()
    refusing = Refusing(
        [
            ModelNotAllowedError(MODEL),
            BudgetExceededError("spent", limit="user alice: budget_usd 1.0 per day", reset_at=0, retry_after_seconds=9),
        ]
    )
    service = build_chat_service(settings)
    service.governor = ChainGovernor([refusing, MetricsGovernor(metrics)])
    with (
        LiveServer(create_app(settings, service=service, close_service=True)) as server,
        httpx.Client(base_url=server.url) as client,
    ):
        assert client.post("/v1/chat/completions", json=CHAT).status_code == 403
        assert client.post("/v1/chat/completions", json=CHAT).status_code == 429
        assert client.post("/v1/chat/completions", json=CHAT).status_code == 200
        samples = scrape(client)
    assert value(samples, "genai_chatbot_refusals_total", reason="model_not_allowed") == 1
    assert value(samples, "genai_chatbot_refusals_total", reason="budget_exceeded") == 1
    assert value(samples, "genai_chatbot_turns_total", model=MODEL, surface="v1", status="complete") == 1
    assert value(samples, "genai_chatbot_turns_total", model=MODEL, surface="v1", status="cancelled") == 0
    assert value(samples, "genai_chatbot_turns_in_flight", model=MODEL) == 0
