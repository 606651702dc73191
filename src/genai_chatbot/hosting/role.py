"""The execution role `deploy --create-role` makes: assumable by SageMaker, allowed only what TGI needs.

SageMaker assumes the model's execution role to pull the container image from ECR and to write the
container's logs and metrics; nothing else (the weights come from the Hugging Face Hub over the internet,
the token sits in the model's environment). So the role carries exactly those actions, inline.

The role is ours only when it carries `MANAGED_TAG`: a role of the same name without it belongs to someone
else, and is refused rather than changed. Ours is reused by every deploy (one role serves all endpoints),
and its inline policy is put again each time so a role from an older version gets the current actions.

IAM is eventually consistent: a role created a moment ago may not yet be assumable by SageMaker, whose
CreateModel then answers ValidationException "Could not assume role". `retry_while_propagating` retries
that one error a bounded number of times.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from genai_chatbot.hosting.deploy import DeployError
from genai_chatbot.hosting.tags import MANAGED_TAG, is_managed

ROLE_NAME = "genai-chatbot-sagemaker-execution"
POLICY_NAME = "genai-chatbot-sagemaker-execution"
TRUSTED_SERVICE = "sagemaker.amazonaws.com"

TRUST_POLICY: dict[str, Any] = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": TRUSTED_SERVICE}, "Action": "sts:AssumeRole"}],
}

#: The minimum a TGI endpoint needs: pull the image, write its logs, publish its metrics.
EXECUTION_ACTIONS = (
    "ecr:GetAuthorizationToken",
    "ecr:BatchGetImage",
    "ecr:GetDownloadUrlForLayer",
    "ecr:BatchCheckLayerAvailability",
    "logs:CreateLogGroup",
    "logs:CreateLogStream",
    "logs:PutLogEvents",
    "logs:DescribeLogStreams",
    "cloudwatch:PutMetricData",
)

EXECUTION_POLICY: dict[str, Any] = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": list(EXECUTION_ACTIONS), "Resource": "*"}],
}

#: What the caller needs for `--create-role` (besides the deploy's own permissions).
CALLER_ACTIONS = "iam:GetRole, iam:CreateRole, iam:TagRole, iam:PutRolePolicy and iam:PassRole"

#: CreateModel tries while SageMaker cannot assume a role made moments ago (IAM usually takes under 10 s).
PROPAGATION_ATTEMPTS = 6

T = TypeVar("T")


class RoleError(DeployError):
    """The execution role cannot be found, made or used; the message says what to do."""


@dataclass(frozen=True, slots=True)
class ExecutionRole:
    arn: str
    created: bool


def _code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__))


def find_managed(iam: Any) -> str | None:
    """The ARN of our role when it exists, None when it does not; `RoleError` when the name is someone else's."""
    try:
        role = iam.get_role(RoleName=ROLE_NAME)["Role"]
    except Exception as exc:  # botocore's ClientError and connection errors alike
        if _code(exc) == "NoSuchEntity":
            return None
        raise RoleError(
            f"Cannot look up the IAM role {ROLE_NAME} ({_code(exc)}); --create-role needs {CALLER_ACTIONS}. "
            "Or pass --role-arn ARN with a role you made. Nothing was created."
        ) from None
    tags = {t["Key"]: t["Value"] for t in role.get("Tags", [])}
    if not is_managed(tags):
        raise RoleError(
            f"An IAM role called {ROLE_NAME} already exists and was not made by genai-chatbot (it has no "
            f"{MANAGED_TAG} tag), so it is left alone; pass --role-arn {role['Arn']} to use it as it is. "
            "Nothing was created."
        )
    return str(role["Arn"])


def planned_arn(sts: Any) -> str:
    """The ARN the role will have, from the caller's account and partition (GetCallerIdentity needs no permission)."""
    try:
        caller = sts.get_caller_identity()
    except Exception as exc:
        raise RoleError(
            f"Cannot tell the AWS account ({_code(exc)}); check the AWS credentials. Nothing was created."
        ) from None
    partition = str(caller["Arn"]).split(":")[1]
    return f"arn:{partition}:iam::{caller['Account']}:role/{ROLE_NAME}"


def ensure(iam: Any) -> ExecutionRole:
    """Our role, created (trust policy, tag, inline policy) when missing; its inline policy put again when not."""
    existing = find_managed(iam)
    try:
        if existing is None:
            created = iam.create_role(
                RoleName=ROLE_NAME,
                AssumeRolePolicyDocument=json.dumps(TRUST_POLICY),
                Description="SageMaker execution role for endpoints deployed by genai-chatbot",
                Tags=[{"Key": MANAGED_TAG, "Value": "true"}],
            )
            existing = str(created["Role"]["Arn"])
            made = True
        else:
            made = False
        iam.put_role_policy(RoleName=ROLE_NAME, PolicyName=POLICY_NAME, PolicyDocument=json.dumps(EXECUTION_POLICY))
    except Exception as exc:
        raise RoleError(
            f"Cannot create the IAM role {ROLE_NAME} or put its policy ({_code(exc)}); --create-role needs "
            f"{CALLER_ACTIONS}. Or pass --role-arn ARN with a role you made (policy in the README). "
            "No SageMaker resource was created."
        ) from None
    return ExecutionRole(existing, made)


def could_not_assume(exc: Exception) -> bool:
    """SageMaker's answer while a new role has not reached it yet."""
    return _code(exc) == "ValidationException" and "could not assume role" in str(exc).lower()


def retry_while_propagating(
    call: Callable[[], T],
    *,
    attempts: int,
    delay_seconds: float,
    note: Callable[[int], None],
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """`call()`, again after `delay_seconds` while SageMaker cannot assume the role yet, at most `attempts` times."""
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except Exception as exc:
            if attempt == attempts or not could_not_assume(exc):
                raise
            note(attempt)
            sleep(delay_seconds)
    raise AssertionError("unreachable: the last attempt returns or raises")
