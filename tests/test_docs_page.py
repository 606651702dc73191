"""`/docs` is Swagger UI served from the package: offline, same-origin only, with the page's security headers."""

from __future__ import annotations

from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import ConsoleMessage, Page, expect

from conftest import LiveServer, make_service
from genai_chatbot.api.app import create_app
from genai_chatbot.config import Settings
from scripted import ScriptedProvider


class Assets(HTMLParser):
    """Every URL a page loads by itself: scripts, stylesheets, icons, images, frames."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name in ("src", "href"):
            if values.get(name) and (tag != "a"):
                self.urls.append(values[name] or "")
        if tag == "script" and not values.get("src"):
            self.inline_scripts += 1


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    settings = Settings(data_dir=tmp_path / "data", default_model="scripted/echo")
    chat = make_service(settings, ScriptedProvider(["hi"]))
    with LiveServer(create_app(settings, service=chat, close_service=True)) as server:
        yield server


def test_docs_loads_only_same_origin_assets_under_the_page_security_headers(live: LiveServer) -> None:
    with httpx.Client(base_url=live.url) as api:
        docs = api.get("/docs")
        assert docs.status_code == 200 and docs.headers["content-type"].startswith("text/html")
        csp = docs.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "default-src 'self'" in csp
        assert docs.headers["x-content-type-options"] == "nosniff"
        assert docs.headers["referrer-policy"] == "no-referrer"

        assets = Assets()
        assets.feed(docs.text)
        assert assets.inline_scripts == 0  # the CSP would block one
        assert len(assets.urls) >= 3, assets.urls
        for url in assets.urls:
            assert url.startswith("/") and not url.startswith("//"), f"{url} is not on this server"
            loaded = api.get(url)
            assert loaded.status_code == 200, url
            assert loaded.content, url
        assert api.get("/openapi.json").json()["info"]["title"] == "genai-chatbot"
        assert api.get("/redoc").status_code == 404  # FastAPI's CDN-loading pages are off


def test_every_html_response_gets_the_security_headers(live: LiveServer) -> None:
    with httpx.Client(base_url=live.url) as api:
        for path in ("/", "/chat/some-session", "/docs"):
            response = api.get(path)
            assert "frame-ancestors 'none'" in response.headers["content-security-policy"], path
            assert response.headers["x-content-type-options"] == "nosniff", path
            assert response.headers["referrer-policy"] == "no-referrer", path


def test_docs_renders_the_api_in_a_browser_without_leaving_the_server(live: LiveServer, page: Page) -> None:
    requested: list[str] = []
    problems: list[str] = []

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(message.text)

    page.on("request", lambda request: requested.append(request.url))
    page.on("console", console)
    page.goto(f"{live.url}/docs")
    # Swagger UI fetched /openapi.json and rendered an operation of each API.
    expect(page.locator(".opblock-summary-path", has_text="/v1/chat/completions").first).to_be_visible()
    expect(page.locator(".opblock-summary-path", has_text="/api/sessions").first).to_be_visible()
    assert f"{live.url}/openapi.json" in requested
    assert not problems, problems  # a Content-Security-Policy violation is logged as a console error
