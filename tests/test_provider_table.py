"""The registry is built from a table of rows, and installed packages add rows through entry points.

The plugin tests install nothing: they write a package and its `.dist-info` (with `entry_points.txt`) into
a temporary folder and put it on `sys.path`, which is all `importlib.metadata` reads.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from fake_openai import FakeOpenAI
from genai_chatbot.config import Settings
from genai_chatbot.models.provider_spec import ENTRY_POINT_GROUP, BuildContext
from genai_chatbot.models.providers.table import BUILTIN_PROVIDERS
from genai_chatbot.models.registry import build_registry
from genai_chatbot.models.types import ChatRequest, Message
from genai_chatbot.secrets import ProviderKeys

SCRIPTED_PLUGIN = """
from genai_chatbot.models.provider import Provider
from genai_chatbot.models.provider_spec import ProviderSpec
from genai_chatbot.models.types import ChatChunk, ModelInfo


class AcmeProvider(Provider):
    name = "acme"
    enabling_keys = ("ACME_API_KEY",)

    async def list_models(self):
        return [ModelInfo(id="acme/rocket-1", provider="acme", name="rocket-1", display_name="Rocket",
                          context_window=4096)]

    async def stream(self, request):
        yield ChatChunk(text="Beep.")
        yield ChatChunk(finish_reason="stop")


SPEC = ProviderSpec("acme", ("ACME_API_KEY",), lambda ctx: [AcmeProvider()], "Acme's rockets")
NOT_A_SPEC = 42
TAKEN = ProviderSpec("openai", (), lambda ctx: [AcmeProvider()])
"""


def install_plugin(folder: Path, monkeypatch: pytest.MonkeyPatch, package: str, source: str, points: str) -> None:
    """A package `package` (one module of `source`) declaring `points` in the providers group, on sys.path."""
    (folder / f"{package}.py").write_text(textwrap.dedent(source))
    info = folder / f"{package}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{textwrap.dedent(points)}")
    monkeypatch.syspath_prepend(str(folder))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", local={"enabled": False})  # type: ignore[arg-type]


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


async def test_a_provider_registered_by_an_entry_point_is_listed_and_answers(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_plugin(tmp_path, monkeypatch, "acme_chatbot", SCRIPTED_PLUGIN, "acme = acme_chatbot:SPEC\n")
    registry = build_registry(settings)
    try:
        assert "acme" in registry.providers
        assert "acme/rocket-1" in [m.id for m in await registry.list_models()]
        provider, info = await registry.resolve("acme/rocket-1")
        result = await provider.complete(ChatRequest(model=info.name, messages=(Message("user", "Hi"),)))
        assert result.text == "Beep."
        assert await registry.problems() == []
    finally:
        await registry.aclose()


async def test_an_openai_style_vendor_can_be_a_row_in_a_separate_package(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake: FakeOpenAI
) -> None:
    source = f"""
        from genai_chatbot.models.providers.openai import openai_style
        from genai_chatbot.models.providers.openai_vendors import OpenAIVendor, excluding

        SPEC = openai_style(OpenAIVendor(name="tiny", label="Tiny AI", base_url="{fake.url}/v1",
                                         key_name="TINY_API_KEY", is_chat_model=excluding("whisper", "embedding"),
                                         context_windows=(("gpt-4o", 64_000),)))
    """
    install_plugin(tmp_path, monkeypatch, "tiny_vendor", source, "tiny = tiny_vendor:SPEC\n")
    monkeypatch.delenv("TINY_API_KEY", raising=False)
    settings.keys_path.parent.mkdir(parents=True)
    settings.keys_path.write_text(json.dumps({"TINY_API_KEY": "tiny-test-key-0123456789"}))
    registry = build_registry(settings)
    try:
        models = {m.name: m.context_window for m in await registry.list_models() if m.provider == "tiny"}
        assert models["gpt-4o"] == 64_000 and "whisper-1" not in models and "text-embedding-3-small" not in models
        assert fake.last("/models").headers["authorization"] == "Bearer tiny-test-key-0123456789"
    finally:
        await registry.aclose()


async def test_a_broken_plugin_is_left_out_and_named_in_the_problems(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    points = """
        missing = acme_broken:NO_SUCH_NAME
        number = acme_broken:NOT_A_SPEC
        taken = acme_broken:TAKEN
    """
    install_plugin(tmp_path, monkeypatch, "acme_broken", SCRIPTED_PLUGIN, points)
    registry = build_registry(settings)
    try:
        problems = await registry.problems()
        assert registry.providers["openai"].__class__.__name__ == "OpenAIProvider"
        assert len(problems) == 3, problems
        missing, number, taken = problems
        assert (
            "Provider plugin 'missing' (acme_broken:NO_SUCH_NAME of package 'acme_broken') cannot be loaded" in missing
        )
        assert "is not a ProviderSpec but of type int" in number
        assert "names provider 'openai', which is taken" in taken
        assert all("Upgrade or uninstall the package" in p for p in problems)
    finally:
        await registry.aclose()


def test_each_key_enabled_row_builds_the_provider_it_declares(settings: Settings) -> None:
    """What a row declares (shown by the docs and `doctor`) is what its provider says of itself."""
    ctx = BuildContext(settings, ProviderKeys([]))
    keyed = [spec for spec in BUILTIN_PROVIDERS if spec.enabling_keys]
    assert {spec.name for spec in keyed} >= {"openai", "mistral", "groq", "cohere", "ai21", "azure_openai"}
    for spec in keyed:
        [provider] = spec.build(ctx)
        assert (provider.name, provider.enabling_keys) == (spec.name, spec.enabling_keys)
    assert len({spec.name for spec in BUILTIN_PROVIDERS}) == len(BUILTIN_PROVIDERS)


def test_rows_turned_on_by_settings_build_nothing_when_their_settings_are_unset(settings: Settings) -> None:
    ctx = BuildContext(settings, ProviderKeys([]))
    assert {spec.name for spec in BUILTIN_PROVIDERS if not spec.build(ctx)} == {
        "local",
        "langchain",
        "openai_compatible",
        "bedrock",
        "sagemaker",
    }
