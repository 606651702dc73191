"""bench/quality.py, run as a person runs it, in its seconds-long smoke mode against a real server."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

QUALITY = Path(__file__).resolve().parents[1] / "bench" / "quality.py"


@pytest.mark.slow  # the embedded model, in a served subprocess
def test_quality_smoke_run_prints_its_table_within_bounds() -> None:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, str(QUALITY), "--smoke"], capture_output=True, text=True, timeout=180, check=False
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("2 questions, max_tokens"), result.stdout
    assert lines[1].startswith("| setting (model default) | reported by /api/models |"), result.stdout
    [row] = [line for line in lines if line.startswith("| server defaults (no override)")]
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    # The server reported the greedy defaults, ran the 2 questions once, and said Paris to France.
    assert cells[1:3] == ["t 0.0 rp 1.1", "1 (greedy)"], row
    assert cells[3].endswith("/2") and cells[5] == "1/1", row
    assert elapsed < 120, f"the smoke run took {elapsed:.0f} s"
