"""What a provider tells the transport about its wire, so that the plumbing names no provider.

A provider's client class carries a `Conventions` value; the transport reads the request id, the
error message and the error class through it. Rate-limit headers other than the common
`x-ratelimit-*` ones are registered once, by the provider's module, for `rig_sync.ratelimit`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import attrs

__all__ = ["Conventions", "RateLimitHeaders", "register_rate_limit_headers", "rate_limit_headers"]


def _unchanged(body: Any) -> Any:
    return body


@attrs.frozen
class Conventions:
    """A provider's departures from the common HTTP conventions of LLM APIs.

    - `request_id_headers`: headers naming the request, read after the common ones.
    - `error_body`: the error object inside the provider's error body (e.g. a body wrapped in a list).
    - `error_code`: the provider's error code where the body does not carry it (e.g. in a header),
      given the headers and the decoded body (None keeps the body's code).
    - `error_class`: the error class for an answer whose status alone misleads, given the status, the
      provider's error code and the decoded body (None keeps the class the status gives).
    - `secret_headers`: (lower-case) header names that carry the provider's credentials, kept secret
      even when passed as plain `headers`.
    """

    request_id_headers: tuple[str, ...] = ()
    error_body: Callable[[Any], Any] = _unchanged
    error_code: Callable[[Mapping[str, str], Any], str | None] | None = None
    error_class: Callable[[int, str | None, Any], type[Any] | None] | None = None
    secret_headers: frozenset[str] = frozenset()


COMMON = Conventions()


class RateLimitHeaders(NamedTuple):
    """The headers that report one budget: its limit, what remains and when it resets;
    `requests` marks a budget of requests (not tokens)."""

    limit: str
    remaining: str
    reset: str
    requests: bool


_RATE_LIMIT_HEADERS: list[RateLimitHeaders] = [
    RateLimitHeaders("x-ratelimit-limit-requests", "x-ratelimit-remaining-requests",
                     "x-ratelimit-reset-requests", True),
    RateLimitHeaders("x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens",
                     "x-ratelimit-reset-tokens", False),
]


def register_rate_limit_headers(*budgets: RateLimitHeaders) -> None:
    """Add a provider's rate-limit headers (idempotent); called by the provider's module on import."""
    for budget in budgets:
        if budget not in _RATE_LIMIT_HEADERS:
            _RATE_LIMIT_HEADERS.append(budget)


def rate_limit_headers() -> list[RateLimitHeaders]:
    """Every rate-limit header set known: the common ones and those providers registered (a live
    list: read it, do not change it)."""
    return _RATE_LIMIT_HEADERS
