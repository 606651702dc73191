"""OpenTelemetry traces of model calls, following the GenAI semantic conventions, exported over OTLP/HTTP.

On when an OTLP endpoint is configured: the `otlp_endpoint` setting (the collector's base URL, e.g.
`http://otel-collector:4318`; `/v1/traces` is added), or the standard `OTEL_EXPORTER_OTLP_ENDPOINT` /
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` variables (with `OTEL_EXPORTER_OTLP_HEADERS` and the rest of the
exporter's variables). It needs the `otel` extra: `pip install "genai-chatbot[otel]"`.

Each model call is one span, `chat {model}` (`embeddings {model}` for an embeddings request), from its
admission to its end (a fallback's call is a span of its own): `gen_ai.operation.name` ("chat" or
"embeddings"), `gen_ai.provider.name` (and the older `gen_ai.system`),
`gen_ai.request.model`, `gen_ai.request.max_tokens`, `temperature`, `top_p`, `top_k`, `seed`,
`gen_ai.response.model`, `gen_ai.usage.input_tokens`, `gen_ai.usage.output_tokens`, and `error.type` when it
failed. Neither prompts nor answers are ever put in a span, nor who asked.

The chat service wraps the governor's admission of each call (`Tracing.traced`), so a span costs nothing per
streamed chunk; spans are exported in batches from a background thread.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from genai_chatbot import __version__
from genai_chatbot.config import ConfigError, Settings
from genai_chatbot.governance.gate import Admission, Outcome, Surface
from genai_chatbot.models.types import ChatRequest, ModelInfo

if TYPE_CHECKING:
    from opentelemetry.trace import Span

#: Our provider names as the semantic conventions' well-known `gen_ai.provider.name` values; others as they are.
PROVIDER_NAMES = {
    "openai": "openai",
    "azure_openai": "azure.ai.openai",
    "bedrock": "aws.bedrock",
    "cohere": "cohere",
    "ai21": "ai21",
    "local": "llama.cpp",
}
TRACES_PATH = "/v1/traces"


def build_tracing(settings: Settings) -> Tracing | None:
    """The tracing of these settings, or `None` when no OTLP endpoint is configured."""
    endpoint = settings.otlp_endpoint
    from_environment = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    if not endpoint and not from_environment:
        return None
    if endpoint and not endpoint.rstrip("/").endswith(TRACES_PATH):
        endpoint = endpoint.rstrip("/") + TRACES_PATH
    return Tracing(endpoint or None)  # None: the exporter reads the OTEL_* variables itself


class Tracing:
    """The spans of one server: its own tracer provider (not the process-wide one) and OTLP/HTTP exporter."""

    def __init__(self, endpoint: str | None) -> None:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor
            from opentelemetry.trace import SpanKind, Status, StatusCode
        except ImportError:
            raise ConfigError(
                "Traces (otlp_endpoint or OTEL_EXPORTER_OTLP_ENDPOINT) need OpenTelemetry: "
                'pip install "genai-chatbot[otel]".'
            ) from None
        resource = Resource.create({"service.name": "genai-chatbot", "service.version": __version__})
        self._provider = TracerProvider(resource=resource)
        self._provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
        self._tracer = self._provider.get_tracer("genai_chatbot", __version__)
        self._client = SpanKind.CLIENT
        self.error_status = Status(StatusCode.ERROR)

    def traced(
        self,
        model: ModelInfo,
        request: ChatRequest | None,
        surface: Surface,
        admission: Admission | None,
        operation: str = "chat",
    ) -> Admission:
        """`admission`, whose `finish` also ends the call's span with its usage and how it ended.

        `operation` is the semantic conventions' `gen_ai.operation.name`; a chat `request` adds its sampling.
        """
        provider = PROVIDER_NAMES.get(model.provider, model.provider)
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": operation,
            "gen_ai.provider.name": provider,
            "gen_ai.system": provider,
            "gen_ai.request.model": model.name,
            "genai_chatbot.model_id": model.id,
            "genai_chatbot.surface": surface,
        }
        if request is not None:
            for name, setting in (
                ("gen_ai.request.max_tokens", request.max_tokens),
                ("gen_ai.request.temperature", request.temperature),
                ("gen_ai.request.top_p", request.top_p),
                ("gen_ai.request.top_k", request.top_k),
                ("gen_ai.request.seed", request.seed),
            ):
                if setting is not None:
                    attributes[name] = setting
        span = self._tracer.start_span(f"{operation} {model.name}", kind=self._client, attributes=attributes)
        return _Traced(self, span, admission, operation == "chat")

    def shutdown(self) -> None:
        """Export the spans still buffered and stop; blocking (the exporter's timeout bounds it)."""
        self._provider.shutdown()


class _Traced:
    """An admission whose end also ends its span."""

    __slots__ = ("_admission", "_generates", "_span", "_tracing")

    def __init__(self, tracing: Tracing, span: Span, admission: Admission | None, generates: bool = True) -> None:
        """`generates`: the call produces tokens (chat), so it has output tokens to report (embeddings have not)."""
        self._tracing = tracing
        self._span = span
        self._admission = admission
        self._generates = generates

    async def finish(self, outcome: Outcome) -> None:
        try:
            if self._admission is not None:
                await self._admission.finish(outcome)
        finally:
            span = self._span
            span.set_attribute("genai_chatbot.status", outcome.status)
            if outcome.status != "failed":
                span.set_attribute("gen_ai.response.model", outcome.model_id.partition("/")[2] or outcome.model_id)
            if outcome.prompt_tokens is not None:
                span.set_attribute("gen_ai.usage.input_tokens", outcome.prompt_tokens)
            if outcome.completion_tokens is not None and self._generates:
                span.set_attribute("gen_ai.usage.output_tokens", outcome.completion_tokens)
            if outcome.first_token_seconds is not None:
                span.set_attribute("genai_chatbot.time_to_first_token", outcome.first_token_seconds)
            if outcome.status == "failed":
                span.set_attribute("error.type", outcome.error_type or "failed")
                span.set_status(self._tracing.error_status)
            span.end()
