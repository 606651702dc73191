"""Does the account's SageMaker quota leave room for N more instances of a type, and if not, what to ask for.

Endpoint capacity is limited per instance type by a Service Quotas quota named "<type> for endpoint usage"
(for example `L-9614C779`, "ml.g5.2xlarge for endpoint usage"). Most accounts start at 0 for GPU types, so
a deploy without this check fails minutes later with a terse error. The applied value comes from
`ListServiceQuotas` (an account that never requested an increase may have no applied value: then AWS's
default, `ListAWSDefaultServiceQuotas`); instances in use are summed from the endpoint configs of every
endpoint that holds instances (InService, Creating, Updating, SystemUpdating, RollingBack).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: Endpoint states that hold (or are about to hold) instances and so count against the quota.
HOLDING_STATES = frozenset({"InService", "Creating", "Updating", "SystemUpdating", "RollingBack"})


def endpoint_quota_name(instance_type: str) -> str:
    """The Service Quotas name of the endpoint-usage quota for `instance_type`."""
    return f"{instance_type} for endpoint usage"


def console_url(region: str) -> str:
    """The Service Quotas console page listing SageMaker's quotas in `region`, where increases are requested."""
    domain = "console.amazonaws.cn" if region.startswith("cn-") else "console.aws.amazon.com"
    return f"https://{region}.{domain}/servicequotas/home/services/sagemaker/quotas"


@dataclass(frozen=True, slots=True)
class QuotaCheck:
    """The answer to "do `requested` more `instance_type` instances fit in `region`?"."""

    region: str
    instance_type: str
    requested: int
    quota_name: str
    #: None when Service Quotas has no such quota: the type is not offered for endpoints in the region.
    quota_code: str | None
    limit: int | None
    #: "applied" (this account's value) or "AWS default" (never raised, or not listed for the account).
    source: str
    in_use: int

    @property
    def available(self) -> int:
        return max(0, (self.limit or 0) - self.in_use)

    @property
    def fits(self) -> bool:
        return self.limit is not None and self.requested <= self.available

    @property
    def console_url(self) -> str:
        return console_url(self.region)

    def summary(self) -> str:
        """What a person needs to read: the numbers, the verdict, and when it does not fit, the fix."""
        if self.limit is None:
            return (
                f"Service Quotas has no quota {self.quota_name!r} for SageMaker in {self.region}: "
                f"{self.instance_type} is not offered for endpoints there. Pick another instance type or region; "
                f"the quotas that exist are listed at {self.console_url}"
            )
        head = (
            f"{self.quota_name} in {self.region}: quota {self.limit} ({self.source}, code {self.quota_code}), "
            f"{self.in_use} in use by endpoints, {self.available} free."
        )
        if self.fits:
            return f"{head}\n{self.requested} more {self.instance_type} fit."
        needed = self.in_use + self.requested
        return (
            f"{head}\n{self.requested} more {self.instance_type} do NOT fit. Request an increase of the quota "
            f"{self.quota_name!r} (code {self.quota_code}) to at least {needed} at {self.console_url} "
            f"(or: aws service-quotas request-service-quota-increase --service-code sagemaker "
            f"--quota-code {self.quota_code} --desired-value {needed} --region {self.region}), "
            "or delete or stop endpoints that use this type."
        )


def _find(pages: Any, name: str) -> dict[str, Any] | None:
    for page in pages:
        for quota in page.get("Quotas", []):
            if quota.get("QuotaName") == name:
                return dict(quota)
    return None


def find_quota(service_quotas: Any, name: str) -> tuple[dict[str, Any] | None, str]:
    """The quota called `name` for SageMaker, and whether it is this account's applied value or AWS's default."""
    applied = _find(service_quotas.get_paginator("list_service_quotas").paginate(ServiceCode="sagemaker"), name)
    if applied is not None:
        return applied, "applied"
    default_pages = service_quotas.get_paginator("list_aws_default_service_quotas").paginate(ServiceCode="sagemaker")
    return _find(default_pages, name), "AWS default"


def instances_in_use(sagemaker: Any, instance_type: str) -> int:
    """Instances of `instance_type` held by this account's endpoints in the client's region."""
    total = 0
    for page in sagemaker.get_paginator("list_endpoints").paginate():
        for summary in page.get("Endpoints", []):
            if summary.get("EndpointStatus") not in HOLDING_STATES:
                continue
            try:
                endpoint = sagemaker.describe_endpoint(EndpointName=summary["EndpointName"])
                config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
            except sagemaker.exceptions.ClientError as exc:
                if exc.response.get("Error", {}).get("Code") == "ValidationException":
                    continue  # deleted since it was listed: it holds nothing any more
                raise
            for variant in config.get("ProductionVariants", []):
                if variant.get("InstanceType") == instance_type:
                    total += int(variant.get("InitialInstanceCount", 0))
    return total


def check_quota(sagemaker: Any, service_quotas: Any, region: str, instance_type: str, requested: int) -> QuotaCheck:
    """Look the quota up and count what endpoints already use; the caller decides what to do with the verdict."""
    name = endpoint_quota_name(instance_type)
    quota, source = find_quota(service_quotas, name)
    if quota is None:
        return QuotaCheck(region, instance_type, requested, name, None, None, source, 0)
    return QuotaCheck(
        region,
        instance_type,
        requested,
        name,
        str(quota.get("QuotaCode")),
        int(quota.get("Value", 0)),
        source,
        instances_in_use(sagemaker, instance_type),
    )
