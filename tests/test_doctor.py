"""`genai-chatbot doctor`: it finds what is wrong, says what to do, and never prints a key."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from aws_local import aws_env, moto_url  # noqa: F401  (fixtures)
from fake_hub import GOOD_TOKEN
from genai_chatbot.config import SageMakerEndpoint, SageMakerSettings, Settings
from genai_chatbot.doctor import run_checks


async def test_a_healthy_setup_reports_the_local_model_and_the_keys_file(tmp_path: Path) -> None:
    rows = await run_checks(Settings(data_dir=tmp_path))
    statuses = {r.component: r.status for r in rows}
    assert statuses[f"keys file {tmp_path / 'keys.json'}"] == "ok"
    assert statuses["local"] == "ok"
    assert statuses["Hugging Face token"] == "off"
    assert not any(r.status == "error" for r in rows)


async def test_an_empty_secret_is_reported_with_the_fix(tmp_path: Path) -> None:
    (tmp_path / "keys.json").write_text("''")
    rows = await run_checks(Settings(data_dir=tmp_path))
    [keys_row] = [r for r in rows if r.component.startswith("keys file")]
    assert keys_row.status == "error"
    assert "store {} when no keys are needed" in keys_row.detail
    assert [r.status for r in rows if r.component == "local"] == ["ok"]  # the local model keeps working


async def test_the_hf_token_is_checked_with_the_hub(tmp_path: Path, hub: str) -> None:
    token_file = tmp_path / "hf-token"
    token_file.write_text(f"{GOOD_TOKEN}\n")
    [good] = [
        r for r in await run_checks(Settings(data_dir=tmp_path, hf_token_file=token_file)) if "Hugging" in r.component
    ]
    assert (good.status, good.detail) == ("ok", "accepted for user alice")
    token_file.write_text("hf_revoked_token\n")
    [bad] = [
        r for r in await run_checks(Settings(data_dir=tmp_path, hf_token_file=token_file)) if "Hugging" in r.component
    ]
    assert bad.status == "error"
    assert bad.fix is not None and "huggingface.co/settings/tokens" in bad.fix
    assert "hf_revoked_token" not in f"{bad.detail} {bad.fix}"


def test_the_command_exits_1_and_prints_no_key_values(tmp_path: Path) -> None:
    (tmp_path / "keys.json").write_text('{"OPENAI_API_KEY": "sk-do-not-print-me", "COHERE_API_KEY": 5}')
    result = subprocess.run(
        [sys.executable, "-m", "genai_chatbot", "doctor"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "GENAI_CHATBOT_DATA_DIR": str(tmp_path), "HF_ENDPOINT": "http://127.0.0.1:9"},
    )
    assert result.returncode == 1
    assert "'COHERE_API_KEY' must be a string" in result.stdout
    assert "sk-do-not-print-me" not in result.stdout + result.stderr


@pytest.mark.usefixtures("aws_env")
async def test_sagemaker_endpoints_are_checked_for_in_service(tmp_path: Path) -> None:
    sagemaker = boto3.client("sagemaker")
    role = "arn:aws:iam::123456789012:role/sagemaker"
    container = {"Image": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/tgi:latest"}
    sagemaker.create_model(ModelName="doctor-llm", ExecutionRoleArn=role, PrimaryContainer=container)
    variant = {"VariantName": "main", "ModelName": "doctor-llm", "InitialInstanceCount": 1}
    sagemaker.create_endpoint_config(
        EndpointConfigName="doctor-llm-config",
        ProductionVariants=[{**variant, "InstanceType": "ml.g4dn.xlarge"}],
    )
    sagemaker.create_endpoint(EndpointName="doctor-llm", EndpointConfigName="doctor-llm-config")
    endpoints = [SageMakerEndpoint(name="doctor-llm"), SageMakerEndpoint(name="never-deployed")]
    rows = await run_checks(Settings(data_dir=tmp_path, sagemaker=SageMakerSettings(endpoints=endpoints)))
    status = {r.component: (r.status, r.detail, r.fix) for r in rows}
    assert status["sagemaker/doctor-llm"] == ("ok", "InService", None)
    assert status["sagemaker/never-deployed"][:2] == ("error", "does not exist in eu-west-1")
    assert "fix the name and region" in (status["sagemaker/never-deployed"][2] or "")
