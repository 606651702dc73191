"""The embedded model honours OpenAI's fields through `/v1`: `response_format` enforced by llama.cpp's
grammar (so structured-output clients get a parsed object even from a 135M model), and logit bias."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest
from pydantic import BaseModel

from conftest import LOCAL_MODEL, LiveServer, make_service
from genai_chatbot.api.app import create_app
from genai_chatbot.config import LocalModelSettings, Settings
from genai_chatbot.models.providers.local import LocalProvider

QUESTION = "What is the capital of France?"


class City(BaseModel):
    """A city and the country it is in."""

    city: str
    country: str


def client(server: LiveServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)


def test_json_object_makes_the_local_model_answer_a_json_object(server: LiveServer) -> None:
    reply = client(server).chat.completions.create(
        model=LOCAL_MODEL,
        messages=[{"role": "user", "content": f"{QUESTION} Answer in JSON."}],
        response_format={"type": "json_object"},
        max_tokens=60,
    )
    assert isinstance(json.loads(reply.choices[0].message.content or ""), dict)


def test_langchain_with_structured_output_json_schema_parses_the_local_models_answer(server: LiveServer) -> None:
    from langchain_openai import ChatOpenAI

    model = ChatOpenAI(base_url=f"{server.url}/v1", api_key="unused", model=LOCAL_MODEL, max_tokens=60)  # type: ignore[arg-type]
    structured = model.with_structured_output(City, method="json_schema")
    answer = structured.invoke(f"{QUESTION} Give the city and its country.")
    assert isinstance(answer, City)
    assert answer.city and answer.country


async def test_pydantic_ai_native_output_through_the_local_model(server: LiveServer) -> None:
    from pydantic_ai import Agent, NativeOutput
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider

    async with openai.AsyncOpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0) as sdk:
        model = OpenAIChatModel(LOCAL_MODEL, provider=OpenAIProvider(openai_client=sdk))
        agent = Agent(model, output_type=NativeOutput(City), model_settings={"max_tokens": 60})
        result = await agent.run(f"{QUESTION} Give the city and its country.")
    assert isinstance(result.output, City)
    assert result.output.city


def test_a_schema_llama_cpp_cannot_follow_is_a_400(server: LiveServer) -> None:
    schema: dict[str, Any] = {"type": "object", "properties": {"a": {"$ref": "#/$defs/missing"}}}
    response = httpx.post(
        f"{server.url}/v1/chat/completions",
        json={
            "model": LOCAL_MODEL,
            "messages": [{"role": "user", "content": "Hi"}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}},
        },
        timeout=60,
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == "response_format"


async def test_logit_bias_bans_the_tokens_the_local_model_would_answer(
    server: LiveServer, local_provider: LocalProvider
) -> None:
    messages: Any = [{"role": "user", "content": QUESTION}]
    plain = client(server).chat.completions.create(model=LOCAL_MODEL, messages=messages, max_tokens=24)
    assert "Paris" in (plain.choices[0].message.content or "")
    loaded = local_provider._model()
    banned = {str(t): -100.0 for word in ("Paris", " Paris") for t in loaded.llm.tokenize(word.encode(), add_bos=False)}
    biased = client(server).chat.completions.create(
        model=LOCAL_MODEL, messages=messages, max_tokens=24, logit_bias=banned
    )
    assert "Paris" not in (biased.choices[0].message.content or "")


@pytest.mark.parametrize("field", ["presence_penalty", "frequency_penalty"])
def test_penalties_change_a_greedy_local_reply(server: LiveServer, field: str) -> None:
    messages: Any = [{"role": "user", "content": "List the days of the week, one per line."}]
    plain = client(server).chat.completions.create(model=LOCAL_MODEL, messages=messages, max_tokens=40)
    penalised = client(server).chat.completions.create(
        model=LOCAL_MODEL, messages=messages, max_tokens=40, **{field: 2.0}
    )
    assert penalised.choices[0].message.content != plain.choices[0].message.content


def test_the_local_model_refuses_logprobs_unless_configured_naming_the_field(server: LiveServer) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        client(server).chat.completions.create(
            model=LOCAL_MODEL, messages=[{"role": "user", "content": "Hi"}], logprobs=True
        )
    assert "logprobs" in raised.value.message and LOCAL_MODEL in raised.value.message


@pytest.mark.slow  # loads the embedded model with logprobs on: a second model, not the shared one
def test_with_local_logprobs_on_the_local_model_reports_them_as_openai_does(settings: Settings) -> None:
    provider = LocalProvider(LocalModelSettings(threads=2, logprobs=True))
    with LiveServer(create_app(settings, service=make_service(settings, provider), close_service=True)) as live:
        asked: Any = {"model": LOCAL_MODEL, "messages": [{"role": "user", "content": QUESTION}], "max_tokens": 12}
        whole = client(live).chat.completions.create(**asked, logprobs=True, top_logprobs=2)
        stream = client(live).chat.completions.create(**asked, logprobs=True, top_logprobs=2, stream=True)
        streamed = [c.choices[0] for c in stream if c.choices]
    text = whole.choices[0].message.content or ""
    assert whole.choices[0].logprobs is not None and whole.choices[0].logprobs.content
    entries = whole.choices[0].logprobs.content
    assert "".join(entry.token for entry in entries) == text
    assert all(entry.logprob <= 0 and len(entry.top_logprobs) >= 2 for entry in entries)
    streamed_entries = [e for choice in streamed if choice.logprobs for e in choice.logprobs.content or ()]
    assert "".join(choice.delta.content or "" for choice in streamed) == text
    assert [e.token for e in streamed_entries] == [e.token for e in entries]
