"""Listing, stopping and starting the endpoints `genai-chatbot sagemaker deploy` created.

An endpoint costs money for every hour its instances run, whether or not anyone chats; its model and
endpoint config cost nothing. So `stop` deletes only the endpoint and keeps the other two, and `start`
recreates the endpoint from the kept config. Only resources tagged `MANAGED_TAG` are touched: deleting
someone else's endpoint is not ours to do. The kept config is found by `tags.kept_config` (its name
contains the endpoint's, and it carries `ENDPOINT_TAG`); `stop` adds that tag when an older deploy left
it out, so whatever it stops, `start` can find again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from genai_chatbot.hosting.tags import (
    ENDPOINT_TAG,
    MANAGED_TAG,
    MODEL_ID_TAG,
    TAG_PREFIX,
    is_managed,
    kept_config,
    tags_of,
)
from genai_chatbot.models.providers._aws import error_code, error_message

#: How long `start` waits for InService by default: TGI on a GPU usually needs 5-15 minutes.
START_TIMEOUT_SECONDS = 30 * 60
_SETTLED = ("InService", "Failed")


class LifecycleError(Exception):
    """A command could not do what was asked; the message says why and what to do."""


class AlreadyStoppedError(LifecycleError):
    """`stop` found the endpoint gone and its config kept: someone (or another stop-idle run) stopped it."""


@dataclass(frozen=True, slots=True)
class Variant:
    name: str
    instance_type: str
    instance_count: int


@dataclass(frozen=True, slots=True)
class ManagedEndpoint:
    """One endpoint this tool created: running in any state, or "Stopped" (config kept, no endpoint)."""

    name: str
    status: str
    config_name: str
    variants: tuple[Variant, ...]
    created: datetime | None  # the endpoint's CreationTime; None when stopped
    model_id: str | None


def client(service: str, region: str | None) -> Any:
    """A boto3 client of `service` in `region` (None: the standard AWS settings), or the fix for no region."""
    import boto3
    from botocore.exceptions import NoRegionError

    make: Any = boto3.client  # typed per literal service name
    try:
        return make(service, region_name=region)
    except NoRegionError:
        raise LifecycleError("No AWS region: pass --region, set sagemaker.region, or set AWS_REGION.") from None


def sagemaker_client(region: str | None) -> Any:
    return client("sagemaker", region)


def variants_of(config: dict[str, Any]) -> tuple[Variant, ...]:
    """The production variants of a DescribeEndpointConfig answer (serverless ones count 0 instances)."""
    return tuple(
        Variant(str(v["VariantName"]), str(v.get("InstanceType", "serverless")), int(v.get("InitialInstanceCount", 0)))
        for v in config.get("ProductionVariants", [])
    )


def managed_endpoints(client: Any) -> list[ManagedEndpoint]:
    """Every tagged endpoint (ListEndpoints, ListTags) and every stopped one (tagged configs without endpoint)."""
    try:
        return _managed_endpoints(client)
    except Exception as exc:
        raise translated(exc, "list the endpoints", "sagemaker:ListEndpoints, sagemaker:ListTags") from exc


def _managed_endpoints(client: Any) -> list[ManagedEndpoint]:
    found: list[ManagedEndpoint] = []
    existing: set[str] = set()
    for page in client.get_paginator("list_endpoints").paginate():
        for summary in page.get("Endpoints", []):
            existing.add(summary["EndpointName"])
            tags = tags_of(client, summary["EndpointArn"])
            if not is_managed(tags):
                continue
            described = _described(client, summary["EndpointName"])
            if described is None:  # stopped or deleted since ListEndpoints, e.g. by another replica's stop-idle
                continue
            config = client.describe_endpoint_config(EndpointConfigName=described["EndpointConfigName"])
            found.append(
                ManagedEndpoint(
                    summary["EndpointName"],
                    str(described["EndpointStatus"]),
                    str(described["EndpointConfigName"]),
                    variants_of(config),
                    described.get("CreationTime"),
                    tags.get(MODEL_ID_TAG),
                )
            )
    configs = [c for page in client.get_paginator("list_endpoint_configs").paginate() for c in page["EndpointConfigs"]]
    for summary in sorted(configs, key=lambda c: c["CreationTime"], reverse=True):  # a redeploy's config first
        tags = tags_of(client, summary["EndpointConfigArn"])
        endpoint = tags.get(ENDPOINT_TAG)
        if not is_managed(tags) or endpoint is None or endpoint in existing:
            continue
        existing.add(endpoint)  # listed once, with the config `start` would use (`tags.kept_config`)
        config = client.describe_endpoint_config(EndpointConfigName=summary["EndpointConfigName"])
        found.append(
            ManagedEndpoint(
                endpoint, "Stopped", summary["EndpointConfigName"], variants_of(config), None, tags.get(MODEL_ID_TAG)
            )
        )
    return sorted(found, key=lambda e: e.name)


def stop(client: Any, name: str) -> str:
    """Delete endpoint `name`, keeping its model and config; returns the kept config's name."""
    try:
        return _stop(client, name)
    except LifecycleError:
        raise
    except Exception as exc:
        actions = "sagemaker:DescribeEndpoint, sagemaker:ListTags, sagemaker:AddTags, sagemaker:DeleteEndpoint"
        raise translated(exc, f"stop endpoint {name!r}", actions) from exc


def _stop(client: Any, name: str) -> str:
    described = _described(client, name)
    if described is None:
        if kept_config(client, name) is not None:
            raise AlreadyStoppedError(
                f"Endpoint {name!r} is already stopped; start it with `genai-chatbot sagemaker start {name}`."
            )
        raise LifecycleError(f"There is no endpoint {name!r} in {_region(client)}; see `genai-chatbot sagemaker list`.")
    if not is_managed(tags_of(client, described["EndpointArn"])):
        raise LifecycleError(
            f"Endpoint {name!r} was not created by `genai-chatbot sagemaker deploy` (it has no tag "
            f"{MANAGED_TAG}=true), so it is not stopped: stopping deletes the endpoint, and this tool deletes "
            "only its own. Delete it in the SageMaker console if that is what you want."
        )
    config_name = str(described["EndpointConfigName"])
    if name not in config_name:
        raise LifecycleError(
            f"Endpoint {name!r} uses endpoint config {config_name!r}, whose name does not contain the endpoint's, so "
            f"`start` could not find it again; it is not stopped. Delete and redeploy it with `genai-chatbot "
            f"sagemaker deploy --name {name}` to make it stoppable."
        )
    config = client.describe_endpoint_config(EndpointConfigName=config_name)
    config_tags = tags_of(client, config["EndpointConfigArn"])
    missing = {MANAGED_TAG: "true", ENDPOINT_TAG: name}
    add = [{"Key": k, "Value": v} for k, v in missing.items() if config_tags.get(k) != v]
    if add:  # so `start` and the model list find the kept config by its tags
        client.add_tags(ResourceArn=config["EndpointConfigArn"], Tags=add)
    client.delete_endpoint(EndpointName=name)
    return config_name


def start(
    client: Any,
    name: str,
    progress: Callable[[str, float], None],
    timeout_seconds: float = START_TIMEOUT_SECONDS,
    poll_seconds: float = 15,
) -> dict[str, Any]:
    """Recreate stopped endpoint `name` from its kept config and wait; returns the last DescribeEndpoint answer."""
    try:
        described = _described(client, name)
        if described is not None:
            raise LifecycleError(
                f"Endpoint {name!r} is not stopped: it exists ({described['EndpointStatus']}). "
                "See `genai-chatbot sagemaker list`."
            )
        config = kept_config(client, name)
        if config is None:
            raise LifecycleError(
                f"There is no stopped endpoint {name!r} in {_region(client)}: no endpoint config is tagged "
                f"{ENDPOINT_TAG}={name}. See `genai-chatbot sagemaker list`, or deploy it with "
                "`genai-chatbot sagemaker deploy`."
            )
        ours = {k: v for k, v in tags_of(client, config["EndpointConfigArn"]).items() if k.startswith(TAG_PREFIX)}
        tags = [{"Key": k, "Value": v} for k, v in ours.items()]
        client.create_endpoint(EndpointName=name, EndpointConfigName=config["EndpointConfigName"], Tags=tags)
        return wait(client, name, progress, timeout_seconds, poll_seconds)
    except LifecycleError:
        raise
    except Exception as exc:
        actions = "sagemaker:ListEndpointConfigs, sagemaker:ListTags, sagemaker:CreateEndpoint"
        raise translated(exc, f"start endpoint {name!r}", actions) from exc


def wait(
    client: Any, name: str, progress: Callable[[str, float], None], timeout_seconds: float, poll_seconds: float
) -> dict[str, Any]:
    """Poll DescribeEndpoint until InService or Failed, calling `progress(status, elapsed)` in between."""
    began = time.monotonic()
    while True:
        described = dict(client.describe_endpoint(EndpointName=name))
        elapsed = time.monotonic() - began
        if described["EndpointStatus"] in _SETTLED:
            return described
        if elapsed >= timeout_seconds:
            raise LifecycleError(
                f"Endpoint {name!r} is still {described['EndpointStatus']} after {elapsed / 60:.0f} minutes; it keeps "
                "starting without this command: check it with `genai-chatbot sagemaker list`."
            )
        progress(str(described["EndpointStatus"]), elapsed)
        time.sleep(poll_seconds)


def _described(client: Any, name: str) -> dict[str, Any] | None:
    """DescribeEndpoint's answer, or None when the endpoint does not exist."""
    from botocore.exceptions import ClientError

    from genai_chatbot.models.providers.sagemaker_status import NOT_FOUND

    try:
        return dict(client.describe_endpoint(EndpointName=name))
    except ClientError as exc:
        if NOT_FOUND.search(error_message(exc)):
            return None
        raise


def _region(client: Any) -> str:
    return str(client.meta.region_name or "the default region")


def translated(exc: Exception, doing: str, actions: str) -> LifecycleError:
    """A boto error as a LifecycleError that says what failed and how to fix it."""
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(exc, ClientError):
        code = error_code(exc)
        if code in ("AccessDeniedException", "AccessDenied"):
            return LifecycleError(f"Could not {doing}: access denied ({error_message(exc)}); allow {actions}.")
        return LifecycleError(f"Could not {doing}: {code}: {error_message(exc)}.")
    if isinstance(exc, BotoCoreError):
        from genai_chatbot.models.providers._aws import CREDENTIALS_HINT

        return LifecycleError(f"Could not {doing}: {type(exc).__name__}: {exc}; {CREDENTIALS_HINT}.")
    raise exc
