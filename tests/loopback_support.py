"""Loopback helpers for the cancel, close and deadline tests: a tiny HTTP server that answers as slowly
as a test needs (headers, then body bytes one at a time), and views of this process's TCP sockets
from /proc (Linux) so a test can see what the kernel sees: open sockets, their states and queues.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

PROC_TCP = Path("/proc/net/tcp")
needs_proc = pytest.mark.skipif(not PROC_TCP.exists(), reason="needs Linux /proc/net/tcp")

# TCP states as /proc/net/tcp spells them.
ESTABLISHED, SYN_SENT = "01", "02"


def wait_until(condition: Callable[[], Any], seconds: float = 5.0, what: str = "the condition") -> None:
    """Poll `condition` (no fixed sleep) until it holds, failing the test after `seconds`."""
    deadline = time.monotonic() + seconds
    pause = threading.Event()
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {seconds}s"
        pause.wait(0.005)


def run_in_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    """Start `fn` on a daemon thread; the list gets ("ok", result) or ("error", exception)."""
    outcome: list[Any] = []

    def target() -> None:
        try:
            outcome.append(("ok", fn()))
        except BaseException as exc:  # handed to the test
            outcome.append(("error", exc))

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, outcome


def finished(thread: threading.Thread, outcome: list[Any], seconds: float) -> Any:
    """The exception (or result) of a `run_in_thread` call, which must end within `seconds`."""
    thread.join(seconds)
    assert not thread.is_alive(), f"still blocked {seconds}s later"
    return outcome[0][1]


def _tcp_rows() -> Iterator[list[str]]:
    for table in (PROC_TCP, Path("/proc/net/tcp6")):
        if table.exists():
            for line in table.read_text().splitlines()[1:]:
                yield line.split()


def _port(address: str) -> int:
    return int(address.rsplit(":", 1)[1], 16)


def _my_socket_inodes() -> set[str]:
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            link = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    return inodes


def client_sockets(port: int) -> list[dict[str, Any]]:
    """This process's open sockets connected (or connecting) *to* `port`: state, tx queue bytes."""
    mine = _my_socket_inodes()
    return [{"state": row[3], "tx_queue": int(row[4].split(":")[0], 16)}
            for row in _tcp_rows() if _port(row[2]) == port and row[9] in mine]


def server_states(port: int) -> list[str]:
    """TCP states of the accepted (server-side) sockets on `port`; "01" is ESTABLISHED."""
    return [row[3] for row in _tcp_rows() if _port(row[1]) == port and _port(row[2]) != 0]


class SlowServer:
    """An HTTP/1.1 server on 127.0.0.1 that reads each request, sends `head`, then one byte of `body`
    every `interval` seconds (a body of None sends nothing after the head: it hangs there).

    `requests` counts requests read; `answering` is set once a head went out. Stopping closes
    every connection."""

    def __init__(self, head: bytes, body: bytes | None = None, interval: float = 0.2) -> None:
        self.head, self.body, self.interval = head, body, interval
        self.requests = 0
        self.answering = threading.Event()
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._conns: list[socket.socket] = []
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self._conns.append(conn)
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            data = b""
            while b"\r\n\r\n" not in data:
                piece = conn.recv(65536)
                if not piece:
                    return
                data += piece
            head, _, body = data.partition(b"\r\n\r\n")
            length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), 0)
            while len(body) < length:
                piece = conn.recv(65536)
                if not piece:
                    return
                body += piece
            self.requests += 1
            conn.sendall(self.head)
            self.answering.set()
            for byte in self.body if self.body is not None else []:
                if self._stop.wait(self.interval):
                    return
                conn.sendall(bytes([byte]))
            self._stop.wait()
        except OSError:
            return

    def __enter__(self) -> SlowServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._listener.close()
        for conn in self._conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()
        for thread in self._threads:
            thread.join(2)


def json_head(length: int) -> bytes:
    return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % length)


def chunked_head(content_type: bytes = b"application/json") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: " + content_type + b"\r\nTransfer-Encoding: chunked\r\n\r\n"


def chunks(data: bytes) -> bytes:
    """`data` as HTTP chunks of one byte each (a trickled chunked body; no end marker)."""
    return b"".join(b"1\r\n" + bytes([byte]) + b"\r\n" for byte in data)
