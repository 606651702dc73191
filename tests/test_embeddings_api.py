"""`GET /v1/models/{id}` and `POST /v1/embeddings`, driven by the openai SDK against a real server.

The server has the embedded SmolLM2 GGUF configured as a local embedding model (`local.embedding_model_path`)
and OpenAI pointed at the fake OpenAI server, so forwarding is asserted on what the upstream received.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from conftest import LiveServer, make_service
from fake_openai import FakeOpenAI
from genai_chatbot.api.app import create_app
from genai_chatbot.config import LimitSettings, LocalModelSettings, Settings
from genai_chatbot.models.providers.local import LocalProvider, embedded_gguf_path
from genai_chatbot.models.providers.openai import OpenAIProvider
from genai_chatbot.secrets import FileKeySource, ProviderKeys

EMBEDDER = "local/smollm2-embed"
CHAT = "local/smollm2-135m-instruct"


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def url(tmp_path: Path, fake: FakeOpenAI) -> Iterator[str]:
    """The server: a local provider whose embedding model is the embedded GGUF (its chat model is never
    loaded here), and OpenAI at the fake server; closed on the server's own loop."""
    local = LocalModelSettings(
        threads=2, embedding_model_path=embedded_gguf_path(), embedding_model_name="smollm2-embed"
    )
    keys_file = tmp_path / "keys.json"
    keys_file.write_text(json.dumps({"OPENAI_API_KEY": "sk-embed-test", "OPENAI_BASE_URL": f"{fake.url}/v1"}))
    openai_provider = OpenAIProvider(ProviderKeys([FileKeySource(keys_file)], ttl_seconds=0), timeout_seconds=10)
    limits = LimitSettings(max_embedding_inputs=3, max_embedding_chars=200)
    settings = Settings(data_dir=tmp_path / "data", limits=limits)
    service = make_service(settings, LocalProvider(local), openai_provider)
    with LiveServer(create_app(settings, service=service, close_service=True)) as live:
        yield live.url


@pytest.fixture
def sdk(url: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0) as client:
        yield client


def test_models_retrieve_gives_a_model_by_its_id_with_slashes_and_404_for_an_unknown_one(sdk: openai.OpenAI) -> None:
    model = sdk.models.retrieve("openai/gpt-4o")
    assert (model.id, model.object, model.owned_by) == ("openai/gpt-4o", "model", "openai")
    assert sdk.models.retrieve(EMBEDDER).id == EMBEDDER
    with pytest.raises(openai.NotFoundError) as missing:
        sdk.models.retrieve("openai/gpt-99")
    assert missing.value.status_code == 404
    assert missing.value.code == "model_not_found" and "GET /v1/models" in missing.value.message


@pytest.mark.slow  # loads the embedded GGUF as an embedding model and runs it
def test_the_local_gguf_embeds_through_the_sdk_as_base64_and_as_floats(sdk: openai.OpenAI) -> None:
    texts = ["The cat sat on the mat.", "Stock prices fell sharply today.", "The cat sat on the mat."]
    packed = sdk.embeddings.create(model=EMBEDDER, input=texts)  # the SDK asks for base64 and decodes it
    floats = sdk.embeddings.create(model=EMBEDDER, input=texts, encoding_format="float")
    assert [d.index for d in packed.data] == [0, 1, 2]
    vectors = [d.embedding for d in floats.data]
    assert len(vectors[0]) == 576  # SmolLM2-135M's hidden size
    assert all(math.isclose(sum(x * x for x in v), 1.0, rel_tol=1e-4) for v in vectors), "normalised"
    assert vectors[0] == pytest.approx(vectors[2]) and vectors[0] != pytest.approx(vectors[1])
    assert [d.embedding for d in packed.data][1] == pytest.approx(vectors[1], rel=1e-5)  # float32 on the wire
    assert floats.usage.prompt_tokens > 10 and floats.usage.total_tokens == floats.usage.prompt_tokens
    assert floats.model == EMBEDDER


def test_openai_embeddings_are_forwarded_with_dimensions_and_user_and_come_back_in_input_order(
    sdk: openai.OpenAI, fake: FakeOpenAI
) -> None:
    reply = sdk.embeddings.create(
        model="openai/text-embedding-3-small", input=["a", "bbb"], dimensions=2, user="u-42", encoding_format="float"
    )
    assert [d.embedding for d in reply.data] == [[1.0, 0.0], [3.0, 1.0]]
    assert reply.usage.prompt_tokens == 4
    sent = fake.last("/embeddings")
    assert sent.body == {
        "model": "text-embedding-3-small",
        "input": ["a", "bbb"],
        "encoding_format": "float",
        "dimensions": 2,
        "user": "u-42",
    }
    assert sent.headers["authorization"] == "Bearer sk-embed-test"


def test_a_chat_model_asked_for_embeddings_is_a_400_naming_the_feature_and_the_model(sdk: openai.OpenAI) -> None:
    for model in ("openai/gpt-4o", CHAT):
        with pytest.raises(openai.BadRequestError) as refused:
            sdk.embeddings.create(model=model, input="hi")
        assert model in refused.value.message and "embeddings" in refused.value.message
        assert refused.value.body["param"] == "model"  # type: ignore[index]


def test_an_embedding_model_asked_to_chat_or_for_a_session_is_a_400_that_points_to_v1_embeddings(
    url: str, sdk: openai.OpenAI
) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        sdk.chat.completions.create(model=EMBEDDER, messages=[{"role": "user", "content": "hi"}])
    assert EMBEDDER in refused.value.message and "embeddings API" in refused.value.message
    with httpx.Client(base_url=url, timeout=30) as client:  # nor can a session be opened with it
        session = client.post("/api/sessions", json={"model": EMBEDDER})
        assert session.status_code == 400 and "embeddings API" in session.json()["error"]["message"]
        assert client.get("/api/sessions").json() == []


def test_token_arrays_empty_texts_and_inputs_over_the_limits_are_refused_with_the_setting(url: str) -> None:
    with httpx.Client(base_url=url, timeout=30) as client:
        tokens = client.post("/v1/embeddings", json={"model": EMBEDDER, "input": [[1, 2, 3]]})
        assert tokens.status_code == 400 and "token arrays" in tokens.json()["error"]["message"]
        assert client.post("/v1/embeddings", json={"model": EMBEDDER, "input": [1, 2]}).status_code == 400
        assert client.post("/v1/embeddings", json={"model": EMBEDDER, "input": [""]}).status_code == 400
        many = client.post("/v1/embeddings", json={"model": EMBEDDER, "input": ["a", "b", "c", "d"]})
        assert many.status_code == 422 and "limits.max_embedding_inputs" in many.json()["error"]["message"]
        long = client.post("/v1/embeddings", json={"model": EMBEDDER, "input": ["x" * 201]})
        assert long.status_code == 422 and "limits.max_embedding_chars" in long.json()["error"]["message"]
        unknown = client.post("/v1/embeddings", json={"model": "openai/none", "input": "x"})
        assert unknown.status_code == 404


def test_embedding_models_are_on_v1_models_and_never_in_the_pages_model_picker(url: str, sdk: openai.OpenAI) -> None:
    listed = {m.id for m in sdk.models.list()}
    assert {EMBEDDER, "openai/text-embedding-3-small", "openai/gpt-4o"} <= listed
    with httpx.Client(base_url=url, timeout=30) as client:
        picker = {m["id"] for m in client.get("/api/models").json()["models"]}
    assert "openai/gpt-4o" in picker and CHAT in picker
    assert EMBEDDER not in picker and "openai/text-embedding-3-small" not in picker
