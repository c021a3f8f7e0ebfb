"""Small values the transport is configured with: timeouts, the retry policy, what a rate limiter
must offer, and how a `Retry-After` is read."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Protocol

import attrs

from .._checks import is_number
from ..errors import InvalidTypeError


@attrs.frozen
class Timeout:
    """Seconds to wait: `connect`, `read` (between bytes of the answer), `total` (the whole call; None:
    no limit) and `pool` (for a free pooled connection; None: as long as `read`). Never unbounded.

    `total` is the most one call may take, end to end: waiting for a pooled connection, connecting,
    sending, reading the whole answer, and every retry and the wait before it (a retry that could not
    finish in time is not made). A streamed answer must be read to its end within it too. A call out
    of time raises `APITimeoutError`. `deadline(seconds)` sets one limit for several calls.

    `pool` bounds the wait when every connection of the pool is in use (streams left open, or more
    threads than `pool_size`): then `APITimeoutError` says so. It defaults to `read`, as a batch with
    more workers than connections waits, rightly, for as long as a call takes.
    """

    connect: float = attrs.field(default=10.0, validator=attrs.validators.gt(0))
    read: float = attrs.field(default=600.0, validator=attrs.validators.gt(0))
    total: float | None = attrs.field(default=None, validator=attrs.validators.optional(attrs.validators.gt(0)))
    pool: float | None = attrs.field(default=None, validator=attrs.validators.optional(attrs.validators.gt(0)))

    @classmethod
    def of(cls, value: Timeout | float | tuple[float, float]) -> Timeout:
        if isinstance(value, Timeout):
            return value
        if isinstance(value, tuple):
            if len(value) != 2:
                raise TypeError(f"a timeout tuple is (connect, read), not {value!r}; use Timeout(...) for total=")
            return cls(float(value[0]), float(value[1]))
        if not is_number(value):
            raise InvalidTypeError(f"timeout must be seconds, a (connect, read) tuple or Timeout, not {value!r}")
        return cls(min(float(value), 10.0), float(value))


@attrs.frozen
class RetryPolicy:
    """When and how long to retry (408, 409, 429, >=500 and connection errors; not 501, 505 or a 500
    whose error says the request can never be served: see `errors.answer_is_retryable`).

    The wait before the n-th retry is `backoff_base * 2**(n-1)`, capped at `backoff_max` and jittered
    down by up to a quarter; a server's `retry-after-ms` / `Retry-After` wins when it is at most
    `max_retry_after` seconds. A longer requested wait is not slept: the error is raised at once
    with its `retry_after`, so the caller (or `rig_sync.batch`) can decide.
    """

    max_retries: int = attrs.field(default=2, validator=attrs.validators.ge(0))
    backoff_base: float = attrs.field(default=0.5, validator=attrs.validators.ge(0))
    backoff_max: float = attrs.field(default=8.0, validator=attrs.validators.ge(0))
    max_retry_after: float = attrs.field(default=60.0, validator=attrs.validators.ge(0))


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from `retry-after-ms`, else `Retry-After` (seconds or HTTP date); None if absent or
    unreadable (NaN, infinite, negative, garbage): then the usual backoff applies."""
    value = headers.get("retry-after-ms")
    if value:
        seconds = _seconds(value)
        if seconds is not None:
            return seconds / 1000.0
    value = headers.get("retry-after")
    if not value:
        return None
    seconds = _seconds(value)
    if seconds is not None:
        return seconds
    from email.utils import parsedate_to_datetime

    try:
        return max(parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
    except (TypeError, ValueError, IndexError, OverflowError, OSError):
        return None


def _seconds(value: str) -> float | None:
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if 0 <= seconds < math.inf else None  # NaN fails the test too


class RateLimiterLike(Protocol):
    """What the transport needs of a rate limiter (see `rig_sync.ratelimit.RateLimiter`)."""

    def acquire(self, tokens: int = 0) -> float: ...

    def observe(self, status: int, headers: Mapping[str, str], retry_after: float | None = None) -> None: ...
