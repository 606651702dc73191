"""The leak scan itself: it finds a planted secret in each place it watches, and fails a run that leaks."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse

import leak_scan
from conftest import LiveServer
from leak_scan import RECORDER, Capture, find_leaks, register_secret, scan_text

TESTS = Path(__file__).parent
PLUGINS = ("-p", "leak_scan", "-p", "no:cacheprovider", "-p", "no:langsmith_plugin")


@pytest.fixture
def planted(request: pytest.FixtureRequest) -> Iterator[str]:
    """A registered secret this test leaks on purpose; what the test captured is dropped afterwards."""
    yield register_secret(f"planted-{request.node.name}-secret")
    RECORDER.forget(request.node.nodeid)


def leaks_of(secret: str) -> list[leak_scan.Leak]:
    return [leak for leak in RECORDER.leaks() if leak.secret == secret]


def test_find_leaks_reports_each_secret_in_each_place_once() -> None:
    captures = [
        Capture("t1", "log", "key sk-aaaaaaaa and sk-aaaaaaaa again"),
        Capture("t1", "log", "sk-aaaaaaaa"),
        Capture("t2", "response to GET /", "fine"),
        Capture("t3", "response to GET /x", "sk-bbbbbbbb"),
    ]
    found = find_leaks(captures, ["sk-aaaaaaaa", "sk-bbbbbbbb", "sk-cccccccc"])
    assert {(leak.secret, leak.test, leak.where) for leak in found} == {
        ("sk-aaaaaaaa", "t1", "log"),
        ("sk-bbbbbbbb", "t3", "response to GET /x"),
    }
    assert find_leaks(captures, []) == []


def test_a_secret_in_a_log_record_is_found_with_the_test_that_logged_it(
    planted: str, request: pytest.FixtureRequest
) -> None:
    try:
        raise ValueError(f"a traceback holding {planted}")
    except ValueError:
        logging.getLogger("genai_chatbot.planted").exception("failed")
    (leak,) = leaks_of(planted)
    assert leak.test == request.node.nodeid and leak.where == "log record of genai_chatbot.planted"


def test_a_secret_in_a_response_of_an_in_process_server_is_found(planted: str) -> None:
    app = FastAPI()

    @app.get("/header")
    async def header() -> PlainTextResponse:
        return PlainTextResponse("fine", headers={"x-debug": planted})

    @app.get("/body")
    async def body() -> PlainTextResponse:
        return PlainTextResponse(f"here it is: {planted}")

    with LiveServer(app) as live:
        assert httpx.get(f"{live.url}/header").status_code == 200
        assert httpx.get(f"{live.url}/body").status_code == 200
    assert {leak.where for leak in leaks_of(planted)} == {"response to GET /header", "response to GET /body"}


def test_scanned_text_and_late_registration_are_searched_at_the_end(request: pytest.FixtureRequest) -> None:
    late = f"late-{request.node.name}-secret"
    scan_text(f"subprocess output with {late}", "a subprocess")
    assert leaks_of(late) == []
    register_secret(late)  # registered after it was seen: still found
    assert [leak.where for leak in leaks_of(late)] == ["a subprocess"]
    RECORDER.forget(request.node.nodeid)
    assert leaks_of(late) == []


def test_too_short_secrets_are_refused() -> None:
    with pytest.raises(ValueError, match="too short"):
        register_secret("sk-a")


@pytest.mark.slow  # runs pytest three times in subprocesses, once with two xdist workers
def test_a_run_that_leaks_fails_and_names_the_test(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_inner.py").write_text(
        "import logging\n"
        "from leak_scan import register_secret\n"
        "SECRET = register_secret('inner-' + 'secret-4242')\n"
        "def test_logs_the_key():\n"
        "    logging.getLogger('inner').warning('the key is %s', SECRET)\n"
        "def test_clean():\n"
        "    logging.getLogger('inner').warning('nothing to see')\n"
    )

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pytest", *PLUGINS, "-q", *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])},
        )

    leaking = run()
    assert leaking.returncode == 1, leaking.stdout + leaking.stderr
    assert "2 passed" in leaking.stdout  # every test passed: the leak alone fails the run
    assert "secrets leaked" in leaking.stdout
    assert "during test_inner.py::test_logs_the_key" in leaking.stdout and "log record of inner" in leaking.stdout
    assert "test_clean" not in leaking.stdout.partition("secrets leaked")[2]
    clean = run("-k", "clean")
    assert clean.returncode == 0 and "secrets leaked" not in clean.stdout, clean.stdout
    in_workers = run("-n", "2")  # pytest-xdist: each worker's leaks reach the controller, which fails the run
    assert in_workers.returncode == 1, in_workers.stdout + in_workers.stderr
    assert "during test_inner.py::test_logs_the_key" in in_workers.stdout.partition("secrets leaked")[2]
