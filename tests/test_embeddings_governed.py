"""`POST /v1/embeddings` is governed like chat: model access by group, rate limits, usage and cost, metrics and
a GenAI span, on a real server whose embedding model is on the fake OpenAI upstream (it counts a text's
characters as its tokens)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from conftest import LiveServer
from fake_openai import FakeOpenAI
from fake_otlp import Collector, attributes
from genai_chatbot.api.app import create_app
from genai_chatbot.auth.users import UserAccount
from governed import add_users, fresh_minute, governed_settings, upstream  # noqa: F401  (the `upstream` fixture)
from test_metrics import samples_of, value

EMBEDDER = "fake/text-embedding-3-small"
TEXT = "hello world"  # 11 tokens at the fake upstream
COST = 11 * 1000 / 1e6  # at $1,000 per million input tokens
ALICE = UserAccount("alice", groups=("interns",))
GUEST = UserAccount("guest", groups=("guests",))
ROOT = UserAccount("root", role="admin")


def embed(client: httpx.Client) -> httpx.Response:
    return client.post("/v1/embeddings", json={"model": EMBEDDER, "input": TEXT, "encoding_format": "float"})


@pytest.mark.slow  # it may wait up to 10 s for a fresh minute (the rate limit is per minute): not for make test-fast
def test_embeddings_are_admitted_counted_priced_measured_and_traced(
    tmp_path: Path,
    upstream: FakeOpenAI,  # noqa: F811
) -> None:
    groups = {
        "interns": {"models": [EMBEDDER], "requests_per_minute": 2},
        "guests": {"models": ["fake/gpt-4o-mini"]},
    }
    with Collector() as collector:
        settings = governed_settings(
            tmp_path, f"sqlite:///{tmp_path}/chat.sqlite3", upstream, groups=groups, otlp_endpoint=collector.url
        )
        settings.openai_compatible[0].embedding_models = ["text-embedding-3-small"]
        settings.prices[EMBEDDER] = settings.prices["fake/gpt-4o-mini"]
        keys = add_users(settings, ALICE, GUEST, ROOT)
        with LiveServer(create_app(settings)) as server:
            alice, guest, root = (
                httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {keys[name]}"}, timeout=30)
                for name in ("alice", "guest", "root")
            )
            with alice, guest, root:
                check_governed(alice, guest, root)
        # The server's shutdown exported the spans still buffered.
        assert collector.received.wait(10)
    spans = [span for _, span in collector.spans]
    assert [span.name for span in spans] == ["embeddings text-embedding-3-small"] * 2
    traced = attributes(spans[0])
    assert traced["gen_ai.operation.name"] == "embeddings"
    assert (traced["gen_ai.request.model"], traced["gen_ai.usage.input_tokens"]) == ("text-embedding-3-small", 11)
    assert "gen_ai.usage.output_tokens" not in traced and "genai_chatbot.time_to_first_token" not in traced


def check_governed(alice: httpx.Client, guest: httpx.Client, root: httpx.Client) -> None:
    """A guest's group does not allow the model; alice's allows two requests a minute, counted and priced."""

    refused = embed(guest)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "model_not_allowed"
    fresh_minute()
    assert [embed(alice).status_code for _ in range(2)] == [200, 200]
    limited = embed(alice)
    assert limited.status_code == 429 and limited.json()["error"]["code"] == "rate_limited"

    [row] = alice.get("/api/usage").json()["rows"]
    assert (row["key"], row["requests"], row["prompt_tokens"], row["completion_tokens"]) == (EMBEDDER, 2, 22, 0)
    assert row["cost_usd"] == pytest.approx(2 * COST)
    metrics = samples_of(root.get("/metrics").text)
    assert value(metrics, "genai_chatbot_turns_total", model=EMBEDDER, surface="v1", status="complete") == 2
    assert value(metrics, "genai_chatbot_tokens_total", model=EMBEDDER, kind="prompt") == 22
    assert value(metrics, "genai_chatbot_cost_usd_total", model=EMBEDDER) == pytest.approx(2 * COST)
    assert value(metrics, "genai_chatbot_refusals_total", reason="model_not_allowed") == 1


def test_the_shipped_price_table_prices_each_vendors_embedding_models_by_input_tokens() -> None:
    from genai_chatbot.governance.prices import PriceTable

    table = PriceTable({})
    assert table.cost("openai/text-embedding-3-small", 1_000_000, 0) == pytest.approx(0.02)
    assert table.cost("azure_openai/text-embedding-3-large", 1_000_000, 0) == pytest.approx(0.13)
    assert table.cost("bedrock/amazon.titan-embed-text-v2:0", 1_000_000, 0) == pytest.approx(0.02)
    assert table.cost("bedrock/cohere.embed-multilingual-v3", 1_000_000, 0) == pytest.approx(0.10)
