"""How fast the history stores answer with 100,000 messages stored: one table row per store.

Measured through the stores' own methods (what the service calls), after filling the database in bulk:
- open a 1,000-turn session: `get_session` + `list_messages` of a session of 2,000 messages;
- list a user's sessions: `list_sessions` (100 newest) of a user with 200 sessions;
- append a turn: `begin_turn` (question + streaming answer, one transaction) + `finish_message`.
Targets (issue 11): ≤ 20 ms, ≤ 10 ms, ≤ 2 ms. Medians and 95th percentiles over bounded repetitions.

PostgreSQL: a throwaway Debian server started like the tests' (tests/postgres.py), or `--postgres-url`.
DynamoDB (`--dynamodb`): moto's server as the tests run it (tests/dynamodb.py), for information only: moto
is an in-process Python model of DynamoDB answering over HTTP, one request at a time, that copies a whole
table for every transaction, so its figures say nothing of DynamoDB's own latency (single-digit ms a call).
Its table holds only `--dynamodb-messages` (default 4,000: the bench user's sessions, the 1,000-turn one
included) and each figure is measured fewer times: DynamoDB reads and writes one partition whatever the
table's size, but moto's copy grows with it (20,000 messages: seconds per turn), and moto keeps those
copies (about 30 MB per turn at 4,000 messages).

Usage: python bench/history.py [--messages 100000] [--postgres-url URL] [--no-postgres] [--dynamodb]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))  # tests/postgres.py starts the throwaway server

from genai_chatbot.chat.records import Session, StoredMessage  # noqa: E402
from genai_chatbot.chat.store import HistoryStore  # noqa: E402
from genai_chatbot.config import Settings  # noqa: E402
from genai_chatbot.stores import select_store  # noqa: E402

USER = "bench"
BIG_TURNS = 1000
USER_SESSIONS = 200
PER_SESSION = 10  # messages in every other session
TARGETS = {"open": 20.0, "list": 10.0, "append": 2.0}

Row = tuple[str, str, str, str, str, str, str, float]  # id, session, role, content, status, model, params, at


def dataset(messages: int) -> tuple[list[tuple[str, str, float]], list[Row]]:
    """Sessions (id, user, updated_at) and messages: one 1,000-turn session of `USER`, 199 small ones of
    `USER`, and small sessions of other users up to `messages` in all."""
    sessions: list[tuple[str, str, float]] = [("big", USER, 2e9)]
    rows: list[Row] = []
    at = 1e9
    text = "A message of ordinary length, about as long as a short answer in a chat. " * 3
    for turn in range(BIG_TURNS):
        for role in ("user", "assistant"):
            at += 1
            rows.append((f"big-{turn}-{role}", "big", role, text, "complete", "local/m", "{}", at))
    n = 0
    while len(rows) < messages:
        sid = f"s{n}"
        owner = USER if n < USER_SESSIONS - 1 else f"user{n % 1000}"
        sessions.append((sid, owner, 1e9 + n))
        for i in range(PER_SESSION):
            at += 1
            rows.append(
                (f"{sid}-{i}", sid, "user" if i % 2 == 0 else "assistant", text, "complete", "local/m", "{}", at)
            )
        n += 1
    return sessions, rows


def fill_sqlite(path: Path, sessions: list[tuple[str, str, float]], rows: list[Row]) -> None:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("BEGIN")
    db.executemany(
        "INSERT INTO sessions (id, user_id, title, model_id, created_at, updated_at) "
        "VALUES (?, ?, 't', 'local/m', ?, ?)",
        [(sid, user, at, at) for sid, user, at in sessions],
    )
    db.executemany(
        "INSERT INTO messages (id, session_id, role, content, status, model_id, params, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    db.execute("COMMIT")
    db.execute("ANALYZE")
    db.close()


def fill_postgres(url: str, sessions: list[tuple[str, str, float]], rows: list[Row]) -> None:
    import psycopg

    with psycopg.connect(url) as db:
        with db.cursor().copy(
            "COPY sessions (id, user_id, title, model_id, created_at, updated_at) FROM STDIN"
        ) as copy:
            for sid, user, at in sessions:
                copy.write_row((sid, user, "t", "local/m", at, at))
        with db.cursor().copy(
            "COPY messages (id, session_id, role, content, status, model_id, params, created_at) FROM STDIN"
        ) as copy:
            for row in rows:
                copy.write_row(row)
        db.commit()
        db.autocommit = True
        db.execute("VACUUM ANALYZE")


def fill_dynamodb(prefix: str, sessions: list[tuple[str, str, float]], rows: list[Row]) -> None:
    from genai_chatbot.chat.dynamodb_db import new_client, table_names
    from genai_chatbot.chat.dynamodb_items import message_item, session_item

    client = new_client()
    history = table_names(prefix)[0]
    counts: dict[str, int] = {}
    items = []
    for mid, sid, role, content, status, model, _params, at in rows:
        counts[sid] = counts.get(sid, 0) + 1
        message = StoredMessage(mid, sid, role, content, status, model, created_at=at)  # type: ignore[arg-type]
        items.append(message_item(message, counts[sid]))
    for sid, user, at in sessions:
        item = session_item(Session(sid, user, "t", "local/m", created_at=at, updated_at=at))
        item["seq"] = {"N": str(counts.get(sid, 0))}
        items.append(item)
    for start in range(0, len(items), 25):
        batch: Any = {history: [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]}
        while batch:
            batch = client.batch_write_item(RequestItems=batch).get("UnprocessedItems")
    client.close()


async def timed(work: Callable[[int], Awaitable[object]], repeat: int) -> tuple[float, float]:
    """Median and 95th percentile in milliseconds of `repeat` runs, after a few unmeasured ones."""
    for i in range(3):
        await work(-1 - i)
    times: list[float] = []
    for i in range(repeat):
        start = time.perf_counter()
        await work(i)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), statistics.quantiles(times, n=20)[-1]


#: How many times each figure is measured; moto (DynamoDB) gets fewer, see the module docstring.
REPEATS = {"open": 50, "list": 200, "append": 300}
MOTO_REPEATS = {"open": 10, "list": 50, "append": 20}


async def measure(store: HistoryStore, repeats: dict[str, int]) -> dict[str, tuple[float, float]]:
    async def open_session(_: int) -> None:
        await store.get_session(USER, "big")
        messages = await store.list_messages("big")
        assert len(messages) >= 2 * BIG_TURNS

    async def list_sessions(_: int) -> None:
        assert len(await store.list_sessions(USER, 100)) == 100

    target = Session(id="s0", user_id=USER, title="t", model_id="local/m")

    async def append(i: int) -> None:
        question = StoredMessage(id=f"q{i}", session_id="s0", role="user", content="question")
        answer = StoredMessage(id=f"a{i}", session_id="s0", role="assistant", content="", status="streaming")
        started = await store.begin_turn(target, question, answer, None)
        assert started.value == "started", started
        answer.content, answer.status = "answer", "complete"
        assert await store.finish_message(answer)

    return {
        "open": await timed(open_session, repeats["open"]),
        "list": await timed(list_sessions, repeats["list"]),
        "append": await timed(append, repeats["append"]),
    }


async def bench(
    settings: Settings, fill: Callable[[], None], repeats: dict[str, int] = REPEATS
) -> dict[str, tuple[float, float]]:
    store = select_store(settings).history_store()
    try:
        await store.list_sessions(USER)  # creates the schema
        await asyncio.to_thread(fill)
        return await measure(store, repeats)
    finally:
        await store.close()


@contextlib.contextmanager
def dynamodb() -> Iterator[str]:
    """A moto server on a free port, boto3 pointed at it, and the tables of a `dynamodb://` URL."""
    import os
    import socket

    from dynamodb import AWS_ENV, start_moto
    from genai_chatbot.chat.dynamodb_db import new_client
    from genai_chatbot.chat.dynamodb_tables import ensure_tables

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = start_moto(port)
    os.environ.update(AWS_ENV, AWS_ENDPOINT_URL_DYNAMODB=f"http://127.0.0.1:{port}")
    client = new_client()
    ensure_tables(client, "bench", lambda _line: None)
    client.close()
    try:
        yield "dynamodb://bench"
    finally:
        server.stop()


@contextlib.contextmanager
def postgres(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    import psycopg

    from postgres import running_postgres

    with running_postgres() as admin, psycopg.connect(admin, autocommit=True) as db:
        db.execute("CREATE DATABASE bench")
        yield admin.rsplit("/", 1)[0] + "/bench"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--postgres-url", help="an empty database to use instead of a throwaway server")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--dynamodb", action="store_true", help="add DynamoDB through moto (for information only)")
    parser.add_argument("--dynamodb-messages", type=int, default=4_000)
    args = parser.parse_args()
    sessions, rows = dataset(args.messages)
    results: dict[str, dict[str, tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "chat.sqlite3"
        settings = Settings(data_dir=Path(tmp), database_url=f"sqlite:///{path}")
        results["SQLite"] = asyncio.run(bench(settings, lambda: fill_sqlite(path, sessions, rows)))
    if not args.no_postgres:
        with postgres(args.postgres_url) as url:
            settings = Settings(database_url=url)
            results["PostgreSQL"] = asyncio.run(bench(settings, lambda: fill_postgres(url, sessions, rows)))
    if args.dynamodb:
        import logging

        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        with dynamodb() as url:
            prefix = url.removeprefix("dynamodb://")
            settings = Settings(database_url=url)
            small = dataset(args.dynamodb_messages)
            fill = lambda: fill_dynamodb(prefix, *small)  # noqa: E731
            name = f"DynamoDB (moto, {len(small[1]):,} messages; information only)"
            results[name] = asyncio.run(bench(settings, fill, MOTO_REPEATS))

    print(f"\n{len(rows):,} messages in {len(sessions):,} sessions; ms, median / p95 (target)\n")
    header = ["store", "open 1,000-turn session", "list a user's sessions", "append a turn"]
    print(f"| {' | '.join(header)} |")
    print(f"|{'|'.join('---' for _ in header)}|")
    for store, figures in results.items():
        cells = []
        for key in ("open", "list", "append"):
            median, p95 = figures[key]
            if store.startswith("DynamoDB"):  # moto's figures: no target applies
                cells.append(f"{median:.2f} / {p95:.2f}")
                continue
            verdict = "ok" if median <= TARGETS[key] else "OVER"
            cells.append(f"{median:.2f} / {p95:.2f} (≤ {TARGETS[key]:g}) {verdict}")
        print(f"| {store} | {' | '.join(cells)} |")
    print(json.dumps({store: {k: round(v[0], 3) for k, v in f.items()} for store, f in results.items()}))


if __name__ == "__main__":
    main()
