"""Client-side rate limits for synchronous code: requests and tokens per minute, shared by threads.

`RateLimiter(rpm=600, tpm=90_000)` hands out evenly spaced slots (no burst that overshoots the
provider's window): each `acquire()` reserves the next slot under a lock and sleeps until it,
outside the lock, so waiting threads never spin. It adapts to the provider: a 429 with
`Retry-After`, or rate-limit headers saying nothing is left until a reset, pause every thread
that shares the limiter instead of letting each one hammer the provider; headers saying the
request budget is nearly spent slow requests down to the rate at which it refills.

One bad answer cannot stall every thread: each figure a provider sends is checked (unreadable,
negative or NaN ones are ignored, a Retry-After or reset counts for at most `max_pause`, one
answer's usage for at most a minute's token budget); the newest rate-limit headers replace
earlier ones, and threads already waiting look again, so a healthy answer releases what a bogus
one held; no single sleep is longer than `max_pause`.

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
import math
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timezone
from typing import Any

from ._checks import number, whole
from .http.conventions import rate_limit_headers

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


# Below this share of the request limit, requests are spaced at the rate the budget refills.
_LOW_WATER = 0.1
# Statuses whose Retry-After means "the provider is overloaded": everyone waits, not only the caller.
_PAUSE_STATUSES = frozenset({429, 503, 529})
_NEVER = float("-inf")


def _positive(name: str, value: Any) -> None:
    if value is not None:
        number(value, name, above=0)


def _figure(value: object) -> float | None:
    """A number a provider reported (or a header's text of one), as a non-negative float; None for
    anything else (negative, NaN, a boolean, unreadable text, another type). Too large a figure,
    infinity included, is kept: each use clamps it to its own ceiling."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    except OverflowError:  # an int beyond float range
        return math.inf if int(value) > 0 else None
    return number if number >= 0 else None  # False for NaN too


def _tokens(tokens: object) -> int:
    return whole(tokens, "tokens")


class RateLimiter:
    """Requests-per-minute and tokens-per-minute limits; thread-safe, blocking, never busy.

    `clock`/`sleep` (monotonic seconds) and `wall_clock` (for RFC 3339 reset times) can be
    replaced, e.g. by a fake clock in tests; by default a thread waits on the limiter itself, so
    news from the provider that shortens its wait wakes it at once.

    `max_pause` caps what a provider can impose: a Retry-After or reset counts for at most that
    long, and one answer's usage books no more than that of waiting. Past it the request goes and
    the provider decides (a 429 then fails it with `RateLimitError` and its `retry_after`). No
    single sleep is longer either: a thread whose turn (under this limiter's own rpm/tpm) is
    further away wakes and looks again.
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
        sleep: Callable[[float], None] | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        _positive("rpm", rpm)
        _positive("tpm", tpm)
        if max_pause is None:
            raise ValueError("max_pause must be a positive number of seconds, not None")
        _positive("max_pause", max_pause)
        for name, fn in (("clock", clock), ("sleep", sleep), ("wall_clock", wall_clock)):
            if not callable(fn) and not (name == "sleep" and fn is None):
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
        self._changed = threading.Condition(self._lock)  # notified when the provider shortens waits
        self._pending = threading.local()  # this thread's last token estimate, for record_tokens
        self._next_request = _NEVER  # earliest time of the next request slot (this limiter's rpm)
        self._next_tokens = _NEVER  # earliest time the token budget allows the next request
        self._paused_until = _NEVER  # a 429's (or 503's) Retry-After
        # What the provider's newest rate-limit headers say; each set replaces the last, and every
        # waiting thread looks at them afresh, so a healthy set releases what a bogus one held.
        self._held_until = _NEVER  # a budget is spent until its reset
        self._paced_until = _NEVER  # the request budget is nearly spent until its reset ...
        self._spacing = 0.0  # ... so requests go this far apart
        self._next_paced = _NEVER
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

    def _token_ceiling(self) -> float:
        """The most tokens one request may book: a minute's budget, and no more than `max_pause` of it."""
        assert self.tpm
        return self.tpm * min(60.0, self.max_pause) / 60.0

    def _reserve_locked(self, tokens: int, request: bool = True) -> tuple[float, float]:
        """Book the next slot for `tokens` (and for a request, unless one is already held).

        Returns (own, paced): the slot under this limiter's own limits and a 429's pause, which is
        booked for good, and the slot the provider's pacing headers gave, which they may revise."""
        now = self._clock()
        own = max(now, self._next_request if request else now, self._next_tokens, self._paused_until)
        if request and self.rpm:
            self._next_request = own + 60.0 / self.rpm
        if self.tpm and tokens > 0:
            self._next_tokens = own + 60.0 * min(tokens, self._token_ceiling()) / self.tpm
        paced = own
        if request and own < self._paced_until:
            paced = min(max(own, self._next_paced), self._paced_until)
            self._next_paced = paced + self._spacing
        return own, paced

    def _due_locked(self, own: float, paced: float) -> float:
        """When a booked slot may go, by what the provider's headers say now."""
        return max(own, min(paced, self._paced_until), self._held_until)

    def reserve(self, tokens: int = 0) -> float:
        """Reserve the next slot for one request of about `tokens` tokens; return the wait."""
        tokens = _tokens(tokens)
        with self._lock:
            own, paced = self._reserve_locked(tokens)
            return max(self._due_locked(own, paced) - self._clock(), 0.0)

    def acquire(self, tokens: int = 0) -> float:
        """Block until a request of about `tokens` tokens may go; returns seconds waited."""
        tokens = _tokens(tokens)
        if tokens:
            self._pending.tokens = tokens
        covered = getattr(self._pending, "covered", False)  # a `slot()` of this thread already holds one
        self._pending.covered = False
        total = 0.0
        with self._changed:
            own, paced = self._reserve_locked(tokens, request=not covered)
            slept_until = _NEVER  # a full sleep counts as reaching its end, whatever a fake clock says
            while True:
                if self._paused_until > own:
                    # A pause began while this thread waited (a 429 elsewhere) and covers its slot:
                    # take a new one after the pause. Its tokens are already booked.
                    own, paced = self._reserve_locked(0)
                now = max(self._clock(), slept_until)
                due = self._due_locked(own, paced)
                if due <= now:
                    break
                wait = min(due - now, self.max_pause)
                if self._wait_locked(wait):
                    total += max(self._clock() - now, 0.0)  # woken early: look again
                else:
                    total += wait
                    slept_until = now + wait
            self.waited += total
            self.acquired += not covered
        return total

    def _wait_locked(self, seconds: float) -> bool:
        """Wait up to `seconds` with the lock released; True if woken early by news from the provider."""
        if self._sleep is None:
            return self._changed.wait(seconds)
        self._lock.release()
        try:
            self._sleep(seconds)
        finally:
            self._lock.acquire()
        return False

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
        `actual` is the provider's figure: one that is not a non-negative number is ignored (the
        answer was paid for; the limiter never loses it), and one answer counts for at most the
        tokens one request may book (a minute's budget, at most `max_pause` of waiting).
        """
        used = _figure(actual)
        booked = _figure(getattr(self._pending, "tokens", 0) if estimated is None else estimated) or 0.0
        self._pending.tokens = 0  # each estimate is corrected once
        if not self.tpm or used is None:
            return
        ceiling = self._token_ceiling()
        used, booked = min(used, ceiling), min(booked, ceiling)
        if used == booked:
            return
        with self._lock:
            if self._next_tokens == _NEVER:
                self._next_tokens = self._clock()
            self._next_tokens += 60.0 * (used - booked) / self.tpm

    # --- learning from the provider -------------------------------------------------------------

    def pause(self, seconds: float) -> None:
        """Hold every caller for `seconds` (capped at `max_pause`), e.g. after a 429.

        A pause is not lifted by answers that come back during it: they answer requests sent
        before it, so they are no news; it ends after at most `max_pause`."""
        seconds = _figure(seconds) or 0.0
        if seconds > 0:
            with self._lock:
                self._paused_until = max(self._paused_until, self._clock() + min(seconds, self.max_pause))

    def observe(self, status: int, headers: Mapping[str, str], retry_after: float | None = None) -> None:
        """Learn from a response: a 429's wait, or headers saying the budget is spent until a reset.

        Every figure is the provider's and is checked: unreadable ones are ignored, resets count for
        at most `max_pause`. The newest rate-limit headers replace what earlier ones said."""
        if isinstance(status, int) and status in _PAUSE_STATUSES:
            wait = _figure(retry_after)
            if wait is not None or status == 429:
                self.pause(1.0 if wait is None else wait)
        if not isinstance(headers, Mapping):
            return
        news = False  # any readable rate-limit header at all
        hold = spacing = pace_for = 0.0
        for limit_name, remaining_name, reset_name, requests in rate_limit_headers():
            remaining = _figure(headers.get(remaining_name))
            text = headers.get(reset_name)
            reset = parse_reset(text, self._wall_clock) if isinstance(text, str) else None
            if remaining is None or not reset:
                continue
            news = True
            reset = min(reset, self.max_pause)
            limit = _figure(headers.get(limit_name))
            if limit is not None and math.isfinite(limit):
                remaining = min(remaining, limit)
            if remaining < 1:
                hold = max(hold, reset)
            elif requests and limit and math.isfinite(limit) and remaining < limit * _LOW_WATER:
                # Nearly spent: the budget refills (limit - remaining) requests in `reset` seconds,
                # so go no faster than that until the reset, or until the headers show plenty again.
                spacing = max(spacing, reset / max(limit - remaining, 1.0))
                pace_for = max(pace_for, reset)
        if news:
            self._heard(hold, spacing, pace_for)

    def _heard(self, hold: float, spacing: float, pace_for: float) -> None:
        with self._changed:
            now = self._clock()
            held_until = now + hold if hold else _NEVER
            paced_until = now + pace_for if spacing else _NEVER
            if paced_until == _NEVER or self._paced_until < now:
                self._next_paced = _NEVER  # pacing starts afresh
            shorter = held_until < self._held_until or paced_until < self._paced_until
            self._held_until, self._paced_until, self._spacing = held_until, paced_until, spacing
            if shorter:
                self._changed.notify_all()  # waiting threads look again: some may go now

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
