"""The shared server-sent-events decoder, against the WHATWG event-stream rules it claims to follow."""

from __future__ import annotations

import pytest

from genai_chatbot.models.providers._sse import ServerSentEvent, SSEDecoder


def decode(*pieces: bytes) -> list[ServerSentEvent]:
    decoder = SSEDecoder()
    events = [event for piece in pieces for event in decoder.feed(piece)]
    return events + decoder.flush()


def test_data_lines_of_one_event_are_joined_with_line_feeds() -> None:
    assert decode(b"data: first\ndata: second\ndata:\n\n") == [ServerSentEvent("first\nsecond\n")]


def test_comments_are_skipped_and_an_event_without_data_is_not_dispatched() -> None:
    stream = b": keep-alive\n\nevent: ping\n\n: another\ndata: x\n\n"
    assert decode(stream) == [ServerSentEvent("x")], "the ping had no data; its type does not leak into x"


def test_event_names_the_type_and_message_is_the_default() -> None:
    assert decode(b"event: delta\ndata: a\n\ndata: b\n\n") == [ServerSentEvent("a", "delta"), ServerSentEvent("b")]


def test_id_persists_across_events_and_an_id_with_nul_is_ignored() -> None:
    events = decode(b"id: 7\ndata: a\n\ndata: b\n\nid: 8\x009\ndata: c\n\nid\ndata: d\n\n")
    assert [(e.data, e.id) for e in events] == [("a", "7"), ("b", "7"), ("c", "7"), ("d", "")]


def test_retry_takes_only_ascii_digits() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"retry: 1500\n\nretry: 2s\n\nretry: -1\n\n")
    assert decoder.retry == 1500
    assert decoder.feed(b"retry: 30\ndata: x\n\n") == [ServerSentEvent("x", retry=30)]


@pytest.mark.parametrize("end", [b"\n", b"\r", b"\r\n"], ids=["LF", "CR", "CRLF"])
def test_every_line_ending_ends_lines(end: bytes) -> None:
    stream = end.join([b"event: e", b"data: one", b"data: two", b"", b"data: three", b"", b""])
    assert decode(stream) == [ServerSentEvent("one\ntwo", "e"), ServerSentEvent("three")]


def test_a_crlf_split_between_two_reads_is_one_line_ending() -> None:
    assert decode(b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n") == [ServerSentEvent("a\nb")]


def test_one_space_after_the_colon_is_dropped_and_no_more() -> None:
    assert decode(b"data:tight\n\ndata:  two spaces\n\ndata\n\n") == [
        ServerSentEvent("tight"),
        ServerSentEvent(" two spaces"),
        ServerSentEvent(""),
    ]


def test_unknown_fields_are_ignored() -> None:
    assert decode(b"foo: bar\ndata: x\nDATA: y\n\n") == [ServerSentEvent("x")]


def test_a_byte_order_mark_is_dropped_only_at_the_start_even_when_it_arrives_split() -> None:
    assert decode(b"\xef\xbb", b"\xbfdata: x\n\n") == [ServerSentEvent("x")]
    assert decode(b"data: x\n\n\xef\xbb\xbfdata: y\n\n") == [ServerSentEvent("x")], "a BOM later is part of a field"


def test_any_split_of_the_bytes_gives_the_same_events() -> None:
    stream = '\ufeffid: 1\r\nevent: delta\r\ndata: {"text": "héllo"}\r\n\r\n: c\rdata: [DONE]\r\r'.encode()
    whole = decode(stream)
    assert whole == [ServerSentEvent('{"text": "héllo"}', "delta", "1"), ServerSentEvent("[DONE]", id="1")]
    assert decode(*(stream[i : i + 1] for i in range(len(stream)))) == whole
    for cut in range(len(stream)):
        assert decode(stream[:cut], stream[cut:]) == whole, cut


def test_flush_dispatches_an_event_the_body_did_not_close() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: done\n\ndata: last") == [ServerSentEvent("done")]
    assert decoder.flush() == [ServerSentEvent("last")]
    assert decoder.flush() == []


def test_invalid_utf8_is_replaced_not_raised() -> None:
    assert decode(b"data: \xff\n\n") == [ServerSentEvent("\ufffd")]
