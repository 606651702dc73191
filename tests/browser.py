"""The browser fixtures of the page tests: Debian's chromium driven by Playwright, one per test module.

`page` is a fresh page with its own storage that fails its test when any request left 127.0.0.1 (the page
must work offline) or the Content-Security-Policy blocked anything (the policy and the page must agree).
A test that provokes the policy on purpose (hostile HTML) is marked `csp_blocks_expected`. conftest.py
imports the fixtures, so every test module has them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
#: Where the page keeps the bearer token (an API key or the identity provider's token).
TOKEN_KEY = "genai-chatbot.token"
expect.set_options(timeout=20_000)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: run `make browser` (apt-get install chromium).")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh page (own storage); fails the test if a request left 127.0.0.1 or the CSP blocked anything."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(20_000)
    opened = context.new_page()
    requested: list[str] = []
    blocked: list[str] = []
    opened.on("request", lambda request: requested.append(request.url))
    opened.on(
        "console", lambda message: blocked.append(message.text) if "Content Security Policy" in message.text else None
    )
    yield opened
    context.close()
    foreign = [url for url in requested if not re.match(r"^http://127\.0\.0\.1:\d+/", url)]
    assert requested and not foreign, f"requests left 127.0.0.1: {foreign}"
    if request.node.get_closest_marker("csp_blocks_expected") is None:
        assert not blocked, f"the CSP blocked: {blocked}"
