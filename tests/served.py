"""A `socketserver` server run on a thread for the length of a `with` block (fake upstreams, proxies)."""

from __future__ import annotations

import socketserver
import threading


class Served:
    """`with Served(server):` serves on a daemon thread, then shuts the server down and closes its socket."""

    def __init__(self, server: socketserver.BaseServer) -> None:
        self.server = server
        self._thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)

    def __enter__(self) -> Served:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(10)
