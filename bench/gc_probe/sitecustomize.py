"""Loaded by the servers `bench/gc_pauses.py` starts (this directory is put on their PYTHONPATH): counts the
garbage collector's collections and the CPU time they took per generation (the thread's CPU time, which a
busy machine's preemptions do not inflate as they do wall time), and writes them to `$GC_PROBE_FILE` as
JSON every 0.1 s, for the bench to read before and after its load."""

from __future__ import annotations

import gc
import json
import os
import threading
import time

_path = os.environ.get("GC_PROBE_FILE")
_counts = [0, 0, 0]
_seconds = [0.0, 0.0, 0.0]
_started = [0.0]


def _timed(phase: str, info: dict[str, int]) -> None:
    if phase == "start":
        _started[0] = time.thread_time()
        return
    generation = info["generation"]
    _counts[generation] += 1
    _seconds[generation] += time.thread_time() - _started[0]


def _write() -> None:
    assert _path is not None
    snapshot = {"counts": _counts, "seconds": _seconds, "frozen": gc.get_freeze_count()}
    with open(_path + ".tmp", "w") as out:
        json.dump(snapshot, out)
    os.replace(_path + ".tmp", _path)


def _keep_writing() -> None:
    while True:
        time.sleep(0.1)
        _write()


if _path:
    gc.callbacks.append(_timed)
    threading.Thread(target=_keep_writing, daemon=True).start()
