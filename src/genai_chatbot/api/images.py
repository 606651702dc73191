"""Images of `/v1` content parts, read at the API boundary: data URLs decoded, remote URLs fetched if allowed.

What comes out is bytes of a known image type (PNG, JPEG, GIF, WebP: what OpenAI, Azure and Bedrock
take), recognised by their first bytes rather than by what the caller or a remote server claims, and never
larger than `limits.max_image_bytes`.

Remote `http(s)` URLs are fetched only with the setting `fetch_image_urls`, because fetching makes the
server a client of whatever host a caller names (server-side request forgery). So a fetch resolves the
host first and refuses it when any of its addresses is loopback, private, link-local or otherwise not
public (unless `fetch_image_urls_allow_private`); then connects to the address it checked (not to a
second, possibly different, DNS answer), without proxies, never follows a redirect, stops reading past
the size limit, and gives up after a timeout.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import socket
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlsplit, urlunsplit

import httpx
from fastapi import Depends, Request

from genai_chatbot.api.limits import LimitExceededError
from genai_chatbot.config import Settings
from genai_chatbot.models.errors import InvalidRequestError

#: First bytes of each image type providers take, and its media type.
_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)
FETCH_TIMEOUT_SECONDS = 10.0


def sniff(data: bytes) -> str | None:
    """The media type of `data` by its first bytes, or None when it is none of PNG, JPEG, GIF, WebP."""
    for signature, media_type in _SIGNATURES:
        if data.startswith(signature):
            return media_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether an address is on the public internet: not loopback, private, link-local, multicast, reserved."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


@dataclass(frozen=True, slots=True)
class ImageReader:
    """Reads one image URL of a content part into (media type, bytes), within the settings' bounds."""

    max_bytes: int
    fetch: bool = False
    allow_private: bool = False
    timeout: float = FETCH_TIMEOUT_SECONDS

    @classmethod
    def of(cls, settings: Settings) -> ImageReader:
        return cls(
            settings.limits.max_image_bytes,
            settings.fetch_image_urls,
            settings.fetch_image_urls_allow_private,
            min(FETCH_TIMEOUT_SECONDS, settings.request_timeout_seconds),
        )

    async def read(self, url: str, param: str) -> tuple[str, bytes]:
        """The image `url` names; `InvalidRequestError` (400) or `LimitExceededError` saying what to change."""
        scheme = url[:10].partition(":")[0].lower()
        if scheme == "data":
            data = self._decode(url, param)
        elif scheme in ("http", "https"):
            if not self.fetch:
                raise InvalidRequestError(
                    f"{param} is a remote URL, and this server fetches no image URLs; send the image as a data URL "
                    "(data:image/png;base64,...), or have the administrator turn on the setting fetch_image_urls "
                    "(GENAI_CHATBOT_FETCH_IMAGE_URLS=true).",
                    param=param,
                )
            data = await self._fetch(url, param)
        else:
            raise InvalidRequestError(
                f"{param} must be a data URL (data:image/png;base64,...) or an http(s) URL.", param=param
            )
        media_type = sniff(data)
        if media_type is None:
            raise InvalidRequestError(f"{param} is not a PNG, JPEG, GIF or WebP image; send one of those.", param=param)
        return media_type, data

    def _too_large(self, param: str, size: str) -> LimitExceededError:
        return LimitExceededError(
            f"{param} is {size} bytes; the limit is {self.max_bytes}. Send a smaller image, or raise the setting "
            "limits.max_image_bytes (GENAI_CHATBOT_LIMITS__MAX_IMAGE_BYTES).",
            param,
        )

    def _decode(self, url: str, param: str) -> bytes:
        header, comma, encoded = url.partition(",")
        if not comma or not header.lower().endswith(";base64"):
            raise InvalidRequestError(
                f"{param} is a data URL without base64 data; send data:image/png;base64,<base64 of the image>.",
                param=param,
            )
        if len(encoded) // 4 * 3 > self.max_bytes + 2:  # refused before decoding anything
            raise self._too_large(param, f"about {len(encoded) // 4 * 3}")
        try:
            data = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidRequestError(f"{param} holds data that is not valid base64.", param=param) from None
        if len(data) > self.max_bytes:
            raise self._too_large(param, str(len(data)))
        return data

    async def _fetch(self, url: str, param: str) -> bytes:
        parts = urlsplit(url)
        host = parts.hostname
        if not host:
            raise InvalidRequestError(f"{param} names no host.", param=param)
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
        address = await self._address(host, port, param)
        literal = f"[{address}]" if address.version == 6 else str(address)
        pinned = urlunsplit((parts.scheme, f"{literal}:{port}", parts.path or "/", parts.query, ""))
        host_header = host if parts.port is None else f"{host}:{parts.port}"
        try:
            async with (
                httpx.AsyncClient(timeout=self.timeout, follow_redirects=False, trust_env=False) as client,
                client.stream(
                    "GET", pinned, headers={"Host": host_header}, extensions={"sni_hostname": host}
                ) as answer,
            ):
                if answer.is_redirect:
                    raise InvalidRequestError(
                        f"{param} redirects elsewhere (HTTP {answer.status_code}), and redirects are not followed; "
                        "send the URL the image is at.",
                        param=param,
                    )
                if answer.status_code >= 400:
                    raise InvalidRequestError(
                        f"{param} could not be fetched: its server answered HTTP {answer.status_code}.", param=param
                    )
                declared = answer.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > self.max_bytes:
                    raise self._too_large(param, declared)
                data = bytearray()
                async for piece in answer.aiter_bytes():
                    data.extend(piece)
                    if len(data) > self.max_bytes:
                        raise self._too_large(param, f"more than {self.max_bytes}")
                return bytes(data)
        except httpx.TimeoutException:
            raise InvalidRequestError(
                f"{param} could not be fetched within {self.timeout:g} s; send the image as a data URL.", param=param
            ) from None
        except httpx.HTTPError as exc:
            raise InvalidRequestError(
                f"{param} could not be fetched ({type(exc).__name__}); check the URL, or send a data URL.",
                param=param,
            ) from None

    async def _address(self, host: str, port: int, param: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
        """The address to connect to; refused when any address of `host` is not public (unless allowed)."""
        try:
            found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError:
            raise InvalidRequestError(f"{param} names a host that does not resolve: {host}.", param=param) from None
        addresses = [ipaddress.ip_address(str(info[4][0]).partition("%")[0]) for info in found]
        if not addresses:
            raise InvalidRequestError(f"{param} names a host that does not resolve: {host}.", param=param)
        if not self.allow_private and not all(is_public(address) for address in addresses):
            raise InvalidRequestError(
                f"{param} names a host on a loopback, private or link-local address ({host}), which this server "
                "does not fetch from; send the image as a data URL, or have the administrator turn on "
                "fetch_image_urls_allow_private.",
                param=param,
            )
        return addresses[0]


async def get_image_reader(request: Request) -> ImageReader:
    settings: Settings = request.app.state.settings
    return ImageReader.of(settings)


#: How this server reads images of content parts, by its settings.
Images = Annotated[ImageReader, Depends(get_image_reader)]
