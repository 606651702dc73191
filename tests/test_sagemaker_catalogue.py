"""The deploy defaults: the TGI image per region, GPUs per instance type, TGI's token limits, names."""

from __future__ import annotations

import pytest

from genai_chatbot.hosting.catalogue import gpus, lookup
from genai_chatbot.hosting.deploy import DeployError, check_name, default_name, tgi_environment
from genai_chatbot.hosting.image import TGI_TAG, tgi_image_uri


@pytest.mark.parametrize(
    ("region", "registry"),
    [
        ("us-east-1", "763104351884.dkr.ecr.us-east-1.amazonaws.com"),
        ("me-south-1", "217643126080.dkr.ecr.me-south-1.amazonaws.com"),
        ("cn-north-1", "727897471807.dkr.ecr.cn-north-1.amazonaws.com.cn"),
    ],
)
def test_the_tgi_image_comes_from_the_regions_dlc_account(region: str, registry: str) -> None:
    assert tgi_image_uri(region) == f"{registry}/huggingface-pytorch-tgi-inference:{TGI_TAG}"


@pytest.mark.parametrize(
    ("instance_type", "count"),
    [("ml.g5.2xlarge", 1), ("ml.g5.12xlarge", 4), ("ml.g5.48xlarge", 8), ("ml.g4dn.xlarge", 1), ("ml.m5.xlarge", None)],
)
def test_gpus_per_instance_type(instance_type: str, count: int | None) -> None:
    assert gpus(instance_type) == count


def test_tgi_leaves_room_for_the_reply_within_the_context() -> None:
    assert tgi_environment("m/x", 1, 8192)["MAX_INPUT_TOKENS"] == "7168"
    assert tgi_environment("m/x", 1, 1024)["MAX_INPUT_TOKENS"] == "768"


def test_catalogue_lookup_ignores_case_as_the_hub_does() -> None:
    entry = lookup("MISTRALAI/mistral-7b-instruct-v0.3")
    assert entry is not None and entry.gated and entry.instance_type == "ml.g5.2xlarge"
    assert lookup("someone/unknown") is None


def test_names_come_from_the_model_id_and_invalid_ones_are_refused() -> None:
    assert default_name("mistralai/Mistral-7B-Instruct-v0.3") == "mistral-7b-instruct-v0-3"
    check_name(default_name("x/" + "a" * 100))
    with pytest.raises(DeployError, match="not a valid SageMaker name"):
        check_name("has_underscore")
