"""`genai-chatbot groups`: set, list, show and delete group policies in the database the server uses.

A group set here replaces the settings file's `[groups.NAME]` whole (options left out mean no limit of
that kind, and `--models` left out means every model); `groups delete` returns to the settings file's.
Running servers apply a change within their policy cache period (5 s). Every change is audited.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from genai_chatbot.cli.audit import record_cli_action, run_on_governance
from genai_chatbot.cli.common import ConfigOption, settings_or_exit
from genai_chatbot.cli.users import when
from genai_chatbot.governance.policies import GroupView, group_views
from genai_chatbot.governance.settings import GroupPolicy
from genai_chatbot.governance.store import GovernanceStoreError, check_group_name, cli_actor
from genai_chatbot.wording import clause

app = typer.Typer(help="Group policies: the models a group may use, its budgets and limits.", no_args_is_help=True)


def _views(config: ConfigOption) -> list[GroupView]:
    settings = settings_or_exit(config)
    stored = run_on_governance(settings, lambda store: store.list_groups())
    return group_views(settings.groups, stored)


def _policy_text(policy: GroupPolicy) -> str:
    """The policy's fields as `key=value`, the models as patterns: one line of a table."""
    fields = policy.model_dump(exclude_defaults=True, exclude={"models"})
    models = "all models" if policy.models is None else "models " + (",".join(policy.models) or "(none)")
    return "  ".join([models, *(f"{key}={value}" for key, value in fields.items())])


def _option(location: tuple[int | str, ...]) -> str:
    """The option a validation error's location names (`budget_usd` → `budget-usd`)."""
    return str(location[0]).replace("_", "-") if location else "?"


@app.command("set")
def set_group(
    name: str,
    models: Annotated[
        list[str] | None, typer.Option("--models", help="A glob over model ids, e.g. 'local/*'; repeat for several.")
    ] = None,
    budget_usd: Annotated[float | None, typer.Option("--budget-usd", min=0)] = None,
    budget_tokens: Annotated[int | None, typer.Option("--budget-tokens", min=0)] = None,
    budget_period: Annotated[str | None, typer.Option("--budget-period", help="day or month (default).")] = None,
    requests_per_minute: Annotated[int | None, typer.Option("--requests-per-minute", min=1)] = None,
    tokens_per_minute: Annotated[int | None, typer.Option("--tokens-per-minute", min=1)] = None,
    config: ConfigOption = None,
) -> None:
    """Set group NAME's whole policy (it replaces the settings file's [groups.NAME])."""
    given: dict[str, Any] = {
        "models": models,
        "budget_usd": budget_usd,
        "budget_tokens": budget_tokens,
        "budget_period": budget_period,
        "requests_per_minute": requests_per_minute,
        "tokens_per_minute": tokens_per_minute,
    }
    try:
        check_group_name(name)
        policy = GroupPolicy.model_validate({k: v for k, v in given.items() if v is not None})
    except GovernanceStoreError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except ValidationError as exc:
        problems = "; ".join(f"--{_option(e['loc'])}: {clause(e['msg'])}" for e in exc.errors())
        typer.echo(f"error: invalid group policy: {problems}.", err=True)
        raise typer.Exit(2) from None
    settings = settings_or_exit(config)
    run_on_governance(settings, lambda store: store.put_group(name, policy, cli_actor()))
    record_cli_action(config, "group.set", name, {"policy": policy.model_dump(exclude_defaults=True)})
    typer.echo(f"Set group {name!r}: {_policy_text(policy)}. Running servers apply it within 5 seconds.", err=True)


@app.command("list")
def list_groups(config: ConfigOption = None) -> None:
    """Every group with a policy (from the settings file or set here), with where it comes from."""
    views = _views(config)
    if not views:
        typer.echo("No group policies: every user may use every model, without limits.", err=True)
        return
    width = max(len(v.name) for v in views)
    typer.echo(f"{'name':<{width}}  {'source':<19}  policy")
    for view in views:
        typer.echo(f"{view.name:<{width}}  {view.source:<19}  {_policy_text(view.policy)}")


@app.command("show")
def show(name: str, config: ConfigOption = None) -> None:
    """Group NAME's policy in force, the settings file's, and who set it when, as JSON."""
    found = [v for v in _views(config) if v.name == name]
    if not found:
        typer.echo(f"error: group {name!r} has no policy; 'genai-chatbot groups list' shows those that do.", err=True)
        raise typer.Exit(1)
    [view] = found
    shown = {
        "name": view.name,
        "source": view.source,
        "policy": view.policy.model_dump(),
        "settings_policy": view.settings_policy.model_dump() if view.settings_policy else None,
        "updated_at": when(view.updated_at) if view.updated_at else None,
        "updated_by": view.updated_by,
    }
    typer.echo(json.dumps(shown, indent=2))


@app.command("delete")
def delete(name: str, config: ConfigOption = None) -> None:
    """Remove group NAME's policy set here; the settings file's [groups.NAME] applies again, if any."""
    settings = settings_or_exit(config)
    removed = run_on_governance(settings, lambda store: store.delete_group(name))
    record_cli_action(config, "group.delete", name, {"policy": removed.policy.model_dump(exclude_defaults=True)})
    fallback = "its settings file policy applies again" if name in settings.groups else "it has no policy now"
    typer.echo(f"Deleted group {name!r} ({fallback}); running servers apply it within 5 seconds.", err=True)
