"""Which request fields a model can honour, and the one check that refuses (or drops) the rest.

Every provider declares per model what it can do beyond plain chat in `ModelInfo.features`; the chat
service runs `check_features` on every prepared request, so the OpenAI-compatible API, the page and the
terminal all get the same answer: a field the model cannot honour is a 400 `invalid_request_error` naming
the field and the model, never a silent drop. With the setting `drop_unsupported_params` the field is
dropped instead and the drop logged, for clients that send every field they know whatever the model.

`user` is not checked: it says who the end user is (for the upstream's abuse monitoring), not what the
answer should be; providers without it ignore it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from genai_chatbot.models.errors import InvalidRequestError
from genai_chatbot.models.types import ChatRequest, ModelInfo

logger = logging.getLogger(__name__)

TOOLS = "tools"
JSON_OBJECT = "json_object"
JSON_SCHEMA = "json_schema"
LOGPROBS = "logprobs"
PENALTIES = "penalties"
LOGIT_BIAS = "logit_bias"
SEED = "seed"
EMBEDDINGS = "embeddings"
#: The provider forwards fields the model interface does not model (`ChatRequest.extra`) as they are.
EXTRA_FIELDS = "extra_fields"

#: What an OpenAI-protocol upstream takes: everything is forwarded, and the upstream answers for itself.
OPENAI_PROTOCOL = frozenset({TOOLS, JSON_OBJECT, JSON_SCHEMA, LOGPROBS, PENALTIES, LOGIT_BIAS, SEED, EXTRA_FIELDS})

#: A request field that needs a feature: (the field's name in the request and in OpenAI's API, the feature).
#: Tools are checked beside the tool request (`tool_calls.check_tool_request`), which knows forced-only tools.
_CHECKS: tuple[tuple[str, str], ...] = (
    ("presence_penalty", PENALTIES),
    ("frequency_penalty", PENALTIES),
    ("logit_bias", LOGIT_BIAS),
    ("logprobs", LOGPROBS),
    ("top_logprobs", LOGPROBS),
    ("seed", SEED),
)


def check_features(info: ModelInfo, request: ChatRequest, drop_unsupported: bool = False) -> ChatRequest:
    """`request` if `info`'s model can honour every field it sets; else raise `InvalidRequestError` naming
    the first field it cannot, or with `drop_unsupported` return it without those fields (logged).

    A `response_format` of type `text` is the default and is always honoured (as no format).
    """
    features = info.features
    known = [name for name, feature in _CHECKS if feature not in features and _is_set(getattr(request, name))]
    response_format = request.response_format
    if response_format is not None and response_format.type != "text" and response_format.type not in features:
        known.append("response_format")
    extra: list[str] = []
    if request.extra and EXTRA_FIELDS not in features:
        extra = [name for name, value in request.extra.items() if _is_set(value)]
    if not known and not extra:
        return request
    if not drop_unsupported:
        name = (known or extra)[0]
        raise InvalidRequestError(_refusal(name, info, request, name in extra), param=name)
    logger.info("Dropped %s: %s cannot honour them (drop_unsupported_params is on).", ", ".join(known + extra), info.id)
    kept = {k: v for k, v in request.extra.items() if k not in extra}
    unset: dict[str, Any] = dict.fromkeys(known)  # every checked field is unset as None
    return replace(request, extra=kept, **unset)


def _is_set(value: object) -> bool:
    """Whether the client asked for something: `None`, `False` and empty collections ask for nothing."""
    if value is None or value is False:
        return False
    return not isinstance(value, (tuple, list, dict, Mapping)) or len(value) > 0


def _refusal(name: str, info: ModelInfo, request: ChatRequest, unmodelled: bool) -> str:
    what = name
    if unmodelled:
        what = f"the field {name!r}, which the gateway does not model,"
    elif name == "response_format" and request.response_format is not None:
        what = f"response_format {request.response_format.type!r}"
    return (
        f"Model {info.id!r} cannot honour {what}: its provider's API has no such feature. Leave it out, "
        "choose a model that has it (README, 'OpenAI-compatible API', lists which fields each provider "
        "honours), or set drop_unsupported_params to have such fields dropped."
    )
