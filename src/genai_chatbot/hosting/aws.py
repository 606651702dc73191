"""The region and the boto3 clients `genai-chatbot sagemaker ...` works with.

The region comes from `--region`, then the setting `sagemaker.region`, then boto3's own resolution
(AWS_REGION, AWS_DEFAULT_REGION, the profile); endpoints from the standard `AWS_ENDPOINT_URL_<SERVICE>`
variables, which is how the tests point boto3 at local servers.
"""

from __future__ import annotations

import re
from typing import Any

from genai_chatbot.hosting.deploy import DeployError


def region_of(explicit: str | None, configured: str | None) -> str:
    """The region to work in, or `DeployError` naming the three ways to set one."""
    if explicit or configured:
        return str(explicit or configured)
    import boto3

    found = boto3.session.Session().region_name
    if not found:
        raise DeployError("No AWS region: pass --region, set sagemaker.region in the settings file, or set AWS_REGION.")
    return str(found)


def client(service: str, region: str) -> Any:
    import boto3

    make: Any = boto3.client  # typed per literal service name
    return make(service, region_name=region)


def secret_region(secret_id: str, default: str) -> str:
    """A secret ARN names its region; a bare name lives in the deploy's region."""
    match = re.match(r"arn:aws[a-z-]*:secretsmanager:([a-z0-9-]+):", secret_id)
    return match.group(1) if match else default
