"""OpenAI's fields as llama.cpp takes them, for the embedded provider (`local.py`).

`response_format` is enforced, not asked for: llama.cpp's grammar built from the JSON schema (any JSON
object for `json_object`) allows only tokens that keep the reply valid, so even the 135M model answers
with JSON that parses and fits the schema. Penalties, logit bias and seed are llama.cpp's own parameters.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from genai_chatbot.models import features
from genai_chatbot.models.errors import InvalidRequestError
from genai_chatbot.models.types import ChatRequest, ResponseFormat

if TYPE_CHECKING:
    from llama_cpp.llama_grammar import LlamaGrammar

#: What the embedded provider honours of OpenAI's fields beyond plain chat.
LOCAL_FEATURES = frozenset(
    {features.JSON_OBJECT, features.JSON_SCHEMA, features.PENALTIES, features.LOGIT_BIAS, features.SEED}
)
#: OpenAI's `json_object`: any JSON object.
_ANY_OBJECT = '{"type": "object"}'


def llama_fields(request: ChatRequest) -> dict[str, Any]:
    """`create_completion` arguments for the request's penalties, logit bias and response format; `{}` for
    plain chat."""
    arguments: dict[str, Any] = {}
    if request.presence_penalty is not None:
        arguments["presence_penalty"] = request.presence_penalty
    if request.frequency_penalty is not None:
        arguments["frequency_penalty"] = request.frequency_penalty
    if request.logit_bias:
        arguments["logit_bias"] = _token_bias(request.logit_bias)
    if request.response_format is not None and request.response_format.type != "text":
        arguments["grammar"] = grammar_for(request.response_format)
    if request.logprobs:
        arguments["logprobs"] = request.top_logprobs or 0
    return arguments


def chat_logprobs(completion: Mapping[str, Any]) -> dict[str, Any]:
    """llama.cpp's completion-style log probabilities of a piece (`tokens`, `token_logprobs`,
    `top_logprobs`) in OpenAI's chat shape: `{"content": [{token, logprob, bytes, top_logprobs}]}`."""
    content = []
    for token, logprob, top in zip(
        completion["tokens"], completion["token_logprobs"], completion["top_logprobs"], strict=False
    ):
        alternatives = sorted((top or {}).items(), key=lambda item: -item[1])
        content.append(
            {
                "token": token,
                "logprob": logprob,
                "bytes": list(token.encode()),
                "top_logprobs": [{"token": t, "logprob": p, "bytes": list(t.encode())} for t, p in alternatives],
            }
        )
    return {"content": content}


def grammar_for(response_format: ResponseFormat) -> LlamaGrammar:
    """The grammar that admits only replies in `response_format`; `InvalidRequestError` for a schema
    llama.cpp cannot turn into one."""
    if response_format.type == "json_schema" and response_format.schema:
        schema = json.dumps(response_format.schema, sort_keys=True)
    else:
        schema = _ANY_OBJECT
    return _grammar(schema)


@functools.lru_cache(maxsize=32)
def _grammar(schema: str) -> LlamaGrammar:
    """Built once per schema: a client asks for the same schema on every call, and building it parses it."""
    from llama_cpp.llama_grammar import LlamaGrammar

    try:
        return LlamaGrammar.from_json_schema(schema, verbose=False)
    except Exception as exc:  # the converter raises what it meets: ValueError, KeyError, RecursionError, ...
        raise InvalidRequestError(
            f"The local model cannot follow this JSON schema: llama.cpp could not turn it into a grammar "
            f"({type(exc).__name__}: {exc}). Simplify the schema (plain objects, arrays, strings, numbers, "
            "enums and $refs within it work).",
            param="response_format",
        ) from None


def _token_bias(bias: Mapping[str, float]) -> dict[int, float]:
    """OpenAI's `logit_bias` (token ids as strings) as llama.cpp's (token ids as numbers)."""
    try:
        return {int(token): float(value) for token, value in bias.items()}
    except ValueError:
        raise InvalidRequestError(
            'logit_bias keys must be token ids (numbers as strings, e.g. {"1234": -100}).', param="logit_bias"
        ) from None
