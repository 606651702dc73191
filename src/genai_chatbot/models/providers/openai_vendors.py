"""Vendors whose APIs speak OpenAI's chat protocol: each is data, served by `OpenAIProvider`.

A vendor says where its API is, which key of the keys secret holds its key, which of the ids its model list
returns are chat models, and how long their context windows are (OpenAI-style model lists do not say).
Adding one means an `OpenAIVendor` here and one `openai_style(...)` row in `table.py`; see
docs/adding-a-provider.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

#: Context window of a model no table entry matches: small enough to be safe for any current chat model.
DEFAULT_CONTEXT_WINDOW = 8192


def every_model(_: str) -> bool:
    """The filter of a vendor whose model list holds only chat models."""
    return True


def no_model(_: str) -> bool:
    """The filter of a vendor whose embedding models are not served here."""
    return False


def excluding(*words: str) -> Callable[[str], bool]:
    """A filter that keeps every model whose id contains none of `words` (embeddings, speech, moderation…)."""

    def is_chat_model(model: str) -> bool:
        return not any(word in model for word in words)

    return is_chat_model


@dataclass(frozen=True, slots=True)
class OpenAIVendor:
    """One OpenAI-style API: everything `OpenAIProvider` needs to serve it.

    The base URL can be overridden by `<NAME>_BASE_URL` in the keys secret or the environment (e.g.
    `MISTRAL_BASE_URL`, for a proxy or a regional endpoint), like the official SDKs' `OPENAI_BASE_URL`.
    """

    #: The provider name, the first part of its model ids (`mistral/mistral-large-latest`).
    name: str
    #: How people call the vendor in messages ("Mistral AI needs a key: ...").
    label: str
    #: The API's base URL, up to and including the version (`.../v1`), without `/chat/completions`.
    base_url: str
    #: The key's name in the keys secret; its presence turns the provider on.
    key_name: str
    #: Which ids of the model list are chat models.
    is_chat_model: Callable[[str], bool] = every_model
    #: Which ids of the model list are embedding models, served by `/v1/embeddings` (none by default).
    is_embedding_model: Callable[[str], bool] = no_model
    #: (model id prefix, context window in tokens), longest matching prefix first.
    context_windows: tuple[tuple[str, int], ...] = ()
    default_context_window: int = DEFAULT_CONTEXT_WINDOW
    #: The model listed, unavailable with the reason, when the model list cannot be fetched.
    listing_fallback: str = ""
    #: The request field that bounds the reply (OpenAI's newer models refuse `max_tokens`).
    max_tokens_param: str = "max_tokens"
    #: The key naming an organisation to send as `OpenAI-Organization` (OpenAI only).
    organization_key: str | None = None

    @property
    def base_url_key(self) -> str:
        """The key (or environment variable) that overrides `base_url`: `MISTRAL_API_KEY` -> `MISTRAL_BASE_URL`."""
        return self.key_name.removesuffix("_API_KEY") + "_BASE_URL"

    def context_window(self, model: str) -> int:
        """The context window of `model`: the first table entry it starts with, else the default."""
        for prefix, window in self.context_windows:
            if model.startswith(prefix):
                return window
        return self.default_context_window


def _openai_chat_model(model: str) -> bool:
    # "instruct" models answer only the legacy completions API.
    not_chat = ("embedding", "tts", "whisper", "dall-e", "moderation", "realtime", "audio", "transcribe", "image")
    chat_prefixes = ("gpt-", "o1", "o3", "o4", "chatgpt-")
    return model.startswith(chat_prefixes) and not any(word in model for word in (*not_chat, "instruct"))


OPENAI = OpenAIVendor(
    name="openai",
    label="OpenAI",
    base_url="https://api.openai.com/v1",
    key_name="OPENAI_API_KEY",
    is_chat_model=_openai_chat_model,
    # Longest matching prefix first: "gpt-4o" and "gpt-4.1" must win over "gpt-4".
    context_windows=(
        ("gpt-4.1", 1_047_576),
        ("gpt-4o", 128_000),
        ("chatgpt-4o", 128_000),
        ("gpt-4-turbo", 128_000),
        ("gpt-4-32k", 32_768),
        ("gpt-4", 8_192),
        ("gpt-3.5-turbo", 16_385),
        ("gpt-5", 400_000),
        ("o1-mini", 128_000),
        ("o1", 200_000),
        ("o3", 200_000),
        ("o4", 200_000),
    ),
    listing_fallback="gpt-4o",
    max_tokens_param="max_completion_tokens",
    organization_key="OPENAI_ORG_ID",
    is_embedding_model=lambda model: model.startswith("text-embedding-"),
)

# Mistral's model list (https://docs.mistral.ai/getting-started/models/) also holds embedding, moderation
# and OCR models, which its chat API refuses.
MISTRAL = OpenAIVendor(
    name="mistral",
    label="Mistral AI",
    base_url="https://api.mistral.ai/v1",
    key_name="MISTRAL_API_KEY",
    is_chat_model=excluding("embed", "moderation", "ocr"),
    context_windows=(
        ("codestral", 256_000),
        ("magistral", 40_000),
        ("mistral-saba", 32_768),
        ("mistral-large", 131_072),
        ("mistral-medium", 131_072),
        ("mistral-small", 131_072),
        ("open-mistral-nemo", 131_072),
        ("ministral", 131_072),
        ("pixtral", 131_072),
        ("devstral", 131_072),
    ),
    default_context_window=32_768,
    listing_fallback="mistral-large-latest",
)

# Groq's model list (https://console.groq.com/docs/models) also holds speech-to-text, text-to-speech and
# safety classifiers; most chat models have a 128K window, the older `*-8192` ones say theirs in the id.
GROQ = OpenAIVendor(
    name="groq",
    label="Groq",
    base_url="https://api.groq.com/openai/v1",
    key_name="GROQ_API_KEY",
    is_chat_model=excluding("whisper", "tts", "guard"),
    context_windows=(
        ("llama3-70b-8192", 8_192),
        ("llama3-8b-8192", 8_192),
        ("gemma2-9b-it", 8_192),
        ("mistral-saba", 32_768),
        ("llama-3", 131_072),
        ("meta-llama/llama-4", 131_072),
        ("deepseek-r1-distill", 131_072),
        ("qwen", 131_072),
        ("moonshotai/kimi-k2", 131_072),
        ("openai/gpt-oss", 131_072),
        ("compound", 131_072),
    ),
    listing_fallback="llama-3.3-70b-versatile",
)
