"""Fault descriptions for :class:`rig_sync.testing.FakeProvider`.

A :class:`Fault` is an immutable description of a misbehaviour; the server
decides how to act it out. Build faults with the class-method constructors and
queue them with ``FakeProvider.inject(fault, times=1, path=None)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["Fault", "FaultKind"]

FaultKind = Literal["status", "drop", "slow", "hang", "truncate", "stream_cut", "raw", "sse_error"]


def _format_retry_after(value: float | str) -> str:
    if isinstance(value, str):
        return value
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


@dataclass(frozen=True)
class Fault:
    """One injected failure. Use the constructors, not the initialiser.

    ``status`` an error reply; ``drop`` closes the connection without replying;
    ``slow`` delays a normal reply; ``hang`` never replies (until the server
    stops); ``truncate`` sends a partial body; ``stream_cut`` cuts an SSE
    stream; ``raw`` sends an arbitrary body; ``sse_error`` sends an error event
    in the middle of a stream.
    """

    kind: FaultKind
    status_code: int = 200
    body: Mapping[str, object] | bytes | str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    content_type: str = "application/json"
    seconds: float = 0.0
    n_bytes: int | None = None
    after_events: int = 0
    error: Mapping[str, object] = field(default_factory=dict)

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
        return cls(kind="status", status_code=code, body=body, headers=tuple(hdrs))

    @classmethod
    def drop(cls) -> Fault:
        """Read the request, then close the TCP connection without replying."""
        return cls(kind="drop")

    @classmethod
    def slow(cls, seconds: float) -> Fault:
        """Wait ``seconds`` (interrupted by server stop), then reply normally."""
        return cls(kind="slow", seconds=float(seconds))

    @classmethod
    def hang(cls) -> Fault:
        """Read the request and never answer (until the server stops)."""
        return cls(kind="hang")

    @classmethod
    def truncate(cls, n_bytes: int | None = None) -> Fault:
        """Announce the full ``Content-Length`` but send only ``n_bytes`` of the
        body (default: half of it), then close the connection."""
        return cls(kind="truncate", n_bytes=n_bytes)

    @classmethod
    def stream_cut(cls, after_events: int = 2) -> Fault:
        """Send ``after_events`` SSE events of a streamed reply, then close the
        connection without the stream terminator. (Non-streamed replies are
        truncated instead.)"""
        return cls(kind="stream_cut", after_events=after_events)

    @classmethod
    def raw(cls, status: int, body_bytes: bytes, content_type: str = "text/html") -> Fault:
        """Reply with an arbitrary status, body and content type (e.g. a proxy's
        HTML error page, invalid UTF-8, truncated JSON with 200)."""
        return cls(
            kind="raw",
            status_code=status,
            body=bytes(body_bytes),
            content_type=content_type,
        )

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
        return cls(kind="sse_error", after_events=after_events, error=err)
