"""Each layer keeps to its job: surfaces go through the chat service, and HTTP lives in the API.

The surfaces (`api/`, `cli/`) never reach through the service to its registry or store; the chat service
and the model interface name no HTTP route or status; the API adds them.
"""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path

import httpx

from conftest import LiveServer, make_service
from genai_chatbot.api.app import create_app
from genai_chatbot.api.errors import MODEL_ERROR_HTTP, model_error_http
from genai_chatbot.chat.errors import MessageNotFoundError, SessionNotFoundError
from genai_chatbot.config import Settings
from genai_chatbot.models import errors as model_errors
from genai_chatbot.models.errors import ModelError, ProviderError, RateLimitedError
from scripted import ScriptedProvider

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "genai_chatbot"
SURFACES = ("api", "cli")
# What belongs to the service alone: a surface reaching for it bypasses what the service guarantees.
SERVICE_INTERNALS = {"registry", "store"}


def reach_throughs(path: Path) -> list[str]:
    """`<...service>.registry` / `<...service>.store` in one file, as `file:line expression`, in line order."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Attribute) and node.attr in SERVICE_INTERNALS:
            base = node.value
            owner = base.attr if isinstance(base, ast.Attribute) else base.id if isinstance(base, ast.Name) else ""
            if "service" in owner.lower():
                found.append((node.lineno, f"{path.name}:{node.lineno} {ast.unparse(node)}"))
    return [hit for _, hit in sorted(found)]


def test_surfaces_never_reach_through_the_service_to_its_registry_or_store() -> None:
    files = [f for surface in SURFACES for f in sorted((PACKAGE / surface).rglob("*.py"))]
    assert len(files) > 10, "the surfaces were not found"
    found = [hit for f in files for hit in reach_throughs(f)]
    assert found == [], "use (or add) a ChatService method instead:\n" + "\n".join(found)


def test_the_scan_finds_a_reach_through(tmp_path: Path) -> None:
    sample = tmp_path / "routes.py"
    sample.write_text(
        "async def f(app, self):\n    await app.state.service.registry.refresh()\n    self.service.store\n"
    )
    assert reach_throughs(sample) == ["routes.py:2 app.state.service.registry", "routes.py:3 self.service.store"]


def test_the_chat_service_and_model_errors_name_no_http_route_or_status() -> None:
    for text in (SessionNotFoundError("s1").message, MessageNotFoundError("s1", "m1").message):
        assert "/api" not in text and "GET " not in text
    for name in dir(model_errors):
        error = getattr(model_errors, name)
        if isinstance(error, type) and issubclass(error, ModelError):
            assert not hasattr(error, "status_code") and not hasattr(error, "error_type"), name
    for layer in ("chat", "models"):
        for path in (PACKAGE / layer).rglob("*.py"):
            assert "/api/" not in path.read_text(), f"{path} names an API route"


def test_the_api_maps_every_model_error_and_its_subclasses_to_a_status() -> None:
    assert {cls.__name__ for cls in MODEL_ERROR_HTTP} == {
        name
        for name in dir(model_errors)
        if isinstance(c := getattr(model_errors, name), type) and issubclass(c, ModelError)
    }

    class VendorThrottled(RateLimitedError):
        pass

    assert model_error_http(VendorThrottled("slow down")) == (429, "rate_limited")
    assert model_error_http(ProviderError("boom")) == (502, "provider_error")


def test_the_api_adds_the_route_to_a_missing_session_or_answer(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, default_model="scripted/echo")  # type: ignore[arg-type]
    service = make_service(settings, ScriptedProvider(["hello"]))
    try:
        with LiveServer(create_app(settings, service=service)) as live, httpx.Client(base_url=live.url) as api:
            session = api.get("/api/sessions/nope").json()["error"]
            session_id = api.post("/api/sessions", json={}).json()["id"]
            answer = api.put(f"/api/sessions/{session_id}/messages/nope/feedback", json={"rating": "up"})
    finally:
        asyncio.run(service.aclose())
    assert session["message"] == "Session 'nope' does not exist. List your sessions with GET /api/sessions."
    assert answer.status_code == 404
    assert answer.json()["error"]["message"] == (
        f"Session {session_id!r} has no answer 'nope'. GET /api/sessions/{session_id} lists its messages."
    )
