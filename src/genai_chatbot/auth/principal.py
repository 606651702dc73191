"""The caller of a request, as every layer above authentication sees it.

Authentication (API keys, OIDC) produces a `Principal`; routes use its `user_id` to scope every query and
its `role` to guard admin endpoints. Nothing below the API knows how the caller proved who they are.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, Protocol

Role = Literal["admin", "manager", "user"]
ROLES: tuple[Role, ...] = ("admin", "manager", "user")
#: The single user of a server without authentication.
ANONYMOUS_USER = "default"


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: a stable user id, a role, and the groups it belongs to."""

    user_id: str
    role: Role
    groups: tuple[str, ...] = ()
    #: How the caller authenticated: "none", "api-key", "settings-token", "oidc", or "terminal" (`chat --user`).
    method: str = "none"

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def role_from_groups(groups: Iterable[str], default: Role = "user") -> Role:
    """The highest role named among `groups` (`admin` > `manager` > `user`), else `default`."""
    names = set(groups)
    return next((role for role in ROLES if role in names), default)


class AuthenticationError(Exception):
    """The bearer token is missing, malformed, unknown, expired or revoked: answered 401.

    The message says what to do and never contains the token.
    """


class AuthenticationUnavailable(AuthenticationError):
    """No token can be verified right now (e.g. the identity provider's keys cannot be fetched).

    An `AuthenticationError`, so a caller that knows only this contract answers 401; one that knows this
    subclass may answer 503 instead, since the token itself may well be valid.
    """


class PermissionDeniedError(Exception):
    """The caller is authenticated but their role does not allow this: answered 403, with what to do."""


class Authenticator(Protocol):
    """Turns a bearer token into a principal. Implementations cache, so a request costs no round trip."""

    async def authenticate(self, token: str) -> Principal:
        """The principal the token proves; `AuthenticationError` when it proves none."""
        ...

    async def aclose(self) -> None: ...
