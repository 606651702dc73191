"""Every OpenAI field honoured or refused: forwarded to an OpenAI-compatible upstream as the client sent it,
refused with a 400 naming field and model where a model lacks it (or dropped, when configured), ranges
checked as OpenAI checks them, errors before the first streamed byte answered with their status, and usage
always reported."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import openai
import pytest

from conftest import LOCAL_MODEL, LiveServer, make_service
from fake_openai import FakeOpenAI, Recorded, Reply, chunk, default_reply, sse
from genai_chatbot.api.app import create_app
from genai_chatbot.chat.service import ChatService
from genai_chatbot.config import OpenAICompatibleEndpoint, Settings
from genai_chatbot.models.providers.local import LocalProvider
from genai_chatbot.models.providers.openai import OpenAICompatibleProvider
from genai_chatbot.models.types import Message
from genai_chatbot.secrets import ProviderKeys
from scripted import ScriptedProvider

UPSTREAM = "up/m"


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


def upstream(url: str) -> OpenAICompatibleProvider:
    endpoint = OpenAICompatibleEndpoint(name="up", base_url=f"{url}/v1", models=["m"])
    return OpenAICompatibleProvider(endpoint, ProviderKeys([]))


@pytest.fixture
def scripted() -> ScriptedProvider:
    """A model that declares no features beyond plain chat."""
    return ScriptedProvider(["ok"])


@pytest.fixture
async def chat(settings: Settings, fake: FakeOpenAI, scripted: ScriptedProvider) -> AsyncIterator[ChatService]:
    service = make_service(settings, upstream(fake.url), scripted)
    yield service
    await service.registry.aclose()  # again, when a live server closed it already: closing is idempotent
    await service.store.close()


@pytest.fixture
def live(settings: Settings, chat: ChatService) -> Iterator[LiveServer]:
    with LiveServer(create_app(settings, service=chat, close_service=True), scan=False) as server:
        yield server


def post(live: LiveServer, **body: Any) -> httpx.Response:
    return httpx.post(f"{live.url}/v1/chat/completions", json=body, timeout=30)


def test_an_openai_compatible_upstream_receives_every_field_the_client_sent(live: LiveServer, fake: FakeOpenAI) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    fields: dict[str, Any] = {
        "temperature": 0.5,
        "top_p": 0.9,
        "seed": 7,
        "stop": ["\n\n"],
        "presence_penalty": 1.5,
        "frequency_penalty": -1.0,
        "logit_bias": {"42": -100.0},
        "logprobs": True,
        "top_logprobs": 2,
        "user": "u-1",
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "city", "description": "A city.", "schema": schema, "strict": True},
        },
        "vendor_knob": {"depth": 3},  # a field no model here declares: forwarded as it is
        "top_k": 5,
    }
    parts = [{"type": "text", "text": "Name a city"}, {"type": "text", "text": " in France."}]
    response = post(live, model=UPSTREAM, messages=[{"role": "user", "content": parts}], max_tokens=20, **fields)
    assert response.status_code == 200, response.text
    received = json.loads(fake.last("/chat/completions").raw)
    # No system message of the gateway's; the content parts stay an array.
    assert received == {**fields, "model": "m", "messages": [{"role": "user", "content": parts}], "max_tokens": 20}


def test_logprobs_of_an_upstream_stream_reach_the_client(live: LiveServer, fake: FakeOpenAI) -> None:
    logprobs = {"content": [{"token": "Hi", "logprob": -0.1, "bytes": [72, 105], "top_logprobs": []}]}

    def answer(request: Recorded) -> Reply:
        if request.path.endswith("/models"):
            return default_reply(request)
        first = chunk("Hi")
        first["choices"][0]["logprobs"] = logprobs
        return Reply(events=[sse(first), sse(chunk(finish="stop")), "data: [DONE]\n\n"])

    fake.answer = answer
    client = openai.OpenAI(base_url=f"{live.url}/v1", api_key="unused", max_retries=0)
    stream = client.chat.completions.create(
        model=UPSTREAM, messages=[{"role": "user", "content": "Hi"}], logprobs=True, stream=True
    )
    got = [c.choices[0].logprobs.model_dump() for c in stream if c.choices and c.choices[0].logprobs]
    assert [entry["content"][0]["token"] for entry in got] == ["Hi"]
    assert got[0]["content"][0]["logprob"] == -0.1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("presence_penalty", 5),
        ("frequency_penalty", -2.5),
        ("logit_bias", {"42": 101}),
        ("top_logprobs", 21),
        ("response_format", {"type": "json_schema"}),
    ],
)
def test_values_outside_openais_ranges_are_422(live: LiveServer, field: str, value: Any) -> None:
    response = post(live, model=UPSTREAM, messages=[{"role": "user", "content": "Hi"}], **{field: value})
    assert response.status_code == 422, response.text
    assert field in response.text


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("seed", 1),
        ("presence_penalty", 1.0),
        ("logit_bias", {"42": -5}),
        ("logprobs", True),
        ("response_format", {"type": "json_object"}),
        ("vendor_knob", 3),
    ],
)
def test_a_field_the_model_cannot_honour_is_a_400_naming_field_and_model(
    live: LiveServer, field: str, value: Any
) -> None:
    response = post(live, model="scripted/echo", messages=[{"role": "user", "content": "Hi"}], **{field: value})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["type"], error["param"]) == ("invalid_request_error", field)
    assert field in error["message"] and "scripted/echo" in error["message"]
    assert "drop_unsupported_params" in error["message"]


def test_fields_that_ask_for_nothing_are_not_refused(live: LiveServer) -> None:
    response = post(
        live,
        model="scripted/echo",
        messages=[{"role": "user", "content": "Hi"}],
        response_format={"type": "text"},
        logprobs=False,
        store=False,
        metadata=None,
        user="u-1",
    )
    assert response.status_code == 200, response.text


def test_drop_unsupported_params_drops_the_fields_and_logs_it(
    live: LiveServer, chat: ChatService, scripted: ScriptedProvider, caplog: pytest.LogCaptureFixture
) -> None:
    chat.drop_unsupported_params = True
    with caplog.at_level(logging.INFO, logger="genai_chatbot.models.features"):
        response = post(
            live, model="scripted/echo", messages=[{"role": "user", "content": "Hi"}], seed=3, vendor_knob=1
        )
    assert response.status_code == 200, response.text
    assert (scripted.requests[-1].seed, dict(scripted.requests[-1].extra)) == (None, {})
    assert "Dropped seed, vendor_knob: scripted/echo" in caplog.text


def test_the_drop_setting_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().drop_unsupported_params is False
    monkeypatch.setenv("GENAI_CHATBOT_DROP_UNSUPPORTED_PARAMS", "true")
    assert Settings().drop_unsupported_params is True


async def test_v1_adds_no_gateway_system_prompt_but_a_model_keeps_its_own(
    settings: Settings, fake: FakeOpenAI, local_provider: LocalProvider
) -> None:
    up = upstream(fake.url)
    chat = make_service(settings, up, local_provider)
    try:
        hi = [Message("user", "Hi")]
        assert (await chat.prepare(UPSTREAM, hi, surface="v1")).request.system is None
        assert (await chat.prepare(UPSTREAM, hi, surface="page")).request.system == settings.default_system_prompt
        # The embedded model needs a system prompt: its own default applies on /v1 too.
        local = await chat.prepare(LOCAL_MODEL, hi, surface="v1")
        assert local.request.system == "You are a helpful assistant."
        assert (await chat.prepare(LOCAL_MODEL, hi, system="Be terse.", surface="v1")).request.system == "Be terse."
    finally:
        await up.aclose()  # not the registry: the embedded model is shared by the whole run
        await chat.store.close()


def test_a_stream_whose_upstream_is_down_raises_the_sdks_status_error_503(settings: Settings, fake: FakeOpenAI) -> None:
    chat = make_service(settings, upstream(fake.url))
    with LiveServer(create_app(settings, service=chat, close_service=True), scan=False) as live:
        client = openai.OpenAI(base_url=f"{live.url}/v1", api_key="unused", max_retries=1)
        assert UPSTREAM in [m.id for m in client.models.list()]  # listed while the upstream was up
        fake.__exit__()  # now its port is closed
        with pytest.raises(openai.APIStatusError) as raised:
            client.chat.completions.create(model=UPSTREAM, messages=[{"role": "user", "content": "Hi"}], stream=True)
    assert raised.value.status_code == 503
    assert isinstance(raised.value.body, dict), raised.value.body  # the SDK hands out the "error" object
    assert raised.value.body["type"] == "provider_unavailable", raised.value.body


def test_a_throttled_stream_is_a_429_with_retry_after_and_the_sdk_retries(live: LiveServer, fake: FakeOpenAI) -> None:
    def answer(request: Recorded) -> Reply:
        if request.path.endswith("/models"):
            return default_reply(request)
        return Reply(status=429, json={"error": {"message": "slow down"}}, headers={"Retry-After": "0"})

    fake.answer = answer
    client = openai.OpenAI(base_url=f"{live.url}/v1", api_key="unused", max_retries=1)
    with pytest.raises(openai.RateLimitError) as raised:
        client.chat.completions.create(model=UPSTREAM, messages=[{"role": "user", "content": "Hi"}], stream=True)
    assert raised.value.response.headers["retry-after"] == "1"
    assert "slow down" in raised.value.message
    assert len([r for r in fake.requests if r.path.endswith("/chat/completions")]) == 2  # asked, then retried


def _without_usage(request: Recorded) -> Reply:
    """An upstream that never reports usage (an older server)."""
    if request.path.endswith("/models"):
        return default_reply(request)
    if request.body.get("stream"):
        events = [sse(chunk("Hello")), sse(chunk(" world")), sse(chunk(finish="stop")), "data: [DONE]\n\n"]
        return Reply(events=events)
    message = {"role": "assistant", "content": "Hello world"}
    return Reply(json={"choices": [{"index": 0, "message": message, "finish_reason": "stop"}]})


def test_usage_is_estimated_when_the_upstream_reports_none(live: LiveServer, fake: FakeOpenAI) -> None:
    fake.answer = _without_usage
    client = openai.OpenAI(base_url=f"{live.url}/v1", api_key="unused", max_retries=0)
    messages: Any = [{"role": "user", "content": "Say hello to the world, please."}]
    whole = client.chat.completions.create(model=UPSTREAM, messages=messages)
    assert whole.usage is not None and whole.usage.prompt_tokens > 0 and whole.usage.completion_tokens > 0
    stream = client.chat.completions.create(
        model=UPSTREAM, messages=messages, stream=True, stream_options={"include_usage": True}
    )
    last = list(stream)[-1]
    assert last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (
        whole.usage.prompt_tokens,
        whole.usage.completion_tokens,
    )


async def test_a_session_answer_stores_counts_when_the_upstream_reports_none(
    chat: ChatService, fake: FakeOpenAI
) -> None:
    fake.answer = _without_usage
    session = await chat.create_session("u", model_id=UPSTREAM)
    events = [event async for event in await chat.start_turn("u", session.id, "Say hello.")]
    stored = events[-1].message  # type: ignore[union-attr]
    assert stored.status == "complete"
    assert stored.prompt_tokens and stored.completion_tokens


def test_langchain_structured_output_through_an_openai_compatible_upstream(live: LiveServer, fake: FakeOpenAI) -> None:
    from langchain_openai import ChatOpenAI
    from pydantic import BaseModel

    class City(BaseModel):
        """A city and its country."""

        city: str
        country: str

    def answer(request: Recorded) -> Reply:
        if request.path.endswith("/models"):
            return default_reply(request)
        message = {"role": "assistant", "content": '{"city": "Paris", "country": "France"}'}
        return Reply(json={"choices": [{"index": 0, "message": message, "finish_reason": "stop"}]})

    fake.answer = answer
    model = ChatOpenAI(base_url=f"{live.url}/v1", api_key="unused", model=UPSTREAM, max_retries=0)  # type: ignore[arg-type]
    assert model.with_structured_output(City, method="json_schema").invoke("The capital of France?") == City(
        city="Paris", country="France"
    )
    sent = fake.last("/chat/completions").body["response_format"]
    assert sent["type"] == "json_schema"
    assert (sent["json_schema"]["name"], sent["json_schema"]["strict"]) == ("City", True)
    assert sent["json_schema"]["schema"]["required"] == ["city", "country"]
