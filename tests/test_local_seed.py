"""The embedded model honours `seed` (llama.cpp's sampler seed): sampled answers repeat under one seed."""

from __future__ import annotations

from genai_chatbot.models.providers.local import LocalProvider
from genai_chatbot.models.types import ChatRequest, Message

NAME = "smollm2-135m-instruct"


async def test_one_seed_repeats_a_sampled_answer_and_other_seeds_change_it(local_provider: LocalProvider) -> None:
    async def answer(seed: int) -> str:
        question = (Message("user", "Invent a name for a ship."),)
        request = ChatRequest(model=NAME, messages=question, max_tokens=24, temperature=1.5, top_p=1.0, seed=seed)
        return (await local_provider.complete(request)).text

    first = await answer(7)
    assert await answer(7) == first
    assert {await answer(seed) for seed in (8, 9, 10)} != {first}
