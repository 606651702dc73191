"""The chat page with `auth = "api-keys"` in headless Chromium: it asks for a key once, re-asks on a 401
(a wrong, revoked or replaced key) and then sends the refused request again, and signs out.
"""

from __future__ import annotations

import asyncio
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect

from conftest import LiveServer, make_service
from genai_chatbot.api.app import create_app
from genai_chatbot.auth.api_keys import new_api_key
from genai_chatbot.auth.sqlite_users import SQLiteUserStore
from genai_chatbot.auth.users import UserAccount
from genai_chatbot.config import Settings
from scripted import ScriptedProvider


def make_keys(settings: Settings) -> dict[str, str]:
    async def work() -> dict[str, str]:
        store = SQLiteUserStore(settings.database_path)
        keys = {}
        for name, role in (("alice", "user"), ("root", "admin")):
            await store.add_user(UserAccount(name, role))  # type: ignore[arg-type]
            keys[name], record = new_api_key(name)
            await store.add_key(record)
        await store.close()
        return keys

    # Playwright's sync API runs an event loop in this thread: run the store on a thread of its own.
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, work()).result()


def sign_in(page: Page, key: str) -> None:
    dialog = page.get_by_role("dialog", name="API key")
    expect(dialog).to_be_visible()
    dialog.get_by_label("API key").fill(key)
    dialog.get_by_label("API key").press("Enter")


def send(page: Page, text: str) -> None:
    page.get_by_label("Message", exact=True).fill(text)
    page.get_by_label("Message", exact=True).press("Enter")


def test_the_page_asks_for_a_key_re_asks_on_401_and_signs_out(page: Page, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", auth="api-keys")
    keys = make_keys(settings)
    app = create_app(settings, service=make_service(settings, ScriptedProvider(["hello"])))
    with (
        LiveServer(app) as live,
        httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {keys['root']}"}) as root,
    ):
        page.goto(live.url)
        sign_in(page, "gcb_000000000000_" + "A" * 43)
        expect(page.get_by_role("dialog", name="API key")).to_contain_text("Unknown API key")
        sign_in(page, keys["alice"])
        expect(page.locator("#app")).to_have_attribute("data-ready", "true")
        expect(page.get_by_role("dialog", name="API key")).to_be_hidden()
        expect(page.get_by_role("button", name="Sign out")).to_be_visible()

        page.get_by_label("Model", exact=True).select_option("scripted/echo")
        send(page, "first")
        expect(page.locator(".msg.assistant").last.locator(".markdown")).to_have_text("hello")

        prefix = keys["alice"].split("_")[1]
        assert root.delete(f"/api/admin/keys/{prefix}").status_code == 200
        send(page, "second")
        expect(page.get_by_role("dialog", name="API key")).to_contain_text(f"API key {prefix} was revoked")
        fresh = root.post("/api/admin/users/alice/keys", json={}).json()["key"]
        sign_in(page, fresh)
        # The refused send went out again with the new key, and was answered.
        expect(page.locator(".msg.assistant")).to_have_count(2)
        expect(page.locator(".msg.assistant").last.locator(".markdown")).to_have_text("hello")
        [_, fresh_key] = root.get("/api/admin/users/alice/keys").json()
        assert fresh_key["last_used_at"] is not None and fresh_key["revoked_at"] is None

        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_role("dialog", name="API key")).to_be_visible()
        assert page.evaluate("localStorage.getItem('genai-chatbot.token')") is None
        page.get_by_role("dialog", name="API key").get_by_role("button", name="Cancel").click()
        expect(page.locator("#toast")).to_contain_text(re.compile("requires an API key"))
        expect(page.get_by_role("dialog", name="API key")).to_be_hidden()  # cancelled: not asked again
        expect(page.get_by_role("button", name="Sign out")).to_be_hidden()
        page.get_by_role("button", name="Sign in").click()
        sign_in(page, fresh)
        expect(page.locator("#app")).to_have_attribute("data-ready", "true")
        expect(page.locator(".session")).to_have_count(1)
        expect(page.get_by_role("button", name="Sign out")).to_be_visible()
