"""A pytest plugin that fails the run when a secret used by any test shows up where people would see it.

Every log record of the whole run (a handler on the root logger, as written: after the app's redaction
filters; `genai_chatbot`'s own loggers at DEBUG, the others at their usual levels), every HTTP response
that our app served in-process (conftest's `LiveServer` passes its app through `TeeApp`) and every piece
of text a test hands to `scan_text` (a subprocess server's log, a CLI's output) is kept. At the end of the
session each is searched for every registered secret; any hit fails the run, naming the test and where
the secret appeared. A secret registered late still counts: the search runs over everything kept, at the end.

Register secrets with `register_secret(value)`; the ones the existing tests use are in `KNOWN_SECRETS`.
Fake upstream servers (which echo keys on purpose, as real providers do) are not scanned.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import asdict, dataclass
from typing import Any

import pytest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The secret values the test suite hands to the chatbot (keys files, environments, settings). Short or
# generic values ("sk-a", "hf") are left out: they occur in innocent text.
KNOWN_SECRETS = (
    "sk-canary-0123456789abcdef",
    "ai21-test-key-0123456789",
    "model1-secret-key",
    "model2-secret-key",
    "rotated-model1-key",
    "co-test-key-0123456789",
    "co-rotated-key-987654",
    "sk-do-not-print-me",
    "sk-test-0123456789abcdef",
    "sk-rotated-9876543210",
    "sk-test-abcdef1234567890",
    "sk-rotated-0000000000",
    "sk-test-refresh",
    "sk-very-secret-value",
    "key-one-xxxxxxxxxxxxxxxxxxxxxx",
    "key-two-xxxxxxxxxxxxxxxxxxxxxx",
    "wire-test-secret",
)


@dataclass(frozen=True, slots=True)
class Capture:
    """Text that left the app during `test`, and where: a log line, a response, a subprocess's output."""

    test: str
    where: str
    text: str


@dataclass(frozen=True, slots=True)
class Leak:
    secret: str
    test: str
    where: str


class LeakRecorder:
    """What was registered and what was seen; one per run (`RECORDER`), a fresh one in the scanner's own tests."""

    def __init__(self) -> None:
        self.secrets: set[str] = set(KNOWN_SECRETS)
        self.captures: list[Capture] = []
        self.current_test = "(outside any test)"
        self._lock = threading.Lock()  # servers run on their own threads

    def register(self, value: str) -> str:
        if len(value) < 6:
            raise ValueError(f"Secret {value!r} is too short to search for without false alarms; use 6+ characters.")
        with self._lock:
            self.secrets.add(value)
        return value

    def capture(self, text: str, where: str) -> None:
        if text:
            with self._lock:
                self.captures.append(Capture(self.current_test, where, text))

    def leaks(self) -> list[Leak]:
        with self._lock:
            secrets, captures = sorted(self.secrets), list(self.captures)
        return find_leaks(captures, secrets)

    def forget(self, test: str) -> None:
        """Drop what `test` captured (the scanner's own tests plant leaks on purpose)."""
        with self._lock:
            self.captures = [c for c in self.captures if c.test != test]


def find_leaks(captures: list[Capture], secrets: list[str]) -> list[Leak]:
    """Every (secret, test, where) such that the secret occurs in that capture's text; one per pair."""
    found: dict[tuple[str, str, str], Leak] = {}
    for capture in captures:
        for secret in secrets:
            if secret in capture.text:
                found.setdefault((secret, capture.test, capture.where), Leak(secret, capture.test, capture.where))
    return list(found.values())


RECORDER = LeakRecorder()
_LEAKS = pytest.StashKey[list[Leak]]()


def register_secret(value: str) -> str:
    """Make the run fail if `value` appears in any log line, response or scanned output; returns `value`."""
    return RECORDER.register(value)


def scan_text(text: str, where: str) -> None:
    """Have `text` (a subprocess's output, say) searched for every secret at the end of the run."""
    RECORDER.capture(text, where)


class CapturingHandler(logging.Handler):
    """Keeps every record that reaches the root logger's handlers, formatted with its traceback."""

    def __init__(self, recorder: LeakRecorder) -> None:
        super().__init__(logging.NOTSET)
        self.recorder = recorder
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.recorder.capture(self.format(record), f"log record of {record.name}")
        except Exception:  # a handler must never break the code that logs
            self.handleError(record)


class TeeApp:
    """An ASGI wrapper that hands each response (status, headers and body) to the recorder when it ends."""

    def __init__(self, app: ASGIApp, recorder: LeakRecorder | None = None) -> None:
        self.app = app
        self.recorder = recorder or RECORDER

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        parts: list[bytes] = []

        async def tee(message: Message) -> None:
            if message["type"] == "http.response.start":
                parts.append(str(message["status"]).encode())
                parts.extend(b"%s: %s" % (name, value) for name, value in message.get("headers", ()))
            elif message["type"] == "http.response.body":
                parts.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, tee)
        finally:
            text = b"\n".join(parts).decode("utf-8", "replace")
            self.recorder.capture(text, f"response to {scope['method']} {scope['path']}")


_handler = CapturingHandler(RECORDER)


_OUR_LOGGER = logging.getLogger("genai_chatbot")
_our_level = _OUR_LOGGER.level


def pytest_sessionstart(session: pytest.Session) -> None:
    logging.getLogger().addHandler(_handler)
    # Our own code logs at every level during the run, so that its debug lines are searched too.
    _OUR_LOGGER.setLevel(logging.DEBUG)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> object:
    RECORDER.current_test = item.nodeid
    yield
    RECORDER.current_test = "(outside any test)"


def pytest_sessionfinish(session: pytest.Session) -> None:
    logging.getLogger().removeHandler(_handler)
    _OUR_LOGGER.setLevel(_our_level)
    # With pytest-xdist (`-n`), each worker scans its own tests and hands its leaks to the controller, which
    # has them by now (`pytest_testnodedown`) and fails the run.
    leaks = [*session.config.stash.get(_LEAKS, []), *RECORDER.leaks()]
    session.config.stash[_LEAKS] = leaks
    worker_output = getattr(session.config, "workeroutput", None)
    if worker_output is not None:
        worker_output["leaks"] = [asdict(leak) for leak in leaks]
    if leaks:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """pytest-xdist's controller: take the leaks a worker found."""
    found = [Leak(**leak) for leak in getattr(node, "workeroutput", {}).get("leaks", [])]
    node.config.stash[_LEAKS] = [*node.config.stash.get(_LEAKS, []), *found]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    leaks = config.stash.get(_LEAKS, [])
    if not leaks:
        return
    terminalreporter.section("secrets leaked", sep="=", red=True, bold=True)
    for leak in leaks:
        shown = leak.secret[:4] + "…"
        terminalreporter.line(f"LEAK {shown} in {leak.where}, during {leak.test}", red=True)
    terminalreporter.line(f"{len(leaks)} leak(s) of registered secrets: the run fails. See tests/leak_scan.py.")
