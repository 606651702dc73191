"""The one mapping of vendors' finish reasons onto ours, which are OpenAI's (plus our own two).

OpenAI's reasons pass through unchanged: a reply cut by a content filter or ended to call a tool must
say so to the client, not claim a natural `stop`. Other vendors' words are mapped onto the OpenAI reason
that means the same; a reason nobody has taught us is a `stop` (the reply ended, we do not know why).
"""

from __future__ import annotations

from genai_chatbot.models.types import FinishReason

_REASONS: dict[str, FinishReason] = {
    # OpenAI and every server that speaks its API (vLLM, TGI's Messages API, llama.cpp, Azure, AI21, Groq…)
    "stop": "stop",
    "length": "length",
    "content_filter": "content_filter",
    "tool_calls": "tool_calls",
    "function_call": "function_call",
    # Ours: a consumer that stopped reading, a provider that reported a failure in-stream
    "cancelled": "cancelled",
    "error": "error",
    # Bedrock Converse `stopReason` (and Anthropic's `stop_reason`, which LangChain passes on)
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
    "model_context_window_exceeded": "length",
    # Cohere v2 chat
    "complete": "stop",
    "max_tokens_reached": "length",
    "tool_call": "tool_calls",
    "timeout": "error",
    # Hugging Face TGI `details.finish_reason`, Gemini through LangChain
    "eos_token": "stop",
    "model_length": "length",
    "safety": "content_filter",
    "recitation": "content_filter",
    "blocklist": "content_filter",
    "prohibited_content": "content_filter",
}


def finish_reason(reason: object) -> FinishReason:
    """Our finish reason for a vendor's (any case, enum members by their value); `stop` when unknown."""
    if reason is None:
        return "stop"
    value = getattr(reason, "value", reason)
    return _REASONS.get(str(value).lower(), "stop")
