"""`genai-chatbot store`: the database that `database_url` names, looked after from the command line.

`store init` prepares a new database: on DynamoDB it creates the tables (on-demand) that are missing and says
which it created and which it found; on SQLite and PostgreSQL it does what `store migrate` does. `store
migrate` brings a SQL schema up to date (the server also does at start), and says what it applied; on a
database migrated by a newer version it refuses and says so. They print where the database is, never its
password. `store export FILE` / `store import FILE` move everything stored (sessions, messages, users,
API keys) from one store to another through a JSON Lines file (`genai_chatbot.transfer`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from genai_chatbot.cli.common import ConfigOption, settings_or_exit

if TYPE_CHECKING:
    from genai_chatbot.config import Settings
    from genai_chatbot.stores import StoreChoice

app = typer.Typer(help="The history database: sessions, messages, users and keys.", no_args_is_help=True)


async def _migrate_postgres(url: str) -> list[str]:
    from genai_chatbot.chat.postgres_db import connect
    from genai_chatbot.chat.postgres_migrations import migrate

    db = await connect(url)
    try:
        return await migrate(db)
    finally:
        await db.close()


def _init_dynamodb(prefix: str, where: str) -> None:
    from genai_chatbot.chat.dynamodb_db import DynamoDBDatabase, DynamoDBUnavailableError
    from genai_chatbot.chat.dynamodb_tables import ensure_tables

    database = DynamoDBDatabase(prefix)
    try:
        created = database.call(lambda client: ensure_tables(client, prefix, typer.echo))
    except DynamoDBUnavailableError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        database.close()
    state = f"created {len(created)} table(s)" if created else "all tables were there already"
    typer.echo(f"{where}: {state}.")


@app.command("init")
def init(config: ConfigOption = None) -> None:
    """Create the store's tables (DynamoDB, on-demand) or schema (SQL) where missing; safe to run again."""
    migrate(config)


@app.command("migrate")
def migrate(config: ConfigOption = None) -> None:
    """Apply the schema migrations the database lacks (run it before starting a new version's replicas)."""
    settings = settings_or_exit(config)
    choice = _store_or_exit(settings)
    if choice.kind == "dynamodb":  # no migrations: the item layout is kept compatible instead
        _init_dynamodb(choice.table_prefix, choice.where)
        return
    if choice.kind == "sqlite":
        from genai_chatbot.chat.sqlite_store import MIGRATIONS, SQLiteHistoryStore

        asyncio.run(SQLiteHistoryStore(settings.database_path).close())  # opening it migrates
        typer.echo(f"SQLite database {choice.where} is up to date ({len(MIGRATIONS)} migrations).")
        return
    from genai_chatbot.chat.postgres_db import StoreUnavailableError
    from genai_chatbot.chat.postgres_migrations import SchemaTooNewError

    try:
        applied = asyncio.run(_migrate_postgres(choice.url))
    except (StoreUnavailableError, SchemaTooNewError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    for name in applied:
        typer.echo(f"applied {name}")
    state = f"applied {len(applied)} migration(s)" if applied else "already up to date"
    typer.echo(f"PostgreSQL database {choice.where}: {state}.")


def _store_or_exit(settings: Settings) -> StoreChoice:
    from genai_chatbot.config import ConfigError
    from genai_chatbot.stores import select_store

    try:
        return select_store(settings)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


FileArgument = Annotated[Path, typer.Argument(help="The JSON Lines file (it holds every chat: keep it private).")]


@app.command("export")
def export(file: FileArgument, config: ConfigOption = None) -> None:
    """Write every session, message, user and API key (prefix and hash, never a key) to FILE."""
    settings = settings_or_exit(config)
    choice = _store_or_exit(settings)
    from genai_chatbot.transfer import export_store

    async def run() -> None:
        history, users = choice.history_store(), choice.user_store()
        try:
            counts = await export_store(history, users, file, source=choice.kind)
        finally:
            await users.close()
            await history.close()
        typer.echo(f"Exported {counts} from {choice.kind} {choice.where} to {file} (read back and checked).")

    _run_or_exit(run())


@app.command("import")
def import_(file: FileArgument, config: ConfigOption = None) -> None:
    """Add what FILE holds to the store; what the store has already (same id, name or prefix) is kept."""
    settings = settings_or_exit(config)
    choice = _store_or_exit(settings)
    if not file.is_file():
        typer.echo(f"error: {file} is not a file; give the path 'genai-chatbot store export' wrote.", err=True)
        raise typer.Exit(2)
    from genai_chatbot.transfer import import_store

    async def run() -> None:
        history, users = choice.history_store(), choice.user_store()
        try:
            report = await import_store(history, users, file)
        finally:
            await users.close()
            await history.close()
        typer.echo(f"Read {file}: {report.in_file}.")
        typer.echo(f"Imported {report.imported} into {choice.kind} {choice.where}.")
        typer.echo(f"Skipped, already in the store and kept as they are: {report.skipped}.")
        typer.echo("Checked: every imported session, message, user and key reads back from the store.")

    _run_or_exit(run())


def _run_or_exit(work: Coroutine[Any, Any, None]) -> None:
    """Run `work`; a store, file or format problem is one line on stderr and exit status 1."""
    from genai_chatbot.auth.users import UserStoreError
    from genai_chatbot.chat.store import ImportConflictError
    from genai_chatbot.export_format import ExportFormatError
    from genai_chatbot.transfer import ImportMismatchError

    problems: tuple[type[Exception], ...] = (
        ExportFormatError,
        ImportConflictError,
        ImportMismatchError,
        UserStoreError,
        OSError,
    )
    try:
        from genai_chatbot.chat.postgres_db import StoreUnavailableError
        from genai_chatbot.chat.postgres_migrations import SchemaTooNewError

        problems += (StoreUnavailableError, SchemaTooNewError)
    except ImportError:  # without psycopg there is no PostgreSQL store to fail
        pass
    try:
        asyncio.run(work)
    except problems as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
