"""What a running fake remembers, behind one lock: scripted replies and queued faults waiting to be
used, the requests it recorded, its counters, its open connections and its stop event. The HTTP
side and :class:`~rig_sync.testing.FakeProvider` share one :class:`FakeState`.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass

from ._faults import Fault
from ._jobs import JobBoard
from ._values import RecordedRequest, Reply

__all__ = ["FakeState"]


@dataclass
class _FaultEntry:
    fault: Fault
    remaining: int
    path: str | None


class FakeState:
    """The fake's mutable state; every method is safe to call from any thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.scripts: list[tuple[Reply, str | None]] = []
        self.faults: list[_FaultEntry] = []
        self.requests: list[RecordedRequest] = []
        self.request_counter = 0
        self.connection_count = 0
        self.open: dict[socket.socket, threading.Thread] = {}
        self.jobs = JobBoard(self)  # batch jobs and files (_jobs.py), behind their own lock

    # -- queues ------------------------------------------------------------------

    def add_replies(self, replies: tuple[Reply, ...], path: str | None) -> None:
        with self.lock:
            self.scripts.extend((r, path) for r in replies)

    def add_fault(self, fault: Fault, times: int, path: str | None) -> None:
        with self.lock:
            self.faults.append(_FaultEntry(fault, times, path))

    def take_fault(self, path: str) -> Fault | None:
        """The first queued fault for ``path``, used up once."""
        with self.lock:
            for i, entry in enumerate(self.faults):
                if entry.path is None or path.startswith(entry.path):
                    entry.remaining -= 1
                    if entry.remaining <= 0:
                        del self.faults[i]
                    return entry.fault
        return None

    def take_reply(self, path: str, conversational: bool) -> Reply | None:
        """The first scripted reply a route at ``path`` may use (text and tool calls only for
        ``conversational`` ones), taken off the queue."""
        with self.lock:
            for i, (reply, prefix) in enumerate(self.scripts):
                if prefix is not None and not path.startswith(prefix):
                    continue
                if reply.kind != "json" and not conversational:
                    continue
                del self.scripts[i]
                return reply
        return None

    def pending_faults(self) -> int:
        with self.lock:
            return sum(e.remaining for e in self.faults)

    def clear(self) -> None:
        """Forget replies, faults, recorded requests, counters and batch jobs."""
        with self.lock:
            self.scripts.clear()
            self.faults.clear()
            self.requests.clear()
            self.request_counter = 0
            self.connection_count = 0
        self.jobs.clear()

    # -- requests ----------------------------------------------------------------

    def next_request_id(self) -> tuple[int, str]:
        """Count a request: its sequence number and ``x-request-id``."""
        with self.lock:
            self.request_counter += 1
            n = self.request_counter
        return n, f"req_{n}"

    def record(self, req: RecordedRequest) -> None:
        with self.lock:
            self.requests.append(req)

    # -- connections -------------------------------------------------------------

    def connection_opened(self, sock: socket.socket) -> None:
        """Count and track a new connection (shut at once when the fake is stopping)."""
        with self.lock:
            self.connection_count += 1
            stopping = self.stop_event.is_set()
            if not stopping:
                self.open[sock] = threading.current_thread()
        if stopping:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def connection_closed(self, sock: socket.socket) -> None:
        with self.lock:
            self.open.pop(sock, None)

    def open_connections(self) -> list[tuple[socket.socket, threading.Thread]]:
        with self.lock:
            return list(self.open.items())
