"""`genai-chatbot serve`: the web page, the chat API and the OpenAI-compatible API on one port."""

from __future__ import annotations

from typing import Annotated

import typer

from genai_chatbot.cli.common import ConfigOption, settings_or_exit


def serve(
    config: ConfigOption = None,
    host: Annotated[str | None, typer.Option(help="Interface to listen on (settings: host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (settings: port).")] = None,
) -> None:
    """Start the server: chat page at /, API docs at /docs, OpenAI-compatible API at /v1."""
    settings = settings_or_exit(config, host=host, port=port)

    import logging

    import uvicorn

    from genai_chatbot.api.app import create_app

    logging.basicConfig(level=settings.log_level.upper(), format="%(levelname)s:     %(name)s: %(message)s")
    typer.echo(f"genai-chatbot on http://{settings.host}:{settings.port}  (default model: {settings.default_model})")
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        timeout_graceful_shutdown=5,
    )
