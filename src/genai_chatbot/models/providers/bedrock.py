"""Amazon Bedrock through the Converse API: every text model of one region, streamed with ConverseStream.

Turned on by `bedrock_region`. The model list comes from Bedrock itself (ListFoundationModels plus the
system-defined inference profiles) and is cached until `refresh()`. Models that Bedrock serves only
through a cross-region inference profile (e.g. Claude Sonnet 4 in us-east-1) are offered under the
profile id (`us.anthropic.claude-sonnet-4-…`), since their base id cannot be invoked on demand.

Per-family quirks (see `bedrock_models`) are handled so callers never see them: a system prompt a family
refuses is folded into the first user turn; models without response streaming are served by Converse and
yielded as one chunk; Claude 4 models get temperature only when both temperature and top_p are set.
Converse has no `response_format`: structured output is a forced tool whose input is the answer (see
`bedrock_structured`).

Whether the account may invoke each model is asked of Bedrock with the list (see `bedrock_access`): a model
without access stays listed, unavailable, with the reason and the fix. A model Bedrock refuses on invoke
(AccessDenied) is listed unavailable with that reason until the next refresh.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

from genai_chatbot.config import Settings
from genai_chatbot.models.errors import (
    InvalidRequestError,
    ModelError,
    ProviderError,
    ProviderUnavailableError,
    RateLimitedError,
)
from genai_chatbot.models.inputs import EMBEDDINGS
from genai_chatbot.models.provider import Provider
from genai_chatbot.models.providers._aws import (
    CREDENTIALS_HINT,
    AwsOutcome,
    boto_failure,
    client_config,
    error_code,
    error_from_table,
    error_message,
)
from genai_chatbot.models.providers._catalog import model_info
from genai_chatbot.models.providers._finish import finish_reason
from genai_chatbot.models.providers._pump import pump, whole_reply
from genai_chatbot.models.providers.bedrock_access import ModelAccess, check_access
from genai_chatbot.models.providers.bedrock_embeddings import context_window as embedding_window
from genai_chatbot.models.providers.bedrock_embeddings import embed as embed_with
from genai_chatbot.models.providers.bedrock_embeddings import embedding_catalog
from genai_chatbot.models.providers.bedrock_models import (
    NO_STREAMING,
    BedrockModel,
    base_model_id,
    catalog_from,
    converse_arguments,
    usage_from,
)
from genai_chatbot.models.providers.bedrock_structured import AnswerTool, with_answer_tool
from genai_chatbot.models.providers.bedrock_tools import ToolUseStream, tool_features
from genai_chatbot.models.types import (
    ChatChunk,
    ChatRequest,
    Diagnosis,
    EmbeddingRequest,
    EmbeddingResult,
    FinishReason,
    ModelInfo,
    Usage,
)
from genai_chatbot.per_loop import LoopLock

logger = logging.getLogger(__name__)

ACCESS_HINT = (
    "request model access in the Bedrock console for region {region} (Model access); "
    "approval is instant but access can take several minutes to appear; then refresh the model list"
)
_THROTTLED = AwsOutcome(
    RateLimitedError,
    "Bedrock throttled {what} {where}: {message}. Retry shortly, or ask for a higher quota in the Service Quotas "
    "console.",
)
_CREDENTIALS_REFUSED = AwsOutcome(
    ProviderUnavailableError, "AWS rejected the credentials used for Bedrock ({code}); " + CREDENTIALS_HINT + "."
)
#: Bedrock's error codes and what they mean; AccessDeniedException is handled apart (it is remembered).
ERRORS: dict[str, AwsOutcome] = {
    "ThrottlingException": _THROTTLED,
    "TooManyRequestsException": _THROTTLED,
    "ServiceQuotaExceededException": AwsOutcome(
        RateLimitedError,
        "Bedrock quota exceeded for {what} {where}: {message}. Ask for a quota increase in the Service Quotas console.",
    ),
    "ResourceNotFoundException": AwsOutcome(
        ProviderUnavailableError,
        "Bedrock has no {what} {where}: {message}. Run 'genai-chatbot models' for this region's models, or set "
        "GENAI_CHATBOT_BEDROCK_REGION to a region that offers it.",
    ),
    "ModelNotReadyException": AwsOutcome(
        ProviderUnavailableError, "Bedrock {what} {where} is not ready yet: {message}. Retry in a minute."
    ),
    "ServiceUnavailableException": AwsOutcome(
        ProviderUnavailableError, "Bedrock is unavailable {where}: {message}. Retry shortly."
    ),
    "ValidationException": AwsOutcome(InvalidRequestError, "Bedrock rejected the request for {what}: {message}"),
    "UnrecognizedClientException": _CREDENTIALS_REFUSED,
    "ExpiredTokenException": _CREDENTIALS_REFUSED,
    "InvalidSignatureException": _CREDENTIALS_REFUSED,
}
_LIST_FAILURE_TTL = 30.0  # a failed listing is retried after this long, not on every request
_CREDENTIALS_MARGIN = 300.0  # assume the role again this long before its credentials expire


class BedrockProvider(Provider):
    """Serves the text models of one Bedrock region through Converse and ConverseStream."""

    name = "bedrock"

    def __init__(self, settings: Settings) -> None:
        if not settings.bedrock_region:
            raise ValueError("BedrockProvider needs settings.bedrock_region")
        self.region: str = settings.bedrock_region
        self._role_arn = settings.bedrock_role_arn
        self._timeout = settings.request_timeout_seconds
        self._executor = ThreadPoolExecutor(max_workers=16, thread_name_prefix="bedrock")
        self._client_lock = threading.Lock()
        self._clients: dict[str, Any] = {}
        self._retired: list[Any] = []
        self._session: Any = None
        self._credentials_deadline = float("inf")
        self._list_lock = LoopLock()
        self._catalog: dict[str, BedrockModel] | None = None
        self._list_failure: tuple[ModelError, float] | None = None
        self._access = ModelAccess()
        self._denied: dict[str, str] = {}  # model name: why Bedrock refused to invoke it (until refresh)

    # Clients and credentials ---------------------------------------------------------------------------

    def _client(self, service: str) -> Any:
        """A client for `service` (thread-safe); with a role, clients are remade before its credentials expire."""
        with self._client_lock:
            if self._session is not None and time.monotonic() >= self._credentials_deadline:
                self._retired.extend(self._clients.values())  # streams may still use them; closed in aclose
                self._clients.clear()
                self._session = None
            if self._session is None:
                import boto3

                self._session = self._assumed_session(self._role_arn) if self._role_arn else boto3.Session()
            if service not in self._clients:
                self._clients[service] = self._session.client(
                    service, region_name=self.region, config=client_config(self._timeout)
                )
            return self._clients[service]

    def _assumed_session(self, role_arn: str) -> Any:
        import boto3
        from botocore.exceptions import ClientError

        sts = boto3.client("sts", region_name=self.region, config=client_config(self._timeout))
        try:
            credentials = sts.assume_role(RoleArn=role_arn, RoleSessionName="genai-chatbot")["Credentials"]
        except ClientError as exc:
            raise ProviderUnavailableError(
                f"Cannot assume the Bedrock role {role_arn}: {error_code(exc)}: {error_message(exc)}. Allow "
                "sts:AssumeRole for this identity in the role's trust policy, or fix GENAI_CHATBOT_BEDROCK_ROLE_ARN."
            ) from None
        finally:
            sts.close()
        lifetime = credentials["Expiration"].timestamp() - time.time()
        self._credentials_deadline = time.monotonic() + max(lifetime - _CREDENTIALS_MARGIN, 0.0)
        return boto3.Session(
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
        )

    # The model list ------------------------------------------------------------------------------------

    def _fetch_catalog(self) -> dict[str, BedrockModel]:
        from botocore.exceptions import ClientError

        bedrock = self._client("bedrock")
        # Not filtered by inference type: profile-only models must be seen to be offered via their profile.
        summaries = bedrock.list_foundation_models(byOutputModality="TEXT")["modelSummaries"]
        embedding = bedrock.list_foundation_models(byOutputModality="EMBEDDING")["modelSummaries"]
        profiles: list[dict[str, Any]] = []
        try:
            for page in bedrock.get_paginator("list_inference_profiles").paginate(typeEquals="SYSTEM_DEFINED"):
                profiles.extend(page["inferenceProfileSummaries"])
        except ClientError as exc:  # on-demand models still work without profiles
            logger.warning("Cannot list Bedrock inference profiles in %s: %s", self.region, error_code(exc))
        models = [*catalog_from(summaries, profiles), *embedding_catalog(embedding)]
        return {model.name: model for model in models}

    async def _models(self) -> dict[str, BedrockModel]:
        async with self._list_lock:
            if self._catalog is not None:
                return self._catalog
            if self._list_failure is not None and time.monotonic() - self._list_failure[1] < _LIST_FAILURE_TTL:
                raise self._list_failure[0]
            loop = asyncio.get_running_loop()
            try:
                catalog = await loop.run_in_executor(self._executor, self._fetch_catalog)
                client = await loop.run_in_executor(self._executor, self._client, "bedrock")
            except Exception as exc:
                error = self._translate(exc, None)
                self._list_failure = (error, time.monotonic())
                raise error from None
            self._access = await check_access(
                client,
                self._executor,
                (model.base_id for model in catalog.values()),
                self.region,
                lambda exc: self._translate(exc, None).message,
            )
            self._list_failure = None
            self._catalog = catalog
            return catalog

    async def list_models(self) -> list[ModelInfo]:
        try:
            catalog = await self._models()
        except ModelError as exc:
            return [
                model_info(
                    self.name,
                    "*",
                    f"Amazon Bedrock ({self.region})",
                    unavailable_reason=exc.message,
                )
            ]
        return [
            model_info(
                self.name,
                model.name,
                model.display_name,
                streaming=model.streaming,
                context_window=embedding_window(model.base_id) if model.embeddings else model.context_window,
                unavailable_reason=self._denied.get(model.name) or self._access.reasons.get(model.base_id),
                input_modalities=("text", "image") if model.images else ("text",),
                features=frozenset({EMBEDDINGS}) if model.embeddings else tool_features(model.base_id),
                extra={"region": self.region, "base_model": model.base_id},
            )
            for model in catalog.values()
        ]

    async def _model(self, name: str) -> BedrockModel:
        try:
            catalog = await self._models()
        except ModelError:
            catalog = {}
        known = catalog.get(name)
        if known is not None:
            return known
        base = base_model_id(name)  # not listed (yet): invoke it anyway, Bedrock has the last word
        return BedrockModel(name, base, name, streaming=not base.startswith(NO_STREAMING))

    # Generation ---------------------------------------------------------------------------------------

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        model = await self._model(request.model)
        request, answer_tool = with_answer_tool(request, model.base_id)
        arguments = converse_arguments(model, request)
        if model.streaming:
            chunks = pump(self._executor, partial(self._converse_stream, arguments, answer_tool))
        else:
            chunks = whole_reply(self._executor, partial(self._converse, arguments))
        try:
            async for chunk in chunks:
                yield chunk
        except ModelError:
            raise
        except Exception as exc:
            raise self._translate(exc, model.name) from None

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResult:
        """Titan Text Embeddings and Cohere Embed through InvokeModel (see `bedrock_embeddings`)."""
        model = await self._model(request.model)
        loop = asyncio.get_running_loop()
        try:
            runtime = await loop.run_in_executor(self._executor, self._client, "bedrock-runtime")
            return await loop.run_in_executor(self._executor, embed_with, runtime, model, request)
        except ModelError:
            raise
        except Exception as exc:
            raise self._translate(exc, model.name) from None

    def _converse(self, arguments: dict[str, Any]) -> tuple[str, FinishReason, Usage | None]:
        response = self._client("bedrock-runtime").converse(**arguments)
        content = response.get("output", {}).get("message", {}).get("content", [])
        text = "".join(block.get("text", "") for block in content)
        return text, finish_reason(response.get("stopReason")), usage_from(response.get("usage"))

    def _converse_stream(
        self,
        arguments: dict[str, Any],
        answer_tool: str | None,
        emit: Callable[[ChatChunk], None],
        stop: threading.Event,
    ) -> None:
        """Runs on a worker thread: emit text chunks, then one chunk with the finish reason and usage.

        With `answer_tool` (structured output, see `bedrock_structured`) that tool's call is emitted as text.
        """
        if answer_tool is not None:
            emit = AnswerTool(answer_tool, emit)
        events = self._client("bedrock-runtime").converse_stream(**arguments)["stream"]
        stop_reason: str | None = None
        usage: Usage | None = None
        tool_use = ToolUseStream()
        try:
            for event in events:
                if stop.is_set():
                    return
                if "contentBlockDelta" in event:
                    text = event["contentBlockDelta"].get("delta", {}).get("text")
                    if text:
                        emit(ChatChunk(text=text))
                    elif (call := tool_use.delta(event["contentBlockDelta"])) is not None:
                        emit(ChatChunk(tool_calls=(call,)))
                elif "contentBlockStart" in event:
                    if (call := tool_use.start(event["contentBlockStart"])) is not None:
                        emit(ChatChunk(tool_calls=(call,)))
                elif "messageStop" in event:
                    stop_reason = event["messageStop"].get("stopReason")
                elif "metadata" in event:
                    usage = usage_from(event["metadata"].get("usage"))
        finally:
            events.close()  # unread: closes the connection, so Bedrock stops generating
        emit(ChatChunk(finish_reason=finish_reason(stop_reason), usage=usage))

    # Errors -------------------------------------------------------------------------------------------

    def _translate(self, exc: BaseException, model: str | None) -> ModelError:
        """A Bedrock/botocore exception as our error, saying what to do; remembers access denials."""
        from botocore.exceptions import ClientError

        if isinstance(exc, ModelError):
            return exc
        what = f"model {model}" if model else "the model list"
        where = f"in {self.region}"
        if isinstance(exc, ClientError):
            if error_code(exc) == "AccessDeniedException":
                hint = ACCESS_HINT.format(region=self.region)
                reason = f"Bedrock denied access to {what} {where} ({error_message(exc)}); {hint}"
                if model is None:
                    reason += "; the identity also needs bedrock:ListFoundationModels and bedrock:ListInferenceProfiles"
                else:
                    self._denied[model] = reason + "."
                return ProviderUnavailableError(reason + ".")
            known = error_from_table(ERRORS, exc, what=what, where=where)
            return known or ProviderError(f"Bedrock failed on {what} {where}: {error_code(exc)}: {error_message(exc)}")
        failure = boto_failure(exc, f"Bedrock ({what} {where})", self._timeout)
        if failure is not None:
            return failure
        logger.warning("Bedrock call failed: %s", type(exc).__name__, exc_info=exc)
        return ProviderError(f"Bedrock failed on {what} {where}: {type(exc).__name__}: {exc}")

    # Lifecycle ----------------------------------------------------------------------------------------

    async def diagnose(self) -> list[Diagnosis]:
        """The model list's rows, and a warning when model access could not be checked (so all look available)."""
        rows = await super().diagnose()
        try:
            await self._models()
        except ModelError:
            return rows  # the list's own failure is already the row above
        if self._access.problem is not None:
            rows.append(Diagnosis(f"{self.name} model access", "warning", self._access.problem))
        return rows

    async def refresh(self) -> None:
        async with self._list_lock:
            self._catalog = None
            self._list_failure = None
            self._access = ModelAccess()
            self._denied.clear()

    async def aclose(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        with self._client_lock:
            for client in [*self._clients.values(), *self._retired]:
                client.close()
            self._clients.clear()
            self._retired.clear()
