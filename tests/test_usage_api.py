"""What each turn costs, read back: `GET /api/usage` (your own; admins anyone's) and `genai-chatbot usage`,
from turns on every surface — the page's session API, `/v1` whole and streamed, and the terminal."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fake_openai import FakeOpenAI
from genai_chatbot.auth.users import UserAccount
from governed import ASK, COST, MODEL, governed_settings

ALICE = UserAccount("alice", groups=("interns", "idp-noise"))
ROOT = UserAccount("root", role="admin")


def run_cli(database: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GENAI_CHATBOT_DATABASE_URL": database, "GENAI_CHATBOT_DATA_DIR": "data"}
    return subprocess.run(
        [sys.executable, "-m", "genai_chatbot", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        input=stdin,
    )


@pytest.fixture
def used(tmp_path: Path, database_url: str, upstream: FakeOpenAI, deploy: Any) -> Any:
    """alice's turns on every server surface: a page turn, /v1 whole and streamed, and one of an unpriced model."""
    upstream_models = ["gpt-4o-mini", "gpt-4o"]
    settings = governed_settings(tmp_path, database_url, upstream, groups={"interns": {}})
    settings.openai_compatible[0].models = upstream_models
    servers = deploy(settings, ALICE, ROOT, servers=1)
    alice = servers.client("alice")
    session = alice.post("/api/sessions", json={"model": MODEL}).json()["id"]
    assert alice.post(f"/api/sessions/{session}/messages", json={"content": "hi", "stream": False}).status_code == 200
    assert alice.post("/v1/chat/completions", json=ASK).status_code == 200
    streamed = alice.post("/v1/chat/completions", json={**ASK, "stream": True})
    assert streamed.status_code == 200 and "data: [DONE]" in streamed.text
    assert alice.post("/v1/chat/completions", json={**ASK, "model": "fake/gpt-4o"}).status_code == 200
    assert servers.client("root").post("/v1/chat/completions", json=ASK).status_code == 200
    return servers


def test_a_user_sees_the_cost_of_their_own_turns_on_every_surface(used: Any) -> None:
    usage = used.client("alice").get("/api/usage").json()
    assert usage["user"] == "alice" and usage["by"] == "model" and usage["until"] >= usage["since"]
    rows = {row["key"]: row for row in usage["rows"]}
    assert rows[MODEL]["requests"] == 3 and rows[MODEL]["cost_usd"] == pytest.approx(3 * COST)
    assert (rows[MODEL]["prompt_tokens"], rows[MODEL]["completion_tokens"]) == (27, 9)
    # A model nobody priced has an unknown cost: counted apart, never guessed.
    assert (rows["fake/gpt-4o"]["unpriced"], rows["fake/gpt-4o"]["cost_usd"]) == (1, 0)
    assert usage["total"]["requests"] == 4 and usage["total"]["cost_usd"] == pytest.approx(3 * COST)
    assert rows[MODEL]["mean_latency_ms"] > 0


def test_another_users_usage_is_a_404_for_a_user_and_visible_to_an_admin(used: Any) -> None:
    alice, root = used.client("alice"), used.client("root")
    theirs, nobody = alice.get("/api/usage", params={"user": "root"}), alice.get("/api/usage", params={"user": "x"})
    assert theirs.status_code == nobody.status_code == 404
    assert theirs.json()["error"]["code"] == "user_not_found"
    assert alice.get("/api/usage", params={"user": "alice", "by": "user"}).json()["rows"][0]["key"] == "alice"
    by_user = {r["key"]: r["requests"] for r in root.get("/api/usage", params={"by": "user"}).json()["rows"]}
    assert by_user == {"alice": 4, "root": 1}
    # Only governed groups ([groups.NAME]) get rows: an identity provider's other groups add none.
    by_group = root.get("/api/usage", params={"by": "group", "user": "alice"}).json()
    assert [(r["key"], r["requests"]) for r in by_group["rows"]] == [("interns", 4)]
    assert len(root.get("/api/usage", params={"by": "day"}).json()["rows"]) == 1


def test_a_usage_range_must_be_ordered_and_bounded(used: Any) -> None:
    root = used.client("root")
    backwards = root.get("/api/usage", params={"since": "2026-02-01", "until": "2026-01-01"})
    assert backwards.status_code == 400 and "swap them" in backwards.json()["error"]["message"]
    too_long = root.get("/api/usage", params={"since": "2020-01-01", "until": "2026-01-01"})
    assert too_long.status_code == 400 and "366 days" in too_long.json()["error"]["message"]
    assert root.get("/api/usage", params={"since": "2020-01-01", "until": "2020-01-31"}).json()["rows"] == []


@pytest.mark.slow  # CLI subprocesses
def test_the_usage_command_prints_the_table_an_admin_asks_for(used: Any, database_url: str) -> None:
    by_model = run_cli(database_url, "usage", "--by", "model")
    assert by_model.returncode == 0, by_model.stderr
    lines = by_model.stdout.splitlines()
    assert lines[0].startswith("Usage from ") and "by model" in lines[0]
    mini = next(line.split() for line in lines if line.startswith(MODEL))
    assert mini[1:] == ["4", "0", "36", "12", f"{4 * COST:.4f}", "0"]
    assert next(line for line in lines if line.startswith("total")).split()[1] == "5"
    assert "have no known cost" in by_model.stderr
    alice = run_cli(database_url, "usage", "--user", "alice", "--by", "group")
    assert [line.split()[:2] for line in alice.stdout.splitlines()[2:3]] == [["interns", "4"]]
    wrong = run_cli(database_url, "usage", "--since", "2026-13-01")
    assert wrong.returncode == 2 and "YYYY-MM-DD" in wrong.stderr


@pytest.mark.slow  # CLI subprocesses
def test_users_set_stores_a_users_limits_and_refuses_invalid_ones(used: Any, database_url: str) -> None:
    args = ["--budget-usd", "5", "--budget-period", "day", "--requests-per-minute", "20"]
    done = run_cli(database_url, "users", "set", "alice", *args)
    assert done.returncode == 0, done.stderr
    assert "alice: budget_usd 5.0, budget_period day, requests_per_minute 20." in done.stderr
    more = run_cli(database_url, "users", "set", "alice", "--tokens-per-minute", "1000")
    assert "tokens_per_minute 1000" in more.stderr and "budget_usd 5.0" in more.stderr  # the others are kept
    [alice] = [u for u in used.client("root").get("/api/admin/users").json() if u["name"] == "alice"]
    assert alice["limits"] == {
        "budget_usd": 5.0,
        "budget_tokens": None,
        "budget_period": "day",
        "requests_per_minute": 20,
        "tokens_per_minute": 1000,
    }
    wrong = run_cli(database_url, "users", "set", "alice", "--budget-period", "week")
    assert wrong.returncode == 1 and "Invalid limits: budget_period" in wrong.stderr
    assert run_cli(database_url, "users", "set", "nobody", "--budget-usd", "1").returncode == 1
    cleared = run_cli(database_url, "users", "set", "alice", "--clear")
    assert "no limits of their own" in cleared.stderr


@pytest.mark.slow  # CLI subprocesses
def test_terminal_turns_are_recorded_for_the_terminals_user(tmp_path: Path, upstream: FakeOpenAI) -> None:
    (tmp_path / "genai-chatbot.toml").write_text(
        f'default_model = "{MODEL}"\n[local]\nenabled = false\n'
        f'[[openai_compatible]]\nname = "fake"\nbase_url = "{upstream.url}/v1"\nmodels = ["gpt-4o-mini"]\n'
        f'[prices."{MODEL}"]\ninput_per_million = 1000\noutput_per_million = 2000\n'
    )
    database = f"sqlite:///{tmp_path}/chat.sqlite3"
    chat = run_cli(database, "chat", stdin="hello\n/exit\n")
    assert chat.returncode == 0, chat.stderr
    usage = run_cli(database, "usage", "--by", "user")
    assert next(line.split() for line in usage.stdout.splitlines() if line.startswith("default"))[1:2] == ["1"]
    assert f"{COST:.4f}" in usage.stdout
