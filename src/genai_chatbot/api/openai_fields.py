"""OpenAI's chat-completion fields beyond plain chat, as `POST /v1/chat/completions` takes them.

Ranges are OpenAI's, checked here so a client gets the same 422 it would get from OpenAI (e.g.
`presence_penalty` 5). Fields this API does not model are kept (`ChatRequest.extra`): forwarded as they
are to OpenAI-protocol upstreams, and refused by the other providers (see `models/features.py`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from genai_chatbot.chat.requests import GenerationOptions
from genai_chatbot.models.types import ResponseFormat

Penalty = Annotated[float, Field(ge=-2, le=2)]


class JSONSchemaFormat(BaseModel):
    """`response_format.json_schema`: the schema a reply must follow, and its name."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    name: str = Field(max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    description: str | None = None
    json_schema: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None


class ResponseFormatIn(BaseModel):
    """`response_format`: `text` (the default), `json_object` (any JSON object) or `json_schema`."""

    type: Literal["text", "json_object", "json_schema"]
    json_schema: JSONSchemaFormat | None = None

    @model_validator(mode="after")
    def _schema_given(self) -> ResponseFormatIn:
        if self.type == "json_schema" and self.json_schema is None:
            raise ValueError('type "json_schema" needs a json_schema object: {"name": ..., "schema": {...}}')
        return self

    def as_format(self) -> ResponseFormat:
        schema = self.json_schema
        if self.type != "json_schema" or schema is None:
            return ResponseFormat(self.type)
        return ResponseFormat("json_schema", schema.json_schema, schema.name, schema.strict, schema.description)


class OpenAIFields(BaseModel):
    """The fields, with OpenAI's limits; a model that cannot honour one answers 400 naming it."""

    response_format: ResponseFormatIn | None = None
    presence_penalty: Penalty | None = Field(default=None, description="-2 to 2.")
    frequency_penalty: Penalty | None = Field(default=None, description="-2 to 2.")
    logit_bias: dict[str, Annotated[float, Field(ge=-100, le=100)]] | None = Field(
        default=None, description="Token id (as a string) to a bias from -100 to 100."
    )
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    user: str | None = None

    def with_fields(self, options: GenerationOptions) -> GenerationOptions:
        """`options` with these fields, and every field the client sent that no model here declares."""
        return replace(
            options,
            response_format=self.response_format.as_format() if self.response_format else None,
            presence_penalty=self.presence_penalty,
            frequency_penalty=self.frequency_penalty,
            logit_bias=self.logit_bias,
            logprobs=self.logprobs,
            top_logprobs=self.top_logprobs,
            user=self.user,
            extra=dict(self.model_extra or {}),
        )
