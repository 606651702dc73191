"""`genai-chatbot pull`: download a GGUF model from Hugging Face for the local provider."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from genai_chatbot.cli.common import ConfigOption, settings_or_exit


def pull(
    repo: Annotated[str, typer.Argument(help="Hugging Face repository, e.g. bartowski/Qwen2.5-1.5B-Instruct-GGUF.")],
    filename: Annotated[str, typer.Argument(help="The .gguf file in it, e.g. Qwen2.5-1.5B-Instruct-Q4_K_M.gguf.")],
    revision: Annotated[str, typer.Option(help="Branch, tag or commit.")] = "main",
    config: ConfigOption = None,
) -> None:
    """Download a GGUF file into <data dir>/models, using the Hugging Face token for gated models."""
    settings = settings_or_exit(config)
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    from genai_chatbot.files import private_dir
    from genai_chatbot.pull import PullError, PullRequest
    from genai_chatbot.pull import pull as download
    from genai_chatbot.secrets import HF_TOKEN, build_provider_keys

    token = asyncio.run(build_provider_keys(settings).refresh()).get(HF_TOKEN)
    try:
        request = PullRequest(repo, filename, revision)
        columns = ("{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn())
        with Progress(*columns, console=Console(emoji=False)) as bar:
            task = bar.add_task(escape(filename), total=None)
            path = download(
                request,
                private_dir(settings.data_dir) / "models",
                token,
                lambda done, total: bar.update(task, completed=done, total=total),
                settings.request_timeout_seconds,
            )
    except PullError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"Downloaded {path}")
    typer.echo(f"Serve it with: GENAI_CHATBOT_LOCAL__MODEL_PATH={path} genai-chatbot serve")
