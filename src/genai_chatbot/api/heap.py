"""The server's start-up heap, kept out of the garbage collector's full collections.

A served process holds several hundred thousand long-lived objects once started (FastAPI and pydantic
models, the providers' SDKs, the routes) and allocates a few hundred short-lived ones per request. CPython's
full collection traverses all of them: measured on `bench/gateway.py`'s load, a full collection every 600
to 700 requests took 35 to 40 ms, a pause for every stream in flight and about a tenth of the server's CPU.
`gc.freeze()` moves what exists at the end of the start-up to a generation the collector never visits; the
objects of requests are collected as before. It is done for served processes only (`serve`, each worker
of `serve --workers`): a process that builds many apps, as the tests do, would keep each one's garbage.
"""

from __future__ import annotations

import gc


def freeze_startup_heap() -> None:
    """Collect the start-up's garbage, then exempt what survives from every later collection."""
    gc.collect()
    gc.freeze()
