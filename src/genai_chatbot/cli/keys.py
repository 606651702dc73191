"""`genai-chatbot keys`: create, list and revoke API keys, in the database the server uses.

`keys create` prints the key as the only line on stdout, so `KEY=$(genai-chatbot keys create alice)` works;
everything else goes to stderr. The key is shown this once: only its hash is stored. Creating and revoking
are audited (`cli:<OS user>`), naming the key by its prefix.
"""

from __future__ import annotations

import time
from typing import Annotated

import typer

from genai_chatbot.auth.api_keys import new_api_key, prefix_of
from genai_chatbot.auth.users import ApiKeyRecord, UnknownUserError, UserStore, UserStoreError
from genai_chatbot.cli.audit import record_cli_action
from genai_chatbot.cli.common import ConfigOption
from genai_chatbot.cli.users import run_on_store, when

app = typer.Typer(help="API keys: create, list, revoke.", no_args_is_help=True)

DAY = 86_400.0


@app.command("create")
def create(
    name: str,
    expires_in: Annotated[
        float | None, typer.Option("--expires-in", min=0.001, help="Days until the key expires (default: never).")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Create a key for user NAME and print it (only line on stdout)."""

    async def work(store: UserStore) -> tuple[str, ApiKeyRecord]:
        user = await store.get_user(name)
        if user is None:
            raise UnknownUserError(name)
        if user.disabled:
            raise UserStoreError(f"User {name!r} is disabled; enable them first: genai-chatbot users enable {name}")
        now = time.time()
        key, record = new_api_key(name, now + expires_in * DAY if expires_in else None, now)
        await store.add_key(record)
        return key, record

    key, record = run_on_store(config, work)
    record_cli_action(config, "key.create", name, {"prefix": record.prefix, "expires_at": record.expires_at})
    expiry = f"expires {when(record.expires_at)}" if record.expires_at else "never expires"
    typer.echo(f"Created key {record.prefix} for {name!r} ({expiry}). It is shown only now: store it.", err=True)
    typer.echo(key)


@app.command("list")
def list_keys(name: str, config: ConfigOption = None) -> None:
    """The keys of user NAME, by prefix (the secret is never stored, so never shown)."""
    keys = run_on_store(config, lambda store: store.list_keys(name))
    if not keys:
        typer.echo(f"{name!r} has no keys; create one with: genai-chatbot keys create {name}", err=True)
        return
    now = time.time()
    typer.echo(f"{'prefix':<12}  {'status':<7}  {'created':<16}  {'expires':<16}  last used")
    for k in keys:
        status = "revoked" if k.revoked_at else "expired" if k.expires_at and k.expires_at <= now else "active"
        typer.echo(
            f"{k.prefix:<12}  {status:<7}  {when(k.created_at):<16}  {when(k.expires_at):<16}  {when(k.last_used_at)}"
        )


@app.command("revoke")
def revoke(prefix: str, config: ConfigOption = None) -> None:
    """Revoke the key with this PREFIX (as `keys list` shows it); a whole key is accepted too."""
    record = run_on_store(config, lambda store: store.revoke_key(prefix_of(prefix), time.time()))
    record_cli_action(config, "key.revoke", record.user, {"prefix": record.prefix})
    typer.echo(
        f"Revoked key {record.prefix} of {record.user!r}; a running server refuses it within 10 seconds.", err=True
    )
