"""`genai-chatbot sagemaker quota`: the applied quota, what endpoints use, the verdict (see sagemaker_hosting)."""

from __future__ import annotations

from fake_service_quotas import SageMakerQuotas
from sagemaker_hosting import (  # noqa: F401
    CONSOLE,
    aws_env,
    cleanup_fixture,
    cli,
    endpoint_using,
    g5_in_moto,
    moto_url,
    quotas_fixture,
    sagemaker,
)


def test_quota_subtracts_instances_endpoints_use_and_names_the_quota_when_more_do_not_fit(
    quotas: SageMakerQuotas, cleanup: list[str]
) -> None:
    quotas.applied["ml.g5.2xlarge for endpoint usage"] = 3
    cleanup.append("quota-other-team")
    endpoint_using("quota-other-team", "ml.g5.2xlarge", 2)
    fits = cli("sagemaker", "quota", "--instance-type", "ml.g5.2xlarge")
    too_many = cli("sagemaker", "quota", "--instance-type", "ml.g5.2xlarge", "--count", "2")
    assert fits.exit_code == 0, fits.output
    assert "quota 3 (applied, code L-9614C779), 2 in use by endpoints, 1 free" in fits.stdout
    assert "1 more ml.g5.2xlarge fit." in fits.stdout
    assert too_many.exit_code == 1
    assert "2 more ml.g5.2xlarge do NOT fit" in too_many.stdout
    assert "'ml.g5.2xlarge for endpoint usage' (code L-9614C779) to at least 4" in too_many.stdout
    assert CONSOLE in too_many.stdout
    assert quotas.list_calls() >= 4  # two pages per command: the GPU quotas are past the first 100


def test_quota_falls_back_to_the_aws_default_when_the_account_lists_none(quotas: SageMakerQuotas) -> None:
    quotas.hidden_from_account.add("ml.g5.16xlarge for endpoint usage")
    result = cli("sagemaker", "quota", "--instance-type", "ml.g5.16xlarge")
    assert result.exit_code == 1
    assert "ml.g5.16xlarge for endpoint usage in eu-west-1: quota 0 (AWS default" in result.stdout
    assert CONSOLE in result.stdout


def test_quota_of_a_type_sagemaker_does_not_offer_says_so(quotas: SageMakerQuotas) -> None:
    result = cli("sagemaker", "quota", "--instance-type", "ml.z9.mega")
    assert result.exit_code == 1
    assert "ml.z9.mega is not offered for endpoints there" in result.stdout
