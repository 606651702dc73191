"""Service Quotas for SageMaker, served from a local `AwsWire` in the service's JSON protocol.

moto's Service Quotas knows only VPC quotas. This answers `ListServiceQuotas` and
`ListAWSDefaultServiceQuotas` (X-Amz-Target `ServiceQuotasV20190624.*`) for service code `sagemaker` with
well over 100 quotas, in pages of at most 100 as the real service does, so clients must follow NextToken.
`L-9614C779` is the real code of "ml.g5.2xlarge for endpoint usage"; the others are made up in the same form.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

from aws_wire import AwsWire, Json, Request

TARGET = "ServiceQuotasV20190624"
REAL_CODES = {"ml.g5.2xlarge for endpoint usage": "L-9614C779"}
FAMILIES = ("ml.t2", "ml.m5", "ml.c5", "ml.r5", "ml.p3", "ml.g4dn", "ml.g5")  # GPU types last: past page one
SIZES = ("xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge", "48xlarge")
USAGES = ("training job usage", "processing job usage", "transform job usage", "endpoint usage")


def code_for(name: str) -> str:
    return REAL_CODES.get(name) or f"L-{zlib.crc32(name.encode()):08X}"


@dataclass
class SageMakerQuotas:
    """The quotas: AWS defaults for every name, and the account's applied values (`applied`) for some."""

    wire: AwsWire
    applied: dict[str, float] = field(default_factory=dict)
    #: Quotas missing from the account's list (as for some never-adjusted ones): found among the defaults.
    hidden_from_account: set[str] = field(default_factory=set)
    names: list[str] = field(
        default_factory=lambda: [f"{f}.{s} for {u}" for u in USAGES for f in FAMILIES for s in SIZES]
    )

    def default(self, name: str) -> float:
        return 0.0 if any(gpu in name for gpu in ("ml.p", "ml.g")) else 2.0

    def quota(self, name: str, value: float) -> dict[str, object]:
        code = code_for(name)
        return {
            "ServiceCode": "sagemaker",
            "ServiceName": "Amazon SageMaker",
            "QuotaArn": f"arn:aws:servicequotas:eu-west-1:123456789012:sagemaker/{code}",
            "QuotaCode": code,
            "QuotaName": name,
            "Value": value,
            "Unit": "None",
            "Adjustable": True,
            "GlobalQuota": False,
        }

    def _page(self, request: Request, quotas: list[dict[str, object]]) -> Json:
        body = request.json()
        assert body["ServiceCode"] == "sagemaker"
        start = int(body.get("NextToken") or 0)
        size = min(int(body.get("MaxResults") or 100), 100)
        reply: dict[str, object] = {"Quotas": quotas[start : start + size]}
        if start + size < len(quotas):
            reply["NextToken"] = str(start + size)
        return Json(reply)

    def install(self) -> SageMakerQuotas:
        # The account's list holds every quota, with the applied value where one was set.
        self.wire.route(
            "POST",
            "/",
            lambda r: self._page(r, [self.quota(n, v) for n, v in self.account_values().items()]),
            target=f"{TARGET}.ListServiceQuotas",
        )
        self.wire.route(
            "POST",
            "/",
            lambda r: self._page(r, [self.quota(n, self.default(n)) for n in self.names]),
            target=f"{TARGET}.ListAWSDefaultServiceQuotas",
        )
        return self

    def account_values(self) -> dict[str, float]:
        return {
            name: self.applied.get(name, self.default(name))
            for name in self.names
            if name not in self.hidden_from_account
        }

    def list_calls(self) -> int:
        return len(self.wire.requests_for(f"{TARGET}.ListServiceQuotas"))
