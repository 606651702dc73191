"""`genai-chatbot sagemaker ...`: self-hosted models on Amazon SageMaker, from quota check to delete.

One command group made of two modules: `sagemaker_deploy` (quota, deploy, delete) and `sagemaker_lifecycle`
(list, stop, start, stop-idle).
"""

from __future__ import annotations

import typer

from genai_chatbot.cli import sagemaker_deploy, sagemaker_lifecycle

app = typer.Typer(
    help="Self-host models on Amazon SageMaker: quota, deploy, list, stop, start, stop-idle, delete.",
    no_args_is_help=True,
)
app.add_typer(sagemaker_deploy.app)
app.add_typer(sagemaker_lifecycle.app)
