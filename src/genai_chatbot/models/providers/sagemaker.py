"""Amazon SageMaker real-time endpoints: one model per configured endpoint, `sagemaker/<endpoint name>`.

Each `[[sagemaker.endpoints]]` entry names an endpoint and the payload format its container speaks
(see `sagemaker_formats`). Streaming endpoints are read with InvokeEndpointWithResponseStream on a worker
thread; the others with InvokeEndpoint, yielded as one chunk. The endpoints are deployed elsewhere (the
Hugging Face token of gated models is needed then, not here); listing asks DescribeEndpoint for each, a
few at a time, and keeps the answers until refresh (see `sagemaker_status`: an endpoint still Creating is
asked again after a minute). An endpoint that turns out not to exist when invoked is listed unavailable
until the next refresh.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

from genai_chatbot.config import SageMakerEndpoint, SageMakerSettings
from genai_chatbot.models.errors import (
    InvalidRequestError,
    ModelError,
    ModelNotFoundError,
    ProviderError,
    ProviderUnavailableError,
    RateLimitedError,
)
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
from genai_chatbot.models.providers._pump import pump, whole_reply
from genai_chatbot.models.providers.sagemaker_formats import Payload, StreamDecoder, build_payload, parse_whole
from genai_chatbot.models.providers.sagemaker_status import (
    CAPACITY,
    NOT_FOUND,
    QUOTA_HINT,
    TRANSIENT,
    EndpointState,
    describe,
)
from genai_chatbot.models.types import ChatChunk, ChatRequest, Diagnosis, FinishReason, ModelInfo, Usage
from genai_chatbot.per_loop import LoopLock

logger = logging.getLogger(__name__)

_DESCRIBE_CONCURRENCY = 8  # DescribeEndpoint calls in flight at once
_TRANSIENT_TTL = 60.0  # an endpoint still Creating (or whose state was unknown) is asked again after this long
_NOT_READY = AwsOutcome(ProviderUnavailableError, "{what} is not ready: {message}. Retry in a minute.")
_REFUSED = AwsOutcome(
    ProviderUnavailableError,
    "AWS refused {what} ({code}: {message}); allow sagemaker:InvokeEndpoint and "
    "sagemaker:InvokeEndpointWithResponseStream for this identity, or " + CREDENTIALS_HINT + ".",
)
#: SageMaker runtime error codes and what they mean. Checked after the container's own failures
#: (ModelError), lack of capacity and missing endpoints, which need more than the code to tell.
ERRORS: dict[str, AwsOutcome] = {
    "ModelStreamError": AwsOutcome(ProviderError, "The container of {what} failed while streaming: {message}"),
    "ThrottlingException": AwsOutcome(RateLimitedError, "SageMaker throttled {what}: {message}. Retry shortly."),
    "ValidationError": AwsOutcome(InvalidRequestError, "{what} rejected the request: {message}"),
    "ServiceUnavailable": _NOT_READY,
    "ModelNotReadyException": _NOT_READY,
    "InternalDependencyException": _NOT_READY,
    "AccessDeniedException": _REFUSED,
    "UnrecognizedClientException": _REFUSED,
    "ExpiredTokenException": _REFUSED,
}


class SageMakerProvider(Provider):
    """Serves chat models deployed on SageMaker real-time endpoints."""

    name = "sagemaker"

    def __init__(self, settings: SageMakerSettings, timeout_seconds: float = 60.0) -> None:
        self._endpoints = {endpoint.name: endpoint for endpoint in settings.endpoints}
        self._default_region = settings.region
        self._timeout = timeout_seconds
        self._executor = ThreadPoolExecutor(max_workers=16, thread_name_prefix="sagemaker")
        self._client_lock = threading.Lock()
        self._clients: dict[tuple[str, str | None], Any] = {}
        self._states: dict[str, tuple[EndpointState, float]] = {}  # endpoint name: (state, when asked)
        self._states_lock = LoopLock()
        self._missing: dict[str, str] = {}  # endpoint name: why invoking it failed as missing (until refresh)

    def _region(self, endpoint: SageMakerEndpoint) -> str | None:
        return endpoint.region or self._default_region

    def _client(self, region: str | None, service: str = "sagemaker-runtime") -> Any:
        """The `service` client of `region` (None: boto3's own region resolution), shared by threads."""
        with self._client_lock:
            if (service, region) not in self._clients:
                import boto3

                make: Any = boto3.client  # typed per literal service name; ours is one of two
                self._clients[service, region] = make(service, region_name=region, config=client_config(self._timeout))
            return self._clients[service, region]

    def _describe(self, endpoint: SageMakerEndpoint) -> EndpointState:
        """DescribeEndpoint for `endpoint` (blocking); no region at all is a state too, with its fix."""
        from botocore.exceptions import NoRegionError

        region = self._region(endpoint)
        try:
            client = self._client(region, "sagemaker")
        except NoRegionError:
            return EndpointState(
                "Unknown", True, "has no AWS region", "set sagemaker.region, its region, or AWS_REGION"
            )
        return describe(client, endpoint.name, client.meta.region_name or "the default region")

    async def _endpoint_states(self) -> dict[str, EndpointState]:
        """Each endpoint's state, asked with the model list and kept until refresh (transient ones a minute)."""
        async with self._states_lock:
            now = time.monotonic()
            stale = [
                e
                for e in self._endpoints.values()
                if e.name not in self._states
                or (self._states[e.name][0].status in TRANSIENT and now - self._states[e.name][1] >= _TRANSIENT_TTL)
            ]
            if stale:
                loop = asyncio.get_running_loop()
                gate = asyncio.Semaphore(_DESCRIBE_CONCURRENCY)

                async def ask(endpoint: SageMakerEndpoint) -> EndpointState:
                    async with gate:
                        return await loop.run_in_executor(self._executor, self._describe, endpoint)

                for endpoint, state in zip(stale, await asyncio.gather(*(ask(e) for e in stale)), strict=True):
                    self._states[endpoint.name] = (state, time.monotonic())
            return {name: state for name, (state, _) in self._states.items()}

    def _what(self, endpoint: SageMakerEndpoint) -> str:
        return f"SageMaker endpoint {endpoint.name!r} ({self._region(endpoint) or 'the default region'})"

    async def list_models(self) -> list[ModelInfo]:
        states = await self._endpoint_states()
        infos = []
        for endpoint in self._endpoints.values():
            reason = self._missing.get(endpoint.name) or states[endpoint.name].reason(self._what(endpoint))
            infos.append(
                model_info(
                    self.name,
                    endpoint.name,
                    endpoint.display_name,
                    streaming=endpoint.streaming,
                    context_window=endpoint.context_window,
                    unavailable_reason=reason,
                    extra={"format": endpoint.format, "region": self._region(endpoint) or "default"},
                )
            )
        return infos

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        endpoint = self._endpoints.get(request.model)
        if endpoint is None:
            raise ModelNotFoundError(
                f"{self.name}/{request.model}", [f"{self.name}/{name}" for name in self._endpoints]
            )
        payload = build_payload(endpoint.format, request, stream=endpoint.streaming)
        if endpoint.streaming:
            chunks = pump(self._executor, partial(self._invoke_stream, endpoint, payload))
        else:
            chunks = whole_reply(self._executor, partial(self._invoke, endpoint, payload))
        try:
            async for chunk in chunks:
                yield chunk
        except ModelError:
            raise
        except Exception as exc:
            raise self._translate(exc, endpoint) from None

    def _arguments(self, endpoint: SageMakerEndpoint, payload: Payload) -> dict[str, Any]:
        arguments: dict[str, Any] = {
            "EndpointName": endpoint.name,
            "Body": json.dumps(payload.body).encode("utf-8"),
            "ContentType": "application/json",
        }
        if payload.custom_attributes:
            arguments["CustomAttributes"] = payload.custom_attributes
        return arguments

    def _invoke(self, endpoint: SageMakerEndpoint, payload: Payload) -> tuple[str, FinishReason, Usage | None]:
        client = self._client(self._region(endpoint))
        response = client.invoke_endpoint(**self._arguments(endpoint, payload), Accept="application/json")
        body = response["Body"]
        try:
            raw: bytes = body.read()
        finally:
            body.close()
        return parse_whole(endpoint.format, raw)

    def _invoke_stream(
        self, endpoint: SageMakerEndpoint, payload: Payload, emit: Callable[[ChatChunk], None], stop: threading.Event
    ) -> None:
        """Runs on a worker thread: emit text chunks, then one chunk with the finish reason and usage."""
        client = self._client(self._region(endpoint))
        events = client.invoke_endpoint_with_response_stream(**self._arguments(endpoint, payload))["Body"]
        decoder = StreamDecoder(endpoint.format)
        try:
            for event in events:
                if stop.is_set():
                    return
                part = event.get("PayloadPart")
                if part:
                    for text in decoder.feed(part["Bytes"]):
                        emit(ChatChunk(text=text))
        finally:
            events.close()  # unread: closes the connection, so the container stops generating
        for text in decoder.close():
            emit(ChatChunk(text=text))
        emit(ChatChunk(finish_reason=decoder.finish_reason, usage=decoder.usage))

    def _translate(self, exc: BaseException, endpoint: SageMakerEndpoint) -> ModelError:
        """A SageMaker/botocore exception as our error, saying what to do; remembers missing endpoints."""
        from botocore.exceptions import ClientError, NoRegionError

        what = self._what(endpoint)
        if isinstance(exc, ClientError):
            code, message = error_code(exc), error_message(exc)
            if code == "ModelError":  # the container itself failed; its own message is the useful part
                original = exc.response.get("OriginalMessage") or message
                return ProviderError(f"The container of {what} failed: {original}")
            if code not in ("ModelStreamError", "ThrottlingException") and CAPACITY.search(f"{code} {message}"):
                return ProviderUnavailableError(f"{what} lacks capacity: {message}. To add instances, {QUOTA_HINT}.")
            if code == "ValidationError" and NOT_FOUND.search(message):
                reason = (
                    f"{what} does not exist: {message}. Deploy it, or fix its name/region in [[sagemaker.endpoints]]; "
                    f"if `genai-chatbot sagemaker stop` (or stop-idle) stopped it, run `genai-chatbot sagemaker start "
                    f"{endpoint.name}`; if its deployment failed for lack of instances, {QUOTA_HINT}"
                )
                self._missing[endpoint.name] = reason + "."
                return ProviderUnavailableError(reason + ".")
            return error_from_table(ERRORS, exc, what=what) or ProviderError(f"{what} failed: {code}: {message}")
        if isinstance(exc, NoRegionError):
            return ProviderUnavailableError(
                f"No AWS region for {what}; set sagemaker.region, the endpoint's region, or AWS_REGION."
            )
        failure = boto_failure(exc, what, self._timeout)
        if failure is not None:
            return failure
        logger.warning("SageMaker call failed: %s", type(exc).__name__, exc_info=exc)
        return ProviderError(f"{what} failed: {type(exc).__name__}: {exc}")

    async def diagnose(self) -> list[Diagnosis]:
        """Each endpoint's status from the SageMaker control plane: InService, or what to do about it."""
        states = await self._endpoint_states()
        return [
            Diagnosis(f"{self.name}/{name}", state.doctor_status, state.detail, state.fix)
            for name, state in states.items()
        ]

    async def refresh(self) -> None:
        async with self._states_lock:
            self._states.clear()
            self._missing.clear()

    async def aclose(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        with self._client_lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()
