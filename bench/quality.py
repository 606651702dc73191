"""Answer quality of the embedded model under each sampling setting: the evidence for its defaults.

A fixed set of short questions with checkable answers (capitals, arithmetic, dates, one-line facts) is
asked through the real API: for each setting a `genai-chatbot serve` process starts on 127.0.0.1 with that
setting as the model's default sampling (`local.sampling.*`), and every question is posted to
`/v1/chat/completions` with no sampling parameter at all, once per seed, exactly as a client using the
defaults would. An answer counts as right when its text matches the question's pattern. It prints one
Markdown table: the score per setting, and how often "What is the capital of France?" got "Paris".

Greedy settings are run once (their answers do not depend on the seed); sampled ones once per seed. The
France question is then asked on --france-seeds further seeds: "Paris" on 9 of 10 is the bar. Last, four
open requests get 128 tokens each (per seed), and "looping" counts the replies that repeat a run of three
words three times or more: the failure a repeat penalty is for.

Every loop is bounded: (questions x seeds + France tries) x settings requests, each capped at
--max-tokens and a timeout.

Usage: python bench/quality.py [--seeds 3] [--max-tokens 48] [--settings all|default] [--model-path GGUF]
                               [--show-wrong]
       python bench/quality.py --smoke    (2 questions, 1 seed, the server's own defaults: seconds)
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from serving import free_port, running

START_TIMEOUT = 60.0
REQUEST_TIMEOUT = 120.0


@dataclass(frozen=True)
class Question:
    text: str
    answer: str  # a regular expression, searched case-insensitively in the reply

    def is_right(self, reply: str) -> bool:
        return re.search(self.answer, reply, re.IGNORECASE) is not None


# The first two are the smoke run's; the first is the README's own first question.
QUESTIONS = [
    Question("What is the capital of France?", r"\bParis\b"),
    Question("What is 12 + 7?", r"\b19\b"),
    Question("What is the capital of Japan?", r"\bTokyo\b"),
    Question("What is the capital of Italy?", r"\bRome\b"),
    Question("What is the capital of Germany?", r"\bBerlin\b"),
    Question("What is the capital of Spain?", r"\bMadrid\b"),
    Question("What is the capital of the United Kingdom?", r"\bLondon\b"),
    Question("What is the capital of Egypt?", r"\bCairo\b"),
    Question("What is 5 times 6?", r"\b30\b"),
    Question("What is 100 minus 45?", r"\b55\b"),
    Question("What is 2 + 2?", r"\b(4|four)\b"),
    Question("What is 9 + 8?", r"\b17\b"),
    Question("In what year did World War II end?", r"\b1945\b"),
    Question("In what year did humans first land on the Moon?", r"\b1969\b"),
    Question("How many days are in a week?", r"\b(7|seven)\b"),
    Question("How many months are in a year?", r"\b(12|twelve)\b"),
    Question("How many days are in a leap year?", r"\b366\b"),
    Question("What is the largest planet in our solar system?", r"\bJupiter\b"),
    Question("What gas do plants take in from the air for photosynthesis?", r"carbon dioxide|\bCO2\b|CO₂"),
    Question("What is the chemical symbol for gold?", r"\bAu\b"),
    Question("Who wrote Romeo and Juliet?", r"Shakespeare"),
    Question("What is the opposite of hot?", r"\bcold\b"),
    Question("What color is the sky on a clear day?", r"\bblue\b"),
    Question("At what temperature in degrees Celsius does water freeze?", r"(?<![\d.])0(?![\d.])|\bzero\b"),
]

# Open requests whose longer replies show whether a setting makes the model loop ("Deutschland, Deutschland, …").
OPEN_PROMPTS = [
    "Describe Paris in a few sentences.",
    "Tell me about dogs.",
    "Explain why the sky is blue.",
    "Write a short story about a cat.",
]
OPEN_MAX_TOKENS = 128


def loops(reply: str) -> bool:
    """Whether the reply repeats itself: some run of three words occurs three times or more."""
    words = re.findall(r"\w+", reply.lower())
    runs = [tuple(words[i : i + 3]) for i in range(len(words) - 2)]
    return any(runs.count(run) >= 3 for run in set(runs))


# Each setting is the model's default sampling in the server under test (None: the server's own default).
SETTINGS: dict[str, dict[str, float | None]] = {
    "llama.cpp defaults (before): temperature 0.8, top-p 0.95": {
        "temperature": 0.8,
        "top_p": 0.95,
        "top_k": 40,
        "repeat_penalty": 1.0,
    },
    "model card: temperature 0.2, top-p 0.9": {"temperature": 0.2, "top_p": 0.9, "top_k": 40, "repeat_penalty": 1.0},
    "temperature 0.2, top-p 0.9, repeat penalty 1.1": {
        "temperature": 0.2,
        "top_p": 0.9,
        "top_k": 40,
        "repeat_penalty": 1.1,
    },
    "greedy": {"temperature": 0.0, "repeat_penalty": 1.0},
    "greedy, repeat penalty 1.1": {"temperature": 0.0, "repeat_penalty": 1.1},
    "greedy, repeat penalty 1.3": {"temperature": 0.0, "repeat_penalty": 1.3},
    "server defaults (no override)": {},
}
DEFAULT_SETTING = "server defaults (no override)"


@contextmanager
def server(
    sampling: dict[str, float | None], threads: int, workdir: Path, model_path: Path | None = None
) -> Iterator[httpx.Client]:
    """A `genai-chatbot serve` on 127.0.0.1 whose local model defaults to `sampling`; stopped on exit.

    It runs in `workdir` with no GENAI_CHATBOT_* variable of ours, so no developer setting leaks in.
    """
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GENAI_CHATBOT_")}
    env |= {"GENAI_CHATBOT_DATA_DIR": str(workdir / "data"), "GENAI_CHATBOT_LOCAL__THREADS": str(threads)}
    env |= {f"GENAI_CHATBOT_LOCAL__SAMPLING__{k.upper()}": str(v) for k, v in sampling.items() if v is not None}
    if model_path is not None:
        env["GENAI_CHATBOT_LOCAL__MODEL_PATH"] = str(model_path.resolve())
    command = [sys.executable, "-m", "genai_chatbot", "serve", "--host", "127.0.0.1", "--port", str(port)]
    url = f"http://127.0.0.1:{port}"
    with (
        running(command, f"{url}/healthz", base_env=env, cwd=workdir, wait=START_TIMEOUT),
        httpx.Client(base_url=url, timeout=REQUEST_TIMEOUT) as client,
    ):
        yield client


def local_model(client: httpx.Client) -> tuple[str, dict[str, float | None]]:
    """The local model's id and its defaults as GET /api/models reports them: proof the setting arrived."""
    body = client.get("/api/models").raise_for_status().json()
    models = body["models"] if isinstance(body, dict) else body
    model = next(m for m in models if m["provider"] == "local")
    if not model["available"]:
        raise RuntimeError(f"{model['id']} is unavailable: {model['unavailable_reason']}")
    return str(model["id"]), dict(model.get("defaults") or {})


def describe(defaults: dict[str, float | None]) -> str:
    shown = {"temperature": "t", "top_p": "top-p", "top_k": "top-k", "repeat_penalty": "rp"}
    return " ".join(f"{short} {defaults[k]}" for k, short in shown.items() if defaults.get(k) is not None) or "-"


def ask(client: httpx.Client, model: str, question: Question, seed: int, max_tokens: int) -> str:
    """The reply to `question` with the server's default sampling: only the seed and the budget are sent."""
    body = {
        "model": model,
        "messages": [{"role": "user", "content": question.text}],
        "seed": seed,
        "max_tokens": max_tokens,
    }
    response = client.post("/v1/chat/completions", json=body)
    response.raise_for_status()
    return str(response.json()["choices"][0]["message"]["content"] or "")


@dataclass
class Score:
    setting: str
    defaults: str
    right: int
    asked: int
    seeds: str
    paris: int
    paris_tries: int
    looping: int
    open_asked: int
    seconds: float


def run_setting(
    name: str, questions: list[Question], prompts: list[str], seeds: int, paris_seeds: int, args: argparse.Namespace
) -> Score:
    """Score one setting: every question once per seed (once in all when greedy), then France per seed.

    Greedy decoding (temperature 0) does not draw from the seed, so more seeds would repeat the same
    answers at full cost; the France question still runs on every seed, which shows exactly that.
    """
    started = time.perf_counter()
    right = paris = 0
    with (
        tempfile.TemporaryDirectory(prefix="genai-quality-") as tmp,
        server(SETTINGS[name], args.threads, Path(tmp), args.model_path) as client,
    ):
        model, defaults = local_model(client)
        greedy = defaults.get("temperature") == 0
        run_seeds = [1] if greedy else list(range(1, seeds + 1))
        for seed in run_seeds:
            for question in questions:
                reply = ask(client, model, question, seed, args.max_tokens)
                right += question.is_right(reply)
                if args.show_wrong and not question.is_right(reply):
                    print(f"  wrong [{name}, seed {seed}] {question.text} -> {reply.strip()[:120]!r}", file=sys.stderr)
        for seed in range(1, paris_seeds + 1):
            paris += QUESTIONS[0].is_right(ask(client, model, QUESTIONS[0], 100 + seed, args.max_tokens))
        open_replies = [ask(client, model, Question(p, ""), s, OPEN_MAX_TOKENS) for s in run_seeds for p in prompts]
        looping = sum(loops(reply) for reply in open_replies)
    return Score(
        setting=name,
        defaults=describe(defaults),
        right=right,
        asked=len(questions) * len(run_seeds),
        seeds="1 (greedy)" if greedy else str(len(run_seeds)),
        paris=paris,
        paris_tries=paris_seeds,
        looping=looping,
        open_asked=len(open_replies),
        seconds=time.perf_counter() - started,
    )


def table(scores: list[Score]) -> str:
    lines = [
        "| setting (model default) | reported by /api/models | seeds | right | score | France → Paris | looping "
        "| time |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for s in scores:
        lines.append(
            f"| {s.setting} | {s.defaults} | {s.seeds} | {s.right}/{s.asked} | {100 * s.right / s.asked:.0f}% "
            f"| {s.paris}/{s.paris_tries} | {s.looping}/{s.open_asked} | {s.seconds:.0f} s |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--smoke", action="store_true", help="2 questions, 1 seed, the server's defaults only.")
    parser.add_argument("--seeds", type=int, default=3, help="Seeds per question when sampling (default 3).")
    parser.add_argument("--france-seeds", type=int, default=10, help="Fresh tries of the France question (10).")
    parser.add_argument("--max-tokens", type=int, default=48, help="Reply budget per question (default 48).")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="llama.cpp threads of the server (default 1: steadiest on a busy machine).",
    )
    parser.add_argument(
        "--settings", choices=["all", "default"], default="all", help="Every setting, or the server's defaults."
    )
    parser.add_argument("--model-path", type=Path, help="Measure this GGUF instead of the embedded model.")
    parser.add_argument("--show-wrong", action="store_true", help="Print each wrong answer on stderr.")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind, so that each server is stopped too
    questions, prompts, seeds, paris_seeds = QUESTIONS, OPEN_PROMPTS, args.seeds, args.france_seeds
    names = [n for n in SETTINGS if n != DEFAULT_SETTING] if args.settings == "all" else [DEFAULT_SETTING]
    if args.smoke:
        questions, prompts, seeds, paris_seeds, names = QUESTIONS[:2], [], 1, 1, [DEFAULT_SETTING]
    model = args.model_path.name if args.model_path else "the embedded SmolLM2-135M-Instruct"
    print(f"{len(questions)} questions, max_tokens {args.max_tokens}, model {model}", flush=True)
    scores = []
    for name in names:
        scores.append(run_setting(name, questions, prompts, seeds, paris_seeds, args))
        print(table(scores[-1:]).splitlines()[-1], file=sys.stderr, flush=True)  # progress: the row so far
    print(table(scores))
    return 0


if __name__ == "__main__":
    sys.exit(main())
