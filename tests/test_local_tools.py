"""Tool calls on the embedded model, through /v1 with real clients: arguments bound by llama.cpp's grammar."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

from conftest import LiveServer
from test_openai_tools import WEATHER  # city and unit, both required; unit from an enum

MODEL = "local/smollm2-135m-instruct"
TIME = {
    "type": "function",
    "function": {
        "name": "get_time",
        "description": "The time now in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]


def assert_weather_arguments(arguments: str) -> None:
    """The arguments parse as JSON the schema allows: the required keys, a string city, a unit from the enum."""
    parsed = json.loads(arguments)
    assert set(parsed) == {"city", "unit"}
    assert isinstance(parsed["city"], str) and parsed["unit"] in ("c", "f")


def client(server: LiveServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)


def test_named_tool_choice_is_answered_with_a_call_whose_arguments_fit_the_schema(server: LiveServer) -> None:
    reply = client(server).chat.completions.create(
        model=MODEL,
        messages=ASK,  # type: ignore[arg-type]
        tools=[WEATHER, TIME],  # type: ignore[list-item]
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        max_tokens=60,
    )
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    [call] = choice.message.tool_calls or []
    assert call.function.name == "get_weather" and call.id.startswith("call_")  # type: ignore[union-attr]
    assert_weather_arguments(call.function.arguments)  # type: ignore[union-attr]


def test_required_streams_one_call_of_one_of_the_tools(server: LiveServer) -> None:
    stream = client(server).chat.completions.create(
        model=MODEL,
        messages=ASK,  # type: ignore[arg-type]
        tools=[WEATHER, TIME],  # type: ignore[list-item]
        tool_choice="required",
        max_tokens=60,
        stream=True,
    )
    name, arguments, finish = "", "", None
    for event in stream:
        for delta in event.choices[0].delta.tool_calls or []:
            assert delta.index == 0 and delta.function is not None
            name += delta.function.name or ""
            arguments += delta.function.arguments or ""
        finish = event.choices[0].finish_reason or finish
    assert finish == "tool_calls"
    assert name in ("get_weather", "get_time")
    parsed = json.loads(arguments)
    assert isinstance(parsed, dict) and isinstance(parsed["city"], str)


def test_langchain_bind_tools_with_a_named_choice_returns_the_call(server: LiveServer) -> None:
    from langchain_openai import ChatOpenAI

    def get_weather(city: str, unit: str) -> str:
        """The weather in a city now, in unit "c" or "f"."""
        return "sunny"

    llm = ChatOpenAI(model=MODEL, base_url=f"{server.url}/v1", api_key="unused", max_tokens=60)  # type: ignore[arg-type,call-arg]
    message: Any = llm.bind_tools([get_weather], tool_choice="get_weather").invoke("What is the weather in Paris?")
    [call] = message.tool_calls
    assert call["name"] == "get_weather"
    assert set(call["args"]) == {"city", "unit"} and isinstance(call["args"]["city"], str)


def test_auto_tool_choice_is_refused_by_name_and_none_answers_text(server: LiveServer) -> None:
    url = f"{server.url}/v1/chat/completions"
    refused = httpx.post(url, json={"model": MODEL, "messages": ASK, "tools": [WEATHER]}, timeout=60)
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["param"] == "tool_choice" and MODEL in error["message"] and "'auto'" in error["message"]
    body = {"model": MODEL, "messages": ASK, "tools": [WEATHER], "tool_choice": "none", "max_tokens": 8}
    answered = httpx.post(url, json=body, timeout=60)
    assert answered.status_code == 200
    message = answered.json()["choices"][0]["message"]
    assert message["content"] and "tool_calls" not in message


@pytest.mark.parametrize("stream", [False, True])
def test_a_history_with_a_call_and_its_result_is_answered_as_text(server: LiveServer, stream: bool) -> None:
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}
    history: list[Any] = [
        *ASK,
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "21 degrees and sunny"},
    ]
    body = {"model": MODEL, "messages": history, "tools": [WEATHER], "tool_choice": "none", "max_tokens": 16}
    response = httpx.post(f"{server.url}/v1/chat/completions", json={**body, "stream": stream}, timeout=60)
    assert response.status_code == 200
    if not stream:
        assert response.json()["choices"][0]["message"]["content"]
    else:
        assert '"content"' in response.text and "data: [DONE]" in response.text


def test_langchain_structured_output_by_function_calling_parses_on_the_local_model(server: LiveServer) -> None:
    from langchain_openai import ChatOpenAI
    from pydantic import BaseModel

    class City(BaseModel):
        """A city and its country."""

        name: str
        country: str

    llm = ChatOpenAI(model=MODEL, base_url=f"{server.url}/v1", api_key="unused", max_tokens=60)  # type: ignore[arg-type,call-arg]
    city = llm.with_structured_output(City, method="function_calling").invoke("Paris is the capital of France.")
    assert isinstance(city, City) and city.name and city.country
