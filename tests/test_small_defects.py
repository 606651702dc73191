"""Small defects of issue 8, each pinned: emoji in ARNs, the HF-token setting's name, `--config`'s message,
"..", `/open` by prefix, and `pull` leaving no folder behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from aws_local import aws_env, moto_url  # noqa: F401  (fixtures)
from genai_chatbot.config import ConfigError, Settings, load_settings
from genai_chatbot.models.providers._aws import error_message
from genai_chatbot.models.providers._http_errors import ErrorContext
from genai_chatbot.pull import PullError, PullRequest, pull
from genai_chatbot.secrets import build_provider_keys
from genai_chatbot.wording import clause

ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:genai-chatbot-keys-AbCdEf"


def run_cli(*args: str, stdin: str = "", **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "genai_chatbot", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
    )


@pytest.mark.usefixtures("aws_env")
def test_doctor_prints_an_arn_as_it_is_not_as_an_emoji(tmp_path: Path) -> None:
    result = run_cli(
        "doctor",
        GENAI_CHATBOT_DATA_DIR=str(tmp_path),
        GENAI_CHATBOT_LOCAL__ENABLED="false",
        GENAI_CHATBOT_KEYS_SECRET_ID=ARN,
        HF_ENDPOINT="http://127.0.0.1:9",
        COLUMNS="400",  # no cell wraps
    )
    assert result.returncode == 1, result.stdout  # the secret does not exist in moto
    assert f"Secrets Manager keys secret {ARN}" in result.stdout
    assert "㊙" not in result.stdout


@pytest.mark.usefixtures("aws_env")
async def test_a_missing_hf_token_secret_names_the_hf_token_setting(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, hf_token_secret_id="no-such-hf-token")
    [error] = (await build_provider_keys(settings).refresh()).errors
    assert "ResourceNotFoundException" in error
    assert "GENAI_CHATBOT_HF_TOKEN_SECRET_ID" in error and "GENAI_CHATBOT_KEYS_SECRET_ID" not in error


def test_a_missing_config_option_file_names_the_option(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(Path("nope.toml"))
    assert str(raised.value) == (
        "Config file 'nope.toml' does not exist; create it or pass the path of an existing file to --config."
    )
    monkeypatch.setenv("GENAI_CHATBOT_CONFIG", "gone.toml")
    with pytest.raises(ConfigError, match=r"'gone.toml' does not exist; create it or unset GENAI_CHATBOT_CONFIG\.$"):
        load_settings()


def test_messages_built_from_messages_end_in_one_full_stop() -> None:
    assert clause("Could not find endpoint.") == "Could not find endpoint"
    assert clause("waiting...") == "waiting..."
    denied = ClientError({"Error": {"Code": "AccessDeniedException", "Message": "You lack access."}}, "Converse")
    assert error_message(denied) == "You lack access"
    limited = ErrorContext("Cohere", key_name="COHERE_API_KEY").status_error(429, "Slow down.")
    assert limited.message == "Cohere is rate limiting this key: Slow down. Retry later, or raise the quota."


def test_open_takes_a_unique_id_prefix_and_lists_an_ambiguous_one(tmp_path: Path) -> None:
    env = {"GENAI_CHATBOT_DATA_DIR": str(tmp_path), "GENAI_CHATBOT_LOCAL__ENABLED": "false"}
    # Two sessions, made through the terminal chat itself (the model is unavailable, the sessions are stored).
    made = run_cli("chat", "-m", "nope/none", stdin="/sessions\n", **env)
    assert "No sessions yet." in made.stdout, made.stdout + made.stderr
    from genai_chatbot.chat.records import Session
    from genai_chatbot.chat.sqlite_store import SQLiteHistoryStore

    async def add(*ids: str) -> None:
        store = SQLiteHistoryStore(tmp_path / "chat.sqlite3")
        try:
            for session_id in ids:
                await store.create_session(Session(id=session_id, user_id="default", title="", model_id="x/y"))
        finally:
            await store.close()

    import asyncio

    asyncio.run(add("2409aaaa-1111", "2409bbbb-2222", "7777cccc-3333"))
    result = run_cli("chat", stdin="/open 7777\n/open 2409\n/open 9999\n/open\n", **env)
    assert "Continuing session 7777cccc-3333 with x/y." in result.stdout
    assert "2 sessions have an id starting with '2409'; type more of it:" in result.stdout
    assert "2409aaaa-1111" in result.stdout and "2409bbbb-2222" in result.stdout
    assert "No session of yours has an id starting with '9999'; /sessions lists them." in result.stdout
    assert "/sessions lists your sessions" in result.stdout
    assert "/api/sessions" not in result.stdout


def test_a_failed_pull_leaves_no_folder_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    models = tmp_path / "models"
    with pytest.raises(PullError, match="try again"):
        pull(PullRequest("org/repo-GGUF", "model.gguf"), models, None, timeout_seconds=5)
    assert list(tmp_path.iterdir()) == []
