"""`genai-chatbot audit`: the audit log (admin actions and sign-ins), and how commands append to it.

Admin commands (`users`, `keys`, `groups`) record what they changed with `record_cli_action`, as
`cli:<OS user>`: whoever can run them can write the database file, so the OS user is who acted.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from genai_chatbot.cli.common import ConfigOption, settings_or_exit
from genai_chatbot.config import Settings
from genai_chatbot.governance.store import (
    MAX_AUDIT_LIMIT,
    AuditEntry,
    GovernanceStore,
    GovernanceStoreError,
    cli_actor,
)

T = TypeVar("T")


def run_on_governance(settings: Settings, work: Callable[[GovernanceStore], Awaitable[T]]) -> T:
    """Run `work` on the group policies and audit log of these settings; its error becomes exit 1."""
    from genai_chatbot.stores import select_store

    async def main() -> T:
        store = select_store(settings).governance_store()
        try:
            return await work(store)
        finally:
            await store.close()

    try:
        return asyncio.run(main())
    except GovernanceStoreError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


def record_cli_action(config: Path | None, action: str, target: str, detail: dict[str, Any]) -> None:
    """Append `action` on `target` to the audit log as `cli:<OS user>`; a failure is a warning, not an error."""
    settings = settings_or_exit(config)
    entry = AuditEntry(actor=cli_actor(), action=action, target=target, detail=detail)
    try:
        run_on_governance(settings, lambda store: store.append_audit(entry))
    except Exception as exc:  # the change is made: say the log lacks it rather than pretend it failed
        typer.echo(f"warning: the change is made but could not be written to the audit log: {exc}", err=True)


def audit(
    since: Annotated[
        datetime | None, typer.Option(help="Only entries at or after this date or time (local time).")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=MAX_AUDIT_LIMIT, help="How many entries at most.")] = 50,
    actor: Annotated[str | None, typer.Option(help="Only this actor (a user id, or cli:<OS user>).")] = None,
    action: Annotated[str | None, typer.Option(help="Only this action, e.g. key.create or sign-in.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines instead of a table.")] = False,
    config: ConfigOption = None,
) -> None:
    """Admin actions and sign-ins, newest first: who did what to what, and when."""
    settings = settings_or_exit(config)
    after = since.timestamp() if since is not None else None
    entries = run_on_governance(
        settings, lambda store: store.list_audit(limit=limit, since=after, actor=actor, action=action)
    )
    if not entries:
        typer.echo("No audit entries match.", err=True)
        return
    for entry in entries:
        if as_json:
            row = {"id": entry.id, "at": entry.at, "actor": entry.actor, "action": entry.action}
            typer.echo(json.dumps({**row, "target": entry.target, "detail": entry.detail}))
            continue
        when = datetime.fromtimestamp(entry.at).strftime("%Y-%m-%d %H:%M:%S")
        typer.echo(f"{when}  {entry.actor:<20}  {entry.action:<13}  {entry.target:<20}  {entry.detail_json()}")
