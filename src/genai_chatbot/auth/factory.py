"""From settings to the parts of authentication: the user store and the authenticator for `auth`.

`users` (the deprecated token map) set while `auth` is `none` is read as `api-keys`: a configuration that
used to require tokens must never start without them. A warning says to set `auth = "api-keys"`.
"""

from __future__ import annotations

import logging

from genai_chatbot.auth.principal import Authenticator
from genai_chatbot.auth.users import UserStore
from genai_chatbot.config import AuthMode, Settings

logger = logging.getLogger(__name__)


def auth_mode(settings: Settings) -> AuthMode:
    """The authentication in force: `settings.auth`, except `api-keys` when only `users` asks for tokens."""
    if settings.auth == "none" and settings.users:
        return "api-keys"
    return settings.auth


def build_user_store(settings: Settings) -> UserStore:
    """The users and API keys of this deployment: tables in the history database `database_url` names."""
    from genai_chatbot.stores import select_store

    return select_store(settings).user_store()


def build_authenticator(settings: Settings, users: UserStore | None = None) -> Authenticator | None:
    """The authenticator for `auth`, or None when every request is the single local user.

    `users` is needed for `api-keys`; the caller owns it and closes it.
    """
    mode = auth_mode(settings)
    if mode == "none":
        return None
    if mode == "oidc":
        if settings.users:
            logger.warning("Setting 'users' is ignored with auth = \"oidc\"; remove it.")
        from genai_chatbot.auth.oidc import OIDCAuthenticator

        oidc: Authenticator = OIDCAuthenticator(settings.oidc)
        return oidc
    from genai_chatbot.auth.api_keys import ApiKeyAuthenticator

    if settings.auth == "none":
        logger.warning(
            'Setting \'users\' is deprecated and turns on auth = "api-keys"; set auth = "api-keys" '
            "and move its tokens to 'genai-chatbot keys create' (they keep working meanwhile)."
        )
    if users is None:
        raise ValueError("auth = 'api-keys' needs the user store: pass users=build_user_store(settings).")
    return ApiKeyAuthenticator(users, settings_tokens=settings.users)
