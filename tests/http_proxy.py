"""A real HTTP proxy on 127.0.0.1 for tests: forwards absolute-form requests and tunnels CONNECT, counting both.

It is what `HTTP_PROXY`/`HTTPS_PROXY` point at in a corporate network, cut to what clients send: a
request line `GET http://host:port/path HTTP/1.1` (plain HTTP through the proxy), forwarded upstream in
origin form with `Connection: close` and relayed back until the upstream closes; or `CONNECT host:port`
(HTTPS through the proxy), answered `200` and then piped both ways. Every request is recorded with the
`Proxy-Authorization` it carried, so a test can assert that a call went through the proxy at all.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

from served import Served


@dataclass(frozen=True)
class Proxied:
    """One request the proxy saw: its method, its target (a URL, or `host:port` for CONNECT), its credentials."""

    method: str
    target: str
    proxy_authorization: str | None


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
    for side in (sink, source):
        with contextlib.suppress(OSError):
            side.shutdown(socket.SHUT_RDWR)


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        request_line = self.rfile.readline(65537).decode("latin-1").rstrip("\r\n")
        if not request_line:
            return
        method, target, _version = request_line.split(" ", 2)
        headers: list[tuple[str, str]] = []
        while (line := self.rfile.readline(65537).decode("latin-1").rstrip("\r\n")) != "":
            name, _, value = line.partition(":")
            headers.append((name.strip(), value.strip()))
        lowered = {name.lower(): value for name, value in headers}
        self.server.seen.append(Proxied(method, target, lowered.get("proxy-authorization")))
        if method == "CONNECT":
            host, _, port = target.rpartition(":")
            with socket.create_connection((host, int(port))) as upstream:
                self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                self.wfile.flush()
                back = threading.Thread(target=_pipe, args=(upstream, self.connection), daemon=True)
                back.start()
                _pipe(self.connection, upstream)
                back.join(10)
            return
        url = urlsplit(target)
        body = self.rfile.read(int(lowered.get("content-length") or 0))
        kept = [
            (n, v) for n, v in headers if n.lower() not in ("proxy-authorization", "proxy-connection", "connection")
        ]
        head = f"{method} {url.path or '/'}{'?' + url.query if url.query else ''} HTTP/1.1\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in kept) + "Connection: close\r\n\r\n"
        with socket.create_connection((url.hostname or "", url.port or 80)) as upstream:
            upstream.sendall(head.encode("latin-1") + body)
            _pipe(upstream, self.connection)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.seen: list[Proxied] = []


class HTTPProxy:
    """`with HTTPProxy() as proxy:` — `proxy.url` to point clients at, `proxy.seen` what went through it."""

    def __init__(self) -> None:
        self._server = _Server()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._served = Served(self._server)

    @property
    def seen(self) -> list[Proxied]:
        return self._server.seen

    def __enter__(self) -> HTTPProxy:
        self._served.__enter__()
        return self

    def __exit__(self, *_: object) -> None:
        self._served.__exit__()
