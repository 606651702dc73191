"""`genai-chatbot serve`: the web page, the chat API and the OpenAI-compatible API on one port."""

from __future__ import annotations

from contextlib import suppress
from types import FrameType
from typing import Annotated

import typer

from genai_chatbot.cli.common import ConfigOption, settings_or_exit

# Exit status of a refusal to start with settings that would expose every chat (as for a usage error).
EXIT_UNSAFE = 2


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
) -> None:
    """Start the server: chat page at /, API docs at /docs, OpenAI-compatible API at /v1."""
    settings = settings_or_exit(config, host=host, port=port)

    import logging

    import uvicorn

    from genai_chatbot.api.app import create_app
    from genai_chatbot.api.host_check import is_loopback_address
    from genai_chatbot.auth.factory import auth_mode
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

    class GracefulServer(uvicorn.Server):
        """uvicorn's server, which on SIGTERM or Ctrl+C first ends the turns in flight.

        uvicorn waits `timeout_graceful_shutdown` seconds for open responses, then cancels them, and each
        cancelled streamed answer logged a traceback ("Exception in ASGI application"). Stopping the turns
        at the signal ends every stream on its own: the answer is stored `cancelled` with its text, its
        `end` event is sent, and the response completes well within the timeout.
        """

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            service = getattr(app.state, "service", None)
            if service is not None:
                service.stop_turns()
            super().handle_exit(sig, frame)

    logging.basicConfig(level=settings.log_level.upper(), format="%(levelname)s:     %(name)s: %(message)s")
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
    server = GracefulServer(
        uvicorn.Config(
            app, host=settings.host, port=settings.port, log_level=settings.log_level, timeout_graceful_shutdown=5
        )
    )
    with suppress(KeyboardInterrupt):
        server.run()
    if not server.started:  # as uvicorn.run: the port was taken, or the app failed to start
        raise typer.Exit(3)
