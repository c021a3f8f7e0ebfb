"""Anthropic Messages API through the public API, against every recorded payload in
tests/fixtures/anthropic (responses, streams, errors, request bodies). End-to-end tests against
the loopback FakeProvider are in test_anthropic_fake.py."""

from __future__ import annotations

import base64
import json
import pickle
from pathlib import Path
from typing import Any

import pytest
import responses
from conftest import FIXTURES, load_bytes, load_fixture, sent_json, serve_fixture, sse_payloads

from rig_sync import errors
from rig_sync.completion import CompletionRequest, CompletionResponse, Document, ToolChoice, ToolDefinition
from rig_sync.http import RetryPolicy
from rig_sync.message import Audio, DocumentContent, Image, Message, Reasoning, Text, ToolCall, ToolResult
from rig_sync.providers import anthropic
from rig_sync.streaming import FinalResponse, ReasoningChunk, StreamChunk, TextChunk, ToolCallChunk

BASE = "http://api.test"
MESSAGES = f"{BASE}/v1/messages"
KEY = "sk-ant-test-0123456789abcdef"
RETRY = RetryPolicy(max_retries=2, backoff_base=0)


def client(**options: Any) -> anthropic.Client:
    options.setdefault("max_retries", 0)
    return anthropic.Client(KEY, base_url=BASE, **options)


def model(name: str = "claude-haiku-4-5") -> anthropic.CompletionModel:
    return client().completion_model(name)


def send_fixture(mocked: responses.RequestsMock, name: str, **headers: str) -> CompletionResponse:
    serve_fixture(mocked, MESSAGES, name, headers=headers or None)
    return model().completion_request("Hello").send()


def sse_body(name: str) -> bytes:
    """An SSE fixture as the server sends it. The SDK-authored files lost the blank line that ends
    the last event (live recordings have it); without it the SSE spec discards that event."""
    return load_bytes(name).rstrip(b"\r\n") + b"\n\n"


def stream_fixture(mocked: responses.RequestsMock, name: str, body: bytes | None = None) -> list[StreamChunk]:
    serve_fixture(mocked, MESSAGES, name, body=sse_body(name) if body is None else body)
    return list(model().completion_request("Hello").stream())


# --- recorded messages ----------------------------------------------------------------------------

MESSAGE_RESPONSES = [
    "anthropic/message.after_parallel_tool_results.json",
    "anthropic/message.end_turn_after_tool_result.json",
    "anthropic/message.parallel_tool_use.json",
    "anthropic/message.programmatic_tool_call.json",
    "anthropic/message.structured_output.json",
    "anthropic/message.text_end_turn.long.json",
    "anthropic/message.tool_use_only.json",
    "anthropic/message.web_search_server_tool.json",
]


@pytest.mark.parametrize("name", MESSAGE_RESPONSES)
def test_every_recorded_message_parses(mocked: responses.RequestsMock, name: str) -> None:
    data = load_fixture(name)
    resp = send_fixture(mocked, name)
    blocks = data["content"]
    assert resp.text == "".join(b["text"] for b in blocks if b["type"] == "text")
    assert resp.tool_calls == [ToolCall(b["id"], b["name"], b["input"]) for b in blocks if b["type"] == "tool_use"]
    assert resp.finish_reason == data["stop_reason"]
    usage = data["usage"]
    prompt = usage["input_tokens"] + usage["cache_creation_input_tokens"] + usage["cache_read_input_tokens"]
    assert resp.usage.input_tokens == prompt
    assert resp.usage.output_tokens == usage["output_tokens"]
    assert resp.usage.total_tokens == prompt + usage["output_tokens"]
    assert resp.usage.cached_input_tokens == usage["cache_read_input_tokens"]
    assert (resp.id, resp.model) == (data["id"], data["model"])
    assert resp.raw_response == data


def test_recorded_message_spot_checks(mocked: responses.RequestsMock) -> None:
    parallel = send_fixture(mocked, "anthropic/message.parallel_tool_use.json")
    assert parallel.text.startswith("I'll use the test_tool twice")
    assert [c.arguments for c in parallel.tool_calls] == [{"count": 1}, {"count": 2}]
    assert parallel.tool_calls[0].id == "toolu_01L8GVQapA1HmggQcrwboukH"
    assert parallel.finish_reason == "tool_use"
    # The answer goes back into a history as an assistant message with text and both calls.
    assert [type(p) for p in parallel.message().content] == [Text, ToolCall, ToolCall]

    only = send_fixture(mocked, "anthropic/message.tool_use_only.json")
    assert only.text == ""
    assert only.tool_calls == [ToolCall("toolu_011bpynHqFZ9P4u5rSaXsTJQ", "get_weather",
                                        {"location": "San Francisco, CA", "units": "f"})]
    assert (only.usage.input_tokens, only.usage.output_tokens, only.usage.total_tokens) == (656, 74, 730)

    structured = send_fixture(mocked, "anthropic/message.structured_output.json")
    assert json.loads(structured.text) == {"product_name": "Green Tea", "price": 5.50, "quantity": 2}


def test_server_tool_blocks_stay_in_raw_response(mocked: responses.RequestsMock) -> None:
    search = send_fixture(mocked, "anthropic/message.web_search_server_tool.json")
    # server_tool_use / web_search_tool_result are not core content and are not tool calls to run.
    assert search.tool_calls == []
    assert all(isinstance(p, Text) for p in search.choice)
    assert "San Francisco" in search.text
    kinds = [b["type"] for b in search.raw_response["content"]]
    assert kinds[:2] == ["server_tool_use", "web_search_tool_result"]
    assert search.raw_response["usage"]["server_tool_use"]["web_search_requests"] == 1

    programmatic = send_fixture(mocked, "anthropic/message.programmatic_tool_call.json")
    # Only the client tool call is ours to run; the code-execution call stays in the raw body.
    assert [c.name for c in programmatic.tool_calls] == ["get_weather"]
    assert programmatic.tool_calls[0].arguments == {"location": "San Francisco, CA", "units": "c"}
    assert programmatic.raw_response["content"][1]["type"] == "server_tool_use"


def with_usage(usage: dict[str, Any]) -> dict[str, Any]:
    data = load_fixture("anthropic/message.end_turn_after_tool_result.json")
    data["usage"] = usage
    return data


def test_cache_creation_tokens_count_as_input(mocked: responses.RequestsMock) -> None:
    usage = load_fixture("anthropic/usage.cache_creation_nonzero.json")
    mocked.add(responses.POST, MESSAGES, json=with_usage(usage))
    resp = model().completion_request("Hello").send()
    assert resp.usage.input_tokens == 337 + 46209
    assert resp.usage.output_tokens == 342
    assert resp.usage.total_tokens == 337 + 46209 + 342
    assert resp.usage.cached_input_tokens == 0  # cache writes are not cache hits


def test_cache_reads_are_cached_input_tokens(mocked: responses.RequestsMock) -> None:
    usage = dict(load_fixture("anthropic/usage.cache_creation_nonzero.json"),
                 cache_creation_input_tokens=0, cache_read_input_tokens=46209)
    mocked.add(responses.POST, MESSAGES, json=with_usage(usage))
    resp = model().completion_request("Hello").send()
    assert (resp.usage.input_tokens, resp.usage.cached_input_tokens) == (337 + 46209, 46209)


def test_usage_without_cache_fields(mocked: responses.RequestsMock) -> None:
    mocked.add(responses.POST, MESSAGES, json=with_usage({"input_tokens": 5, "output_tokens": 7}))
    assert model().completion_request("Hello").send().usage.total_tokens == 12


def test_thinking_blocks_become_signed_reasoning(mocked: responses.RequestsMock) -> None:
    data = load_fixture("anthropic/message.end_turn_after_tool_result.json")
    data["content"][:0] = [{"type": "thinking", "thinking": "Sunny, so say so.", "signature": "EqQBCgIYAhIM"},
                           {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"}]
    mocked.add(responses.POST, MESSAGES, json=data)
    resp = model().completion_request("Hello").send()
    assert resp.choice[:2] == (Reasoning("Sunny, so say so.", "EqQBCgIYAhIM"),
                               Reasoning("", anthropic.REDACTED_THINKING + "EmwKAhgBEgy3va3pzix"))
    assert resp.reasoning == "Sunny, so say so."
    assert resp.text.startswith("The weather in San Francisco")


def test_refusal_with_text_keeps_the_text(mocked: responses.RequestsMock) -> None:
    data = load_fixture("anthropic/message.end_turn_after_tool_result.json")
    data["stop_reason"] = "refusal"
    mocked.add(responses.POST, MESSAGES, json=data)
    resp = model().completion_request("Hello").send()
    assert resp.finish_reason == "refusal"
    assert resp.text == data["content"][0]["text"]


def test_refusal_without_text_raises(mocked: responses.RequestsMock) -> None:
    data = load_fixture("anthropic/message.end_turn_after_tool_result.json")
    data.update(content=[], stop_reason="refusal", stop_details={"type": "refusal", "category": "cyber"})
    mocked.add(responses.POST, MESSAGES, json=data)
    with pytest.raises(anthropic.RefusalError, match="cyber") as info:
        model().completion_request("Hello").send()
    assert isinstance(info.value, errors.APIError)
    assert info.value.provider == "anthropic"
    assert info.value.stop_details["category"] == "cyber"
    assert info.value.body == data


@pytest.mark.parametrize("reason", ["pause_turn", "stop_sequence", "max_tokens", "model_context_window_exceeded"])
def test_other_stop_reasons_pass_through(mocked: responses.RequestsMock, reason: str) -> None:
    data = load_fixture("anthropic/message.structured_output.json")
    data["stop_reason"] = reason
    mocked.add(responses.POST, MESSAGES, json=data)
    assert model().completion_request("Hello").send().finish_reason == reason


@pytest.mark.parametrize(("block", "field"), [
    ({"type": "tool_use", "name": "f", "input": {}}, "id"),
    ({"type": "text"}, "text"),
])
def test_malformed_blocks_raise_decode_errors(mocked: responses.RequestsMock, block: dict[str, Any],
                                              field: str) -> None:
    data = load_fixture("anthropic/message.tool_use_only.json")
    data["content"] = [block]
    mocked.add(responses.POST, MESSAGES, json=data)
    with pytest.raises(errors.ResponseDecodeError) as info:
        model().completion_request("Hello").send()
    assert info.value.provider == "anthropic"
    assert field in (info.value.field or "")


def test_message_without_content_raises_decode_error(mocked: responses.RequestsMock) -> None:
    mocked.add(responses.POST, MESSAGES, json={"id": "msg_1", "type": "message"})
    with pytest.raises(errors.ResponseDecodeError, match="content"):
        model().completion_request("Hello").send()


# --- recorded streams -----------------------------------------------------------------------------

STREAMS = [
    "anthropic/stream.basic_text.sdk_fixture.sse",
    "anthropic/stream.text.sse",
    "anthropic/stream.text_after_tool_result.sse",
    "anthropic/stream.tool_use.sse",
]


@pytest.mark.parametrize("name", STREAMS)
def test_every_recorded_stream_reassembles(mocked: responses.RequestsMock, name: str) -> None:
    # What the stream must add up to, read independently of rig_sync's SSE and JSON handling.
    payloads = sse_payloads(name)
    start = payloads[0]["message"]
    end = next(p for p in payloads if p["type"] == "message_delta")
    deltas = [p["delta"] for p in payloads if p["type"] == "content_block_delta"]
    text = "".join(d["text"] for d in deltas if d["type"] == "text_delta")
    args = "".join(d["partial_json"] for d in deltas if d["type"] == "input_json_delta")
    tool_blocks = [p["content_block"] for p in payloads
                   if p["type"] == "content_block_start" and p["content_block"]["type"] == "tool_use"]

    chunks = stream_fixture(mocked, name)
    assert isinstance(chunks[-1], FinalResponse)
    assert sum(isinstance(c, FinalResponse) for c in chunks) == 1
    resp = chunks[-1].response
    assert "".join(c.text for c in chunks if isinstance(c, TextChunk)) == resp.text == text
    expected_calls = [ToolCall(b["id"], b["name"], json.loads(args)) for b in tool_blocks]
    assert [c.tool_call for c in chunks if isinstance(c, ToolCallChunk)] == resp.tool_calls == expected_calls
    assert resp.finish_reason == end["delta"]["stop_reason"]
    assert (resp.id, resp.model) == (start["id"], start["model"])
    usage = {**start["usage"], **end["usage"]}
    prompt = usage["input_tokens"] + usage.get("cache_creation_input_tokens", 0) + usage.get(
        "cache_read_input_tokens", 0)
    assert resp.usage.input_tokens == prompt
    assert resp.usage.output_tokens == usage["output_tokens"]
    assert resp.usage.total_tokens == prompt + usage["output_tokens"]
    # raw_response is the message a non-streamed call would have returned.
    assert resp.raw_response["stop_reason"] == end["delta"]["stop_reason"]
    assert len(resp.raw_response["content"]) == sum(p["type"] == "content_block_start" for p in payloads)


def test_recorded_stream_spot_checks(mocked: responses.RequestsMock) -> None:
    basic = stream_fixture(mocked, "anthropic/stream.basic_text.sdk_fixture.sse")
    assert [c.text for c in basic if isinstance(c, TextChunk)] == ["Hello", " there", "!"]
    resp = basic[-1].response  # type: ignore[union-attr]
    assert (resp.text, resp.finish_reason, resp.usage.input_tokens, resp.usage.output_tokens) == (
        "Hello there!", "end_turn", 11, 6)

    tool = stream_fixture(mocked, "anthropic/stream.tool_use.sse")
    calls = [c.tool_call for c in tool if isinstance(c, ToolCallChunk)]
    assert calls == [ToolCall("toolu_018acGYLtfR52q9yDbWaEdQZ", "get_weather",
                              {"location": "San Francisco, CA", "units": "f"})]
    assert tool[-1].response.finish_reason == "tool_use"  # type: ignore[union-attr]
    assert tool[-1].response.raw_response["content"][0]["input"] == calls[0].arguments  # type: ignore[union-attr]

    text = stream_fixture(mocked, "anthropic/stream.text.sse")
    assert json.loads(text[-1].response.text) == [12345, 67890]  # type: ignore[union-attr]


def test_stream_cache_tokens_reach_usage(mocked: responses.RequestsMock) -> None:
    # The recorded stream with a cache hit: message_start reports it, message_delta repeats the final counts.
    name = "anthropic/stream.text.sse"
    body = sse_body(name).replace(b'"cache_read_input_tokens":0', b'"cache_read_input_tokens":100')
    resp = stream_fixture(mocked, name, body=body)[-1].response  # type: ignore[union-attr]
    assert (resp.usage.input_tokens, resp.usage.cached_input_tokens, resp.usage.output_tokens) == (235, 100, 10)
    assert resp.usage.total_tokens == 245


def test_stream_tool_call_arrives_when_its_block_stops(mocked: responses.RequestsMock) -> None:
    serve_fixture(mocked, MESSAGES, "anthropic/stream.tool_use.sse")
    with model().completion_request("Hello").stream() as stream:
        first = next(c for c in stream if not isinstance(c, TextChunk))
        assert isinstance(first, ToolCallChunk)
        assert first.tool_call.arguments["units"] == "f"


def test_stream_error_event_is_a_retryable_stream_error(mocked: responses.RequestsMock) -> None:
    with pytest.raises(errors.StreamError, match="overloaded_error") as info:
        stream_fixture(mocked, "anthropic/stream.error_event_overloaded.sse")
    assert info.value.provider == "anthropic"
    assert info.value.is_retryable()
    assert info.value.body == {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}


def test_stream_error_event_after_text_is_raised(mocked: responses.RequestsMock) -> None:
    events = load_bytes("anthropic/stream.basic_text.sdk_fixture.sse").split(b"\n\n")
    error = (b'event: error\ndata: {"type": "error", "error": {"type": "invalid_request_error", '
             b'"message": "bad"}}')
    body = b"\n\n".join([*events[:4], error]) + b"\n\n"
    serve_fixture(mocked, MESSAGES, "anthropic/stream.basic_text.sdk_fixture.sse", body=body)
    stream = model().completion_request("Hello").stream()
    seen: list[str] = []
    with pytest.raises(errors.StreamError, match="bad") as info:
        for chunk in stream:
            if isinstance(chunk, TextChunk):
                seen.append(chunk.text)
    assert seen == ["Hello"]
    assert not info.value.is_retryable()


def test_max_tokens_inside_a_tool_call_raises_with_what_completed(mocked: responses.RequestsMock) -> None:
    name = "anthropic/stream.max_tokens_mid_tool_use.sse"
    serve_fixture(mocked, MESSAGES, name, body=sse_body(name))
    stream = model().completion_request("Hello").stream()
    texts: list[str] = []
    with pytest.raises(anthropic.IncompleteToolCallError, match="make_file") as info:
        for chunk in stream:
            assert not isinstance(chunk, ToolCallChunk)  # a half-written call is never handed out
            if isinstance(chunk, TextChunk):
                texts.append(chunk.text)
    err = info.value
    assert isinstance(err, errors.ResponseDecodeError)
    assert err.response is not None
    assert err.response.finish_reason == "max_tokens"
    assert err.response.text == "".join(texts)
    assert err.response.text.endswith("Let me do that for you now.")
    assert err.response.usage.output_tokens == 124
    assert isinstance(err.body, str) and err.body.startswith('{"filename": "taxes.txt')


def test_stream_refusal_without_text_raises(mocked: responses.RequestsMock) -> None:
    with pytest.raises(anthropic.RefusalError, match="policy") as info:
        stream_fixture(mocked, "anthropic/stream.refusal.sdk_fixture.sse")
    assert info.value.stop_details == {"type": "refusal", "category": "cyber",
                                       "explanation": "This request was refused due to policy."}
    assert info.value.body["id"] == "msg_01RefusalTestMessage123456789"


def test_unterminated_last_event_is_not_taken_as_the_end(mocked: responses.RequestsMock) -> None:
    # The SDK fixture byte for byte: its message_stop never got the blank line that completes an event.
    name = "anthropic/stream.basic_text.sdk_fixture.sse"
    assert not load_bytes(name).endswith(b"\n\n")
    with pytest.raises(errors.StreamError, match="message_stop"):
        stream_fixture(mocked, name, body=load_bytes(name))


def cut(name: str, keep: int) -> bytes:
    """The first `keep` events of an SSE fixture (as if the connection dropped)."""
    events = [e for e in sse_body(name).split(b"\n\n") if e.strip()]
    assert b"message_stop" in events[-1]
    return b"\n\n".join(events[:keep]) + b"\n\n"


@pytest.mark.parametrize(("name", "keep"), [
    ("anthropic/stream.text.sse", 9),  # everything but message_stop
    ("anthropic/stream.tool_use.sse", 7),  # inside the tool call's arguments
    ("anthropic/stream.basic_text.sdk_fixture.sse", 0),  # nothing at all
])
def test_truncated_stream_raises_stream_error(mocked: responses.RequestsMock, name: str, keep: int) -> None:
    with pytest.raises(errors.StreamError, match="message_stop") as info:
        stream_fixture(mocked, name, body=cut(name, keep))
    assert info.value.provider == "anthropic"
    assert info.value.is_retryable()


def synthetic_stream(*events: dict[str, Any]) -> bytes:
    start = {"type": "message_start", "message": {"id": "msg_x", "type": "message", "role": "assistant",
                                                  "model": "claude-sonnet-4-5", "content": [],
                                                  "usage": {"input_tokens": 3, "output_tokens": 1}}}
    stop = [{"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 9}},
            {"type": "message_stop"}]
    return b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in (start, *events, *stop))


def block(index: int, start: dict[str, Any], *deltas: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"type": "content_block_start", "index": index, "content_block": start},
            *({"type": "content_block_delta", "index": index, "delta": d} for d in deltas),
            {"type": "content_block_stop", "index": index}]


def test_stream_thinking_and_signature_reassemble(mocked: responses.RequestsMock) -> None:
    body = synthetic_stream(
        *block(0, {"type": "thinking", "thinking": ""}, {"type": "thinking_delta", "thinking": "Let me "},
               {"type": "thinking_delta", "thinking": "see."}, {"type": "signature_delta", "signature": "EqQBsig"}),
        *block(1, {"type": "redacted_thinking", "data": "EmwKAhgB"}),
        *block(2, {"type": "text", "text": ""}, {"type": "text_delta", "text": "Hi"},
               {"type": "citations_delta", "citation": {"type": "char_location", "cited_text": "x"}}),
        {"type": "content_block_delta", "index": 2, "delta": {"type": "brand_new_delta", "x": 1}},
        {"type": "brand_new_event"},
    )
    mocked.add(responses.POST, MESSAGES, body=body, content_type="text/event-stream")
    chunks = list(model().completion_request("Hello").stream())
    assert [c.text for c in chunks if isinstance(c, ReasoningChunk)] == ["Let me ", "see."]
    resp = chunks[-1].response  # type: ignore[union-attr]
    assert resp.choice == (Reasoning("Let me see.", "EqQBsig"), Reasoning("", anthropic.REDACTED_THINKING + "EmwKAhgB"),
                           Text("Hi"))
    assert resp.raw_response["content"][2]["citations"] == [{"type": "char_location", "cited_text": "x"}]
    assert (resp.usage.input_tokens, resp.usage.output_tokens) == (3, 9)


def test_stream_server_tool_input_stays_raw(mocked: responses.RequestsMock) -> None:
    body = synthetic_stream(
        *block(0, {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}},
               {"type": "input_json_delta", "partial_json": '{"query": "sf'},
               {"type": "input_json_delta", "partial_json": ' weather"}'}),
        *block(1, {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []}),
        *block(2, {"type": "text", "text": "Sunny."}),
    )
    mocked.add(responses.POST, MESSAGES, body=body, content_type="text/event-stream")
    stream = model().completion_request("Hello").stream()
    chunks = list(stream)
    assert not any(isinstance(c, ToolCallChunk) for c in chunks)
    assert stream.response.text == "Sunny."  # a text block may arrive whole in its start event
    assert stream.response.raw_response["content"][0]["input"] == {"query": "sf weather"}


@pytest.mark.parametrize(("events", "error"), [
    ([{"type": "content_block_delta", "index": 5, "delta": {"type": "text_delta", "text": "x"}}],
     errors.ResponseDecodeError),
    ([{"type": "content_block_start", "index": "0", "content_block": {"type": "text"}}], errors.ResponseDecodeError),
])  # (tool input that is no JSON object is the model's mistake, kept on the call: test_tool_arguments.py)
def test_malformed_stream_events_raise(mocked: responses.RequestsMock, events: list[dict[str, Any]],
                                       error: type[Exception]) -> None:
    mocked.add(responses.POST, MESSAGES, body=synthetic_stream(*events), content_type="text/event-stream")
    with pytest.raises(error):
        list(model().completion_request("Hello").stream())


def test_stream_event_that_is_not_json_raises(mocked: responses.RequestsMock) -> None:
    body = b"event: message_start\ndata: {nope\n\n"
    mocked.add(responses.POST, MESSAGES, body=body, content_type="text/event-stream")
    with pytest.raises(errors.StreamError, match="not JSON"):
        list(model().completion_request("Hello").stream())


def test_block_before_message_start_raises(mocked: responses.RequestsMock) -> None:
    body = b"".join(f"data: {json.dumps(e)}\n\n".encode() for e in block(0, {"type": "text", "text": ""}))
    mocked.add(responses.POST, MESSAGES, body=body, content_type="text/event-stream")
    with pytest.raises(errors.StreamError, match="before message_start"):
        list(model().completion_request("Hello").stream())


# --- recorded errors ------------------------------------------------------------------------------

ERRORS = [
    ("anthropic/error.400_invalid_request_error.json", errors.BadRequestError, False),
    ("anthropic/error.401_authentication_error.json", errors.AuthenticationError, False),
    ("anthropic/error.429_rate_limit_error.json", errors.RateLimitError, True),
    ("anthropic/error.429_rate_limit_error.account.json", errors.RateLimitError, True),
]


@pytest.mark.parametrize(("name", "cls", "retryable"), ERRORS)
def test_recorded_errors_map_to_the_error_tree(mocked: responses.RequestsMock, name: str,
                                               cls: type[errors.APIStatusError], retryable: bool) -> None:
    body = load_fixture(name)
    status = int(name.split(".")[1].split("_")[0])
    serve_fixture(mocked, MESSAGES, name)
    with pytest.raises(errors.APIStatusError) as info:
        model().completion_request("Hello").send()
    err = info.value
    assert type(err) is cls
    assert (err.status_code, err.provider, err.message) == (status, "anthropic", body["error"]["message"])
    assert err.code == body["error"]["type"]
    assert err.body == body
    assert err.request_id == body.get("request_id")  # newer bodies carry it; the recorder dropped the header
    assert err.is_retryable() is retryable
    assert KEY not in str(err) and KEY not in repr(err)
    assert len(mocked.calls) == 1


def test_rate_limit_headers_are_kept_on_the_error(mocked: responses.RequestsMock) -> None:
    recorded = load_fixture("anthropic/error.429_headers.2024_no_retry_after.json")
    headers = {k: v for k, v in recorded.items() if k not in ("content-length", "content-type", "connection")}
    serve_fixture(mocked, MESSAGES, "anthropic/error.429_rate_limit_error.account.json", headers=headers)
    with pytest.raises(errors.RateLimitError) as info:
        model().completion_request("Hello").send()
    err = info.value
    assert err.headers["anthropic-ratelimit-requests-remaining"] == "0"
    assert err.headers["Anthropic-RateLimit-Tokens-Remaining"] == "16000"  # case-insensitive
    assert err.headers["anthropic-ratelimit-tokens-reset"] == "2024-03-26T20:00:00Z"
    assert err.retry_after is None  # no retry-after header on this limit
    assert err.request_id == "req_01T5fCVnYdf9X5ZW6KayReBK"  # the request-id header wins over the body
    assert err.is_retryable()  # x-should-retry: true


def test_overloaded_529_with_x_should_retry_is_retried(mocked: responses.RequestsMock) -> None:
    overloaded = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    mocked.add(responses.POST, MESSAGES, json=overloaded, status=529, headers={"x-should-retry": "true"})
    serve_fixture(mocked, MESSAGES, "anthropic/message.structured_output.json")
    chat = anthropic.Client(KEY, base_url=BASE, retry=RETRY).completion_model("claude-sonnet-4-5")
    assert chat.completion_request("Hello").send().id == "msg_01Egs18hRzhru3uGon3qesbA"
    assert len(mocked.calls) == 2


def test_x_should_retry_false_is_not_retried(mocked: responses.RequestsMock) -> None:
    serve_fixture(mocked, MESSAGES, "anthropic/error.400_invalid_request_error.json")
    chat = anthropic.Client(KEY, base_url=BASE, retry=RETRY).completion_model("claude-haiku-4-5")
    with pytest.raises(errors.BadRequestError):
        chat.completion_request("Hello").send()
    assert len(mocked.calls) == 1


def test_429_on_a_stream_request_raises_before_streaming(mocked: responses.RequestsMock) -> None:
    name = "anthropic/error.429_rate_limit_error.stream_request.json"
    serve_fixture(mocked, MESSAGES, name)
    with pytest.raises(errors.RateLimitError) as info:
        model().completion_request("Hello").stream()
    assert info.value.request_id == load_fixture(name)["request_id"]
    assert info.value.code == "rate_limit_error"


# --- recorded requests: the body we send carries what the recorded request carries ------------------


def sdk_only_fields_removed(body: dict[str, Any]) -> dict[str, Any]:
    """A recorded SDK request without what the SDKs add and we do not: `"stream": false`, tool
    `"type": "custom"` (the API's default), and the `caller` the SDK echoes back on tool_use."""
    body = json.loads(json.dumps(body))
    if body.get("stream") is False:
        del body["stream"]
    for tool in body.get("tools") or []:
        if tool.get("type") == "custom":
            del tool["type"]
    for msg in body["messages"]:
        for part in msg["content"] if isinstance(msg["content"], list) else []:
            part.pop("caller", None)
    return body


def assert_sent_like_recorded(mocked: responses.RequestsMock, name: str) -> None:
    assert sent_json(mocked) == sdk_only_fields_removed(load_fixture(f"anthropic/requests/{name}.request.json"))


WEATHER = ToolDefinition(
    "get_weather",
    "Lookup the weather for a given city in either celsius or fahrenheit",
    {
        "additionalProperties": False,
        "properties": {
            "location": {"description": "The city and state, e.g. San Francisco, CA", "title": "Location",
                         "type": "string"},
            "units": {"description": "Unit for the output, either 'c' for celsius or 'f' for fahrenheit",
                      "enum": ["c", "f"], "title": "Units", "type": "string"},
        },
        "required": ["location", "units"],
        "type": "object",
    },
)
TEST_TOOL = ToolDefinition("test_tool", "A test tool", {
    "$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
    "properties": {"count": {"type": "number"}}, "required": ["count"], "additionalProperties": False,
})
SF_CALL = ToolCall("toolu_011bpynHqFZ9P4u5rSaXsTJQ", "get_weather", {"location": "San Francisco, CA", "units": "f"})
SF_RESULT = '{"location": "San Francisco, CA", "temperature": "68\\u00b0F", "condition": "Sunny"}'
ORDER_SCHEMA = {
    "type": "object", "title": "OrderItem",
    "properties": {"product_name": {"type": "string", "title": "Product Name"},
                   "price": {"type": "number", "title": "Price"},
                   "quantity": {"type": "integer", "title": "Quantity"}},
    "additionalProperties": False, "required": ["product_name", "price", "quantity"],
}
USE_TWICE = "Use the test_tool with count 1, then use it again with count 2"
ESSAY = ("Write a detailed 500 word essay about dogs, cats, and birds. Call the tool submit_analysis with the "
         "information about all three animals. Note that you should call it only once at the end of your essay.")


def test_request_tool_use_only(mocked: responses.RequestsMock) -> None:
    serve_fixture(mocked, MESSAGES, "anthropic/message.tool_use_only.json")
    resp = model("claude-haiku-4-5").completion_request("What is the weather in SF?").tool(WEATHER).max_tokens(
        1024).send()
    assert_sent_like_recorded(mocked, "message.tool_use_only")
    assert resp.tool_calls == [SF_CALL]


def test_request_end_turn_after_tool_result(mocked: responses.RequestsMock) -> None:
    serve_fixture(mocked, MESSAGES, "anthropic/message.end_turn_after_tool_result.json")
    resp = (model("claude-haiku-4-5").completion_request(Message.tool_result(SF_CALL.id, SF_RESULT))
            .messages([Message.user("What is the weather in SF?"), Message.assistant(SF_CALL)])
            .tool(WEATHER).max_tokens(1024).send())
    assert_sent_like_recorded(mocked, "message.end_turn_after_tool_result")
    assert "Sunny" in resp.text


def test_request_parallel_tool_use(mocked: responses.RequestsMock) -> None:
    serve_fixture(mocked, MESSAGES, "anthropic/message.parallel_tool_use.json")
    model("claude-opus-4-8").completion_request(USE_TWICE).tool(TEST_TOOL).max_tokens(1000).send()
    assert_sent_like_recorded(mocked, "message.parallel_tool_use")


def test_request_after_parallel_tool_results(mocked: responses.RequestsMock) -> None:
    # The recorded answer with two calls, sent back with both results in one user turn.
    serve_fixture(mocked, MESSAGES, "anthropic/message.parallel_tool_use.json")
    serve_fixture(mocked, MESSAGES, "anthropic/message.after_parallel_tool_results.json")
    claude = model("claude-opus-4-8")
    first = claude.completion_request(USE_TWICE).tool(TEST_TOOL).max_tokens(1000).send()
    results = Message.user([ToolResult(c.id, f"Called with {c.arguments['count']}") for c in first.tool_calls])
    final = (claude.completion_request(results).messages([Message.user(USE_TWICE), first.message()])
             .tool(TEST_TOOL).max_tokens(1000).send())
    assert sent_json(mocked, 1) == sdk_only_fields_removed(
        load_fixture("anthropic/requests/message.after_parallel_tool_results.request.json"))
    assert final.text.startswith("I've successfully used the test_tool twice")


def test_request_two_consecutive_user_turns(mocked: responses.RequestsMock) -> None:
    follow_up = load_fixture("anthropic/requests/message.text_end_turn.long.request.json")["messages"][1]["content"]
    serve_fixture(mocked, MESSAGES, "anthropic/message.text_end_turn.long.json")
    resp = (model("claude-sonnet-4-5").completion_request(follow_up).message(Message.user(ESSAY))
            .max_tokens(4000).send())
    assert_sent_like_recorded(mocked, "message.text_end_turn.long")
    assert resp.text.startswith("<summary>")


def test_request_text_and_tool_use(mocked: responses.RequestsMock) -> None:
    serve_fixture(mocked, MESSAGES, "anthropic/message.text_end_turn.long.json")  # its own answer is not recorded
    submit = ToolDefinition("submit_analysis", "Call this LAST with your final analysis.", {
        "additionalProperties": False, "properties": {"summary": {"title": "Summary", "type": "string"}},
        "required": ["summary"], "type": "object"})
    model("claude-sonnet-4-5").completion_request(ESSAY).tool(submit).max_tokens(4000).send()
    assert_sent_like_recorded(mocked, "message.text_and_tool_use")


def test_request_structured_output_via_additional_params(mocked: responses.RequestsMock) -> None:
    serve_fixture(mocked, MESSAGES, "anthropic/message.structured_output.json")
    (model("claude-sonnet-4-5").completion_request("Extract: I want to order 2 Green Tea at $5.50 each")
     .max_tokens(1024).additional_params({"output_config": {"format": {"type": "json_schema", "schema": ORDER_SCHEMA}}})
     .send())
    assert_sent_like_recorded(mocked, "message.structured_output")


def test_request_server_tool_via_additional_params(mocked: responses.RequestsMock) -> None:
    serve_fixture(mocked, MESSAGES, "anthropic/message.web_search_server_tool.json")
    (model("claude-haiku-4-5").completion_request("What is the weather in SF?").max_tokens(1024)
     .additional_params({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}).send())
    assert_sent_like_recorded(mocked, "message.web_search_server_tool")


def test_request_programmatic_tool_call(mocked: responses.RequestsMock) -> None:
    # Fields the core ToolDefinition has no room for (allowed_callers) go in with the whole tool list.
    tool = {"name": WEATHER.name, "description": WEATHER.description, "input_schema": WEATHER.parameters,
            "allowed_callers": ["code_execution_20260120"]}
    serve_fixture(mocked, MESSAGES, "anthropic/message.programmatic_tool_call.json")
    resp = (model("claude-opus-4-5").completion_request("What is the weather in SF, NY, and London in Celsius?")
            .max_tokens(1024).additional_params({"tools": [tool]}).send())
    assert_sent_like_recorded(mocked, "message.programmatic_tool_call")
    assert resp.tool_calls[0].name == "get_weather"


def test_request_400_tool_result_without_tool_use(mocked: responses.RequestsMock) -> None:
    serve_fixture(mocked, MESSAGES, "anthropic/error.400_invalid_request_error.json")
    result = Message.tool_result("toolu_01GHndag5wQmbzNihYmV2UBj",
                                 "The weather in San Francisco, CA is currently sunny with a temperature of 20°C.")
    with pytest.raises(errors.BadRequestError, match="tool_use_id"):
        (model("claude-haiku-4-5").completion_request(result).message(Message.user(
            "What's the weather in SF in Celsius?")).tool(WEATHER).max_tokens(1024).send())
    assert_sent_like_recorded(mocked, "error.400_invalid_request_error")


def test_request_429_structured_output(mocked: responses.RequestsMock) -> None:
    recorded = load_fixture("anthropic/requests/error.429_rate_limit_error.request.json")
    serve_fixture(mocked, MESSAGES, "anthropic/error.429_rate_limit_error.json")
    with pytest.raises(errors.RateLimitError):
        (model("claude-sonnet-4-5").completion_request(recorded["messages"][0]["content"]).max_tokens(1024)
         .additional_params({"output_config": recorded["output_config"]}).send())
    assert_sent_like_recorded(mocked, "error.429_rate_limit_error")


def test_request_stream_text(mocked: responses.RequestsMock) -> None:
    recorded = load_fixture("anthropic/requests/stream.text.request.json")
    serve_fixture(mocked, MESSAGES, "anthropic/stream.text.sse")
    stream = (model("claude-sonnet-4-5").completion_request(recorded["messages"][0]["content"]).max_tokens(1024)
              .additional_params({"output_config": recorded["output_config"]}).stream())
    assert stream.text == "[12345,67890]"
    assert_sent_like_recorded(mocked, "stream.text")


def test_request_stream_tool_use_and_text_after_tool_result(mocked: responses.RequestsMock) -> None:
    serve_fixture(mocked, MESSAGES, "anthropic/stream.tool_use.sse")
    serve_fixture(mocked, MESSAGES, "anthropic/stream.text_after_tool_result.sse")
    claude = model("claude-haiku-4-5")
    question = Message.user("What is the weather in SF?")
    first = claude.completion_request(question).tool(WEATHER).max_tokens(1024).stream().response
    assert_sent_like_recorded(mocked, "stream.tool_use")
    (call,) = first.tool_calls
    final = (claude.completion_request(Message.tool_result(call.id, SF_RESULT)).messages([question, first.message()])
             .tool(WEATHER).max_tokens(1024).stream().response)
    assert sent_json(mocked, 1) == sdk_only_fields_removed(
        load_fixture("anthropic/requests/stream.text_after_tool_result.request.json"))
    assert final.text.endswith("sunny day!")


# --- request mapping ------------------------------------------------------------------------------


def send(mocked: responses.RequestsMock, request: Any) -> dict[str, Any]:
    """Send a built request (or builder) and return the body that went out."""
    serve_fixture(mocked, MESSAGES, "anthropic/message.structured_output.json")
    claude = model("claude-sonnet-4-5")
    claude.completion(request if isinstance(request, CompletionRequest) else request.build())
    body: dict[str, Any] = sent_json(mocked, len(mocked.calls) - 1)
    return body


def req(prompt: str | Message = "Hi") -> Any:
    return model("claude-sonnet-4-5").completion_request(prompt)


def test_headers_carry_the_key_and_version(mocked: responses.RequestsMock) -> None:
    send(mocked, req())
    headers = mocked.calls[0].request.headers
    assert headers["x-api-key"] == KEY
    assert headers["anthropic-version"] == "2023-06-01"
    assert headers["content-type"] == "application/json"
    assert "Authorization" not in headers and "anthropic-beta" not in headers
    assert KEY not in (mocked.calls[0].request.url or "")


def test_version_and_beta_options(mocked: responses.RequestsMock) -> None:
    serve_fixture(mocked, MESSAGES, "anthropic/message.structured_output.json")
    custom = anthropic.ClientBuilder(KEY).base_url(BASE).option("anthropic_version", "2024-01-01").option(
        "betas", ["files-api-2025-04-14", "context-1m-2025-08-07"]).build()
    custom.completion_model("claude-sonnet-4-5").completion_request("Hi").send()
    headers = mocked.calls[0].request.headers
    assert headers["anthropic-version"] == "2024-01-01"
    assert headers["anthropic-beta"] == "files-api-2025-04-14,context-1m-2025-08-07"


@pytest.mark.parametrize(("options", "error"), [({"betas": [1]}, TypeError), ({"nonsense": 1}, TypeError),
                                                ({"anthropic_version": " "}, errors.ClientBuildError)])
def test_bad_options_are_refused(options: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error) as caught:
        anthropic.Client(KEY, **options)
    assert isinstance(caught.value, errors.RigError)  # a TypeError and a ClientBuildError alike
    assert next(iter(options)) in str(caught.value)


def test_key_is_never_shown() -> None:
    c = client()
    assert KEY not in repr(c) and KEY not in repr(c.completion_model("claude-sonnet-4-5"))
    assert KEY not in repr(c.transport)


def test_from_env(mocked: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", BASE)
    serve_fixture(mocked, MESSAGES, "anthropic/message.structured_output.json")
    anthropic.Client.from_env().completion_model("claude-sonnet-4-5").completion_request("Hi").send()
    assert mocked.calls[0].request.headers["x-api-key"] == KEY


def test_from_env_defaults_and_missing_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    assert anthropic.Client.from_env().base_url == "https://api.anthropic.com"
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    with pytest.raises(errors.MissingAPIKeyError, match="ANTHROPIC_API_KEY"):
        anthropic.Client.from_env()


def test_client_pickles_with_its_settings(mocked: responses.RequestsMock) -> None:
    serve_fixture(mocked, MESSAGES, "anthropic/message.structured_output.json")
    original = client(betas="context-1m-2025-08-07")
    copy = pickle.loads(pickle.dumps(original))
    assert copy.completion_model("claude-sonnet-4-5").completion_request("Hi").send().finish_reason == "end_turn"
    headers = mocked.calls[0].request.headers
    assert (headers["x-api-key"], headers["anthropic-beta"]) == (KEY, "context-1m-2025-08-07")


def test_capabilities() -> None:
    c = client()
    assert anthropic.Client.capabilities() == ["completion", "list_models", "batch_jobs"]
    assert c.as_completion() is c and c.as_embeddings() is None
    assert c.streams_completions and c.supports_tools


@pytest.mark.parametrize(("name", "expected"), [
    ("claude-3-haiku-20240307", 4096),
    ("claude-3-opus-latest", 4096),
    ("claude-3-5-sonnet-latest", 8192),
    ("claude-3-5-haiku-20241022", 8192),
    ("claude-3-7-sonnet-20250219", 8192),
    ("claude-sonnet-4-5", 8192),
    ("claude-opus-4-1-20250805", 8192),
    ("claude-haiku-4-5", 8192),
    ("some-future-model", 4096),
])
def test_default_max_tokens_per_model(mocked: responses.RequestsMock, name: str, expected: int) -> None:
    serve_fixture(mocked, MESSAGES, "anthropic/message.structured_output.json")
    model(name).completion_request("Hi").send()
    assert sent_json(mocked)["max_tokens"] == expected == anthropic.default_max_tokens(name)


def test_explicit_max_tokens_and_temperature(mocked: responses.RequestsMock) -> None:
    body = send(mocked, req().max_tokens(64).temperature(0.3))
    assert (body["max_tokens"], body["temperature"]) == (64, 0.3)
    assert "stream" not in body and "tools" not in body and "tool_choice" not in body and "system" not in body


def test_temperature_above_one_is_refused() -> None:
    with pytest.raises(errors.InvalidRequestError, match="0 to 1"):
        req().temperature(1.5).send()


def test_preamble_becomes_system(mocked: responses.RequestsMock) -> None:
    assert send(mocked, req().preamble("Be brief"))["system"] == "Be brief"


def test_documents_become_native_document_blocks(mocked: responses.RequestsMock) -> None:
    body = send(mocked, req().document(Document("doc1", "Cats purr.", {"source": "wiki"}))
                .document(Document("doc2", "Dogs bark.")))
    assert body["messages"][0] == {"role": "user", "content": [
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "Cats purr."},
         "title": "doc1", "context": "source: wiki\n"},
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "Dogs bark."},
         "title": "doc2"},
    ]}
    assert body["messages"][1] == {"role": "user", "content": "Hi"}


@pytest.mark.parametrize(("choice", "wire"), [
    ("auto", {"type": "auto"}),
    ("required", {"type": "any"}),
    ("none", {"type": "none"}),
    (ToolChoice.tool("get_weather"), {"type": "tool", "name": "get_weather"}),
])
def test_tool_choice(mocked: responses.RequestsMock, choice: Any, wire: dict[str, Any]) -> None:
    body = send(mocked, req().tool(WEATHER).tool_choice(choice))
    assert body["tool_choice"] == wire
    assert body["tools"] == [{"name": "get_weather", "description": WEATHER.description,
                              "input_schema": WEATHER.parameters}]


def test_tool_choice_options_merge_from_additional_params(mocked: responses.RequestsMock) -> None:
    body = send(mocked, req().tool(WEATHER).tool_choice("required")
                .additional_params({"tool_choice": {"disable_parallel_tool_use": True}}))
    assert body["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}


def test_tool_choice_without_tools(mocked: responses.RequestsMock) -> None:
    assert "tool_choice" not in send(mocked, req().tool_choice("auto"))
    with pytest.raises(errors.InvalidRequestError, match="needs at least one tool"):
        req().tool_choice("required").send()
    # A server tool given in additional_params counts as a tool.
    body = send(mocked, req().tool_choice("required").additional_params({"tools": [{"type": "web_search_20250305",
                                                                                      "name": "web_search"}]}))
    assert body["tool_choice"] == {"type": "any"}


def test_tool_without_description_omits_it(mocked: responses.RequestsMock) -> None:
    body = send(mocked, req().tool(ToolDefinition("ping")))
    assert body["tools"] == [{"name": "ping", "input_schema": {"type": "object", "properties": {}}}]


PNG = base64.b64encode(b"\x89PNG fake").decode()


def test_media_parts(mocked: responses.RequestsMock) -> None:
    prompt = Message.user([
        "Look:",
        Image.from_bytes(b"\x89PNG fake", "image/png", detail="high"),
        Image.from_url("https://example.com/cat.jpg"),
        DocumentContent.from_bytes(b"%PDF-1.4", filename="report.pdf"),
        DocumentContent.from_bytes(b"plain words", "text/plain"),
        DocumentContent("https://example.com/a.pdf", is_url=True),
    ])
    body = send(mocked, req(prompt))
    assert body["messages"][0]["content"] == [
        {"type": "text", "text": "Look:"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf",
                                        "data": base64.b64encode(b"%PDF-1.4").decode()}, "title": "report.pdf"},
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "plain words"}},
        {"type": "document", "source": {"type": "url", "url": "https://example.com/a.pdf"}},
    ]


@pytest.mark.parametrize("part", [
    Audio.from_bytes(b"RIFF", "wav"),
    Image.from_bytes(b"BM", "image/bmp"),
    DocumentContent.from_bytes(b"<html>", "text/html"),
])
def test_unsupported_parts_are_refused(part: Any) -> None:
    with pytest.raises(errors.UnsupportedFeature):
        req(Message.user(["Look:", part])).send()


def test_invalid_text_document_is_refused() -> None:
    with pytest.raises(errors.InvalidRequestError, match="base64"):
        req(Message.user(DocumentContent("%%%not base64", "text/plain"))).send()


def test_reasoning_round_trips_as_thinking_blocks(mocked: responses.RequestsMock) -> None:
    answer = Message.assistant([Reasoning("Let me see.", "EqQBsig"), Reasoning("", anthropic.REDACTED_THINKING + "Emw"),
                                Text("Calling."), ToolCall("toolu_1", "get_weather", {"location": "SF"})])
    body = send(mocked, req(Message.tool_result("toolu_1", "Sunny", is_error=True)).message(Message.user("Weather?"))
                .message(answer).tool(WEATHER))
    assert body["messages"][1]["content"] == [
        {"type": "thinking", "thinking": "Let me see.", "signature": "EqQBsig"},
        {"type": "redacted_thinking", "data": "Emw"},
        {"type": "text", "text": "Calling."},
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"location": "SF"}},
    ]
    assert body["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "Sunny", "is_error": True}]


def test_unsigned_reasoning_is_refused() -> None:
    with pytest.raises(errors.UnsupportedFeature, match="signature"):
        req().message(Message.user("Q")).message(Message.assistant([Reasoning("hmm"), Text("A")])).send()


def test_tool_results_open_their_user_turn(mocked: responses.RequestsMock) -> None:
    call = ToolCall("toolu_1", "get_weather", {})
    body = send(mocked, req(Message.user(["Thanks, and also:", ToolResult("toolu_1", "Sunny")]))
                .messages([Message.user("Q"), Message.assistant(call)]).tool(WEATHER))
    assert [p["type"] for p in body["messages"][2]["content"]] == ["tool_result", "text"]


def test_empty_assistant_turns_are_left_out(mocked: responses.RequestsMock) -> None:
    body = send(mocked, req("Again?").messages([Message.user("Q"), Message.assistant("")]))
    assert body["messages"] == [{"role": "user", "content": "Q"}, {"role": "user", "content": "Again?"}]


def test_additional_params_deep_merge(mocked: responses.RequestsMock) -> None:
    body = send(mocked, req().max_tokens(2048).additional_params(
        {"thinking": {"type": "enabled", "budget_tokens": 1024}, "metadata": {"user_id": "u1"}}))
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    assert body["metadata"] == {"user_id": "u1"} and body["max_tokens"] == 2048


def test_stream_body_sets_stream(mocked: responses.RequestsMock) -> None:
    name = "anthropic/stream.basic_text.sdk_fixture.sse"
    serve_fixture(mocked, MESSAGES, name, body=sse_body(name))
    assert req().stream().text == "Hello there!"
    assert sent_json(mocked)["stream"] is True


def test_not_a_request_is_refused() -> None:
    with pytest.raises(errors.InvalidRequestError):
        model().completion("Hello")  # type: ignore[arg-type]


# --- every fixture is used ------------------------------------------------------------------------


def test_every_anthropic_fixture_is_referenced() -> None:
    sources = "".join(p.read_text(encoding="utf-8") for p in Path(__file__).parent.glob("test_anthropic*.py"))
    root = FIXTURES / "anthropic"
    missing = []
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.name.startswith("spec."):
            continue
        rel = path.relative_to(root).as_posix()
        stem = rel.removesuffix(".request.json").removeprefix("requests/")
        if f"anthropic/{rel}" not in sources and not (rel.startswith("requests/") and f'"{stem}"' in sources):
            missing.append(rel)
    assert missing == []
