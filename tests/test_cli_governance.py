"""`groups`, `audit`, and model access in the terminal, run as an admin runs them: real processes, one database.

The models come from a fake OpenAI-compatible upstream (`upstream/gpt-4o`, `upstream/gpt-4o-mini`, ...);
the settings file puts `interns` on `upstream/gpt-4o-mini`.
"""

from __future__ import annotations

import getpass
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fake_openai import FakeOpenAI

# Real server processes, several stores or CLI subprocesses: the full suite runs these, `make test-fast` does not.
pytestmark = pytest.mark.slow


@pytest.fixture
def config(tmp_path: Path) -> Iterator[Path]:
    with FakeOpenAI() as upstream:
        path = tmp_path / "genai-chatbot.toml"
        path.write_text(
            f'data_dir = "{tmp_path / "data"}"\ndefault_model = "upstream/gpt-4o"\nauth = "api-keys"\n'
            "[local]\nenabled = false\n"
            f'[[openai_compatible]]\nname = "upstream"\nbase_url = "{upstream.url}/v1"\n'
            'models = ["gpt-4o", "gpt-4o-mini", "o3-mini"]\n'
            '[groups.interns]\nmodels = ["upstream/gpt-4o-mini"]\n'
        )
        yield path


def run(config: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "genai_chatbot", *args, "--config", str(config)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HF_ENDPOINT": "http://127.0.0.1:9"},
    )


def ok(config: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    result = run(config, *args, stdin=stdin)
    assert result.returncode == 0, result.stderr
    return result


def model_ids(config: Path, *args: str) -> list[str]:
    return [m["id"] for m in json.loads(ok(config, "models", "--json", *args).stdout)]


def test_the_terminal_and_models_command_allow_a_user_only_their_groups_models(config: Path) -> None:
    ok(config, "users", "add", "alice", "--group", "interns")
    ok(config, "users", "add", "ann", "--group", "interns", "--role", "admin")
    assert model_ids(config, "--user", "alice") == ["upstream/gpt-4o-mini"]
    assert (
        model_ids(config, "--user", "ann")
        == model_ids(config)
        == [
            "upstream/gpt-4o",
            "upstream/gpt-4o-mini",
            "upstream/o3-mini",
        ]
    )

    script = "hello\n/models\n/model upstream/o3-mini\n/model upstream/gpt-4o-mini\nhello\n/sessions\n/exit\n"
    chat = ok(config, "chat", "--user", "alice", stdin=script).stdout
    refused, listed, refused_again, rest = chat.split("error: Your groups do not allow model", 1)[1].split("\n", 3)
    assert refused.startswith(" 'upstream/gpt-4o'") and "/models lists those you may use" in refused
    assert listed.split() == ["you>", "upstream/gpt-4o-mini"]  # /models: what alice may use, nothing else
    assert "error: Your groups do not allow model 'upstream/o3-mini'" in refused_again
    assert "Model: upstream/gpt-4o-mini" in rest and "Hello, world" in rest
    assert chat.count("upstream/gpt-4o-mini  hello") == 1  # /sessions: alice's one session, on the allowed model

    # Sessions are the user's own: the default terminal user has none of alice's.
    assert "No sessions yet." in ok(config, "chat", stdin="/sessions\n/exit\n").stdout


def test_unknown_and_disabled_terminal_users_are_refused_with_the_fix(config: Path) -> None:
    unknown = run(config, "chat", "--user", "nobody", stdin="/exit\n")
    assert unknown.returncode == 1 and "There is no user 'nobody'" in unknown.stderr
    ok(config, "users", "add", "bob")
    ok(config, "users", "disable", "bob")
    disabled = run(config, "models", "--user", "bob")
    assert disabled.returncode == 1 and "genai-chatbot users enable bob" in disabled.stderr


def test_groups_set_list_show_delete_and_the_admin_set_policy_wins(config: Path) -> None:
    ok(config, "users", "add", "alice", "--group", "interns")
    assert ok(config, "groups", "list").stdout.splitlines()[1].split()[:2] == ["interns", "settings"]

    set_ = ok(config, "groups", "set", "interns", "--models", "upstream/o3-*", "--models", "upstream/gpt-4o",
              "--budget-usd", "5", "--budget-period", "day", "--requests-per-minute", "20")  # fmt: skip
    assert "Set group 'interns'" in set_.stderr and set_.stdout == ""
    assert model_ids(config, "--user", "alice") == ["upstream/gpt-4o", "upstream/o3-mini"]
    shown = json.loads(ok(config, "groups", "show", "interns").stdout)
    assert shown["source"] == "admin over settings" and shown["updated_by"] == f"cli:{getpass.getuser()}"
    assert shown["policy"]["budget_usd"] == 5.0 and shown["policy"]["budget_period"] == "day"
    assert shown["settings_policy"]["models"] == ["upstream/gpt-4o-mini"]
    ok(config, "groups", "set", "sales", "--tokens-per-minute", "1000")
    rows = ok(config, "groups", "list").stdout.splitlines()
    assert [r.split()[:2] for r in rows[1:]] == [["interns", "admin"], ["sales", "admin"]]
    assert "all models" in rows[2] and "tokens_per_minute=1000" in rows[2]

    ok(config, "groups", "delete", "interns")
    assert model_ids(config, "--user", "alice") == ["upstream/gpt-4o-mini"]
    for args, code, message in [
        (("groups", "delete", "interns"), 1, "No policy was set for group 'interns' at run time"),
        (("groups", "show", "nobody"), 1, "group 'nobody' has no policy"),
        (("groups", "set", "bad*name"), 2, "Invalid group name"),
        (("groups", "set", "x", "--budget-period", "week"), 2, "--budget-period: Input should be 'day' or 'month'"),
        (("groups", "set", "x", "--budget-usd", "-1"), 2, "greater than or equal to 0"),
    ]:
        result = run(config, *args)
        assert (result.returncode, result.stdout) == (code, ""), (args, result.stderr)
        assert message in result.stderr, (args, result.stderr)


def test_admin_commands_are_audited_as_the_os_user_without_any_key(config: Path) -> None:
    ok(config, "users", "add", "alice")
    key = ok(config, "keys", "create", "alice").stdout.strip()
    prefix = key.split("_")[1]
    ok(config, "keys", "revoke", prefix)
    ok(config, "users", "disable", "alice")
    ok(config, "groups", "set", "interns", "--models", "upstream/*")
    ok(config, "groups", "delete", "interns")
    lines = [json.loads(line) for line in ok(config, "audit", "--json").stdout.splitlines()]
    actor = f"cli:{getpass.getuser()}"
    assert [(e["actor"], e["action"], e["target"]) for e in reversed(lines)] == [
        (actor, "user.add", "alice"),
        (actor, "key.create", "alice"),
        (actor, "key.revoke", "alice"),
        (actor, "user.update", "alice"),
        (actor, "group.set", "interns"),
        (actor, "group.delete", "interns"),
    ]
    assert lines[3]["detail"] == {"prefix": prefix} and lines[4]["detail"]["prefix"] == prefix
    table = ok(config, "audit", "--limit", "2").stdout
    assert table.count("\n") == 2 and "group.delete" in table and "user.add" not in table
    assert ok(config, "audit", "--action", "key.create").stdout.count("\n") == 1
    assert "No audit entries match" in ok(config, "audit", "--since", "2999-01-01").stderr
    everything = ok(config, "audit", "--json").stdout + ok(config, "audit").stdout
    assert key not in everything and key.split("_", 2)[2] not in everything  # the secret, which may hold "_"


def test_groups_and_audit_commands_work_on_postgresql(config: Path, postgres_url: str) -> None:
    config.write_text(f'database_url = "{postgres_url}"\n' + config.read_text())
    ok(config, "users", "add", "alice", "--group", "interns")
    ok(config, "groups", "set", "interns", "--models", "upstream/o3-*")
    assert model_ids(config, "--user", "alice") == ["upstream/o3-mini"]
    assert json.loads(ok(config, "groups", "show", "interns").stdout)["source"] == "admin over settings"
    ok(config, "groups", "delete", "interns")
    assert ok(config, "groups", "list").stdout.splitlines()[1].split()[:2] == ["interns", "settings"]
    lines = [json.loads(line) for line in ok(config, "audit", "--json").stdout.splitlines()]
    assert [e["action"] for e in lines] == ["group.delete", "group.set", "user.add"]
