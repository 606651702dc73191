"""Planning and creating a TGI endpoint for a Hugging Face model, waiting for it, explaining its failure.

One name serves all three resources (model, endpoint config, endpoint), so `stop` can delete only the
endpoint and `start` recreate it from the config of the same name. Every resource carries `MANAGED_TAG`;
`delete.py` refuses to touch resources without it. The Hugging Face token goes into the model's environment
(where TGI reads it) and nowhere else: not in the plan's repr, not in the tags, not in any message.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from genai_chatbot.hosting import catalogue
from genai_chatbot.hosting.image import tgi_image_uri
from genai_chatbot.hosting.tags import MANAGED_TAG, MODEL_ID_TAG

#: The longest name we give; SageMaker allows 63 characters.
MAX_NAME = 63
FINAL_STATES = frozenset({"InService", "Failed", "OutOfService"})


class DeployError(Exception):
    """A deploy (or delete) that cannot go on; the message says what happened and what to do."""


class DeployUsageError(DeployError):
    """The command line (or settings) lacks something only the user can supply: exit status 2."""


def default_name(model_id: str) -> str:
    """An endpoint name from a model id: `mistralai/Mistral-7B-Instruct-v0.3` -> `mistral-7b-instruct-v0-3`."""
    base = model_id.rsplit("/", 1)[-1].lower()
    name = re.sub(r"[^a-z0-9]+", "-", base).strip("-")[:MAX_NAME].strip("-")
    return name or "genai-chatbot-model"


def check_name(name: str) -> None:
    if not re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", name):
        raise DeployUsageError(
            f"{name!r} is not a valid SageMaker name; use up to 63 letters, digits and single hyphens "
            "(not at either end), e.g. --name mistral-7b."
        )


@dataclass(frozen=True, slots=True)
class DeployPlan:
    """Everything `create` sends, except the token (passed separately so it never sits in a printable object)."""

    name: str
    model_id: str
    region: str
    instance_type: str
    instance_count: int
    image_uri: str
    role_arn: str
    context_window: int
    num_gpus: int
    environment: dict[str, str] = field(default_factory=dict)

    def tags(self) -> list[dict[str, str]]:
        return [{"Key": MANAGED_TAG, "Value": "true"}, {"Key": MODEL_ID_TAG, "Value": self.model_id}]


def tgi_environment(model_id: str, num_gpus: int, context_window: int) -> dict[str, str]:
    """TGI's settings: the model, the GPUs to shard over, and the context split into input and total tokens."""
    max_input = max(context_window - min(1024, context_window // 4), 1)
    return {
        "HF_MODEL_ID": model_id,
        "SM_NUM_GPUS": str(num_gpus),
        "MAX_INPUT_TOKENS": str(max_input),
        "MAX_TOTAL_TOKENS": str(context_window),
        "MESSAGES_API_ENABLED": "true",
    }


def make_plan(
    model_id: str,
    *,
    region: str,
    name: str | None,
    instance_type: str | None,
    instance_count: int,
    role_arn: str | None,
    context_window: int | None,
    image_uri: str | None,
    num_gpus: int | None,
    has_token: bool,
) -> DeployPlan:
    """The deploy, with the catalogue's defaults filled in; refuses what cannot work before anything is created."""
    known = catalogue.lookup(model_id)
    endpoint_name = name or default_name(model_id)
    check_name(endpoint_name)
    chosen_type = instance_type or (known.instance_type if known else None)
    if chosen_type is None:
        raise DeployUsageError(f"{model_id} is not in the catalogue; pass --instance-type (e.g. ml.g5.2xlarge).")
    gpus = num_gpus or catalogue.gpus(chosen_type)
    if gpus is None:
        raise DeployUsageError(
            f"{chosen_type} is not a GPU instance type we know; pass --num-gpus N, or pick an ml.g5 type."
        )
    if not role_arn:
        raise DeployUsageError(
            "No execution role for SageMaker: pass --role-arn ARN or set sagemaker.execution_role_arn in the "
            "settings file (a role SageMaker can assume, with the policy in the README), or pass --create-role to "
            "have genai-chatbot make one with that policy."
        )
    if known is not None and known.gated and not has_token:
        raise DeployError(
            f"{model_id} is gated on the Hugging Face Hub and no token was given; accept its licence on "
            "huggingface.co, store a read token as a plain-text secret in Secrets Manager, and pass "
            "--hf-token-secret ARN (or set hf_token_secret_id). Nothing was created."
        )
    window = context_window or (known.context_window if known else catalogue.DEFAULT_CONTEXT_WINDOW)
    return DeployPlan(
        name=endpoint_name,
        model_id=model_id,
        region=region,
        instance_type=chosen_type,
        instance_count=instance_count,
        image_uri=image_uri or tgi_image_uri(region),
        role_arn=role_arn,
        context_window=window,
        num_gpus=gpus,
        environment=tgi_environment(model_id, gpus, window),
    )


def read_token(secretsmanager: Any, secret_id: str) -> str:
    """The Hugging Face token from a plain-text secret; errors name the secret, never its value."""
    try:
        value = secretsmanager.get_secret_value(SecretId=secret_id)
    except Exception as exc:  # botocore's ClientError and connection errors alike
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
        raise DeployError(
            f"Cannot read the Hugging Face token from secret {secret_id!r} ({code}); check the secret's name or "
            "ARN and region, and that you may call secretsmanager:GetSecretValue on it."
        ) from None
    token = str(value.get("SecretString") or "").strip()
    if not token:
        raise DeployError(
            f"Secret {secret_id!r} holds no text; store the Hugging Face token in it as plain text "
            "(aws secretsmanager put-secret-value --secret-id ... --secret-string hf_...)."
        )
    if token.startswith("{"):
        raise DeployError(
            f"Secret {secret_id!r} holds JSON; store the Hugging Face token as plain text (the token alone)."
        )
    return token


def is_missing(exc: Exception) -> bool:
    """A Describe* error that means "no such resource" (SageMaker says ValidationException: Could not find...)."""
    code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
    message = str(exc).lower()
    return code in {"ValidationException", "ResourceNotFound"} and (
        "could not find" in message or "not found" in message
    )


def existing(sagemaker: Any, name: str) -> list[str]:
    """Which of the model, endpoint config and endpoint called `name` exist already (a deploy would collide)."""
    found = []
    for kind, call, key in (
        ("model", sagemaker.describe_model, "ModelName"),
        ("endpoint config", sagemaker.describe_endpoint_config, "EndpointConfigName"),
        ("endpoint", sagemaker.describe_endpoint, "EndpointName"),
    ):
        try:
            call(**{key: name})
        except Exception as exc:
            if not is_missing(exc):
                raise
            continue
        found.append(kind)
    return found


#: How CreateModel is called: `call(create_model)`, e.g. retrying while a new execution role propagates.
CreateModelCall = Callable[[Callable[[], object]], object]


def create(
    sagemaker: Any, plan: DeployPlan, token: str | None, call_create_model: CreateModelCall | None = None
) -> None:
    """Create the model, the endpoint config and the endpoint, all tagged and all named `plan.name`.

    `call_create_model(f)` runs CreateModel's call `f`: the CLI retries it while a role it has just created
    is not yet assumable (see `role.retry_while_propagating`); by default it is called once.
    """
    environment = dict(plan.environment)
    if token is not None:
        environment["HF_TOKEN"] = token

    def create_model() -> object:
        return sagemaker.create_model(
            ModelName=plan.name,
            ExecutionRoleArn=plan.role_arn,
            PrimaryContainer={"Image": plan.image_uri, "Environment": environment},
            Tags=plan.tags(),
        )

    if call_create_model is None:
        create_model()
    else:
        call_create_model(create_model)
    variant = {
        "VariantName": "AllTraffic",
        "ModelName": plan.name,
        "InitialInstanceCount": plan.instance_count,
        "InstanceType": plan.instance_type,
        # Downloading weights and warming up TGI takes longer than SageMaker's default health check allows.
        "ContainerStartupHealthCheckTimeoutInSeconds": 900,
    }
    sagemaker.create_endpoint_config(EndpointConfigName=plan.name, ProductionVariants=[variant], Tags=plan.tags())
    sagemaker.create_endpoint(EndpointName=plan.name, EndpointConfigName=plan.name, Tags=plan.tags())


@dataclass(frozen=True, slots=True)
class EndpointOutcome:
    status: str
    failure_reason: str | None
    waited_seconds: float


def wait(
    sagemaker: Any,
    name: str,
    timeout_seconds: float,
    poll_seconds: float,
    progress: Callable[[str, float], None],
) -> EndpointOutcome:
    """Poll DescribeEndpoint until a final state or `timeout_seconds`; `progress(status, seconds)` each poll."""
    started = time.monotonic()
    while True:
        described = sagemaker.describe_endpoint(EndpointName=name)
        status = str(described["EndpointStatus"])
        waited = time.monotonic() - started
        progress(status, waited)
        if status in FINAL_STATES or waited >= timeout_seconds:
            return EndpointOutcome(status, described.get("FailureReason"), waited)
        time.sleep(min(poll_seconds, max(timeout_seconds - waited, 0.0)))


def failure_fix(reason: str) -> str:
    """What to do about a SageMaker `FailureReason`, by the causes users actually meet."""
    lowered = reason.lower()
    if "capacity" in lowered or "quota" in lowered or "limit" in lowered:
        return (
            "SageMaker could not get the instances: run `genai-chatbot sagemaker quota --instance-type TYPE` and "
            "request an increase if it does not fit; if the quota is fine, the region is out of that type for "
            "now: retry later, or deploy with another --instance-type or --region."
        )
    if "401" in lowered or "403" in lowered or "token" in lowered or "gated" in lowered or "unauthorized" in lowered:
        return (
            "The Hugging Face Hub refused the token for this model: accept the model's licence on its Hub page "
            "with the account that owns the token, check the token has read access, update the secret, then "
            "`genai-chatbot sagemaker delete NAME --yes` and deploy again."
        )
    if "image" in lowered or "ecr" in lowered or "pull" in lowered:
        return (
            "SageMaker could not pull the container image: the TGI image may not exist in this region, or the "
            "execution role lacks ecr:GetAuthorizationToken/ecr:BatchGetImage; pass --image-uri with an image "
            "from this region's Hugging Face DLC account, or fix the role's policy."
        )
    if "memory" in lowered or "oom" in lowered or "health check" in lowered or "ping" in lowered:
        return (
            "The container did not become healthy: the model may not fit the GPU memory at this context; "
            "deploy with a larger --instance-type or a smaller --context-window. The container's log is in "
            "CloudWatch Logs under /aws/sagemaker/Endpoints/NAME."
        )
    return (
        "See the container's log in CloudWatch Logs under /aws/sagemaker/Endpoints/NAME, fix, delete and deploy again."
    )
