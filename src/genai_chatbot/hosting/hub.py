"""Asking the Hugging Face Hub, before anything is created, whether a deploy can download the model.

A token the Hub refuses (licence not accepted, no read access) otherwise shows up 10 minutes into the
deploy as a failed health check. `auth-check` answers for the token and model at once (the route
`huggingface_hub.auth_check` uses): 200 may download, 401/403 may not, 404 no such model. Without a token,
the model's public metadata says whether it is gated. The Hub is `HF_ENDPOINT` (default huggingface.co);
when it cannot be reached (no internet where the deploy runs) the check is skipped, not failed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

import httpx

HF_DEFAULT_ENDPOINT = "https://huggingface.co"


@dataclass(frozen=True, slots=True)
class HubAnswer:
    verdict: Literal["ok", "refused", "gated", "missing", "unreachable"]
    detail: str = ""


def _endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", HF_DEFAULT_ENDPOINT).rstrip("/")


def check_access(model_id: str, token: str | None, timeout_seconds: float = 10.0) -> HubAnswer:
    """May the deployed container download `model_id` with `token` (None: no token)? The token is never echoed."""
    endpoint = _endpoint()
    try:
        with httpx.Client(timeout=timeout_seconds) as client:
            if token is None:
                response = client.get(f"{endpoint}/api/models/{model_id}")
            else:
                headers = {"Authorization": f"Bearer {token}"}
                response = client.get(f"{endpoint}/api/models/{model_id}/auth-check", headers=headers)
    except httpx.HTTPError as exc:
        return HubAnswer("unreachable", f"{endpoint} did not answer ({type(exc).__name__})")
    if response.status_code == 404:
        return HubAnswer("missing", f"{endpoint} has no model {model_id} (or it is private to another account)")
    if response.status_code in (401, 403):
        return HubAnswer("refused", f"{endpoint} refused the token for {model_id} (HTTP {response.status_code})")
    if response.status_code != 200:
        return HubAnswer("unreachable", f"{endpoint} answered HTTP {response.status_code}")
    if token is None:
        try:
            gated = response.json().get("gated", False)
        except ValueError:
            gated = False
        if gated:
            return HubAnswer("gated", f"{model_id} is gated on {endpoint} ({gated})")
    return HubAnswer("ok")
