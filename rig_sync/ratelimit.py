"""Client-side rate limits for synchronous code: requests and tokens per minute, shared by threads.

`RateLimiter(rpm=600, tpm=90_000)` hands out evenly spaced slots (no burst that overshoots the
provider's window): each `acquire()` reserves the next slot under a lock and sleeps until it,
outside the lock, so waiting threads never spin. It adapts to the provider: a 429 with
`Retry-After`, or rate-limit headers saying nothing is left until a reset, pause every thread
that shares the limiter instead of letting each one hammer the provider; headers saying the
request budget is nearly spent slow requests down to the rate at which it refills.

Give it to a client (`openai.Client(key, rate_limiter=limiter)`, then every request of that
client passes through it, retries included), to `batch.map(..., rate_limit=limiter)` (a slot per
item), or to both: the slot `batch.map` takes for an item covers that item's first request
through a client sharing the limiter (`RateLimiter.slot`), so nothing pays twice.
`RateLimiter.shared(name)` returns one limiter per name, for clients built in different places.

Tokens: the transport estimates a JSON request's tokens (a quarter of its bytes plus its
`max_tokens`) and the model layer reports the real usage afterwards (`record_tokens`), which
corrects the budget for the requests that reserve after it. Callers of `acquire` directly (e.g.
a `batch.map` function) pass their own estimate: `limiter.acquire(tokens=len(text) // 4 + 256)`.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timezone
from typing import Any

__all__ = ["RateLimiter", "parse_reset"]

_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m(?!s))?(?:(\d+(?:\.\d+)?)s)?(?:(\d+(?:\.\d+)?)ms)?$")


def parse_reset(value: str, now: Callable[[], float] = time.time) -> float | None:
    """Seconds until a rate-limit reset given as OpenAI's duration ("1s", "6m0s", "250ms"),
    plain seconds ("20") or Anthropic's RFC 3339 time ("2024-03-26T20:00:00Z"); None if unreadable."""
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(seconds, 0.0) if seconds == seconds else None  # NaN is unreadable
    match = _DURATION.match(value)
    if match and any(match.groups()):
        h, m, s, ms = (float(g) if g else 0.0 for g in match.groups())
        return h * 3600 + m * 60 + s + ms / 1000
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)  # the providers send UTC
    return max(when.timestamp() - now(), 0.0)


# (limit, remaining, reset) headers the providers send; True marks request counts (not tokens).
_HEADERS = (
    ("x-ratelimit-limit-requests", "x-ratelimit-remaining-requests", "x-ratelimit-reset-requests", True),
    ("x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens", False),
    ("anthropic-ratelimit-requests-limit", "anthropic-ratelimit-requests-remaining",
     "anthropic-ratelimit-requests-reset", True),
    ("anthropic-ratelimit-tokens-limit", "anthropic-ratelimit-tokens-remaining",
     "anthropic-ratelimit-tokens-reset", False),
    ("anthropic-ratelimit-input-tokens-limit", "anthropic-ratelimit-input-tokens-remaining",
     "anthropic-ratelimit-input-tokens-reset", False),
    ("anthropic-ratelimit-output-tokens-limit", "anthropic-ratelimit-output-tokens-remaining",
     "anthropic-ratelimit-output-tokens-reset", False),
)
# Below this share of the request limit, requests are spaced at the rate the budget refills.
_LOW_WATER = 0.1
# Statuses whose Retry-After means "the provider is overloaded": everyone waits, not only the caller.
_PAUSE_STATUSES = frozenset({429, 503, 529})


def _positive(name: str, value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0):
        raise ValueError(f"{name} must be a positive number or None, not {value!r}")


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if number == number else None


class RateLimiter:
    """Requests-per-minute and tokens-per-minute limits; thread-safe, blocking, never busy.

    `clock`/`sleep` (monotonic seconds) and `wall_clock` (for RFC 3339 reset times) can be
    replaced, e.g. by a fake clock in tests. `max_pause` caps any pause a provider asks for, so a
    bogus header cannot stall a program for hours (the request then fails with its retry_after).
    """

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
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        _positive("rpm", rpm)
        _positive("tpm", tpm)
        if max_pause is None:
            raise ValueError("max_pause must be a positive number of seconds, not None")
        _positive("max_pause", max_pause)
        for name, fn in (("clock", clock), ("sleep", sleep), ("wall_clock", wall_clock)):
            if not callable(fn):
                raise TypeError(f"{name} must be callable, not {fn!r}")
        self.rpm = rpm
        self.tpm = tpm
        self.max_pause = float(max_pause)
        self.name: str | None = None  # set for limiters made by `shared`
        self._clock = clock
        self._sleep = sleep
        self._wall_clock = wall_clock
        self._init_state()

    def _init_state(self) -> None:
        self._lock = threading.Lock()
        self._pending = threading.local()  # this thread's last token estimate, for record_tokens
        self._next_request = float("-inf")  # earliest time of the next request slot
        self._next_tokens = float("-inf")  # earliest time the token budget allows the next request
        self._paused_until = float("-inf")
        self._header_spacing = 0.0  # seconds between requests that nearly spent rate-limit headers ask for
        self.waited = 0.0  # total seconds callers spent waiting (for metrics and tests)
        self.acquired = 0  # requests let through

    @classmethod
    def shared(cls, name: str, rpm: float | None = None, tpm: float | None = None, **options: Any) -> RateLimiter:
        """The limiter registered under `name`, created with these limits (and constructor
        `options`, e.g. `max_pause`) on first use.

        Later calls may omit the limits; giving different ones is a `ValueError` (two parts of a
        program disagreeing about one provider account's limits is a bug to surface, not to guess).
        """
        if not isinstance(name, str) or not name:
            raise ValueError(f"a shared rate limiter needs a non-empty name, not {name!r}")
        with cls._registry_lock:
            limiter = cls._registry.get(name)
            if limiter is None:
                limiter = cls._registry[name] = cls(rpm, tpm, **options)
                limiter.name = name
            elif (rpm is not None and rpm != limiter.rpm) or (tpm is not None and tpm != limiter.tpm):
                raise ValueError(f"rate limiter {name!r} already exists with rpm={limiter.rpm}, tpm={limiter.tpm}; "
                                 f"asked for rpm={rpm}, tpm={tpm}")
            return limiter

    # --- taking slots ---------------------------------------------------------------------------

    def _reserve_locked(self, tokens: int, request: bool = True) -> tuple[float, float]:
        """The next slot for `tokens` (and for a request, unless one is already held)."""
        now = self._clock()
        start = max(now, self._next_request if request else now, self._next_tokens, self._paused_until)
        spacing = max(60.0 / self.rpm if self.rpm else 0.0, self._header_spacing) if request else 0.0
        if spacing:
            self._next_request = start + spacing
        if self.tpm and tokens > 0:
            # One request may not book more than a minute of budget (a bad estimate would stall all).
            self._next_tokens = start + 60.0 * min(tokens, self.tpm) / self.tpm
        return start, start - now

    def reserve(self, tokens: int = 0) -> float:
        """Reserve the next slot for one request of about `tokens` tokens; return the wait."""
        if isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 0:
            raise ValueError(f"tokens must be a non-negative integer, not {tokens!r}")
        with self._lock:
            return self._reserve_locked(tokens)[1]

    def acquire(self, tokens: int = 0) -> float:
        """Block until a request of about `tokens` tokens may go; returns seconds waited."""
        if isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 0:
            raise ValueError(f"tokens must be a non-negative integer, not {tokens!r}")
        if tokens:
            self._pending.tokens = tokens
        covered = getattr(self._pending, "covered", False)  # a `slot()` of this thread already holds one
        self._pending.covered = False
        with self._lock:
            slot, wait = self._reserve_locked(tokens, request=not covered)
        total = 0.0
        while wait > 0:
            self._sleep(wait)
            total += wait
            with self._lock:
                if self._paused_until <= slot:
                    break
                # A pause began while this thread slept (a 429 elsewhere) and covers its slot:
                # take a new one after the pause. Its tokens are already booked.
                slot, wait = self._reserve_locked(0)
        with self._lock:
            self.waited += total
            self.acquired += not covered
        return total

    @contextlib.contextmanager
    def slot(self, tokens: int = 0) -> Iterator[float]:
        """Take a slot for one unit of work in this thread (a batch item) and yield the wait.

        The first `acquire` this thread makes inside the block (the item's first request, through
        a client sharing this limiter) uses the slot instead of taking a second one; it still
        books its tokens. Later requests (retries, an agent's further turns) take their own."""
        waited = self.acquire(tokens)
        self._pending.covered = True
        try:
            yield waited
        finally:
            self._pending.covered = False

    def record_tokens(self, actual: int, estimated: int | None = None) -> None:
        """Correct the token budget once a request's real usage is known.

        `estimated` defaults to what this thread last passed to `acquire` (the transport's
        estimate, when the model layer reports usage in the thread that sent the request).
        """
        if isinstance(actual, bool) or not isinstance(actual, int) or actual < 0:
            raise ValueError(f"actual tokens must be a non-negative integer, not {actual!r}")
        if estimated is None:
            estimated = getattr(self._pending, "tokens", 0)
        self._pending.tokens = 0  # each estimate is corrected once
        if not self.tpm or actual == estimated:
            return
        with self._lock:
            booked = min(estimated, self.tpm)
            if self._next_tokens == float("-inf"):
                self._next_tokens = self._clock()
            self._next_tokens += 60.0 * (actual - booked) / self.tpm

    # --- learning from the provider -------------------------------------------------------------

    def pause(self, seconds: float) -> None:
        """Hold every caller for `seconds` (capped at `max_pause`), e.g. after a 429."""
        if seconds > 0:
            with self._lock:
                self._paused_until = max(self._paused_until, self._clock() + min(seconds, self.max_pause))

    def observe(self, status: int, headers: Mapping[str, str], retry_after: float | None = None) -> None:
        """Learn from a response: a 429's wait, or headers saying the budget is spent until a reset."""
        if status in _PAUSE_STATUSES and (retry_after is not None or status == 429):
            self.pause(retry_after if retry_after is not None else 1.0)
        for limit_name, remaining_name, reset_name, requests in _HEADERS:
            remaining = _number(headers.get(remaining_name))
            if remaining is None:
                continue
            reset = parse_reset(headers.get(reset_name, ""), self._wall_clock)
            if not reset:
                continue
            if remaining <= 0:
                self.pause(reset)
                continue
            limit = _number(headers.get(limit_name))
            if requests and limit:
                # Nearly spent: the budget refills (limit - remaining) requests in `reset` seconds,
                # so go no faster than that until the headers show plenty again.
                spacing = reset / max(limit - remaining, 1.0) if remaining < limit * _LOW_WATER else 0.0
                with self._lock:
                    self._header_spacing = min(spacing, self.max_pause)

    # --- plumbing -------------------------------------------------------------------------------

    def __reduce_ex__(self, protocol: Any) -> Any:
        if self.name is not None:  # one per name in every process, too
            return (RateLimiter.shared, (self.name, self.rpm, self.tpm))
        return super().__reduce_ex__(protocol)

    def __getstate__(self) -> dict[str, Any]:
        # A copy in another process starts afresh: locks and reservations do not travel.
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_") or k in
                ("_clock", "_sleep", "_wall_clock")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._init_state()

    def __repr__(self) -> str:
        shared = f", name={self.name!r}" if self.name else ""
        return f"RateLimiter(rpm={self.rpm}, tpm={self.tpm}{shared})"
