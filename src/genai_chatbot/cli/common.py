"""What every command shares: loading settings into one object, or exiting with the fix."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from genai_chatbot.config import ConfigError, Settings, load_settings

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="TOML settings file (default: $GENAI_CHATBOT_CONFIG or ./genai-chatbot.toml)."),
]

RegionOption = Annotated[
    str | None,
    typer.Option("--region", help="AWS region (default: sagemaker.region, then the standard AWS settings)."),
]


def settings_or_exit(config: Path | None, **overrides: Any) -> Settings:
    """Settings from file and environment, or a one-line error on stderr and exit code 2."""
    try:
        return load_settings(config, **{k: v for k, v in overrides.items() if v is not None})
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
