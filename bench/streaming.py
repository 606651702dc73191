"""Streaming benchmark of the embedded model: raw llama-cpp-python against our server, side by side.

Prints one table. Everything targets 127.0.0.1, and every loop is bounded.

- tokens/s: completion tokens over wall time of the whole request, greedy, same GGUF, threads, context and
  prompts; raw runs create_chat_completion in-process, ours goes through `genai-chatbot serve` and
  `/v1/chat/completions` with stream=true (HTTP, SSE parsing in the client included).
- first token: from sending the request to the first content chunk, for a fresh ~20-token prompt.
- our CPU per chunk: process CPU time of our streaming layers alone (route, SSE encoding, service,
  provider queue hand-off), driven by an instant provider so that no model time is counted.
- idle RSS before the model loads, and process start to the first 200 from /healthz.

Usage: python bench/streaming.py [--runs 5] [--max-tokens 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from serving import free_port, running

THREADS = 2
CONTEXT = 2048
SYSTEM = "You are a helpful assistant."
PROMPTS = [
    "Write a long story about a dragon who learns to cook.",
    "Explain in detail how a bicycle works, part by part.",
    "Describe a walk through a busy city market in the morning.",
    "Write a long letter to a friend about your summer holidays.",
    "Explain how plants grow from seeds, step by step, in detail.",
    "Tell a long story about a robot who wants to become a painter.",
]
MODEL = "local/smollm2-135m-instruct"


def fresh_prompt(index: int) -> str:
    return f"Request {index}: {PROMPTS[index % len(PROMPTS)]}"


def raw_llama(runs: int, max_tokens: int) -> tuple[list[float], list[float]]:
    """tokens/s and first-token seconds of plain llama-cpp-python on the same GGUF and settings."""
    from llama_cpp import Llama

    from genai_chatbot.models.providers.local import embedded_gguf_path

    llm = Llama(model_path=str(embedded_gguf_path()), n_ctx=CONTEXT, n_threads=THREADS, verbose=False)
    llm.create_chat_completion([{"role": "user", "content": "warm up"}], max_tokens=4)
    rates, firsts = [], []
    for run in range(runs):
        messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": fresh_prompt(run)}]
        started = time.perf_counter()
        first = None
        tokens = 0
        for chunk in llm.create_chat_completion(
            messages,  # type: ignore[arg-type]
            temperature=0,
            max_tokens=max_tokens,
            stream=True,
        ):
            if chunk["choices"][0]["delta"].get("content"):  # type: ignore[index,union-attr]
                tokens += 1
                first = first or time.perf_counter() - started
        rates.append(tokens / (time.perf_counter() - started))
        firsts.append(first or 0.0)
    return rates, firsts


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def through_server(runs: int, max_tokens: int, data_dir: Path) -> dict[str, object]:
    port = free_port()
    env = {**os.environ, "GENAI_CHATBOT_DATA_DIR": str(data_dir), "GENAI_CHATBOT_LOCAL__THREADS": str(THREADS)}
    env["GENAI_CHATBOT_LOCAL__CONTEXT_SIZE"] = str(CONTEXT)
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "genai_chatbot", "serve", "--port", str(port)]
    started = time.perf_counter()
    with (
        running(command, f"{url}/healthz", base_env=env, wait=30, poll=0.005) as pid,
        httpx.Client(base_url=url, timeout=120) as client,
    ):
        start_to_health = time.perf_counter() - started
        idle_rss = rss_mb(pid)
        body = {"model": MODEL, "messages": [{"role": "user", "content": "warm up"}], "max_tokens": 4}
        client.post("/v1/chat/completions", json=body).raise_for_status()
        rates, firsts = [], []
        for run in range(runs):
            body = {
                "model": MODEL,
                "messages": [{"role": "user", "content": fresh_prompt(run)}],
                "temperature": 0,
                "max_tokens": max_tokens,
                "stream": True,
            }
            sent = time.perf_counter()
            first = None
            tokens = 0
            with client.stream("POST", "/v1/chat/completions", json=body) as response:
                for line in response.iter_lines():
                    if not line.startswith("data: {"):
                        continue
                    chunk = json.loads(line[6:])
                    if chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                        tokens += 1
                        first = first or time.perf_counter() - sent
            rates.append(tokens / (time.perf_counter() - sent))
            firsts.append(first or 0.0)
        loaded_rss = rss_mb(pid)
    return {
        "rates": rates,
        "firsts": firsts,
        "start_to_health": start_to_health,
        "idle_rss": idle_rss,
        "loaded_rss": loaded_rss,
    }


async def our_cpu_per_chunk(chunks: int) -> float:
    """Process CPU seconds per chunk spent in our layers: route SSE encoding and the service, no model."""
    from genai_chatbot.api.openai_routes import _stream
    from genai_chatbot.chat.service import PreparedChat
    from genai_chatbot.chat.stopping import StoppableStream
    from genai_chatbot.models.provider import Provider
    from genai_chatbot.models.types import ChatChunk, ChatRequest, Message, ModelInfo

    class Instant(Provider):
        name = "instant"

        async def list_models(self) -> list[ModelInfo]:
            return []

        async def stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
            piece = ChatChunk(text=" token")
            for _ in range(chunks):
                yield piece
            yield ChatChunk(finish_reason="stop")

    info = ModelInfo(id="instant/x", provider="instant", name="x", display_name="x")
    prepared = PreparedChat(Instant(), info, ChatRequest(model="x", messages=(Message("user", "hi"),)))
    stream = StoppableStream(prepared.provider.stream(prepared.request))  # as ChatService.stream hands it out
    begin = time.process_time()
    async for _ in _stream(stream, "chatcmpl-bench", 0, "instant/x", include_usage=True):
        pass
    return (time.process_time() - begin) / chunks


async def handoff_cpu_per_chunk(chunks: int) -> float:
    """CPU seconds per chunk of the local provider's thread-to-event-loop hand-off, with no model work."""
    from genai_chatbot.models.types import ChatChunk

    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[object] = asyncio.Queue()
    end = object()

    def produce() -> None:
        piece = ChatChunk(text=" token")
        for _ in range(chunks):
            loop.call_soon_threadsafe(queue.put_nowait, piece)
        loop.call_soon_threadsafe(queue.put_nowait, end)

    begin = time.process_time()
    producer = loop.run_in_executor(None, produce)
    while await queue.get() is not end:
        pass
    await producer
    return (time.process_time() - begin) / chunks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=200)
    args = parser.parse_args()
    import tempfile

    # Side by side, interleaved order would be fairer still; raw first, then ours, then raw again.
    raw_rates, raw_firsts = raw_llama(args.runs, args.max_tokens)
    with tempfile.TemporaryDirectory() as data_dir:
        ours = through_server(args.runs, args.max_tokens, Path(data_dir))
    raw_rates2, raw_firsts2 = raw_llama(args.runs, args.max_tokens)
    raw_rates += raw_rates2
    raw_firsts += raw_firsts2
    route_cpu = asyncio.run(our_cpu_per_chunk(200_000))
    handoff_cpu = asyncio.run(handoff_cpu_per_chunk(100_000))

    our_rates = ours["rates"]
    our_firsts = ours["firsts"]
    assert isinstance(our_rates, list) and isinstance(our_firsts, list)
    raw_rate, our_rate = statistics.median(raw_rates), statistics.median(our_rates)
    rows = [
        ("tokens/s, raw llama-cpp-python (median)", f"{raw_rate:.1f}", ""),
        ("tokens/s, our /v1/chat/completions (median)", f"{our_rate:.1f}", "≥ 95 % of raw"),
        ("  ratio ours / raw", f"{our_rate / raw_rate * 100:.1f} %", ""),
        ("first token, raw (median)", f"{statistics.median(raw_firsts) * 1000:.1f} ms", ""),
        ("first token, ours over HTTP (median)", f"{statistics.median(our_firsts) * 1000:.1f} ms", "≤ 150 ms"),
        ("our CPU per chunk: route + SSE", f"{route_cpu * 1e6:.1f} µs", "≤ 100 µs"),
        ("our CPU per chunk: thread hand-off", f"{handoff_cpu * 1e6:.1f} µs", "(in the above budget)"),
        ("server idle RSS before model load", f"{ours['idle_rss']:.1f} MB", "≤ 120 MB"),
        ("server RSS with the model loaded", f"{ours['loaded_rss']:.1f} MB", ""),
        ("process start to /healthz", f"{ours['start_to_health']:.2f} s", "≤ 1.5 s"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"runs={args.runs} (raw: {2 * args.runs}) max_tokens={args.max_tokens} threads={THREADS} ctx={CONTEXT}")
    print(f"{'measure'.ljust(width)}  {'value':>12}  target")
    for name, value, target in rows:
        print(f"{name.ljust(width)}  {value:>12}  {target}")


if __name__ == "__main__":
    main()
