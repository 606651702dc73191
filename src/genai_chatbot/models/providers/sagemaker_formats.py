"""The payloads SageMaker chat containers expect, and how to read their answers, whole or streamed.

A container's own chat template is not available to us, so prompts are built by a fixed, documented
template per format:

- `tgi`: ChatML (`<|im_start|>role\\n…<|im_end|>`), the template of Qwen, SmolLM, Hermes and many
  other Hugging Face chat models. For a model with another template use `openai-messages`, where TGI
  applies the model's own template.
- `jumpstart-llama`: the Llama 3 chat template (`<|start_header_id|>role<|end_header_id|>…<|eot_id|>`);
  JumpStart needs the EULA accepted on every call (`CustomAttributes: accept_eula=true`).
- `mistral-instruct`: `<s>[INST] … [/INST] answer</s>`; Mistral instruct has no system role, so the system
  prompt opens the first user turn.
- `openai-messages`: an OpenAI chat-completions body (LMI, vLLM, TGI's Messages API), streamed as SSE.

TGI-style bodies are `{"inputs", "parameters", "stream"}`; TGI streams `data:{"token": {"text": …}}` events.
Stream bytes arrive in PayloadParts cut at arbitrary points; the shared SSE decoder re-assembles them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from genai_chatbot.config import SageMakerFormat
from genai_chatbot.models.errors import ProviderError
from genai_chatbot.models.providers._finish import finish_reason as _finish
from genai_chatbot.models.providers._sse import ServerSentEvent, SSEDecoder
from genai_chatbot.models.types import ChatRequest, FinishReason, Message, Usage

DEFAULT_MAX_NEW_TOKENS = 512
EULA_ATTRIBUTE = "accept_eula=true"


@dataclass(frozen=True, slots=True)
class Payload:
    """One invocation: the JSON body and the `CustomAttributes` header, if the format needs one."""

    body: dict[str, Any]
    custom_attributes: str | None = None


def _turns(request: ChatRequest) -> tuple[str, list[Message]]:
    """The system prompt (including any system-role messages) and the user/assistant turns."""
    system = [request.system] if request.system else []
    system.extend(m.content for m in request.messages if m.role == "system")
    return "\n\n".join(system), [m for m in request.messages if m.role != "system"]


def chatml_prompt(system: str, turns: Sequence[Message]) -> str:
    head = [Message("system", system)] if system else []
    body = "".join(f"<|im_start|>{m.role}\n{m.content}<|im_end|>\n" for m in [*head, *turns])
    return body + "<|im_start|>assistant\n"


def llama3_prompt(system: str, turns: Sequence[Message]) -> str:
    head = [Message("system", system)] if system else []
    body = "".join(f"<|start_header_id|>{m.role}<|end_header_id|>\n\n{m.content}<|eot_id|>" for m in [*head, *turns])
    return f"<|begin_of_text|>{body}<|start_header_id|>assistant<|end_header_id|>\n\n"


def mistral_prompt(system: str, turns: Sequence[Message]) -> str:
    parts = ["<s>"]
    pending_system = system
    for message in turns:
        if message.role == "user":
            content = f"{pending_system}\n\n{message.content}" if pending_system else message.content
            pending_system = ""
            parts.append(f"[INST] {content} [/INST]")
        else:
            parts.append(f" {message.content}</s>")
    return "".join(parts)


_TEMPLATES: dict[str, tuple[Callable[[str, Sequence[Message]], str], tuple[str, ...]]] = {
    "tgi": (chatml_prompt, ("<|im_end|>",)),
    "jumpstart-llama": (llama3_prompt, ("<|eot_id|>",)),
    "mistral-instruct": (mistral_prompt, ()),
}


def build_payload(fmt: SageMakerFormat, request: ChatRequest, stream: bool) -> Payload:
    """The body (and header) for `request` in format `fmt`."""
    system, turns = _turns(request)
    if fmt == "openai-messages":
        messages = [{"role": "system", "content": system}] if system else []
        messages.extend({"role": m.role, "content": m.content} for m in turns)
        body: dict[str, Any] = {"messages": messages, "stream": stream}
        if request.max_tokens is not None:
            body["max_tokens"] = request.max_tokens
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.top_p is not None:
            body["top_p"] = request.top_p
        if request.stop:
            body["stop"] = list(request.stop)
        if stream:
            body["stream_options"] = {"include_usage": True}
        return Payload(body)
    template, template_stops = _TEMPLATES[fmt]
    parameters: dict[str, Any] = {
        "max_new_tokens": request.max_tokens or DEFAULT_MAX_NEW_TOKENS,
        "stop": [*template_stops, *request.stop],
        "details": True,
    }
    # TGI rejects temperature 0 and top_p outside (0, 1): greedy decoding is do_sample=false instead.
    if request.temperature:
        parameters["do_sample"] = True
        parameters["temperature"] = request.temperature
        if request.top_p is not None and 0 < request.top_p < 1:
            parameters["top_p"] = request.top_p
    else:
        parameters["do_sample"] = False
    attributes = EULA_ATTRIBUTE if fmt == "jumpstart-llama" else None
    return Payload({"inputs": template(system, turns), "parameters": parameters, "stream": stream}, attributes)


def _raise_if_error(data: Any) -> None:
    if isinstance(data, dict) and "error" in data:
        error = data["error"]
        message = error.get("message", error) if isinstance(error, dict) else error
        raise ProviderError(f"The endpoint's container reported an error: {message}")
    if isinstance(data, dict) and data.get("object") == "error":  # vLLM's error shape
        raise ProviderError(f"The endpoint's container reported an error: {data.get('message')}")


def parse_whole(fmt: SageMakerFormat, raw: bytes) -> tuple[str, FinishReason, Usage | None]:
    """Text, finish reason and usage of a non-streamed answer."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ProviderError(f"The endpoint answered with something that is not JSON: {raw[:200]!r}") from None
    _raise_if_error(data)
    if fmt == "openai-messages":
        choice = data["choices"][0]
        usage = data.get("usage") or {}
        counted = Usage(int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))) if usage else None
        return choice["message"].get("content") or "", _finish(choice.get("finish_reason")), counted
    item = data[0] if isinstance(data, list) else data
    details = item.get("details") or {}
    generated = details.get("generated_tokens")
    usage_tgi = Usage(len(details.get("prefill") or ()), int(generated)) if generated is not None else None
    return item.get("generated_text", ""), _finish(details.get("finish_reason")), usage_tgi


class StreamDecoder:
    """Turns the bytes of a streamed answer into text pieces, then a finish reason and usage."""

    def __init__(self, fmt: SageMakerFormat) -> None:
        self._openai = fmt == "openai-messages"
        self._events = SSEDecoder()
        self.finish_reason: FinishReason = "stop"
        self.usage: Usage | None = None

    def feed(self, data: bytes) -> list[str]:
        """Text pieces of every event completed by `data`; a partial event waits for the next part."""
        return [text for event in self._events.feed(data) if (text := self._event(event))]

    def close(self) -> list[str]:
        """Text of a last event the stream did not end with an empty line."""
        return [text for event in self._events.flush() if (text := self._event(event))]

    def _event(self, event: ServerSentEvent) -> str:
        payload = event.data.strip()
        if not payload or payload == "[DONE]":
            return ""
        try:
            data = json.loads(payload)
        except ValueError:
            raise ProviderError(f"The endpoint streamed a line that is not JSON: {payload[:200]!r}") from None
        _raise_if_error(data)
        return self._openai_piece(data) if self._openai else self._tgi_piece(data)

    def _tgi_piece(self, data: dict[str, Any]) -> str:
        details = data.get("details")
        if details:
            self.finish_reason = _finish(details.get("finish_reason"))
            if details.get("generated_tokens") is not None:
                self.usage = Usage(0, int(details["generated_tokens"]))
        token = data.get("token") or {}
        return "" if token.get("special") else str(token.get("text") or "")

    def _openai_piece(self, data: dict[str, Any]) -> str:
        usage = data.get("usage")
        if usage:
            self.usage = Usage(int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0)))
        choices = data.get("choices") or []
        if not choices:
            return ""
        if choices[0].get("finish_reason"):
            self.finish_reason = _finish(choices[0]["finish_reason"])
        return str((choices[0].get("delta") or {}).get("content") or "")
