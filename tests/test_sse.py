"""rig_sync.sse: lines and Server-Sent Events from arbitrarily split byte chunks."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from conftest import FIXTURES

from rig_sync.sse import SSEEvent, iter_lines, iter_sse

# Real recorded streams: data-only (OpenAI chat), named events (OpenAI responses, Anthropic), CRLF (Gemini).
STREAMS = [
    "openai/chat_stream.text.sse",
    "openai/responses.stream.text.sse",
    "anthropic/stream.text.sse",
    "gemini/stream_generate_content.text.sse",
]


def sse(*chunks: bytes) -> list[SSEEvent]:
    return list(iter_sse(chunks))


def lines(*chunks: bytes) -> list[bytes]:
    return list(iter_lines(chunks))


def splits(blob: bytes) -> Iterator[list[bytes]]:
    """The blob in two pieces at every byte boundary (empty pieces included)."""
    for i in range(len(blob) + 1):
        yield [blob[:i], blob[i:]]


# --- iter_lines ---------------------------------------------------------------------------


@pytest.mark.parametrize("end", [b"\n", b"\r\n", b"\r"])
def test_iter_lines_every_line_end_at_every_split(end: bytes) -> None:
    blob = end.join([b"one", b"", b"three", b"four"]) + end
    for pieces in splits(blob):
        assert lines(*pieces) == [b"one", b"", b"three", b"four"], pieces


def test_iter_lines_crlf_split_between_cr_and_lf_is_one_line_end() -> None:
    assert lines(b"a\r", b"\nb\r", b"\n") == [b"a", b"b"]
    assert lines(b"a\r", b"", b"\nb\n") == [b"a", b"b"]  # an empty chunk between keeps the pairing


def test_iter_lines_cr_cr_is_two_line_ends() -> None:
    assert lines(b"a\r", b"\r", b"b\r\n") == [b"a", b"", b"b"]


def test_iter_lines_yields_a_final_line_without_line_end() -> None:
    assert lines(b'{"a": 1}\n{"b"', b": 2}") == [b'{"a": 1}', b'{"b": 2}']
    assert lines() == []
    assert lines(b"", b"") == []


def test_iter_lines_one_byte_chunks_of_a_long_line() -> None:
    line = b"x" * 50_000
    assert lines(*(line[i : i + 1] for i in range(len(line))), b"\n") == [line]


def test_iter_lines_ndjson_fixture_in_small_chunks() -> None:
    blob = (FIXTURES / "ollama/api_generate.stream.ndjson").read_bytes()
    whole = [json.loads(x) for x in lines(blob) if x.strip()]
    assert whole and whole[-1]["done"] is True
    for size in (1, 3, 7, 64):
        pieces = [blob[i : i + size] for i in range(0, len(blob), size)]
        assert [json.loads(x) for x in lines(*pieces) if x.strip()] == whole


# --- iter_sse over real fixtures --------------------------------------------------------------


@pytest.mark.parametrize("name", STREAMS)
def test_fixture_parses_to_the_events_it_contains(name: str) -> None:
    blob = (FIXTURES / name).read_bytes()
    events = sse(blob)
    # Independent count: every event block of these fixtures has exactly one data line.
    assert len(events) == blob.count(b"data:") > 0
    for event in events:
        if event.data != "[DONE]":
            json.loads(event.data)  # each payload is whole, not a fragment
    if b"event:" in blob:
        assert all(e.event for e in events)
    else:
        assert all(e.event is None for e in events)


@pytest.mark.parametrize("name", STREAMS)
def test_fixture_split_at_every_byte_boundary(name: str) -> None:
    blob = (FIXTURES / name).read_bytes()
    expected = sse(blob)
    for pieces in splits(blob):
        assert sse(*pieces) == expected, f"split at {len(pieces[0])}"


def test_fixture_in_one_byte_chunks() -> None:
    blob = (FIXTURES / "openai/chat_stream.text.sse").read_bytes()
    assert sse(*(blob[i : i + 1] for i in range(len(blob)))) == sse(blob)


@pytest.mark.parametrize("end", [b"\r\n", b"\r"])
def test_fixture_with_other_line_ends_gives_identical_events(end: bytes) -> None:
    blob = (FIXTURES / "anthropic/stream.text.sse").read_bytes()
    converted = blob.replace(b"\n", end)
    assert sse(converted) == sse(blob)
    for pieces in splits(converted):
        assert sse(*pieces) == sse(blob), f"split at {len(pieces[0])}"


def test_openai_fixture_content() -> None:
    events = sse((FIXTURES / "openai/chat_stream.text.sse").read_bytes())
    assert events[-1] == SSEEvent(None, "[DONE]")
    first = json.loads(events[0].data)
    assert first["object"] == "chat.completion.chunk"


# --- the SSE field rules --------------------------------------------------------------------


def test_multi_line_data_is_joined_with_newlines() -> None:
    assert sse(b"data: first\ndata: second\ndata:\n\n") == [SSEEvent(None, "first\nsecond\n")]


def test_comments_are_ignored() -> None:
    assert sse(b": keep-alive\n\n: ping\ndata: x\n: mid-event comment\n\n") == [SSEEvent(None, "x")]


def test_event_names_and_ids() -> None:
    got = sse(b"event: a\nid: 7\ndata: 1\n\ndata: 2\n\nevent: b\ndata: 3\n\n")
    # The event name resets after each event; the last id persists (the spec's "last event ID").
    assert got == [SSEEvent("a", "1", "7"), SSEEvent(None, "2", "7"), SSEEvent("b", "3", "7")]


def test_id_with_nul_is_ignored() -> None:
    assert sse(b"id: 1\ndata: a\n\nid: x\x00y\ndata: b\n\n") == [SSEEvent(None, "a", "1"), SSEEvent(None, "b", "1")]


def test_only_one_space_after_the_colon_is_stripped() -> None:
    assert sse(b"data:nospace\n\ndata:  two\n\n") == [SSEEvent(None, "nospace"), SSEEvent(None, " two")]


def test_unknown_fields_and_retry_are_ignored() -> None:
    assert sse(b"retry: 100\nfoo: bar\ndata: x\n\n") == [SSEEvent(None, "x")]


def test_an_error_field_reads_as_an_error_event() -> None:
    # Outside the spec, which would drop it: early-2025 llama-server fails a stream with an
    # `error: {json}` line, then `data: [DONE]`.
    blob = b'data: {"a": 1}\n\nerror: {"code":500,"message":"boom"}\n\ndata: [DONE]\n\n'
    want = [SSEEvent(None, '{"a": 1}'), SSEEvent("error", '{"code":500,"message":"boom"}'), SSEEvent(None, "[DONE]")]
    assert sse(blob) == want
    assert all(sse(*pieces) == want for pieces in splits(blob))
    assert sse(b"error\ndata: x\n\n") == [SSEEvent(None, "x")]  # no colon, no value: still ignored


def test_field_without_colon_is_a_name_with_empty_value() -> None:
    assert sse(b"data\ndata\n\n") == [SSEEvent(None, "\n")]


def test_event_without_data_is_not_dispatched() -> None:
    assert sse(b"event: ping\n\n", b"data:\n\n", b"id: 3\n\n") == []


def test_incomplete_trailing_event_is_dropped() -> None:
    assert sse(b"data: whole\n\ndata: half") == [SSEEvent(None, "whole")]
    assert sse(b"data: whole\n\ndata: line ended but no blank line\n") == [SSEEvent(None, "whole")]


def test_leading_byte_order_mark_is_skipped() -> None:
    assert sse(b"\xef\xbb\xbf", b"event: e\ndata: x\n\n") == [SSEEvent("e", "x")]


def test_multibyte_utf8_split_across_chunks() -> None:
    blob = "data: héllo ✓\n\n".encode()
    for pieces in splits(blob):
        assert sse(*pieces) == [SSEEvent(None, "héllo ✓")]


def test_invalid_utf8_is_replaced_not_raised() -> None:
    assert sse(b"data: \xff\n\n") == [SSEEvent(None, "\ufffd")]
