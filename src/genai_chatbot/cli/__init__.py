"""The `genai-chatbot` command: serve, chat, models, users, keys, groups, audit, usage. One module per command group."""

from __future__ import annotations

import typer

from genai_chatbot.cli import audit, chat, doctor, groups, keys, models, pull, sagemaker, serve, store, usage, users

app = typer.Typer(
    name="genai-chatbot",
    help="A self-hosted chatbot over an embedded model, self-hosted endpoints, Amazon Bedrock and third-party APIs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


app.command("serve")(serve.serve)
app.command("chat")(chat.chat)
app.command("models")(models.models)
app.command("doctor")(doctor.doctor)
app.command("pull")(pull.pull)
app.command("usage")(usage.usage)
app.add_typer(users.app, name="users")
app.add_typer(keys.app, name="keys")
app.add_typer(groups.app, name="groups")
app.command("audit")(audit.audit)
app.add_typer(sagemaker.app, name="sagemaker")
app.add_typer(store.app, name="store")


def main() -> None:
    app()
