"""The chat page shows the user what they have spent this month, and updates it after each answer."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect

from conftest import LiveServer
from fake_openai import FakeOpenAI
from genai_chatbot.api.app import create_app
from governed import governed_settings


def test_the_page_shows_this_months_spend_after_an_answer(page: Page, tmp_path: Path, upstream: FakeOpenAI) -> None:
    settings = governed_settings(tmp_path, f"sqlite:///{tmp_path}/chat.sqlite3", upstream).model_copy(
        update={"auth": "none"}
    )
    with LiveServer(create_app(settings)) as live:
        page.goto(live.url)
        expect(page.locator("#app")).to_have_attribute("data-ready", "true")
        expect(page.locator("#spend")).to_have_text("This month: $0.00 · 0 tokens")
        page.get_by_label("Message", exact=True).fill("hi")
        page.get_by_label("Message", exact=True).press("Enter")
        expect(page.locator(".msg.assistant").last).to_contain_text("Hello, world")
        # One answer of the fake upstream: 9 + 3 tokens at the test price, $0.015 (tests/governed.py).
        expect(page.locator("#spend")).to_have_text("This month: $0.015 · 12 tokens")
