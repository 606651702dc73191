"""`genai-chatbot doctor`: checks keys, providers and endpoints, and says what to fix."""

from __future__ import annotations

import asyncio

import typer

from genai_chatbot.cli.common import ConfigOption, settings_or_exit

_STYLE = {"ok": "green", "warning": "yellow", "error": "red", "off": "dim"}


def doctor(config: ConfigOption = None) -> None:
    """Check every keys source and provider; exit 1 when something needs fixing."""
    settings = settings_or_exit(config)
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from genai_chatbot.doctor import run_checks

    rows = asyncio.run(run_checks(settings))
    table = Table("check", "status", "detail", "what to do")
    for row in rows:
        # Text, not markup: details hold user values, where ":secret:" in an ARN would become an emoji and
        # "[[sagemaker.endpoints]]" a style tag.
        status = Text(row.status, style=_STYLE[row.status])
        table.add_row(Text(row.component), status, Text(row.detail), Text(row.fix or ""))
    console = Console(emoji=False)
    if not console.is_terminal:
        console = Console(width=max(console.width, 200), emoji=False)
    console.print(table)
    if any(row.status == "error" for row in rows):
        raise typer.Exit(1)
