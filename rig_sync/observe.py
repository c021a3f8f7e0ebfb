"""Observation hooks: a callback for every HTTP request the library makes.

Hooks cost nothing when none is registered (the transport checks `has_hooks()` first).
A hook that raises is logged and ignored: observing must never break a request.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import attrs

__all__ = ["RequestEvent", "add_hook", "remove_hook", "has_hooks", "emit"]

log = logging.getLogger("rig_sync.observe")


@attrs.frozen
class RequestEvent:
    """One finished HTTP exchange (after retries), successful or not."""

    provider: str
    method: str
    path: str
    status: int | None
    latency: float
    retries: int
    error: str | None
    request_id: str | None


Hook = Callable[[RequestEvent], None]

_hooks: tuple[Hook, ...] = ()
_lock = threading.Lock()


def add_hook(hook: Hook) -> None:
    """Call `hook(event)` after every request."""
    global _hooks
    with _lock:
        _hooks = (*_hooks, hook)


def remove_hook(hook: Hook) -> None:
    """Stop calling `hook` (no error if it was not registered)."""
    global _hooks
    with _lock:
        # Equality, not identity: `obj.method` makes a new bound-method object on every access.
        _hooks = tuple(h for h in _hooks if h != hook)


def has_hooks() -> bool:
    return bool(_hooks)


def emit(event: RequestEvent) -> None:
    for hook in _hooks:  # a tuple snapshot: safe while other threads add or remove
        try:
            hook(event)
        except Exception:
            log.exception("observe hook %r failed", hook)
