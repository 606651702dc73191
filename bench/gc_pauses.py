"""The garbage collector's pauses in a served genai-chatbot under load, per generation: this checkout against
another one (`--before-src`, e.g. a `git worktree` of the commit before a change), side by side in one run.

Each round starts a fresh server of each checkout in turn (all of governance off, or on with
`--governance`, as `bench/gateway.py` runs them), warms it up, then loads it with streamed requests at
concurrency 64 and reads what `bench/gc_probe/sitecustomize.py`, loaded into the server, counted meanwhile:
collections of each generation, their CPU time in total and each, and per request. A collection is a pause
of the server's event loop, during which no stream in flight moves.

Usage: python bench/gc_pauses.py [--before-src DIR] [--governance] [--requests 5000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from gateway import GOVERNED_ENV, OFF_ENV, cpu_seconds, create_key
from load import run_load
from serving import free_port, running

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"


@dataclass(frozen=True)
class Probe:
    """What the probe in a server counted so far: collections and their CPU seconds per generation."""

    counts: list[int]
    seconds: list[float]
    frozen: int

    @classmethod
    def read(cls, path: Path) -> Probe:
        time.sleep(0.3)  # the probe writes every 0.1 s
        return cls(**json.loads(path.read_text()))


@dataclass(frozen=True)
class Row:
    """One server's load: its throughput and CPU, and what the collector did meanwhile."""

    name: str
    per_second: float
    cpu_ms_per_request: float
    collections: list[int]
    collector_ms: list[float]
    frozen: int
    requests: int


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before-src", type=Path, help="another checkout's src directory to compare with")
    parser.add_argument("--governance", action="store_true", help="run the servers with governance on")
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    checkouts = [("this checkout", SRC)] + ([("before", args.before_src.resolve())] if args.before_src else [])
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as work:
        up_port = free_port()
        upstream = f"http://127.0.0.1:{up_port}"
        config = Path(work) / "genai-chatbot.toml"
        config.write_text(
            f'data_dir = "{work}/data"\ndefault_model = "fake/fake-model"\nlog_level = "warning"\n'
            f"[local]\nenabled = false\n"
            f'[[openai_compatible]]\nname = "fake"\nbase_url = "{upstream}/v1"\nmodels = ["fake-model"]\n'
        )
        with running([sys.executable, str(HERE / "fake_upstream.py"), str(up_port)], f"{upstream}/v1/models"):
            key = create_key(config) if args.governance else None
            env = GOVERNED_ENV if args.governance else OFF_ENV
            for _ in range(args.rounds):
                for name, src in checkouts:
                    probe = Path(work) / "gc.json"
                    port = free_port()
                    command = [sys.executable, "-m", "genai_chatbot", "serve", "--config", str(config)]
                    server_env = {
                        **env,
                        "PYTHONPATH": os.pathsep.join([str(src), str(HERE / "gc_probe")]),
                        "GC_PROBE_FILE": str(probe),
                    }
                    url = f"http://127.0.0.1:{port}/v1/chat/completions"
                    with running(
                        [*command, "--port", str(port)], f"http://127.0.0.1:{port}/healthz", server_env
                    ) as pid:
                        run_load(url, "fake/fake-model", concurrency=64, requests=300, processes=2, api_key=key)
                        before, cpu_before = Probe.read(probe), cpu_seconds(pid)
                        load = run_load(
                            url, "fake/fake-model", concurrency=64, requests=args.requests, processes=2, api_key=key
                        )
                        after, cpu_after = Probe.read(probe), cpu_seconds(pid)
                    requests = max(1, load.requests)
                    rows.append(
                        Row(
                            name,
                            load.per_second,
                            (cpu_after - cpu_before) * 1000 / requests,
                            [a - b for a, b in zip(after.counts, before.counts, strict=True)],
                            [(a - b) * 1000 for a, b in zip(after.seconds, before.seconds, strict=True)],
                            after.frozen,
                            requests,
                        )
                    )
    print(
        f"streamed chat completions at c=64, {args.requests} requests per round; "
        f"governance {'on' if args.governance else 'off'}"
    )
    print(
        f"{'server':<14} {'req/s':>6} {'CPU/req':>9} {'frozen':>7}  {'gen0 n':>6} {'ms':>6}  {'gen1 n':>6} {'ms':>6}  "
        f"{'gen2 n':>6} {'ms':>6} {'ms each':>8}  {'GC µs/req':>9}"
    )
    for row in rows:
        counts, ms = row.collections, row.collector_ms
        each = ms[2] / counts[2] if counts[2] else 0.0
        per_request = sum(ms) * 1000 / row.requests
        print(
            f"{row.name:<14} {row.per_second:>6.0f} {row.cpu_ms_per_request:>7.2f}ms {row.frozen:>7}  "
            f"{counts[0]:>6} {ms[0]:>6.1f}  {counts[1]:>6} {ms[1]:>6.1f}  {counts[2]:>6} {ms[2]:>6.1f} {each:>8.1f}  "
            f"{per_request:>9.1f}"
        )


if __name__ == "__main__":
    main()
