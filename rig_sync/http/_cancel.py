"""Cutting requests off: `CancelScope` and `deadline`, and the bookkeeping the pools and readers use
to end a request promptly wherever it waits (no thread enforces anything)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import weakref
from collections.abc import Iterator
from typing import Any

from urllib3.exceptions import ClosedPoolError, EmptyPoolError

from .. import errors
from .._checks import number

_active_scope = threading.local()  # .current: the innermost CancelScope the thread is in


class Cut(Exception):
    """A request ended on purpose: `why` is "cancelled", "closed" (its client was) or "deadline"."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


class NoSlot(EmptyPoolError):
    """`Cut` while waiting for a pooled connection. An `EmptyPoolError`, as urllib3 gives no
    connection back to the pool for it (none was taken)."""

    def __init__(self, pool: Any, why: str) -> None:
        super().__init__(pool, f"stopped waiting for a connection: {why}")
        self.why = why


def current_scope() -> CancelScope | None:
    return getattr(_active_scope, "current", None)


def interrupted(scope: CancelScope | None, pool: Any) -> str | None:
    """Why requests of `scope` (on `pool`) must stop now, if they must."""
    if scope is not None:
        if scope.cancelled:
            return "cancelled"
        if scope.deadline is not None and time.monotonic() >= scope.deadline:
            return "deadline"
    if pool is not None and pool.pool is None:
        return "closed"
    return None


def cut_off(item: Any, why: str) -> None:
    """End what a connection (or a socket still connecting) is doing: shutting the socket down wakes
    a thread blocked on it at once; `_rig_cut` tells its readers why."""
    if isinstance(item, socket.socket):
        sock: Any = item
    else:
        item._rig_cut = why
        sock = getattr(item, "sock", None)
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already closed


class CancelScope:
    """Cut off, from another thread, the requests a thread makes inside `with scope:`, and with
    `timeout` (seconds), end them once that much time has passed since the scope was entered.

    `cancel()` ends every request of the scope promptly wherever it is: waiting for a pooled
    connection, connecting, sending, waiting for the answer, reading it or a stream, or waiting to
    retry. Each raises `RequestCancelledError`; nothing of the scope is retried or sent afterwards.
    Past the deadline, requests raise `APITimeoutError`. No thread enforces either: `cancel()` shuts
    the scope's sockets down, and every wait is cut to the time left.

    Scopes nest: an inner scope is cancelled with its outer one and ends no later than it. Enter a
    scope once, on one thread. `rig_sync.batch.fan_out(mode="first")` stops its losers with one;
    `deadline(seconds)` makes one with a timeout.
    """

    def __init__(self, timeout: float | None = None) -> None:
        if timeout is not None:
            number(timeout, "a deadline (seconds)", above=0, finite=False)
        self.timeout = timeout
        self.deadline: float | None = None  # time.monotonic() by which the scope's requests must end
        self.seconds = timeout  # the limit that set `deadline` (an outer scope's may be sooner)
        self._lock = threading.Lock()
        self._held: set[Any] = set()  # connections in use, and sockets connecting, for the scope's requests
        self._waiting: set[Any] = set()  # pool queues a request of the scope waits on
        self._inner: weakref.WeakSet[CancelScope] | None = None
        self._outer: CancelScope | None = None
        self._cancelled = threading.Event()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def __enter__(self) -> CancelScope:
        outer = current_scope()
        self._outer = outer
        if self.timeout is not None:
            self.deadline = time.monotonic() + self.timeout
        if outer is not None:
            if outer.deadline is not None and (self.deadline is None or outer.deadline < self.deadline):
                self.deadline, self.seconds = outer.deadline, outer.seconds
            with outer._lock:
                if outer._inner is None:
                    outer._inner = weakref.WeakSet()
                outer._inner.add(self)  # kept while alive: a stream may outlive the `with`
            if outer.cancelled:
                self.cancel()
        _active_scope.current = self
        return self

    def __exit__(self, *exc: object) -> None:
        _active_scope.current = self._outer

    def cancel(self) -> None:
        """End the scope's requests now; later ones raise at once. Safe from any thread, idempotent."""
        self._cancelled.set()
        with self._lock:
            held, waiting, inner = list(self._held), list(self._waiting), list(self._inner or ())
        for item in held:
            cut_off(item, "cancelled")
        for queue in waiting:
            with queue.not_empty:
                queue.not_empty.notify_all()
        for scope in inner:
            scope.cancel()

    def _take(self, conn: Any) -> None:
        with self._lock:
            if self.cancelled:
                raise Cut("cancelled")
            self._held.add(conn)
        conn._rig_scope = self

    def _give_back(self, conn: Any) -> None:
        with self._lock:
            self._held.discard(conn)

    @contextlib.contextmanager
    def _holding(self, item: Any, held: set[Any]) -> Iterator[None]:
        """`item` (a connecting socket in `_held`, a pool queue in `_waiting`) is the scope's to wake meanwhile."""
        with self._lock:
            if self.cancelled:
                raise Cut("cancelled")
            held.add(item)
        try:
            yield
        finally:
            with self._lock:
                held.discard(item)

    def _pause(self, seconds: float) -> None:
        """Wait before a retry; a cancel ends the wait."""
        if self._cancelled.wait(seconds):
            raise Cut("cancelled")


def deadline(seconds: float) -> CancelScope:
    """`with deadline(30): ...`: every request made inside ends by then, or raises `APITimeoutError`.

    It spans everything inside: several calls, their retries and waits, and streams read inside it
    (a stream opened inside must be read to its end by the deadline, wherever it is read). Nested
    deadlines keep the sooner one; `Timeout(total=...)` works per call within it. Enforced without a
    thread: every wait (for a pooled connection, connect, each read) is cut to the time left. Returns
    a `CancelScope`, so it can also be cancelled."""
    return CancelScope(seconds)


NO_LIMIT = contextlib.nullcontext()


def why_cut(causes: list[BaseException], scope: CancelScope | None, pool: Any) -> str | None:
    """Why a failed request was cut off on purpose, if it was: cancelled, its client closed, or out of time."""
    for cause in causes:
        if isinstance(cause, (Cut, NoSlot)):
            return cause.why
        if isinstance(cause, ClosedPoolError):
            return "closed"
    return interrupted(scope, pool)


def cut_error(why: str, what: str, scope: CancelScope | None, provider: str) -> errors.APIConnectionError:
    if why == "cancelled":
        return errors.RequestCancelledError(f"{what}: cancelled (CancelScope.cancel())", provider=provider)
    if why == "closed":
        return errors.APIConnectionError(f"{what}: the client was closed while it was in flight "
                                         "(a call made after close() opens new connections)", provider=provider)
    seconds = scope.seconds if scope is not None and scope.seconds is not None else 0.0
    return errors.APITimeoutError(f"{what}: not done within its {seconds:g}s deadline "
                                  "(Timeout(total=...) or rig_sync.http.deadline())", provider=provider)


def fit_to_deadline(raw: Any, scope: CancelScope) -> None:
    """Before a read: out of time raises; else the socket's timeout is cut to the time left."""
    if scope.deadline is not None and time.monotonic() >= scope.deadline:
        raise Cut("deadline")
    conn: Any = getattr(raw, "connection", None)
    sock = getattr(conn, "sock", None)
    if sock is not None:
        sock.settimeout(conn.timeout)  # min(read timeout, time left): see `scoped_connection_class`
