"""bench/gc_pauses.py, run as a person runs it, with a short load: its probe reads a real served process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "gc_pauses.py"


@pytest.mark.slow  # starts a fake upstream and `genai-chatbot serve` as subprocesses, under load
def test_the_collector_of_a_served_process_is_measured_frozen_and_rarely_collecting() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH), "--requests", "1000", "--rounds", "1"],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        cwd=BENCH.parent,
    )
    assert result.returncode == 0, result.stderr
    [row] = [line for line in result.stdout.splitlines() if line.startswith("this checkout")]
    cells = row.removeprefix("this checkout").split()
    frozen, young_collections = int(cells[2]), int(cells[3])
    assert frozen > 10_000, row  # the start-up, frozen by `serve`
    # 1,000 streamed requests at c=64: CPython's 700 collected young objects about 200 times, 10,000 a few.
    assert young_collections < 40, row
