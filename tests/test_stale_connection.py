"""A kept-alive connection the server closed as it was reused (llama-server closes one after a
stream) is not a failed attempt: the request goes again at once on a new connection, without
backoff and without spending a retry."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from rig_sync import errors
from rig_sync.http import RetryPolicy, deadline
from rig_sync.providers import openai

ANSWER = (b'{"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,'
          b'"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],'
          b'"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}')
REPLY = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(ANSWER), ANSWER)


def read_request(conn: socket.socket) -> bool:
    """Read one request (head and Content-Length body); False at EOF."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return False
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lengths = [int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")]
    length = lengths[0] if lengths else 0
    while len(body) < length:
        body += conn.recv(65536)
    return True


@pytest.fixture()
def dropping_server() -> Iterator[tuple[str, list[int]]]:
    """Each connection answers its first request, then closes on the second without a word."""
    listener = socket.create_server(("127.0.0.1", 0))
    served: list[int] = []  # requests answered

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                if read_request(conn):
                    served.append(1)  # counted before the client can have the answer
                    conn.sendall(REPLY)
                    read_request(conn)  # the reuse: closed unanswered

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/v1", served
    listener.shutdown(socket.SHUT_RDWR)  # wakes the accept()
    listener.close()
    thread.join(5)


def test_a_stale_connection_is_resent_at_once_without_spending_a_retry(dropping_server: tuple[str, list[int]]) -> None:
    url, served = dropping_server
    # No retries at all, and a backoff that would overrun the deadline: only a free, immediate resend passes.
    client = openai.Client("sk-test", base_url=url, retry=RetryPolicy(max_retries=0, backoff_base=60.0))
    model = client.completion_model("m")
    with deadline(20):
        for _ in range(4):
            assert model.completion_request("hi").send().text == "hi"
    client.close()  # the server's last connection waits for a request; closing ends it
    assert len(served) == 4


def test_a_fresh_connection_closed_unanswered_is_still_an_error() -> None:
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            read_request(conn)  # closed without an answer on its first request: not stale, a failure

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    client = openai.Client("sk-test", base_url=f"http://127.0.0.1:{listener.getsockname()[1]}/v1", max_retries=0)
    with pytest.raises(errors.APIConnectionError):
        client.completion_model("m").completion_request("hi").send()
    listener.close()
    thread.join(5)
