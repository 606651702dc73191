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
from pathlib import Path

from gateway import GOVERNED_ENV, OFF_ENV, cpu_seconds, create_key
from load import run_load
from serving import free_port, running

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"


def snapshot(path: Path) -> dict[str, list[float]]:
    time.sleep(0.3)  # the probe writes every 0.1 s
    data: dict[str, list[float]] = json.loads(path.read_text())
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before-src", type=Path, help="another checkout's src directory to compare with")
    parser.add_argument("--governance", action="store_true", help="run the servers with governance on")
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    checkouts = [("this checkout", SRC)] + ([("before", args.before_src.resolve())] if args.before_src else [])
    rows = []
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
                        before, cpu_before = snapshot(probe), cpu_seconds(pid)
                        load = run_load(
                            url, "fake/fake-model", concurrency=64, requests=args.requests, processes=2, api_key=key
                        )
                        after, cpu_after = snapshot(probe), cpu_seconds(pid)
                    requests = max(1, load.requests)
                    counts = [int(a - b) for a, b in zip(after["counts"], before["counts"], strict=True)]
                    pauses = [(a - b) * 1000 for a, b in zip(after["seconds"], before["seconds"], strict=True)]
                    rows.append(
                        (
                            name,
                            load.per_second,
                            (cpu_after - cpu_before) * 1000 / requests,
                            counts,
                            pauses,
                            after["frozen"],
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
    for name, per_second, cpu_ms, counts, pauses, frozen, requests in rows:
        each = pauses[2] / counts[2] if counts[2] else 0.0
        per_request = sum(pauses) * 1000 / requests
        print(
            f"{name:<14} {per_second:>6.0f} {cpu_ms:>7.2f}ms {frozen:>7}  {counts[0]:>6} {pauses[0]:>6.1f}  "
            f"{counts[1]:>6} {pauses[1]:>6.1f}  {counts[2]:>6} {pauses[2]:>6.1f} {each:>8.1f}  {per_request:>9.1f}"
        )


if __name__ == "__main__":
    main()
