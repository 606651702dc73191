"""`genai-chatbot models`: every configured chat model, why the unavailable ones are, and broken key sources.

Embedding models are not offered for chat, so they are listed only when asked for (`--embeddings`), as the
page's model picker leaves them out and `GET /v1/models` lists them.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict
from typing import Annotated, Any

import typer

from genai_chatbot.auth.principal import Principal
from genai_chatbot.cli.common import ConfigOption, settings_or_exit
from genai_chatbot.cli.users import caller_named
from genai_chatbot.config import Settings
from genai_chatbot.governance.build import build_governor, close_governor
from genai_chatbot.models.inputs import chat_models, is_embedding_model
from genai_chatbot.models.registry import build_registry
from genai_chatbot.secrets import build_provider_keys


async def _list_here(
    settings: Settings, refresh: bool, caller: Principal | None, embeddings: bool = False
) -> tuple[list[dict[str, Any]], list[str]]:
    # The command prints key-source problems itself, once: no log line repeating them.
    registry = build_registry(settings, build_provider_keys(settings, log_errors=False))
    try:
        if refresh:
            await registry.refresh()
        models = await registry.list_models()
        problems = await registry.problems_with(models, settings.default_model)
        if caller is not None and not caller.is_admin:  # only what their groups allow
            governor = build_governor(settings, model_access=True)
            try:
                models = await governor.visible_models(caller, models)
            finally:
                await close_governor(governor)
    finally:
        await registry.aclose()
    models = [m for m in models if is_embedding_model(m)] if embeddings else chat_models(models)
    rows = [
        {
            "id": m.id,
            "provider": m.provider,
            "streaming": m.streaming,
            "context_window": m.context_window,
            "available": m.available,
            "unavailable_reason": m.unavailable_reason,
            "defaults": asdict(m.defaults),
        }
        for m in models
    ]
    return rows, problems


def _list_on_server(url: str, refresh: bool, token: str | None) -> tuple[list[dict[str, Any]], list[str]]:
    import httpx

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=60) as client:
        if refresh:
            _check(client.post("/api/models/refresh"))
        listing = _check(client.get("/api/models")).json()
    hidden = ("display_name", "input_modalities")
    rows = [{k: v for k, v in m.items() if k not in hidden} for m in listing["models"]]
    return rows, list(listing.get("problems", []))


def _check(response: Any) -> Any:
    """The response when it succeeded; else the server's own message on stderr and exit 1."""
    if response.is_success:
        return response
    try:
        message = response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = f"{response.status_code} {response.reason_phrase}"
    hint = " Pass --api-key or set GENAI_CHATBOT_API_KEY." if response.status_code == 401 else ""
    typer.echo(f"error: the server answered {response.status_code}: {message}{hint}", err=True)
    raise typer.Exit(1)


def models(
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    refresh: Annotated[
        bool, typer.Option("--refresh", help="Re-read the keys secret and the providers' model lists now.")
    ] = False,
    server: Annotated[
        str | None,
        typer.Option(help="Ask a running server (e.g. http://127.0.0.1:8000) instead; with --refresh it re-reads too."),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            "--token",
            envvar=["GENAI_CHATBOT_API_KEY", "GENAI_CHATBOT_TOKEN"],
            help="API key for --server (sent as 'Authorization: Bearer'); --token is its old name.",
        ),
    ] = None,
    user: Annotated[
        str | None,
        typer.Option("--user", "-u", help="Only the models this user of the user store may use (their groups)."),
    ] = None,
    embeddings: Annotated[
        bool, typer.Option("--embeddings", help="List the embedding models (for POST /v1/embeddings) instead.")
    ] = False,
) -> None:
    """List chat model ids with provider, streaming, context window and availability."""
    settings = settings_or_exit(config)
    if server:
        if user or embeddings:
            typer.echo(
                "error: --user and --embeddings list here; with --server the API key says who you are, and "
                "the server's GET /v1/models lists its embedding models.",
                err=True,
            )
            raise typer.Exit(2)
        rows, problems = _list_on_server(server, refresh, api_key)
    else:
        caller = caller_named(settings, user) if user else None
        rows, problems = asyncio.run(_list_here(settings, refresh, caller, embeddings))
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
    else:
        _print_table(rows, settings.default_model)
    for problem in dict.fromkeys(problems):  # once each, whatever the sources
        typer.echo(f"warning: {problem}", err=True)


def _print_table(rows: list[dict[str, Any]], default_model: str) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table("model id", "provider", "streaming", "context", "available")
    for m in rows:
        # A server's rows say which is its default; here it is the one of these settings.
        default = " (default)" if m.get("default", m["id"] == default_model) else ""
        status = "yes" if m["available"] else f"no: {m['unavailable_reason']}"
        # Text, not markup: ids and reasons are user values (":secret:" would become an emoji).
        table.add_row(
            Text(m["id"] + default),
            Text(m["provider"]),
            "yes" if m["streaming"] else "no",
            str(m["context_window"]),
            Text(status),
        )
    console = Console(emoji=False)
    if not console.is_terminal:  # piped into grep or a file: never wrap ids across lines
        console = Console(width=max(console.width, 200), emoji=False)
    console.print(table)
