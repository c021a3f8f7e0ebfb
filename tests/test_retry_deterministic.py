"""Deterministic 500s are not retried (issue 13, "Deterministic failures are retried").

llama.cpp's `llama-server` answers some requests it can never serve with a 500, e.g. early-2025
builds: `500 {"error":{"code":500,"message":"Cannot use tools with stream","type":"server_error"}}`.
Such an answer is sent once; any other 500 is retried as before. Driven through the public API
against a loopback server that answers exactly as scripted and counts what it is sent.
"""

from __future__ import annotations

import gzip
import http.server
import json
import threading
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest
import requests

from rig_sync import errors
from rig_sync.client import CompletionClient
from rig_sync.completion import ToolDefinition
from rig_sync.http import RetryPolicy, Timeout, deadline
from rig_sync.providers import llamacpp

TOOL = ToolDefinition("add", "Add two numbers", {"type": "object", "properties": {"a": {"type": "number"}}})
RETRIES = 2  # so a retried answer is sent 1 + RETRIES times
TOOLS_WITH_STREAM = {"error": {"code": 500, "message": "Cannot use tools with stream", "type": "server_error"}}
TRANSIENT = {"error": {"code": 500, "message": "Internal server error", "type": "server_error"}}
OK = {"id": "c1", "object": "chat.completion", "created": 0, "model": "m",
      "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "fine"}}],
      "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
OK_EVENTS = b"".join(b"data: %s\n\n" % json.dumps(event).encode() for event in [
    {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": "m",
     "choices": [{"index": 0, "finish_reason": None, "delta": {"role": "assistant", "content": "fine"}}]},
    {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": "m",
     "choices": [{"index": 0, "finish_reason": "stop", "delta": {}}]},
]) + b"data: [DONE]\n\n"
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "all_proxy",
              "no_proxy")


@pytest.fixture(autouse=True)
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loopback requests must not go through a proxy configured on the machine."""
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)


class Answer:
    """One scripted answer: status, body (bytes, or a JSON value), headers; `chunked` sends it without
    a Content-Length, in chunks; `gzipped` compresses it (Content-Encoding: gzip)."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None, *, chunked: bool = False,
                 gzipped: bool = False, content_type: str = "application/json") -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.status, self.headers, self.chunked = status, {"Content-Type": content_type, **(headers or {})}, chunked
        self.body = gzip.compress(data) if gzipped else data
        if gzipped:
            self.headers["Content-Encoding"] = "gzip"


class Server:
    """A loopback HTTP/1.1 server (keep-alive) answering from a script, then with `OK` (as events, to a
    stream request). `hits` is the number of requests it was sent; `ports` the client port of each
    (one port: one connection)."""

    def __init__(self, *script: Answer) -> None:
        self.script = list(script)
        self.hits = 0
        self.ports: list[int] = []
        self._lock = threading.Lock()
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                streamed = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0))).get("stream")
                with owner._lock:
                    owner.hits += 1
                    owner.ports.append(self.client_address[1])
                    answer = owner.script.pop(0) if owner.script else (
                        Answer(200, OK_EVENTS, content_type="text/event-stream") if streamed else Answer(200, OK))
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                if answer.chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                else:
                    self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                view = memoryview(answer.body)
                step = 64 * 1024
                try:
                    for start in range(0, len(view), step):
                        piece = view[start:start + step]
                        if answer.chunked:
                            self.wfile.write(b"%x\r\n" % len(piece) + piece + b"\r\n")
                        else:
                            self.wfile.write(piece)
                    if answer.chunked:
                        self.wfile.write(b"0\r\n\r\n")
                except OSError:
                    self.close_connection = True  # the client stopped reading: nothing to do

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.01,), daemon=True)

    def __enter__(self) -> Server:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def client(server: Server, **kwargs: Any) -> CompletionClient:
    built: CompletionClient = llamacpp.Client(
        base_url=server.base_url, retry=RetryPolicy(max_retries=RETRIES, backoff_base=0.0),
        timeout=Timeout(connect=2, read=10), **kwargs)
    return built


def send(server: Server, **kwargs: Any) -> str:
    return client(server, **kwargs).completion_model("m").completion_request("hi").tool(TOOL).send().text


def completion(server: Server, **kwargs: Any) -> str:
    model = client(server, **kwargs).completion_model("m")
    return model.completion(model.completion_request("hi").tool(TOOL).build()).text


def stream(server: Server, **kwargs: Any) -> str:
    with client(server, **kwargs).completion_model("m").completion_request("hi").tool(TOOL).stream() as chunks:
        return "".join(chunks.text_stream())


def in_deadline(call: Callable[..., str]) -> Callable[..., str]:
    """`call` inside a deadline: the body is read one socket read at a time, each within the time left."""
    def run(server: Server, **kwargs: Any) -> str:
        with deadline(10):
            return call(server, **kwargs)
    return run


def own_session(call: Callable[..., str]) -> Callable[..., str]:
    """`call` on the caller's own `requests.Session`: the answer is a `requests.Response`."""
    def run(server: Server, **kwargs: Any) -> str:
        with requests.Session() as session:
            return call(server, session=session, **kwargs)
    return run


CALLS = {"send": send, "completion": completion, "stream": stream, "send in a deadline": in_deadline(send),
         "stream in a deadline": in_deadline(stream), "send on own session": own_session(send),
         "stream on own session": own_session(stream)}


def status_error(fn: Callable[[], Any]) -> errors.APIStatusError:
    with pytest.raises(errors.InternalServerError) as info:
        fn()
    return info.value


# --- a deterministic 500 is sent once, and its error carries the server's answer ----------------------


@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
@pytest.mark.parametrize("framing", [{}, {"chunked": True}, {"gzipped": True}, {"gzipped": True, "chunked": True}],
                         ids=["length", "chunked", "gzip", "gzip chunked"])
def test_cannot_use_tools_with_stream_is_sent_once(call: Callable[..., str], framing: dict[str, Any]) -> None:
    with Server(*[Answer(500, TOOLS_WITH_STREAM, {"x-request-id": "req-7"}, **framing)] * 3) as server:
        err = status_error(lambda: call(server))
    assert server.hits == 1
    assert err.status_code == 500 and err.provider == "llamacpp" and err.request_id == "req-7"
    assert err.message == "Cannot use tools with stream" and err.code == "server_error"
    assert err.body == TOOLS_WITH_STREAM  # all of it, decoded: what was read to decide is not lost
    assert "Cannot use tools with stream" in str(err) and not err.is_retryable()


@pytest.mark.parametrize("error", [
    {"code": 500, "message": "Failed to parse messages: Expected 'content' (ref: https://github.com/ggml-org/"
                             "llama.cpp/issues/8367)", "type": "server_error"},
    {"code": 500, "message": "image input is not supported by this server", "type": "server_error"},
    {"code": 500, "message": "tools param requires --jinja flag", "type": "server_error"},
    {"code": 500, "message": "This feature is unavailable", "type": "not_supported_error"},
    {"code": 500, "message": "Unsupported param: tool_choice", "type": "invalid_request_error"},
], ids=["expected content", "not supported", "needs --jinja", "not_supported_error", "invalid_request_error"])
def test_other_deterministic_500s_are_sent_once(error: dict[str, Any]) -> None:
    with Server(*[Answer(500, {"error": error})] * 3) as server:
        err = status_error(lambda: send(server))
    assert server.hits == 1 and err.message == error["message"] and not err.is_retryable()


def test_a_plain_text_deterministic_500_is_sent_once() -> None:
    with Server(*[Answer(500, b"Cannot use tools with stream")] * 3) as server:
        err = status_error(lambda: send(server))
    assert server.hits == 1 and err.body == "Cannot use tools with stream"


# --- any other 500 is retried as before ----------------------------------------------------------------


@pytest.mark.parametrize("body", [
    TRANSIENT,
    b"<html><body><h1>500 Internal Server Error</h1></body></html>",
    b"",
    # what the model wrote did not parse: a new sample may, whatever the quoted output says
    {"error": {"code": 500, "message": "Failed to parse tool call arguments as JSON: not supported",
               "type": "server_error"}},
    {"error": {"code": 500, "message": "Failed to parse input at pos 3: <tool_call>Cannot use tools with stream",
               "type": "server_error"}},
], ids=["internal server error", "html page", "empty", "tool call parse", "model output parse"])
@pytest.mark.parametrize("call", [send, stream], ids=["send", "stream"])
def test_a_transient_500_is_retried_and_then_succeeds(call: Callable[..., str], body: Any) -> None:
    with Server(*[Answer(500, body)] * RETRIES) as server:
        assert call(server) == "fine"
    assert server.hits == 1 + RETRIES
    assert len(set(server.ports)) == 1  # each retried answer was drained and its connection reused


def test_a_transient_500_is_raised_once_retries_are_spent() -> None:
    with Server(*[Answer(500, TRANSIENT, gzipped=True)] * (1 + RETRIES)) as server:
        err = status_error(lambda: send(server))
    assert server.hits == 1 + RETRIES
    assert err.message == "Internal server error" and err.body == TRANSIENT and err.is_retryable()


def test_x_should_retry_true_wins_over_the_body() -> None:
    with Server(*[Answer(500, TOOLS_WITH_STREAM, {"x-should-retry": "true"})] * RETRIES) as server:
        assert send(server) == "fine"
    assert server.hits == 1 + RETRIES


def test_x_should_retry_false_is_not_retried_whatever_the_body() -> None:
    with Server(*[Answer(500, TRANSIENT, {"x-should-retry": "false"})] * 3) as server:
        err = status_error(lambda: send(server))
    assert server.hits == 1 and err.message == "Internal server error" and not err.is_retryable()


def test_other_5xx_statuses_are_not_judged_by_their_body() -> None:
    with Server(*[Answer(503, TOOLS_WITH_STREAM)] * RETRIES) as server:
        assert send(server) == "fine"
    assert server.hits == 1 + RETRIES


# --- a huge 500 is not read to decide: it is retried, in bounded memory ----------------------------------

HUGE = 10 * 2**20


@pytest.mark.parametrize("chunked", [False, True], ids=["length", "chunked"])
def test_a_huge_500_is_retried_without_being_buffered(chunked: bool) -> None:
    # It begins with a deterministic error: read whole, it would be judged so and sent once.
    start = json.dumps(TOOLS_WITH_STREAM).encode()
    huge = Answer(500, start + b" " * (HUGE - len(start)), chunked=chunked)
    with Server(huge, huge) as server:
        tracemalloc.start()
        try:
            assert send(server) == "fine"
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert server.hits == 1 + RETRIES
    assert peak < HUGE // 4, f"peak traced memory {peak / 2**20:.1f} MiB"


# --- the rule itself ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "headers", "body", "retryable"), [
    (500, {}, None, True),  # unread: the status decides
    (500, {}, json.dumps(TOOLS_WITH_STREAM).encode(), False),
    (500, {}, TOOLS_WITH_STREAM, False),  # decoded, as an error keeps it
    (500, {}, json.dumps(TRANSIENT).encode(), True),
    (500, {}, b"\xff\xfe not UTF-8, not JSON", True),
    (500, {"x-should-retry": "true"}, TOOLS_WITH_STREAM, True),
    (502, {}, TOOLS_WITH_STREAM, True),
    (501, {}, TRANSIENT, False),
    (400, {}, TRANSIENT, False),
    (429, {}, TOOLS_WITH_STREAM, True),
    # llama-server (current, and b4875 without the counts): an embedding input past its batch
    (500, {}, {"error": {"code": 500, "message": "input (600 tokens) is too large to process. increase the "
                         "physical batch size (current batch size: 512)", "type": "server_error"}}, False),
    # llama-server b4875 with --no-context-shift, generating past the context
    (500, {}, {"error": {"code": 500, "message": "context shift is disabled", "type": "server_error"}}, False),
])
def test_answer_is_retryable(status: int, headers: dict[str, str], body: Any, retryable: bool) -> None:
    assert errors.answer_is_retryable(status, headers, body) is retryable
