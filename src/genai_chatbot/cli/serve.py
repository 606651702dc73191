"""`genai-chatbot serve`: the web page, the chat API and the OpenAI-compatible API on one port.

`--workers N` runs N processes on that port (uvicorn's supervisor, which restarts a worker that dies); the
app each runs, and how it stops, is `serve_app.py`. Every worker opens the store on its own: with SQLite,
one turn at a time per session and the recovery of interrupted turns hold across processes (see
`chat/sqlite_owners.py`), as they do across PostgreSQL replicas.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from genai_chatbot.config import Settings

from genai_chatbot.cli.common import ConfigOption, settings_or_exit

# Exit status of a refusal to start with settings that would expose every chat (as for a usage error).
EXIT_UNSAFE = 2
# uvicorn waits this long for open responses at a stop, then cancels them. Turns end at the signal
# (serve_app.py), so their streams finish well within it.
GRACE_SECONDS = 5


def serve(
    config: ConfigOption = None,
    host: Annotated[str | None, typer.Option(help="Interface to listen on (settings: host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (settings: port).")] = None,
    unsafe_no_auth: Annotated[
        bool,
        typer.Option(
            "--unsafe-no-auth",
            help="Listen on a non-loopback address with auth = none: anyone who reaches the port can read, "
            "write and delete every chat and spend the provider keys.",
        ),
    ] = False,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Processes serving the port. Each holds its own model copies, so keep 1 with the embedded model; "
            "use more with remote providers.",
        ),
    ] = 1,
) -> None:
    """Start the server: chat page at /, API docs at /docs, OpenAI-compatible API at /v1."""
    settings = settings_or_exit(config, host=host, port=port)

    import logging

    import uvicorn

    from genai_chatbot.api.app import create_app
    from genai_chatbot.api.host_check import is_loopback_address
    from genai_chatbot.auth.factory import auth_mode
    from genai_chatbot.cli.serve_app import configure_logging, serving_app
    from genai_chatbot.config import ConfigError

    exposed = auth_mode(settings) == "none" and not is_loopback_address(settings.host)
    if exposed and not unsafe_no_auth:
        typer.echo(
            f'error: refusing to listen on {settings.host} with auth = "none": anyone who can reach it could read, '
            'change and delete every chat and spend the provider keys. Set the setting auth to "api-keys" or '
            '"oidc" (GENAI_CHATBOT_AUTH=api-keys), listen on 127.0.0.1, or pass --unsafe-no-auth to accept the risk.',
            err=True,
        )
        raise typer.Exit(EXIT_UNSAFE)

    configure_logging(settings)
    if exposed:
        logging.getLogger("genai_chatbot.serve").warning(
            "Listening on %s without authentication (--unsafe-no-auth): anyone who can reach this port can read "
            'and delete every chat and spend the provider keys. Set auth = "api-keys" or "oidc" to stop this.',
            settings.host,
        )
    try:
        app = create_app(settings)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"genai-chatbot on http://{settings.host}:{settings.port}  (default model: {settings.default_model})")
    if workers > 1:
        _serve_workers(settings, config, workers)
        return
    server = uvicorn.Server(
        uvicorn.Config(
            lambda: serving_app(app),
            factory=True,
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level,
            timeout_graceful_shutdown=GRACE_SECONDS,
        )
    )
    with suppress(KeyboardInterrupt):
        server.run()
    if not server.started:  # as uvicorn.run: the port was taken, or the app failed to start
        raise typer.Exit(3)


def _serve_workers(settings: Settings, settings_file: Path | None, workers: int) -> None:
    """Run `workers` processes on one socket until a signal; exit 3 when one cannot start."""
    import uvicorn
    from uvicorn.config import STARTUP_FAILURE
    from uvicorn.supervisors import Multiprocess

    # The workers load the settings themselves: hand them this command's choices through the environment.
    if settings_file is not None:
        os.environ["GENAI_CHATBOT_CONFIG"] = str(settings_file.resolve())
    os.environ["GENAI_CHATBOT_HOST"], os.environ["GENAI_CHATBOT_PORT"] = settings.host, str(settings.port)
    # /metrics sums every worker's counters only in prometheus-client's multiprocess mode: give the workers
    # a fresh directory for it, removed when they have all stopped, unless the operator chose one.
    metrics_dir = None
    if settings.metrics and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        metrics_dir = tempfile.TemporaryDirectory(prefix="genai-chatbot-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir.name
    config = uvicorn.Config(
        "genai_chatbot.cli.serve_app:worker_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        timeout_graceful_shutdown=GRACE_SECONDS,
        workers=workers,
    )
    try:
        sock = config.bind_socket()
    except SystemExit:  # uvicorn logged why (the port is taken)
        raise typer.Exit(3) from None
    supervisor = Multiprocess(config, sockets=[sock])
    try:
        supervisor.run()
    finally:
        if metrics_dir is not None:
            metrics_dir.cleanup()
    if any(process.exitcode == STARTUP_FAILURE for process in supervisor.processes):
        raise typer.Exit(3)
