"""A broken keys source is in plain sight: in `/api/models`, on `models` and `models --server`, not only a log.

The keys file here holds `''`, the empty-string mistake people make in Secrets Manager: the providers it
would enable are missing, and each place that lists models says why (in full to admins, without details
to other users), while `/healthz` stays 200.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from conftest import LiveServer, make_service
from genai_chatbot.api.app import create_app
from genai_chatbot.api.session_routes import HIDDEN_KEYS_PROBLEM
from genai_chatbot.config import Settings
from genai_chatbot.models.registry import ModelRegistry
from genai_chatbot.secrets import FileKeySource, ProviderKeys
from scripted import ScriptedProvider
from test_isolation import make_users

EMPTY_SECRET_PROBLEM = "is an empty string; store {} when no keys are needed, not ''."


def broken_keys_settings(tmp_path: Path, **overrides: object) -> Settings:
    settings = Settings(data_dir=tmp_path, default_model="scripted/echo", **overrides)  # type: ignore[arg-type]
    settings.keys_path.parent.mkdir(parents=True, exist_ok=True)
    settings.keys_path.write_text("''")
    return settings


def scripted_app(settings: Settings) -> object:
    """The app with the scripted model and a registry that reads the (broken) keys file of `settings`."""
    service = make_service(settings, ScriptedProvider(["hello"]))
    keys = ProviderKeys([FileKeySource(settings.keys_path)])
    service.registry = ModelRegistry(service.registry.providers.values(), keys)
    return create_app(settings, service=service)


def run_models(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GENAI_CHATBOT_DATA_DIR": str(data_dir), "GENAI_CHATBOT_LOCAL__ENABLED": "false"}
    return subprocess.run(
        [sys.executable, "-m", "genai_chatbot", "models", *args], capture_output=True, text=True, timeout=120, env=env
    )


def test_an_empty_keys_secret_is_a_problem_in_the_model_list(tmp_path: Path) -> None:
    settings = broken_keys_settings(tmp_path)
    with LiveServer(scripted_app(settings)) as live, httpx.Client(base_url=live.url) as api:  # type: ignore[arg-type]
        listing = api.get("/api/models").json()
        refreshed = api.post("/api/models/refresh").json()
        health = api.get("/healthz")
    assert [m["id"] for m in listing["models"]] == ["scripted/echo"]
    [problem] = listing["problems"]  # the local user is the admin: the whole text, with the fix
    assert problem == f"Keys file {settings.keys_path} {EMPTY_SECRET_PROBLEM}"
    assert refreshed == listing
    assert health.status_code == 200


def test_users_learn_that_a_keys_source_is_broken_but_not_which(tmp_path: Path) -> None:
    settings = broken_keys_settings(tmp_path, auth="api-keys")
    keys, _ = make_users(settings)
    with LiveServer(scripted_app(settings)) as live:
        bob = httpx.get(f"{live.url}/api/models", headers={"Authorization": f"Bearer {keys['bob']}"}).json()
        root = httpx.get(f"{live.url}/api/models", headers={"Authorization": f"Bearer {keys['root']}"}).json()
        assert httpx.get(f"{live.url}/healthz").status_code == 200
    assert bob["problems"] == [HIDDEN_KEYS_PROBLEM]
    assert "keys.json" not in str(bob)
    assert root["problems"] == [f"Keys file {settings.keys_path} {EMPTY_SECRET_PROBLEM}"]


def test_a_default_model_nobody_lists_is_a_problem(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, default_model="gone/model")
    with LiveServer(scripted_app(settings)) as live:
        [problem] = httpx.get(f"{live.url}/api/models").json()["problems"]
    assert problem.startswith("The default model 'gone/model' is not among the models (no provider named 'gone'")
    assert "Set default_model to a listed model" in problem


def test_the_models_command_prints_a_broken_source_once(tmp_path: Path) -> None:
    (tmp_path / "keys.json").write_text("''")
    result = run_models("--refresh", data_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count(EMPTY_SECRET_PROBLEM) == 1, result.stderr  # not also as a log line
    assert result.stderr.startswith("warning: Keys file")


def test_models_server_prints_the_servers_problems(tmp_path: Path) -> None:
    settings = broken_keys_settings(tmp_path / "server")
    with LiveServer(scripted_app(settings)) as live:
        result = run_models("--json", "--server", live.url, data_dir=tmp_path / "client")
    assert result.returncode == 0, result.stderr
    assert '"scripted/echo"' in result.stdout
    assert result.stderr.count(EMPTY_SECRET_PROBLEM) == 1, result.stderr
    assert f"warning: Keys file {settings.keys_path}" in result.stderr


def test_models_server_marks_the_servers_default_model(tmp_path: Path) -> None:
    settings = broken_keys_settings(tmp_path / "server")
    with LiveServer(scripted_app(settings)) as live:
        result = run_models("--server", live.url, data_dir=tmp_path / "client")  # whose default is local/…
    assert result.returncode == 0, result.stderr
    assert "scripted/echo (default)" in result.stdout
