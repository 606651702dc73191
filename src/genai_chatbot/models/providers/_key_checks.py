"""What asking an API with a key found, kept per key: the check that providers without a model list make.

Cohere and AI21 list their models from a catalogue, so whether a key works is asked of the API once per
key (and base URL) and remembered until refresh: a refused key stays refused, but an API that could not be
reached is asked again after half a minute. Keys are kept by digest, never by value.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from genai_chatbot.models.errors import ModelError
from genai_chatbot.models.providers._clients import fingerprint
from genai_chatbot.models.providers._http_errors import ErrorContext, key_refused

T = TypeVar("T")
UNREACHABLE_RETRY_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class KeyCheck(Generic[T]):
    """What a check found (e.g. the key's models), why the key is unusable (None: usable), and whether to
    ask again soon because the API could not be reached."""

    found: T
    problem: str | None = None
    ask_again: bool = False


class KeyChecks(Generic[T]):
    """Checks by key until `clear()`; one that says `ask_again` is repeated after `retry_seconds`."""

    def __init__(self, retry_seconds: float = UNREACHABLE_RETRY_SECONDS) -> None:
        self._retry = retry_seconds
        self._checks: dict[str, tuple[KeyCheck[T], float]] = {}

    async def get(self, values: Sequence[str | None], ask: Callable[[], Awaitable[KeyCheck[T]]]) -> KeyCheck[T]:
        digest = fingerprint(*values)
        known = self._checks.get(digest)
        if known is None or (known[0].ask_again and time.monotonic() - known[1] >= self._retry):
            known = self._checks[digest] = (await ask(), time.monotonic())
        return known[0]

    def clear(self) -> None:
        self._checks.clear()


def failed_check(
    exc: BaseException, ctx: ErrorContext, seconds: float, refusal: Callable[[], ModelError]
) -> tuple[str, bool] | None:
    """Why a key check that raised `exc` makes the key unusable, and whether to ask again soon.

    None when the failure says nothing against the key (a 5xx, an old proxy without the endpoint): then a
    chat will say what is wrong. `refusal()` words a refused key (401/403/498) the provider's way.
    """
    if isinstance(exc, ModelError):
        return exc.message, False
    if isinstance(exc, TimeoutError):
        return ctx.timed_out(seconds).message, True
    if key_refused(getattr(exc, "status_code", None)):
        return refusal().message, False
    transport = ctx.httpx_failure(exc, seconds)
    return (transport.message, True) if transport is not None else None
