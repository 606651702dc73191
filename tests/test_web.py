"""The chat page in headless Chromium against a real server: the embedded model where an answer matters,
ScriptedProvider where a failure or hostile output must be produced on demand.

Every page records its requests; a test fails if any left 127.0.0.1. Screenshots of the main states go to
tests/artifacts/ (git-ignored) for a person to look at.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from conftest import LOCAL_MODEL, LiveServer, make_service
from genai_chatbot.api.app import create_app
from genai_chatbot.chat.records import Session, StoredMessage
from genai_chatbot.chat.sqlite_store import SQLiteHistoryStore
from genai_chatbot.config import Settings
from genai_chatbot.models.errors import ProviderError
from genai_chatbot.models.provider import Provider
from genai_chatbot.models.providers.local import LocalProvider
from genai_chatbot.models.types import ModelInfo
from scripted import ScriptedProvider

ARTIFACTS = Path(__file__).parent / "artifacts"
SCRIPTED = "scripted/echo"
HOSTILE = 'Safe text. <script>window.__pwned=1</script> <img src=x onerror="window.__pwned=1"> **bold** end.'


class Unavailable(ScriptedProvider):
    """A provider whose one model is configured but cannot be used, as a missing key would leave it."""

    name = "vendor"

    async def list_models(self) -> list[ModelInfo]:
        return [
            ModelInfo(
                id="vendor/big-model",
                provider="vendor",
                name="big-model",
                display_name="Big model",
                available=False,
                unavailable_reason="no API key: set VENDOR_API_KEY",
            )
        ]


@contextmanager
def serve(settings: Settings, *providers: Provider) -> Iterator[LiveServer]:
    chat = make_service(settings, *providers)
    with LiveServer(create_app(settings, service=chat)) as live:
        yield live


def open_page(page: Page, url: str) -> None:
    page.goto(url)
    expect(page.locator("#app")).to_have_attribute("data-ready", "true")


def send(page: Page, text: str) -> None:
    page.get_by_label("Message", exact=True).fill(text)
    page.get_by_label("Message", exact=True).press("Enter")


def last_answer(page: Page) -> Any:
    return page.locator(".msg.assistant").last


def apply_settings(page: Page, **values: str) -> None:
    if page.locator("#settings").is_hidden():
        page.get_by_role("button", name="Settings", exact=True).click()
    for label, value in values.items():
        page.get_by_label(label, exact=True).fill(value)
    page.get_by_role("button", name="Apply").click()


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), animations="disabled")


def wait_for(check: Callable[[], bool], what: str, timeout: float = 20) -> None:
    """Poll a server-side outcome the page cannot show (bounded; the condition itself, not a delay)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_a_streamed_answer_reopens_by_deep_link_and_is_renamed_and_deleted(
    page: Page, settings: Settings, local_provider: LocalProvider
) -> None:
    with serve(settings, local_provider, Unavailable([])) as live:
        open_page(page, live.url)
        picker = page.get_by_label("Model", exact=True)
        expect(picker).to_have_value(LOCAL_MODEL)
        unavailable = page.locator("optgroup[label=vendor] option")
        expect(unavailable).to_be_disabled()
        expect(unavailable).to_contain_text("no API key: set VENDOR_API_KEY")

        apply_settings(page, Temperature="0")
        send(page, "What is the capital of France?")
        expect(last_answer(page).locator(".markdown")).to_contain_text("Paris")
        expect(last_answer(page)).to_have_attribute("data-status", "complete")
        expect(page).to_have_url(re.compile(r"/chat/[0-9a-f]{32}$"))
        session_id = page.url.rsplit("/", 1)[1]
        shot(page, "light")

        page.reload()
        expect(page.locator(".msg.user .bubble")).to_have_text("What is the capital of France?")
        expect(last_answer(page).locator(".markdown")).to_contain_text("Paris")
        expect(page.get_by_label("Model", exact=True)).to_have_value(LOCAL_MODEL)
        expect(page.get_by_label("Temperature", exact=True)).to_have_value("0")
        item = page.locator(f'.session[data-id="{session_id}"]')
        expect(item.locator(".session-link")).to_have_attribute("aria-current", "page")

        item.get_by_role("button", name=re.compile("^Rename")).click()
        page.get_by_label("New title").fill("Geography")
        page.get_by_label("New title").press("Enter")
        expect(item.locator(".session-title")).to_have_text("Geography")
        assert httpx.get(f"{live.url}/api/sessions/{session_id}").json()["title"] == "Geography"

        item.get_by_role("button", name="Delete “Geography”").click()
        page.get_by_role("dialog").get_by_role("button", name="Delete").click()
        expect(page.locator(".session")).to_have_count(0)
        expect(page).to_have_url(f"{live.url}/")
        assert httpx.get(f"{live.url}/api/sessions/{session_id}").status_code == 404


def test_switching_model_sends_the_turn_to_the_chosen_model(
    page: Page, settings: Settings, local_provider: LocalProvider
) -> None:
    with serve(settings, local_provider, ScriptedProvider(["I am the scripted model."])) as live:
        open_page(page, live.url)
        page.get_by_label("Model", exact=True).select_option("scripted/echo")
        send(page, "Who are you?")
        expect(last_answer(page).locator(".markdown")).to_have_text("I am the scripted model.")
        [session] = httpx.get(f"{live.url}/api/sessions").json()
        assert session["model"] == "scripted/echo"


def test_stop_cancels_a_long_answer_and_it_is_stored_as_cancelled(
    page: Page, settings: Settings, local_provider: LocalProvider
) -> None:
    with serve(settings, local_provider) as live:
        open_page(page, live.url)
        apply_settings(page, **{"Max tokens": "1000"})
        send(page, "Write a very long story about a dragon who learns to cook.")
        expect(last_answer(page).locator(".markdown")).to_contain_text(re.compile(r"\w+ \w+"))
        page.get_by_role("button", name="Stop").click()
        expect(last_answer(page)).to_have_attribute("data-status", "cancelled")
        expect(last_answer(page).get_by_role("button", name="Retry")).to_be_visible()
        expect(page.get_by_role("button", name="Send")).to_be_visible()
        session_id = page.url.rsplit("/", 1)[1]

        def stored() -> list[dict[str, Any]]:
            messages: list[dict[str, Any]] = httpx.get(f"{live.url}/api/sessions/{session_id}").json()["messages"]
            return messages

        wait_for(lambda: stored()[1]["status"] != "streaming", "the cancelled answer to be stored")
        answer = stored()[1]
        assert answer["status"] == "cancelled" and answer["content"]
        assert answer["params"] == {"max_tokens": 1000}


def test_feedback_is_stored_with_the_answer(page: Page, settings: Settings) -> None:
    with serve(settings, ScriptedProvider(["A fine answer."])) as live:
        open_page(page, live.url)
        send(page, "Answer me")
        answer = last_answer(page)
        answer.get_by_role("button", name="Good answer").click()
        expect(answer.get_by_role("button", name="Good answer")).to_have_attribute("aria-pressed", "true")
        answer.get_by_label("What was good? (optional)").fill("Short and right")
        answer.get_by_role("button", name="Send feedback").click()
        expect(answer.locator(".feedback-comment")).to_have_text("“Short and right”")
        session_id = page.url.rsplit("/", 1)[1]
        stored = httpx.get(f"{live.url}/api/sessions/{session_id}").json()["messages"][1]["feedback"]
        assert stored["rating"] == "up" and stored["comment"] == "Short and right"

        answer.get_by_role("button", name="Bad answer").click()
        expect(answer.get_by_role("button", name="Bad answer")).to_have_attribute("aria-pressed", "true")
        expect(answer.get_by_role("button", name="Good answer")).to_have_attribute("aria-pressed", "false")
        stored = httpx.get(f"{live.url}/api/sessions/{session_id}").json()["messages"][1]["feedback"]
        assert stored["rating"] == "down"


@pytest.mark.csp_blocks_expected  # the hostile HTML is refused by the policy too
def test_html_in_answers_and_messages_never_runs(page: Page, settings: Settings) -> None:
    with serve(settings, ScriptedProvider([HOSTILE[:20], HOSTILE[20:]])) as live:
        open_page(page, live.url)
        send(page, 'Me too: <img src=x onerror="window.__pwned=1"><script>window.__pwned=1</script>')
        answer = last_answer(page)
        expect(answer).to_have_attribute("data-status", "complete")
        expect(answer.locator(".markdown strong")).to_have_text("bold")
        expect(page.locator(".msg.user .bubble")).to_contain_text('<img src=x onerror="window.__pwned=1">')
        assert answer.locator("script, img, [onerror]").count() == 0
        page.reload()
        expect(last_answer(page).locator(".markdown strong")).to_have_text("bold")
        assert page.evaluate("typeof window.__pwned") == "undefined"


def test_a_provider_error_shows_inline_and_retry_replaces_it(page: Page, settings: Settings) -> None:
    provider = ScriptedProvider(["Recovered answer."], first=["partial ", ProviderError("The provider broke.")])
    with serve(settings, provider) as live:
        open_page(page, live.url)
        send(page, "First question")
        answer = last_answer(page)
        expect(answer.get_by_role("alert")).to_contain_text("The provider broke.")
        expect(page.locator(".msg.user")).to_have_count(1)
        shot(page, "error-retry")
        answer.get_by_role("button", name="Retry").click()
        expect(answer).to_have_attribute("data-status", "complete")
        expect(answer.locator(".markdown")).to_have_text("Recovered answer.")
        expect(page.locator(".msg.user")).to_have_count(1)
        session_id = page.url.rsplit("/", 1)[1]
        messages = httpx.get(f"{live.url}/api/sessions/{session_id}").json()["messages"]
        assert [(m["role"], m["status"]) for m in messages] == [("user", "complete"), ("assistant", "complete")]


def test_an_interrupted_answer_offers_retry_and_a_streaming_one_says_it_is_still_coming(
    page: Page, settings: Settings
) -> None:

    async def crash_mid_answer() -> None:  # what a server that died while answering leaves behind
        store = SQLiteHistoryStore(settings.database_path)
        session = Session(id="crashed", user_id="default", title="Crashed", model_id=SCRIPTED)
        await store.create_session(session)
        question = StoredMessage(id="q", session_id="crashed", role="user", content="Question")
        answer = StoredMessage(id="a", session_id="crashed", role="assistant", content="", status="streaming")
        await store.begin_turn(session, question, answer, None)
        await store.close()

    with ThreadPoolExecutor(1) as worker:  # Playwright's sync API runs an event loop on this thread
        worker.submit(asyncio.run, crash_mid_answer()).result()
    provider = ScriptedProvider(["Regenerated."], first=["partial ", None])  # the first answer holds
    with serve(settings, provider) as live, httpx.Client(base_url=live.url) as api:
        busy = api.post("/api/sessions", json={"model": SCRIPTED}).json()["id"]
        with api.stream("POST", f"/api/sessions/{busy}/messages", json={"content": "Slow one"}) as held:
            lines = held.iter_lines()  # kept: a dropped iterator closes the connection
            assert next(lines) == "event: start"
            open_page(page, f"{live.url}/chat/{busy}")
            expect(last_answer(page)).to_have_attribute("data-status", "streaming")
            expect(last_answer(page).get_by_role("status")).to_contain_text("Still being generated")
        open_page(page, f"{live.url}/chat/crashed")
        interrupted = last_answer(page)
        expect(interrupted).to_have_attribute("data-status", "interrupted")
        expect(interrupted.get_by_role("status")).to_contain_text("Retry generates it again")
        interrupted.get_by_role("button", name="Retry").click()
        expect(interrupted).to_have_attribute("data-status", "complete")
        expect(interrupted.locator(".markdown")).to_have_text("Regenerated.")


def test_settings_refuse_values_the_api_refuses(page: Page, settings: Settings) -> None:
    with serve(settings, ScriptedProvider(["ok"])) as live:
        open_page(page, live.url)
        page.get_by_role("button", name="Settings", exact=True).click()
        expect(page.locator("#temperature-hint")).to_contain_text("≤ 2")  # read from /openapi.json
        apply_settings(page, Temperature="5")
        expect(page.locator("#temperature-error")).to_have_text("Temperature must be between 0 and 2.")
        expect(page.get_by_label("Temperature", exact=True)).to_have_attribute("aria-invalid", "true")
        expect(page.get_by_label("Temperature", exact=True)).to_be_focused()
        apply_settings(page, Temperature="0.7", **{"Top-p": "0"})
        expect(page.locator("#top_p-error")).to_have_text("Top-p must be greater than 0 and at most 1.")
        apply_settings(page, **{"Top-p": "0.9", "Max tokens": "0"})
        expect(page.locator("#max_tokens-error")).to_have_text("Max tokens must be at least 1.")
        apply_settings(page, **{"Max tokens": "64"})
        expect(page.locator(".settings-status")).to_have_text("Applied to this chat.")
        send(page, "hi")
        expect(last_answer(page)).to_have_attribute("data-status", "complete")
        session_id = page.url.rsplit("/", 1)[1]
        answer = httpx.get(f"{live.url}/api/sessions/{session_id}").json()["messages"][1]
        assert answer["params"] == {"temperature": 0.7, "top_p": 0.9, "max_tokens": 64}


def test_compare_mode_streams_each_model_in_its_own_column(
    page: Page, settings: Settings, local_provider: LocalProvider
) -> None:
    with serve(settings, local_provider, ScriptedProvider(["Scripted says **Paris**."]), Unavailable([])) as live:
        open_page(page, live.url)
        apply_settings(page, Temperature="0")
        page.get_by_role("button", name="Compare").click()
        dialog = page.get_by_role("dialog", name="Compare models")
        expect(dialog.get_by_role("checkbox", name=re.compile("Big model"))).to_be_disabled()
        dialog.get_by_role("checkbox", name="scripted/echo").check()
        dialog.get_by_role("checkbox", name=LOCAL_MODEL).check()
        dialog.get_by_role("button", name="Compare").click()
        expect(page.locator(".column")).to_have_count(2)
        send(page, "What is the capital of France?")
        for column in page.locator(".column").all():
            expect(column.locator(".msg.assistant")).to_have_attribute("data-status", "complete")
            expect(column.locator(".markdown")).to_contain_text("Paris")
        page.get_by_role("button", name="Settings", exact=True).click()  # close the panel for the picture
        shot(page, "compare")
        sessions = httpx.get(f"{live.url}/api/sessions").json()
        assert sorted(s["model"] for s in sessions) == sorted([LOCAL_MODEL, "scripted/echo"])


def test_dark_theme_and_phone_width(page: Page, settings: Settings) -> None:
    with serve(settings, ScriptedProvider(["Here is code:\n\n```python\nprint('hello')\n```\n"])) as live:
        open_page(page, live.url)
        send(page, "Show me code")
        expect(last_answer(page).get_by_role("button", name="Copy python code")).to_be_visible()
        page.get_by_role("button", name="Switch to dark theme").click()
        expect(page.locator("html")).to_have_attribute("data-theme", "dark")
        shot(page, "dark")

        page.set_viewport_size({"width": 390, "height": 844})
        toggle = page.get_by_role("button", name="Chats")
        expect(toggle).to_have_attribute("aria-expanded", "false")
        expect(page.locator("#sidebar")).not_to_be_in_viewport()
        shot(page, "phone")
        toggle.click()
        expect(page.locator("#sidebar")).to_be_in_viewport()
        shot(page, "phone-sidebar")
        page.locator(".session-link").first.click()
        expect(page.locator("#sidebar")).not_to_be_in_viewport()
        page.reload()
        expect(page.locator("html")).to_have_attribute("data-theme", "dark")


def test_the_page_is_usable_with_the_keyboard_alone(page: Page, settings: Settings) -> None:
    with serve(settings, ScriptedProvider(["Typed ", "answer."])) as live:
        open_page(page, live.url)
        page.locator("body").focus()
        reached: list[str] = []
        for _ in range(30):  # Tab through the page until the message box has the focus
            page.keyboard.press("Tab")
            focused = page.evaluate(
                "() => { const e = document.activeElement; return [e.id, e.getAttribute('aria-label')"
                " || e.labels?.[0]?.textContent || e.textContent || e.title]; }"
            )
            assert (focused[1] or "").strip(), f"control {focused[0]!r} has no accessible name"
            reached.append(focused[0])
            if focused[0] == "prompt":
                break
        assert "prompt" in reached and {"new-chat", "model-picker", "settings-toggle"} <= set(reached)
        page.keyboard.type("first line")
        page.keyboard.press("Shift+Enter")
        page.keyboard.type("second line")
        expect(page.locator("#prompt")).to_have_value("first line\nsecond line")
        page.keyboard.press("Enter")
        expect(last_answer(page)).to_have_attribute("data-status", "complete")
        expect(last_answer(page)).to_contain_text("Typed answer.")
        expect(page.locator(".msg.user").last).to_contain_text("first line")


def test_a_broken_keys_source_shows_a_banner_with_the_fix(page: Page, tmp_path: Path) -> None:
    from genai_chatbot.models.registry import ModelRegistry
    from genai_chatbot.secrets import FileKeySource, ProviderKeys

    settings = Settings(data_dir=tmp_path, default_model=SCRIPTED)
    settings.keys_path.write_text("''")
    chat = make_service(settings, ScriptedProvider(["Still here."]))
    chat.registry = ModelRegistry(chat.registry.providers.values(), ProviderKeys([FileKeySource(settings.keys_path)]))
    with LiveServer(create_app(settings, service=chat)) as live:
        open_page(page, live.url)
        banner = page.get_by_role("alert").filter(has_text="Some models may be missing")
        expect(banner).to_be_visible()
        expect(banner).to_contain_text(f"Keys file {settings.keys_path} is an empty string; store {{}}")
        expect(page.get_by_label("Model", exact=True)).to_have_value(SCRIPTED)  # the rest still works
        settings.keys_path.write_text("{}")
        httpx.post(f"{live.url}/api/models/refresh").raise_for_status()
        page.reload()
        expect(page.locator("#app")).to_have_attribute("data-ready", "true")
        expect(page.locator("#model-problems")).to_be_hidden()
