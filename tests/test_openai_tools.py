"""Tools through /v1/chat/completions to an OpenAI-compatible upstream (the fake OpenAI server), by real clients.

Forwarding is asserted on the request the upstream received; replies are read by the `openai` SDK and by
LangChain's `ChatOpenAI`, the clients agents use.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from conftest import LiveServer, make_service
from fake_openai import FakeOpenAI, Recorded, Reply, tool_call_reply
from genai_chatbot.api.app import create_app
from genai_chatbot.config import OpenAICompatibleEndpoint, Settings
from genai_chatbot.models.providers.openai import OpenAICompatibleProvider
from genai_chatbot.secrets import ProviderKeys
from scripted import ScriptedProvider

MODEL = "upstream/m"
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city now.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
            "required": ["city", "unit"],
        },
        "strict": True,
    },
}
TIME = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}
CALLS = [("call_abc", "get_weather", ['{"ci', 'ty": "Pa', 'ris"}']), ("call_def", "get_time", ["{}"])]


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        server.answer = lambda request: tool_call_reply(request, CALLS)
        yield server


@pytest.fixture
def gateway(settings: Settings, fake: FakeOpenAI) -> Iterator[str]:
    """The app in front of the fake upstream (endpoint `upstream`, model `m`) and a model without tools."""
    endpoint = OpenAICompatibleEndpoint(name="upstream", base_url=f"{fake.url}/v1", models=["m"])
    provider = OpenAICompatibleProvider(endpoint, ProviderKeys([]), timeout_seconds=10)
    service = make_service(settings, provider, ScriptedProvider(["plain text"]))
    with LiveServer(create_app(settings, service=service, close_service=True), scan=False) as live:
        yield f"{live.url}/v1"


@pytest.fixture
def client(gateway: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway, api_key="unused", max_retries=0)


def upstream_body(fake: FakeOpenAI) -> Any:
    return fake.last("/chat/completions").body


def test_tools_tool_choice_and_parallel_calls_reach_the_upstream_as_sent(
    client: openai.OpenAI, fake: FakeOpenAI
) -> None:
    choice = {"type": "function", "function": {"name": "get_weather"}}
    reply = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=[WEATHER, TIME],  # type: ignore[list-item]
        tool_choice=choice,  # type: ignore[arg-type]
        parallel_tool_calls=False,
    )
    sent = upstream_body(fake)
    assert sent["tools"] == [WEATHER, TIME]
    assert sent["tool_choice"] == choice
    assert sent["parallel_tool_calls"] is False
    assert reply.choices[0].finish_reason == "tool_calls"
    message = reply.choices[0].message
    assert message.content is None
    assert [(c.id, c.function.name, json.loads(c.function.arguments)) for c in message.tool_calls or []] == [
        ("call_abc", "get_weather", {"city": "Paris"}),
        ("call_def", "get_time", {}),
    ]


def test_streamed_tool_calls_follow_openais_chunk_format_and_reassemble_in_the_sdk(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Weather in Paris, and the time?"}],
        tools=[WEATHER, TIME],  # type: ignore[list-item]
        tool_choice="required",
        stream=True,
    )
    calls: dict[int, dict[str, str]] = {}
    finish = None
    for event in stream:
        choice = event.choices[0]
        for delta in choice.delta.tool_calls or []:
            assert delta.function is not None
            if delta.id is not None:  # a call's first piece: id, type and name, as OpenAI sends it
                assert delta.type == "function" and delta.function.name
                calls[delta.index] = {"id": delta.id, "name": delta.function.name, "arguments": ""}
            else:
                assert delta.function.name is None and delta.type is None
            calls[delta.index]["arguments"] += delta.function.arguments or ""
        finish = choice.finish_reason or finish
    assert finish == "tool_calls"
    assert calls == {
        0: {"id": "call_abc", "name": "get_weather", "arguments": '{"city": "Paris"}'},
        1: {"id": "call_def", "name": "get_time", "arguments": "{}"},
    }


def test_the_sdks_stream_helper_parses_the_streamed_calls(client: openai.OpenAI) -> None:
    with client.chat.completions.stream(
        model=MODEL,
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=[WEATHER, TIME],  # type: ignore[list-item]
    ) as stream:
        final = stream.get_final_completion()
    calls = final.choices[0].message.tool_calls or []
    assert [(c.function.name, c.function.arguments) for c in calls] == [  # type: ignore[union-attr]
        ("get_weather", '{"city": "Paris"}'),
        ("get_time", "{}"),
    ]
    assert final.choices[0].finish_reason == "tool_calls"


def test_history_with_tool_calls_and_tool_results_is_forwarded_not_refused(
    client: openai.OpenAI, fake: FakeOpenAI
) -> None:
    fake.answer = lambda request: Reply(
        json={
            "id": "chatcmpl-2",
            "object": "chat.completion",
            "created": 1,
            "model": "m",
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": "It is 21 °C."}, "finish_reason": "stop"}
            ],
        }
    )
    call = {"id": "call_abc", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}
    history: list[Any] = [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_abc", "content": '{"temp": 21}'},
    ]
    reply = client.chat.completions.create(model=MODEL, messages=history, tools=[WEATHER])  # type: ignore[list-item]
    assert reply.choices[0].message.content == "It is 21 °C."
    # [-3:]: the gateway's own system prompt before them is the formats part's to drop (issue 10).
    assert upstream_body(fake)["messages"][-3:] == history


def test_langchain_bind_tools_returns_the_upstreams_tool_calls(gateway: str) -> None:
    from langchain_openai import ChatOpenAI

    def get_weather(city: str) -> str:
        """The weather in a city now."""
        return "sunny"

    llm = ChatOpenAI(model=MODEL, base_url=gateway, api_key="unused", max_retries=0)  # type: ignore[arg-type]
    for streaming in (False, True):
        bound = llm.bind_tools([get_weather])
        if streaming:
            message: Any = None
            for piece in bound.stream("Weather in Paris?"):
                message = piece if message is None else message + piece
        else:
            message = bound.invoke("Weather in Paris?")
        assert [(c["name"], c["args"], c["id"]) for c in message.tool_calls] == [
            ("get_weather", {"city": "Paris"}, "call_abc"),
            ("get_time", {}, "call_def"),
        ], streaming


def post(gateway: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{gateway}/chat/completions", json=body, timeout=10)


def test_a_model_that_cannot_call_tools_refuses_them_by_name(gateway: str) -> None:
    response = post(
        gateway, {"model": "scripted/echo", "messages": [{"role": "user", "content": "Hi"}], "tools": [WEATHER]}
    )
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert "scripted/echo" in message and "'tools'" in message


def test_tool_choice_none_on_a_model_without_tools_answers_as_text(gateway: str) -> None:
    body = {
        "model": "scripted/echo",
        "messages": [{"role": "user", "content": "Hi"}],
        "tools": [WEATHER],
        "tool_choice": "none",
    }
    response = post(gateway, body)
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "plain text"


@pytest.mark.parametrize(
    ("change", "status", "param"),
    [
        ({"tools": [{"type": "function", "function": {"name": "bad name!"}}]}, 422, None),
        ({"tools": [TIME] * 129}, 422, None),
        ({"tools": [TIME], "tool_choice": {"type": "function", "function": {"name": "nope"}}}, 400, "tool_choice"),
        ({"tool_choice": "required"}, 400, "tool_choice"),
        ({"messages": [{"role": "tool", "content": "21"}]}, 400, "messages"),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": "x",
                        "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
                    }
                ]
            },
            400,
            "messages",
        ),
    ],
)
def test_malformed_tool_requests_are_refused_before_the_upstream_is_asked(
    gateway: str, fake: FakeOpenAI, change: dict[str, Any], status: int, param: str | None
) -> None:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], **change}
    response = post(gateway, body)
    assert response.status_code == status, response.text
    if param is not None:
        assert response.json()["error"]["param"] == param
    assert not [r for r in fake.requests if r.path.endswith("/chat/completions")]


def test_plain_requests_send_no_tool_fields_upstream(client: openai.OpenAI, fake: FakeOpenAI) -> None:
    fake.answer = lambda request: tool_call_reply(request, [])
    client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi"}])
    assert not {"tools", "tool_choice", "parallel_tool_calls"} & set(upstream_body(fake))


_ = Recorded  # re-exported for type hints of answers
