"""`doctor`'s checks: is every keys source readable, which providers are on, and does each one answer.

Each check is a `Diagnosis` whose `fix` says what to do. Key names appear here; key values never do.
"""

from __future__ import annotations

import asyncio
import os

import httpx

from genai_chatbot.config import Settings
from genai_chatbot.models.registry import ModelRegistry, build_registry
from genai_chatbot.models.types import Diagnosis
from genai_chatbot.secrets import HF_TOKEN, KeysSnapshot, build_provider_keys

HF_DEFAULT_ENDPOINT = "https://huggingface.co"


def keys_checks(snapshot: KeysSnapshot) -> list[Diagnosis]:
    """One row per keys source: the names it holds, or its error."""
    rows = []
    for source in snapshot.sources:
        if source.error:
            rows.append(Diagnosis(source.description, "error", source.error))
        else:
            names = ", ".join(source.names) if source.names else "no keys"
            rows.append(Diagnosis(source.description, "ok", names))
    return rows


def enabled_by(registry: ModelRegistry, snapshot: KeysSnapshot) -> list[Diagnosis]:
    """Which providers are turned on by which keys (names only)."""
    rows = []
    for provider in registry.providers.values():
        if not provider.enabling_keys:
            continue
        present = [name for name in provider.enabling_keys if snapshot.get(name)]
        if present:
            rows.append(Diagnosis(f"{provider.name} key", "ok", f"enabled by {', '.join(present)}"))
    return rows


async def hf_token_check(snapshot: KeysSnapshot, timeout_seconds: float = 10.0) -> list[Diagnosis]:
    """Ask Hugging Face (or `HF_ENDPOINT`) whether the token is accepted, when there is one."""
    token = snapshot.get(HF_TOKEN)
    if token is None:
        return [
            Diagnosis(
                "Hugging Face token",
                "off",
                "none configured (only needed for gated models such as Mistral or Llama)",
                "set hf_token_secret_id, hf_token_file or HF_TOKEN",
            )
        ]
    endpoint = os.environ.get("HF_ENDPOINT", HF_DEFAULT_ENDPOINT).rstrip("/")
    try:
        async with httpx.AsyncClient(timeout=timeout_seconds) as client:
            response = await client.get(f"{endpoint}/api/whoami-v2", headers={"Authorization": f"Bearer {token}"})
    except httpx.HTTPError as exc:
        return [Diagnosis("Hugging Face token", "warning", f"{endpoint} did not answer ({type(exc).__name__})")]
    if response.status_code == 200:
        name = response.json().get("name", "?")
        return [Diagnosis("Hugging Face token", "ok", f"accepted for user {name}")]
    return [
        Diagnosis(
            "Hugging Face token",
            "error",
            f"refused by {endpoint} (HTTP {response.status_code})",
            "create a new token at https://huggingface.co/settings/tokens, accept the model's terms on its page, "
            "and store the token as plain text",
        )
    ]


async def run_checks(settings: Settings) -> list[Diagnosis]:
    """Every check, in the order a person fixes things: keys, then providers, then the HF token."""
    keys = build_provider_keys(settings, log_errors=False)  # the table shows every source error once
    registry = build_registry(settings, keys)
    try:
        snapshot = await keys.refresh()
        provider_rows = await asyncio.gather(*(p.diagnose() for p in registry.redacting_providers.values()))
        hf_rows = await hf_token_check(snapshot, settings.request_timeout_seconds)
    finally:
        await registry.aclose()
    rows = keys_checks(snapshot) + enabled_by(registry, snapshot)
    for provider_diagnoses in provider_rows:
        rows.extend(provider_diagnoses)
    return rows + hf_rows
