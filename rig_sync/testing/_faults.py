"""Faults for :class:`rig_sync.testing.FakeProvider`: each kind is a small frozen class that acts
itself out on the connection it is served on.

Build faults with the :class:`Fault` class-method constructors and queue them with
``FakeProvider.inject(fault, times=1, path=None)``. The server asks a fault twice: :meth:`Fault.act`
before the route runs (a drop, a hang, a wait, an error reply instead of the route's) and
:meth:`Fault.deliver` with the route's response (a truncated body, a cut or erroring stream).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from ._dialect import Dialect, dumps

if TYPE_CHECKING:
    from ._http import RequestHandler
    from ._routes import Response

__all__ = [
    "DropFault",
    "Fault",
    "FaultKind",
    "HangFault",
    "RawFault",
    "SlowFault",
    "SseErrorFault",
    "StatusFault",
    "StreamCutFault",
    "TruncateFault",
]

FaultKind = Literal["status", "drop", "slow", "hang", "truncate", "stream_cut", "raw", "sse_error"]


def _format_retry_after(value: float | str) -> str:
    if isinstance(value, str):
        return value
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)


class Fault:
    """One injected failure. Use the constructors, not the initialiser.

    ``status`` an error reply; ``drop`` closes the connection without replying;
    ``slow`` delays a normal reply; ``hang`` never replies (until the server
    stops); ``truncate`` sends a partial body; ``stream_cut`` cuts an SSE
    stream; ``raw`` sends an arbitrary body; ``sse_error`` sends an error event
    in the middle of a stream. ``fault.kind`` names which.
    """

    kind: ClassVar[FaultKind]

    def __new__(cls, *args: Any, **kwargs: Any) -> Fault:
        if cls is Fault:
            raise TypeError("build a Fault with its constructors: Fault.status(...), Fault.drop(), ...")
        return super().__new__(cls)

    def act(self, handler: RequestHandler, dialect: Dialect, request_id: str) -> bool:
        """Act before the route runs; True when the exchange is over (answered or broken off)."""
        return False

    def deliver(self, handler: RequestHandler, resp: Response, dialect: Dialect, request_id: str) -> None:
        """Send the route's response, as this fault bends it."""
        handler.send(resp, request_id)

    # -- constructors ------------------------------------------------------------

    @classmethod
    def status(
        cls,
        code: int,
        body: Mapping[str, object] | bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
        retry_after: float | str | None = None,
        retry_after_ms: float | None = None,
        should_retry: bool | None = None,
    ) -> Fault:
        """Reply with HTTP status ``code``.

        ``body`` defaults to the provider's error shape for that status (OpenAI:
        ``{"error": {"message", "type", "param", "code"}}``). ``retry_after``
        (seconds or an HTTP-date string), ``retry_after_ms`` and
        ``should_retry`` set ``Retry-After``, ``retry-after-ms`` and
        ``x-should-retry``.
        """
        hdrs: list[tuple[str, str]] = list((headers or {}).items())
        if retry_after is not None:
            hdrs.append(("Retry-After", _format_retry_after(retry_after)))
        if retry_after_ms is not None:
            hdrs.append(("retry-after-ms", _format_retry_after(retry_after_ms)))
        if should_retry is not None:
            hdrs.append(("x-should-retry", "true" if should_retry else "false"))
        return StatusFault(status_code=code, body=body, headers=tuple(hdrs))

    @classmethod
    def drop(cls) -> Fault:
        """Read the request, then close the TCP connection without replying."""
        return DropFault()

    @classmethod
    def slow(cls, seconds: float) -> Fault:
        """Wait ``seconds`` (interrupted by server stop), then reply normally."""
        return SlowFault(seconds=float(seconds))

    @classmethod
    def hang(cls) -> Fault:
        """Read the request and never answer (until the server stops)."""
        return HangFault()

    @classmethod
    def truncate(cls, n_bytes: int | None = None) -> Fault:
        """Announce the full ``Content-Length`` but send only ``n_bytes`` of the
        body (default: half of it), then close the connection."""
        return TruncateFault(n_bytes=n_bytes)

    @classmethod
    def stream_cut(cls, after_events: int = 2) -> Fault:
        """Send ``after_events`` SSE events of a streamed reply, then close the
        connection without the stream terminator. (Non-streamed replies are
        truncated instead.)"""
        return StreamCutFault(after_events=after_events)

    @classmethod
    def raw(cls, status: int, body_bytes: bytes, content_type: str = "text/html") -> Fault:
        """Reply with an arbitrary status, body and content type (e.g. a proxy's
        HTML error page, invalid UTF-8, truncated JSON with 200)."""
        return RawFault(status_code=status, body=bytes(body_bytes), content_type=content_type)

    @classmethod
    def sse_error(cls, after_events: int = 1, error: Mapping[str, object] | None = None) -> Fault:
        """After ``after_events`` SSE events, send an error event
        (``data: {"error": {...}}``) and close. For non-streamed requests the
        error object is returned as a 500 JSON reply."""
        err: dict[str, object] = {
            "message": "The server had an error while processing your request.",
            "type": "server_error",
            "param": None,
            "code": None,
        }
        if error is not None:
            err = dict(error)
        return SseErrorFault(after_events=after_events, error=err)


# --------------------------------------------------------------------------- #
# Before the route: the request is not answered by it
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class DropFault(Fault):
    """Close the connection without replying."""

    kind: ClassVar[FaultKind] = "drop"

    def act(self, handler: RequestHandler, dialect: Dialect, request_id: str) -> bool:
        handler.kill()
        return True


@dataclass(frozen=True)
class HangFault(Fault):
    """Never reply; the connection closes when the fake stops."""

    kind: ClassVar[FaultKind] = "hang"

    def act(self, handler: RequestHandler, dialect: Dialect, request_id: str) -> bool:
        handler.pause(None)
        handler.kill()
        return True


@dataclass(frozen=True)
class SlowFault(Fault):
    """Wait ``seconds``, then let the route answer as usual."""

    kind: ClassVar[FaultKind] = "slow"
    seconds: float = 0.0

    def act(self, handler: RequestHandler, dialect: Dialect, request_id: str) -> bool:
        if handler.pause(self.seconds):  # the fake is stopping
            handler.kill()
            return True
        return False


@dataclass(frozen=True)
class StatusFault(Fault):
    """An error reply: ``body`` (default: the dialect's error for ``status_code``) and ``headers``."""

    kind: ClassVar[FaultKind] = "status"
    status_code: int = 500
    body: Mapping[str, object] | bytes | str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    content_type: str = "application/json"

    def act(self, handler: RequestHandler, dialect: Dialect, request_id: str) -> bool:
        handler.latency()
        if self.body is None:
            body = dumps(dialect.status_error(self.status_code))
        elif isinstance(self.body, bytes):
            body = self.body
        elif isinstance(self.body, str):
            body = self.body.encode("utf-8")
        else:
            body = dumps(dict(self.body))
        handler.send_full(self.status_code, body, self.content_type, self.headers, request_id)
        return True


@dataclass(frozen=True)
class RawFault(Fault):
    """Any status, body and content type, sent as they are."""

    kind: ClassVar[FaultKind] = "raw"
    status_code: int = 200
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    content_type: str = "text/html"

    def act(self, handler: RequestHandler, dialect: Dialect, request_id: str) -> bool:
        handler.latency()
        body = self.body if isinstance(self.body, bytes) else b""
        handler.send_full(self.status_code, body, self.content_type, self.headers, request_id)
        return True


# --------------------------------------------------------------------------- #
# After the route: its response is bent
# --------------------------------------------------------------------------- #


def _cut_body(handler: RequestHandler, resp: Response, n_bytes: int | None, request_id: str) -> None:
    """A whole response with its full ``Content-Length`` but only ``n_bytes`` (default half) sent."""
    n = n_bytes if n_bytes is not None else len(resp.body) // 2
    handler.close_connection = True
    handler.send_full(resp.status, resp.body, resp.content_type, resp.headers, request_id,
                      send_bytes=max(0, min(n, len(resp.body) - 1 if resp.body else 0)))


@dataclass(frozen=True)
class TruncateFault(Fault):
    """Send only ``n_bytes`` (default half) of the body or stream, then close."""

    kind: ClassVar[FaultKind] = "truncate"
    n_bytes: int | None = None

    def deliver(self, handler: RequestHandler, resp: Response, dialect: Dialect, request_id: str) -> None:
        if resp.events is None:
            _cut_body(handler, resp, self.n_bytes, request_id)
            return
        blob = b"".join(resp.events)
        n = self.n_bytes if self.n_bytes is not None else len(blob) // 2
        handler.close_connection = True
        handler.send_stream(resp, request_id, [blob[:n]], terminate=False)


@dataclass(frozen=True)
class StreamCutFault(Fault):
    """Send ``after_events`` events of a stream, then close without its end (a whole body: half)."""

    kind: ClassVar[FaultKind] = "stream_cut"
    after_events: int = 2

    def deliver(self, handler: RequestHandler, resp: Response, dialect: Dialect, request_id: str) -> None:
        if resp.events is None:
            _cut_body(handler, resp, None, request_id)
            return
        handler.close_connection = True
        handler.send_stream(resp, request_id, resp.events[: self.after_events], terminate=False)


@dataclass(frozen=True)
class SseErrorFault(Fault):
    """After ``after_events`` events, the dialect's error event for ``error``; a whole body: a 500."""

    kind: ClassVar[FaultKind] = "sse_error"
    after_events: int = 1
    error: Mapping[str, object] = field(default_factory=dict)

    def deliver(self, handler: RequestHandler, resp: Response, dialect: Dialect, request_id: str) -> None:
        if resp.events is None:
            err = dict(self.error)
            body = dialect.error_body(500, str(err.get("message", "")), str(err.get("type", "server_error")),
                                      _opt_str(err.get("code")), _opt_str(err.get("param")))
            handler.send_full(500, dumps(body), "application/json", (), request_id)
            return
        handler.close_connection = True
        framer = resp.sse_error or dialect.sse_error
        handler.send_stream(resp, request_id, [*resp.events[: self.after_events], framer(self.error)])
