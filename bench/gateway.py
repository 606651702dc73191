"""How much a gateway adds: the fake upstream alone, through genai-chatbot, and through the LiteLLM proxy.

All three run here side by side on 127.0.0.1 in one run, one server worker each; the load is bounded in
count and time. LiteLLM is installed by this script into its own throwaway venv (bench/.litellm-venv).

`--api-keys` also runs genai-chatbot with `auth = "api-keys"` (a user and key made with the CLI in its data
dir, the key sent as an OpenAI client sends it) and prints what authentication costs next to no auth.
`--rounds N` alternates the two N times and keeps each one's best round, to see through a noisy machine.
The paired comparisons (both servers at once, the side-by-side figures to quote) run N rounds too, each on
fresh server processes, and print every round and their median: a process has a first-token bias of its
own of a few hundredths of a millisecond, which fresh processes average out.

`--governance` also runs it with everything of issue 13 on: `auth = "api-keys"`, model access, metrics, usage
and cost recorded for every request, and the bench user's group and the user itself under a budget, requests
and tokens per minute (limits too high to refuse anything, so every check runs: a store read before each
request, its requests per minute taken as leases, and a write after it). It is compared with the plain
server, which runs with `record_usage = false` and `metrics = false`: all of governance off, no auth. The
paired comparisons set the api-keys and the governed server each against that plain server.

`--before-src DIR` adds a third genai-chatbot, run from another checkout's `src` (e.g. a `git worktree` of the
commit before a change), so a change's cost is measured side by side in one run: it joins the alternating
rounds, and the paired comparisons then set the compared servers against it instead of the plain server.
`bench/gc_pauses.py` measures the garbage collector's share of a server's CPU the same way.

Usage: python bench/gateway.py [--requests 2000] [--no-litellm] [--api-keys] [--governance] [--rounds 1]
                               [--before-src DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from load import LoadResult, one_stream, run_load
from serving import free_port
from serving import running as process

HERE = Path(__file__).resolve().parent
LITELLM_VENV = HERE / ".litellm-venv"
NO_AUTH, API_KEYS, BEFORE, GOVERNED = "genai-chatbot", "  with api-keys", "  before", "  governed"
#: Governance off: no usage recorded, so no budget or rate limit either (the default records usage), and no
#: Prometheus metrics (on by default).
OFF_ENV = {"GENAI_CHATBOT_RECORD_USAGE": "false", "GENAI_CHATBOT_METRICS": "false"}
#: Everything on, with limits no bench run reaches (see --governance).
GOVERNED_ENV = {
    "GENAI_CHATBOT_AUTH": "api-keys",
    "GENAI_CHATBOT_RECORD_USAGE": "true",
    "GENAI_CHATBOT_METRICS": "true",
    "GENAI_CHATBOT_GROUPS": '{"bench": {"models": ["fake/*"], "budget_usd": 1e9, "budget_period": "day", '
    '"requests_per_minute": 1000000000, "tokens_per_minute": 1000000000}}',
    "GENAI_CHATBOT_PRICES": '{"fake/fake-model": {"input_per_million": 0.15, "output_per_million": 0.6}}',
}
#: Requests each server answers in a paired first-token round (after 20 that warm up).
PAIRED_REQUESTS = 600
LITELLM_VERSION = "1.100.0"  # the newest whose [proxy] extra resolves from the registry here


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used (Linux /proc), to see a server's cost through the noise
    of other work on the machine, which slows wall-clock throughput but not CPU per request."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(
    url: str, model: str, requests: int, api_key: str | None = None, pid: int | None = None
) -> tuple[LoadResult, LoadResult, float | None]:
    """First-token latency at concurrency 1, throughput at concurrency 64, and (given the server's pid) its
    CPU milliseconds per request at concurrency 64."""
    run_load(url, model, concurrency=1, requests=20, processes=1, api_key=api_key)  # warm up connections, caches
    single = run_load(url, model, concurrency=1, requests=200, processes=1, max_seconds=30, api_key=api_key)
    cpu_before = cpu_seconds(pid) if pid else 0.0
    loaded = run_load(url, model, concurrency=64, requests=requests, processes=2, max_seconds=60, api_key=api_key)
    cpu_ms = (cpu_seconds(pid) - cpu_before) * 1000 / max(1, loaded.requests) if pid else None
    return single, loaded, cpu_ms


def best(rounds: list[tuple[LoadResult, LoadResult, float | None]]) -> tuple[LoadResult, LoadResult, float | None]:
    """The fastest round of each figure: noise on a shared machine only ever makes a run slower."""
    single = min((r[0] for r in rounds), key=lambda r: r.median_first_token_ms)
    loaded = max((r[1] for r in rounds), key=lambda r: r.per_second)
    cpus = [r[2] for r in rounds if r[2] is not None]
    return single, loaded, min(cpus) if cpus else None


async def _paired(targets: list[tuple[str, str | None]], model: str, requests: int) -> list[float]:
    times: list[list[float]] = [[] for _ in targets]
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": True, "max_tokens": 64}
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                httpx.AsyncClient(headers={"Authorization": f"Bearer {key}"} if key else {}, timeout=30)
            )
            for _, key in targets
        ]
        for i in range(requests + 20):
            order = range(len(targets)) if i % 2 else reversed(range(len(targets)))
            for j in order:
                first = await one_stream(clients[j], targets[j][0], body)
                if i >= 20:  # the first 20 warm up connections and caches
                    times[j].append(first)
    return [statistics.median(t) for t in times]


def paired_first_token(targets: list[tuple[str, str | None]], model: str, requests: int = 400) -> list[float]:
    """Median first-token ms of each (url, key), one request at a time to each in turn, alternating the order.

    Both servers run at once and share every moment of the machine's load, so the difference is the cost
    of what differs between them, not of what else the machine was doing in between.
    """
    return asyncio.run(_paired(targets, model, requests))


def paired_throughput(targets: list[tuple[str, str | None]], model: str, seconds: float = 20) -> list[LoadResult]:
    """Load every (url, key) at concurrency 64 at the same time, for the same `seconds`: the servers share the
    CPU under the same conditions, so each one's share of the throughput shows its cost per request."""
    with ThreadPoolExecutor(len(targets)) as pool:
        runs = [
            pool.submit(
                run_load, url, model, concurrency=64, requests=10**6, max_seconds=seconds, processes=2, api_key=key
            )
            for url, key in targets
        ]
        return [run.result() for run in runs]


def create_key(config: Path) -> str:
    """A user of group `bench` with limits of their own, and an API key, made with the CLI as an admin would."""
    cli = [sys.executable, "-m", "genai_chatbot"]
    add = [*cli, "users", "add", "bench", "--group", "bench", "--config", str(config)]
    subprocess.run(add, check=True, capture_output=True)
    limits = ["--budget-usd", "1e9", "--requests-per-minute", "1000000000", "--tokens-per-minute", "1000000000"]
    subprocess.run([*cli, "users", "set", "bench", *limits, "--config", str(config)], check=True, capture_output=True)
    made = subprocess.run(
        [*cli, "keys", "create", "bench", "--config", str(config)], check=True, capture_output=True, text=True
    )
    return made.stdout.strip()


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
    parser.add_argument("--no-litellm", action="store_true", help="skip the LiteLLM proxy")
    parser.add_argument("--api-keys", action="store_true", help='also run genai-chatbot with auth = "api-keys"')
    parser.add_argument("--rounds", type=int, default=1, help="alternate no-auth and api-keys runs this often")
    parser.add_argument("--governance", action="store_true", help="also run it with usage, budgets and rate limits on")
    parser.add_argument("--before-src", type=Path, help="also run genai-chatbot from this src directory (no auth)")
    args = parser.parse_args()

    upstream_port, ours_port, litellm_port = free_port(), free_port(), free_port()
    upstream = f"http://127.0.0.1:{upstream_port}"
    rows: list[tuple[str, LoadResult, LoadResult, float | None]] = []
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
        variants: list[tuple[str, dict[str, str], str | None]] = [(NO_AUTH, OFF_ENV, None)]
        key = create_key(config) if args.api_keys or args.governance else None
        keys_env = {**OFF_ENV, "GENAI_CHATBOT_AUTH": "api-keys"}
        if args.api_keys:
            variants.append((API_KEYS, keys_env, key))
        if args.governance:
            variants.append((GOVERNED, GOVERNED_ENV, key))
        before_env = {**OFF_ENV, "PYTHONPATH": str(args.before_src.resolve())} if args.before_src else OFF_ENV
        if args.before_src:
            variants.append((BEFORE, before_env, None))
        results: dict[str, list[tuple[LoadResult, LoadResult, float | None]]] = {name: [] for name, _, _ in variants}
        for _ in range(args.rounds if args.api_keys or args.governance else 1):
            for name, env, variant_key in variants:
                with process(command, f"{ours}/healthz", env) as pid:
                    url = f"{ours}/v1/chat/completions"
                    results[name].append(measure(url, "fake/fake-model", args.requests, variant_key, pid))
        rows.extend((name, *best(results[name])) for name, _, _ in variants)
        # Each compared server next to the baseline, both at once, in fresh processes each round (a process
        # has a bias of its own of a few hundredths of a millisecond): (name, label, [(first tokens, loads)]).
        pairs: list[tuple[str, str, list[tuple[list[float], list[LoadResult]]]]] = []
        compared = [(API_KEYS, "with api-keys", keys_env)] if args.api_keys else []
        compared += [(GOVERNED, "governed", GOVERNED_ENV)] if args.governance else []
        for name, label, env in compared:
            paired_rounds = []
            for _ in range(args.rounds):
                other_port = free_port()
                other_command = [*command[:-1], str(other_port)]
                with (
                    process(command, f"{ours}/healthz", before_env),
                    process(other_command, f"http://127.0.0.1:{other_port}/healthz", env),
                ):
                    targets = [
                        (f"{ours}/v1/chat/completions", None),
                        (f"http://127.0.0.1:{other_port}/v1/chat/completions", key),
                    ]
                    first = paired_first_token(targets, "fake/fake-model", requests=PAIRED_REQUESTS)
                    paired_rounds.append((first, paired_throughput(targets, "fake/fake-model")))
            pairs.append((name, label, paired_rounds))

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
    alternating = args.api_keys or args.governance
    rounds = f"; best of {args.rounds} alternating rounds" if alternating and args.rounds > 1 else ""
    print(f"streamed chat completions, 20 chunks each; c=64 load: {args.requests} requests max, 60 s max{rounds}")
    print(f"{'through':<16} {'first token c=1':>16} {'added':>9} {'req/s c=64':>11} {'CPU/req c=64':>13} {'errors':>7}")
    for name, single, loaded, cpu_ms in rows:
        added = single.median_first_token_ms - base_first
        cpu = f"{cpu_ms:>10.2f} ms" if cpu_ms is not None else f"{'-':>13}"
        print(
            f"{name:<16} {single.median_first_token_ms:>13.2f} ms {added:>6.2f} ms "
            f"{loaded.per_second:>11.0f} {cpu} {loaded.errors + single.errors:>7}"
        )

    by_name = {name: (single, loaded, cpu_ms) for name, single, loaded, cpu_ms in rows}
    # Against the other checkout when one is given: the cost of the whole change, not of one feature alone.
    baseline = BEFORE if args.before_src else NO_AUTH
    base_label = "before" if args.before_src else "without auth and governance"
    plain_single, plain_loaded, plain_cpu = by_name[baseline]
    plain_added = plain_single.median_first_token_ms - base_first
    for name, label, paired_rounds in pairs:
        single, loaded, cpu_ms = by_name[name]
        change = (loaded.per_second / plain_loaded.per_second - 1) * 100 if plain_loaded.per_second else 0.0
        added = single.median_first_token_ms - plain_single.median_first_token_ms
        cpu_change = (cpu_ms / plain_cpu - 1) * 100 if cpu_ms and plain_cpu else 0.0
        print(
            f"{label} vs {base_label}: req/s c=64 {change:+.1f} %, first token {added:+.2f} ms, "
            f"server CPU per request {cpu_change:+.1f} %"
        )
        firsts = [first[1] - first[0] for first, _ in paired_rounds]
        loads = [(other.per_second / plain.per_second - 1) * 100 for _, (plain, other) in paired_rounds]
        errors = sum(plain.errors + other.errors for _, (plain, other) in paired_rounds)
        first_share = statistics.median(firsts) / plain_added * 100 if plain_added > 0 else 0.0
        print(
            f"  paired, both servers at once, fresh processes each of {len(paired_rounds)} rounds, "
            f"{PAIRED_REQUESTS} alternating requests each at c=1: first token "
            f"{', '.join(f'{f:+.3f}' for f in firsts)} ms; median {statistics.median(firsts):+.3f} ms = "
            f"{first_share:+.1f} % of the {plain_added:.2f} ms {base_label} adds"
        )
        print(
            f"  paired, both servers loaded at once at c=64: req/s {', '.join(f'{r:+.1f}' for r in loads)} %; "
            f"median {statistics.median(loads):+.1f} %, errors {errors}"
        )


if __name__ == "__main__":
    main()
