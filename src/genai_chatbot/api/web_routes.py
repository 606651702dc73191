"""The chat page: `index.html` at `/` and at every deep link `/chat/{session_id}`, its assets under `/static`.

Every asset ships inside the package (the vendored libraries are built into `web/static/vendor/`), so the
page makes no request to any other host and works offline. The page is served with a Content-Security-Policy
that allows only our own scripts and styles: even if the Markdown sanitiser missed something, an inline
script or event handler in a model's answer would not run, and nothing would be fetched from elsewhere.
"""

from __future__ import annotations

from importlib.resources import as_file, files
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

WEB_DIR = files("genai_chatbot") / "web"

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def _web_path() -> Path:
    # The package is installed as files (pip, editable or not), so this path stays valid after the `with`.
    with as_file(WEB_DIR) as path:
        return Path(path)


def install_web_page(app: FastAPI) -> None:
    """Serve the chat page and its static assets on `app`."""
    web = _web_path()
    index = web / "index.html"
    app.mount("/static", StaticFiles(directory=web / "static"), name="static")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(index, media_type="text/html", headers=PAGE_HEADERS)

    @app.get("/chat/{session_id}", include_in_schema=False)
    async def chat_page(session_id: str) -> FileResponse:
        """A deep link to a session: the same page, which opens the session named in its address."""
        return FileResponse(index, media_type="text/html", headers=PAGE_HEADERS)
