"""An endpoint's state from the SageMaker control plane (DescribeEndpoint), as the model list and doctor show it.

One function, `describe`, asks and words the answer; the provider caches it with the model list and doctor
shows the same words. An endpoint that is Updating (or SystemUpdating, RollingBack) still serves its
previous configuration, so it stays available; Creating is not ready yet; Failed carries SageMaker's
FailureReason; a missing endpoint "does not exist in REGION", unless `genai-chatbot sagemaker stop` stopped
it and kept its tagged endpoint config (see `hosting/tags.py`): then it "is stopped", with the command that
starts it. When DescribeEndpoint itself is refused or unreachable the endpoint is listed as available, as
before this check existed, and doctor says why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from genai_chatbot.hosting.tags import kept_config
from genai_chatbot.models.providers._aws import CREDENTIALS_HINT, error_code, error_message

QUOTA_HINT = (
    "ask for a service-quota increase for the instance type (e.g. ml.g5) in the SageMaker console "
    "(Service Quotas > Amazon SageMaker > '<instance type> for endpoint usage')"
)
PERMISSION = "sagemaker:DescribeEndpoint"
NOT_FOUND = re.compile(r"endpoint .*not found|could not find endpoint", re.IGNORECASE)
CAPACITY = re.compile(r"capacity|quota|ResourceLimitExceeded", re.IGNORECASE)
_STILL_SERVING = ("InService", "Updating", "SystemUpdating", "RollingBack")
#: States that change by themselves: asked again after a minute instead of only on refresh.
TRANSIENT = ("Creating", "Unknown")


@dataclass(frozen=True, slots=True)
class EndpointState:
    """What is known of one endpoint: `serving` is whether invocations can succeed (also when unknown)."""

    status: str  # EndpointStatus as SageMaker says it; "Missing", "Stopped", or "Unknown" when it could not be asked
    serving: bool
    detail: str
    fix: str | None = None

    @property
    def doctor_status(self) -> Literal["ok", "warning", "error"]:
        if self.status == "InService":
            return "ok"
        return "warning" if self.serving or self.status in ("Creating", "Stopped") else "error"

    def reason(self, what: str) -> str | None:
        """Why `what` (the endpoint, as messages name it) is unavailable, with what to do; None while it serves."""
        if self.serving:
            return None
        return f"{what} {self.detail}" + (f"; {self.fix}." if self.fix else ".")


def describe(client: Any, name: str, region: str) -> EndpointState:
    """Ask the `sagemaker` control-plane `client` for endpoint `name` (blocking; run it on a worker thread)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        described = client.describe_endpoint(EndpointName=name)
    except ClientError as exc:
        code, message = error_code(exc), error_message(exc)
        if NOT_FOUND.search(message):
            if _is_stopped(client, name):
                return EndpointState("Stopped", False, f"is stopped: run `genai-chatbot sagemaker start {name}`")
            return EndpointState(
                "Missing",
                False,
                f"does not exist in {region}",
                f"deploy it, or fix the name and region in [[sagemaker.endpoints]]; if its deployment failed for "
                f"lack of instances, {QUOTA_HINT}",
            )
        if code in ("AccessDeniedException", "AccessDenied"):
            return EndpointState("Unknown", True, f"cannot check the endpoint's status: allow {PERMISSION} ({message})")
        return EndpointState("Unknown", True, f"cannot check the endpoint's status: {code}: {message}")
    except BotoCoreError as exc:
        return EndpointState("Unknown", True, f"cannot reach SageMaker: {type(exc).__name__}: {exc}", CREDENTIALS_HINT)
    status = str(described.get("EndpointStatus", "Unknown"))
    if status == "InService":
        return EndpointState(status, True, "InService")
    if status in _STILL_SERVING:
        return EndpointState(status, True, f"{status}: still serving its previous configuration")
    if status == "Creating":
        return EndpointState(
            status, False, "is not ready yet (Creating)", "wait until it is InService (asked again every minute)"
        )
    if status == "Failed":
        failure = str(described.get("FailureReason") or "no reason given")
        fix = QUOTA_HINT if CAPACITY.search(failure) else "see its events in the SageMaker console, then redeploy it"
        return EndpointState(status, False, f"failed: {failure}", fix)
    return EndpointState(status, False, f"is {status}", "redeploy it, or remove it from [[sagemaker.endpoints]]")


def _is_stopped(client: Any, name: str) -> bool:
    """Whether a missing endpoint was stopped (its config kept); False also when that cannot be asked."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return kept_config(client, name) is not None
    except (BotoCoreError, ClientError):  # e.g. no sagemaker:ListEndpointConfigs: say what is certain
        return False
