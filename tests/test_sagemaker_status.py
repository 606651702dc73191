"""Each SageMaker endpoint's state in the model list before the first chat (DescribeEndpoint).

InService and missing endpoints through moto's server; moto creates every endpoint InService at once, so
Creating, Failed, Updating and a refused DescribeEndpoint come from the local AWS wire server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import boto3
import pytest

from aws_local import aws_env, moto_url  # noqa: F401  (fixtures)
from aws_wire import AwsWire, Error, wire_fixture  # noqa: F401
from genai_chatbot.config import SageMakerEndpoint, SageMakerSettings, Settings
from genai_chatbot.doctor import run_checks
from genai_chatbot.models.providers.sagemaker import SageMakerProvider
from genai_chatbot.models.types import ModelInfo
from test_sagemaker import DESCRIBE, endpoint_status


def deploy_on_moto(name: str) -> None:
    sagemaker = boto3.client("sagemaker")
    role = "arn:aws:iam::123456789012:role/sagemaker"
    container = {"Image": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/tgi:latest"}
    sagemaker.create_model(ModelName=name, ExecutionRoleArn=role, PrimaryContainer=container)
    variant = {"VariantName": "main", "ModelName": name, "InitialInstanceCount": 1, "InstanceType": "ml.g4dn.xlarge"}
    sagemaker.create_endpoint_config(EndpointConfigName=f"{name}-config", ProductionVariants=[variant])
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-config")


async def listed(provider: SageMakerProvider) -> dict[str, ModelInfo]:
    return {m.name: m for m in await provider.list_models()}


@pytest.mark.usefixtures("aws_env")
async def test_in_service_endpoints_are_available_and_missing_ones_do_not_exist_in_the_region() -> None:
    deploy_on_moto("status-llm")
    endpoints = [SageMakerEndpoint(name="status-llm"), SageMakerEndpoint(name="status-never-deployed")]
    provider = SageMakerProvider(SageMakerSettings(region="eu-west-1", endpoints=endpoints), timeout_seconds=20)
    try:
        models = await listed(provider)
    finally:
        await provider.aclose()
    assert models["status-llm"].available
    missing = models["status-never-deployed"]
    assert not missing.available
    reason = missing.unavailable_reason or ""
    assert "SageMaker endpoint 'status-never-deployed' (eu-west-1) does not exist in eu-west-1" in reason
    assert "deploy it, or fix the name and region" in reason


@pytest.fixture
async def provider(wire: AwsWire) -> AsyncIterator[SageMakerProvider]:
    endpoints = [SageMakerEndpoint(name="chat")]
    sagemaker = SageMakerProvider(SageMakerSettings(region="us-east-1", endpoints=endpoints), timeout_seconds=20)
    yield sagemaker
    await sagemaker.aclose()


async def test_a_creating_endpoint_is_not_ready_yet(provider: SageMakerProvider, wire: AwsWire) -> None:
    wire.route("POST", "/", endpoint_status("Creating"), target=DESCRIBE)
    chat = (await listed(provider))["chat"]
    assert not chat.available
    assert "is not ready yet (Creating)" in (chat.unavailable_reason or "")
    [asked] = wire.requests_for(DESCRIBE)
    assert asked.json() == {"EndpointName": "chat"}


async def test_a_failed_endpoint_carries_its_failure_reason(provider: SageMakerProvider, wire: AwsWire) -> None:
    failure = "ResourceLimitExceeded: account-level service limit 'ml.g5.2xlarge for endpoint usage' is 0"
    wire.route("POST", "/", endpoint_status("Failed", failure), target=DESCRIBE)
    chat = (await listed(provider))["chat"]
    assert not chat.available
    reason = chat.unavailable_reason or ""
    assert f"failed: {failure}" in reason
    assert "service-quota increase" in reason, "a capacity failure says how to get capacity"


async def test_an_updating_endpoint_still_serves(provider: SageMakerProvider, wire: AwsWire) -> None:
    wire.route("POST", "/", endpoint_status("Updating"), target=DESCRIBE)
    assert (await listed(provider))["chat"].available


async def test_the_state_is_kept_until_refresh(provider: SageMakerProvider, wire: AwsWire) -> None:
    wire.route("POST", "/", endpoint_status("Failed", "container crashed"), target=DESCRIBE)
    assert not (await listed(provider))["chat"].available
    wire.route("POST", "/", endpoint_status("InService"), target=DESCRIBE)
    assert not (await listed(provider))["chat"].available
    assert len(wire.requests_for(DESCRIBE)) == 1
    await provider.refresh()
    assert (await listed(provider))["chat"].available
    assert len(wire.requests_for(DESCRIBE)) == 2


async def test_when_describe_endpoint_is_denied_the_endpoint_is_listed_and_doctor_says_why(
    provider: SageMakerProvider, wire: AwsWire, tmp_path: Path
) -> None:
    denied = Error("AccessDeniedException", "not authorized to perform: sagemaker:DescribeEndpoint", 400)
    wire.route("POST", "/", denied, target=DESCRIBE)
    assert (await listed(provider))["chat"].available, "as before the check: listed as available"

    settings = Settings(
        data_dir=tmp_path,
        local={"enabled": False},  # type: ignore[arg-type]
        sagemaker=SageMakerSettings(region="us-east-1", endpoints=[SageMakerEndpoint(name="chat")]),
    )
    rows = {r.component: r for r in await run_checks(settings)}
    assert rows["sagemaker/chat"].status == "warning"
    assert "cannot check the endpoint's status: allow sagemaker:DescribeEndpoint" in rows["sagemaker/chat"].detail
