"""The fake's HTTP/1.1 server: accepting connections (plain or TLS), reading request bodies, and
the ways of answering — a whole body, a chunked SSE stream, a cut-off one, a killed connection, a
wait. What to answer is decided elsewhere: the server hands each request's body to its ``answer``.
"""

from __future__ import annotations

import gzip
import selectors
import socket
import ssl
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Protocol

from ._state import FakeState

if TYPE_CHECKING:
    from ._routes import Response

__all__ = ["RequestHandler", "Server", "Settings"]

_EXTRA_PHRASES = {529: "Site Overloaded", 520: "Unknown Error"}


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return _EXTRA_PHRASES.get(status, "Status")


class Settings(Protocol):
    """What the server reads from its owner as it serves (it may change between requests)."""

    tls: ssl.SSLContext | None
    compress: bool
    latency: float


class Server(ThreadingHTTPServer):
    """A threading HTTP server whose ``answer(handler, body)`` replies to every request."""

    daemon_threads = True
    block_on_close = False  # FakeProvider.stop() closes connections and joins
    request_queue_size = 128
    timeout = 0.05  # bound for handle_request() should the accept vanish

    def __init__(
        self,
        addr: tuple[str, int],
        settings: Settings,
        state: FakeState,
        answer: Callable[[RequestHandler, bytes], None],
    ) -> None:
        self.settings = settings
        self.state = state
        self.answer = answer
        super().__init__(addr, RequestHandler)

    def get_request(self) -> tuple[Any, Any]:
        sock, addr = super().get_request()
        tls = self.settings.tls
        if tls is not None:  # the handshake runs in the connection's own thread
            sock = tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def finish_request(self, request: Any, client_address: Any) -> None:
        if isinstance(request, ssl.SSLSocket):
            try:
                request.do_handshake()
            except (OSError, ValueError):
                return  # a client that does not trust us: its error is the point of the test
        super().finish_request(request, client_address)

    def serve_until(self, stop: threading.Event, wake: socket.socket) -> None:
        """Accept connections until ``stop`` is set; ``wake`` becoming readable
        interrupts the wait immediately (no polling interval on shutdown)."""
        with selectors.DefaultSelector() as sel:
            sel.register(self.socket, selectors.EVENT_READ)
            sel.register(wake, selectors.EVENT_READ)
            while not stop.is_set():
                ready = sel.select()
                if stop.is_set():
                    break
                if any(key.fileobj is self.socket for key, _ in ready):
                    self.handle_request()  # readable, so this does not block

    def handle_error(self, request: object, client_address: object) -> None:
        # Broken connections are expected (faults, clients timing out).
        exc = sys.exc_info()[1]
        if isinstance(exc, (OSError, ValueError)):
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]


class RequestHandler(BaseHTTPRequestHandler):
    """One connection: reads each request's body and hands it to the server's ``answer``, which
    replies through :meth:`send`, :meth:`send_full`, :meth:`send_stream`, :meth:`kill`..."""

    protocol_version = "HTTP/1.1"
    server: Server

    # -- connection lifecycle ------------------------------------------------

    def setup(self) -> None:
        super().setup()
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        self.server.state.connection_opened(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.state.connection_closed(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        try:
            body = self._read_body()
        except ValueError:
            body = None
        if body is None:
            self.close_connection = True
            return
        self.server.answer(self, body)

    # -- reading ---------------------------------------------------------------

    def _read_body(self) -> bytes | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    return None
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline(65537)
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        n = int(length)
        if n < 0:
            raise ValueError("negative Content-Length")
        return self.rfile.read(n)

    # -- writing ---------------------------------------------------------------

    def _head(
        self,
        status: int,
        headers: Iterable[tuple[str, str]],
        request_id: str,
    ) -> bytes:
        lines = [f"HTTP/1.1 {status} {_phrase(status)}"]
        lines.extend(f"{k}: {v}" for k, v in headers)
        lines.append(f"x-request-id: {request_id}")
        lines.append("Date: " + self.date_time_string())
        if self.close_connection:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def send(self, resp: Response, request_id: str) -> None:
        """Send a route's response as it is: whole, or as a complete stream."""
        if resp.events is None:
            self.send_full(resp.status, resp.body, resp.content_type, resp.headers, request_id)
        else:
            self.send_stream(resp, request_id, resp.events)

    def send_full(
        self,
        status: int,
        body: bytes,
        content_type: str,
        headers: Iterable[tuple[str, str]],
        request_id: str,
        *,
        send_bytes: int | None = None,
    ) -> None:
        """Send a whole reply (gzipped when the fake compresses and the client accepts it); with
        ``send_bytes``, announce the full length but send only that much of the body."""
        if (self.server.settings.compress and send_bytes is None and body
                and "gzip" in self.headers.get("Accept-Encoding", "")):
            body = gzip.compress(body, mtime=0)
            headers = [*headers, ("Content-Encoding", "gzip")]
        all_headers = [
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
        ]
        all_headers.extend(headers)
        payload = body if send_bytes is None else body[:send_bytes]
        self.wfile.write(self._head(status, all_headers, request_id) + payload)

    def send_stream(
        self,
        resp: Response,
        request_id: str,
        events: Sequence[bytes],
        *,
        terminate: bool = True,
    ) -> None:
        """Send ``events`` as ``resp``'s chunked stream; without ``terminate``, no final chunk."""
        headers = [
            ("Content-Type", resp.content_type),
            ("Transfer-Encoding", "chunked"),
            ("Cache-Control", "no-cache"),
        ]
        headers.extend(resp.headers)
        self.wfile.write(self._head(resp.status, headers, request_id))
        for ev in events:
            if ev:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(ev), ev))
        if terminate:
            self.wfile.write(b"0\r\n\r\n")

    # -- waiting and breaking --------------------------------------------------

    def pause(self, seconds: float | None) -> bool:
        """Wait ``seconds`` (``None``: until the fake stops); True if the fake is stopping."""
        return self.server.state.stop_event.wait(seconds)

    def latency(self) -> None:
        """The fake's configured delay before a reply."""
        delay = self.server.settings.latency
        if delay > 0:
            self.server.state.stop_event.wait(delay)

    def kill(self) -> None:
        """Close the connection without a (further) reply."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
