"""Provider HTTP honours the environment's proxy settings, for model listing and streamed chat alike.

Behind a corporate proxy both must go through it: a listing that works while chat fails (aiohttp ignores
the environment unless told) is the failure this guards against. The proxy is a real one on 127.0.0.1
(tests/http_proxy.py) that counts what passes through it.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import os
import ssl
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from fake_openai import FakeOpenAI
from genai_chatbot.models.providers.openai import OpenAIProvider
from genai_chatbot.models.types import ChatRequest, Message
from genai_chatbot.secrets import FileKeySource, ProviderKeys
from http_proxy import HTTPProxy

KEY = "sk-proxy-test-0123456789"
REQUEST = ChatRequest(model="gpt-4o-mini", messages=(Message("user", "Hi"),))
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[HTTPProxy]:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    with HTTPProxy() as server:
        yield server


def provider_for(tmp_path: Path, base_url: str) -> OpenAIProvider:
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": base_url}))
    return OpenAIProvider(ProviderKeys([FileKeySource(keys)], ttl_seconds=0), timeout_seconds=10)


async def list_and_chat(provider: OpenAIProvider) -> tuple[list[str], str]:
    try:
        models = await provider.list_models()
        text = "".join([chunk.text async for chunk in provider.stream(REQUEST)])
    finally:
        await provider.aclose()
    return [m.name for m in models if m.available], text


async def test_listing_and_a_streamed_chat_both_go_through_http_proxy(
    fake: FakeOpenAI, proxy: HTTPProxy, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    models, text = await list_and_chat(provider_for(tmp_path, f"{fake.url}/v1"))
    assert "gpt-4o" in models and text == "Hello, world"
    assert [(seen.method, seen.target) for seen in proxy.seen] == [
        ("GET", f"{fake.url}/v1/models"),
        ("POST", f"{fake.url}/v1/chat/completions"),
    ]
    assert len(fake.requests) == 2, "the proxy forwarded both"


async def test_no_proxy_sends_a_listed_host_direct(
    fake: FakeOpenAI, proxy: HTTPProxy, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("http_proxy", proxy.url)
    monkeypatch.setenv("no_proxy", "example.com,127.0.0.1")
    models, text = await list_and_chat(provider_for(tmp_path, f"{fake.url}/v1"))
    assert "gpt-4o" in models and text == "Hello, world"
    assert proxy.seen == []
    assert len(fake.requests) == 2


async def test_credentials_in_the_proxy_url_travel_as_proxy_authorization(
    fake: FakeOpenAI, proxy: HTTPProxy, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url.replace("http://", "http://corp-user:p%40ss@"))
    await list_and_chat(provider_for(tmp_path, f"{fake.url}/v1"))
    expected = "Basic " + base64.b64encode(b"corp-user:p@ss").decode()
    assert [seen.proxy_authorization for seen in proxy.seen] == [expected, expected]
    assert all("proxy-authorization" not in r.headers for r in fake.requests), "the proxy keeps them"


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


# Run apart: the CA must be in SSL_CERT_FILE before aiohttp builds its TLS context, at import.
_CLIENT = textwrap.dedent(
    """
    import asyncio, json, sys
    from pathlib import Path
    from genai_chatbot.models.providers.openai import OpenAIProvider
    from genai_chatbot.models.types import ChatRequest, Message
    from genai_chatbot.secrets import FileKeySource, ProviderKeys

    async def main():
        provider = OpenAIProvider(ProviderKeys([FileKeySource(Path(sys.argv[1]))], ttl_seconds=0), timeout_seconds=10)
        try:
            models = [m.name for m in await provider.list_models() if m.available]
            request = ChatRequest(model="gpt-4o-mini", messages=(Message("user", "Hi"),))
            text = "".join([c.text async for c in provider.stream(request)])
        finally:
            await provider.aclose()
        print(json.dumps({"models": models, "text": text}))

    asyncio.run(main())
    """
)


def test_an_https_endpoint_is_reached_through_https_proxy_with_connect_and_its_credentials(
    fake: FakeOpenAI, proxy: HTTPProxy, tmp_path: Path
) -> None:
    cert_file, key_file = _self_signed(tmp_path)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert_file, key_file)
    fake.serve_tls(tls)
    keys = tmp_path / "keys.json"
    base = fake.url.replace("http://", "https://") + "/v1"
    keys.write_text(json.dumps({"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": base}))
    env = {k: v for k, v in os.environ.items() if k.upper() not in PROXY_VARIABLES}
    proxy_url = proxy.url.replace("http://", "http://tunnel-user:secret@")
    env |= {"HTTPS_PROXY": proxy_url, "SSL_CERT_FILE": str(cert_file), "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, "-c", _CLIENT, str(keys)], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert "gpt-4o" in answer["models"] and answer["text"] == "Hello, world"
    port = fake.url.rsplit(":", 1)[1]
    assert [(seen.method, seen.target) for seen in proxy.seen] == [("CONNECT", f"127.0.0.1:{port}")] * 2
    credentials = "Basic " + base64.b64encode(b"tunnel-user:secret").decode()
    assert [seen.proxy_authorization for seen in proxy.seen] == [credentials] * 2, "on the CONNECT, not inside TLS"
    assert [r.path for r in fake.requests] == ["/v1/models", "/v1/chat/completions"]
