"""The plumbing every provider shares (`models/providers/_*.py`): each rule tested once, here."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from email.utils import formatdate
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import LiveServer
from fake_openai import FakeOpenAI, Recorded, Reply, chunk, default_reply, sse
from genai_chatbot.api.app import create_app
from genai_chatbot.config import (
    LocalModelSettings,
    OpenAICompatibleEndpoint,
    SageMakerEndpoint,
    SageMakerSettings,
    Settings,
)
from genai_chatbot.models.errors import InvalidRequestError, ProviderError, ProviderUnavailableError, RateLimitedError
from genai_chatbot.models.providers._clients import ClientCache
from genai_chatbot.models.providers._finish import finish_reason
from genai_chatbot.models.providers._http_errors import ErrorContext
from genai_chatbot.models.providers._key_checks import KeyCheck, KeyChecks
from genai_chatbot.models.providers._pump import pump
from genai_chatbot.models.providers._retry_after import MAX_RETRY_AFTER_SECONDS, parse_retry_after, retry_after_from
from genai_chatbot.models.providers.bedrock import ERRORS as BEDROCK_ERRORS
from genai_chatbot.models.providers.bedrock import BedrockProvider
from genai_chatbot.models.providers.openai import OpenAICompatibleProvider
from genai_chatbot.models.providers.sagemaker import ERRORS as SAGEMAKER_ERRORS
from genai_chatbot.models.providers.sagemaker import SageMakerProvider
from genai_chatbot.models.types import ChatRequest, Message
from genai_chatbot.per_loop import LoopLock
from genai_chatbot.secrets import ProviderKeys

# Retry-After ----------------------------------------------------------------------------------------


def test_retry_after_reads_delta_seconds_and_http_dates() -> None:
    now = 1_700_000_000.0
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after(formatdate(now + 30, usegmt=True), now=now) == 30.0
    assert parse_retry_after(formatdate(now - 30, usegmt=True), now=now) == 0.0, "a date passed means now"


@pytest.mark.parametrize("value", [None, "", "soon", "-5", "nan", "inf", "Mon, 99 Foo 2024"])
def test_retry_after_that_says_nothing_usable_is_none(value: str | None) -> None:
    assert parse_retry_after(value) is None


def test_retry_after_is_bounded_to_an_hour() -> None:
    assert parse_retry_after("86400") == MAX_RETRY_AFTER_SECONDS
    assert parse_retry_after(formatdate(time.time() + 86400 * 30, usegmt=True)) == MAX_RETRY_AFTER_SECONDS


def test_retry_after_headers_prefer_milliseconds_and_ignore_case() -> None:
    assert retry_after_from({"Retry-After-Ms": "250", "Retry-After": "9"}) == 0.25
    assert retry_after_from({"RETRY-AFTER": "9"}) == 9.0
    assert retry_after_from(httpx.Headers({"retry-after": "3"})) == 3.0
    assert retry_after_from(None) is None and retry_after_from({}) is None


# Finish reasons -------------------------------------------------------------------------------------


@pytest.mark.parametrize("reason", ["stop", "length", "content_filter", "tool_calls", "function_call"])
def test_every_openai_finish_reason_is_kept(reason: str) -> None:
    assert finish_reason(reason) == reason


@pytest.mark.parametrize(
    ("vendor", "ours"),
    [
        ("end_turn", "stop"),  # Bedrock, Anthropic
        ("max_tokens", "length"),
        ("guardrail_intervened", "content_filter"),
        ("content_filtered", "content_filter"),
        ("tool_use", "tool_calls"),
        ("COMPLETE", "stop"),  # Cohere
        ("MAX_TOKENS", "length"),
        ("TOOL_CALL", "tool_calls"),
        ("ERROR", "error"),
        ("eos_token", "stop"),  # TGI
        ("SAFETY", "content_filter"),  # Gemini through LangChain
        ("something new", "stop"),
        (None, "stop"),
    ],
)
def test_vendor_finish_reasons_map_onto_openais(vendor: str | None, ours: str) -> None:
    assert finish_reason(vendor) == ours


@pytest.fixture
def filtering_upstream() -> Iterator[FakeOpenAI]:
    """An endpoint whose replies a content filter cuts short, streamed or whole."""

    def answer(request: Recorded) -> Reply:
        if request.body is None:
            return default_reply(request)  # the model list
        if request.body.get("stream"):
            return Reply(events=[sse(chunk("Partial")), sse(chunk(finish="content_filter")), "data: [DONE]\n\n"])
        message = {"role": "assistant", "content": "Partial"}
        return Reply(json={"choices": [{"index": 0, "message": message, "finish_reason": "content_filter"}]})

    with FakeOpenAI() as server:
        server.answer = answer
        yield server


def test_a_content_filter_finish_reaches_openai_clients_streamed_and_whole(
    filtering_upstream: FakeOpenAI, tmp_path: Path
) -> None:
    endpoint = OpenAICompatibleEndpoint(name="filtered", base_url=f"{filtering_upstream.url}/v1", models=["m"])
    settings = Settings(data_dir=tmp_path, openai_compatible=[endpoint], local=LocalModelSettings(enabled=False))
    body = {"model": "filtered/m", "messages": [{"role": "user", "content": "hi"}]}
    with LiveServer(create_app(settings)) as live, httpx.Client(base_url=live.url, timeout=30) as client:
        whole = client.post("/v1/chat/completions", json=body).json()
        assert "choices" in whole, whole
        streamed = client.post("/v1/chat/completions", json={**body, "stream": True}).text
    assert whole["choices"][0]["finish_reason"] == "content_filter"
    assert '"finish_reason":"content_filter"' in streamed.replace(" ", "")


# Status errors --------------------------------------------------------------------------------------


def test_one_status_mapping_names_the_key_never_its_value() -> None:
    ctx = ErrorContext("Vendor", "https://api.vendor.test/v1", "VENDOR_KEY", "vk-secret-value")
    limited = ctx.status_error(429, "Slow down, vk-secret-value.", retry_after=2.0)
    assert isinstance(limited, RateLimitedError) and limited.retry_after == 2.0
    assert "vk-secret-value" not in limited.message and "***" in limited.message
    refused = ctx.status_error(498, None)
    assert isinstance(refused, ProviderUnavailableError) and "VENDOR_KEY was refused (HTTP 498)" in refused.message
    assert isinstance(ctx.status_error(404, "no such model"), ProviderUnavailableError)
    assert isinstance(ctx.status_error(413, "too big"), InvalidRequestError)
    failed = ctx.status_error(503, "")
    assert isinstance(failed, ProviderError) and "HTTP 503" in failed.message and "try again later" in failed.message


# Key checks -----------------------------------------------------------------------------------------


async def test_a_key_check_is_asked_again_only_when_the_api_was_unreachable() -> None:
    checks: KeyChecks[int] = KeyChecks(retry_seconds=0)
    asked: list[str] = []

    async def ask(key: str, check: KeyCheck[int]) -> KeyCheck[int]:
        asked.append(key)
        return check

    refused, unreachable = KeyCheck(1, "refused"), KeyCheck(2, "unreachable", ask_again=True)
    for _ in range(2):
        assert await checks.get(["refused-key"], lambda: ask("refused-key", refused)) is refused
        assert await checks.get(["far-key"], lambda: ask("far-key", unreachable)) is unreachable
    assert asked == ["refused-key", "far-key", "far-key"]
    checks.clear()
    await checks.get(["refused-key"], lambda: ask("refused-key", refused))
    assert asked[-1] == "refused-key", "refresh asks again"


# The client cache -----------------------------------------------------------------------------------


async def test_a_rotated_key_retires_the_old_client_once_its_last_lease_ends() -> None:
    closed: list[str] = []

    async def close(client: str) -> None:
        closed.append(client)

    cache: ClientCache[str] = ClientCache(close, blocking_build=False)
    async with cache.lease("slot", ["key-1"], lambda: "client-1") as first:
        async with cache.lease("slot", ["key-1"], lambda: "never built") as again:
            assert again is first
        async with cache.lease("slot", ["key-2"], lambda: "client-2") as second:
            assert second == "client-2"
            assert closed == [], "client-1 is still leased by the outer block"
        assert closed == []
    assert closed == ["client-1"]
    await cache.aclose()
    assert closed == ["client-1", "client-2"]


async def test_a_client_nobody_leases_is_closed_as_soon_as_it_is_replaced() -> None:
    closed: list[str] = []

    async def close(client: str) -> None:
        closed.append(client)

    cache: ClientCache[str] = ClientCache(close)
    async with cache.lease("slot", ["a"], lambda: "client-a"):
        pass
    async with cache.lease("slot", ["b"], lambda: "client-b"):
        assert closed == ["client-a"]
    assert cache.current("slot") == "client-b"


# Locks and pumps across event loops -----------------------------------------------------------------


def test_one_loop_lock_serves_several_event_loops() -> None:
    lock = LoopLock()
    order: list[str] = []

    async def use(name: str) -> None:
        async with lock:
            order.append(name)
            await asyncio.sleep(0)
            order.append(name)

    async def two() -> None:
        await asyncio.gather(use("a"), use("b"))

    asyncio.run(two())
    asyncio.run(two())  # a second loop: an asyncio.Lock bound to the first would raise here
    assert order == ["a", "a", "b", "b", "a", "a", "b", "b"]


def test_the_pump_stops_its_producer_when_the_loop_closes_under_it() -> None:
    executor = ThreadPoolExecutor(1)
    started, released, finished = threading.Event(), threading.Event(), threading.Event()

    def produce(emit: Callable[[int], None], stop: threading.Event) -> None:
        emit(1)
        started.set()
        released.wait(10)
        for item in range(2, 1000):
            if stop.is_set():
                break
            emit(item)  # the loop is closed: the guard sets `stop` instead of raising on this thread
        finished.set()

    async def read_one() -> int:
        stream = pump(executor, produce)
        first = await anext(stream)
        assert started.wait(10)
        return first  # the loop closes with the generator unfinished and the producer still running

    loop = asyncio.new_event_loop()
    assert loop.run_until_complete(read_one()) == 1
    loop.close()
    released.set()
    assert finished.wait(10), "the producer noticed nobody listens any more and returned"
    executor.shutdown(wait=True)


async def test_the_openai_compatible_provider_keeps_tool_call_finishes(filtering_upstream: FakeOpenAI) -> None:
    filtering_upstream.answer = lambda request: Reply(events=[sse(chunk(finish="tool_calls")), "data: [DONE]\n\n"])
    endpoint = OpenAICompatibleEndpoint(name="tools", base_url=f"{filtering_upstream.url}/v1", models=["m"])
    provider = OpenAICompatibleProvider(endpoint, ProviderKeys([]))
    try:
        chunks = [c async for c in provider.stream(ChatRequest("m", (Message("user", "hi"),)))]
    finally:
        await provider.aclose()
    assert chunks[-1].finish_reason == "tool_calls"


# AWS error tables -----------------------------------------------------------------------------------


def client_error(code: str, message: str = "The service said no.") -> Exception:
    from botocore.exceptions import ClientError

    answer: Any = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPHeaders": {"retry-after": "5"}},
    }
    return ClientError(answer, "Operation")


async def test_every_bedrock_error_code_in_the_table_becomes_its_error() -> None:
    bedrock = BedrockProvider(Settings(bedrock_region="eu-west-1"))
    try:
        for code, outcome in BEDROCK_ERRORS.items():
            error = bedrock._translate(client_error(code), "some-model")
            assert type(error) is outcome.error, code
            assert "The service said no" in error.message or code in error.message, code
            assert "no.." not in error.message, code
            if isinstance(error, RateLimitedError):
                assert error.retry_after == 5.0
        assert type(bedrock._translate(client_error("SomethingNew"), "some-model")) is ProviderError
    finally:
        await bedrock.aclose()


async def test_every_sagemaker_error_code_in_the_table_becomes_its_error() -> None:
    endpoint = SageMakerEndpoint(name="qwen", format="tgi")
    sagemaker = SageMakerProvider(SageMakerSettings(region="eu-west-1", endpoints=[endpoint]))
    try:
        for code, outcome in SAGEMAKER_ERRORS.items():
            error = sagemaker._translate(client_error(code), endpoint)
            assert type(error) is outcome.error, code
            assert "SageMaker endpoint 'qwen'" in error.message, code
        throttled = sagemaker._translate(client_error("ThrottlingException", "Rate exceeded for quota"), endpoint)
        assert isinstance(throttled, RateLimitedError) and throttled.retry_after == 5.0, "not a capacity problem"
    finally:
        await sagemaker.aclose()
