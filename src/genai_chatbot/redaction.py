"""What is masked in text headed for a person: values of the keys secret, and credentials in any URL.

`KeysSnapshot.redact` (in `secrets`) masks the fragments `secret_fragments` gives for each value of the keys
secret; `RedactingFilter` applies a redactor to every log record, formatted arguments and tracebacks included.
"""

from __future__ import annotations

import logging
import re
from typing import Protocol
from urllib.parse import parse_qsl, unquote, urlsplit


class Redactor(Protocol):
    """Anything that masks secrets in text (`ProviderKeys`)."""

    def redact(self, text: str) -> str: ...


# The only values of the keys secret that are not secret: names and protocol settings people must be able
# to read in messages ("Model 'azure_openai/Model1' ...", often also the deployment's name). Every other
# value is masked.
_PUBLIC_KEY_NAMES = re.compile(r"^(?:AZURE_OPENAI_MODELS|AZURE_OPENAI_API_(?:TYPE|VERSION|DEPLOYMENT_NAME)(?:__.+)?)$")
# Values shorter than this are not masked in free text: replacing every "azure" or "1" would garble
# messages, and no real key or password is that short.
MIN_SECRET_CHARS = 6
# `scheme://user:password@host`: the user-info part of any URL, whatever it came from.
_URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^/\s'\"<>]+@")
MASK = "***"


def mask_url_credentials(text: str) -> str:
    """`text` with the user-info of every URL in it (`https://user:pass@host` -> `https://***@host`) masked."""
    return _URL_USERINFO.sub(rf"\g<scheme>{MASK}@", text) if "@" in text else text


_PASSWORD_PARAMETER = re.compile(r"(?i)\b(password=)[^&\s]*")


def redact_url(url: str) -> str:
    """`url` with its credentials (`user:password@`) and any `password=` parameter masked: safe to show."""
    return _PASSWORD_PARAMETER.sub(rf"\g<1>{MASK}", mask_url_credentials(url))


def secret_fragments(name: str, value: str) -> set[str]:
    """The strings to mask wherever they appear, for one entry of the keys secret.

    A URL (a base URL, say) is masked where it holds credentials, its user-info and query values, so that
    messages can still say which host did not answer; any other value is masked whole.
    """
    if _PUBLIC_KEY_NAMES.match(name):
        return set()
    value = value.strip()
    if "://" not in value:
        return {value}
    parts = urlsplit(value)
    fragments: set[str] = set()
    if "@" in parts.netloc:
        userinfo = parts.netloc.rpartition("@")[0]
        _user, _, password = userinfo.partition(":")
        fragments.update({userinfo, unquote(userinfo), password, unquote(password)})
    if parts.query:
        fragments.update({parts.query, unquote(parts.query)})
        fragments.update(item for _, item in parse_qsl(parts.query))
    return fragments


class RedactingFilter(logging.Filter):
    """A logging filter that masks key values in every record, formatted arguments included."""

    def __init__(self, keys: Redactor) -> None:
        super().__init__()
        self._keys = keys

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self._keys.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and record.exc_info[1] is not None:
            text = self._keys.redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info, record.exc_text = None, text
        return True


def install_log_redaction(keys: Redactor, loggers: tuple[str, ...] = ("", "uvicorn", "uvicorn.access")) -> None:
    """Mask key values in everything the handlers of these loggers write (the root logger's included).

    A filter on a handler sees records from every child logger, which a filter on a logger would not.
    """
    redacting = RedactingFilter(keys)
    for name in loggers:
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(f, RedactingFilter) for f in handler.filters):
                handler.addFilter(redacting)
