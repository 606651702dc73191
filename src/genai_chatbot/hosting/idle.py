"""When an endpoint was last invoked, and stopping the ones nobody used for a while (`stop-idle`).

Activity is judged from CloudWatch's `Invocations` metric (namespace AWS/SageMaker, per endpoint and
variant), which SageMaker records for every invocation whoever made it: several chatbot replicas, or
other clients of the same endpoint, all count, and no replica's memory decides alone. SageMaker emits no
datapoint in a period without invocations, so "no datapoints" means "not invoked". An endpoint created
less than the idle time ago is never stopped: it cannot have had that long to be used (a fresh `start`
must not be undone by the next scheduled run).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from genai_chatbot.hosting.lifecycle import (
    AlreadyStoppedError,
    LifecycleError,
    ManagedEndpoint,
    Variant,
    client,
    stop,
    translated,
)

NAMESPACE = "AWS/SageMaker"
METRIC = "Invocations"
#: The resolution of "last invoked" in `list`: one datapoint per hour keeps 7 days within one request.
LAST_INVOKED_PERIOD = timedelta(hours=1)
PERMISSION = "cloudwatch:GetMetricStatistics"


def cloudwatch_client(region: str | None) -> Any:
    return client("cloudwatch", region)


def _sums(
    cw: Any, endpoint: str, variants: Iterable[Variant], start: datetime, end: datetime, period: int
) -> list[Any]:
    """(Timestamp, Sum) of every datapoint of the endpoint's variants in [start, end)."""
    points: list[Any] = []
    for variant in variants:
        answer = cw.get_metric_statistics(
            Namespace=NAMESPACE,
            MetricName=METRIC,
            Dimensions=[{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": variant.name}],
            StartTime=start,
            EndTime=end,
            Period=period,
            Statistics=["Sum"],
        )
        points.extend((p["Timestamp"], float(p.get("Sum", 0))) for p in answer.get("Datapoints", []))
    return points


def last_invoked(cw: Any, endpoint: ManagedEndpoint, days: int, now: datetime | None = None) -> datetime | None:
    """The start of the latest hour with invocations in the last `days` days, or None."""
    end = now or datetime.now(UTC)
    try:
        points = _sums(
            cw,
            endpoint.name,
            endpoint.variants,
            end - timedelta(days=days),
            end,
            int(LAST_INVOKED_PERIOD.total_seconds()),
        )
    except Exception as exc:
        raise translated(exc, f"read the Invocations metric of {endpoint.name!r}", PERMISSION) from exc
    used = [timestamp for timestamp, total in points if total > 0]
    return max(used).astimezone(UTC) if used else None  # botocore may hand back local-time datetimes


@dataclass(frozen=True, slots=True)
class IdleDecision:
    """What `stop-idle` did, or would do, with one tagged endpoint, and why."""

    name: str
    action: Literal["stopped", "would stop", "kept", "failed to stop"]
    why: str


def stop_idle(
    sm: Any,
    cw: Any,
    endpoints: Iterable[ManagedEndpoint],
    after_minutes: int,
    dry_run: bool,
    now: datetime | None = None,
) -> list[IdleDecision]:
    """Stop (unless `dry_run`) the InService `endpoints` without invocations in the last `after_minutes`."""
    if after_minutes < 1:
        raise LifecycleError(f"--after-minutes must be at least 1, not {after_minutes}.")
    end = now or datetime.now(UTC)
    window = timedelta(minutes=after_minutes)
    decisions: list[IdleDecision] = []
    for endpoint in endpoints:
        if endpoint.status != "InService":
            if endpoint.status != "Stopped":
                decisions.append(IdleDecision(endpoint.name, "kept", f"it is {endpoint.status}, not InService"))
            continue
        created = endpoint.created
        if created is not None and created.tzinfo is None:
            created = created.replace(tzinfo=UTC)  # SageMaker's times are UTC
        if created is not None and end - created < window:
            age = (end - created).total_seconds() / 60
            why = f"created {age:.0f} minutes ago, less than {after_minutes}"
            decisions.append(IdleDecision(endpoint.name, "kept", why))
            continue
        try:
            points = _sums(cw, endpoint.name, endpoint.variants, end - window, end, after_minutes * 60)
        except Exception as exc:
            raise translated(exc, f"read the Invocations metric of {endpoint.name!r}", PERMISSION) from exc
        invocations = sum(total for _, total in points)
        if invocations > 0:
            why = f"{invocations:.0f} invocations in the last {after_minutes} minutes"
            decisions.append(IdleDecision(endpoint.name, "kept", why))
            continue
        why = f"no invocations in the last {after_minutes} minutes"
        if not dry_run:
            try:
                stop(sm, endpoint.name)
            except AlreadyStoppedError:  # by another replica's run since the listing: nothing left to do
                decisions.append(IdleDecision(endpoint.name, "kept", "already stopped by another run"))
                continue
            except LifecycleError as exc:  # the others still get their turn; the command then exits 1
                decisions.append(IdleDecision(endpoint.name, "failed to stop", f"{why}: {exc}"))
                continue
        decisions.append(IdleDecision(endpoint.name, "would stop" if dry_run else "stopped", why))
    return decisions
