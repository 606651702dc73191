"""The FastAPI application: `create_app(settings)` wires the service, the routes and the web page."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from genai_chatbot import __version__
from genai_chatbot.api import (
    account_routes,
    admin_routes,
    auth_routes,
    embeddings_routes,
    governance_routes,
    message_routes,
    metrics_routes,
    openai_routes,
    session_routes,
    usage_routes,
)
from genai_chatbot.api.docs_routes import install_docs
from genai_chatbot.api.errors import install_error_handlers
from genai_chatbot.api.garbage_collection import tune_garbage_collection
from genai_chatbot.api.middleware import install_middleware
from genai_chatbot.api.web_routes import install_web_page
from genai_chatbot.auth.factory import auth_mode, build_authenticator, build_user_store
from genai_chatbot.chat.service import ChatService, build_chat_service
from genai_chatbot.config import ConfigError, Settings
from genai_chatbot.governance.audit import AuditTrail
from genai_chatbot.governance.build import open_governor
from genai_chatbot.governance.metrics import Metrics, metrics_of
from genai_chatbot.governance.prices import PriceTable
from genai_chatbot.secrets import install_log_redaction
from genai_chatbot.stores import open_store, select_store


def check_auth_settings(settings: Settings) -> None:
    """Refuse, with the fix, authentication settings that cannot work, before the server starts."""
    if auth_mode(settings) != "oidc":
        return
    try:
        from genai_chatbot.auth.oidc import validate_oidc_settings
    except ImportError:
        raise ConfigError('auth = "oidc" needs PyJWT: pip install "genai-chatbot[oidc]".') from None
    validate_oidc_settings(settings.oidc)


def create_app(settings: Settings, service: ChatService | None = None, close_service: bool | None = None) -> FastAPI:
    """The app for these settings.

    `service` replaces the one built from settings; it is closed at shutdown when `close_service` says so
    (by default only a service the app built itself). Providers hold connection pools bound to the
    server's event loop, so they are best closed there.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = service is None if close_service is None else close_service
        chat: ChatService = service or build_chat_service(settings, metrics=metrics)
        app.state.service = chat
        install_log_redaction(chat)
        # Read the keys once at start (`read_keys` says why), in the background: without holding up /healthz
        # on a slow secret store.
        first_read = asyncio.create_task(chat.read_keys())
        # Users and keys are kept whatever `auth` is, so an admin can prepare them before turning keys on.
        app.state.users = build_user_store(settings)
        # Run-time group policies and the audit log, in the same database (governance/store.py).
        app.state.governance = select_store(settings).governance_store()
        app.state.audit = AuditTrail(app.state.governance)
        app.state.usage = select_store(settings).usage_store()  # what GET /api/usage reads
        app.state.authenticator = None  # never serves: the app does not start if the next line raises
        try:
            # A database that cannot be reached, or whose schema is newer than this code, stops the start.
            await chat.open()
            await open_store(app.state.users)
            await open_store(app.state.governance)
            await open_store(app.state.usage)
            await open_governor(app.state.service.governor)
            app.state.authenticator = build_authenticator(settings, app.state.users)
            if getattr(app.state, "tune_garbage_collection", False):  # set by `serve` (cli/serve_app.py)
                tune_garbage_collection()
            yield
        finally:
            first_read.cancel()
            if app.state.authenticator is not None:
                await app.state.authenticator.aclose()
            await app.state.users.close()
            await app.state.governance.close()
            await app.state.usage.close()
            if owned:
                await chat.aclose()

    app = FastAPI(
        title="genai-chatbot",
        version=__version__,
        description="One chatbot over many model providers. The OpenAI-compatible API is under /v1.",
        lifespan=lifespan,
        docs_url=None,  # served by install_docs, from the package rather than a CDN
        redoc_url=None,
    )
    check_auth_settings(settings)
    app.state.settings = settings
    # The service's metrics when it was given with them; else, when metrics are on, the ones it is built with.
    metrics: Metrics | None = metrics_of(service.governor) if service is not None else None
    if metrics is None and settings.metrics:
        metrics = Metrics(pricing=PriceTable(settings.prices).cost)  # feeds genai_chatbot_cost_usd_total
    app.state.metrics = metrics
    app.state.authenticator = None  # set by the lifespan
    install_error_handlers(app)
    app.include_router(auth_routes.router)
    app.include_router(openai_routes.router)
    app.include_router(embeddings_routes.router)
    app.include_router(session_routes.router)
    app.include_router(message_routes.router)
    app.include_router(account_routes.router)
    app.include_router(admin_routes.router)
    app.include_router(governance_routes.router)
    app.include_router(metrics_routes.router)
    app.include_router(usage_routes.router)

    @app.get("/healthz", tags=["Operations"])
    async def healthz() -> JSONResponse:
        """Liveness: answers as soon as the server accepts requests, without loading any model."""
        return JSONResponse({"status": "ok", "version": __version__})

    install_web_page(app)
    install_docs(app)
    install_middleware(app, settings, metrics)  # keep it the last add_middleware: its layers must stay outermost

    return app
