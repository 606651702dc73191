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

    from genai_chatbot.doctor import run_checks

    rows = asyncio.run(run_checks(settings))
    table = Table("check", "status", "detail", "what to do")
    for row in rows:
        table.add_row(row.component, f"[{_STYLE[row.status]}]{row.status}[/]", row.detail, row.fix or "")
    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, 200))
    console.print(table)
    if any(row.status == "error" for row in rows):
        raise typer.Exit(1)
