"""SageMaker endpoints through boto3's real code paths, against the local AWS wire server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable

import pytest

from aws_wire import (  # noqa: F401  (wire_fixture provides the `wire` fixture)
    AwsWire,
    Error,
    Json,
    Request,
    Stream,
    endless,
    exception,
    payload_part,
    wire_fixture,
)
from genai_chatbot.config import SageMakerEndpoint, SageMakerSettings, Settings
from genai_chatbot.models.errors import ProviderError, ProviderUnavailableError
from genai_chatbot.models.providers.sagemaker import SageMakerProvider
from genai_chatbot.models.registry import build_registry
from genai_chatbot.models.types import ChatChunk, ChatRequest, Message

ENDPOINTS = [
    SageMakerEndpoint(name="qwen-tgi", format="tgi", context_window=8192),
    SageMakerEndpoint(name="llama-3-8b", format="jumpstart-llama", display_name="Llama 3 8B (JumpStart)"),
    SageMakerEndpoint(name="mistral-7b", format="mistral-instruct", streaming=False),
    SageMakerEndpoint(name="vllm-chat", format="openai-messages", region="eu-west-1"),
]


DESCRIBE = "SageMaker.DescribeEndpoint"


def endpoint_status(status: str, failure: str | None = None) -> Callable[[Request], Json]:
    """DescribeEndpoint's answer (SageMaker's JSON protocol) for the endpoint named in the request."""

    def answer(request: Request) -> Json:
        name = request.json()["EndpointName"]
        body = {
            "EndpointName": name,
            "EndpointArn": f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{name}",
            "EndpointConfigName": f"{name}-config",
            "EndpointStatus": status,
            "CreationTime": 1_700_000_000,
            "LastModifiedTime": 1_700_000_000,
        }
        if failure is not None:
            body["FailureReason"] = failure
        return Json(body)

    return answer


@pytest.fixture
async def sagemaker(wire: AwsWire) -> AsyncIterator[SageMakerProvider]:
    wire.route("POST", "/", endpoint_status("InService"), target=DESCRIBE)
    provider = SageMakerProvider(SageMakerSettings(region="us-east-1", endpoints=ENDPOINTS), timeout_seconds=20)
    yield provider
    await provider.aclose()


def ask(endpoint: str, **params: object) -> ChatRequest:
    return ChatRequest(
        model=endpoint,
        messages=(Message("user", "Hi"), Message("assistant", "Hello!"), Message("user", "Name a colour.")),
        system="Be brief.",
        **params,  # type: ignore[arg-type]
    )


async def collect(provider: SageMakerProvider, request: ChatRequest) -> list[ChatChunk]:
    return [chunk async for chunk in provider.stream(request)]


def sse(*events: dict[str, object], prefix: str = "data:") -> bytes:
    return b"".join(f"{prefix}{json.dumps(e)}\n\n".encode() for e in events)


def cut(data: bytes, size: int) -> list[bytes]:
    """`data` as PayloadParts of `size` bytes: lines, JSON and UTF-8 characters all cut mid-way."""
    return [payload_part(data[i : i + size]) for i in range(0, len(data), size)]


def tgi_token(text: str, special: bool = False, details: dict[str, object] | None = None) -> dict[str, object]:
    return {
        "token": {"id": 1, "text": text, "logprob": -0.1, "special": special},
        "generated_text": None,
        "details": details,
    }


async def test_tgi_stream_split_across_payload_parts_is_reassembled_by_lines(
    sagemaker: SageMakerProvider,
    wire: AwsWire,
) -> None:
    body = sse(
        tgi_token("Bleu"),
        tgi_token(" café"),
        tgi_token("<|im_end|>", special=True, details={"finish_reason": "eos_token", "generated_tokens": 3}),
    )
    wire.route("POST", "/endpoints/qwen-tgi/invocations-response-stream", Stream(cut(body, 7)))
    chunks = await collect(sagemaker, ask("qwen-tgi", temperature=0, max_tokens=64))
    assert "".join(c.text for c in chunks) == "Bleu café"
    assert chunks[-1].finish_reason == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 3
    sent = wire.requests_to("invocations-response-stream")[0].json()
    assert sent["stream"] is True
    assert sent["inputs"] == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nName a colour.<|im_end|>\n<|im_start|>assistant\n"
    )
    assert sent["parameters"] == {"max_new_tokens": 64, "stop": ["<|im_end|>"], "details": True, "do_sample": False}


async def test_tgi_sampling_sends_temperature_and_top_p(sagemaker: SageMakerProvider, wire: AwsWire) -> None:
    details = {"finish_reason": "length", "generated_tokens": 1}
    wire.route(
        "POST",
        "/endpoints/qwen-tgi/invocations-response-stream",
        Stream(cut(sse(tgi_token("Red", details=details)), 50)),
    )
    chunks = await collect(sagemaker, ask("qwen-tgi", temperature=0.7, top_p=0.9))
    assert chunks[-1].finish_reason == "length"
    parameters = wire.requests_to("invocations-response-stream")[0].json()["parameters"]
    assert (parameters["do_sample"], parameters["temperature"], parameters["top_p"]) == (True, 0.7, 0.9)


async def test_jumpstart_llama_accepts_the_eula_and_sends_a_llama_3_prompt(
    sagemaker: SageMakerProvider,
    wire: AwsWire,
) -> None:
    wire.route("POST", "/endpoints/llama-3-8b/invocations-response-stream", Stream(cut(sse(tgi_token("Blue")), 9)))
    assert "".join(c.text for c in await collect(sagemaker, ask("llama-3-8b"))) == "Blue"
    [sent] = wire.requests_to("llama-3-8b")
    assert sent.headers["x-amzn-sagemaker-custom-attributes"] == "accept_eula=true"
    prompt = sent.json()["inputs"]
    assert prompt.startswith("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>")
    assert prompt.endswith("<|start_header_id|>assistant<|end_header_id|>\n\n")
    assert sent.json()["parameters"]["stop"] == ["<|eot_id|>"]


async def test_openai_messages_streams_sse_deltas_with_usage(sagemaker: SageMakerProvider, wire: AwsWire) -> None:
    body = (
        sse(
            {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]},
            {"choices": [{"index": 0, "delta": {"content": "Gre"}, "finish_reason": None}]},
            {"choices": [{"index": 0, "delta": {"content": "en"}, "finish_reason": "stop"}]},
            {"choices": [], "usage": {"prompt_tokens": 20, "completion_tokens": 2, "total_tokens": 22}},
            prefix="data: ",
        )
        + b"data: [DONE]\n\n"
    )
    wire.route("POST", "/endpoints/vllm-chat/invocations-response-stream", Stream(cut(body, 13)))
    chunks = await collect(sagemaker, ask("vllm-chat", temperature=0, max_tokens=10))
    assert [c.text for c in chunks if c.text] == ["Gre", "en"]
    assert chunks[-1].usage is not None and (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (
        20,
        2,
    )
    sent = wire.requests_to("vllm-chat")[0]
    assert "eu-west-1" in sent.headers["authorization"], "the endpoint's own region signs the call"
    assert sent.json() == {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": "Name a colour."},
        ],
        "stream": True,
        "max_tokens": 10,
        "temperature": 0,
        "stream_options": {"include_usage": True},
    }


async def test_non_streaming_mistral_endpoint_is_invoked_whole_with_system_in_first_inst(
    sagemaker: SageMakerProvider,
    wire: AwsWire,
) -> None:
    answer = [{"generated_text": "Yellow.", "details": {"finish_reason": "eos_token", "generated_tokens": 3}}]
    wire.route("POST", "/endpoints/mistral-7b/invocations", Json(answer))
    chunks = await collect(sagemaker, ask("mistral-7b"))
    assert [c.text for c in chunks] == ["Yellow.", ""]
    sent = wire.requests_to("mistral-7b")[0].json()
    assert sent["inputs"] == "<s>[INST] Be brief.\n\nHi [/INST] Hello!</s>[INST] Name a colour. [/INST]"
    assert sent["stream"] is False


async def test_missing_endpoint_is_unavailable_with_the_fix(sagemaker: SageMakerProvider, wire: AwsWire) -> None:
    missing = Error("ValidationError", "Endpoint qwen-tgi of account 123456789012 not found.", 400)
    wire.route("POST", "/endpoints/qwen-tgi/.*", missing)
    with pytest.raises(ProviderUnavailableError, match=r"Deploy it, or fix its name/region") as caught:
        await collect(sagemaker, ask("qwen-tgi"))
    assert "ml.g5" in caught.value.message
    assert "stopped it, run `genai-chatbot sagemaker start qwen-tgi`" in caught.value.message
    listed = next(m for m in await sagemaker.list_models() if m.name == "qwen-tgi")
    assert not listed.available and listed.unavailable_reason is not None


async def test_container_error_is_a_provider_error_with_the_containers_message(
    sagemaker: SageMakerProvider,
    wire: AwsWire,
) -> None:
    container = Error(
        "ModelError",
        "Received client error (422) from primary with message ...",
        424,
        {
            "OriginalStatusCode": 422,
            "OriginalMessage": "Input validation error: `inputs` must have less than 4096 tokens",
        },
    )
    wire.route("POST", "/endpoints/mistral-7b/invocations", container)
    with pytest.raises(ProviderError, match="must have less than 4096 tokens"):
        await collect(sagemaker, ask("mistral-7b"))


async def test_model_stream_error_mid_stream_comes_after_the_partial_text(
    sagemaker: SageMakerProvider,
    wire: AwsWire,
) -> None:
    frames = [*cut(sse(tgi_token("Half")), 100), exception("ModelStreamError", "CUDA out of memory", ErrorCode="500")]
    wire.route("POST", "/endpoints/qwen-tgi/invocations-response-stream", Stream(frames))
    received: list[str] = []

    async def read() -> None:
        async for chunk in sagemaker.stream(ask("qwen-tgi")):
            received.append(chunk.text)

    with pytest.raises(ProviderError, match="CUDA out of memory"):
        await read()
    assert received == ["Half"]


async def test_consumer_closing_the_stream_early_stops_reading(sagemaker: SageMakerProvider, wire: AwsWire) -> None:
    frames = endless([], lambda i: payload_part(sse(tgi_token(f"t{i} "))))
    wire.route("POST", "/endpoints/qwen-tgi/invocations-response-stream", Stream(frames))
    stream = sagemaker.stream(ask("qwen-tgi"))
    received = [await anext(stream) for _ in range(2)]
    await stream.aclose()  # type: ignore[attr-defined]
    assert [c.text for c in received] == ["t0 ", "t1 "]
    assert await asyncio.to_thread(wire.hung_up.wait, 20), "the connection was not closed"
    assert wire.frames_sent < 100_000


async def test_each_endpoint_is_listed_as_one_model(sagemaker: SageMakerProvider) -> None:
    models = {m.id: m for m in await sagemaker.list_models()}
    assert list(models) == ["sagemaker/qwen-tgi", "sagemaker/llama-3-8b", "sagemaker/mistral-7b", "sagemaker/vllm-chat"]
    assert models["sagemaker/llama-3-8b"].display_name == "Llama 3 8B (JumpStart)"
    assert models["sagemaker/qwen-tgi"].context_window == 8192
    assert not models["sagemaker/mistral-7b"].streaming


def test_registry_offers_sagemaker_only_when_endpoints_are_configured() -> None:
    assert "sagemaker" not in build_registry(Settings(local={"enabled": False})).providers  # type: ignore[arg-type]
    settings = Settings(local={"enabled": False}, sagemaker={"endpoints": [{"name": "x"}]})  # type: ignore[arg-type]
    assert isinstance(build_registry(settings).providers["sagemaker"], SageMakerProvider)
