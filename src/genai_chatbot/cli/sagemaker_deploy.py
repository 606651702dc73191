"""`genai-chatbot sagemaker quota / deploy / delete`: put a Hugging Face model on an endpoint, and take it away.

The AWS work is in `genai_chatbot.hosting` (quota, deploy, delete, the settings file); these commands parse
options and print.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Annotated

import typer

from genai_chatbot.cli.common import ConfigOption, RegionOption, settings_or_exit
from genai_chatbot.config import DEFAULT_CONFIG_FILE, SageMakerEndpoint, Settings
from genai_chatbot.hosting import aws
from genai_chatbot.hosting import deploy as deploying
from genai_chatbot.hosting import role as roles
from genai_chatbot.hosting.delete import delete_managed
from genai_chatbot.hosting.hub import check_access
from genai_chatbot.hosting.quota import QuotaCheck, check_quota
from genai_chatbot.hosting.settings_file import add_endpoint, remove_endpoint
from genai_chatbot.hosting.tags import MANAGED_TAG

app = typer.Typer()  # merged into the `sagemaker` group by cli/sagemaker.py


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _settings_path(config: Path | None) -> Path:
    """The file `deploy` writes to: --config, else $GENAI_CHATBOT_CONFIG, else ./genai-chatbot.toml."""
    import os

    if config is not None:
        return config
    return Path(os.environ["GENAI_CHATBOT_CONFIG"]) if os.environ.get("GENAI_CHATBOT_CONFIG") else DEFAULT_CONFIG_FILE


def _settings(config: Path | None) -> tuple[Settings, Path]:
    """Settings (from the file when it exists: `deploy` creates it otherwise) and the file's path."""
    path = _settings_path(config)
    return settings_or_exit(path if path.is_file() else None), path


def _quota(region: str, instance_type: str, count: int) -> QuotaCheck:
    try:
        return check_quota(
            aws.client("sagemaker", region), aws.client("service-quotas", region), region, instance_type, count
        )
    except Exception as exc:  # botocore errors: say which call and what to do
        raise _fail(
            f"Cannot check the SageMaker quota in {region} ({exc}); the caller needs servicequotas:ListServiceQuotas, "
            "servicequotas:ListAWSDefaultServiceQuotas, sagemaker:ListEndpoints, sagemaker:DescribeEndpoint and "
            "sagemaker:DescribeEndpointConfig."
        ) from None


def _check_hub(model_id: str, token: str | None) -> None:
    """Refuse, before anything is created, a model the Hub will not hand over; go on when it cannot be asked."""
    answer = check_access(model_id, token)
    if answer.verdict == "unreachable":
        typer.echo(f"note: could not ask the Hugging Face Hub about {model_id}: {answer.detail}.", err=True)
    elif answer.verdict == "missing":
        raise _fail(f"{answer.detail}; check the model id. Nothing was created.")
    elif answer.verdict == "gated":
        raise _fail(
            f"{answer.detail} and no token was given; accept its licence on huggingface.co, store a read token as "
            "a plain-text secret in Secrets Manager, and pass --hf-token-secret ARN. Nothing was created."
        )
    elif answer.verdict == "refused":
        raise _fail(
            f"{answer.detail}: accept the model's licence on https://huggingface.co/{model_id} with the account "
            "that owns the token, and check the token may read (fine-grained tokens need access to gated "
            "repositories); then update the secret. Nothing was created."
        )


def _role_to_use(where: str) -> tuple[str, bool]:
    """For --create-role, before anything is created: our role's ARN and whether it must still be made.

    Refuses a role of that name that genai-chatbot did not make (never changed, only named as --role-arn).
    """
    try:
        found = roles.find_managed(aws.client("iam", where))
        return (found, False) if found else (roles.planned_arn(aws.client("sts", where)), True)
    except roles.RoleError as exc:
        raise _fail(str(exc)) from None


def _make_role(where: str, retry_seconds: float) -> tuple[str, deploying.CreateModelCall | None]:
    """Create (or refresh) our role; its ARN, and how to call CreateModel while a new role propagates."""
    try:
        made = roles.ensure(aws.client("iam", where))
    except roles.RoleError as exc:
        raise _fail(str(exc)) from None
    if not made.created:
        typer.echo(f"Using IAM role {made.arn} (made by genai-chatbot; its inline policy is kept current).", err=True)
        return made.arn, None
    typer.echo(
        f"Created IAM role {made.arn}, assumable by {roles.TRUSTED_SERVICE}, tagged {MANAGED_TAG}, with the "
        f"inline policy {roles.POLICY_NAME}: {', '.join(roles.EXECUTION_ACTIONS)}.",
        err=True,
    )
    attempts = roles.PROPAGATION_ATTEMPTS

    def note(attempt: int) -> None:
        typer.echo(
            f"  SageMaker cannot assume the new role yet (IAM takes a few seconds to propagate); retrying in "
            f"{retry_seconds:g} s ({attempt}/{attempts - 1})",
            err=True,
        )

    return made.arn, partial(roles.retry_while_propagating, attempts=attempts, delay_seconds=retry_seconds, note=note)


@app.command("quota")
def quota(
    instance_type: Annotated[str, typer.Option("--instance-type", help="e.g. ml.g5.2xlarge")],
    count: Annotated[int, typer.Option("--count", min=1, help="How many more instances you want.")] = 1,
    region: RegionOption = None,
    config: ConfigOption = None,
) -> None:
    """Does the endpoint-usage quota of INSTANCE_TYPE leave room for COUNT more? Exit 0 if so, 1 if not."""
    settings, _ = _settings(config)
    try:
        where = aws.region_of(region, settings.sagemaker.region)
    except deploying.DeployError as exc:
        raise _fail(str(exc), 2) from None
    check = _quota(where, instance_type, count)
    typer.echo(check.summary())
    raise typer.Exit(0 if check.fits else 1)


@app.command("deploy")
def deploy(
    hf_model_id: Annotated[str, typer.Argument(help="Hugging Face model id, e.g. mistralai/Mistral-7B-Instruct-v0.3")],
    instance_type: Annotated[
        str | None, typer.Option("--instance-type", help="Default: the catalogue's type for known models.")
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="Endpoint name (default: from the model id).")] = None,
    hf_token_secret: Annotated[
        str | None,
        typer.Option("--hf-token-secret", help="Secrets Manager secret (plain text) with the Hugging Face token."),
    ] = None,
    instance_count: Annotated[int, typer.Option("--instance-count", min=1)] = 1,
    role_arn: Annotated[
        str | None, typer.Option("--role-arn", help="Execution role (default: sagemaker.execution_role_arn).")
    ] = None,
    create_role: Annotated[
        bool,
        typer.Option(
            "--create-role",
            help=f"Create (or reuse) the execution role {roles.ROLE_NAME} with the minimum policy.",
        ),
    ] = False,
    context_window: Annotated[
        int | None, typer.Option("--context-window", min=256, help="Max total tokens (default: the catalogue's).")
    ] = None,
    image_uri: Annotated[
        str | None, typer.Option("--image-uri", help="Another container image (default: the pinned TGI image).")
    ] = None,
    num_gpus: Annotated[int | None, typer.Option("--num-gpus", min=1, help="GPUs of a type not in our table.")] = None,
    wait_minutes: Annotated[float, typer.Option("--wait-minutes", min=0, help="How long to wait for InService.")] = 40,
    poll_seconds: Annotated[float, typer.Option("--poll-seconds", min=0.1, hidden=True)] = 30,
    role_retry_seconds: Annotated[float, typer.Option("--role-retry-seconds", min=0, hidden=True)] = 5,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask before creating billable resources.")] = False,
    region: RegionOption = None,
    config: ConfigOption = None,
) -> None:
    """Deploy a Hugging Face model on a SageMaker endpoint (TGI) and add it to the settings file."""
    if create_role and role_arn:
        raise _fail(
            "--create-role and --role-arn both choose the execution role; pass only one: --role-arn for a role you "
            f"made, or --create-role to have genai-chatbot make (or reuse) {roles.ROLE_NAME}.",
            2,
        )
    settings, settings_path = _settings(config)
    secret_id = hf_token_secret or settings.hf_token_secret_id
    try:
        where = aws.region_of(region, settings.sagemaker.region)
    except deploying.DeployError as exc:  # the exit status deploy has always given here
        raise _fail(str(exc)) from None
    role_pending = False
    if create_role:
        role_arn, role_pending = _role_to_use(where)
    try:
        plan = deploying.make_plan(
            hf_model_id,
            region=where,
            name=name,
            instance_type=instance_type,
            instance_count=instance_count,
            role_arn=role_arn or settings.sagemaker.execution_role_arn,
            context_window=context_window,
            image_uri=image_uri,
            num_gpus=num_gpus,
            has_token=bool(secret_id),
        )
    except deploying.DeployError as exc:
        raise _fail(str(exc), 2 if isinstance(exc, deploying.DeployUsageError) else 1) from None
    endpoint_name = plan.name
    sagemaker = aws.client("sagemaker", where)
    try:
        taken = deploying.existing(sagemaker, endpoint_name)
    except Exception as exc:  # botocore's errors: access denied, no credentials, no network
        raise _fail(
            f"Cannot ask SageMaker in {where} about {endpoint_name} ({exc}); check the AWS credentials and that "
            "they allow sagemaker:DescribeModel, DescribeEndpointConfig and DescribeEndpoint."
        ) from None
    if taken:
        raise _fail(
            f"A SageMaker {' and '.join(taken)} called {endpoint_name} already exists in {where}; pass another "
            f"--name, or run `genai-chatbot sagemaker delete {endpoint_name}` first. Nothing was created."
        )
    check = _quota(where, plan.instance_type, instance_count)
    if not check.fits:
        typer.echo(check.summary(), err=True)
        raise _fail("Not deploying: the quota does not allow it. Nothing was created.")
    token = None
    if secret_id:
        try:
            token = deploying.read_token(aws.client("secretsmanager", aws.secret_region(secret_id, where)), secret_id)
        except deploying.DeployError as exc:
            raise _fail(f"{exc} Nothing was created.") from None
    _check_hub(hf_model_id, token)
    typer.echo(
        f"Deploying {hf_model_id} as {endpoint_name} on {instance_count} x {plan.instance_type} in {where} "
        f"(context {plan.context_window}, image {plan.image_uri}, role {plan.role_arn}"
        f"{' (to be created)' if role_pending else ''}).",
        err=True,
    )
    if not yes and not typer.confirm("This bills per instance-hour until deleted or stopped. Go on?", err=True):
        raise typer.Exit(1)
    call_create_model = None
    if create_role:
        made_arn, call_create_model = _make_role(where, role_retry_seconds)
        plan = replace(plan, role_arn=made_arn)
    try:
        deploying.create(sagemaker, plan, token, call_create_model)
    except Exception as exc:  # botocore's errors; whatever was created before is removed by `delete`
        raise _fail(
            f"SageMaker refused to create {endpoint_name}: {exc}; fix the cause, then run "
            f"`genai-chatbot sagemaker delete {endpoint_name} --yes` and deploy again."
        ) from None

    def progress(status: str, seconds: float) -> None:
        typer.echo(f"  {endpoint_name}: {status} ({int(seconds // 60)} min {int(seconds % 60)} s)", err=True)

    outcome = deploying.wait(sagemaker, endpoint_name, wait_minutes * 60, poll_seconds, progress)
    if outcome.status in {"Failed", "OutOfService"}:
        reason = outcome.failure_reason or "(SageMaker gave no reason)"
        typer.echo(f"Endpoint {endpoint_name} {outcome.status}: {reason}", err=True)
        typer.echo(deploying.failure_fix(reason).replace("NAME", endpoint_name), err=True)
        raise typer.Exit(1)
    entry = SageMakerEndpoint(
        name=endpoint_name, region=where, format="openai-messages", context_window=plan.context_window
    )
    add_endpoint(settings_path, entry)
    if outcome.status != "InService":
        typer.echo(
            f"{endpoint_name} is still {outcome.status} after {wait_minutes:g} min; added to {settings_path} anyway. "
            "`genai-chatbot models` shows when it is ready.",
            err=True,
        )
        raise typer.Exit(1)
    typer.echo(f"{endpoint_name} is InService; added to {settings_path} as sagemaker/{endpoint_name}.")


@app.command("delete")
def delete(
    name: Annotated[str, typer.Argument(help="The endpoint's name.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask first.")] = False,
    region: RegionOption = None,
    config: ConfigOption = None,
) -> None:
    """Delete an endpoint deployed by genai-chatbot, its config and model, and remove it from settings."""
    settings, settings_path = _settings(config)
    configured = next((e.region for e in settings.sagemaker.endpoints if e.name == name and e.region), None)
    try:
        where = aws.region_of(region or configured, settings.sagemaker.region)
    except deploying.DeployError as exc:
        raise _fail(str(exc), 2) from None
    if not yes and not typer.confirm(f"Delete endpoint {name}, its config and model in {where}?", err=True):
        raise typer.Exit(1)
    try:
        deleted = delete_managed(aws.client("sagemaker", where), name)
    except deploying.DeployError as exc:
        raise _fail(str(exc)) from None
    removed = remove_endpoint(settings_path, name)
    for what in deleted:
        typer.echo(f"deleted {what}")
    if removed:
        typer.echo(f"removed {name} from {settings_path}")
    if not deleted and not removed:
        raise _fail(f"Nothing called {name} in {where} or in {settings_path}; check the name and --region.")
