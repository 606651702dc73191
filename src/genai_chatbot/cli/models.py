"""`genai-chatbot models`: every configured model, and why the unavailable ones are."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer

from genai_chatbot.cli.common import ConfigOption, settings_or_exit
from genai_chatbot.config import Settings
from genai_chatbot.models.registry import build_registry
from genai_chatbot.models.types import ModelInfo


async def _list(settings: Settings) -> list[ModelInfo]:
    registry = build_registry(settings)
    try:
        return await registry.list_models()
    finally:
        await registry.aclose()


def models(
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List model ids with provider, streaming, context window and availability."""
    settings = settings_or_exit(config)
    found = asyncio.run(_list(settings))
    if as_json:
        rows = [
            {
                "id": m.id,
                "provider": m.provider,
                "streaming": m.streaming,
                "context_window": m.context_window,
                "available": m.available,
                "unavailable_reason": m.unavailable_reason,
            }
            for m in found
        ]
        typer.echo(json.dumps(rows, indent=2))
        return

    from rich.console import Console
    from rich.table import Table

    table = Table("model id", "provider", "streaming", "context", "available")
    for m in found:
        default = " (default)" if m.id == settings.default_model else ""
        status = "yes" if m.available else f"no: {m.unavailable_reason}"
        table.add_row(m.id + default, m.provider, "yes" if m.streaming else "no", str(m.context_window), status)
    console = Console()
    if not console.is_terminal:  # piped into grep or a file: never wrap ids across lines
        console = Console(width=max(console.width, 200))
    console.print(table)
