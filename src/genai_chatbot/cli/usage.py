"""`genai-chatbot usage`: tokens and cost per user, group, model or day, from the server's database.

It reads the daily usage rows directly (no server, no key), like `users`; whoever can run it can read the
database anyway.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import Annotated

import typer

from genai_chatbot.cli.common import ConfigOption, settings_or_exit
from genai_chatbot.governance.usage_report import read_usage, usage_range
from genai_chatbot.governance.usage_sql import utc_today
from genai_chatbot.governance.usage_store import UsageBy, UsageQuery, UsageRow
from genai_chatbot.models.errors import InvalidRequestError
from genai_chatbot.stores import select_store

HEADINGS = ("requests", "failed", "prompt tok", "output tok", "cost USD", "unpriced")


def _cells(row: UsageRow) -> tuple[str, ...]:
    return (
        str(row.requests),
        str(row.failed),
        str(row.prompt_tokens),
        str(row.completion_tokens),
        f"{row.cost_usd:.4f}",
        str(row.unpriced),
    )


def _date(text: str | None, option: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text) if text else None
    except ValueError:
        typer.echo(f"error: {option} {text!r} is not a date; write it as YYYY-MM-DD.", err=True)
        raise typer.Exit(2) from None


def usage(
    by: Annotated[UsageBy, typer.Option("--by", help="Group by user, group, model or day.")] = "user",
    since: Annotated[str | None, typer.Option(help="First UTC day, YYYY-MM-DD (default: 1st of the month).")] = None,
    until: Annotated[str | None, typer.Option(help="Last UTC day, included (default: today).")] = None,
    user: Annotated[str | None, typer.Option(help="Only this user's usage.")] = None,
    config: ConfigOption = None,
) -> None:
    """Usage and cost per user, group, model or day, over a date range (UTC)."""
    settings = settings_or_exit(config)
    try:
        first, last = usage_range(_date(since, "--since"), _date(until, "--until"), utc_today(time.time()))
    except InvalidRequestError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from None

    async def main() -> tuple[list[UsageRow], UsageRow, bool]:
        store = select_store(settings).usage_store()
        try:
            return await read_usage(store, UsageQuery(by, first, last, user))
        finally:
            await store.close()

    rows, total, truncated = asyncio.run(main())
    whose = f" of {user}" if user else ""
    typer.echo(f"Usage{whose} from {first} to {last} (UTC), by {by}:")
    width = max([len(by), len("total"), *(len(r.key) for r in rows)])
    typer.echo(f"{by:<{width}}  " + "  ".join(f"{h:>10}" for h in HEADINGS))
    for row in [*rows, total]:
        typer.echo(f"{row.key:<{width}}  " + "  ".join(f"{c:>10}" for c in _cells(row)))
    if truncated:
        typer.echo("(only the first 1000 rows are shown; narrow the range or pick one --user)", err=True)
    if by == "group":
        typer.echo("note: a turn counts in each group of its user, so group rows may add up to more than the total.")
    if total.unpriced:
        typer.echo(
            f"note: {total.unpriced} requests have no known cost (a model without a price, or no usage reported); "
            'price a model with [prices."MODEL"] in the settings.',
            err=True,
        )
