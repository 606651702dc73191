"""Mistral and Groq, two OpenAI-style vendors added as rows, against the fake OpenAI server.

Each is reached the way a deployment reaches it: `build_registry` from settings, the key in the keys file,
and `<NAME>_BASE_URL` in the environment pointing at the fake server (as a proxy would be configured).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from fake_openai import FakeOpenAI, Recorded, Reply, default_reply
from genai_chatbot.config import Settings
from genai_chatbot.doctor import run_checks
from genai_chatbot.models.errors import ModelNotFoundError, ProviderError, ProviderUnavailableError
from genai_chatbot.models.providers.openai import OpenAIProvider
from genai_chatbot.models.providers.openai_vendors import GROQ, MISTRAL, OpenAIVendor
from genai_chatbot.models.registry import ModelRegistry, build_registry
from genai_chatbot.models.types import ChatRequest, Message
from genai_chatbot.secrets import ProviderKeys
from leak_scan import register_secret

# What each vendor's model list really holds (chat models, and the others its chat API refuses), and the
# models we expect listed, with their context windows.
LISTINGS = {
    "mistral": (
        [
            "mistral-large-latest",
            "mistral-small-latest",
            "codestral-latest",
            "mistral-embed",
            "mistral-ocr-latest",
            "mistral-moderation-latest",
            "open-mistral-nemo",
        ],
        {
            "codestral-latest": 256_000,
            "mistral-large-latest": 131_072,
            "mistral-small-latest": 131_072,
            "open-mistral-nemo": 131_072,
        },
    ),
    "groq": (
        [
            "llama-3.3-70b-versatile",
            "gemma2-9b-it",
            "whisper-large-v3",
            "playai-tts",
            "meta-llama/llama-guard-4-12b",
            "meta-llama/llama-4-scout-17b-16e-instruct",
        ],
        {
            "gemma2-9b-it": 8_192,
            "llama-3.3-70b-versatile": 131_072,
            "meta-llama/llama-4-scout-17b-16e-instruct": 131_072,
        },
    ),
}
VENDORS = [pytest.param(MISTRAL, id="mistral"), pytest.param(GROQ, id="groq")]


def key_of(vendor: OpenAIVendor) -> str:
    return register_secret(f"{vendor.name}-test-key-0123456789abcdef")


def vendor_listing(vendor: OpenAIVendor) -> object:
    def answer(request: Recorded) -> Reply:
        if request.path.endswith("/models"):
            data = [{"id": model, "object": "model", "owned_by": vendor.name} for model in LISTINGS[vendor.name][0]]
            return Reply(json={"object": "list", "data": data})
        return default_reply(request)

    return answer


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for vendor in (MISTRAL, GROQ):
        monkeypatch.delenv(vendor.key_name, raising=False)
        monkeypatch.delenv(vendor.base_url_key, raising=False)
    return Settings(data_dir=tmp_path, local={"enabled": False}, keys_ttl_seconds=0)  # type: ignore[arg-type]


@pytest.fixture
async def registry(settings: Settings) -> AsyncIterator[ModelRegistry]:
    built = build_registry(settings)
    yield built
    await built.aclose()


def serve(vendor: OpenAIVendor, settings: Settings, fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> str:
    """Put the vendor's key in the keys file and its base URL in the environment; return the key."""
    key = key_of(vendor)
    settings.keys_path.write_text(json.dumps({vendor.key_name: key}))
    monkeypatch.setenv(vendor.base_url_key, f"{fake.url}/v1")
    fake.answer = vendor_listing(vendor)  # type: ignore[assignment]
    return key


@pytest.mark.parametrize("vendor", VENDORS)
async def test_the_vendor_lists_its_chat_models_with_their_context_windows(
    vendor: OpenAIVendor, settings: Settings, registry: ModelRegistry, fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = serve(vendor, settings, fake, monkeypatch)
    models = [m for m in await registry.list_models() if m.provider == vendor.name]
    assert {m.name: m.context_window for m in models} == LISTINGS[vendor.name][1]
    assert all(m.available and m.id == f"{vendor.name}/{m.name}" for m in models)
    listed = fake.last("/models")
    assert (listed.path, listed.headers["authorization"]) == ("/v1/models", f"Bearer {key}")


@pytest.mark.parametrize("vendor", VENDORS)
async def test_a_streamed_chat_goes_to_the_vendor_with_its_key(
    vendor: OpenAIVendor, settings: Settings, registry: ModelRegistry, fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = serve(vendor, settings, fake, monkeypatch)
    model = next(iter(LISTINGS[vendor.name][1]))
    provider, info = await registry.resolve(f"{vendor.name}/{model}")
    request = ChatRequest(model=info.name, messages=(Message("user", "Hi"),), max_tokens=20)
    chunks = [c async for c in provider.stream(request)]
    assert "".join(c.text for c in chunks) == "Hello, world"
    assert chunks[-1].finish_reason == "stop"
    sent = fake.last("/chat/completions")
    assert sent.headers["authorization"] == f"Bearer {key}"
    assert (sent.body["model"], sent.body["max_tokens"], sent.body["stream"]) == (model, 20, True)


@pytest.mark.parametrize("vendor", VENDORS)
async def test_without_its_key_the_vendor_lists_nothing_and_says_which_key_to_add(
    vendor: OpenAIVendor, settings: Settings, registry: ModelRegistry, fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(vendor.base_url_key, f"{fake.url}/v1")
    assert [m for m in await registry.list_models() if m.provider == vendor.name] == []
    with pytest.raises(ModelNotFoundError):
        await registry.resolve(f"{vendor.name}/{next(iter(LISTINGS[vendor.name][1]))}")
    provider = registry.redacting_providers[vendor.name]
    with pytest.raises(ProviderUnavailableError, match=f"{vendor.label} needs a key: add {vendor.key_name} to the"):
        await anext(provider.stream(ChatRequest(model="m", messages=(Message("user", "Hi"),))))
    [row] = [r for r in await run_checks(settings) if r.component == vendor.name]
    assert (row.status, row.fix) == ("off", f"add {vendor.key_name} to the keys secret to enable it")
    assert fake.requests == [], "a vendor without a key was called"


@pytest.mark.parametrize("vendor", VENDORS)
async def test_a_key_the_vendor_echoes_back_is_masked_in_the_model_list_and_in_errors(
    vendor: OpenAIVendor, settings: Settings, registry: ModelRegistry, fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = serve(vendor, settings, fake, monkeypatch)
    # Real vendors quote the key they refused; this one in a shape no "sk-" pattern would catch.
    fake.answer = lambda r: Reply(401 if r.path.endswith("/models") else 500, json={"error": {"message": f"bad {key}"}})
    [model] = [m for m in await registry.list_models() if m.provider == vendor.name]
    assert (model.name, model.available) == (vendor.listing_fallback, False)
    assert model.unavailable_reason is not None and vendor.key_name in model.unavailable_reason
    assert key not in model.unavailable_reason
    provider = registry.redacting_providers[vendor.name]
    with pytest.raises(ProviderError) as caught:
        await anext(provider.stream(ChatRequest(model="m", messages=(Message("user", "Hi"),))))
    assert key not in caught.value.message and "***" in caught.value.message
    assert key not in repr(provider) and key not in repr(await registry.keys.current())


def test_a_vendor_provider_is_named_and_enabled_by_its_row() -> None:
    provider = OpenAIProvider(ProviderKeys([]), vendor=MISTRAL)
    assert (provider.name, provider.enabling_keys) == ("mistral", ("MISTRAL_API_KEY",))
    assert MISTRAL.base_url_key == "MISTRAL_BASE_URL" and GROQ.base_url_key == "GROQ_BASE_URL"
