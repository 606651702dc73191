"""Servers the benchmarks start: a free port, and a process run until `ready_url` answers, then stopped.

Every benchmark starts its servers (ours, a fake upstream, LiteLLM) as real processes on 127.0.0.1; this
is the one place that starts them, waits for them (bounded) and stops them, with their output kept for the
error when one does not come up.
"""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def running(
    command: list[str],
    ready_url: str,
    env: Mapping[str, str] | None = None,
    *,
    base_env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    wait: float = 60,
    poll: float = 0.05,
) -> Iterator[int]:
    """Run `command` until the block ends, once `ready_url` answers below 500 (within `wait` s); yields its pid.

    `env` is added to `base_env` (default: this process's environment). A process that exits or does not
    answer in time raises `RuntimeError` with the end of its output.
    """
    environment = {**(os.environ if base_env is None else base_env), **(env or {})}
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(command, env=environment, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
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
                time.sleep(poll)
            yield proc.pid
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
