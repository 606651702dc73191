"""The API documentation at `/docs`: Swagger UI served from the package, so it works offline.

FastAPI's own `/docs` loads Swagger UI from a CDN and starts it with an inline script, which the page's
Content-Security-Policy would forbid. This page loads the copy built into `web/static/vendor/swagger-ui/`
(`make web` rebuilds it from npm) and starts it from `web/static/docs-init.js`, under the same security
headers as the chat page. `/openapi.json` stays FastAPI's.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

from genai_chatbot.api.web_routes import PAGE_HEADERS

DOCS_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>genai-chatbot API</title>
  <link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
  <link rel="stylesheet" href="/static/vendor/swagger-ui/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui" data-openapi-url="/openapi.json"></div>
  <script src="/static/vendor/swagger-ui/swagger-ui-bundle.js"></script>
  <script src="/static/docs-init.js"></script>
</body>
</html>
"""


def install_docs(app: FastAPI) -> None:
    """Serve `/docs` on `app` (create the app with `docs_url=None, redoc_url=None`)."""

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(DOCS_PAGE, headers=PAGE_HEADERS)
