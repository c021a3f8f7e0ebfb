"""Client-side rate limits for synchronous code: requests and tokens per minute, shared by threads.

`RateLimiter(rpm=600, tpm=90_000)` hands out evenly spaced slots (no burst that overshoots the
provider's window): each `acquire()` reserves the next slot under a lock and sleeps until it,
outside the lock, so waiting threads never spin. It adapts to the provider: a 429 with
`Retry-After`, or rate-limit headers saying nothing is left until a reset, pause every thread
that shares the limiter instead of letting each one hammer the provider.

Give it to a client (`openai.Client(key, rate_limiter=limiter)`, then every request of that
client passes through it) or to `batch.map(..., rate_limit=limiter)`. `RateLimiter.shared(name)`
returns one limiter per name, for clients built in different places.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime

__all__ = ["RateLimiter", "parse_reset"]

_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m(?!s))?(?:(\d+(?:\.\d+)?)s)?(?:(\d+(?:\.\d+)?)ms)?$")


def parse_reset(value: str, now: Callable[[], float] = time.time) -> float | None:
    """Seconds until a rate-limit reset given as OpenAI's duration ("1s", "6m0s", "250ms"),
    plain seconds ("20") or Anthropic's RFC 3339 time ("2024-03-26T20:00:00Z")."""
    value = value.strip()
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    match = _DURATION.match(value)
    if match and any(match.groups()):
        h, m, s, ms = (float(g) if g else 0.0 for g in match.groups())
        return h * 3600 + m * 60 + s + ms / 1000
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return max(when.timestamp() - now(), 0.0)


# (remaining header, reset header) pairs the providers send.
_HEADER_PAIRS = (
    ("x-ratelimit-remaining-requests", "x-ratelimit-reset-requests"),
    ("x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens"),
    ("anthropic-ratelimit-requests-remaining", "anthropic-ratelimit-requests-reset"),
    ("anthropic-ratelimit-tokens-remaining", "anthropic-ratelimit-tokens-reset"),
    ("anthropic-ratelimit-input-tokens-remaining", "anthropic-ratelimit-input-tokens-reset"),
    ("anthropic-ratelimit-output-tokens-remaining", "anthropic-ratelimit-output-tokens-reset"),
)


class RateLimiter:
    """Requests-per-minute and tokens-per-minute limits; thread-safe, blocking, never busy."""

    _registry: dict[str, RateLimiter] = {}
    _registry_lock = threading.Lock()

    def __init__(
        self,
        rpm: float | None = None,
        tpm: float | None = None,
        *,
        max_pause: float = 120.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        for name, value in (("rpm", rpm), ("tpm", tpm)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0):
                raise ValueError(f"{name} must be a positive number or None, not {value!r}")
        self.rpm = rpm
        self.tpm = tpm
        self.max_pause = max_pause
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_request = 0.0  # earliest time of the next request slot
        self._next_tokens = 0.0  # earliest time the token budget allows the next request
        self._paused_until = 0.0
        self.waited = 0.0  # total seconds callers spent waiting (for metrics and tests)

    @classmethod
    def shared(cls, name: str, rpm: float | None = None, tpm: float | None = None) -> RateLimiter:
        """The limiter registered under `name`, created with these limits on first use."""
        with cls._registry_lock:
            limiter = cls._registry.get(name)
            if limiter is None:
                limiter = cls._registry[name] = cls(rpm, tpm)
            return limiter

    def reserve(self, tokens: int = 0) -> float:
        """Reserve the next slot for one request of about `tokens` tokens; return the wait."""
        with self._lock:
            now = self._clock()
            start = max(now, self._next_request, self._next_tokens, self._paused_until)
            if self.rpm:
                self._next_request = start + 60.0 / self.rpm
            if self.tpm and tokens > 0:
                self._next_tokens = start + 60.0 * tokens / self.tpm
            return start - now

    def acquire(self, tokens: int = 0) -> float:
        """Block until a request of about `tokens` tokens may go; returns seconds waited."""
        wait = self.reserve(tokens)
        if wait > 0:
            self._sleep(wait)
            with self._lock:
                self.waited += wait
        return wait

    def pause(self, seconds: float) -> None:
        """Hold every caller for `seconds` (capped at `max_pause`), e.g. after a 429."""
        if seconds > 0:
            with self._lock:
                self._paused_until = max(self._paused_until, self._clock() + min(seconds, self.max_pause))

    def observe(self, status: int, headers: Mapping[str, str], retry_after: float | None = None) -> None:
        """Learn from a response: a 429's wait, or headers saying the budget is spent until a reset."""
        if status == 429:
            self.pause(retry_after if retry_after is not None else 1.0)
        for remaining_name, reset_name in _HEADER_PAIRS:
            remaining = headers.get(remaining_name)
            if remaining is None:
                continue
            try:
                spent = float(remaining) <= 0
            except ValueError:
                continue
            if spent:
                reset = parse_reset(headers.get(reset_name, ""))
                if reset:
                    self.pause(reset)

    def __repr__(self) -> str:
        return f"RateLimiter(rpm={self.rpm}, tpm={self.tpm})"
