"""`genai-chatbot sagemaker deploy --create-role`: the execution role it makes, reuses, or refuses to touch."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from aws_wire import Error, Json, Request
from fake_service_quotas import SageMakerQuotas
from genai_chatbot.hosting.role import EXECUTION_ACTIONS, POLICY_NAME, ROLE_NAME
from genai_chatbot.hosting.tags import MANAGED_TAG
from sagemaker_hosting import (  # noqa: F401
    ROLE,
    aws_env,
    cleanup_fixture,
    cli,
    exists,
    g5_in_moto,
    moto_url,
    quotas_fixture,
    sagemaker,
    sagemaker_on_wire,
)

ROLE_ARN = f"arn:aws:iam::123456789012:role/{ROLE_NAME}"
TYPE = "ml.g6.2xlarge"
NOT_ASSUMABLE = Error(
    "ValidationException", f"Could not assume role {ROLE_ARN}. Please ensure that the role exists and allows "
    "principal 'sagemaker.amazonaws.com' to assume the role.",
)  # fmt: skip


def iam() -> Any:
    return boto3.client("iam", region_name="eu-west-1")


@pytest.fixture(name="role_quotas")
def role_quotas_fixture(
    quotas: SageMakerQuotas,
    moto_url: str,  # noqa: F811 (the fixture)
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[None]:
    """IAM on moto's server, room for two `TYPE` endpoints, and no role of our name left afterwards (moto's
    server is shared by the run and the name is fixed)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_IAM", moto_url)
    quotas.names.append(f"{TYPE} for endpoint usage")
    quotas.applied[f"{TYPE} for endpoint usage"] = 2
    yield
    client = iam()
    with contextlib.suppress(client.exceptions.NoSuchEntityException):
        for policy in client.list_role_policies(RoleName=ROLE_NAME)["PolicyNames"]:
            client.delete_role_policy(RoleName=ROLE_NAME, PolicyName=policy)
        client.delete_role(RoleName=ROLE_NAME)


def deploy(name: str, settings: Path, *extra: str) -> Any:
    return cli(
        "sagemaker", "deploy", "Qwen/Qwen2.5-7B-Instruct", "--instance-type", TYPE, "--name", name,
        "--yes", "--config", str(settings), *extra,
    )  # fmt: skip


def test_create_role_makes_a_tagged_role_sagemaker_can_assume_and_a_second_deploy_reuses_it(
    role_quotas: None, tmp_path: Path, cleanup: list[str]
) -> None:
    cleanup.extend(["role-first", "role-second"])
    settings = tmp_path / "genai-chatbot.toml"
    first = deploy("role-first", settings, "--create-role")
    assert first.exit_code == 0, first.output
    assert f"Created IAM role {ROLE_ARN}" in first.stderr
    role = iam().get_role(RoleName=ROLE_NAME)["Role"]
    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ]
    assert {t["Key"]: t["Value"] for t in role["Tags"]} == {MANAGED_TAG: "true"}
    assert iam().list_role_policies(RoleName=ROLE_NAME)["PolicyNames"] == [POLICY_NAME]
    document = iam().get_role_policy(RoleName=ROLE_NAME, PolicyName=POLICY_NAME)["PolicyDocument"]
    if isinstance(document, str):
        document = json.loads(document)
    [statement] = document["Statement"]
    assert (statement["Effect"], statement["Resource"]) == ("Allow", "*")
    assert sorted(statement["Action"]) == sorted(EXECUTION_ACTIONS)
    assert "ecr:BatchGetImage" in statement["Action"] and "logs:PutLogEvents" in statement["Action"]
    assert sagemaker().describe_model(ModelName="role-first")["ExecutionRoleArn"] == ROLE_ARN

    second = deploy("role-second", settings, "--create-role")
    assert second.exit_code == 0, second.output
    assert f"Using IAM role {ROLE_ARN}" in second.stderr and "Created IAM role" not in second.stderr
    assert iam().get_role(RoleName=ROLE_NAME)["Role"]["CreateDate"] == role["CreateDate"]
    assert sagemaker().describe_model(ModelName="role-second")["ExecutionRoleArn"] == ROLE_ARN


def test_a_role_of_that_name_without_our_tag_is_refused_before_anything_is_created(
    role_quotas: None, quotas: SageMakerQuotas, tmp_path: Path
) -> None:
    trust = {"Version": "2012-10-17", "Statement": []}
    iam().create_role(RoleName=ROLE_NAME, AssumeRolePolicyDocument=json.dumps(trust))
    settings = tmp_path / "genai-chatbot.toml"
    result = deploy("role-foreign", settings, "--create-role")
    assert result.exit_code == 1
    assert f"An IAM role called {ROLE_NAME} already exists and was not made by genai-chatbot" in result.stderr
    assert f"pass --role-arn {ROLE_ARN} to use it" in result.stderr
    assert "Nothing was created" in result.stderr
    assert iam().get_role(RoleName=ROLE_NAME)["Role"].get("Tags", []) == []
    assert iam().list_role_policies(RoleName=ROLE_NAME)["PolicyNames"] == []
    assert not any(exists(kind, "role-foreign") for kind in ("model", "config", "endpoint"))
    assert quotas.list_calls() == 0
    assert not settings.exists()


def test_create_role_with_role_arn_is_a_usage_error_that_creates_no_role(role_quotas: None, tmp_path: Path) -> None:
    result = deploy("role-both", tmp_path / "s.toml", "--create-role", "--role-arn", ROLE)
    assert result.exit_code == 2
    assert "--create-role and --role-arn both choose the execution role; pass only one" in result.stderr
    assert ROLE_NAME not in [r["RoleName"] for r in iam().list_roles()["Roles"]]
    assert not exists("model", "role-both")


def _create_model_failing(times: int) -> Any:
    calls = {"n": 0}

    def reply(request: Request) -> Json | Error:
        calls["n"] += 1
        return NOT_ASSUMABLE if calls["n"] <= times else Json({"ModelArn": "arn:aws:sagemaker:eu-west-1:1:model/x"})

    return reply


def test_create_model_is_retried_while_sagemaker_cannot_assume_the_new_role_yet(
    role_quotas: None, quotas: SageMakerQuotas, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wire = sagemaker_on_wire(quotas, monkeypatch, "InService")
    wire.route("POST", "/", _create_model_failing(2), target="SageMaker.CreateModel")
    result = deploy("role-propagating", tmp_path / "s.toml", "--create-role", "--role-retry-seconds", "0")
    assert result.exit_code == 0, result.output
    assert result.stderr.count("SageMaker cannot assume the new role yet") == 2
    assert [r.json()["ExecutionRoleArn"] for r in wire.requests_for("SageMaker.CreateModel")] == [ROLE_ARN] * 3
    assert len(wire.requests_for("SageMaker.CreateEndpoint")) == 1


def test_the_retry_is_bounded_and_a_role_that_never_becomes_assumable_fails_the_deploy(
    role_quotas: None, quotas: SageMakerQuotas, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wire = sagemaker_on_wire(quotas, monkeypatch, "InService")
    wire.route("POST", "/", NOT_ASSUMABLE, target="SageMaker.CreateModel")
    result = deploy("role-never", tmp_path / "s.toml", "--create-role", "--role-retry-seconds", "0")
    assert result.exit_code == 1
    assert "SageMaker refused to create role-never" in result.stderr and "Could not assume role" in result.stderr
    assert len(wire.requests_for("SageMaker.CreateModel")) == 6
    assert not wire.requests_for("SageMaker.CreateEndpoint")


def test_a_role_given_with_role_arn_is_not_retried(
    role_quotas: None, quotas: SageMakerQuotas, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wire = sagemaker_on_wire(quotas, monkeypatch, "InService")
    wire.route("POST", "/", NOT_ASSUMABLE, target="SageMaker.CreateModel")
    result = deploy("role-given", tmp_path / "s.toml", "--role-arn", ROLE, "--role-retry-seconds", "0")
    assert result.exit_code == 1
    assert len(wire.requests_for("SageMaker.CreateModel")) == 1
