"""The tags that mark SageMaker resources as created by `genai-chatbot sagemaker deploy`."""

from __future__ import annotations

from typing import Any

#: Present (value "true") on every model, endpoint config and endpoint this tool creates.
MANAGED_TAG = "genai-chatbot:managed"
#: The Hugging Face model id the endpoint serves.
MODEL_ID_TAG = "genai-chatbot:hf-model-id"
#: On the endpoint config (and model) of a deployed endpoint: the endpoint's name. An endpoint config has
#: no link back to the endpoints that use it, so this tag is what lets `start NAME` find the kept config of
#: a stopped endpoint, and the model list tell "stopped" from "never deployed". The config's name must
#: contain the endpoint's name (`deploy` names it `NAME`): the lookup narrows by name before reading tags.
ENDPOINT_TAG = "genai-chatbot:endpoint"
#: Our tags all start with this; `start` copies them from the kept config onto the recreated endpoint.
TAG_PREFIX = "genai-chatbot:"


def tag_map(tags: list[dict[str, str]]) -> dict[str, str]:
    """SageMaker's `[{"Key": k, "Value": v}]` as `{k: v}`."""
    return {t["Key"]: t["Value"] for t in tags}


def is_managed(tags: dict[str, str]) -> bool:
    return tags.get(MANAGED_TAG) == "true"


def tags_of(client: Any, arn: str) -> dict[str, str]:
    """All tags of one SageMaker resource (ListTags, every page), through a `sagemaker` boto3 client."""
    found: dict[str, str] = {}
    for page in client.get_paginator("list_tags").paginate(ResourceArn=arn):
        found.update(tag_map(page.get("Tags", [])))
    return found


def kept_config(client: Any, endpoint: str) -> dict[str, Any] | None:
    """The managed endpoint config kept for `endpoint` (DescribeEndpointConfig's answer), or None.

    Configs whose name contains the endpoint's name, tagged `MANAGED_TAG` and `ENDPOINT_TAG` = `endpoint`;
    the newest when several are. Boto errors propagate: callers word them.
    """
    candidates: list[dict[str, Any]] = []
    for page in client.get_paginator("list_endpoint_configs").paginate(NameContains=endpoint):
        candidates.extend(page.get("EndpointConfigs", []))
    for summary in sorted(candidates, key=lambda c: c["CreationTime"], reverse=True):
        tags = tags_of(client, summary["EndpointConfigArn"])
        if is_managed(tags) and tags.get(ENDPOINT_TAG) == endpoint:
            return dict(client.describe_endpoint_config(EndpointConfigName=summary["EndpointConfigName"]))
    return None
