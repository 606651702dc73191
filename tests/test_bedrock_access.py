"""Which Bedrock models this account may invoke, known before the first chat (GetFoundationModelAvailability).

Against the local AWS wire server speaking Bedrock's control-plane REST-JSON protocol, through boto3.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from aws_wire import AwsWire, Error, Json, Request, foundation_models, model_availability, wire_fixture  # noqa: F401
from genai_chatbot.config import Settings
from genai_chatbot.doctor import run_checks
from genai_chatbot.models.providers.bedrock import BedrockProvider
from genai_chatbot.models.types import ModelInfo
from test_bedrock import HAIKU, JURASSIC, PROFILES, REGION, SONNET_4, SONNET_4_PROFILE, SUMMARIES, TITAN, TITAN_EMBED

AVAILABILITY = "/foundation-model-availability/.+"


def answers(request: Request) -> Json:
    """Haiku usable; Titan not authorized; Jurassic neither subscribed nor its EULA accepted; Sonnet 4 not here."""
    model_id = request.path.rpartition("/")[2]
    if model_id == TITAN:
        return model_availability(request, authorization="NOT_AUTHORIZED")
    if model_id == JURASSIC:
        return model_availability(
            request, entitlement="NOT_AVAILABLE", agreement="NOT_AVAILABLE", agreement_error="No agreement found"
        )
    if model_id == SONNET_4:
        return model_availability(request, region="NOT_AVAILABLE")
    return model_availability(request)


@pytest.fixture
async def bedrock(wire: AwsWire) -> AsyncIterator[BedrockProvider]:
    wire.route("GET", "/foundation-models", foundation_models(SUMMARIES))
    wire.route("GET", "/inference-profiles", Json({"inferenceProfileSummaries": PROFILES}))
    provider = BedrockProvider(Settings(bedrock_region=REGION, request_timeout_seconds=20))
    yield provider
    await provider.aclose()


async def listed(provider: BedrockProvider) -> dict[str, ModelInfo]:
    return {m.name: m for m in await provider.list_models()}


async def test_models_without_access_stay_listed_with_the_reason_and_the_fix(
    bedrock: BedrockProvider, wire: AwsWire
) -> None:
    wire.route("GET", AVAILABILITY, answers)
    models = await listed(bedrock)

    assert sorted(models) == sorted([HAIKU, SONNET_4_PROFILE, TITAN, JURASSIC, TITAN_EMBED]), "nothing is hidden"
    assert models[HAIKU].available and models[HAIKU].unavailable_reason is None
    titan = models[TITAN].unavailable_reason or ""
    assert not models[TITAN].available
    assert f"access not granted in {REGION}" in titan
    assert f"open Model access in the Bedrock console of {REGION}" in titan
    jurassic = models[JURASSIC].unavailable_reason or ""
    assert not models[JURASSIC].available
    assert "its EULA is not accepted (No agreement found)" in jurassic
    assert "accept the model's offer" in jurassic and "ListFoundationModelAgreementOffers" in jurassic
    assert "not entitled" in jurassic and "aws-marketplace:Subscribe" in jurassic
    sonnet = models[SONNET_4_PROFILE]  # an inference profile takes the answer of the model it routes to
    assert not sonnet.available
    assert f"not available in {REGION}" in (sonnet.unavailable_reason or "")
    assert "GENAI_CHATBOT_BEDROCK_REGION" in (sonnet.unavailable_reason or "")


async def test_access_is_asked_once_per_base_model_and_again_after_refresh(
    bedrock: BedrockProvider, wire: AwsWire
) -> None:
    wire.route("GET", AVAILABILITY, answers)
    await bedrock.list_models()
    asked = sorted(r.path.rpartition("/")[2] for r in wire.requests_to("^/foundation-model-availability/"))
    assert asked == sorted([HAIKU, SONNET_4, TITAN, JURASSIC, TITAN_EMBED])
    await bedrock.list_models()
    assert len(wire.requests_to("^/foundation-model-availability/")) == 5, "cached with the model list"

    wire.route("GET", AVAILABILITY, model_availability)  # access was granted meanwhile
    assert not (await listed(bedrock))[TITAN].available, "still the cached answer"
    await bedrock.refresh()
    assert all(m.available for m in await bedrock.list_models())
    assert len(wire.requests_to("^/foundation-model-availability/")) == 10


async def test_a_pending_eula_says_to_look_again_in_a_few_minutes(bedrock: BedrockProvider, wire: AwsWire) -> None:
    wire.route("GET", AVAILABILITY, lambda request: model_availability(request, agreement="PENDING"))
    haiku = (await listed(bedrock))[HAIKU]
    assert not haiku.available
    assert "still being processed" in (haiku.unavailable_reason or "")


async def test_when_the_availability_api_is_denied_models_are_listed_and_doctor_says_why(
    bedrock: BedrockProvider, wire: AwsWire, tmp_path: Path
) -> None:
    denied = Error(
        "AccessDeniedException",
        "User: arn:aws:iam::123456789012:user/chat is not authorized to perform: "
        "bedrock:GetFoundationModelAvailability",
        403,
    )
    wire.route("GET", AVAILABILITY, denied)
    assert all(m.available for m in await bedrock.list_models()), "today's behaviour: listed as available"

    rows = await run_checks(Settings(data_dir=tmp_path, bedrock_region=REGION, local={"enabled": False}))  # type: ignore[arg-type]
    status = {r.component: (r.status, r.detail) for r in rows}
    assert status["bedrock"] == ("ok", "5 of 5 models available")
    state, detail = status["bedrock model access"]
    assert state == "warning"
    assert "cannot check model access: allow bedrock:GetFoundationModelAvailability" in detail


async def test_doctor_reports_each_model_without_access(wire: AwsWire, tmp_path: Path) -> None:
    wire.route("GET", "/foundation-models", foundation_models(SUMMARIES))
    wire.route("GET", "/inference-profiles", Json({"inferenceProfileSummaries": PROFILES}))
    wire.route("GET", AVAILABILITY, answers)
    rows = await run_checks(Settings(data_dir=tmp_path, bedrock_region=REGION, local={"enabled": False}))  # type: ignore[arg-type]
    status = {r.component: (r.status, r.detail) for r in rows}
    assert status["bedrock"] == ("ok", "2 of 5 models available")
    assert status[f"bedrock/{TITAN}"][0] == "error"
    assert "access not granted" in status[f"bedrock/{TITAN}"][1]
    assert "bedrock model access" not in status
