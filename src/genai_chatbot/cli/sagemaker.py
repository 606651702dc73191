"""`genai-chatbot sagemaker ...`: self-hosted models on Amazon SageMaker, from quota check to delete."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Self-host models on Amazon SageMaker: quota, deploy, list, stop, start, stop-idle, delete.",
    no_args_is_help=True,
)
