"""The Hugging Face TGI (Text Generation Inference) container image for a region.

AWS publishes the Hugging Face deep learning containers from one ECR account in most regions and from
regional accounts in opt-in, China and GovCloud regions (the same table the SageMaker Python SDK keeps).
The tag is pinned so that a deploy today and one next month run the same server; to use another TGI
version, or a region missing here, pass `--image-uri` to `deploy` with the full URI.
"""

from __future__ import annotations

#: The pinned TGI release: TGI 2.4.0 on PyTorch 2.4, CUDA 12.4. It serves `/v1/chat/completions`-style
#: `messages` payloads on SageMaker's `/invocations`, which the `openai-messages` format sends.
TGI_TAG = "2.4.0-tgi2.4.0-gpu-py311-cu124-ubuntu22.04"
REPOSITORY = "huggingface-pytorch-tgi-inference"
DEFAULT_ACCOUNT = "763104351884"
REGIONAL_ACCOUNTS: dict[str, str] = {
    "af-south-1": "626614931356",
    "ap-east-1": "871362719292",
    "ap-south-2": "772153158452",
    "ap-southeast-3": "907027046896",
    "ap-southeast-4": "457447274322",
    "ca-west-1": "204538143572",
    "cn-north-1": "727897471807",
    "cn-northwest-1": "727897471807",
    "eu-central-2": "380420809688",
    "eu-south-1": "692866216735",
    "eu-south-2": "503227376785",
    "il-central-1": "780543022126",
    "me-central-1": "914824155844",
    "me-south-1": "217643126080",
    "us-gov-east-1": "446045086412",
    "us-gov-west-1": "442386744353",
}


def tgi_image_uri(region: str) -> str:
    """The pinned TGI image in `region`'s ECR, e.g. `763104351884.dkr.ecr.eu-west-1.amazonaws.com/...`."""
    account = REGIONAL_ACCOUNTS.get(region, DEFAULT_ACCOUNT)
    domain = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"{account}.dkr.ecr.{region}.{domain}/{REPOSITORY}:{TGI_TAG}"
