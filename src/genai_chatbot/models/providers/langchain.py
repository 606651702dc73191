"""Any LangChain chat model, named by import path in settings: `langchain/<name>`.

Each `[[langchain]]` entry names a class (e.g. `langchain_mistralai.ChatMistralAI`), constructor `kwargs`,
and `keys`: constructor arguments filled from the keys secret (`{api_key = "MISTRAL_API_KEY"}`). An entry
is listed unavailable, with the fix, while a named key is missing or its class cannot be imported.

The class is imported, and the model object built, on a worker thread: integration packages take a
second to import and clients build TLS contexts. One object is kept per entry and rebuilt only when the
values of its keys change.

Request parameters are passed per call as invocation kwargs, exactly what `model.bind(...)` would pass:
`stop` always (every chat model takes it), and `temperature`, `top_p`, `max_tokens` only when the class
declares a field of that name, so a model without, say, `top_p` is not sent an argument it would forward
to its API and be refused for. Errors are translated from the HTTP status the integration's SDK reports
(`status_code`, or `response.status_code`), since each integration brings its own exception types.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import aclosing
from typing import Any

from genai_chatbot.config import LangChainModel
from genai_chatbot.models.errors import (
    ModelError,
    ProviderError,
    ProviderUnavailableError,
)
from genai_chatbot.models.provider import Provider
from genai_chatbot.models.providers._catalog import model_info
from genai_chatbot.models.providers._clients import ClientCache
from genai_chatbot.models.providers._finish import finish_reason
from genai_chatbot.models.providers._http_errors import ErrorContext
from genai_chatbot.models.providers._retry_after import retry_after_from
from genai_chatbot.models.providers.langchain_tools import ToolCallChunks, tool_features, tool_message, with_tools
from genai_chatbot.models.types import ChatChunk, ChatRequest, FinishReason, Message, ModelInfo, Usage
from genai_chatbot.secrets import ProviderKeys

logger = logging.getLogger(__name__)

_TUNABLE = ("temperature", "top_p", "max_tokens")
_TIMEOUT_FIELDS = ("timeout", "request_timeout")


def install_hint(class_path: str) -> str:
    """The pip command for the distribution that provides `class_path`, by LangChain's naming convention."""
    return f"pip install {class_path.split('.', 1)[0].replace('_', '-')}"


class LangChainProvider(Provider):
    """The chat models of the `[[langchain]]` settings entries."""

    name = "langchain"

    def __init__(self, models: Sequence[LangChainModel], keys: ProviderKeys, timeout_seconds: float = 60.0) -> None:
        self._entries = {entry.name: entry for entry in models}
        self._keys = keys
        self._timeout = timeout_seconds
        #: class_path -> the class, or why it cannot be imported (retried after `refresh`).
        self._classes: dict[str, type[Any] | str] = {}
        #: One model object per entry, rebuilt when the values of its keys change (LangChain has no close).
        self._built: ClientCache[Any] = ClientCache()

    async def list_models(self) -> list[ModelInfo]:
        snapshot = await self._keys.current()
        infos = []
        for entry in self._entries.values():
            missing = [key for key in entry.keys.values() if snapshot.get(key) is None]
            reason: str | None = None
            features: frozenset[str] = frozenset()
            if missing:
                reason = f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not in the keys secret; add it"
            else:
                found = await self._class(entry.class_path)
                reason = found if isinstance(found, str) else None
                features = frozenset() if isinstance(found, str) else tool_features(found)
            infos.append(
                model_info(
                    self.name,
                    entry.name,
                    entry.display_name,
                    context_window=entry.context_window,
                    unavailable_reason=reason,
                    extra={"class_path": entry.class_path},
                    features=features,
                )
            )
        return infos

    async def _class(self, class_path: str) -> type[Any] | str:
        if class_path not in self._classes:
            self._classes[class_path] = await asyncio.to_thread(_import_class, class_path)
        return self._classes[class_path]

    async def _model(self, entry: LangChainModel) -> Any:
        """The model object for `entry` with the current keys, rebuilt only when their values changed.

        It is used past its lease: a LangChain model holds nothing to close, so a rotated one is simply dropped.
        """
        snapshot = await self._keys.current()
        secrets = {argument: snapshot.get(key) for argument, key in entry.keys.items()}
        missing = [entry.keys[argument] for argument, value in secrets.items() if value is None]
        if missing:
            raise ProviderUnavailableError(
                f"langchain/{entry.name} is unavailable: {', '.join(missing)} not in the keys secret; add it."
            )
        cls = await self._class(entry.class_path)
        if isinstance(cls, str):
            raise ProviderUnavailableError(f"langchain/{entry.name} is unavailable: {cls}.")
        values = [value for value in secrets.values() if value]
        settings = [f"{name}={value}" for name, value in sorted(secrets.items())]
        async with self._built.lease(
            entry.name, settings, lambda: self._construct(entry, cls, secrets, values)
        ) as model:
            return model

    def _construct(self, entry: LangChainModel, cls: type[Any], secrets: dict[str, Any], values: list[str]) -> Any:
        kwargs: dict[str, Any] = {**entry.kwargs, **secrets}
        timeout_argument = _timeout_argument(cls)
        if timeout_argument and not any(name in kwargs for name in _TIMEOUT_FIELDS):
            kwargs[timeout_argument] = self._timeout
        try:
            return cls(**kwargs)
        except Exception as exc:
            raise ProviderUnavailableError(
                f"Cannot construct {entry.class_path} for langchain/{entry.name}: {_describe(exc, values)}; "
                "fix its kwargs in the [[langchain]] settings."
            ) from None

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        entry = self._entries.get(request.model)
        if entry is None:
            raise ProviderUnavailableError(f"No [[langchain]] entry is named {request.model!r}.")
        model = await self._model(entry)
        messages = _messages(request.system, request.messages)
        tool_calls = ToolCallChunks()
        fields = getattr(type(model), "model_fields", {})
        params = {
            name: getattr(request, name) for name in _TUNABLE if getattr(request, name) is not None and name in fields
        }
        finish: FinishReason = "stop"
        prompt_tokens = completion_tokens = 0
        saw_usage = False
        try:
            bound = with_tools(model, request)
            async with aclosing(bound.astream(messages, stop=list(request.stop) or None, **params)) as chunks:
                async for chunk in chunks:
                    text = _text(chunk.content)
                    if text:
                        yield ChatChunk(text=text)
                    if calls := getattr(chunk, "tool_call_chunks", None):
                        yield ChatChunk(tool_calls=tool_calls.deltas(calls))
                    metadata = getattr(chunk, "response_metadata", None) or {}
                    reason = metadata.get("finish_reason") or metadata.get("stop_reason")
                    if reason:
                        finish = finish_reason(reason)
                    usage = getattr(chunk, "usage_metadata", None)
                    if usage:
                        saw_usage = True
                        prompt_tokens += int(usage.get("input_tokens") or 0)
                        completion_tokens += int(usage.get("output_tokens") or 0)
        except Exception as exc:
            snapshot = await self._keys.current()
            values = [v for v in (snapshot.get(k) for k in entry.keys.values()) if v]
            raise _translate(exc, entry, self._timeout, values) from exc
        yield ChatChunk(finish_reason=finish, usage=Usage(prompt_tokens, completion_tokens) if saw_usage else None)

    async def refresh(self) -> None:
        # Forget failed imports only: a package installed since then is picked up without a restart.
        importlib.invalidate_caches()
        self._classes = {path: found for path, found in self._classes.items() if not isinstance(found, str)}


def _import_class(class_path: str) -> type[Any] | str:
    """The class at `class_path`, or why it cannot be had, in words that say what to do."""
    module_name, _, class_name = class_path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = f" (missing module {exc.name})" if exc.name and exc.name != module_name.split(".")[0] else ""
        return f"{module_name} cannot be imported{missing}; {install_hint(class_path)}"
    except Exception as exc:
        return f"importing {module_name} failed: {type(exc).__name__}: {exc}"
    cls = getattr(module, class_name, None)
    if not isinstance(cls, type):
        return f"{module_name} has no class {class_name}; fix class_path"
    return cls


def _timeout_argument(cls: type[Any]) -> str | None:
    """The constructor argument that sets the request timeout, when the class declares one."""
    fields = getattr(cls, "model_fields", {})
    for name, field in fields.items():
        if name in _TIMEOUT_FIELDS or getattr(field, "alias", None) in _TIMEOUT_FIELDS:
            return str(getattr(field, "alias", None) or name)
    return None


def _messages(system: str | None, messages: Iterable[Message]) -> list[Any]:
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

    classes = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}
    converted: list[Any] = [SystemMessage(content=system)] if system else []
    converted.extend(
        tool_message(m) if m.tool_calls or m.role == "tool" else classes[m.role](content=m.content) for m in messages
    )
    return converted


def _text(content: object) -> str:
    """The text of a message chunk's content: a string, or a list of strings and typed blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, str):
                parts.append(block)
            elif isinstance(block, dict) and block.get("type") == "text" and isinstance(block.get("text"), str):
                parts.append(block["text"])
        return "".join(parts)
    return ""


def _describe(exc: BaseException, secrets: Iterable[str]) -> str:
    """`exc` in one line without any key value (pydantic echoes inputs, SDKs sometimes echo keys)."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            text = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors(include_input=False))
        except Exception:
            text = str(exc)
    else:
        text = str(exc)
    for value in secrets:
        if value:
            text = text.replace(value, "***")
    return f"{type(exc).__name__}: {text[:300]}"


def _status(exc: BaseException) -> int | None:
    for candidate in (exc, getattr(exc, "response", None)):
        status = getattr(candidate, "status_code", None)
        if isinstance(status, int):
            return status
    return None


def _translate(exc: Exception, entry: LangChainModel, timeout: float, secrets: list[str]) -> ModelError:
    """Our error for what a LangChain integration raised, by HTTP status or by the kind of failure."""
    if isinstance(exc, ModelError):
        return exc
    where = f"langchain/{entry.name} ({entry.class_path})"
    ctx = ErrorContext(
        where,
        key_name=" or ".join(entry.keys.values()) or None,
        not_found_hint=f"check the model named in the kwargs of langchain/{entry.name}",
        unreachable_fix="check the network, or the base URL in its kwargs.",
        no_key_fix="name its key in the entry's `keys` and add that key to the keys secret",
    )
    kind = type(exc).__name__
    status = _status(exc)
    if status is not None:
        response = getattr(exc, "response", None)
        return ctx.status_error(status, _describe(exc, secrets), retry_after_from(getattr(response, "headers", None)))
    if isinstance(exc, TimeoutError) or "Timeout" in kind:
        return ctx.timed_out(timeout)
    if isinstance(exc, ConnectionError) or "Connect" in kind:
        return ctx.unreachable(_describe(exc, secrets))
    logger.warning("Unexpected error from %s: %s", where, kind)
    return ProviderError(f"{where} failed: {_describe(exc, secrets)}")
