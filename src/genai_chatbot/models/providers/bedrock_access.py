"""Whether this account may invoke each Bedrock model, known before the first chat.

Bedrock lists every model of a region whether or not the account may call it. Its control-plane operation
GetFoundationModelAvailability (public since June 2025, boto3 1.39) says, per base model, whether access
was granted (`authorizationStatus`), the account is subscribed (`entitlementAvailability`), the model's
EULA is accepted (`agreementAvailability`) and the model is offered in the region (`regionAvailability`).
It is asked once per base model when the model list is fetched, a few calls at a time; inference profiles
take the answer of the model they route to.

Where the identity may not call it (AccessDenied), or boto3 predates it, the check is skipped: every model is
listed as available as before, and `problem` says why so that `doctor` can show it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

from genai_chatbot.models.providers._aws import error_code, error_message

logger = logging.getLogger(__name__)

CHECK_CONCURRENCY = 8  # calls in flight at once: a region lists ~100 models, and the API is throttled per account
PERMISSION = "bedrock:GetFoundationModelAvailability"


@dataclass(frozen=True, slots=True)
class ModelAccess:
    """What the availability check found: per base model id, why it cannot be invoked (absent: it can)."""

    reasons: dict[str, str] = field(default_factory=dict)
    #: Why access could not be checked at all (then nothing is in `reasons` and every model is listed).
    problem: str | None = None


def console_hint(region: str) -> str:
    return f"open Model access in the Bedrock console of {region}"


def unavailable_reason(answer: dict[str, Any], region: str) -> str | None:
    """Why a GetFoundationModelAvailability answer means the model cannot be invoked, with the fix; None if it can."""
    problems: list[str] = []
    if answer.get("regionAvailability") == "NOT_AVAILABLE":
        problems.append(f"not available in {region}; set GENAI_CHATBOT_BEDROCK_REGION to a region that offers it")
    if answer.get("authorizationStatus") == "NOT_AUTHORIZED":
        problems.append(f"access not granted in {region}: {console_hint(region)} and request access to it")
    if answer.get("entitlementAvailability") == "NOT_AVAILABLE":
        problems.append(
            f"the account is not entitled to it: {console_hint(region)} and request access, which subscribes the "
            "account (the identity needs aws-marketplace:Subscribe)"
        )
    agreement = answer.get("agreementAvailability") or {}
    status, detail = agreement.get("status"), agreement.get("errorMessage")
    if status == "PENDING":
        problems.append("its EULA acceptance is still being processed; refresh the model list in a few minutes")
    elif status in ("NOT_AVAILABLE", "ERROR"):
        problems.append(
            f"its EULA is not accepted{f' ({detail})' if detail else ''}: {console_hint(region)} and accept the "
            "model's offer (ListFoundationModelAgreementOffers lists it)"
        )
    if not problems:
        return None
    return f"Bedrock model not usable by this account: {'; '.join(problems)}; then refresh the model list."


async def check_access(
    client: Any, executor: Executor, base_ids: Iterable[str], region: str, translate: Callable[[BaseException], str]
) -> ModelAccess:
    """Ask GetFoundationModelAvailability for each of `base_ids`, CHECK_CONCURRENCY at a time.

    `translate` words any other failure of the call; a model whose check fails that way stays available.
    """
    if not hasattr(client, "get_foundation_model_availability"):
        return ModelAccess(
            problem="cannot check model access: this boto3 predates GetFoundationModelAvailability; upgrade boto3 "
            "to 1.39 or later"
        )
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(CHECK_CONCURRENCY)
    ids = sorted(set(base_ids))

    async def ask(model_id: str) -> dict[str, Any]:
        async with gate:
            return await loop.run_in_executor(
                executor, lambda: client.get_foundation_model_availability(modelId=model_id)
            )

    answers = await asyncio.gather(*(ask(model_id) for model_id in ids), return_exceptions=True)
    reasons: dict[str, str] = {}
    for model_id, answer in zip(ids, answers, strict=True):
        if isinstance(answer, BaseException):
            if _is_denied(answer):
                return ModelAccess(
                    problem=f"cannot check model access: allow {PERMISSION} for this identity "
                    f"({error_message(answer)}); until then every model is listed as available"
                )
            logger.warning("Cannot check access to Bedrock model %s: %s", model_id, translate(answer))
            continue
        reason = unavailable_reason(answer, region)
        if reason is not None:
            reasons[model_id] = reason
    return ModelAccess(reasons)


def _is_denied(exc: BaseException) -> bool:
    return hasattr(exc, "response") and error_code(exc) == "AccessDeniedException"
