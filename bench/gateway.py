"""How much a gateway adds: the fake upstream alone, through genai-chatbot, and through the LiteLLM proxy.

All three run here side by side on 127.0.0.1 in one run, one server worker each; the load is bounded in
count and time. LiteLLM is installed by this script into its own throwaway venv (bench/.litellm-venv).

Usage: python bench/gateway.py [--requests 2000] [--no-litellm]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from load import LoadResult, run_load

HERE = Path(__file__).resolve().parent
LITELLM_VENV = HERE / ".litellm-venv"
LITELLM_VERSION = "1.100.0"  # the newest whose [proxy] extra resolves from the registry here


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def process(command: list[str], ready_url: str, env: dict[str, str] | None = None, wait: float = 60) -> Iterator[None]:
    """Run `command` until the block ends; wait until `ready_url` answers (bounded)."""
    with tempfile.TemporaryFile() as log:
        yield from _supervise(command, ready_url, env, wait, log)


def _supervise(command: list[str], ready_url: str, env: dict[str, str] | None, wait: float, log: Any) -> Iterator[None]:
    proc = subprocess.Popen(command, env={**os.environ, **(env or {})}, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                if httpx.get(ready_url, timeout=2).status_code < 500:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                raise RuntimeError(f"{command[0]} did not start:\n{log.read().decode()[-3000:]}")
            time.sleep(0.05)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


def measure(url: str, model: str, requests: int) -> tuple[LoadResult, LoadResult]:
    """First-token latency at concurrency 1, and throughput at concurrency 64."""
    run_load(url, model, concurrency=1, requests=20, processes=1)  # warm up connections and caches
    single = run_load(url, model, concurrency=1, requests=200, processes=1, max_seconds=30)
    loaded = run_load(url, model, concurrency=64, requests=requests, processes=2, max_seconds=60)
    return single, loaded


def ensure_litellm() -> Path:
    python = LITELLM_VENV / "bin" / "python"
    if not (LITELLM_VENV / "bin" / "litellm").exists():
        print(f"Installing litellm[proxy]=={LITELLM_VERSION} into {LITELLM_VENV} (once)...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(LITELLM_VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", f"litellm[proxy]=={LITELLM_VERSION}"], check=True
        )
    return LITELLM_VENV / "bin" / "litellm"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000, help="requests at concurrency 64 (bounded by 60 s)")
    parser.add_argument("--no-litellm", action="store_true")
    args = parser.parse_args()

    upstream_port, ours_port, litellm_port = free_port(), free_port(), free_port()
    upstream = f"http://127.0.0.1:{upstream_port}"
    rows: list[tuple[str, LoadResult, LoadResult]] = []
    with (
        tempfile.TemporaryDirectory() as work,
        process([sys.executable, str(HERE / "fake_upstream.py"), str(upstream_port)], f"{upstream}/v1/models"),
    ):
        rows.append(("upstream alone", *measure(f"{upstream}/v1/chat/completions", "fake-model", args.requests)))

        config = Path(work) / "genai-chatbot.toml"
        config.write_text(
            f'data_dir = "{work}/data"\ndefault_model = "fake/fake-model"\nlog_level = "warning"\n'
            f"[local]\nenabled = false\n"
            f'[[openai_compatible]]\nname = "fake"\nbase_url = "{upstream}/v1"\nmodels = ["fake-model"]\n'
        )
        ours = f"http://127.0.0.1:{ours_port}"
        command = [sys.executable, "-m", "genai_chatbot", "serve", "--config", str(config), "--port", str(ours_port)]
        with process(command, f"{ours}/healthz"):
            rows.append(("genai-chatbot", *measure(f"{ours}/v1/chat/completions", "fake/fake-model", args.requests)))

        if not args.no_litellm:
            litellm = ensure_litellm()
            litellm_config = Path(work) / "litellm.yaml"
            litellm_config.write_text(
                "model_list:\n  - model_name: fake-model\n    litellm_params:\n"
                f"      model: openai/fake-model\n      api_base: {upstream}/v1\n      api_key: fake\n"
            )
            env = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_TELEMETRY": "False", "LITELLM_LOG": "ERROR"}
            command = [str(litellm), "--config", str(litellm_config), "--port", str(litellm_port), "--num_workers", "1"]
            with process(command, f"http://127.0.0.1:{litellm_port}/health/liveliness", env, wait=180):
                url = f"http://127.0.0.1:{litellm_port}/v1/chat/completions"
                rows.append(("LiteLLM proxy", *measure(url, "fake-model", args.requests)))

    base_first = rows[0][1].median_first_token_ms
    print(f"streamed chat completions, 20 chunks each; c=64 load: {args.requests} requests max, 60 s max")
    print(f"{'through':<16} {'first token c=1':>16} {'added':>9} {'req/s c=64':>11} {'errors':>7}")
    for name, single, loaded in rows:
        added = single.median_first_token_ms - base_first
        print(
            f"{name:<16} {single.median_first_token_ms:>13.2f} ms {added:>6.2f} ms "
            f"{loaded.per_second:>11.0f} {loaded.errors + single.errors:>7}"
        )


if __name__ == "__main__":
    main()
