"""A hostile or broken server (issue 12), over loopback sockets: answers that inflate past any
memory, bodies that never end, unreadable Retry-After values, redirects that cannot be followed
or would carry the prompt elsewhere, and error text UTF-8 cannot encode. Whatever arrives, memory
stays bounded and only a `RigError` comes out, one that prints.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import socket
import threading
import tracemalloc
import zlib
from collections.abc import Iterator

import pytest

from rig_sync import errors
from rig_sync.http import MAX_RESPONSE_BYTES, RetryPolicy, Transport
from rig_sync.providers import openai
from rig_sync.testing import FakeProvider, Fault

FAST = RetryPolicy(max_retries=1, backoff_base=0.0)  # a retry without a wait
PEAK_LIMIT = 200 * 2**20


@pytest.fixture
def fake() -> Iterator[FakeProvider]:
    with FakeProvider() as server:
        yield server


def client(fake: FakeProvider) -> openai.Client:
    return openai.Client(fake.api_key, base_url=fake.base_url, retry=FAST)


def send(fake: FakeProvider) -> str:
    return client(fake).completion_model("gpt-4o").completion_request("hi").send().text


def with_headers(fault: Fault, **headers: str) -> Fault:
    return dataclasses.replace(fault, headers=tuple((k.replace("_", "-"), v) for k, v in headers.items()))


def bomb(encoding: str, decoded: int) -> bytes:
    """`decoded` zero bytes, compressed as `encoding` names, built without holding them."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31 if encoding == "gzip" else 15)
    block = bytes(2**20)
    return b"".join([*(packer.compress(block) for _ in range(decoded // len(block))), packer.flush()])


def peak_of(fn: object) -> tuple[BaseException, int]:
    """The error `fn()` raises and the peak of traced memory meanwhile (both threads: the server's too)."""
    tracemalloc.start()
    try:
        with pytest.raises(errors.RigError) as info:
            fn()  # type: ignore[operator]
        return info.value, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# --- bounded memory -------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_a_compressed_bomb_stops_at_the_limit_in_bounded_memory(fake: FakeProvider, encoding: str) -> None:
    body = bomb(encoding, 4 * MAX_RESPONSE_BYTES)  # about 260 KB on the wire, 256 MiB decoded
    fake.inject(with_headers(Fault.raw(200, body, "application/json"), Content_Encoding=encoding))
    err, peak = peak_of(lambda: send(fake))
    assert isinstance(err, errors.ResponseTooLargeError)
    assert isinstance(err, errors.ResponseDecodeError)  # an answer that cannot be used
    assert err.limit == MAX_RESPONSE_BYTES and f"{MAX_RESPONSE_BYTES:,}" in str(err)
    assert "max_response_bytes" in str(err) and "MAX_RESPONSE_BYTES" in str(err)  # how to raise it
    assert peak < PEAK_LIMIT, f"peak traced memory {peak / 2**20:.0f} MiB"


def test_a_compressed_error_body_is_bounded_too(fake: FakeProvider) -> None:
    fake.inject(with_headers(Fault.raw(500, bomb("gzip", 2 * MAX_RESPONSE_BYTES), "application/json"),
                             Content_Encoding="gzip"), times=2)
    err, peak = peak_of(lambda: send(fake))
    assert isinstance(err, errors.ResponseTooLargeError)
    assert peak < PEAK_LIMIT, f"peak traced memory {peak / 2**20:.0f} MiB"


def test_a_compressed_answer_within_the_limit_is_read(fake: FakeProvider) -> None:
    fake.compress = True  # the fake gzips what it sends
    assert send(fake) == "echo: hi"


def test_the_limit_is_a_transport_setting(fake: FakeProvider) -> None:
    transport = Transport("openai", fake.base_url, max_response_bytes=100)
    fake.compress = True
    with pytest.raises(errors.ResponseTooLargeError) as info:
        transport.post_json("/chat/completions", {"model": "m", "messages": [{"role": "user", "content": "x" * 500}]})
    assert "100-byte limit" in str(info.value)
    fake.compress = False  # an honest Content-Length past the limit: refused before a byte is read
    with pytest.raises(errors.ResponseTooLargeError, match="announced"):
        transport.post_json("/chat/completions", {"model": "m", "messages": [{"role": "user", "content": "x" * 500}]})
    with pytest.raises(ValueError):
        Transport("openai", fake.base_url, max_response_bytes=0)


class EndlessServer:
    """Answers every request with a 200 whose body never ends: no Content-Length, read until close."""

    def __init__(self, head: bytes) -> None:
        self.head = head
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        conn, _ = self.sock.accept()
        with conn:
            conn.recv(65536)
            block = b"x" * 2**20
            try:
                conn.sendall(self.head)
                while True:
                    conn.sendall(block)
            except OSError:
                return  # the client hung up, as it should

    def close(self) -> None:
        self.sock.close()
        self.thread.join(10)


@pytest.mark.parametrize("head", [
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n",
    b"HTTP/1.1 500 Oops\r\nContent-Type: text/html\r\nConnection: close\r\n\r\n",
], ids=["answer", "error page"])
def test_a_body_without_end_stops_at_the_limit(head: bytes) -> None:
    server = EndlessServer(head)
    try:
        transport = Transport("openai", f"http://127.0.0.1:{server.port}/v1", retry=RetryPolicy(max_retries=0))
        err, peak = peak_of(lambda: transport.post_json("/chat/completions", {"model": "m"}))
    finally:
        server.close()
    assert isinstance(err, errors.ResponseTooLargeError), err
    assert peak < PEAK_LIMIT, f"peak traced memory {peak / 2**20:.0f} MiB"


# --- every failure is a RigError -------------------------------------------------------------


@pytest.mark.parametrize(("name", "value"), [
    ("Retry-After", "nan"), ("retry-after-ms", "nan"), ("Retry-After", "NaN"), ("Retry-After", "inf"),
    ("retry-after-ms", "inf"), ("Retry-After", "-1"), ("retry-after-ms", "-5"), ("Retry-After", "1e400"),
    ("retry-after-ms", "1e400"), ("Retry-After", "Fri, 31 Dec 99999 23:59:59 GMT"), ("Retry-After", "soon"),
])
def test_an_unreadable_retry_after_is_ignored(fake: FakeProvider, name: str, value: str) -> None:
    fake.inject(with_headers(Fault.status(503), **{name.replace("-", "_"): value}))
    assert send(fake) == "echo: hi"  # retried after the usual backoff
    fake.inject(with_headers(Fault.status(429), **{name.replace("-", "_"): value}))
    with pytest.raises(errors.RateLimitError) as info:
        openai.Client(fake.api_key, base_url=fake.base_url, max_retries=0).completion_model("m").completion_request(
            "hi").send()
    assert info.value.retry_after is None


@pytest.mark.parametrize("location", [
    "http://127.0.0.1:99999/v1/chat/completions",  # port out of range
    "http://127.0.0.1:0/v1/chat/completions",
    "http://[::1/v1",  # an unclosed IPv6 bracket
    "ftp://127.0.0.1/v1/chat/completions",
    "file:///etc/passwd",
    "https:///v1/chat/completions",  # no host
])
@pytest.mark.parametrize("status", [302, 307])
def test_a_malformed_redirect_is_a_status_error(fake: FakeProvider, location: str, status: int) -> None:
    fake.inject(with_headers(Fault.raw(status, b""), Location=location))
    with pytest.raises(errors.APIStatusError) as info:
        send(fake)
    assert info.value.status_code == status
    assert "redirected to" in str(info.value) and "valid host and port" in str(info.value)


def test_a_cross_origin_308_is_refused_and_a_same_origin_one_followed(fake: FakeProvider) -> None:
    with FakeProvider() as other:
        fake.inject(with_headers(Fault.raw(308, b""), Location=other.base_url + "/chat/completions"))
        with pytest.raises(errors.APIStatusError) as info:
            send(fake)
        assert other.requests == []  # neither the prompt nor the key went there
        message = str(info.value)
        assert fake.url in message and other.url in message and "request body" in message
    fake.inject(with_headers(Fault.raw(308, b""), Location="/v1/chat/completions"))
    assert send(fake) == "echo: hi"
    assert fake.requests[-1].headers["authorization"] == f"Bearer {fake.api_key}"


def test_a_cross_origin_303_goes_on_as_a_get_without_the_key_or_the_prompt(fake: FakeProvider) -> None:
    with FakeProvider() as other:
        fake.inject(with_headers(Fault.raw(303, b""), Location=other.base_url + "/models"))
        transport = client(fake).transport
        with pytest.raises(errors.AuthenticationError):  # the other server wants a key it did not get
            transport.post_json("/chat/completions", {"model": "m", "messages": [{"role": "user", "content": "p"}]})
        seen = other.requests[-1]
        assert seen.method == "GET" and not seen.body and "authorization" not in seen.headers


# --- errors render whatever the server sent ----------------------------------------------------


def renders(err: BaseException, caplog: pytest.LogCaptureFixture) -> None:
    """`err` prints, logs and encodes as UTF-8 without an error."""
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict")
    print(err, repr(err), file=out)
    out.flush()
    str(err).encode("utf-8")
    handler = logging.StreamHandler(io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict"))
    handler.handleError = lambda record: pytest.fail("logging the error failed")  # type: ignore[method-assign]
    logger = logging.getLogger("test_hostile_server")
    logger.addHandler(handler)
    try:
        logger.error("failed: %s", err)
        logger.exception("failed", exc_info=err)
    finally:
        logger.removeHandler(handler)


def test_a_lone_surrogate_in_an_error_message_renders(fake: FakeProvider, caplog: pytest.LogCaptureFixture) -> None:
    body = b'{"error": {"message": "bad input \\ud800 here", "code": "x"}, "request_id": "req_\\udfff"}'
    fake.inject(Fault.raw(400, body, "application/json"))
    with pytest.raises(errors.BadRequestError) as info:
        send(fake)
    assert "bad input \\ud800 here" in str(info.value)  # escaped, not dropped
    renders(info.value, caplog)


def test_a_lone_surrogate_in_a_stream_error_event_renders(fake: FakeProvider, caplog: pytest.LogCaptureFixture) -> None:
    event = json.dumps({"error": {"message": "cut \ud83d", "type": "server_error"}}).encode()
    fake.inject(Fault.raw(200, b"data: " + event + b"\n\n", "text/event-stream"))
    model = client(fake).completion_model("gpt-4o")
    with pytest.raises(errors.StreamError) as info:
        model.completion_request("hi").stream().text()
    renders(info.value, caplog)


def test_a_client_sets_its_own_body_limit(fake: FakeProvider) -> None:
    from rig_sync.errors import ResponseTooLargeError
    from rig_sync.providers import openai as openai_provider

    small = openai_provider.Client(fake.api_key, base_url=fake.base_url, max_response_bytes=64, max_retries=0)
    built = (openai_provider.ClientBuilder(fake.api_key).base_url(fake.base_url).max_response_bytes(64)
             .max_retries(0).build())
    for client in (small, built):
        with pytest.raises(ResponseTooLargeError) as info:
            client.completion_model("gpt-4o-mini").completion_request("a question long enough").send()
        assert info.value.limit == 64
    roomy = openai_provider.Client(fake.api_key, base_url=fake.base_url)
    assert roomy.completion_model("gpt-4o-mini").completion_request("hi").send().text == "echo: hi"
    with pytest.raises(ValueError, match="max_response_bytes must be a positive integer"):
        openai_provider.ClientBuilder(fake.api_key).max_response_bytes(0)
