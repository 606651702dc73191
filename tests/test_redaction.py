"""Values of the keys secret never come back: not in errors (JSON, SSE), stored answers, the model list, logs.

The issue's case: an `AZURE_OPENAI_API_BASE__X` that holds credentials in its URL, beside an upstream that
echoes the key it was sent. Neither is named like a key, and the provider's own scrubbing misses both; the
registry's redaction boundary is what masks them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from aws_local import free_port
from conftest import LiveServer
from fake_openai import FakeOpenAI, Recorded, Reply, default_reply
from genai_chatbot.api.app import create_app
from genai_chatbot.config import LocalModelSettings, Settings
from genai_chatbot.models.providers.azure_openai import Deployment
from genai_chatbot.models.providers.openai_wire import ErrorContext
from genai_chatbot.secrets import KeysSnapshot, ProviderKeys, mask_url_credentials
from leak_scan import register_secret

PASSWORD = register_secret("pw-canary-5e1f0a")
AZURE_KEY = register_secret("azure-key-canary-77c1d9")
OPENAI_KEY = register_secret("sk-openai-canary-31f8e2")
USERINFO = register_secret(f"svc-user:{PASSWORD}")
SECRETS = (PASSWORD, AZURE_KEY, OPENAI_KEY, USERINFO)


def echo_what_it_was_sent(request: Recorded) -> Reply:
    """An upstream that quotes the key and its own address back, as real ones do in their errors."""
    if request.path.endswith("/models"):
        return default_reply(request)
    quoted = f"Incorrect API key provided: {request.headers.get('api-key')} for {request.headers.get('host')}"
    return Reply(status=500 if request.body.get("stream") else 401, json={"error": {"message": quoted}})


def azure(model: str, base: str) -> dict[str, str]:
    return {
        f"AZURE_OPENAI_API_TYPE__{model}": "azure",
        f"AZURE_OPENAI_API_VERSION__{model}": "2024-02-01",
        f"AZURE_OPENAI_API_BASE__{model}": base,
        f"AZURE_OPENAI_API_KEY__{model}": AZURE_KEY,
        f"AZURE_OPENAI_API_DEPLOYMENT_NAME__{model}": f"{model}-deployment",
    }


@pytest.fixture
def api(tmp_path: Path) -> Iterator[httpx.Client]:
    closed = f"127.0.0.1:{free_port()}"  # nothing listens there
    with FakeOpenAI() as upstream:
        upstream.answer = echo_what_it_was_sent
        listening = upstream.url.removeprefix("http://")
        keys = {
            "AZURE_OPENAI_MODELS": "Echo,Down",
            **azure("Echo", f"http://{USERINFO}@{listening}"),
            **azure("Down", f"http://{USERINFO}@{closed}"),
            "OPENAI_API_KEY": OPENAI_KEY,
            "OPENAI_BASE_URL": f"http://{USERINFO}@{closed}/v1",
        }
        data = tmp_path / "data"
        data.mkdir()
        (data / "keys.json").write_text(json.dumps(keys))
        settings = Settings(data_dir=data, default_model="azure_openai/Echo", local=LocalModelSettings(enabled=False))
        with LiveServer(create_app(settings)) as live, httpx.Client(base_url=live.url, timeout=30) as client:
            yield client


def test_credentials_in_an_azure_base_url_and_echoed_keys_never_come_back(
    api: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[str] = []
    with caplog.at_level(logging.DEBUG, logger="genai_chatbot"):
        for model in ("azure_openai/Echo", "azure_openai/Down"):
            body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
            whole = api.post("/v1/chat/completions", json=body)
            assert whole.status_code in (502, 503), whole.text
            streamed = api.post("/v1/chat/completions", json={**body, "stream": True})
            assert '"error"' in streamed.text
            session = api.post("/api/sessions", json={"model": model}).json()["id"]
            turn = api.post(f"/api/sessions/{session}/messages", json={"content": "hi"})
            stored = api.get(f"/api/sessions/{session}").json()["messages"][-1]
            assert stored["status"] == "failed" and stored["error"]
            seen += [whole.text, streamed.text, turn.text, json.dumps(stored)]
        models = api.get("/api/models").json()["models"]
        seen += [json.dumps(models), api.get("/v1/models").text, api.post("/api/models/refresh").text]

    everything = "\n".join([*seen, caplog.text])
    for secret in SECRETS:
        assert secret not in everything
    # Masked, not silenced: the errors still say which host failed, with the credentials replaced.
    assert "http://***@127.0.0.1:" in everything
    assert "Incorrect API key provided: ***" in everything
    openai = next(m for m in models if m["provider"] == "openai")
    assert not openai["available"] and "***@127.0.0.1" in openai["unavailable_reason"]


def test_reprs_of_objects_holding_keys_mask_them() -> None:
    base = f"https://{USERINFO}@my-resource.openai.azure.com"
    context = ErrorContext(f"Azure OpenAI ({base})", base, "AZURE_OPENAI_API_KEY__X", AZURE_KEY)
    deployment = Deployment("X", "2024-02-01", base, AZURE_KEY, "x-deployment")
    snapshot = KeysSnapshot({"AZURE_OPENAI_API_BASE__X": base, "AZURE_OPENAI_API_KEY__X": AZURE_KEY})
    for shown in (repr(context), repr(deployment), repr(snapshot), str(snapshot)):
        assert not any(secret in shown for secret in SECRETS), shown
    assert "my-resource.openai.azure.com" in repr(deployment) and "AZURE_OPENAI_API_KEY__X" in repr(snapshot)


def test_every_value_of_the_keys_secret_is_masked_but_public_settings_and_short_values() -> None:
    snapshot = KeysSnapshot(
        {
            "COHERE_API_KEY": "co-value-123456",
            "SOME_PROXY_SETTING": "not-named-like-a-key-9",
            "AZURE_OPENAI_MODELS": "Model1,Model2",
            "AZURE_OPENAI_API_VERSION__Model1": "2024-02-01",
            "AZURE_OPENAI_API_DEPLOYMENT_NAME__Model1": "gpt-4o-deployment",
            "AZURE_OPENAI_API_BASE__Model1": "https://host.example/path?api-key=query-secret-42",
            "TINY": "abc",
        }
    )
    keys = ProviderKeys([])
    keys._snapshot = snapshot  # the snapshot a refresh would have read
    text = (
        "co-value-123456 not-named-like-a-key-9 Model1,Model2 2024-02-01 gpt-4o-deployment query-secret-42 abc "
        "https://someone:hunter2-pw@elsewhere.example/x"
    )
    assert keys.redact(text) == (
        "*** *** Model1,Model2 2024-02-01 gpt-4o-deployment *** abc https://***@elsewhere.example/x"
    )


def test_url_credentials_are_masked_wherever_they_appear() -> None:
    assert mask_url_credentials("GET postgres://u:p@db:5432/x and https://a@b.c/") == (
        "GET postgres://***@db:5432/x and https://***@b.c/"
    )
    assert mask_url_credentials("mail me at someone@example.com") == "mail me at someone@example.com"
