"""A local stand-in for the Hugging Face Hub: the routes `doctor` and `pull` use, behind one good token.

`/api/whoami-v2` answers 200 for `GOOD_TOKEN` and 401 otherwise; the gated repository's download route
needs the token too and redirects to a 'CDN' path like the Hub does, serving the embedded GGUF.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from genai_chatbot.models.providers.local import embedded_gguf_path

GOOD_TOKEN = "hf_accepted_terms"
GATED = "/org/gated-GGUF/resolve/main/model.Q4.gguf"


class FakeHub(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        authorised = self.headers.get("Authorization") == f"Bearer {GOOD_TOKEN}"
        if self.path == "/api/whoami-v2":
            body = {"name": "alice"} if authorised else {"error": "Invalid credentials"}
            self._answer(200 if authorised else 401, json.dumps(body).encode())
        elif self.path == GATED and not authorised:
            self._answer(401, b'{"error": "Access to model org/gated-GGUF is restricted."}')
        elif self.path == GATED:
            self.send_response(302)
            self.send_header("Location", "/cdn/model.gguf")
            self.send_header("content-length", "0")
            self.end_headers()
        elif self.path == "/cdn/model.gguf":
            gguf = embedded_gguf_path()
            assert gguf is not None
            self._answer(200, gguf.read_bytes())
        else:
            self._answer(404, b'{"error": "Entry not found"}')

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The fake Hub's URL, with HF_ENDPOINT pointing at it."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeHub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("HF_ENDPOINT", url)
    yield url
    server.shutdown()
    server.server_close()
