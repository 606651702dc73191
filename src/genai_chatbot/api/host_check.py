"""The `Host` check that stops DNS rebinding: the server answers only to the names it is meant to have.

A hostile web page whose name resolves to 127.0.0.1 makes the browser send its requests to this server
with `Host: evil.example`; without this check it would read every chat and spend the provider keys. By
default only `localhost`, `127.0.0.1`, `[::1]` and the bound address (`host`) are answered; the setting
`allowed_hosts` adds names (`chat.example.com`, or `*.example.com` for every subdomain; `*` turns the check
off, for a proxy that checks it instead). Any other `Host` is a 400 before any route runs, except on
`GET /healthz`: load balancers probe it with the target's own address as `Host` (unknown in advance on ECS
or Kubernetes), and it reveals nothing but the version.

It sits on every request, so the verdict for each `Host` value is remembered: the usual request costs one
dict lookup.
"""

from __future__ import annotations

import ipaddress
import json

from starlette.types import ASGIApp, Receive, Scope, Send

from genai_chatbot.config import Settings

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
# Binding to these means "every interface": they name no host a client would send.
_WILDCARD_ADDRESSES = ("0.0.0.0", "::", "[::]", "")
_MAX_REMEMBERED = 1024
#: Answered whatever the `Host` (see the module docstring).
HEALTH_PATH = "/healthz"


def is_loopback_address(host: str) -> bool:
    """Whether listening on `host` keeps the server reachable from this machine only."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _normalise(name: str) -> str:
    """A host name as compared: lower case, no port, no trailing dot, IPv6 addresses in brackets."""
    name = name.strip().lower()
    if name.startswith("["):
        name = name[: name.find("]") + 1]
    elif name.count(":") == 1:
        name = name.partition(":")[0]
    elif ":" in name:  # a bare IPv6 address, as `host` is written
        name = f"[{name}]"
    return name.removesuffix(".")


class AllowedHosts:
    """The names of `settings` the server answers to; `allows(host_header)` is what the middleware asks."""

    def __init__(self, settings: Settings) -> None:
        names = set(LOOPBACK_NAMES)
        if _normalise(settings.host) not in _WILDCARD_ADDRESSES:
            names.add(_normalise(settings.host))
        suffixes = []
        self.any = False
        for entry in settings.allowed_hosts:
            entry = entry.strip().lower()
            if entry == "*":
                self.any = True
            elif entry.startswith("*."):
                suffixes.append(entry[1:])
            elif entry:
                names.add(_normalise(entry))
        self.names = frozenset(names)
        self.suffixes = tuple(suffixes)

    def allows(self, host_header: str) -> bool:
        if self.any:
            return True
        name = _normalise(host_header)
        return name in self.names or (bool(self.suffixes) and name.endswith(self.suffixes))


class HostCheckMiddleware:
    """Answers 400, in the API's JSON error shape, to a request whose `Host` the settings do not allow."""

    def __init__(self, app: ASGIApp, allowed: AllowedHosts) -> None:
        self.app = app
        self.allowed = allowed
        # The verdict for each Host value seen, so that the usual request costs one dict lookup.
        self._verdicts: dict[bytes, bool] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or self.allowed.any or scope["path"] == HEALTH_PATH:
            await self.app(scope, receive, send)
            return
        raw = b""
        for name, value in scope["headers"]:
            if name == b"host":
                raw = value
                break
        allowed = self._verdicts.get(raw)
        if allowed is None:
            allowed = self.allowed.allows(raw.decode("latin-1"))
            if len(self._verdicts) < _MAX_REMEMBERED:  # bounded: a client can send any number of names
                self._verdicts[raw] = allowed
        if allowed:
            await self.app(scope, receive, send)
            return
        host = raw.decode("latin-1")
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        shown = _normalise(host)[:100] or "(none)"
        message = (
            f"This server does not answer to the host name {shown!r}. If that is its name, add it to the setting "
            f'allowed_hosts (allowed_hosts = ["{shown}"] in genai-chatbot.toml, or '
            f"GENAI_CHATBOT_ALLOWED_HOSTS='[\"{shown}\"]'); otherwise use http://localhost."
        )
        body = json.dumps(
            {
                "error": {
                    "message": message,
                    "type": "invalid_request_error",
                    "param": "host",
                    "code": "host_not_allowed",
                }
            }
        ).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 400, "headers": headers})
        await send({"type": "http.response.body", "body": body})
