"""`genai-chatbot users`: add, list, disable the users of API keys and set their limits, in the server's database.

It works on `<data_dir>/chat.sqlite3` directly, so it needs no running server and no key; whoever can run
it can read that file anyway. A running server sees changes within its key cache period (10 s). Every
change is appended to the audit log as `cli:<OS user>`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from pydantic import ValidationError

from genai_chatbot.auth.factory import auth_mode, build_user_store
from genai_chatbot.auth.principal import ANONYMOUS_USER, Principal
from genai_chatbot.auth.users import (
    UnknownUserError,
    UserAccount,
    UserStore,
    UserStoreError,
    check_groups,
    check_role,
    check_user_name,
)
from genai_chatbot.cli.audit import record_cli_action
from genai_chatbot.cli.common import ConfigOption, settings_or_exit
from genai_chatbot.config import Settings
from genai_chatbot.governance.settings import Limits

T = TypeVar("T")

app = typer.Typer(help="Users of API keys: add, list, disable, set their limits.", no_args_is_help=True)


def run_on_store(config: Path | None, work: Callable[[UserStore], Awaitable[T]]) -> T:
    """Run `work` on the user store of these settings; a `UserStoreError` becomes its message and exit 1."""
    settings = settings_or_exit(config)

    async def main() -> T:
        store = build_user_store(settings)
        try:
            return await work(store)
        finally:
            await store.close()

    try:
        result = asyncio.run(main())
    except UserStoreError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    if auth_mode(settings) == "none":
        typer.echo('note: auth is "none", so keys are not checked; set auth = "api-keys" to use them.', err=True)
    return result


#: Who the terminal is without `--user`: the local user of `auth = "none"`, an admin in no group.
LOCAL_USER = Principal(ANONYMOUS_USER, "admin", method="none")


def caller_named(settings: Settings, name: str) -> Principal:
    """Who the terminal acts as: the stored user `name` with their role and groups.

    `default`, when no user of that name is stored, is the local user of `auth = "none"` (an admin, in no
    group), so a single-user install behaves as before. Any other unknown or disabled name exits 1.
    """
    user = asyncio.run(_stored_user(settings, name))
    if user is None and name == ANONYMOUS_USER:
        return LOCAL_USER
    if user is None:
        typer.echo(f"error: There is no user {name!r}; list users with 'genai-chatbot users list'.", err=True)
        raise typer.Exit(1)
    if user.disabled:
        typer.echo(f"error: User {name!r} is disabled; enable them with: genai-chatbot users enable {name}", err=True)
        raise typer.Exit(1)
    return Principal(user.name, user.role, user.groups, method="terminal")


async def _stored_user(settings: Settings, name: str) -> UserAccount | None:
    store = build_user_store(settings)
    try:
        return await store.get_user(name)
    finally:
        await store.close()


def when(timestamp: float | None) -> str:
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M") if timestamp else "-"


@app.command("add")
def add(
    name: str,
    role: Annotated[str, typer.Option(help="admin, manager or user.")] = "user",
    group: Annotated[list[str] | None, typer.Option(help="A group of the user; repeat for several.")] = None,
    config: ConfigOption = None,
) -> None:
    """Add a user (default role: user)."""
    try:
        user = UserAccount(name=check_user_name(name), role=check_role(role), groups=check_groups(tuple(group or ())))
    except UserStoreError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    run_on_store(config, lambda store: store.add_user(user))
    record_cli_action(config, "user.add", name, {"role": user.role, "groups": list(user.groups)})
    typer.echo(
        f"Added user {name!r} with role {user.role}. Create a key with: genai-chatbot keys create {name}", err=True
    )


@app.command("list")
def list_users(config: ConfigOption = None) -> None:
    """Every user, with role, groups and whether they are disabled."""
    users = run_on_store(config, lambda store: store.list_users())
    if not users:
        typer.echo("No users yet; add one with: genai-chatbot users add NAME", err=True)
        return
    width = max(len(u.name) for u in users)
    typer.echo(f"{'name':<{width}}  {'role':<7}  {'status':<8}  {'created':<16}  groups")
    for u in users:
        status = "disabled" if u.disabled else "active"
        typer.echo(f"{u.name:<{width}}  {u.role:<7}  {status:<8}  {when(u.created_at):<16}  {','.join(u.groups)}")


@app.command("disable")
def disable(name: str, config: ConfigOption = None) -> None:
    """Disable a user: none of their keys signs in any more (their history is kept)."""
    run_on_store(config, lambda store: store.update_user(name, disabled=True))
    record_cli_action(config, "user.update", name, {"disabled": True})
    typer.echo(f"Disabled user {name!r}; a running server refuses their keys within 10 seconds.", err=True)


@app.command("enable")
def enable(name: str, config: ConfigOption = None) -> None:
    """Enable a disabled user again."""
    run_on_store(config, lambda store: store.update_user(name, disabled=False))
    record_cli_action(config, "user.update", name, {"disabled": False})
    typer.echo(f"Enabled user {name!r}.", err=True)


@app.command("set")
def set_limits(
    name: str,
    budget_usd: Annotated[float | None, typer.Option(min=0, help="US dollars per budget period.")] = None,
    budget_tokens: Annotated[int | None, typer.Option(min=0, help="Tokens per budget period.")] = None,
    budget_period: Annotated[str | None, typer.Option(help="day or month (UTC; default month).")] = None,
    requests_per_minute: Annotated[int | None, typer.Option(min=1)] = None,
    tokens_per_minute: Annotated[int | None, typer.Option(min=1)] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Remove the user's limits first.")] = False,
    config: ConfigOption = None,
) -> None:
    """Set a user's own budgets and rate limits (the options given; the others stay as they are)."""
    given = {
        "budget_usd": budget_usd,
        "budget_tokens": budget_tokens,
        "budget_period": budget_period,
        "requests_per_minute": requests_per_minute,
        "tokens_per_minute": tokens_per_minute,
    }

    async def work(store: UserStore) -> UserAccount:
        user = await store.get_user(name)
        if user is None:
            raise UnknownUserError(name)
        current = {} if clear or user.limits is None else user.limits.model_dump(exclude_defaults=True)
        try:
            limits = Limits.model_validate({**current, **{k: v for k, v in given.items() if v is not None}})
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise UserStoreError(f"Invalid limits: {problems}.") from None
        return await store.update_user(name, limits=limits)

    user = run_on_store(config, work)
    typer.echo(f"{name}: {describe_limits(user.limits)}. A running server applies it within 10 seconds.", err=True)


def describe_limits(limits: Limits | None) -> str:
    """The limits that are set, as `name value` pairs, or 'no limits of their own'."""
    values = limits.model_dump(exclude_defaults=True) if limits is not None else {}
    if limits is not None and (limits.budget_usd is not None or limits.budget_tokens is not None):
        values["budget_period"] = limits.budget_period
    return ", ".join(f"{k} {v}" for k, v in values.items()) or "no limits of their own"
