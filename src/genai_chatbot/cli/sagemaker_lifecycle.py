"""`genai-chatbot sagemaker list / stop / start / stop-idle`: the life of endpoints `deploy` created.

The AWS work is in `genai_chatbot.hosting.lifecycle` and `.idle`; these commands parse options and print.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer

from genai_chatbot.cli.common import ConfigOption, RegionOption, settings_or_exit

app = typer.Typer()  # merged into the `sagemaker` group by cli/sagemaker.py


def _region(config: Path | None, region: str | None) -> str | None:
    return region or settings_or_exit(config).sagemaker.region


def _fail(exc: Exception) -> NoReturn:
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(1)


@app.command("list")
def list_endpoints(
    config: ConfigOption = None,
    region: RegionOption = None,
    days: Annotated[int, typer.Option(min=1, max=60, help="How far back to look for the last invocation.")] = 7,
) -> None:
    """The endpoints `deploy` created (tagged), stopped ones too: status, instances and last invocation."""
    from genai_chatbot.hosting.idle import cloudwatch_client, last_invoked
    from genai_chatbot.hosting.lifecycle import LifecycleError, managed_endpoints, sagemaker_client

    where = _region(config, region)
    try:
        sm, cw = sagemaker_client(where), cloudwatch_client(where)
        endpoints = managed_endpoints(sm)
        rows = []
        for e in endpoints:
            last = last_invoked(cw, e, days)
            when = f"{last:%Y-%m-%d %H:00} UTC (hour)" if last else f"never in the last {days} days"
            instances = ", ".join(f"{v.instance_count} x {v.instance_type}" for v in e.variants) or "-"
            rows.append((e.name, e.status, instances, when, e.model_id or "-"))
    except LifecycleError as exc:
        _fail(exc)
    if not rows:
        typer.echo(f"No endpoints created by `genai-chatbot sagemaker deploy` in {sm.meta.region_name}.")
        return
    header = ("NAME", "STATUS", "INSTANCES", "LAST INVOKED", "MODEL")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        typer.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


@app.command()
def stop(
    name: Annotated[str, typer.Argument(help="The endpoint's name.")],
    config: ConfigOption = None,
    region: RegionOption = None,
) -> None:
    """Delete the endpoint (no more instance cost) but keep its model and config for `start`."""
    from genai_chatbot.hosting.lifecycle import LifecycleError, sagemaker_client
    from genai_chatbot.hosting.lifecycle import stop as stop_endpoint

    try:
        kept = stop_endpoint(sagemaker_client(_region(config, region)), name)
    except LifecycleError as exc:
        _fail(exc)
    typer.echo(f"Stopped {name}: the endpoint is deleted; its model and endpoint config {kept!r} are kept.")
    typer.echo(f"Start it again with `genai-chatbot sagemaker start {name}`.")


@app.command()
def start(
    name: Annotated[str, typer.Argument(help="The stopped endpoint's name.")],
    config: ConfigOption = None,
    region: RegionOption = None,
    timeout_minutes: Annotated[int, typer.Option(min=1, help="Stop waiting (not starting) after this long.")] = 30,
) -> None:
    """Recreate a stopped endpoint from its kept config and wait until it is InService or Failed."""
    from genai_chatbot.hosting.lifecycle import LifecycleError, sagemaker_client
    from genai_chatbot.hosting.lifecycle import start as start_endpoint

    def progress(status: str, elapsed: float) -> None:
        typer.echo(f"{name}: {status} ({elapsed / 60:.0f} min)", err=True)

    try:
        described = start_endpoint(
            sagemaker_client(_region(config, region)), name, progress, timeout_seconds=timeout_minutes * 60
        )
    except LifecycleError as exc:
        _fail(exc)
    if described["EndpointStatus"] == "Failed":
        reason = described.get("FailureReason") or "no reason given"
        typer.echo(f"error: endpoint {name!r} failed to start: {reason}", err=True)
        typer.echo(
            "If it names capacity or a quota, try another instance type or ask for a quota increase "
            "(`genai-chatbot sagemaker quota`); then `genai-chatbot sagemaker stop` and `start` it again.",
            err=True,
        )
        raise typer.Exit(1)
    typer.echo(f"{name} is InService. Chat with it as sagemaker/{name}.")


@app.command("stop-idle")
def stop_idle(
    config: ConfigOption = None,
    region: RegionOption = None,
    after_minutes: Annotated[
        int | None,
        typer.Option(min=1, help="Idle time that stops an endpoint (default: sagemaker.stop_idle_after_minutes)."),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what would be stopped.")] = False,
) -> None:
    """Stop the tagged InService endpoints without invocations (CloudWatch) for a while; for cron or EventBridge."""
    from genai_chatbot.hosting.idle import cloudwatch_client
    from genai_chatbot.hosting.idle import stop_idle as stop_idle_endpoints
    from genai_chatbot.hosting.lifecycle import LifecycleError, managed_endpoints, sagemaker_client

    settings = settings_or_exit(config)
    minutes = after_minutes or settings.sagemaker.stop_idle_after_minutes
    if minutes is None:
        typer.echo(
            "error: no idle time: pass --after-minutes M, or set sagemaker.stop_idle_after_minutes "
            "(e.g. 60) in the settings file.",
            err=True,
        )
        raise typer.Exit(2)
    where = region or settings.sagemaker.region
    try:
        sm = sagemaker_client(where)
        decisions = stop_idle_endpoints(sm, cloudwatch_client(where), managed_endpoints(sm), minutes, dry_run)
    except LifecycleError as exc:
        _fail(exc)
    for d in decisions:
        typer.echo(f"{d.action}: {d.name} ({d.why})", err=d.action == "failed to stop")
    if not any(d.action != "kept" for d in decisions):
        typer.echo(f"Nothing to stop: no tagged InService endpoint has been idle for {minutes} minutes.")
    if any(d.action == "failed to stop" for d in decisions):
        raise typer.Exit(1)
