"""A small load client for streamed chat completions: worker processes, one small httpx client per task.

One shared httpx pool of 64 connections is itself a bottleneck, so every concurrent task owns a client with
one connection, and the tasks are spread over worker processes. Requests are bounded by count and time.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import re
import statistics
import time
from dataclasses import dataclass

import httpx


@dataclass(frozen=True)
class LoadResult:
    requests: int
    errors: int
    seconds: float
    first_token_ms: list[float]

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def median_first_token_ms(self) -> float:
        return statistics.median(self.first_token_ms) if self.first_token_ms else float("nan")


_EMPTY = re.compile(r'"content":\s*""')


async def one_stream(client: httpx.AsyncClient, url: str, body: dict[str, object]) -> float:
    """Send one streamed request, read it to [DONE]; return ms to the first chunk with text.

    A gateway's opening chunk (`"role": "assistant", "content": ""`) is not text: counting it would credit
    a gateway that answers before its upstream did with a first token it has not got yet.
    """
    started = time.perf_counter()
    first = 0.0
    async with client.stream("POST", url, json=body) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            # Read to the end of the body (not just to [DONE]): a response closed unread loses its
            # keep-alive connection, and reconnecting would be measured as the gateway's cost.
            if not first and line.startswith("data: {") and '"content"' in line and not _EMPTY.search(line):
                first = (time.perf_counter() - started) * 1000
    return first


async def _worker(
    url: str, model: str, tasks: int, per_task: int, deadline: float, api_key: str | None = None
) -> tuple[int, int, list[float], float, float]:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": True, "max_tokens": 64}
    firsts: list[float] = []
    errors = 0

    async def run_task() -> None:
        nonlocal errors
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        async with httpx.AsyncClient(limits=limits, timeout=30, headers=headers) as client:
            for _ in range(per_task):
                if time.monotonic() > deadline:
                    return
                try:
                    firsts.append(await one_stream(client, url, body))
                except httpx.HTTPError:
                    errors += 1

    began = time.time()
    await asyncio.gather(*(run_task() for _ in range(tasks)))
    return len(firsts), errors, firsts, began, time.time()


def _process_main(args: tuple[str, str, int, int, float, str | None], queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    queue.put(asyncio.run(_worker(*args)))


def run_load(
    url: str,
    model: str,
    concurrency: int,
    requests: int,
    max_seconds: float = 60.0,
    processes: int = 2,
    api_key: str | None = None,
) -> LoadResult:
    """Send about `requests` streamed requests with `concurrency` in flight, over `processes` processes.

    `api_key` is sent as `Authorization: Bearer`, as an OpenAI client sends its api_key.
    """
    processes = max(1, min(processes, concurrency))
    per_process = concurrency // processes
    per_task = max(1, requests // concurrency)
    deadline = time.monotonic() + max_seconds
    queue: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    workers = [
        multiprocessing.Process(
            target=_process_main, args=((url, model, per_process, per_task, deadline, api_key), queue)
        )
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    done, errors, firsts, starts, ends = 0, 0, [], [], []
    for _ in workers:
        count, failed, times, began, ended = queue.get(timeout=max_seconds + 30)
        done, errors = done + count, errors + failed
        firsts.extend(times)
        starts.append(began)
        ends.append(ended)
    for worker in workers:
        worker.join(10)
    # Measured inside the workers, so process start-up is not counted.
    return LoadResult(done, errors, max(ends) - min(starts), firsts)
