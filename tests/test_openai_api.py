"""The OpenAI-compatible API, driven by the official openai SDK against a real server on 127.0.0.1."""

from __future__ import annotations

import httpx
import openai
import pytest

from conftest import LOCAL_MODEL, SCRIPTED_MODEL, LiveServer


def client(server: LiveServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)


QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


def test_the_sdk_lists_the_embedded_model(server: LiveServer) -> None:
    ids = [model.id for model in client(server).models.list()]
    assert ids == [LOCAL_MODEL]


def test_the_sdk_chats_without_streaming(server: LiveServer) -> None:
    reply = client(server).chat.completions.create(model=LOCAL_MODEL, messages=QUESTION, temperature=0)  # type: ignore[arg-type]
    assert reply.object == "chat.completion"
    assert reply.model == LOCAL_MODEL
    assert "Paris" in (reply.choices[0].message.content or "")
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None and reply.usage.completion_tokens > 0 and reply.usage.prompt_tokens > 0


def test_the_sdk_streams_the_same_text_it_gets_whole(server: LiveServer) -> None:
    sdk = client(server)
    whole = sdk.chat.completions.create(model=LOCAL_MODEL, messages=QUESTION, temperature=0, max_tokens=40)  # type: ignore[arg-type]
    chunks = list(
        sdk.chat.completions.create(
            model=LOCAL_MODEL,
            messages=QUESTION,  # type: ignore[arg-type]
            temperature=0,
            max_tokens=40,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert len(chunks) > 4
    assert chunks[0].choices[0].delta.role == "assistant"
    finishing = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishing == [whole.choices[0].finish_reason]
    assert chunks[-1].usage is not None and chunks[-1].usage == whole.usage


def test_max_tokens_ends_the_reply_with_length(server: LiveServer) -> None:
    reply = client(server).chat.completions.create(
        model=LOCAL_MODEL,
        messages=[{"role": "user", "content": "Tell a long story."}],
        max_tokens=5,
        temperature=0,
    )
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage is not None and reply.usage.completion_tokens == 5


def test_an_unknown_model_is_a_404_that_lists_the_available_ones(scripted_server: LiveServer) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client(scripted_server).chat.completions.create(model="openai/gpt-9", messages=QUESTION)  # type: ignore[arg-type]
    assert f"Available models: {SCRIPTED_MODEL}" in str(caught.value)


def test_a_model_id_without_provider_is_a_400_with_an_example(scripted_server: LiveServer) -> None:
    with pytest.raises(openai.BadRequestError, match="provider/model"):
        client(scripted_server).chat.completions.create(model="gpt-4o", messages=QUESTION)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("body", "status", "names"),
    [
        ({"model": SCRIPTED_MODEL, "messages": []}, 422, "messages"),
        ({"model": SCRIPTED_MODEL, "messages": QUESTION, "temperature": 5}, 422, "temperature"),
        ({"model": SCRIPTED_MODEL, "messages": QUESTION, "top_p": 0}, 422, "top_p"),
        ({"model": SCRIPTED_MODEL, "messages": [{"role": "robot", "content": "hi"}]}, 422, "messages.0.role"),
        ({"messages": QUESTION}, 422, "model"),
    ],
)
def test_bad_bodies_are_refused_naming_the_field(
    scripted_server: LiveServer, body: object, status: int, names: str
) -> None:
    response = httpx.post(f"{scripted_server.url}/v1/chat/completions", json=body)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["param"] == names
    assert names in error["message"]


def test_malformed_json_is_a_400_that_says_so(scripted_server: LiveServer) -> None:
    response = httpx.post(
        f"{scripted_server.url}/v1/chat/completions",
        content=b'{"model": "scripted/echo", "messages": [',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["error"]["message"]


def test_health_and_openapi_answer(scripted_server: LiveServer) -> None:
    assert httpx.get(f"{scripted_server.url}/healthz").json()["status"] == "ok"
    paths = httpx.get(f"{scripted_server.url}/openapi.json").json()["paths"]
    assert {"/v1/chat/completions", "/v1/models", "/api/sessions/{session_id}/messages"} <= set(paths)
