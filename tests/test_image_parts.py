"""Images in `/v1` content parts: decoded at the API, forwarded to models that take them, refused elsewhere.

A real 1x1 PNG goes through a real server to the fake OpenAI server (as an `image_url` data URL) and to
the local AWS wire server (as a Converse image block); remote URLs are fetched only when the settings say
so, never from a private address unless allowed, never through a redirect, never past the size limit.
"""

from __future__ import annotations

import base64
import json
import struct
import zlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from starlette.responses import Response

from aws_wire import (  # noqa: F401  (wire_fixture provides the `wire` fixture)
    AwsWire,
    Json,
    Stream,
    converse_events,
    foundation_models,
    model_availability,
    wire_fixture,
)
from conftest import LiveServer, make_service
from fake_http import FakeAPI, serving
from fake_openai import FakeOpenAI
from genai_chatbot.api.app import create_app
from genai_chatbot.config import Settings
from genai_chatbot.models.provider import Provider
from genai_chatbot.models.providers.bedrock import BedrockProvider
from genai_chatbot.models.providers.openai import OpenAIProvider
from genai_chatbot.models.types import ImagePart, Message, TextPart
from genai_chatbot.secrets import FileKeySource, ProviderKeys
from scripted import ScriptedProvider
from test_bedrock import HAIKU, REGION, TITAN, summary


def tiny_png() -> bytes:
    """A valid 1x1 red PNG, built here so the bytes are known exactly."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


PNG = tiny_png()
DATA_URL = "data:image/png;base64," + base64.b64encode(PNG).decode()


def ask(*images: str, text: str = "What is in this picture?") -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = [{"type": "text", "text": text}]
    parts.extend({"type": "image_url", "image_url": {"url": url, "detail": "low"}} for url in images)
    return [{"role": "user", "content": parts}]


Serve = Callable[..., AbstractContextManager[str]]


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def serve(tmp_path: Path, fake: FakeOpenAI) -> Serve:
    """Start the server with these settings (and these extra providers), OpenAI at the fake server."""

    @contextmanager
    def start(*extra: Provider, **settings: Any) -> Iterator[str]:
        keys_file = tmp_path / "keys.json"
        keys_file.write_text(json.dumps({"OPENAI_API_KEY": "sk-image-test", "OPENAI_BASE_URL": f"{fake.url}/v1"}))
        openai_provider = OpenAIProvider(ProviderKeys([FileKeySource(keys_file)], ttl_seconds=0), timeout_seconds=10)
        config = Settings(data_dir=tmp_path / "data", **settings)
        service = make_service(config, openai_provider, *extra)
        with LiveServer(create_app(config, service=service, close_service=True)) as live:
            yield live.url

    return start


@pytest.fixture
def images() -> Iterator[FakeAPI]:
    """A web server with an image, a redirect to it, and an image over the limit used below."""
    with serving() as api:
        api.on("GET", "/cat.png", lambda _: Response(PNG, media_type="image/png"))
        api.on("GET", "/moved.png", lambda _: Response(status_code=302, headers={"location": f"{api.url}/cat.png"}))
        api.on("GET", "/big.png", lambda _: Response(PNG + b"\x00" * 4096, media_type="image/png"))
        yield api


def chat(url: str, model: str, messages: list[dict[str, Any]]) -> httpx.Response:
    with httpx.Client(base_url=url, timeout=30) as client:
        return client.post("/v1/chat/completions", json={"model": model, "messages": messages})


def error_of(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    message: str = response.json()["error"]["message"]
    return message


def test_a_png_data_url_reaches_openai_as_an_image_url_part_in_order(serve: Serve, fake: FakeOpenAI) -> None:
    with serve() as url, openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0) as sdk:
        reply = sdk.chat.completions.create(model="openai/gpt-4o", messages=ask(DATA_URL))  # type: ignore[arg-type]
        assert reply.choices[0].message.content == "Hello, world"
        streamed = sdk.chat.completions.create(model="openai/gpt-4o", messages=ask(DATA_URL), stream=True)  # type: ignore[arg-type]
        assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == "Hello, world"
    for sent in [r for r in fake.requests if r.path.endswith("/chat/completions")]:
        assert sent.body["messages"][-1] == {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in this picture?"},
                {"type": "image_url", "image_url": {"url": DATA_URL, "detail": "low"}},
            ],
        }


def test_text_parts_stay_the_array_the_client_sent_upstream(serve: Serve, fake: FakeOpenAI) -> None:
    with serve() as url:
        assert chat(url, "openai/gpt-4o", ask(text="Hi")).status_code == 200
    sent = fake.last("/chat/completions").body["messages"][-1]
    assert sent == {"role": "user", "content": [{"type": "text", "text": "Hi"}]}


def test_bedrock_claude_gets_the_image_as_a_converse_image_block(serve: Serve, wire: AwsWire) -> None:
    vision = {**summary(HAIKU), "inputModalities": ["TEXT", "IMAGE"]}
    wire.route("GET", "/foundation-models", foundation_models([vision, summary(TITAN)]))
    wire.route("GET", "/inference-profiles", Json({"inferenceProfileSummaries": []}))
    wire.route("GET", "/foundation-model-availability/.+", model_availability)
    wire.route("POST", r"/model/.+/converse-stream", Stream(converse_events("A red ", "dot.")))
    with serve(BedrockProvider(Settings(bedrock_region=REGION))) as url:
        with httpx.Client(base_url=url, timeout=30) as client:
            models = {m["id"]: m for m in client.get("/api/models").json()["models"]}
        assert models[f"bedrock/{HAIKU}"]["input_modalities"] == ["text", "image"]
        assert models[f"bedrock/{TITAN}"]["input_modalities"] == ["text"]
        answer = chat(url, f"bedrock/{HAIKU}", ask(DATA_URL))
        assert answer.json()["choices"][0]["message"]["content"] == "A red dot."
        refused = error_of(chat(url, f"bedrock/{TITAN}", ask(DATA_URL)), 400)
        assert f"bedrock/{TITAN}" in refused and "images" in refused
    [sent] = wire.requests_to("converse-stream")
    [message] = sent.json()["messages"]
    text, image = message["content"]
    assert text == {"text": "What is in this picture?"}
    assert image["image"]["format"] == "png"
    assert base64.b64decode(image["image"]["source"]["bytes"]) == PNG


def test_a_model_that_takes_no_images_is_a_400_naming_it_and_nothing_is_sent(serve: Serve, fake: FakeOpenAI) -> None:
    with serve() as url:
        message = error_of(chat(url, "openai/o3-mini", ask(DATA_URL)), 400)
    assert "openai/o3-mini" in message and "does not take images" in message
    assert not [r for r in fake.requests if r.path.endswith("/chat/completions")]


def test_bad_data_urls_and_too_many_or_too_large_images_are_refused_with_the_setting(serve: Serve) -> None:
    with serve(limits={"max_image_bytes": 1024, "max_images": 1}) as url:
        assert "limits.max_images" in error_of(chat(url, "openai/gpt-4o", ask(DATA_URL, DATA_URL)), 422)
        large = "data:image/png;base64," + base64.b64encode(PNG + b"\x00" * 2048).decode()
        assert "limits.max_image_bytes" in error_of(chat(url, "openai/gpt-4o", ask(large)), 422)
        text = "data:image/png;base64," + base64.b64encode(b"just some text").decode()
        assert "not a PNG, JPEG, GIF or WebP" in error_of(chat(url, "openai/gpt-4o", ask(text)), 400)
        assert "not valid base64" in error_of(chat(url, "openai/gpt-4o", ask("data:image/png;base64,%%%")), 400)
        assert "data URL" in error_of(chat(url, "openai/gpt-4o", ask("file:///etc/passwd")), 400)
        system = [{**ask(DATA_URL)[0], "role": "system"}]
        assert "only user messages may hold images" in error_of(chat(url, "openai/gpt-4o", system), 400)


def test_remote_image_urls_are_refused_unless_fetch_image_urls_is_on(serve: Serve, images: FakeAPI) -> None:
    with serve() as url:
        message = error_of(chat(url, "openai/gpt-4o", ask(f"{images.url}/cat.png")), 400)
    assert "fetch_image_urls" in message and "data URL" in message
    assert not images.received


def test_fetching_refuses_loopback_and_private_hosts_without_connecting(serve: Serve, images: FakeAPI) -> None:
    port = images.url.rpartition(":")[2]
    with serve(fetch_image_urls=True) as url:
        for host in ("127.0.0.1", "localhost", "[::1]", "10.0.0.1", "169.254.169.254"):
            message = error_of(chat(url, "openai/gpt-4o", ask(f"http://{host}:{port}/cat.png")), 400)
            assert "private" in message and "fetch_image_urls_allow_private" in message, host
    assert not images.received


def test_a_fetched_image_is_forwarded_as_data_and_redirects_and_oversized_images_are_refused(
    serve: Serve, images: FakeAPI, fake: FakeOpenAI
) -> None:
    settings = {"fetch_image_urls": True, "fetch_image_urls_allow_private": True, "limits": {"max_image_bytes": 1024}}
    with serve(**settings) as url:
        assert chat(url, "openai/gpt-4o", ask(f"{images.url}/cat.png")).status_code == 200
        redirected = error_of(chat(url, "openai/gpt-4o", ask(f"{images.url}/moved.png")), 400)
        assert "redirects" in redirected
        assert "limits.max_image_bytes" in error_of(chat(url, "openai/gpt-4o", ask(f"{images.url}/big.png")), 422)
    [sent] = [r for r in fake.requests if r.path.endswith("/chat/completions")]
    assert sent.body["messages"][-1]["content"][1]["image_url"]["url"] == DATA_URL
    assert [r.path for r in images.received] == ["/cat.png", "/moved.png", "/big.png"], "the redirect not followed"


async def test_an_image_counts_toward_the_context_window_when_histories_are_trimmed() -> None:
    provider = ScriptedProvider([])
    plain = Message("user", "Look")
    with_image = Message("user", "Look", (TextPart("Look"), ImagePart("image/png", PNG)))
    counts = await provider.count_tokens("echo", None, [plain, with_image])
    assert counts[2] - counts[1] == 1600
