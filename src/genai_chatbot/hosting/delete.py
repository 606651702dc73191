"""Deleting what `deploy` created: the endpoint, its endpoint config and model, only when tagged as ours.

Works on a stopped endpoint too (endpoint gone, config and model left, as `stop` leaves them): the config
of the same name is then the starting point. Anything without `MANAGED_TAG` is refused or left alone, so a
typo cannot delete another team's endpoint.
"""

from __future__ import annotations

from typing import Any

from genai_chatbot.hosting.deploy import DeployError, is_missing
from genai_chatbot.hosting.tags import MANAGED_TAG


def _managed(sagemaker: Any, arn: str) -> bool:
    tags = sagemaker.list_tags(ResourceArn=arn).get("Tags", [])
    return any(tag.get("Key") == MANAGED_TAG for tag in tags)


def delete_managed(sagemaker: Any, name: str) -> list[str]:
    """Delete endpoint `name`, its endpoint config and models, only those tagged `MANAGED_TAG`; what was deleted."""
    deleted: list[str] = []
    config_name = name
    try:
        endpoint = sagemaker.describe_endpoint(EndpointName=name)
    except Exception as exc:
        if not is_missing(exc):
            raise
        endpoint = None
    if endpoint is not None:
        if not _managed(sagemaker, endpoint["EndpointArn"]):
            raise DeployError(
                f"Endpoint {name!r} was not created by genai-chatbot (no {MANAGED_TAG} tag); delete it in the "
                "SageMaker console or with the AWS CLI if you mean to."
            )
        config_name = endpoint["EndpointConfigName"]
        sagemaker.delete_endpoint(EndpointName=name)
        deleted.append(f"endpoint {name}")
    try:
        config = sagemaker.describe_endpoint_config(EndpointConfigName=config_name)
    except Exception as exc:
        if not is_missing(exc):
            raise
        config = None
    models: list[str] = []
    if config is not None and _managed(sagemaker, config["EndpointConfigArn"]):
        models = [variant["ModelName"] for variant in config.get("ProductionVariants", [])]
        sagemaker.delete_endpoint_config(EndpointConfigName=config_name)
        deleted.append(f"endpoint config {config_name}")
    elif config is None:
        models = [name]
    for model in models:
        try:
            described = sagemaker.describe_model(ModelName=model)
        except Exception as exc:
            if not is_missing(exc):
                raise
            continue
        if _managed(sagemaker, described["ModelArn"]):
            sagemaker.delete_model(ModelName=model)
            deleted.append(f"model {model}")
    return deleted
