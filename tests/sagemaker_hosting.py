"""What the `genai-chatbot sagemaker quota/deploy/delete` tests share: local AWS and Hub, and helpers.

SageMaker, Secrets Manager: moto's server, running in a thread of this process, so its list of endpoint
instance types (old in moto 5.2.5: no ml.g5) is extended here (`g5_in_moto`). Service Quotas and the Hugging
Face Hub: `fake_service_quotas` and two Hub routes on a local `AwsWire` (`quotas`). moto creates every
endpoint InService at once, so tests of Failed or slow endpoints point SageMaker at that wire server too.
moto's server is shared by the whole run: each test uses its own names and instance type (instances in
use are counted across all the account's endpoints) and deletes what it made (`cleanup`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto.sagemaker.models import FakeEndpointConfig
from typer.testing import CliRunner, Result

from aws_local import aws_env as aws_env  # fixtures, re-exported for the test modules
from aws_local import moto_url as moto_url
from aws_wire import AwsWire, Error, Json, Request
from fake_service_quotas import SageMakerQuotas
from genai_chatbot.cli import app
from leak_scan import register_secret, scan_text

ROLE = "arn:aws:iam::123456789012:role/genai-chatbot-sagemaker"
TOKEN = register_secret("hf_deploytesttoken0123456789abcdef")
CONSOLE = "https://eu-west-1.console.aws.amazon.com/servicequotas/home/services/sagemaker/quotas"


@pytest.fixture(autouse=True)
def g5_in_moto(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let moto's (in-process) server accept the GPU types SageMaker has offered since 2021."""
    original = FakeEndpointConfig.validate_instance_type

    def validate(self: FakeEndpointConfig, instance_type: str) -> None:
        if not instance_type.startswith(("ml.g5.", "ml.g6.")):
            original(self, instance_type)

    monkeypatch.setattr(FakeEndpointConfig, "validate_instance_type", validate)


HUB_GATED = {"mistralai/Mistral-7B-Instruct-v0.3", "meta-llama/Llama-3.1-8B-Instruct", "someone/gated-llm"}


def hub_model(request: Request) -> Json | Error:
    """The Hub's public model metadata: whether it is gated; 404 for ids it does not know."""
    model_id = request.path.removeprefix("/api/models/")
    if model_id.startswith("someone/missing"):
        return Error("RepoNotFound", "Repository not found", 404)
    return Json({"id": model_id, "gated": "manual" if model_id in HUB_GATED else False})


def hub_auth_check(request: Request) -> Json | Error:
    """May this token download this model? Only `TOKEN` may, as for an account that accepted every licence."""
    if request.headers.get("authorization") != f"Bearer {TOKEN}":
        return Error("GatedRepo", "Access to this model is restricted: you must accept its conditions", 403)
    return Json({})


@pytest.fixture(name="quotas")
def quotas_fixture(aws_env: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[SageMakerQuotas]:
    wire = AwsWire().start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_SERVICE_QUOTAS", wire.url)
    monkeypatch.delenv("GENAI_CHATBOT_CONFIG", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", wire.url)  # the Hub, too
    wire.route("GET", "/api/models/.+", hub_model)
    wire.route("GET", "/api/models/.+/auth-check", hub_auth_check)
    yield SageMakerQuotas(wire).install()
    wire.stop()


@pytest.fixture(name="cleanup")
def cleanup_fixture(quotas: SageMakerQuotas) -> Iterator[list[str]]:
    """Names whose endpoint, config and model are deleted after the test: moto's server outlives it, and
    other tests list the account's (tagged) endpoints."""
    names: list[str] = []
    yield names
    client = boto3.client("sagemaker", region_name="eu-west-1")
    for name in names:
        for call, key in (
            (client.delete_endpoint, "EndpointName"),
            (client.delete_endpoint_config, "EndpointConfigName"),
            (client.delete_model, "ModelName"),
        ):
            with contextlib.suppress(client.exceptions.ClientError):  # already deleted by the test
                call(**{key: name})


def cli(*args: str) -> Result:
    result = CliRunner().invoke(app, list(args))
    scan_text(result.stdout + result.stderr, f"genai-chatbot {' '.join(args[:2])}")
    return result


def sagemaker() -> Any:
    return boto3.client("sagemaker", region_name="eu-west-1")


def tags_of(arn: str) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in sagemaker().list_tags(ResourceArn=arn)["Tags"]}


def exists(kind: str, name: str) -> bool:
    describe = {"model": "describe_model", "config": "describe_endpoint_config", "endpoint": "describe_endpoint"}
    key = {"model": "ModelName", "config": "EndpointConfigName", "endpoint": "EndpointName"}[kind]
    try:
        getattr(sagemaker(), describe[kind])(**{key: name})
    except sagemaker().exceptions.ClientError:
        return False
    return True


def endpoint_using(name: str, instance_type: str, count: int) -> None:
    """An endpoint made outside genai-chatbot (no tags), holding `count` instances of `instance_type`."""
    client = sagemaker()
    container = {"Image": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/other:1"}
    client.create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer=container)
    variant = {"VariantName": "main", "ModelName": name, "InitialInstanceCount": count, "InstanceType": instance_type}
    client.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[variant])
    client.create_endpoint(EndpointName=name, EndpointConfigName=name)


def token_secret(name: str, value: str = TOKEN) -> str:
    secrets = boto3.client("secretsmanager", region_name="eu-west-1")
    return str(secrets.create_secret(Name=name, SecretString=value)["ARN"])


def sagemaker_on_wire(
    quotas: SageMakerQuotas, monkeypatch: pytest.MonkeyPatch, status: str, reason: str | None = None
) -> AwsWire:
    """SageMaker served by the wire server (moto never lets an endpoint fail or stay Creating): nothing
    exists until the deploy creates it, then DescribeEndpoint answers `status` (and `reason`)."""
    wire = quotas.wire
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER", wire.url)
    missing = Error("ValidationException", "Could not find it.")
    for operation in ("CreateModel", "CreateEndpointConfig", "CreateEndpoint"):
        wire.route("POST", "/", Json({}), target=f"SageMaker.{operation}")
    for operation in ("DescribeModel", "DescribeEndpointConfig"):
        wire.route("POST", "/", missing, target=f"SageMaker.{operation}")
    wire.route("POST", "/", Json({"Endpoints": []}), target="SageMaker.ListEndpoints")

    def describe(request: Request) -> Json | Error:
        if not wire.requests_for("SageMaker.CreateEndpoint"):
            return missing
        name = request.json()["EndpointName"]
        described = {
            "EndpointName": name,
            "EndpointArn": f"arn:aws:sagemaker:eu-west-1:123456789012:endpoint/{name}",
            "EndpointConfigName": name,
            "EndpointStatus": status,
            "CreationTime": 0,
            "LastModifiedTime": 0,
        }
        return Json(described | ({"FailureReason": reason} if reason else {}))

    wire.route("POST", "/", describe, target="SageMaker.DescribeEndpoint")
    return wire
