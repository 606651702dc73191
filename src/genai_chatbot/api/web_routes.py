"""The chat page: `index.html` at `/` and at every deep link `/chat/{session_id}`, its assets under `/static`.

Every asset ships inside the package (the vendored libraries are built into `web/static/vendor/`), so the
page makes no request to any other host and works offline. The page is served with a Content-Security-Policy
that allows only our own scripts and styles: even if the Markdown sanitiser missed something, an inline
script or event handler in a model's answer would not run, and nothing would be fetched from elsewhere.
The one exception is sign-in with `auth = "oidc"`: `connect-src` then also allows the identity provider's
token endpoint, and only its origin (see `api/auth_routes.py` for why the page redeems the code itself).
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.resources import as_file, files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from genai_chatbot.api.auth_routes import token_endpoint_origin

WEB_DIR = files("genai_chatbot") / "web"


def content_security_policy(connect_src: Sequence[str] = ()) -> str:
    """The page's CSP; `connect_src` adds origins the page may `fetch` (with OIDC: the token endpoint's)."""
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            " ".join(["connect-src 'self'", *connect_src]),
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


CONTENT_SECURITY_POLICY = content_security_policy()
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

    async def page_response(request: Request) -> FileResponse:
        origin = await token_endpoint_origin(request.app)
        headers = (
            PAGE_HEADERS
            if origin is None
            else {**PAGE_HEADERS, "Content-Security-Policy": content_security_policy([origin])}
        )
        return FileResponse(index, media_type="text/html", headers=headers)

    @app.get("/", include_in_schema=False)
    async def page(request: Request) -> FileResponse:
        return await page_response(request)

    @app.get("/chat/{session_id}", include_in_schema=False)
    async def chat_page(request: Request, session_id: str) -> FileResponse:
        """A deep link to a session: the same page, which opens the session named in its address."""
        return await page_response(request)

    @app.get("/auth/callback", include_in_schema=False)
    async def sign_in_callback(request: Request) -> FileResponse:
        """Where the identity provider sends the browser back with a code (the redirect URI to register)."""
        return await page_response(request)
