"""`genai-chatbot users` and `keys`, run as an admin runs them, against the database a real server reads."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from conftest import LiveServer, make_service
from genai_chatbot.api.app import create_app
from genai_chatbot.config import Settings
from scripted import ScriptedProvider

KEY = re.compile(r"^gcb_([0-9a-f]{12})_[A-Za-z0-9_-]{43}$")


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The command in a real process; the data dir is ./data of the test's temporary working directory."""
    return subprocess.run(
        [sys.executable, "-m", "genai_chatbot", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "GENAI_CHATBOT_AUTH": "api-keys", **(env or {})},
    )


def ok(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    result = run_cli(*args, env=env)
    assert result.returncode == 0, result.stderr
    return result


def serving(tmp_path: Path) -> LiveServer:
    settings = Settings(data_dir=tmp_path / "data", auth="api-keys")
    return LiveServer(create_app(settings, service=make_service(settings, ScriptedProvider(["hi"]))))


def me(url: str, key: str) -> httpx.Response:
    return httpx.get(f"{url}/api/me", headers={"Authorization": f"Bearer {key}"})


@pytest.mark.slow  # several CLI subprocesses against a real server
def test_keys_create_prints_only_the_key_and_the_server_and_models_command_accept_it(tmp_path: Path) -> None:
    added = ok("users", "add", "alice", "--role", "manager", "--group", "team-a", "--group", "team-b")
    assert added.stdout == "" and "Added user 'alice'" in added.stderr
    created = ok("keys", "create", "alice")
    assert KEY.match(created.stdout.removesuffix("\n")) and created.stdout.count("\n") == 1
    key = created.stdout.strip()
    prefix = KEY.match(key).group(1)  # type: ignore[union-attr]
    assert prefix in created.stderr and key not in created.stderr

    with serving(tmp_path) as live:
        assert me(live.url, key).json() == {
            "user_id": "alice",
            "role": "manager",
            "groups": ["team-a", "team-b"],
            "method": "api-key",
        }
        listed = ok("models", "--server", live.url, "--json", env={"GENAI_CHATBOT_API_KEY": key})
        assert "scripted/echo" in listed.stdout
        assert "scripted/echo" in ok("models", "--server", live.url, "--api-key", key, "--json").stdout
        refused = run_cli("models", "--server", live.url)
        assert refused.returncode == 1 and "401" in refused.stderr and "--api-key" in refused.stderr

    keys = ok("keys", "list", "alice").stdout
    assert prefix in keys and "active" in keys and key.split("_", 2)[2] not in keys
    revoked = ok("keys", "revoke", prefix)
    assert "Revoked key" in revoked.stderr and revoked.stdout == ""
    assert "revoked" in ok("keys", "list", "alice").stdout
    with serving(tmp_path) as live:
        refused_key = me(live.url, key)
        assert refused_key.status_code == 401 and "was revoked" in refused_key.json()["error"]["message"]


@pytest.mark.slow  # several CLI subprocesses against a real server
def test_a_disabled_user_cannot_sign_in_nor_get_keys(tmp_path: Path) -> None:
    ok("users", "add", "bob")
    key = ok("keys", "create", "bob", "--expires-in", "30").stdout.strip()
    row = ok("keys", "list", "bob").stdout.splitlines()[1]
    assert len(re.findall(r"\d{4}-\d\d-\d\d \d\d:\d\d", row)) == 2 and row.endswith("-")  # created, expires; unused
    ok("users", "disable", "bob")
    assert re.search(r"^bob\s+user\s+disabled", ok("users", "list").stdout, re.MULTILINE)
    refused = run_cli("keys", "create", "bob")
    assert refused.returncode == 1 and "User 'bob' is disabled" in refused.stderr and refused.stdout == ""
    with serving(tmp_path) as live:
        assert "disabled" in me(live.url, key).json()["error"]["message"]
    ok("users", "enable", "bob")
    with serving(tmp_path) as live:
        assert me(live.url, key).status_code == 200


@pytest.mark.slow  # several CLI subprocesses against a real server
def test_mistakes_are_refused_with_the_fix(tmp_path: Path) -> None:
    ok("users", "add", "alice")
    cases = [
        (("users", "add", "alice"), 1, "User 'alice' already exists"),
        (("users", "add", "carol", "--role", "boss"), 2, "Invalid role 'boss': use one of admin, manager, user"),
        (("users", "add", "no spaces"), 2, "Invalid user name 'no spaces'"),
        (("users", "add", "carol", "--group", "g" * 200), 2, "Invalid group name"),
        (("users", "disable", "nobody"), 1, "There is no user 'nobody'; list users with 'genai-chatbot users list'"),
        (("keys", "create", "nobody"), 1, "There is no user 'nobody'"),
        (("keys", "list", "nobody"), 1, "There is no user 'nobody'"),
        (("keys", "revoke", "0123456789ab"), 1, "There is no API key with prefix '0123456789ab'"),
    ]
    for args, code, message in cases:
        result = run_cli(*args)
        assert (result.returncode, result.stdout) == (code, ""), args
        assert message in result.stderr, args


def test_users_list_shows_roles_and_groups_and_notes_when_keys_are_off(tmp_path: Path) -> None:
    ok("users", "add", "root", "--role", "admin")
    ok("users", "add", "ann", "--group", "sales")
    listed = run_cli("users", "list", env={"GENAI_CHATBOT_AUTH": "none"})
    rows = listed.stdout.splitlines()
    assert rows[0].split() == ["name", "role", "status", "created", "groups"]
    assert rows[1].split()[:3] == ["ann", "user", "active"] and rows[1].endswith("sales")
    assert rows[2].split()[:3] == ["root", "admin", "active"]
    assert 'auth is "none"' in listed.stderr
