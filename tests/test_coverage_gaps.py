"""Branches of http.py, errors.py, batch.py and the stream readers that the feature tests leave out.

Each test still states a behaviour (what a caller sees on that branch), not just a line to run.
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import responses
import urllib3

from rig_sync import errors
from rig_sync.http import RetryPolicy, StreamResponse, Transport, parse_retry_after
from rig_sync.http._failures import describe_error as _describe_error
from rig_sync.http._retry import ProviderRetry as _Retry

HOST = "http://127.0.0.1:9"


# --- http.py ------------------------------------------------------------------------------------------


def test_a_bad_retry_after_ms_falls_back_to_retry_after() -> None:
    assert parse_retry_after({"retry-after-ms": "soon", "retry-after": "3"}) == 3.0
    assert parse_retry_after({"retry-after": "not a date"}) is None
    assert parse_retry_after({}) is None


def test_no_backoff_before_the_first_retry() -> None:
    assert _Retry(total=2, backoff_factor=5).get_backoff_time() == 0.0


@pytest.mark.parametrize(("body", "expected"), [
    ([{"error": {"message": "quota", "status": "RESOURCE_EXHAUSTED"}}], ("quota", "RESOURCE_EXHAUSTED")),
    ({"error": 42}, ("HTTP 500", None)),
    ({"error": {"message": {"detail": "nested"}}}, ("{'detail': 'nested'}", None)),
    ({"error": "plain", "type": "overloaded"}, ("plain", "overloaded")),
    ("text body", ("HTTP 500", None)),
    ({"detail": "missing field", "code": ""}, ("missing field", None)),
])
def test_every_error_shape_gives_a_message(body: Any, expected: tuple[str, str | None]) -> None:
    from rig_sync.providers._gemini_chat import CONVENTIONS  # Gemini wraps its stream errors in a list

    assert _describe_error(CONVENTIONS.error_body(body), "HTTP 500") == expected


class _Raw:
    """The part of urllib3's response a StreamResponse reads, failing as told."""

    chunked = False

    def __init__(self, parts: list[bytes | BaseException], *, shutdown_error: BaseException | None = None) -> None:
        self.parts = parts
        self.shutdown_error = shutdown_error

    def supports_chunked_reads(self) -> bool:
        return False

    def read(self, amt: int | None = None, decode_content: bool = True) -> bytes:
        return self.read1(amt or 0, decode_content)

    def read1(self, size: int, decode_content: bool = True) -> bytes:
        part = self.parts.pop(0) if self.parts else b""
        if isinstance(part, BaseException):
            raise part
        return part

    def shutdown(self) -> None:
        if self.shutdown_error is not None:
            raise self.shutdown_error

    def close(self) -> None:
        self.closed = True

    def release_conn(self) -> None:
        pass


def stream_of(parts: list[bytes | BaseException], **kwargs: Any) -> StreamResponse:
    resp = requests.Response()
    resp.status_code = 200
    resp.raw = _Raw(parts, **kwargs)
    return StreamResponse(resp, "test", None, ("sk-SECRET-gap-1234567890",))


def test_a_stalled_stream_is_a_timeout_without_its_cause() -> None:
    stream = stream_of([b"data: 1\n\n", urllib3.exceptions.ReadTimeoutError(None, "/", "read timed out")])
    chunks = stream.chunks()
    assert next(chunks) == b"data: 1\n\n"
    with pytest.raises(errors.APITimeoutError) as info:
        next(chunks)
    assert info.value.__context__ is None  # hidden (`from None`) and dropped: nothing to pickle along
    assert info.value.is_retryable()


def test_a_broken_stream_is_a_retryable_stream_error() -> None:
    stream = stream_of([b"data: 1\n\n", ConnectionResetError("reset by peer")])
    with pytest.raises(errors.StreamError) as info:
        list(stream.chunks())
    assert info.value.is_retryable() and "ConnectionResetError" in str(info.value)


def test_finish_reads_the_rest_and_ignores_a_lost_connection() -> None:
    stream = stream_of([b"x" * 10, OSError("gone")])
    stream.finish()  # the answer was complete: losing the connection now is not an error
    assert stream._closed


def test_finish_stops_draining_a_long_body() -> None:
    stream = stream_of([b"x" * 65536, b"y" * 65536, b"z" * 10])
    stream.finish()
    assert stream._closed and stream._raw.raw.parts == [b"z" * 10]  # the rest was never read


def test_abort_of_a_released_stream_is_harmless() -> None:
    stream = stream_of([b""], shutdown_error=AttributeError("no socket"))
    stream.abort()
    stream.close()
    stream.close()  # twice is fine
    assert stream._closed


def test_a_dropped_stream_that_fails_to_close_is_quietly_collected() -> None:
    stream = stream_of([b""])

    def broken() -> None:
        raise RuntimeError("already torn down")

    stream._raw.close = broken  # type: ignore[method-assign]
    stream.__del__()  # must not raise during garbage collection
    assert stream._closed  # marked closed even though the close itself failed


def test_the_estimate_of_a_body_without_token_limits_is_its_size() -> None:
    from rig_sync.http._transport import estimate_tokens as _estimate_tokens

    assert _estimate_tokens(b"x" * 400, {"max_tokens": True}) == 100
    assert _estimate_tokens(b"x" * 400, ["not", "a", "dict"]) == 100
    assert _estimate_tokens(b"x" * 400, {"max_output_tokens": 50}) == 150


def test_a_forked_transport_reconnects_with_a_copy_of_a_custom_session() -> None:
    session = requests.Session()
    session.headers["X-Team"] = "blue"
    transport = Transport("test", HOST, auth_headers={"Authorization": "Bearer k-12345"}, session=session)
    transport._pid = -1  # as if this were a child process after fork()
    with responses.RequestsMock() as mocked:
        mocked.add("POST", f"{HOST}/x", json={"ok": True})
        assert transport.post_json("/x", {"a": 1}) == {"ok": True}
        assert mocked.calls[0].request.headers["X-Team"] == "blue"
    assert transport._custom_session is not session  # the parent's pooled sockets are never shared
    assert transport._custom_session.headers["X-Team"] == "blue"


def test_a_custom_session_with_its_own_adapter_keeps_it() -> None:
    class Mine(requests.adapters.HTTPAdapter):
        pass

    session = requests.Session()
    mine = Mine()
    session.mount("http://", mine)
    transport = Transport("test", HOST, session=session)
    assert transport._session.get_adapter(HOST + "/x") is mine


def test_a_body_that_breaks_off_is_a_connection_error(caplog: pytest.LogCaptureFixture) -> None:
    transport = Transport("test", HOST, auth_headers={"Authorization": "Bearer sk-SECRET-gap-1234567890"})

    broken = requests.Response()
    broken.raw = _Raw([urllib3.exceptions.ProtocolError("Connection broken: sk-SECRET-gap-1234567890")])
    with pytest.raises(errors.APIConnectionError) as info:
        transport._read_body(broken, "POST", "/x")
    assert "broke off mid-answer" in str(info.value) and "sk-SECRET" not in str(info.value)
    assert info.value.__context__ is None

    stalled = requests.Response()
    stalled.raw = _Raw([urllib3.exceptions.ReadTimeoutError(None, "/", "stalled")])  # type: ignore[arg-type]
    with pytest.raises(errors.APITimeoutError, match="stalled mid-body"):
        transport._read_body(stalled, "POST", "/x")


def test_an_error_status_on_a_stream_whose_body_is_lost_still_raises_the_status() -> None:
    transport = Transport("test", HOST, retry=RetryPolicy(max_retries=0))
    with responses.RequestsMock() as mocked:
        mocked.add("POST", f"{HOST}/s", body=requests.exceptions.ChunkedEncodingError("lost"), status=503)
        with pytest.raises((errors.InternalServerError, errors.APIConnectionError)):
            transport.stream("POST", "/s", json={})


def test_turning_verification_off_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="rig_sync")
    Transport("test", HOST, verify=False)
    assert [r.levelno for r in caplog.records] == [logging.WARNING]


# --- errors.py ----------------------------------------------------------------------------------------


def test_error_headers_are_case_insensitive_and_read_only() -> None:
    err = errors.status_error(429, "slow down", provider="p", headers={"Retry-After": "2"})
    assert err.headers["retry-after"] == "2" and len(err.headers) == 1 and list(err.headers) == ["Retry-After"]
    with pytest.raises(KeyError):
        err.headers[3]  # type: ignore[index]
    assert repr(err.headers) == "{'Retry-After': '2'}"


def test_cancelled_requests_are_not_retried() -> None:
    assert not errors.RequestCancelledError("cut", provider="p").is_retryable()


def test_errors_cross_processes_intact() -> None:
    err = errors.status_error(400, "prompt is too long", provider="p", body={"e": 1}, code="invalid")
    again = pickle.loads(pickle.dumps(err))
    assert type(again) is errors.ContextWindowExceededError and again.body == {"e": 1} and str(again) == str(err)
    assert errors.RigError().retry_after is None and not errors.RigError().is_retryable()


def test_a_stream_error_inside_the_redactor_loses_its_hidden_context() -> None:
    def source() -> Iterator[bytes]:
        yield b"data: 1\n\n"
        try:
            raise OSError("socket closed; key sk-SECRET-gap-1234567890")
        except OSError:
            raise errors.StreamError("broke off", provider="p") from None

    out = errors.redact_stream(source(), ["sk-SECRET-gap-1234567890"])
    assert next(out) == b"data: 1\n\n"
    with pytest.raises(errors.StreamError) as info:
        next(out)
    assert info.value.__context__ is None


def test_redaction_skips_short_and_empty_secrets() -> None:
    assert errors.redact("a key abc", ["abc", ""]) == "a key abc"  # 3 characters: too short to be a key
    assert errors.redact_bytes(b"key=abcd", ["abcd"]) == b"key=***"
    assert list(errors.redact_stream(iter([b"abc", b"d!"]), [])) == [b"abc", b"d!"]


# --- stream readers ---------------------------------------------------------------------------------------


def anthropic_stream(*events: dict[str, Any], stop: bool = True) -> list[Any]:
    """The chunks of an Anthropic stream made of `events` (after a message_start)."""
    import json

    from rig_sync.providers._anthropic_stream import stream_messages
    from rig_sync.sse import iter_sse

    start = {"type": "message_start", "message": {"id": "m1", "type": "message", "role": "assistant", "content": [],
                                                  "model": "claude", "usage": {"input_tokens": 3, "output_tokens": 1}}}
    tail = [{"type": "message_stop"}] if stop else []
    body = b"".join(f"data: {json.dumps(e)}\n\n".encode() for e in (start, *events, *tail))
    return list(stream_messages(iter_sse([body]), "anthropic"))


def block(index: int, **raw: Any) -> dict[str, Any]:
    return {"type": "content_block_start", "index": index, "content_block": raw}


def delta(index: int, **raw: Any) -> dict[str, Any]:
    return {"type": "content_block_delta", "index": index, "delta": raw}


def stop(index: int) -> dict[str, Any]:
    return {"type": "content_block_stop", "index": index}


@pytest.mark.parametrize("events", [
    [{"type": "content_block_start", "index": 0, "content_block": "text"}],
    [block(0, type="text", text=""), {"type": "content_block_delta", "index": 0, "delta": "hi"}],
    [block(0, type="text", text=""), delta(5, type="text_delta", text="hi")],
], ids=["block-not-object", "delta-not-object", "delta-unknown-block"])
def test_anthropic_malformed_events_are_decode_errors(events: list[dict[str, Any]]) -> None:
    with pytest.raises(errors.ResponseDecodeError):
        anthropic_stream(*events)


def test_anthropic_thinking_citations_and_server_tools_are_kept() -> None:
    from rig_sync.streaming import FinalResponse, ReasoningChunk, TextChunk

    chunks = anthropic_stream(
        block(0, type="thinking", thinking="First, "),
        delta(0, type="thinking_delta", thinking=""),  # empty pieces make no chunk
        delta(0, type="thinking_delta", thinking="think."),
        delta(0, type="signature_delta", signature="sig"),
        stop(0),
        block(1, type="text", text=""),
        delta(1, type="text_delta", text=""),
        delta(1, type="citations_delta", citation={"cited_text": "x"}),
        delta(1, type="text_delta", text="Answer"),
        stop(1),
        block(2, type="server_tool_use", id="s1", name="web_search"),
        delta(2, type="input_json_delta", partial_json='{"q": "ok"}'),
        stop(2),
        block(3, type="server_tool_use", id="s2", name="web_search"),
        delta(3, type="input_json_delta", partial_json='{"q": '),
        stop(3),
        block(4, type="text", text="left open"),
        {"type": "message_delta", "delta": "not an object", "usage": ["not", "an", "object"]},
    )
    assert [type(c) for c in chunks[:3]] == [ReasoningChunk, ReasoningChunk, TextChunk]
    final = chunks[-1]
    assert isinstance(final, FinalResponse)
    content = final.response.raw_response["content"]
    assert content[0]["signature"] == "sig" and content[1]["citations"] == [{"cited_text": "x"}]
    assert content[2]["input"] == {"q": "ok"} and content[3]["input"] == '{"q": '  # kept even if unparsable
    assert content[4]["text"] == "left open"  # a block left open keeps what came
    assert final.response.text == "Answerleft open"


def test_an_anthropic_stream_without_message_stop_is_incomplete() -> None:
    with pytest.raises(errors.StreamError) as info:
        anthropic_stream(block(0, type="text", text="hi"), stop=False)
    assert info.value.is_retryable()


def test_a_stream_over_a_plain_list_closes_and_aborts_quietly() -> None:
    from rig_sync.streaming import StreamingCompletionResponse, TextChunk

    aborted: list[bool] = []
    stream = StreamingCompletionResponse([TextChunk("a"), TextChunk("b")], "p", abort=lambda: aborted.append(True))
    assert next(iter(stream.text_stream())) == "a"
    stream.abort()
    assert aborted == [True]
    StreamingCompletionResponse(iter([TextChunk("a")]), "p").close()  # a list iterator has no close(): fine
    StreamingCompletionResponse([], "p").abort()  # nothing to abort: fine


def test_garbage_in_an_ndjson_stream_is_a_retryable_stream_error() -> None:
    from rig_sync.providers._common import iter_ndjson

    lines = iter_ndjson([b'{"a": 1}\n\n{"b": 2', b'}\n{"cut'], "ollama")
    assert next(lines) == {"a": 1} and next(lines) == {"b": 2}
    with pytest.raises(errors.StreamError) as info:
        next(lines)
    assert info.value.is_retryable()


def test_a_stream_that_ends_on_what_might_begin_a_key_keeps_those_bytes() -> None:
    key = "sk-SECRET-gap-1234567890"
    assert list(errors.redact_stream(iter([b"tail sk-SEC", b"ond"]), [key])) == [b"tail ", b"sk-SECond"]
    assert list(errors.redact_stream(iter([b"sk-SEC"]), [key])) == [b"sk-SEC"]  # all held, then given back


def test_cancelling_a_scope_skips_closed_connections() -> None:
    from rig_sync.http import CancelScope

    class Conn:
        def __init__(self, sock: Any) -> None:
            self.sock = sock

    class Sock:
        def shutdown(self, how: int) -> None:
            raise OSError("already closed")

    scope = CancelScope()
    scope._held.update({Conn(None), Conn(Sock())})
    scope.cancel()  # neither a missing nor an already-closed socket stops the cancel
    assert scope.cancelled
