"""The app as `genai-chatbot serve` runs it: in its own process, or in each process of `--workers N`.

With `--workers N`, uvicorn starts N processes that accept on one shared socket; each imports
`worker_app` and builds its own app, service and store connections from the settings (the parent passes
its command-line choices on in the environment, so every worker reads the same settings). Each runs the
same lifespan (store opened and checked, authenticator built), the same `Host` check and the same auth.

At SIGTERM or Ctrl+C each process first ends its turns in flight, before uvicorn's graceful shutdown:
every streamed answer is stored `cancelled` with its text and its `end` event is sent, instead of being
cut off when uvicorn's timeout cancels the response.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from fastapi import FastAPI

from genai_chatbot.config import Settings, load_settings

_EXIT_SIGNALS = (signal.SIGINT, signal.SIGTERM)
SignalHandler = Callable[[int, FrameType | None], None]


def configure_logging(settings: Settings) -> None:
    """Our loggers at `log_level`, in uvicorn's layout (uvicorn configures only its own loggers)."""
    logging.basicConfig(level=settings.log_level.upper(), format="%(levelname)s:     %(name)s: %(message)s")


def serving_app(app: FastAPI) -> FastAPI:
    """`app`, after making SIGTERM and SIGINT end its turns before the server's own handler runs.

    Called by uvicorn as the app factory, on the main thread, after uvicorn installed its signal handlers:
    those are wrapped, not replaced (and uvicorn restores what it found when it stops).
    """
    app.state.tune_garbage_collection = True  # a process that serves this one app (api/garbage_collection.py)
    if threading.current_thread() is not threading.main_thread():
        return app  # signals reach the main thread only; a server run on another thread is stopped by its owner
    for sig in _EXIT_SIGNALS:
        previous = signal.getsignal(sig)
        if callable(previous):
            signal.signal(sig, _stopping_turns_first(app, previous))
    return app


def _stopping_turns_first(app: FastAPI, previous: Callable[[int, FrameType | None], Any]) -> SignalHandler:
    def handler(sig: int, frame: FrameType | None) -> None:
        service = getattr(app.state, "service", None)
        if service is not None:  # None until the lifespan built it
            service.stop_turns()
        previous(sig, frame)

    return handler


def worker_app() -> FastAPI:
    """The app of one `serve --workers N` process: settings from the file and environment the parent set."""
    from genai_chatbot.api.app import create_app

    settings = load_settings()
    configure_logging(settings)
    return serving_app(create_app(settings))
