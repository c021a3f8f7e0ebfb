"""A lean loopback chat server for throughput benchmarks: every answer after a fixed latency.

FakeProvider (http.server, one Python thread per connection) spends about 0.4 ms of CPU on each
request. When 32 answers fall due at once that is over 10 ms per wave on top of the latency the
benchmark sets, and the server's CPU, not the client under test, decides the result. This server
is one thread on `selectors` with a timer heap: it parses just enough HTTP/1.1 (keep-alive,
Content-Length bodies) and answers every chat completion with the same small body, so both
clients of a comparison are measured against nearly pure latency.

Run as `python _latency_server.py LATENCY`: prints its base URL, then answers "count" lines on
stdin with the number of connections accepted since the last count.
"""

from __future__ import annotations

import heapq
import json
import os
import selectors
import socket
import sys
import time

BODY = json.dumps({
    "id": "chatcmpl-bench", "object": "chat.completion", "created": 0, "model": "gpt-4o-mini",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "echo: Hello there"},
                 "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5},
}).encode()
RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nx-request-id: req_bench\r\n"
            b"Content-Length: " + str(len(BODY)).encode() + b"\r\n\r\n" + BODY)


class Connection:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def requests(self) -> int:
        """How many whole requests the buffer holds (they are consumed)."""
        count = 0
        while True:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return count
            length = 0
            for line in self.buffer[:head_end].split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            end = head_end + 4 + length
            if len(self.buffer) < end:
                return count
            self.buffer = self.buffer[end:]
            count += 1


def serve(latency: float) -> None:
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(256)
    listener.setblocking(False)
    selector = selectors.SelectSelector()
    selector.register(listener, selectors.EVENT_READ, "accept")
    selector.register(sys.stdin, selectors.EVENT_READ, "control")
    print(f"http://127.0.0.1:{listener.getsockname()[1]}/v1", flush=True)
    due: list[tuple[float, int, Connection]] = []
    sequence = accepted = 0
    while True:
        timeout = max(0.0, due[0][0] - time.monotonic()) if due else None
        for key, _ in selector.select(timeout):
            if key.data == "accept":
                sock, _ = listener.accept()
                sock.setblocking(False)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                selector.register(sock, selectors.EVENT_READ, Connection(sock))
                accepted += 1
            elif key.data == "control":
                line = sys.stdin.readline()
                if not line:
                    return
                if line.strip() == "count":
                    print(accepted, flush=True)
                    accepted = 0
            else:
                conn: Connection = key.data
                try:
                    data = conn.sock.recv(65536)
                except ConnectionError:
                    data = b""
                if not data:
                    selector.unregister(conn.sock)
                    conn.sock.close()
                    continue
                conn.buffer += data
                for _ in range(conn.requests()):
                    sequence += 1
                    heapq.heappush(due, (time.monotonic() + latency, sequence, conn))
        now = time.monotonic()
        while due and due[0][0] <= now:
            _, _, conn = heapq.heappop(due)
            try:
                conn.sock.sendall(RESPONSE)  # small: fits the socket buffer, never blocks here
            except OSError:
                pass


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    serve(float(sys.argv[1]))
