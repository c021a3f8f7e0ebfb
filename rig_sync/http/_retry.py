"""urllib3's `Retry` with the providers' rules: `x-should-retry`, `retry-after-ms`, capped waits, a
stale kept-alive connection resent at once, deterministic failures not retried, and a deadline or
cancel that ends the waiting."""

from __future__ import annotations

import random
import time
from typing import Any

from urllib3.exceptions import MaxRetryError
from urllib3.util.retry import Retry

from .. import errors
from ._body import read_ahead
from ._cancel import Cut, current_scope, interrupted
from ._config import RateLimiterLike, parse_retry_after
from ._failures import causes_of
from ._pool import StaleConnection


class ProviderRetry(Retry):
    """urllib3's Retry with the provider rules: `x-should-retry`, `retry-after-ms`, capped waits."""

    def __init__(self, *args: Any, max_retry_after: float = 60.0, limiter: RateLimiterLike | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_retry_after = max_retry_after
        self.limiter = limiter
        self.pause: float | None = None  # the wait before this attempt, where a deadline fixed it
        self.stale_resent = False  # a request that met a stale connection is sent again once, at once
        self.immediate = False

    def new(self, **kw: Any) -> ProviderRetry:
        retry = super().new(**kw)
        retry.max_retry_after = self.max_retry_after
        retry.limiter = self.limiter
        retry.stale_resent = self.stale_resent
        return retry

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        # Every error status reaches `increment`, which sees the headers and decides.
        return status_code >= 400 and bool(self.total)

    def increment(self, method: str | None = None, url: str | None = None, response: Any = None,
                  error: Exception | None = None, _pool: Any = None, _stacktrace: Any = None) -> ProviderRetry:
        scope = current_scope()
        why = interrupted(scope, _pool)  # cancelled, out of time or closed: never retried
        if why is not None:
            if response is not None:  # not read: its connection goes back to the pool closed
                response.close()
                response.release_conn()
            raise Cut(why) from error
        if (response is None and error is not None and not self.stale_resent
                and any(isinstance(c, StaleConnection) for c in causes_of(error))):
            again = self.new(history=self.history)  # same budget, no backoff: it was never a failed attempt
            again.stale_resent = again.immediate = True
            return again
        answered = response is not None and error is None
        if answered:
            headers = response.headers
            wait = parse_retry_after(headers)
            retryable = errors.status_is_retryable(response.status, headers) and not (
                wait is not None and wait > self.max_retry_after)
            if retryable and errors.body_can_decide(response.status, headers):
                retryable = errors.answer_is_retryable(response.status, headers, read_ahead(response, scope))
            if not retryable:
                # MaxRetryError makes urllib3 hand back this response (raise_on_status=False).
                raise MaxRetryError(_pool, url or "", None)
        retry = super().increment(method, url, response, error, _pool, _stacktrace)
        if response is not None and self.limiter is not None:
            # A 429 that will be retried still pauses every thread sharing the limiter; the final
            # answer is observed by Transport._send.
            self.limiter.observe(response.status, response.headers, parse_retry_after(response.headers))
        if scope is not None and scope.deadline is not None:
            retry.pause = retry._wait(response)
            if time.monotonic() + retry.pause >= scope.deadline:  # the retry could not end in time
                if answered:
                    raise MaxRetryError(_pool, url or "", None)  # the server's own answer is the error
                raise Cut("deadline") from error
        return retry

    def _wait(self, response: Any) -> float:
        """The wait before the next attempt, as urllib3's `sleep` reckons it."""
        after = self.get_retry_after(response) if self.respect_retry_after_header and response else None
        return after or self.get_backoff_time()

    def sleep(self, response: Any = None) -> None:
        scope = current_scope()
        if scope is None:
            super().sleep(response)
        else:  # a cancel ends the wait
            scope._pause(self.pause if self.pause is not None else self._wait(response))
        if self.limiter is not None:  # a retry is a request too: it takes a slot
            self.limiter.acquire()

    def get_retry_after(self, response: Any) -> float | None:
        return parse_retry_after(response.headers)

    def get_backoff_time(self) -> float:
        attempts = len(self.history)
        if attempts == 0 or self.immediate:
            return 0.0
        wait = min(self.backoff_max, self.backoff_factor * 2 ** (attempts - 1))
        return float(wait * (1.0 - 0.25 * random.random()))
