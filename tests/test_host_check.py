"""The Host check: a DNS-rebinding page (any name resolving to 127.0.0.1) gets a 400 before any route runs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import LiveServer, make_service
from genai_chatbot.api.app import create_app
from genai_chatbot.api.host_check import AllowedHosts, is_loopback_address
from genai_chatbot.config import Settings
from scripted import ScriptedProvider

COMPLETION = {"model": "scripted/echo", "messages": [{"role": "user", "content": "spend the keys"}]}


def serve(settings: Settings, provider: ScriptedProvider) -> Iterator[tuple[LiveServer, httpx.Client]]:
    chat = make_service(settings, provider)
    with (
        LiveServer(create_app(settings, service=chat, close_service=True)) as live,
        httpx.Client(base_url=live.url) as api,
    ):
        yield live, api


@pytest.fixture
def provider() -> ScriptedProvider:
    return ScriptedProvider(["answer"])


@pytest.fixture
def default_server(tmp_path: Path, provider: ScriptedProvider) -> Iterator[tuple[LiveServer, httpx.Client]]:
    yield from serve(Settings(data_dir=tmp_path / "data", default_model="scripted/echo"), provider)


def test_a_rebinding_host_reads_nothing_creates_nothing_and_spends_nothing(
    default_server: tuple[LiveServer, httpx.Client], provider: ScriptedProvider
) -> None:
    _, api = default_server
    api.post("/api/sessions", json={"title": "private"}).raise_for_status()
    evil = {"Host": "evil.example"}

    refused = [
        api.get("/api/sessions", headers=evil),
        api.post("/api/sessions", json={"title": "planted"}, headers=evil),
        api.post("/v1/chat/completions", json=COMPLETION, headers=evil),
        api.post("/v1/chat/completions", json={**COMPLETION, "stream": True}, headers=evil),
        api.get("/", headers=evil),
    ]

    for response in refused:
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["code"] == "host_not_allowed"
        assert "'evil.example'" in error["message"] and "allowed_hosts" in error["message"]
        assert "private" not in response.text
        assert response.headers["x-request-id"]
    assert provider.requests == []  # no provider call: no key spent
    assert [s["title"] for s in api.get("/api/sessions").json()] == ["private"]  # nothing planted


def test_loopback_names_with_any_port_are_answered(default_server: tuple[LiveServer, httpx.Client]) -> None:
    live, api = default_server
    for host in ("localhost", f"localhost:{live.port}", "127.0.0.1", f"127.0.0.1:{live.port}", "[::1]", "[::1]:80"):
        assert api.get("/api/sessions", headers={"Host": host}).status_code == 200, host
    for host in ("localhost.evil.example", "127.0.0.1.nip.io", "evil.example:8000", ""):
        assert api.get("/api/sessions", headers={"Host": host}).status_code == 400, host


def test_allowed_hosts_adds_names_and_subdomain_wildcards(tmp_path: Path, provider: ScriptedProvider) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        default_model="scripted/echo",
        allowed_hosts=["chat.example.com", "*.corp.example"],
    )
    for _, api in serve(settings, provider):
        for host in ("chat.example.com", "CHAT.example.com:8000", "a.corp.example", "b.a.corp.example:443"):
            assert api.get("/api/sessions", headers={"Host": host}).status_code == 200, host
        for host in ("corp.example", "example.com", "evil-corp.example", "chat.example.com.evil"):
            assert api.get("/api/sessions", headers={"Host": host}).status_code == 400, host


def test_the_bound_address_is_a_name_the_server_answers_to() -> None:
    assert AllowedHosts(Settings(host="10.1.2.3")).allows("10.1.2.3:8000")
    assert AllowedHosts(Settings(host="fd00::1")).allows("[fd00::1]:8000")
    assert AllowedHosts(Settings(host="chat.internal")).allows("chat.internal")
    # Every-interface addresses name no host; their real names must be listed in allowed_hosts.
    assert not AllowedHosts(Settings(host="0.0.0.0")).allows("0.0.0.0:8000")
    assert not AllowedHosts(Settings(host="::")).allows("[::]:8000")
    assert AllowedHosts(Settings(allowed_hosts=["*"])).allows("anything.example")


def test_loopback_addresses_are_told_apart_from_exposed_ones() -> None:
    assert all(is_loopback_address(h) for h in ("127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"))
    assert not any(is_loopback_address(h) for h in ("0.0.0.0", "::", "10.0.0.5", "192.168.1.2", "myhost"))
