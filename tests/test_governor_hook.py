"""The service asks its governor before every turn or request and reports each one once when it ends."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from genai_chatbot.auth.principal import Principal
from genai_chatbot.chat.service import ChatService, TurnEnded
from genai_chatbot.chat.sqlite_store import SQLiteHistoryStore
from genai_chatbot.governance.errors import ModelNotAllowedError
from genai_chatbot.governance.gate import Admission, Outcome, Surface
from genai_chatbot.models.registry import ModelRegistry
from genai_chatbot.models.types import EmbeddingRequest, EmbeddingResult, Message, ModelInfo, Usage
from scripted import ScriptedProvider

ALICE = Principal("alice", "user", groups=("interns",))


@dataclass
class RecordingGovernor:
    """Allows what `allowed` names, and keeps every admission and outcome it sees."""

    allowed: set[str] = field(default_factory=lambda: {"scripted/echo"})
    admitted: list[tuple[str, str, Surface]] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)

    async def visible_models(self, caller: Principal, models: list[ModelInfo]) -> list[ModelInfo]:
        return [m for m in models if m.id in self.allowed]

    async def admit(self, caller: Principal, model: ModelInfo, surface: Surface, max_tokens: int) -> Admission:
        if model.id not in self.allowed:
            raise ModelNotAllowedError(model.id)
        self.admitted.append((caller.user_id, model.id, surface))
        return self

    async def finish(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)


@pytest.fixture
async def governed(tmp_path: Path) -> tuple[ChatService, RecordingGovernor]:
    governor = RecordingGovernor()
    service = ChatService(
        ModelRegistry([ScriptedProvider(["Hello", " there"])]),
        SQLiteHistoryStore(tmp_path / "chat.sqlite3"),
        default_model="scripted/echo",
        default_system_prompt="",
        default_max_tokens=64,
        governor=governor,
    )
    yield service, governor
    await service.store.close()


async def test_a_turn_is_admitted_for_its_caller_and_reported_once_complete(
    governed: tuple[ChatService, RecordingGovernor],
) -> None:
    service, governor = governed
    session = await service.create_session("alice")
    events = [e async for e in await service.start_turn(ALICE, session.id, "hi", surface="terminal")]
    assert isinstance(events[-1], TurnEnded) and events[-1].message.status == "complete"
    assert governor.admitted == [("alice", "scripted/echo", "terminal")]
    [outcome] = governor.outcomes
    assert (outcome.status, outcome.prompt_tokens, outcome.completion_tokens) == ("complete", 3, 2)
    assert outcome.first_token_seconds is not None and outcome.latency_seconds >= outcome.first_token_seconds


async def test_a_refused_turn_stores_nothing(governed: tuple[ChatService, RecordingGovernor]) -> None:
    service, governor = governed
    session = await service.create_session("alice")
    governor.allowed = set()  # taken away after the session was made (creating one now is refused too)
    with pytest.raises(ModelNotAllowedError):
        await service.create_session("alice")
    with pytest.raises(ModelNotAllowedError):
        await service.start_turn(ALICE, session.id, "hi")
    assert await service.store.list_messages(session.id) == []
    assert governor.outcomes == []


async def test_a_turn_that_cannot_start_is_reported_cancelled(governed: tuple[ChatService, RecordingGovernor]) -> None:
    service, governor = governed
    session = await service.create_session("alice")
    first = await service.start_turn(ALICE, session.id, "one")
    with pytest.raises(Exception, match="one turn at a time"):
        await service.start_turn(ALICE, session.id, "two")
    await first.aclose()
    assert sorted(o.status for o in governor.outcomes) == ["cancelled", "cancelled"]


async def test_stateless_requests_and_model_lists_go_through_the_governor(
    governed: tuple[ChatService, RecordingGovernor],
) -> None:
    service, governor = governed
    assert [m.id for m in await service.list_models(ALICE)] == ["scripted/echo"]
    prepared = await service.prepare(None, [Message("user", "hi")], caller=ALICE)
    assert (await service.complete(prepared)).text == "Hello there"
    stream = await service.stream(prepared)
    assert "".join([c.text async for c in stream]) == "Hello there"
    await stream.aclose()
    assert [o.status for o in governor.outcomes] == ["complete", "complete"]
    assert governor.admitted == [("alice", "scripted/echo", "v1")] * 2
    governor.allowed = set()
    assert await service.list_models(ALICE) == []
    with pytest.raises(ModelNotAllowedError):
        await service.stream(prepared)


async def test_a_chain_refuses_when_one_part_does_and_releases_the_parts_that_admitted() -> None:
    from genai_chatbot.governance.chain import ChainGovernor

    counting, refusing = RecordingGovernor(), RecordingGovernor(allowed=set())
    chain = ChainGovernor([counting, refusing])
    model = ModelInfo(id="scripted/echo", provider="scripted", name="echo", display_name="Echo")
    with pytest.raises(ModelNotAllowedError):
        await chain.admit(ALICE, model, "v1", 10)
    assert [o.status for o in counting.outcomes] == ["cancelled"]
    assert await chain.visible_models(ALICE, [model]) == []
    admission = await ChainGovernor([counting, RecordingGovernor()]).admit(ALICE, model, "page", 10)
    await admission.finish(Outcome("scripted/echo", "complete", 1, 2, 0.1))
    assert [o.status for o in counting.outcomes] == ["cancelled", "complete"]


class Embedder(ScriptedProvider):
    """An embedding model: one vector per text, its length the text's, and a token per character."""

    name = "emb"

    async def list_models(self) -> list[ModelInfo]:
        return [ModelInfo("emb/vec", "emb", "vec", "Vectors", features=frozenset({"embeddings"}))]

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResult:
        usage = Usage(sum(map(len, request.inputs)), 0)
        return EmbeddingResult(tuple((float(len(t)),) for t in request.inputs), usage)


def embedding_service(tmp_path: Path, embedder: Embedder, governor: RecordingGovernor) -> ChatService:
    return ChatService(
        ModelRegistry([ScriptedProvider(["x"]), embedder]),
        SQLiteHistoryStore(tmp_path / "chat.sqlite3"),
        default_model="scripted/echo",
        default_system_prompt="",
        default_max_tokens=64,
        governor=governor,
    )


async def test_embeddings_are_admitted_like_a_request_and_reported_with_their_tokens(tmp_path: Path) -> None:
    governor = RecordingGovernor(allowed={"emb/vec"})
    service = embedding_service(tmp_path, Embedder([]), governor)
    try:
        info, result = await service.embed("emb/vec", ["ab", "cde"], caller=ALICE)
        assert info.id == "emb/vec" and result.vectors == ((2.0,), (3.0,))
        assert governor.admitted == [("alice", "emb/vec", "v1")]
        [outcome] = governor.outcomes
        assert (outcome.model_id, outcome.status, outcome.prompt_tokens) == ("emb/vec", "complete", 5)
        governor.allowed = {"scripted/echo"}
        with pytest.raises(ModelNotAllowedError):
            await service.embed("emb/vec", ["ab"], caller=ALICE)
    finally:
        await service.store.close()


class Uncounted(Embedder):
    """An embedding model whose API reports no token count (Cohere Embed on Bedrock without its header)."""

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResult:
        return EmbeddingResult(tuple((1.0,) for _ in request.inputs))


async def test_embeddings_without_a_token_count_get_an_estimate_from_their_length(tmp_path: Path) -> None:
    governor = RecordingGovernor(allowed={"emb/vec"})
    service = embedding_service(tmp_path, Uncounted([]), governor)
    try:
        _, result = await service.embed("emb/vec", ["a" * 40, "bb"], caller=ALICE)
        assert result.usage is not None and result.usage.prompt_tokens == 11 + 1
        assert governor.outcomes[0].prompt_tokens == 12
    finally:
        await service.store.close()
