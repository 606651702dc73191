"""`genai-chatbot store`: the database that `database_url` names, looked after from the command line.

`store init` prepares a new database: on DynamoDB it creates the tables (on-demand) that are missing and says
which it created and which it found; on SQLite and PostgreSQL it does what `store migrate` does. `store
migrate` brings a SQL schema up to date (the server also does at start), and says what it applied; on a
database migrated by a newer version it refuses and says so. They print where the database is, never its
password.
"""

from __future__ import annotations

import asyncio

import typer

from genai_chatbot.cli.common import ConfigOption, settings_or_exit

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
    from genai_chatbot.config import ConfigError
    from genai_chatbot.stores import select_store

    try:
        choice = select_store(settings)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
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
