"""A model that fails before its first token is retried, then replaced by its fallbacks, as the settings say.

The service-level tests script the failures with `ScriptedProvider`; the HTTP ones run the real OpenAI
provider against the fake OpenAI upstream answering 429 with `Retry-After`, and against a closed port.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from aws_local import free_port
from conftest import LiveServer
from fake_openai import FakeOpenAI, Recorded, Reply
from genai_chatbot.api.app import create_app
from genai_chatbot.chat.fallbacks import FallbackPlan, RetryPlan
from genai_chatbot.chat.service import ChatService, TurnEnded
from genai_chatbot.chat.sqlite_store import SQLiteHistoryStore
from genai_chatbot.config import Settings
from genai_chatbot.models.errors import ModelError, ProviderError, ProviderUnavailableError, RateLimitedError
from genai_chatbot.models.registry import ModelRegistry
from genai_chatbot.models.types import Message, ModelInfo
from scripted import ScriptedProvider, Step
from test_governor_hook import ALICE, RecordingGovernor

PRIMARY, BACKUP, SPARE = "primary/echo", "backup/echo", "spare/echo"
FAST = RetryPlan(attempts=2, deadline_seconds=5, backoff_seconds=0.001)


class Model(ScriptedProvider):
    """A scripted model of its own provider, `name/echo`; `first` is played by the first call only."""

    def __init__(self, name: str, script: Sequence[Step], first: Sequence[Step] | None = None) -> None:
        super().__init__(script, first=first)
        self.name = name

    async def list_models(self) -> list[ModelInfo]:
        return [ModelInfo(id=f"{self.name}/echo", provider=self.name, name="echo", display_name=self.name)]


def failing(error: ModelError) -> list[Step]:
    return [error]


def make(
    tmp_path: Path,
    *models: Model,
    fallbacks: dict[str, tuple[str, ...]],
    plan: RetryPlan = FAST,
    governor: RecordingGovernor | None = None,
) -> ChatService:
    extra = {"governor": governor} if governor is not None else {}
    return ChatService(
        ModelRegistry(models),
        SQLiteHistoryStore(tmp_path / "chat.sqlite3"),
        default_model=PRIMARY,
        default_system_prompt="",
        default_max_tokens=64,
        fallbacks=FallbackPlan(fallbacks, plan),
        **extra,  # type: ignore[arg-type]
    )


async def answer_of(service: ChatService) -> TurnEnded:
    session = await service.create_session("alice")
    events = [e async for e in await service.start_turn(ALICE, session.id, "hi")]
    ended = events[-1]
    assert isinstance(ended, TurnEnded)
    stored = await service.get_session("alice", session.id)
    assert stored.model_id == PRIMARY  # the session keeps the model the user picked
    return ended


async def test_a_throttled_model_is_retried_and_answers_itself(tmp_path: Path) -> None:
    primary = Model("primary", ["Hi"], first=failing(RateLimitedError("slow down", retry_after=0.01)))
    backup = Model("backup", ["Backup"])
    service = make(tmp_path, primary, backup, fallbacks={PRIMARY: (BACKUP,)})
    ended = await answer_of(service)
    assert (ended.message.status, ended.message.content, ended.message.model_id) == ("complete", "Hi", PRIMARY)
    assert (len(primary.requests), len(backup.requests)) == (2, 0)
    await service.store.close()


async def test_a_model_failing_past_its_retries_falls_back_and_the_answer_names_the_fallback(
    tmp_path: Path,
) -> None:
    primary = Model("primary", failing(ProviderError("upstream 500")))
    backup = Model("backup", ["From", " backup"])
    governor = RecordingGovernor(allowed={PRIMARY, BACKUP})
    service = make(tmp_path, primary, backup, fallbacks={PRIMARY: (BACKUP,)}, governor=governor)
    ended = await answer_of(service)
    assert (ended.message.status, ended.message.content) == ("complete", "From backup")
    assert ended.message.model_id == BACKUP
    [(_, stored)] = [await service.session_messages("alice", ended.message.session_id)]
    assert stored[-1].model_id == BACKUP
    assert (len(primary.requests), len(backup.requests)) == (1 + FAST.attempts, 1)
    assert [(o.model_id, o.status, o.error_type) for o in governor.outcomes] == [
        (PRIMARY, "failed", "provider_error"),
        (BACKUP, "complete", None),
    ]
    assert governor.outcomes[1].completion_tokens == 2
    assert governor.outcomes[1].first_token_seconds is not None
    await service.store.close()


async def test_an_error_after_the_first_token_stays_an_error(tmp_path: Path) -> None:
    primary = Model("primary", ["Half", ProviderError("cut off")])
    backup = Model("backup", ["Backup"])
    service = make(tmp_path, primary, backup, fallbacks={PRIMARY: (BACKUP,)})
    ended = await answer_of(service)
    assert (ended.message.status, ended.message.content, ended.message.model_id) == ("failed", "Half", PRIMARY)
    assert (len(primary.requests), len(backup.requests)) == (1, 0)
    await service.store.close()


async def test_a_fallback_the_caller_may_not_use_is_skipped(tmp_path: Path) -> None:
    primary = Model("primary", failing(ProviderUnavailableError("endpoint down")))
    backup, spare = Model("backup", ["Backup"]), Model("spare", ["Spare"])
    governor = RecordingGovernor(allowed={PRIMARY, SPARE})
    service = make(tmp_path, primary, backup, spare, fallbacks={PRIMARY: (BACKUP, SPARE)}, governor=governor)
    ended = await answer_of(service)
    assert (ended.message.content, ended.message.model_id) == ("Spare", SPARE)
    assert (len(primary.requests), len(backup.requests), len(spare.requests)) == (1, 0, 1)  # unavailable: no retry
    assert [m for _, m, _ in governor.admitted] == [PRIMARY, SPARE]
    await service.store.close()


class Missing(Model):
    """A configured model that cannot run (its file is missing): listed unavailable, and cannot even count tokens."""

    async def list_models(self) -> list[ModelInfo]:
        [info] = await super().list_models()
        return [replace(info, available=False, unavailable_reason="the model file is missing")]

    async def count_tokens(self, model: str, system: str | None, messages: Sequence[Message]) -> list[int]:
        raise ProviderUnavailableError("the model file is missing")


async def test_a_requested_model_that_is_unavailable_goes_straight_to_its_fallbacks(tmp_path: Path) -> None:
    primary, backup = Missing("primary", ["never"]), Model("backup", ["Backup"])
    governor = RecordingGovernor(allowed={PRIMARY, BACKUP})
    service = make(tmp_path, primary, backup, fallbacks={PRIMARY: (BACKUP,)}, governor=governor)
    ended = await answer_of(service)
    assert (ended.message.content, ended.message.model_id) == ("Backup", BACKUP)
    assert (len(primary.requests), len(backup.requests)) == (0, 1)
    assert [(o.model_id, o.status, o.error_type) for o in governor.outcomes] == [
        (PRIMARY, "failed", "provider_unavailable"),
        (BACKUP, "complete", None),
    ]
    await service.store.close()


async def test_when_no_model_answers_the_answer_fails_with_what_each_did(tmp_path: Path) -> None:
    primary = Model("primary", failing(RateLimitedError("Primary is rate-limiting requests.", retry_after=60)))
    backup = Model("backup", failing(ProviderUnavailableError("Backup is down.")))
    spare = Model("spare", ["Spare"])
    governor = RecordingGovernor(allowed={PRIMARY, BACKUP})
    fallbacks = {PRIMARY: ("nowhere/model", BACKUP, SPARE)}
    service = make(tmp_path, primary, backup, spare, fallbacks=fallbacks, governor=governor)
    ended = await answer_of(service)
    assert (ended.message.status, ended.message.model_id) == ("failed", PRIMARY)
    assert ended.message.error == (
        "No model answered: primary/echo (Primary is rate-limiting requests); "
        "nowhere/model (skipped: no such model is configured); backup/echo (Backup is down); "
        "spare/echo (skipped: not allowed to you)."
    )
    # Retry-After 60 s is past the 5 s deadline: no retry, no wait.
    assert (len(primary.requests), len(backup.requests), len(spare.requests)) == (1, 1, 0)
    await service.store.close()


async def test_retries_wait_within_the_deadline_and_then_fall_back(tmp_path: Path) -> None:
    primary = Model("primary", failing(RateLimitedError("throttled", retry_after=0.2)))
    backup = Model("backup", ["Backup"])
    plan = RetryPlan(attempts=10, deadline_seconds=0.5, backoff_seconds=0.001)
    service = make(tmp_path, primary, backup, fallbacks={PRIMARY: (BACKUP,)}, plan=plan)
    started = time.perf_counter()
    ended = await answer_of(service)
    elapsed = time.perf_counter() - started
    assert ended.message.model_id == BACKUP
    assert len(primary.requests) == 3  # waits of 0.2 s end at 0.2 and 0.4; a third would end past 0.5
    assert 0.4 <= elapsed < 0.5 + 0.4


async def test_stateless_requests_fall_back_and_say_which_model_answered(tmp_path: Path) -> None:
    primary = Model("primary", failing(ProviderError("upstream 500")))
    backup = Model("backup", ["Backup"])
    governor = RecordingGovernor(allowed={PRIMARY, BACKUP})
    service = make(tmp_path, primary, backup, fallbacks={PRIMARY: (BACKUP,)}, governor=governor)
    prepared = await service.prepare(PRIMARY, [Message("user", "hi")], caller=ALICE)
    result = await service.complete(prepared)
    assert (result.text, result.model_id) == ("Backup", BACKUP)
    stream = await service.stream(prepared)
    assert stream.model_id == BACKUP
    assert "".join([c.text async for c in stream]) == "Backup"
    await stream.aclose()
    assert [(o.model_id, o.status) for o in governor.outcomes] == [
        (PRIMARY, "failed"),
        (BACKUP, "complete"),
        (PRIMARY, "failed"),
        (BACKUP, "complete"),
    ]
    await service.store.close()


async def test_a_turn_closed_before_any_model_answered_is_reported_cancelled(tmp_path: Path) -> None:
    primary = Model("primary", [None])  # waits until cancelled
    governor = RecordingGovernor(allowed={PRIMARY})
    service = make(tmp_path, primary, fallbacks={PRIMARY: ()}, governor=governor)
    session = await service.create_session("alice")
    turn = await service.start_turn(ALICE, session.id, "hi")
    await turn.aclose()
    assert [(o.model_id, o.status) for o in governor.outcomes] == [(PRIMARY, "cancelled")]
    await service.store.close()


def test_backoff_is_exponential_with_full_jitter_and_bounded_by_attempts_and_deadline() -> None:
    error = ProviderError("x")
    top = RetryPlan(attempts=3, deadline_seconds=10, backoff_seconds=0.5, random=lambda: 1.0)
    assert [top.delay(n, error, 10) for n in range(4)] == [0.5, 1.0, 2.0, None]
    bottom = RetryPlan(attempts=3, deadline_seconds=10, backoff_seconds=0.5, random=lambda: 0.0)
    assert bottom.delay(2, error, 10) == 0.0
    assert top.delay(2, error, 1.5) is None  # the wait would end past the deadline
    assert top.delay(0, RateLimitedError("x", retry_after=3), 10) == 3  # Retry-After instead of the backoff
    assert top.delay(0, ProviderUnavailableError("x"), 10) is None  # unavailable: straight to the fallbacks


# Over HTTP, with the real OpenAI provider -------------------------------------------------------------


@pytest.fixture
def upstreams() -> Iterator[tuple[FakeOpenAI, FakeOpenAI]]:
    with FakeOpenAI() as throttled, FakeOpenAI() as healthy:
        yield throttled, healthy


def settings_for(tmp_path: Path, primary_url: str, backup_url: str, **retries: float) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        local={"enabled": False},
        default_model="flaky/gpt-4o",
        openai_compatible=[
            {"name": "flaky", "base_url": f"{primary_url}/v1", "models": ["gpt-4o"]},
            {"name": "steady", "base_url": f"{backup_url}/v1", "models": ["gpt-4o-mini"]},
        ],
        models={"flaky/gpt-4o": {"fallbacks": ["steady/gpt-4o-mini"]}},
        retries={"attempts": 2, "deadline_seconds": 5, "backoff_seconds": 0.01, **retries},
    )


def throttle(request: Recorded) -> Reply:
    return Reply(status=429, json={"error": {"message": "Rate limit reached"}}, headers={"retry-after-ms": "150"})


CHAT = {"model": "flaky/gpt-4o", "messages": [{"role": "user", "content": "hi"}]}


def test_a_429_with_retry_after_is_retried_after_it_then_falls_back(
    tmp_path: Path, upstreams: tuple[FakeOpenAI, FakeOpenAI]
) -> None:
    throttled, healthy = upstreams
    throttled.answer = throttle
    settings = settings_for(tmp_path, throttled.url, healthy.url)
    with LiveServer(create_app(settings)) as server, httpx.Client(base_url=server.url) as client:
        started = time.perf_counter()
        reply = client.post("/v1/chat/completions", json=CHAT)
        elapsed = time.perf_counter() - started
        assert reply.status_code == 200, reply.text
        assert reply.json()["model"] == "flaky/gpt-4o"  # what the client asked for
        assert reply.json()["choices"][0]["message"]["content"] == "Hello, world"
        assert reply.headers["x-genai-chatbot-model"] == "steady/gpt-4o-mini"
        chats = [r for r in throttled.requests if r.path.endswith("/chat/completions")]
        assert len(chats) == 3 and elapsed >= 2 * 0.15  # two retries, each after the 150 ms Retry-After

        with client.stream("POST", "/v1/chat/completions", json={**CHAT, "stream": True}) as streamed:
            assert streamed.headers["x-genai-chatbot-model"] == "steady/gpt-4o-mini"
            assert "Hello" in streamed.read().decode()


def test_a_model_that_is_down_falls_back_at_once_on_every_surface(
    tmp_path: Path, upstreams: tuple[FakeOpenAI, FakeOpenAI]
) -> None:
    _, healthy = upstreams
    settings = settings_for(tmp_path, f"http://127.0.0.1:{free_port()}", healthy.url)
    with LiveServer(create_app(settings)) as server, httpx.Client(base_url=server.url) as client:
        reply = client.post("/v1/chat/completions", json=CHAT)
        assert reply.status_code == 200, reply.text
        assert reply.headers["x-genai-chatbot-model"] == "steady/gpt-4o-mini"
        session = client.post("/api/sessions", json={"model": "flaky/gpt-4o"}).json()
        turn = client.post(f"/api/sessions/{session['id']}/messages", json={"content": "hi", "stream": False})
        assert turn.json()["message"]["model"] == "steady/gpt-4o-mini"
        assert turn.json()["message"]["content"] == "Hello, world"
        again = client.get(f"/api/sessions/{session['id']}").json()
        assert again["model"] == "flaky/gpt-4o"
        assert again["messages"][-1]["model"] == "steady/gpt-4o-mini"


def test_a_stream_whose_models_all_fail_is_answered_with_the_http_status(
    tmp_path: Path, upstreams: tuple[FakeOpenAI, FakeOpenAI]
) -> None:
    throttled, healthy = upstreams
    throttled.answer = healthy.answer = throttle
    settings = settings_for(tmp_path, throttled.url, healthy.url, attempts=0)
    with LiveServer(create_app(settings)) as server, httpx.Client(base_url=server.url) as client:
        reply = client.post("/v1/chat/completions", json={**CHAT, "stream": True})
        assert reply.status_code == 429
        assert reply.headers["retry-after"] == "1"
        assert "steady/gpt-4o-mini" in reply.json()["error"]["message"]


def test_the_terminal_says_which_model_answered(tmp_path: Path, upstreams: tuple[FakeOpenAI, FakeOpenAI]) -> None:
    _, healthy = upstreams
    config = tmp_path / "genai-chatbot.toml"
    config.write_text(
        f'data_dir = "{tmp_path}/data"\ndefault_model = "flaky/gpt-4o"\n[local]\nenabled = false\n'
        f'[[openai_compatible]]\nname = "flaky"\nbase_url = "http://127.0.0.1:{free_port()}/v1"\n'
        'models = ["gpt-4o"]\n'
        f'[[openai_compatible]]\nname = "steady"\nbase_url = "{healthy.url}/v1"\nmodels = ["gpt-4o-mini"]\n'
        '[models."flaky/gpt-4o"]\nfallbacks = ["steady/gpt-4o-mini"]\n'
    )
    result = subprocess.run(
        [sys.executable, "-m", "genai_chatbot", "chat"],
        input="hi\n/exit\n",
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "GENAI_CHATBOT_CONFIG": str(config)},
    )
    assert result.returncode == 0, result.stderr
    assert "Hello, world" in result.stdout
    assert "(answered by steady/gpt-4o-mini: flaky/gpt-4o did not answer)" in result.stdout
