"""The fault table: every way a provider (or the network in front of it) fails, against the loopback
FakeProvider, through the public model API of four wire formats (OpenAI chat, Anthropic, Gemini,
Ollama), streamed and not.

For each fault the table fixes the exact error class, whether the transport retried it and how
often (`fake.request_count` with `RetryPolicy(max_retries=2, backoff_base=0)`), the waits urllib3
asked for (recorded, never slept), and that a stream failing midway raises `StreamError` after the
pieces that did arrive, never a shorter answer. A second part pushes 1,000 faults through a client
with `pool_size=4` and checks that no connection leaked out of the pool.
"""

from __future__ import annotations

import email.utils
import json
import os
import socket
import threading
import time
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
import urllib3.util.connection
import urllib3.util.retry

from rig_sync import errors
from rig_sync.completion import CompletionModel, CompletionResponse
from rig_sync.http import RetryPolicy, Timeout
from rig_sync.providers import anthropic, bedrock, gemini, ollama, openai, vertex
from rig_sync.streaming import FinalResponse, StreamChunk, TextChunk
from rig_sync.testing import FakeProvider, Fault
from rig_sync.testing._bedrock import EVENTSTREAM_CT, event_message

PROMPT = "one two three four five six seven eight nine ten"
POLICY = RetryPolicy(max_retries=2, backoff_base=0)
READ_TIMEOUT = 0.25
ATTEMPTS = 1 + POLICY.max_retries  # every fault is queued this often: enough to exhaust the retries


@pytest.fixture(autouse=True)
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loopback tests must not go through a proxy configured on the machine."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The waits urllib3's Retry asks for, recorded instead of slept."""
    asked: list[float] = []
    fake_time = types.SimpleNamespace(sleep=asked.append, time=time.time, monotonic=time.monotonic)
    monkeypatch.setattr(urllib3.util.retry, "time", fake_time)
    return asked


# --- the four wire formats ----------------------------------------------------------------------------


def _client_options(pool_size: int, retry: RetryPolicy) -> dict[str, Any]:
    # A slot may take longer to free than one short read (eight threads share four connections):
    # the wait for one is bounded on its own, generously.
    return {"retry": retry, "timeout": Timeout(connect=2, read=READ_TIMEOUT, pool=10), "pool_size": pool_size}


def openai_model(url: str, key: str, pool_size: int = 4, retry: RetryPolicy = POLICY) -> CompletionModel:
    return openai.Client(key, base_url=url + "/v1", **_client_options(pool_size, retry)).completion_model("gpt-4o")


def anthropic_model(url: str, key: str, pool_size: int = 4, retry: RetryPolicy = POLICY) -> CompletionModel:
    client = anthropic.Client(key, base_url=url, **_client_options(pool_size, retry))
    return client.completion_model("claude-sonnet-4-5")


def gemini_model(url: str, key: str, pool_size: int = 4, retry: RetryPolicy = POLICY) -> CompletionModel:
    return gemini.Client(key, base_url=url, **_client_options(pool_size, retry)).completion_model("gemini-2.0-flash")


def ollama_model(url: str, key: str, pool_size: int = 4, retry: RetryPolicy = POLICY) -> CompletionModel:
    return ollama.Client(base_url=url, **_client_options(pool_size, retry)).completion_model("llama3")


def vertex_model(url: str, key: str, pool_size: int = 4, retry: RetryPolicy = POLICY) -> CompletionModel:
    client = vertex.Client(token=key, project="fake-project", base_url=url, **_client_options(pool_size, retry))
    return client.completion_model("gemini-2.5-flash")


def vertex_claude_model(url: str, key: str, pool_size: int = 4, retry: RetryPolicy = POLICY) -> CompletionModel:
    client = vertex.Client(token=key, project="fake-project", base_url=url, **_client_options(pool_size, retry))
    return client.completion_model("claude-sonnet-4-5@20250929")


def bedrock_model(url: str, key: str, pool_size: int = 4, retry: RetryPolicy = POLICY) -> CompletionModel:
    client = bedrock.Client(key, base_url=url, **_client_options(pool_size, retry))  # a Bedrock API key
    return client.completion_model("amazon.nova-micro-v1:0")


MODELS: dict[str, Callable[..., CompletionModel]] = {
    "openai": openai_model,
    "anthropic": anthropic_model,
    "gemini": gemini_model,
    "ollama": ollama_model,
    "vertex": vertex_model,
    "vertex_claude": vertex_claude_model,
    "bedrock": bedrock_model,
}

# A 200 whose body is the provider's own error object, in each provider's shape.
ERROR_BODIES: dict[str, dict[str, Any]] = {
    "openai": {"error": {"message": "The engine is overloaded right now", "type": "server_error",
                         "param": None, "code": None}},
    "anthropic": {"type": "error", "error": {"type": "overloaded_error",
                                             "message": "The engine is overloaded right now"}},
    "gemini": {"error": {"code": 503, "message": "The engine is overloaded right now", "status": "UNAVAILABLE"}},
    "ollama": {"error": "The engine is overloaded right now"},
}
ERROR_BODIES["vertex"] = ERROR_BODIES["gemini"]  # Gemini's wire on Vertex
ERROR_BODIES["vertex_claude"] = ERROR_BODIES["anthropic"]  # Anthropic's wire on Vertex
ERROR_BODIES["bedrock"] = {"message": "The engine is overloaded right now"}  # its type goes in a header


def _sse(*events: dict[str, Any], named: bool = False) -> bytes:
    out = b""
    for event in events:
        head = f"event: {event['type']}\n".encode() if named else b""
        out += head + b"data: " + json.dumps(event).encode() + b"\n\n"
    return out


# Well-formed streams, cleanly ended (no reset) but without each format's completion marker.
UNTERMINATED: dict[str, tuple[bytes, str]] = {
    "openai": (_sse(
        {"id": "c1", "object": "chat.completion.chunk", "model": "gpt-4o",
         "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hel"}, "finish_reason": None}]},
        {"id": "c1", "object": "chat.completion.chunk", "model": "gpt-4o",
         "choices": [{"index": 0, "delta": {"content": "lo"}, "finish_reason": "stop"}]},
    ), "text/event-stream"),  # a finish reason, but no `data: [DONE]`
    "anthropic": (_sse(
        {"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "content": [],
                                              "model": "claude-sonnet-4-5", "usage": {"input_tokens": 3}}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hel"}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "lo"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 2}},
        named=True,
    ), "text/event-stream"),  # no `message_stop`
    "gemini": (_sse(
        {"candidates": [{"content": {"parts": [{"text": "Hel"}], "role": "model"}, "index": 0}]},
        {"candidates": [{"content": {"parts": [{"text": "lo"}], "role": "model"}, "index": 0}]},
    ), "text/event-stream"),  # no chunk with a finishReason
    "ollama": (b"".join(
        json.dumps({"model": "llama3", "message": {"role": "assistant", "content": piece}, "done": False}).encode()
        + b"\n" for piece in ("Hel", "lo")
    ), "application/x-ndjson"),  # no `done: true` object
}
UNTERMINATED["vertex"] = UNTERMINATED["gemini"]
UNTERMINATED["vertex_claude"] = UNTERMINATED["anthropic"]


def _bedrock_event(kind: str, data: dict[str, Any]) -> bytes:
    return event_message({":event-type": kind, ":content-type": "application/json", ":message-type": "event"},
                         json.dumps(data).encode())


UNTERMINATED["bedrock"] = (b"".join((  # event-stream messages, no `messageStop` (nor `metadata`)
    _bedrock_event("messageStart", {"role": "assistant"}),
    _bedrock_event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hel"}}),
    _bedrock_event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "lo"}}),
    _bedrock_event("contentBlockStop", {"contentBlockIndex": 0}),
)), EVENTSTREAM_CT)


# --- the table ------------------------------------------------------------------------------------------

Mode = str  # "send" or "stream"


@dataclass(frozen=True)
class Expect:
    error: type[errors.RigError]
    requests: int  # requests the server saw: 1 = not retried, ATTEMPTS = retried until exhausted
    retryable: bool | Mapping[str, bool]  # err.is_retryable(), or per dialect where the formats differ
    waits: tuple[float, ...] = ()
    wait_tolerance: float = 1e-6
    partial: bool = False  # a stream: some text arrived before it failed
    says: str | None = None  # text the error message must carry


@dataclass(frozen=True)
class Case:
    name: str
    fault: Callable[[str], Fault | None]  # dialect -> fault (None: the case needs no fake server)
    send: Expect | None  # outcome of a non-streamed request (None: not applicable)
    stream: Expect | None  # outcome of a streamed request


def http_date_in(seconds: float) -> str:
    return email.utils.formatdate(time.time() + seconds, usegmt=True)


CONN = errors.APIConnectionError
# A streamed request answered by a whole non-stream body: the SSE/NDJSON readers see a stream that
# ended unfinished (retryable, as a cut would be); Gemini's reader sees text outside its events.
# A body that is not an event stream (cut, garbled, a proxy's page) may come right on a retry.
NOT_A_STREAM = Expect(errors.StreamError, 1, True)
RETRIED_5XX = Expect(errors.InternalServerError, ATTEMPTS, True)
PROXY_PAGE = b"<html><head><title>502 Bad Gateway</title></head><body><center>nginx</center></body></html>"

CASES: list[Case] = [
    Case("429 without Retry-After", lambda d: Fault.status(429),
         Expect(errors.RateLimitError, ATTEMPTS, True), Expect(errors.RateLimitError, ATTEMPTS, True)),
    Case("429 Retry-After seconds", lambda d: Fault.status(429, retry_after=2),
         Expect(errors.RateLimitError, ATTEMPTS, True, waits=(2.0, 2.0)),
         Expect(errors.RateLimitError, ATTEMPTS, True, waits=(2.0, 2.0))),
    Case("429 Retry-After HTTP date", lambda d: Fault.status(429, retry_after=http_date_in(20)),
         Expect(errors.RateLimitError, ATTEMPTS, True, waits=(19.5, 19.5), wait_tolerance=1.5),
         Expect(errors.RateLimitError, ATTEMPTS, True, waits=(19.5, 19.5), wait_tolerance=1.5)),
    Case("429 retry-after-ms", lambda d: Fault.status(429, retry_after_ms=250),
         Expect(errors.RateLimitError, ATTEMPTS, True, waits=(0.25, 0.25)),
         Expect(errors.RateLimitError, ATTEMPTS, True, waits=(0.25, 0.25))),
    Case("500", lambda d: Fault.status(500), RETRIED_5XX, RETRIED_5XX),
    Case("502", lambda d: Fault.status(502), RETRIED_5XX, RETRIED_5XX),
    Case("503", lambda d: Fault.status(503), RETRIED_5XX, RETRIED_5XX),
    Case("529", lambda d: Fault.status(529),
         Expect(errors.OverloadedError, ATTEMPTS, True), Expect(errors.OverloadedError, ATTEMPTS, True)),
    Case("connection refused", lambda d: None,
         Expect(CONN, ATTEMPTS, True), Expect(CONN, ATTEMPTS, True)),
    # The headers arrived, so urllib3's retries are over: the transport raises, the caller may retry.
    Case("reset mid-body", lambda d: Fault.truncate(),
         Expect(CONN, 1, True, says="broke off"), Expect(errors.StreamError, 1, True)),
    Case("reset mid-stream", lambda d: Fault.stream_cut(after_events=4),
         Expect(CONN, 1, True, says="broke off"), Expect(errors.StreamError, 1, True, partial=True)),
    Case("accepts and never answers", lambda d: Fault.hang(),
         Expect(errors.APITimeoutError, ATTEMPTS, True), Expect(errors.APITimeoutError, ATTEMPTS, True)),
    Case("truncated JSON", lambda d: Fault.raw(200, b'{"id": "x", "choi', "application/json"),
         Expect(errors.ResponseDecodeError, 1, False, says="not valid JSON"), NOT_A_STREAM),
    Case("invalid UTF-8", lambda d: Fault.raw(200, b'{"id": "\xff\xfe", "choices": []}', "application/json"),
         Expect(errors.ResponseDecodeError, 1, False, says="not valid JSON"), NOT_A_STREAM),
    Case("proxy HTML page, 502", lambda d: Fault.raw(502, PROXY_PAGE),
         Expect(errors.InternalServerError, ATTEMPTS, True, says="502 Bad Gateway"),
         Expect(errors.InternalServerError, ATTEMPTS, True, says="502 Bad Gateway")),
    Case("proxy HTML page, 200", lambda d: Fault.raw(200, PROXY_PAGE),
         Expect(errors.ResponseDecodeError, 1, False, says="<html>"), NOT_A_STREAM),
    Case("200 with a provider error body",
         lambda d: Fault.raw(200, json.dumps(ERROR_BODIES[d]).encode(), "application/json"),
         Expect(errors.ResponseDecodeError, 1, False, says="overloaded right now"),
         # Every reader recognises the provider's error object in place of a stream: not retried.
         Expect(errors.StreamError, 1, False, says="overloaded right now")),
    Case("stream ends without its terminator", lambda d: Fault.raw(200, *UNTERMINATED[d]),
         None, Expect(errors.StreamError, 1, True, partial=True)),
    Case("error event mid-stream",
         lambda d: Fault.sse_error(after_events=4, error={"message": "boom: engine fell over", "type": "api_error"}),
         Expect(errors.InternalServerError, ATTEMPTS, True, says="boom: engine fell over"),
         # Only Anthropic's and Bedrock's error events say (by their type) that the same request may succeed again.
         Expect(errors.StreamError, 1, {"openai": False, "anthropic": True, "gemini": False, "ollama": False,
                                       "vertex": False, "vertex_claude": True,
                                       "bedrock": True},  # Bedrock's internalServerException: retry
                partial=True, says="boom: engine fell over")),
]

ROWS: list[tuple[Case, str, Mode, Expect]] = [
    (case, dialect, mode, expect)
    for case in CASES
    for dialect in MODELS
    for mode, expect in (("send", case.send), ("stream", case.stream))
    if expect is not None
]
TABLE = [pytest.param(*row, id=f"{row[0].name}-{row[1]}-{row[2]}") for row in ROWS]


def closed_port() -> int:
    with socket.socket() as sock:  # bound, never listening: a connect is refused at once
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def attempt(model: CompletionModel, mode: Mode, pieces: list[str]) -> CompletionResponse:
    """One request through the public API; streamed text pieces are appended to `pieces` as they come."""
    request = model.completion_request(PROMPT)
    if mode == "send":
        return request.send()
    final: CompletionResponse | None = None
    chunk: StreamChunk
    for chunk in request.stream():
        if isinstance(chunk, TextChunk):
            pieces.append(chunk.text)
        elif isinstance(chunk, FinalResponse):
            final = chunk.response
    assert final is not None, "a stream ended without its final response and without an error"
    return final


@pytest.mark.parametrize(("case", "dialect", "mode", "expect"), TABLE)
def test_fault_table(case: Case, dialect: str, mode: Mode, expect: Expect, fake: FakeProvider,
                     waits: list[float], monkeypatch: pytest.MonkeyPatch) -> None:
    fault = case.fault(dialect)
    connects: list[object] = []
    if fault is None:  # nobody listens: count the connection attempts instead of requests
        real = urllib3.util.connection.create_connection

        def counting(*args: Any, **kwargs: Any) -> socket.socket:
            connects.append(args[0])
            return real(*args, **kwargs)

        monkeypatch.setattr(urllib3.util.connection, "create_connection", counting)
        model = MODELS[dialect](f"http://127.0.0.1:{closed_port()}", fake.api_key)
    else:
        fake.inject(fault, times=ATTEMPTS)
        model = MODELS[dialect](fake.url, fake.api_key)

    pieces: list[str] = []
    started = time.monotonic()
    with pytest.raises(errors.RigError) as info:
        attempt(model, mode, pieces)
    elapsed = time.monotonic() - started

    err = info.value
    assert type(err) is expect.error, f"{type(err).__name__}: {err}"
    retryable = expect.retryable if isinstance(expect.retryable, bool) else expect.retryable[dialect]
    assert err.is_retryable() is retryable
    assert getattr(err, "provider", None) == model.provider
    seen = len(connects) if fault is None else fake.request_count
    assert seen == expect.requests
    assert waits == pytest.approx(list(expect.waits), abs=expect.wait_tolerance)
    if expect.says is not None:
        assert expect.says in str(err)
    if expect.partial:  # failed midway: the pieces before the failure came, and then the error
        assert pieces, "the stream failed before any text arrived"
        assert "".join(pieces) != "echo: " + PROMPT
    # Bounded: hangs end at the read timeout, everything else well inside it.
    assert elapsed < ATTEMPTS * READ_TIMEOUT + 2.0
    # The connection went back to the pool: the next request on the same client succeeds.
    fake.reset()
    if fault is not None:
        assert attempt(model, mode, []).text


def test_the_table_covers_every_case_in_every_dialect() -> None:
    assert {case.name for case, *_ in ROWS} == {c.name for c in CASES}
    assert {dialect for _, dialect, *_ in ROWS} == set(MODELS)
    streamed_only = [c.name for c in CASES if c.send is None]
    assert streamed_only == ["stream ends without its terminator"]  # the one fault a whole body cannot have


# --- no connection leaks after many faults --------------------------------------------------------------

LEAK_FAULTS = 1000
POOL = 4
NO_RETRY = RetryPolicy(max_retries=0)


def open_sockets() -> int:
    """Sockets this process holds open (Linux: /proc/self/fd entries that are sockets)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
        except OSError:
            continue  # closed while listing (e.g. the listing's own descriptor)
    return count


def run_bounded(fn: Callable[[], object], timeout: float) -> object:
    """`fn()` in a thread: a leaked pool slot makes the pool block forever, which shows up here as a
    failure after `timeout` seconds instead of a hung test run."""
    result: list[object] = []
    failure: list[BaseException] = []

    def target() -> None:
        try:
            result.append(fn())
        except BaseException as exc:  # handed to the test thread
            failure.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), f"still running after {timeout} s: a connection leaked out of the pool"
    if failure:
        raise failure[0]
    return result[0]


# Faults that leave the connection open (the error answer is whole) and those that close it.
KEEP_ALIVE = [Fault.status(500), Fault.status(429), Fault.status(503, retry_after_ms=1), Fault.raw(502, PROXY_PAGE),
              Fault.raw(200, b"<html>oops</html>"), Fault.raw(200, b'{"trunc', "application/json")]
CLOSING = [Fault.drop(), Fault.truncate(), Fault.stream_cut(after_events=2), Fault.sse_error(after_events=2)]


def _faulted_requests(fake: FakeProvider, model: CompletionModel, faults: list[Fault], n: int) -> int:
    failed = 0
    for i in range(n):
        fake.inject(faults[i % len(faults)])
        mode = "stream" if i % 2 else "send"
        try:
            attempt(model, mode, [])
        except errors.RigError:
            failed += 1
    return failed


@pytest.mark.parametrize("dialect", list(MODELS))
def test_no_leak_after_many_faults(dialect: str, fake: FakeProvider) -> None:
    model = MODELS[dialect](fake.url, fake.api_key, pool_size=POOL, retry=NO_RETRY)  # one request per fault
    baseline = open_sockets()
    n = LEAK_FAULTS if dialect == "openai" else LEAK_FAULTS // 4

    failed = run_bounded(lambda: _faulted_requests(fake, model, KEEP_ALIVE + CLOSING, n), timeout=60)
    # A drop always lands on a reused connection here (after a whole error answer): a stale
    # connection, so the request is sent again at once, free, and answered.
    schedule = [(KEEP_ALIVE + CLOSING)[i % len(KEEP_ALIVE + CLOSING)] for i in range(n)]
    drops = sum(1 for fault in schedule if fault is CLOSING[0])
    assert failed == n - drops and fake.request_count == n + drops and fake.pending_faults == 0
    # Whole error answers keep their connection; only faults that close one cost a new one.
    closing = sum(1 for fault in schedule if fault in CLOSING)
    assert fake.connection_count <= closing + 1  # one connection to start, one more after each closing fault
    assert open_sockets() <= baseline + 2 * POOL + 2  # client and server ends of the pooled connections

    # Afterwards a normal request gets a connection at once: every slot was given back.
    fake.reset()
    started = time.monotonic()
    resp = run_bounded(lambda: attempt(model, "send", []), timeout=5)
    assert isinstance(resp, CompletionResponse) and resp.text
    assert time.monotonic() - started < 1.0


def test_keep_alive_error_answers_reuse_pooled_connections(fake: FakeProvider) -> None:
    model = openai_model(fake.url, fake.api_key, pool_size=POOL, retry=NO_RETRY)
    failed = run_bounded(lambda: _send_only(fake, model, KEEP_ALIVE, LEAK_FAULTS), timeout=60)
    assert failed == LEAK_FAULTS
    assert fake.connection_count <= POOL  # a thousand error answers, one connection reused throughout


def _send_only(fake: FakeProvider, model: CompletionModel, faults: list[Fault], n: int) -> int:
    failed = 0
    for i in range(n):
        fake.inject(faults[i % len(faults)])
        try:
            model.completion_request(PROMPT).send()
        except errors.RigError:
            failed += 1
    return failed


def test_threads_sharing_a_small_pool_survive_faults(fake: FakeProvider) -> None:
    """Eight threads over four pooled connections, a third of the requests faulted: nobody waits
    forever for a slot, and every request ends in an answer or a RigError."""
    model = openai_model(fake.url, fake.api_key, pool_size=POOL, retry=NO_RETRY)
    fake.inject(Fault.status(500), times=40)
    fake.inject(Fault.truncate(), times=40)
    outcomes: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        for i in range(30):
            try:
                attempt(model, "stream" if i % 3 == 0 else "send", [])
                kind = "ok"
            except errors.RigError as err:
                kind = type(err).__name__
            with lock:
                outcomes.append(kind)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(8)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    assert not any(t.is_alive() for t in threads), "a thread is stuck waiting for a pooled connection"
    assert len(outcomes) == 240
    assert outcomes.count("ok") == 160
    assert set(outcomes) <= {"ok", "InternalServerError", "APIConnectionError", "StreamError"}
