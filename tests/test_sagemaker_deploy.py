"""`genai-chatbot sagemaker deploy`: checks before creating, what is created, how failures read."""

from __future__ import annotations

from pathlib import Path

import pytest

from aws_local import free_port
from fake_service_quotas import SageMakerQuotas
from genai_chatbot.config import load_settings
from genai_chatbot.hosting.image import TGI_TAG
from genai_chatbot.hosting.tags import MANAGED_TAG, MODEL_ID_TAG
from leak_scan import register_secret
from sagemaker_hosting import (  # noqa: F401
    CONSOLE,
    ROLE,
    TOKEN,
    aws_env,
    cleanup_fixture,
    cli,
    endpoint_using,
    exists,
    g5_in_moto,
    moto_url,
    quotas_fixture,
    sagemaker,
    sagemaker_on_wire,
    tags_of,
    token_secret,
)


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
    [auth_check] = quotas.wire.requests_to("/auth-check$")
    assert auth_check.path == "/api/models/mistralai/Mistral-7B-Instruct-v0.3/auth-check"
    # The token went to the model's environment (and the Hub) and nowhere else we write.
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
    wire = sagemaker_on_wire(quotas, monkeypatch, "Failed", reason)
    quotas.applied["ml.g5.2xlarge for endpoint usage"] = 1
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
    sagemaker_on_wire(quotas, monkeypatch, "Creating")
    quotas.applied["ml.g5.2xlarge for endpoint usage"] = 1
    settings = tmp_path / "genai-chatbot.toml"
    result = cli(
        "sagemaker", "deploy", "Qwen/Qwen2.5-7B-Instruct", "--name", "deploy-slow", "--wait-minutes", "0",
        "--role-arn", ROLE, "--yes", "--config", str(settings),
    )  # fmt: skip
    assert result.exit_code == 1
    assert "deploy-slow is still Creating after 0 min" in result.stderr
    assert [e.name for e in load_settings(settings).sagemaker.endpoints] == ["deploy-slow"]


def test_a_model_the_hub_calls_gated_is_refused_without_a_token_before_anything_is_created(
    quotas: SageMakerQuotas, tmp_path: Path
) -> None:
    quotas.applied["ml.g5.2xlarge for endpoint usage"] = 10
    result = cli(
        "sagemaker", "deploy", "someone/gated-llm", "--instance-type", "ml.g5.2xlarge", "--name", "deploy-hub-gated",
        "--role-arn", ROLE, "--yes", "--config", str(tmp_path / "s.toml"),
    )  # fmt: skip
    assert result.exit_code == 1
    assert "someone/gated-llm is gated" in result.stderr and "--hf-token-secret" in result.stderr
    assert not any(exists(kind, "deploy-hub-gated") for kind in ("model", "config", "endpoint"))


def test_a_token_the_hub_refuses_for_the_model_stops_the_deploy_before_anything_is_created(
    quotas: SageMakerQuotas, tmp_path: Path
) -> None:
    quotas.applied["ml.g5.2xlarge for endpoint usage"] = 10
    other = register_secret("hf_licencenotaccepted987654")
    result = cli(
        "sagemaker", "deploy", "mistralai/Mistral-7B-Instruct-v0.3", "--name", "deploy-hub-refused",
        "--hf-token-secret", token_secret("deploy-refused-token", other),
        "--role-arn", ROLE, "--yes", "--config", str(tmp_path / "s.toml"),
    )  # fmt: skip
    assert result.exit_code == 1
    assert "refused the token for mistralai/Mistral-7B-Instruct-v0.3 (HTTP 403)" in result.stderr
    assert "accept the model's licence on https://huggingface.co/mistralai/Mistral-7B-Instruct-v0.3" in result.stderr
    assert not any(exists(kind, "deploy-hub-refused") for kind in ("model", "config", "endpoint"))


def test_a_model_id_the_hub_does_not_know_is_refused(quotas: SageMakerQuotas, tmp_path: Path) -> None:
    quotas.applied["ml.g5.2xlarge for endpoint usage"] = 10
    result = cli(
        "sagemaker", "deploy", "someone/missing-llm", "--instance-type", "ml.g5.2xlarge",
        "--role-arn", ROLE, "--yes", "--config", str(tmp_path / "s.toml"),
    )  # fmt: skip
    assert result.exit_code == 1
    assert "has no model someone/missing-llm" in result.stderr


def test_deploy_goes_on_when_the_hub_cannot_be_reached(
    quotas: SageMakerQuotas, tmp_path: Path, cleanup: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    quotas.applied["ml.g6.xlarge for endpoint usage"] = 1
    quotas.names.append("ml.g6.xlarge for endpoint usage")
    cleanup.append("deploy-offline")
    result = cli(
        "sagemaker", "deploy", "Qwen/Qwen2.5-7B-Instruct", "--instance-type", "ml.g6.xlarge",
        "--name", "deploy-offline", "--role-arn", ROLE, "--yes", "--config", str(tmp_path / "s.toml"),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "could not ask the Hugging Face Hub about Qwen/Qwen2.5-7B-Instruct" in result.stderr
    assert exists("endpoint", "deploy-offline")


def test_a_name_already_taken_is_refused_before_anything_is_created(
    quotas: SageMakerQuotas, tmp_path: Path, cleanup: list[str]
) -> None:
    cleanup.append("deploy-taken")
    endpoint_using("deploy-taken", "ml.g5.24xlarge", 1)
    quotas.applied["ml.g5.2xlarge for endpoint usage"] = 10
    before = sagemaker().describe_model(ModelName="deploy-taken")["PrimaryContainer"]
    result = cli(
        "sagemaker", "deploy", "Qwen/Qwen2.5-7B-Instruct", "--name", "deploy-taken",
        "--role-arn", ROLE, "--yes", "--config", str(tmp_path / "s.toml"),
    )  # fmt: skip
    assert result.exit_code == 1
    assert "A SageMaker model and endpoint config and endpoint called deploy-taken already exists" in result.stderr
    assert sagemaker().describe_model(ModelName="deploy-taken")["PrimaryContainer"] == before
    assert quotas.list_calls() == 0  # refused before the quota was even asked
