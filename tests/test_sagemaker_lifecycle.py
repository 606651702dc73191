"""`genai-chatbot sagemaker list / stop / start / stop-idle`, run as a user runs them, against moto's server.

Each test deploys what `deploy` would (model, endpoint config and endpoint, tagged) with boto3 in a region
of its own, so the commands, which act on every tagged endpoint of a region, see only that test's. Invocation
history is seeded with CloudWatch PutMetricData. moto creates every endpoint "now"; to make one old enough
to be idle, the test moves its CreationTime back inside moto's in-process backend.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest

from aws_local import aws_env, moto_url  # noqa: F401  (fixtures)
from aws_wire import AwsWire, Error, Json, Request, wire_fixture  # noqa: F401
from genai_chatbot.config import SageMakerEndpoint, SageMakerSettings
from genai_chatbot.hosting.lifecycle import start
from genai_chatbot.hosting.tags import ENDPOINT_TAG, MANAGED_TAG, MODEL_ID_TAG
from genai_chatbot.models.providers.sagemaker import SageMakerProvider

ROLE = "arn:aws:iam::123456789012:role/sagemaker"
IMAGE = "763104351884.dkr.ecr.eu-west-1.amazonaws.com/huggingface-pytorch-tgi-inference:latest"


@pytest.fixture
def aws(aws_env: str, monkeypatch: pytest.MonkeyPatch) -> str:  # noqa: F811
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDWATCH", aws_env)
    return aws_env


def deploy(region: str, name: str, *, managed: bool = True, endpoint_tag: bool = True, count: int = 1) -> None:
    """What `genai-chatbot sagemaker deploy` leaves behind (or, untagged, what someone else deployed)."""
    sagemaker = boto3.client("sagemaker", region_name=region)
    tags = [
        {"Key": MANAGED_TAG, "Value": "true"},
        {"Key": MODEL_ID_TAG, "Value": "mistralai/Mistral-7B-Instruct-v0.3"},
        *([{"Key": ENDPOINT_TAG, "Value": name}] if endpoint_tag else []),
    ]
    tags = tags if managed else []
    sagemaker.create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer={"Image": IMAGE}, Tags=tags)
    variant = {
        "VariantName": "AllTraffic",
        "ModelName": name,
        "InitialInstanceCount": count,
        "InstanceType": "ml.m5.large",
    }
    sagemaker.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[variant], Tags=tags)
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=name, Tags=tags)


def invoked(region: str, name: str, at: datetime, count: int = 1) -> None:
    """Record `count` invocations of `name` at `at`, as SageMaker does."""
    boto3.client("cloudwatch", region_name=region).put_metric_data(
        Namespace="AWS/SageMaker",
        MetricData=[
            {
                "MetricName": "Invocations",
                "Dimensions": [{"Name": "EndpointName", "Value": name}, {"Name": "VariantName", "Value": "AllTraffic"}],
                "Timestamp": at,
                "Value": float(count),
                "Unit": "None",
            }
        ],
    )


def created_ago(region: str, name: str, minutes: int) -> None:
    """Move the endpoint's CreationTime back in moto's backend (moto's server runs in this process)."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.sagemaker.models import sagemaker_backends

    endpoint = sagemaker_backends[DEFAULT_ACCOUNT_ID][region].endpoints[name]
    endpoint.creation_time = datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=minutes)


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The command as a user runs it, with an empty settings file unless the test wrote one."""
    settings = tmp_path / "genai-chatbot.toml"
    if not settings.exists():
        settings.write_text("")
    return subprocess.run(
        [sys.executable, "-m", "genai_chatbot", "sagemaker", *args, "--config", str(settings)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=dict(os.environ),
    )


def endpoint_names(region: str) -> set[str]:
    return {e["EndpointName"] for e in boto3.client("sagemaker", region_name=region).list_endpoints()["Endpoints"]}


def config_and_model_exist(region: str, name: str) -> bool:
    sagemaker = boto3.client("sagemaker", region_name=region)
    sagemaker.describe_endpoint_config(EndpointConfigName=name)  # raises when gone
    sagemaker.describe_model(ModelName=name)
    return True


@pytest.mark.usefixtures("aws")
def test_list_shows_only_tagged_endpoints_with_instances_and_last_invocation(tmp_path: Path) -> None:
    region = "eu-north-1"
    deploy(region, "list-used", count=2)
    deploy(region, "list-unused")
    deploy(region, "list-someone-elses", managed=False)
    invoked(region, "list-used", datetime.now(UTC) - timedelta(hours=3))

    result = run(tmp_path, "list", "--region", region)

    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[1:]}
    assert set(rows) == {"list-used", "list-unused"}, "an untagged endpoint is not ours to list"
    assert "InService" in rows["list-used"] and "2 x ml.m5.large" in rows["list-used"]
    last = (datetime.now(UTC) - timedelta(hours=3)).strftime("%Y-%m-%d")
    assert f"{last} " in rows["list-used"] and "never" not in rows["list-used"]
    assert "never in the last 7 days" in rows["list-unused"]
    assert "mistralai/Mistral-7B-Instruct-v0.3" in rows["list-unused"]


@pytest.mark.usefixtures("aws")
@pytest.mark.slow  # CLI subprocesses against moto
async def test_stop_keeps_model_and_config_the_model_list_says_stopped_and_start_brings_it_back(
    tmp_path: Path,
) -> None:
    region = "eu-central-1"
    deploy(region, "cycle-llm", endpoint_tag=False)  # stop adds the tag that finds the kept config

    stopped = run(tmp_path, "stop", "cycle-llm", "--region", region)

    assert stopped.returncode == 0, stopped.stderr
    assert "cycle-llm" not in endpoint_names(region)
    assert config_and_model_exist(region, "cycle-llm")
    again = run(tmp_path, "stop", "cycle-llm", "--region", region)
    assert again.returncode == 1 and "is already stopped; start it with" in again.stderr
    listing = run(tmp_path, "list", "--region", region)
    assert listing.stdout.splitlines()[1].split()[:2] == ["cycle-llm", "Stopped"]

    settings = SageMakerSettings(region=region, endpoints=[SageMakerEndpoint(name="cycle-llm")])
    provider = SageMakerProvider(settings, timeout_seconds=20)
    try:
        [model] = await provider.list_models()
    finally:
        await provider.aclose()
    assert not model.available
    assert "stopped: run `genai-chatbot sagemaker start cycle-llm`" in (model.unavailable_reason or "")

    started = run(tmp_path, "start", "cycle-llm", "--region", region)

    assert started.returncode == 0, started.stderr
    assert "cycle-llm is InService" in started.stdout
    sagemaker = boto3.client("sagemaker", region_name=region)
    described = sagemaker.describe_endpoint(EndpointName="cycle-llm")
    assert described["EndpointStatus"] == "InService"
    assert described["EndpointConfigName"] == "cycle-llm"
    tags = {t["Key"]: t["Value"] for t in sagemaker.list_tags(ResourceArn=described["EndpointArn"])["Tags"]}
    assert tags[MANAGED_TAG] == "true", "a restarted endpoint is still ours: list and stop-idle see it"
    assert run(tmp_path, "start", "cycle-llm", "--region", region).returncode == 1, "starting twice is refused"


@pytest.mark.usefixtures("aws")
@pytest.mark.slow  # CLI subprocesses against moto
def test_stop_refuses_an_endpoint_this_tool_did_not_create(tmp_path: Path) -> None:
    region = "ap-southeast-2"
    deploy(region, "not-ours", managed=False)

    result = run(tmp_path, "stop", "not-ours", "--region", region)

    assert result.returncode == 1
    assert "was not created by `genai-chatbot sagemaker deploy`" in result.stderr
    assert MANAGED_TAG in result.stderr
    assert "not-ours" in endpoint_names(region)


@pytest.mark.usefixtures("aws")
@pytest.mark.slow  # CLI subprocesses against moto
def test_start_of_an_unknown_endpoint_says_there_is_nothing_to_start(tmp_path: Path) -> None:
    result = run(tmp_path, "start", "never-deployed", "--region", "ap-southeast-2")
    assert result.returncode == 1
    assert "There is no stopped endpoint 'never-deployed'" in result.stderr
    assert "genai-chatbot sagemaker deploy" in result.stderr


@pytest.mark.usefixtures("aws")
@pytest.mark.slow  # CLI subprocesses against moto
def test_stop_idle_stops_only_idle_tagged_endpoints_and_dry_run_changes_nothing(tmp_path: Path) -> None:
    region = "ca-central-1"
    for name, managed in (("idle-ours", True), ("busy-ours", True), ("idle-theirs", False), ("young-ours", True)):
        deploy(region, name, managed=managed)
        if name != "young-ours":
            created_ago(region, name, minutes=180)
    invoked(region, "busy-ours", datetime.now(UTC) - timedelta(minutes=10), count=4)
    invoked(region, "idle-ours", datetime.now(UTC) - timedelta(minutes=90), count=9)  # before the window
    everything = {"idle-ours", "busy-ours", "idle-theirs", "young-ours"}

    dry = run(tmp_path, "stop-idle", "--after-minutes", "60", "--dry-run", "--region", region)

    assert dry.returncode == 0, dry.stderr
    assert "would stop: idle-ours (no invocations in the last 60 minutes)" in dry.stdout
    assert endpoint_names(region) == everything, "a dry run stops nothing"

    (tmp_path / "genai-chatbot.toml").write_text("[sagemaker]\nstop_idle_after_minutes = 60\n")
    real = run(tmp_path, "stop-idle", "--region", region)

    assert real.returncode == 0, real.stderr
    assert "stopped: idle-ours" in real.stdout
    assert "kept: busy-ours (4 invocations in the last 60 minutes)" in real.stdout
    assert "kept: young-ours (created 0 minutes ago, less than 60)" in real.stdout
    assert "idle-theirs" not in real.stdout
    assert endpoint_names(region) == everything - {"idle-ours"}
    assert config_and_model_exist(region, "idle-ours"), "stopped, not deleted: `start` can bring it back"


@pytest.mark.usefixtures("aws")
def test_stop_idle_without_an_idle_time_says_how_to_give_one(tmp_path: Path) -> None:
    result = run(tmp_path, "stop-idle", "--region", "ca-central-1")
    assert result.returncode == 2
    assert "pass --after-minutes M, or set sagemaker.stop_idle_after_minutes" in result.stderr


def failing_start(wire: AwsWire, statuses: list[str]) -> None:
    """A stopped endpoint 'flaky' whose recreation goes through `statuses` (Failed last) on the wire server."""
    arn = "arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/flaky"
    describes = iter(statuses)

    def describe(request: Request) -> Json | Error:
        if not wire.requests_for("SageMaker.CreateEndpoint"):
            return Error("ValidationException", 'Could not find endpoint "flaky".')
        status = next(describes)
        failure = {"FailureReason": "Image pull failed: no such image"} if status == "Failed" else {}
        body = {"EndpointName": "flaky", "EndpointArn": arn.replace("endpoint-config", "endpoint"), **failure}
        return Json({**body, "EndpointConfigName": "flaky", "EndpointStatus": status, "CreationTime": 1_700_000_000})

    config = {"EndpointConfigName": "flaky", "EndpointConfigArn": arn, "CreationTime": 1_700_000_000}
    tags = [{"Key": MANAGED_TAG, "Value": "true"}, {"Key": ENDPOINT_TAG, "Value": "flaky"}]
    wire.route("POST", "/", describe, target="SageMaker.DescribeEndpoint")
    wire.route("POST", "/", Json({"EndpointConfigs": [config]}), target="SageMaker.ListEndpointConfigs")
    wire.route("POST", "/", Json({"Tags": tags}), target="SageMaker.ListTags")
    wire.route("POST", "/", Json({**config, "ProductionVariants": []}), target="SageMaker.DescribeEndpointConfig")
    wire.route("POST", "/", Json({"EndpointArn": arn}), target="SageMaker.CreateEndpoint")


def test_start_waits_with_progress_until_failed(wire: AwsWire) -> None:
    failing_start(wire, ["Creating", "Creating", "Failed"])
    seen: list[str] = []

    described = start(
        boto3.client("sagemaker"), "flaky", lambda status, _: seen.append(status), timeout_seconds=60, poll_seconds=0
    )

    assert described["EndpointStatus"] == "Failed"
    assert seen == ["Creating", "Creating"]
    [created] = wire.requests_for("SageMaker.CreateEndpoint")
    assert created.json()["EndpointConfigName"] == "flaky"
    assert {"Key": MANAGED_TAG, "Value": "true"} in created.json()["Tags"]


@pytest.mark.slow  # CLI subprocesses against moto
def test_start_shows_why_the_endpoint_failed(wire: AwsWire, tmp_path: Path) -> None:
    failing_start(wire, ["Failed"])

    result = run(tmp_path, "start", "flaky")

    assert result.returncode == 1
    assert "endpoint 'flaky' failed to start: Image pull failed: no such image" in result.stderr


@pytest.mark.slow  # CLI subprocesses against moto
def test_without_a_region_the_commands_say_where_to_set_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))

    result = run(tmp_path, "list")

    assert result.returncode == 1
    assert "No AWS region: pass --region, set sagemaker.region, or set AWS_REGION." in result.stderr
