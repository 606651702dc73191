"""`GET /metrics`: the Prometheus metrics of governance/metrics.py, for a scraper.

With authentication on, it takes the `metrics_token` setting's bearer token (what a Prometheus scrape
config sends as `authorization: {credentials: ...}`) or an admin's key or token: 401 without a valid one,
403 for a non-admin. With `auth = "none"` it is open, like the rest of a server that listens on loopback only.
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.exceptions import HTTPException

from genai_chatbot.api.deps import current_principal
from genai_chatbot.auth.principal import PermissionDeniedError
from genai_chatbot.config import Settings
from genai_chatbot.governance.metrics import Metrics

router = APIRouter(tags=["Operations"])


@router.get("/metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    """Prometheus metrics in the text format: requests, errors, time to first token, tokens, cost, in flight."""
    served: Metrics | None = request.app.state.metrics
    if served is None:
        raise HTTPException(404, "Metrics are off on this server (metrics = false); set metrics = true to serve them.")
    if request.app.state.authenticator is not None and not _has_metrics_token(request):
        caller = await current_principal(request)  # 401 without a valid key or token
        if not caller.is_admin:
            raise PermissionDeniedError(
                f"Reading /metrics needs an admin key or the metrics_token; {caller.user_id!r} has role "
                f"{caller.role!r}. An admin sets metrics_token in the settings for the scraper to send."
            )
    return Response(served.exposition(), media_type=CONTENT_TYPE_LATEST)


def _has_metrics_token(request: Request) -> bool:
    """Whether the bearer token is the `metrics_token` setting's (compared in constant time)."""
    settings: Settings = request.app.state.settings
    if not settings.metrics_token:
        return False
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(token.strip().encode(), settings.metrics_token.encode())
