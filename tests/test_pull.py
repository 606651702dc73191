"""`genai-chatbot pull`: a GGUF from a (local) Hugging Face endpoint, with the token for gated models."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fake_hub import GOOD_TOKEN
from genai_chatbot.config import LocalModelSettings
from genai_chatbot.models.providers.local import LocalProvider, embedded_gguf_path
from genai_chatbot.models.types import ChatRequest, Message
from genai_chatbot.pull import PullError, PullRequest, pull


@pytest.mark.slow  # loads the pulled GGUF
async def test_a_gated_gguf_is_pulled_with_the_token_and_serves(hub: str, tmp_path: Path) -> None:
    seen: list[int] = []
    path = pull(PullRequest("org/gated-GGUF", "model.Q4.gguf"), tmp_path, GOOD_TOKEN, lambda done, _: seen.append(done))
    embedded = embedded_gguf_path()
    assert embedded is not None
    assert path == tmp_path / "org--gated-GGUF" / "model.Q4.gguf"
    assert hashlib.sha256(path.read_bytes()).digest() == hashlib.sha256(embedded.read_bytes()).digest()
    assert seen[-1] == path.stat().st_size and len(seen) > 1
    provider = LocalProvider(LocalModelSettings(model_path=path, threads=2))
    system = "You are a helpful assistant."
    question = ChatRequest("model.q4", (Message("user", "What is the capital of France?"),), system, temperature=0)
    assert "Paris" in (await provider.complete(question)).text
    await provider.aclose()


def test_a_gated_repo_without_a_token_says_how_to_get_access(hub: str, tmp_path: Path) -> None:
    with pytest.raises(PullError, match=r"is gated \(HTTP 401\): accept its terms on https://huggingface.co/org/gated"):
        pull(PullRequest("org/gated-GGUF", "model.Q4.gguf"), tmp_path, None)
    with pytest.raises(PullError, match="refused the Hugging Face token"):
        pull(PullRequest("org/gated-GGUF", "model.Q4.gguf"), tmp_path, "hf_wrong")
    assert list(tmp_path.rglob("*")) == []  # no partial file, and not the folder it made for it


def test_bad_names_are_refused_before_any_download() -> None:
    with pytest.raises(PullError, match="not a Hugging Face repository id"):
        PullRequest("just-a-name", "model.gguf")
    with pytest.raises(PullError, match=r"not a \.gguf file name"):
        PullRequest("org/repo", "../../etc/passwd.gguf")
    with pytest.raises(PullError, match=r"not a \.gguf file name"):
        PullRequest("org/repo", "model.safetensors")


def test_the_command_uses_the_token_from_the_keys_and_prints_the_setting(hub: str, tmp_path: Path) -> None:
    (tmp_path / "keys.json").write_text(f'{{"HF_TOKEN": "{GOOD_TOKEN}"}}')
    result = subprocess.run(
        [sys.executable, "-m", "genai_chatbot", "pull", "org/gated-GGUF", "model.Q4.gguf"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "GENAI_CHATBOT_DATA_DIR": str(tmp_path), "HF_ENDPOINT": hub},
    )
    assert result.returncode == 0, result.stderr
    assert (
        f"GENAI_CHATBOT_LOCAL__MODEL_PATH={tmp_path / 'models' / 'org--gated-GGUF' / 'model.Q4.gguf'}" in result.stdout
    )
    missing = subprocess.run(
        [sys.executable, "-m", "genai_chatbot", "pull", "org/gated-GGUF", "other.gguf"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "GENAI_CHATBOT_DATA_DIR": str(tmp_path), "HF_ENDPOINT": hub},
    )
    assert missing.returncode == 1
    assert "has no file 'other.gguf'" in missing.stderr
