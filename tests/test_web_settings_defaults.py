"""The page's settings say what an empty field means for the chosen model: its default sampling."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from genai_chatbot.config import LocalModelSettings, Settings
from genai_chatbot.models.providers.local import LocalProvider
from scripted import ScriptedProvider
from test_web import open_page, serve


def test_settings_show_the_chosen_models_defaults(page: Page, settings: Settings) -> None:
    # Listing the embedded model does not load it: this test never runs llama.cpp.
    with serve(settings, LocalProvider(LocalModelSettings()), ScriptedProvider(["ok"])) as live:
        open_page(page, live.url)
        page.get_by_role("button", name="Settings", exact=True).click()
        temperature = page.get_by_label("Temperature", exact=True)
        expect(temperature).to_have_attribute("placeholder", "default 0 (greedy)")
        expect(page.locator("#temperature-hint")).to_have_text(
            "≥ 0, ≤ 2; empty for the model's default, 0 (greedy, repeat penalty 1.1)."
        )
        expect(page.locator("#top_p-hint")).to_contain_text(
            "empty for the provider's own default (unused while temperature is 0)."
        )

        page.get_by_label("Model", exact=True).select_option("scripted/echo")
        expect(temperature).to_have_attribute("placeholder", "default")
        expect(page.locator("#temperature-hint")).to_contain_text("empty for the provider's own default.")
