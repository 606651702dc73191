"""What Bedrock's Converse API needs to know about each model, kept apart from the calls themselves.

The model list is built from ListFoundationModels and the system-defined inference profiles. Per-family
quirks come from AWS's "Converse API supported models and model features" table: Amazon Titan text and
Mistral AI instruct models (Mistral 7B, Mixtral 8x7B) take no system prompt, AI21 Jurassic-2 has no
ConverseStream, and Claude 4 models accept only one of temperature and top_p.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from genai_chatbot.models.providers.bedrock_tools import has_tool_parts, tool_blocks, tool_config
from genai_chatbot.models.types import ChatRequest, ImagePart, Message, Usage

_NO_SYSTEM_PROMPT = ("amazon.titan-text", "mistral.mistral-7b-instruct", "mistral.mixtral-8x7b-instruct", "ai21.j2-")
NO_STREAMING = ("ai21.j2-",)  # ConverseStream unsupported; ListFoundationModels says so for the others
_CLAUDE_4 = re.compile(r"^anthropic\.claude-(?:[a-z]+-)*4(?:[-.:]|$)")
# `us.anthropic.…`, `eu.…`, `apac.…`, `global.…`, `us-gov.…`: the region part of a system profile id.
_PROFILE_PREFIX = re.compile(r"^[a-z]{2,6}(?:-[a-z]+)?\.(?=[a-z0-9-]+\.)")
# Bedrock does not report context windows; these are the documented sizes, first match wins.
_CONTEXT_WINDOWS = (
    ("anthropic.claude", 200_000),
    ("amazon.nova-micro", 128_000),
    ("amazon.nova", 300_000),
    ("amazon.titan-text-premier", 32_000),
    ("meta.llama3-1", 128_000),
    ("meta.llama3-2", 128_000),
    ("meta.llama3-3", 128_000),
    ("meta.llama4", 128_000),
    ("mistral.mistral-large-2407", 128_000),
    ("mistral.", 32_000),
    ("cohere.command-r", 128_000),
    ("ai21.jamba", 256_000),
)
_DEFAULT_CONTEXT_WINDOW = 8_000


@dataclass(frozen=True, slots=True)
class BedrockModel:
    """One invocable model: `name` is what Converse takes (base id or profile id)."""

    name: str
    base_id: str
    display_name: str
    streaming: bool = True
    #: Reads images (Bedrock lists IMAGE among its input modalities): sent as Converse image blocks.
    images: bool = False
    #: An embedding model (Titan Text Embeddings, Cohere Embed), called through InvokeModel.
    embeddings: bool = False

    @property
    def context_window(self) -> int:
        return next(
            (size for prefix, size in _CONTEXT_WINDOWS if self.base_id.startswith(prefix)), _DEFAULT_CONTEXT_WINDOW
        )


def base_model_id(name: str) -> str:
    """The foundation model id behind a model or system inference-profile id."""
    return _PROFILE_PREFIX.sub("", name, count=1)


def catalog_from(summaries: list[dict[str, Any]], profiles: list[dict[str, Any]]) -> list[BedrockModel]:
    """The chat models among Bedrock's summaries: active, text in and out, not embeddings, invocable.

    A model invocable on demand is offered under its own id; one served only through inference profiles
    is offered under each system profile that routes to it; provisioned-only variants are left out.
    """
    profiles_by_model: dict[str, list[dict[str, Any]]] = {}
    for profile in profiles:
        if profile.get("status", "ACTIVE") != "ACTIVE":
            continue
        for routed in profile.get("models", []):
            model_id = str(routed.get("modelArn", "")).rpartition("/")[2]
            profiles_by_model.setdefault(model_id, []).append(profile)
    models: list[BedrockModel] = []
    for summary in summaries:
        outputs, inputs = summary.get("outputModalities", []), summary.get("inputModalities", [])
        if summary.get("modelLifecycle", {}).get("status", "ACTIVE") != "ACTIVE":
            continue
        if "TEXT" not in outputs or "EMBEDDING" in outputs or "TEXT" not in inputs:
            continue
        model_id = summary["modelId"]
        display = f"{summary.get('providerName', '')} {summary.get('modelName', model_id)}".strip()
        streaming = bool(summary.get("responseStreamingSupported", True)) and not model_id.startswith(NO_STREAMING)
        types = summary.get("inferenceTypesSupported", [])
        images = "IMAGE" in inputs
        if "ON_DEMAND" in types:
            models.append(BedrockModel(model_id, model_id, display, streaming, images))
        elif "INFERENCE_PROFILE" in types:
            models.extend(
                BedrockModel(
                    p["inferenceProfileId"], model_id, p.get("inferenceProfileName") or display, streaming, images
                )
                for p in profiles_by_model.get(model_id, [])
            )
    return sorted(models, key=lambda m: m.name)


def converse_arguments(model: BedrockModel, request: ChatRequest) -> dict[str, Any]:
    """The keyword arguments of `converse`/`converse_stream` for `request`, with the family quirks applied."""
    system_parts = [request.system] if request.system else []
    turns: list[dict[str, Any]] = []
    history_has_tools = False
    for message in request.messages:
        if message.role == "system":
            system_parts.append(message.content)
            continue
        role = "user" if message.role == "tool" else message.role  # tool results are user turns to Converse
        if has_tool_parts(message):
            history_has_tools = True
            blocks = tool_blocks(message)
        else:
            blocks = content_blocks(message)
        if turns and turns[-1]["role"] == role:  # Converse wants user and assistant to alternate
            _append(turns[-1]["content"], blocks)
        else:
            turns.append({"role": role, "content": blocks})
    system = "\n\n".join(system_parts)
    if system and model.base_id.startswith(_NO_SYSTEM_PROMPT):
        first_user = next((turn for turn in turns if turn["role"] == "user"), None)
        if first_user is None:
            turns.insert(0, {"role": "user", "content": [{"text": system}]})
        else:
            first_user["content"] = _append([{"text": system}], first_user["content"])
        system = ""
    arguments: dict[str, Any] = {"modelId": model.name, "messages": turns}
    tools = tool_config(request, history_has_tools)
    if tools is not None:
        arguments["toolConfig"] = tools
    if system:
        arguments["system"] = [{"text": system}]
    config: dict[str, Any] = {}
    if request.max_tokens is not None:
        config["maxTokens"] = request.max_tokens
    if request.temperature is not None:
        config["temperature"] = request.temperature
    if request.top_p is not None and not (request.temperature is not None and _CLAUDE_4.match(model.base_id)):
        config["topP"] = request.top_p
    if request.stop:
        config["stopSequences"] = list(request.stop)
    if config:
        arguments["inferenceConfig"] = config
    return arguments


def content_blocks(message: Message) -> list[dict[str, Any]]:
    """`message`'s Converse content: one text block, or its parts in order, images as image blocks."""
    if not message.parts:
        return [{"text": message.content}]
    blocks: list[dict[str, Any]] = []
    for part in message.parts:
        if isinstance(part, ImagePart):
            image_format = part.media_type.partition("/")[2]  # png, jpeg, gif, webp: Converse's own names
            blocks.append({"image": {"format": image_format, "source": {"bytes": part.data}}})
        elif part.text:
            blocks.append({"text": part.text})
    return blocks or [{"text": message.content}]


def _append(blocks: list[dict[str, Any]], more: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`more` appended to `blocks` in place, two texts that meet joined into one paragraph-separated text."""
    if blocks and more and "text" in blocks[-1] and "text" in more[0]:
        blocks[-1] = {"text": f"{blocks[-1]['text']}\n\n{more[0]['text']}"}
        more = more[1:]
    blocks.extend(more)
    return blocks


def usage_from(usage: dict[str, Any] | None) -> Usage | None:
    if not usage:
        return None
    return Usage(int(usage.get("inputTokens", 0)), int(usage.get("outputTokens", 0)))
