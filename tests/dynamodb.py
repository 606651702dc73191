"""A real DynamoDB API for the tests: moto's server on a free port of 127.0.0.1, through boto3's real client.

One server for the whole run (`dynamodb_endpoint`); each test that asks for `dynamodb_url` gets tables of
its own (a fresh prefix, created as `genai-chatbot store init` creates them, deleted afterwards) and the
standard AWS variables pointing at the server, which subprocesses (the CLI, `serve`) inherit.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from genai_chatbot.chat.dynamodb_db import new_client, table_names
from genai_chatbot.chat.dynamodb_tables import ensure_tables
from genai_chatbot.chat.records import new_id

#: Dummy credentials and a region; moto accepts anything.
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "eu-west-1",
    "AWS_REGION": "eu-west-1",
}


def free_port() -> int:
    """A port of 127.0.0.1 that nothing listens on now."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class _OneRequestAtATime:
    """A WSGI app that serves one request at a time.

    moto applies the items of a TransactWriteItems one after the other without a lock, and rolls a failed one
    back by restoring a copy of the whole table: requests served concurrently could see half a transaction,
    or lose a write to a rollback, which DynamoDB never allows (a transaction is atomic and isolated).
    Serialising requests gives DynamoDB's guarantees; the stores' own concurrency is unchanged.
    """

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with self._lock:
            return list(self._app(environ, start_response))


def start_moto(port: int) -> Any:
    """moto's `ThreadedMotoServer` on `port` of 127.0.0.1, serving one request at a time (see
    `_OneRequestAtATime`); call `stop()` on it. moto is imported here: it takes half a second."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from moto.server import ThreadedMotoServer
    from werkzeug.serving import make_server

    class SerialMotoServer(ThreadedMotoServer):
        def _server_entry(self) -> None:
            app = _OneRequestAtATime(DomainDispatcherApplication(create_backend_app))
            self._server = make_server(self._ip_address, self._port, app, threaded=True)
            self._server_ready_event.set()
            self._server.serve_forever(poll_interval=0.05)  # werkzeug's 0.5 s made each stop wait that long

    server = SerialMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    return server


@pytest.fixture(scope="session")
def dynamodb_endpoint() -> Iterator[str]:
    """The URL of a moto server shared by the run; tests keep apart by their table prefixes."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request otherwise
    port = free_port()
    server = start_moto(port)
    yield f"http://127.0.0.1:{port}"
    server.stop()


def point_boto3_at(endpoint: str, env: pytest.MonkeyPatch) -> str:
    """Set the standard AWS variables (dummy credentials, a region, the endpoint) for `endpoint`; returns it."""
    for name in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_ENDPOINT_URL"):
        env.delenv(name, raising=False)
    for name, value in AWS_ENV.items():
        env.setenv(name, value)
    env.setenv("AWS_ENDPOINT_URL_DYNAMODB", endpoint)
    return endpoint


@contextmanager
def fresh_tables() -> Iterator[str]:
    """`dynamodb://PREFIX` with a fresh prefix whose tables exist while the block runs (boto3 pointed first)."""
    prefix = f"t{new_id()[:12]}"
    client = new_client()
    ensure_tables(client, prefix, lambda _line: None)
    try:
        yield f"dynamodb://{prefix}"
    finally:
        for table in table_names(prefix):
            client.delete_table(TableName=table)
        client.close()


@pytest.fixture
def dynamodb_env(dynamodb_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """boto3 (and the subprocesses the test starts) pointed at the moto server; the endpoint."""
    return point_boto3_at(dynamodb_endpoint, monkeypatch)


@pytest.fixture
def dynamodb_url(dynamodb_env: str) -> Iterator[str]:
    """`dynamodb://PREFIX` with a fresh prefix whose tables exist; they are deleted after the test."""
    with fresh_tables() as url:
        yield url
