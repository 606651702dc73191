"""`genai-chatbot sagemaker delete`: only tagged resources, all three, and the settings entry."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from fake_service_quotas import SageMakerQuotas
from genai_chatbot.cli import app
from genai_chatbot.config import load_settings
from sagemaker_hosting import (  # noqa: F401
    ROLE,
    aws_env,
    cleanup_fixture,
    cli,
    endpoint_using,
    exists,
    g5_in_moto,
    moto_url,
    quotas_fixture,
    sagemaker,
)


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
