"""`genai-chatbot sagemaker quota`, `deploy` and `delete` with real boto3 against local servers.

SageMaker, Secrets Manager: moto's server, running in a thread of this process, so its list of endpoint
instance types (old in moto 5.2.5: no ml.g5) is extended here. Service Quotas: `fake_service_quotas` on a
local `AwsWire`. moto creates every endpoint InService at once, so the Failed endpoint comes from the wire
server answering SageMaker too. moto's server is shared by the whole run: each test uses its own names and
its own instance type, because instances in use are counted across all endpoints of the account.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.sagemaker.models import FakeEndpointConfig
from typer.testing import CliRunner, Result

from aws_local import aws_env, moto_url  # noqa: F401  (fixtures)
from aws_wire import AwsWire, Json, Request
from fake_service_quotas import SageMakerQuotas
from genai_chatbot.cli import app
from genai_chatbot.config import load_settings
from genai_chatbot.hosting.image import TGI_TAG
from genai_chatbot.hosting.tags import MANAGED_TAG, MODEL_ID_TAG
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


@pytest.fixture
def quotas(aws_env: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[SageMakerQuotas]:  # noqa: F811
    wire = AwsWire().start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_SERVICE_QUOTAS", wire.url)
    monkeypatch.delenv("GENAI_CHATBOT_CONFIG", raising=False)
    yield SageMakerQuotas(wire).install()
    wire.stop()


@pytest.fixture
def cleanup(quotas: SageMakerQuotas) -> Iterator[list[str]]:
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


# ------------------------------------------------------------------------------------------------ quota


def test_quota_subtracts_instances_endpoints_use_and_names_the_quota_when_more_do_not_fit(
    quotas: SageMakerQuotas, cleanup: list[str]
) -> None:
    quotas.applied["ml.g5.2xlarge for endpoint usage"] = 3
    cleanup.append("quota-other-team")
    endpoint_using("quota-other-team", "ml.g5.2xlarge", 2)
    fits = cli("sagemaker", "quota", "--instance-type", "ml.g5.2xlarge")
    too_many = cli("sagemaker", "quota", "--instance-type", "ml.g5.2xlarge", "--count", "2")
    assert fits.exit_code == 0, fits.output
    assert "quota 3 (applied, code L-9614C779), 2 in use by endpoints, 1 free" in fits.stdout
    assert "1 more ml.g5.2xlarge fit." in fits.stdout
    assert too_many.exit_code == 1
    assert "2 more ml.g5.2xlarge do NOT fit" in too_many.stdout
    assert "'ml.g5.2xlarge for endpoint usage' (code L-9614C779) to at least 4" in too_many.stdout
    assert CONSOLE in too_many.stdout
    assert quotas.list_calls() >= 4  # two pages per command: the GPU quotas are past the first 100


def test_quota_falls_back_to_the_aws_default_when_the_account_lists_none(quotas: SageMakerQuotas) -> None:
    quotas.hidden_from_account.add("ml.g5.16xlarge for endpoint usage")
    result = cli("sagemaker", "quota", "--instance-type", "ml.g5.16xlarge")
    assert result.exit_code == 1
    assert "ml.g5.16xlarge for endpoint usage in eu-west-1: quota 0 (AWS default" in result.stdout
    assert CONSOLE in result.stdout


def test_quota_of_a_type_sagemaker_does_not_offer_says_so(quotas: SageMakerQuotas) -> None:
    result = cli("sagemaker", "quota", "--instance-type", "ml.z9.mega")
    assert result.exit_code == 1
    assert "ml.z9.mega is not offered for endpoints there" in result.stdout


# ----------------------------------------------------------------------------------------------- deploy


def test_deploy_creates_tagged_tgi_model_config_and_endpoint_and_adds_it_to_settings(
    quotas: SageMakerQuotas, tmp_path: Path, cleanup: list[str]
) -> None:
    cleanup.append("deploy-mistral")
    quotas.applied["ml.g5.12xlarge for endpoint usage"] = 2
    settings = tmp_path / "genai-chatbot.toml"
    settings.write_text(
        '# our team\ndefault_model = "local/x"\n\n[sagemaker]\n# deploys use this\nregion = "eu-west-1"\n'
    )
    secret = token_secret("deploy-hf-token")
    result = cli(
        "sagemaker", "deploy", "mistralai/Mistral-7B-Instruct-v0.3", "--instance-type", "ml.g5.12xlarge",
        "--name", "deploy-mistral", "--hf-token-secret", secret, "--instance-count", "2",
        "--role-arn", ROLE, "--yes", "--config", str(settings),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "deploy-mistral is InService" in result.stdout
    model = sagemaker().describe_model(ModelName="deploy-mistral")
    container = model["PrimaryContainer"]
    assert container["Image"] == (
        f"763104351884.dkr.ecr.eu-west-1.amazonaws.com/huggingface-pytorch-tgi-inference:{TGI_TAG}"
    )
    assert container["Environment"] == {
        "HF_MODEL_ID": "mistralai/Mistral-7B-Instruct-v0.3",
        "HF_TOKEN": TOKEN,
        "SM_NUM_GPUS": "4",
        "MAX_INPUT_TOKENS": "7168",
        "MAX_TOTAL_TOKENS": "8192",
        "MESSAGES_API_ENABLED": "true",
    }
    assert model["ExecutionRoleArn"] == ROLE
    config = sagemaker().describe_endpoint_config(EndpointConfigName="deploy-mistral")
    [variant] = config["ProductionVariants"]
    assert (variant["ModelName"], variant["InstanceType"], variant["InitialInstanceCount"]) == (
        "deploy-mistral",
        "ml.g5.12xlarge",
        2,
    )
    endpoint = sagemaker().describe_endpoint(EndpointName="deploy-mistral")
    assert endpoint["EndpointConfigName"] == "deploy-mistral"
    for arn in (model["ModelArn"], config["EndpointConfigArn"], endpoint["EndpointArn"]):
        assert tags_of(arn) == {MANAGED_TAG: "true", MODEL_ID_TAG: "mistralai/Mistral-7B-Instruct-v0.3"}
    text = settings.read_text()
    assert "# our team" in text and "# deploys use this" in text
    [entry] = load_settings(settings).sagemaker.endpoints
    assert (entry.name, entry.region, entry.format, entry.context_window) == (
        "deploy-mistral",
        "eu-west-1",
        "openai-messages",
        8192,
    )
    # The token went to the model's environment and nowhere else we write.
    assert TOKEN not in result.stdout + result.stderr
    assert all(TOKEN not in f.read_text(errors="replace") for f in tmp_path.rglob("*") if f.is_file())


def test_deploy_refuses_when_the_quota_does_not_fit_and_creates_nothing(
    quotas: SageMakerQuotas, tmp_path: Path
) -> None:
    settings = tmp_path / "genai-chatbot.toml"
    result = cli(
        "sagemaker", "deploy", "Qwen/Qwen2.5-7B-Instruct", "--instance-type", "ml.g5.8xlarge",
        "--name", "deploy-no-quota", "--role-arn", ROLE, "--yes", "--config", str(settings),
    )  # fmt: skip
    assert result.exit_code == 1
    assert "'ml.g5.8xlarge for endpoint usage' (code L-" in result.stderr
    assert CONSOLE in result.stderr
    assert "Nothing was created" in result.stderr
    assert not any(exists(kind, "deploy-no-quota") for kind in ("model", "config", "endpoint"))
    assert not settings.exists()


def test_deploy_of_a_gated_model_without_a_token_is_refused_before_anything_is_created(
    quotas: SageMakerQuotas, tmp_path: Path
) -> None:
    quotas.applied["ml.g5.2xlarge for endpoint usage"] = 10
    settings = tmp_path / "genai-chatbot.toml"
    result = cli(
        "sagemaker", "deploy", "meta-llama/Llama-3.1-8B-Instruct", "--name", "deploy-gated",
        "--role-arn", ROLE, "--yes", "--config", str(settings),
    )  # fmt: skip
    assert result.exit_code == 1
    assert "meta-llama/Llama-3.1-8B-Instruct is gated on the Hugging Face Hub and no token was given" in result.stderr
    assert "--hf-token-secret" in result.stderr
    assert not any(exists(kind, "deploy-gated") for kind in ("model", "config", "endpoint"))
    assert not settings.exists()


def test_deploy_without_an_execution_role_names_the_option_and_the_setting(
    quotas: SageMakerQuotas, tmp_path: Path
) -> None:
    result = cli("sagemaker", "deploy", "Qwen/Qwen2.5-7B-Instruct", "--yes", "--config", str(tmp_path / "s.toml"))
    assert result.exit_code == 2
    assert "pass --role-arn ARN or set sagemaker.execution_role_arn" in result.stderr


FAILURES = {
    "capacity": (
        "Unable to provision requested ML compute capacity. Please retry using a different ML instance type.",
        "sagemaker quota --instance-type",
    ),
    "token": (
        "The primary container for production variant AllTraffic did not pass the ping health check. "
        "401 Client Error: Unauthorized for url: https://huggingface.co/api/models/meta-llama (gated repo)",
        "refused the token",
    ),
    "image": (
        "Failed to pull image 763104351884.dkr.ecr.eu-west-1.amazonaws.com/huggingface-pytorch-tgi-inference",
        "--image-uri",
    ),
}


@pytest.mark.parametrize("cause", sorted(FAILURES))
def test_a_failed_endpoint_shows_sagemakers_reason_and_the_fix(
    cause: str, quotas: SageMakerQuotas, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reason, fix = FAILURES[cause]
    wire = quotas.wire  # SageMaker from the wire server too: moto never lets an endpoint fail
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER", wire.url)
    quotas.applied["ml.g5.2xlarge for endpoint usage"] = 1
    for operation in ("CreateModel", "CreateEndpointConfig", "CreateEndpoint"):
        wire.route("POST", "/", Json({}), target=f"SageMaker.{operation}")
    wire.route("POST", "/", Json({"Endpoints": []}), target="SageMaker.ListEndpoints")

    def failed(request: Request) -> Json:
        name = request.json()["EndpointName"]
        return Json({
            "EndpointName": name,
            "EndpointArn": f"arn:aws:sagemaker:eu-west-1:123456789012:endpoint/{name}",
            "EndpointConfigName": name,
            "EndpointStatus": "Failed",
            "FailureReason": reason,
            "CreationTime": 0,
            "LastModifiedTime": 0,
        })  # fmt: skip

    wire.route("POST", "/", failed, target="SageMaker.DescribeEndpoint")
    settings = tmp_path / "genai-chatbot.toml"
    result = cli(
        "sagemaker", "deploy", "Qwen/Qwen2.5-7B-Instruct", "--name", "deploy-fails",
        "--role-arn", ROLE, "--yes", "--config", str(settings),
    )  # fmt: skip
    assert result.exit_code == 1
    assert f"Endpoint deploy-fails Failed: {reason}" in result.stderr
    assert fix in result.stderr
    assert "deploy-fails: Failed" in result.stderr  # the progress line
    assert len(wire.requests_for("SageMaker.CreateEndpoint")) == 1
    assert not settings.exists()


# ----------------------------------------------------------------------------------------------- delete


def test_delete_removes_endpoint_config_model_and_the_settings_entry(
    quotas: SageMakerQuotas, tmp_path: Path, cleanup: list[str]
) -> None:
    cleanup.append("delete-me")
    quotas.applied["ml.g5.4xlarge for endpoint usage"] = 1
    settings = tmp_path / "genai-chatbot.toml"
    settings.write_text('[[sagemaker.endpoints]]\n# kept\nname = "someone-elses"\n')
    deployed = cli(
        "sagemaker", "deploy", "Qwen/Qwen2.5-7B-Instruct", "--instance-type", "ml.g5.4xlarge",
        "--name", "delete-me", "--role-arn", ROLE, "--region", "eu-west-1", "--yes", "--config", str(settings),
    )  # fmt: skip
    assert deployed.exit_code == 0, deployed.output
    assert [e.name for e in load_settings(settings).sagemaker.endpoints] == ["someone-elses", "delete-me"]
    declined = CliRunner().invoke(app, ["sagemaker", "delete", "delete-me", "--config", str(settings)], input="n\n")
    assert declined.exit_code == 1 and exists("endpoint", "delete-me")
    result = cli("sagemaker", "delete", "delete-me", "--yes", "--config", str(settings))
    assert result.exit_code == 0, result.output
    assert "deleted endpoint delete-me" in result.stdout
    assert not any(exists(kind, "delete-me") for kind in ("model", "config", "endpoint"))
    assert [e.name for e in load_settings(settings).sagemaker.endpoints] == ["someone-elses"]
    assert "# kept" in settings.read_text()


def test_delete_leaves_endpoints_genai_chatbot_did_not_create(quotas: SageMakerQuotas, cleanup: list[str]) -> None:
    cleanup.append("delete-not-ours")
    endpoint_using("delete-not-ours", "ml.g5.48xlarge", 1)
    result = cli("sagemaker", "delete", "delete-not-ours", "--yes", "--region", "eu-west-1")
    assert result.exit_code == 1
    assert "was not created by genai-chatbot" in result.stderr
    assert all(exists(kind, "delete-not-ours") for kind in ("model", "config", "endpoint"))


def test_a_token_secret_that_cannot_be_read_stops_the_deploy_before_anything_is_created(
    quotas: SageMakerQuotas, tmp_path: Path
) -> None:
    quotas.applied["ml.g5.2xlarge for endpoint usage"] = 10
    json_secret = token_secret("deploy-json-token", '{"HF_TOKEN": "' + TOKEN + '"}')
    for secret, says in (("deploy-no-such-secret", "ResourceNotFoundException"), (json_secret, "holds JSON")):
        result = cli(
            "sagemaker", "deploy", "mistralai/Mistral-7B-Instruct-v0.3", "--name", "deploy-bad-secret",
            "--hf-token-secret", secret, "--role-arn", ROLE, "--yes", "--config", str(tmp_path / "s.toml"),
        )  # fmt: skip
        assert result.exit_code == 1
        assert says in result.stderr and "Nothing was created" in result.stderr
        assert TOKEN not in result.stdout + result.stderr
    assert not any(exists(kind, "deploy-bad-secret") for kind in ("model", "config", "endpoint"))


def test_an_endpoint_still_creating_when_the_wait_ends_is_recorded_and_reported(
    quotas: SageMakerQuotas, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wire = quotas.wire
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER", wire.url)
    quotas.applied["ml.g5.2xlarge for endpoint usage"] = 1
    for operation in ("CreateModel", "CreateEndpointConfig", "CreateEndpoint"):
        wire.route("POST", "/", Json({}), target=f"SageMaker.{operation}")
    wire.route("POST", "/", Json({"Endpoints": []}), target="SageMaker.ListEndpoints")
    creating = {"EndpointName": "deploy-slow", "EndpointArn": "arn:aws:sagemaker:eu-west-1:1:endpoint/deploy-slow",
                "EndpointConfigName": "deploy-slow", "EndpointStatus": "Creating", "CreationTime": 0,
                "LastModifiedTime": 0}  # fmt: skip
    wire.route("POST", "/", Json(creating), target="SageMaker.DescribeEndpoint")
    settings = tmp_path / "genai-chatbot.toml"
    result = cli(
        "sagemaker", "deploy", "Qwen/Qwen2.5-7B-Instruct", "--name", "deploy-slow", "--wait-minutes", "0",
        "--role-arn", ROLE, "--yes", "--config", str(settings),
    )  # fmt: skip
    assert result.exit_code == 1
    assert "deploy-slow is still Creating after 0 min" in result.stderr
    assert [e.name for e in load_settings(settings).sagemaker.endpoints] == ["deploy-slow"]


def test_delete_of_a_stopped_endpoint_removes_its_config_and_model(
    quotas: SageMakerQuotas, tmp_path: Path, cleanup: list[str]
) -> None:
    cleanup.append("delete-stopped")
    quotas.applied["ml.g5.xlarge for endpoint usage"] = 1
    settings = tmp_path / "genai-chatbot.toml"
    deployed = cli(
        "sagemaker", "deploy", "microsoft/Phi-3-mini-4k-instruct", "--name", "delete-stopped",
        "--role-arn", ROLE, "--yes", "--config", str(settings),
    )  # fmt: skip
    assert deployed.exit_code == 0, deployed.output
    sagemaker().delete_endpoint(EndpointName="delete-stopped")  # what `stop` does
    result = cli("sagemaker", "delete", "delete-stopped", "--yes", "--config", str(settings))
    assert result.exit_code == 0, result.output
    assert "deleted endpoint config delete-stopped" in result.stdout and "deleted model delete-stopped" in result.stdout
    assert not any(exists(kind, "delete-stopped") for kind in ("model", "config"))
    assert load_settings(settings).sagemaker.endpoints == []
