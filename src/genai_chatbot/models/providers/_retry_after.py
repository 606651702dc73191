"""The one reading of `Retry-After` for every provider: delta-seconds or an HTTP date, bounded.

RFC 9110 §10.2.3 allows both `Retry-After: 120` and `Retry-After: Wed, 21 Oct 2015 07:28:00 GMT`; OpenAI
also sends `retry-after-ms`. A value we cannot read, or a negative one, is no advice at all (None), so the
caller falls back to its own backoff; a date in the past means "now" (0); anything longer than an hour is
cut to an hour, so a misconfigured proxy cannot park a client for days.
"""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Mapping
from datetime import UTC

MAX_RETRY_AFTER_SECONDS = 3600.0


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from one `Retry-After` value, or None when it says nothing usable.

    `now` (a Unix time) is what an HTTP date is measured from; the clock when not given.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # "-0000" or no zone: HTTP dates are always GMT
            when = when.replace(tzinfo=UTC)
        seconds = max(when.timestamp() - (time.time() if now is None else now), 0.0)
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return min(seconds, MAX_RETRY_AFTER_SECONDS)


def retry_after_from(headers: Mapping[str, str] | None, now: float | None = None) -> float | None:
    """The wait a response's headers ask for: `retry-after-ms` first (OpenAI's), then `retry-after`.

    Header names are matched in any case, so plain dicts (as some SDKs hand them over) work as well as
    case-insensitive header objects.
    """
    if not headers:
        return None
    lowered = {str(name).lower(): value for name, value in headers.items()}
    milliseconds = parse_retry_after(lowered.get("retry-after-ms"))
    if milliseconds is not None:
        return min(milliseconds / 1000, MAX_RETRY_AFTER_SECONDS)
    return parse_retry_after(lowered.get("retry-after"), now)
