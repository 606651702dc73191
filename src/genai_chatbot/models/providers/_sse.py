"""The one server-sent-events decoder, for every event stream a provider reads (OpenAI-style, AI21, SageMaker).

It follows the WHATWG HTML "event stream interpretation" rules: a UTF-8 byte-order mark at the start is
dropped; lines end in CRLF, LF or CR, also when a CRLF is split between two reads; a line starting with
`:` is a comment; `field: value` loses one space after the colon, and a line without a colon is a field
with an empty value; `data` lines of one event are joined with LF; `event` names the event (`message`
when absent); `id` sets the last event id unless it contains NUL, and stays for later events; `retry`
takes only ASCII digits; an empty line dispatches the event, and an event without data is not
dispatched. One deliberate leniency: `flush()` at the end of the body dispatches an event whose closing
empty line never came (the spec drops it), since SageMaker containers and some servers end that way.

It works on bytes as they arrive (chunks cut anywhere) and decodes only each event's data, so the per-event
cost stays a few dictionary-free byte operations: this runs for every token of every OpenAI-style stream.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterator
from typing import NamedTuple

_BOM = b"\xef\xbb\xbf"
_COLON = 58  # ord(":")
_LINE_ENDS = (10, 13)  # LF, CR


class ServerSentEvent(NamedTuple):
    """One dispatched event: its type, its data (lines joined with LF), and the last event id and retry seen.

    A named tuple, not a dataclass: one is made per streamed token, and a tuple is made in C.
    """

    data: str
    event: str = "message"
    id: str = ""
    retry: int | None = None


class SSEDecoder:
    """Feed it the body's bytes as they come; it returns the events each piece completes."""

    def __init__(self) -> None:
        self._pending = b""  # an unfinished line (or the first bytes, while a BOM may still be arriving)
        self._started = False
        self._after_cr = False  # the last piece ended in CR: a LF starting the next one ends no new line
        self._data: list[bytes] = []
        self._event = b""
        #: The last event id the stream set (it persists across events, as the spec says).
        self.last_event_id = ""
        #: The reconnection time in milliseconds the stream asked for, if it did.
        self.retry: int | None = None

    def feed(self, piece: bytes) -> list[ServerSentEvent]:
        """The events completed by `piece`."""
        return list(self.events(piece))

    def events(self, piece: bytes) -> Iterator[ServerSentEvent]:
        """The events completed by `piece`, each decoded only when asked for: the first token of a burst goes
        out before the rest is parsed. Read it to its end before feeding the next piece."""
        if self._after_cr and piece[:1] == b"\n":
            piece = piece[1:]
        if not piece:
            return
        self._after_cr = piece[-1] == 13
        text = self._pending + piece if self._pending else piece
        if not self._started:
            if len(text) < len(_BOM) and _BOM.startswith(text):
                self._pending = text
                return
            self._started = True
            if text.startswith(_BOM):
                text = text[len(_BOM) :]
        lines = text.splitlines()  # bytes.splitlines splits at CRLF, LF and CR only
        self._pending = lines.pop() if lines and text[-1] not in _LINE_ENDS else b""
        data = self._data
        for line in lines:
            if line[:6] == b"data: ":  # the common case, kept free of calls
                data.append(line[6:])
            elif line:
                self._field(line)
            elif data:
                yield self._dispatch()
                data = self._data
            else:
                self._event = b""

    def flush(self) -> list[ServerSentEvent]:
        """At the end of the body: the event left open by a body that ended without its empty line."""
        if self._pending:
            line, self._pending = self._pending, b""
            if not self._started and line.startswith(_BOM):
                line = line[len(_BOM) :]
            if line:
                self._field(line)
        self._started = True
        return [self._dispatch()] if self._data else []

    def _field(self, line: bytes) -> None:
        if line[0] == _COLON:
            return  # a comment (servers send them as keep-alives)
        name, colon, value = line.partition(b":")
        if colon and value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            self._data.append(value)
        elif name == b"event":
            self._event = value
        elif name == b"id":
            if b"\0" not in value:
                self.last_event_id = value.decode("utf-8", "replace")
        elif name == b"retry" and value.isdigit():
            self.retry = int(value)

    def _dispatch(self) -> ServerSentEvent:
        data = self._data[0] if len(self._data) == 1 else b"\n".join(self._data)
        self._data = []
        if self._event:
            name, self._event = self._event.decode("utf-8", "replace"), b""
            return ServerSentEvent(data.decode("utf-8", "replace"), name, self.last_event_id, self.retry)
        return ServerSentEvent(data.decode("utf-8", "replace"), "message", self.last_event_id, self.retry)


async def sse_events(body: AsyncIterable[bytes]) -> AsyncIterator[ServerSentEvent]:
    """The events of a body read piece by piece, including one left open at its end."""
    decoder = SSEDecoder()
    async for piece in body:
        for event in decoder.events(piece):
            yield event
    for event in decoder.flush():
        yield event
