"""Transport: the only code in rig_sync that touches `requests`.

One `Transport` per client owns a pooled `requests.Session`, the timeouts, the retry policy
(a `urllib3.Retry` subclass, so the waits happen where urllib3 already does them), the mapping
of status and body to the error tree, secret redaction, redirects that never carry credentials
to another host, and the observation hooks.

Environment settings (proxies, CA bundle) are resolved once when the transport is built:
`requests.Session.request` rescans the whole environment on every call otherwise.

On our own sessions a JSON call without a proxy goes straight to the mounted adapter's urllib3
pool (same pool, retries, timeouts and TLS settings), skipping requests' per-call objects; a
caller's session, multipart uploads, proxies and test mocks of requests go through requests.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import functools
import http.client
import logging
import math
import os
import random
import re
import socket
import ssl
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from typing import Any, Protocol
from urllib.parse import unquote, unquote_plus, urlsplit

import attrs
import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ClosedPoolError, EmptyPoolError, MaxRetryError
from urllib3.util.connection import allowed_gai_family
from urllib3.util.retry import Retry

from . import _json, errors, observe
from .auth import Auth, HeaderAuth, combine

__all__ = [
    "CancelScope",
    "deadline",
    "Timeout",
    "RetryPolicy",
    "Transport",
    "Response",
    "StreamResponse",
    "join_url",
    "shown_url",
    "validate_base_url",
]

log = logging.getLogger("rig_sync.http")

_REQUEST_ID_HEADERS = ("x-request-id", "request-id", "x-amzn-requestid", "x-trace-id", "cf-ray")
_REDIRECTS = {301, 302, 303, 307, 308}
_MAX_REDIRECTS = 5
# Most bytes `StreamResponse.finish` reads after the last event to keep a connection.
_DRAIN_LIMIT = 64 * 1024
# Most bytes of an answer read whole (not streamed), once decoded: a compressed body inflates a
# thousandfold. Images, audio and large embedding batches fit; `Transport(max_response_bytes=)`
# sets it per transport, and changing this sets it for every transport without its own.
MAX_RESPONSE_BYTES = 64 * 2**20
# Headers that carry credentials under any provider's convention: kept as secrets (redacted,
# sent to the configured origin only) even when passed as ordinary `headers`.
_SENSITIVE_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "x-api-key", "api-key", "x-goog-api-key", "cookie"}
)


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
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"timeout must be seconds, a (connect, read) tuple or Timeout, not {value!r}")
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


class _Retry(Retry):
    """urllib3's Retry with the provider rules: `x-should-retry`, `retry-after-ms`, capped waits."""

    def __init__(self, *args: Any, max_retry_after: float = 60.0, limiter: RateLimiterLike | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_retry_after = max_retry_after
        self.limiter = limiter
        self.pause: float | None = None  # the wait before this attempt, where a deadline fixed it
        self.stale_resent = False  # a request that met a stale connection is sent again once, at once
        self.immediate = False

    def new(self, **kw: Any) -> _Retry:
        retry = super().new(**kw)
        retry.max_retry_after = self.max_retry_after
        retry.limiter = self.limiter
        retry.stale_resent = self.stale_resent
        return retry

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        # Every error status reaches `increment`, which sees the headers and decides.
        return status_code >= 400 and bool(self.total)

    def increment(self, method: str | None = None, url: str | None = None, response: Any = None,
                  error: Exception | None = None, _pool: Any = None, _stacktrace: Any = None) -> _Retry:
        scope = _current_scope()
        why = _interrupted(scope, _pool)  # cancelled, out of time or closed: never retried
        if why is not None:
            if response is not None:  # not read: its connection goes back to the pool closed
                response.close()
                response.release_conn()
            raise _Cut(why) from error
        if (response is None and error is not None and not self.stale_resent
                and any(isinstance(c, _StaleConnection) for c in _causes(error))):
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
                retryable = errors.answer_is_retryable(response.status, headers, _read_ahead(response, scope))
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
                raise _Cut("deadline") from error
        return retry

    def _wait(self, response: Any) -> float:
        """The wait before the next attempt, as urllib3's `sleep` reckons it."""
        after = self.get_retry_after(response) if self.respect_retry_after_header and response else None
        return after or self.get_backoff_time()

    def sleep(self, response: Any = None) -> None:
        scope = _current_scope()
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


def validate_base_url(url: str, provider: str) -> str:
    """`url` without a trailing slash, or `InvalidBaseURLError` (credentials are never echoed)."""
    if not isinstance(url, str) or not url.strip():
        raise errors.InvalidBaseURLError(f"{provider}: base URL must be a non-empty string")
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        shown = shown_url(url) if "@" not in url else "<url with credentials>"
        raise errors.InvalidBaseURLError(
            f"{provider}: base URL {shown!r} needs an http:// or https:// scheme and a host, "
            "e.g. 'https://api.example.com/v1'"
        )
    if parts.username or parts.password:
        raise errors.InvalidBaseURLError(
            f"{provider}: base URL must not contain credentials (user:pass@); "
            "pass the key as api_key instead"
        )
    try:
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError:
        raise errors.InvalidBaseURLError(f"{provider}: base URL {shown_url(url)!r} has an invalid port") from None
    if parts.fragment:
        raise errors.InvalidBaseURLError(f"{provider}: base URL {shown_url(url)!r} must not contain a #fragment")
    return url.strip().rstrip("/")


def _prefix_hint(base_url: str, prefix: str) -> str:
    """What to say on a 404 when `base_url` lacks every segment of the API's path `prefix` ('' if it
    has one: `http://host/openai/v1` for `/v1` may be a proxy's own layout, not a mistake)."""
    wanted = [part for part in prefix.split("/") if part]
    have = set(urlsplit(base_url.partition("?")[0]).path.split("/"))
    if not wanted or have.intersection(wanted):
        return ""
    needed = "/" + "/".join(wanted)
    return f"the base URL {base_url} probably needs {needed}: try base_url={join_url(base_url, needed)!r}"


def join_url(base: str, path: str) -> str:
    """Join without ever touching the scheme's `//` (`https://x/v1` + `/chat` -> `https://x/v1/chat`).

    An absolute `path` is returned as is; a query on the base (`?api-version=…`) is kept, after
    the joined path and before the path's own query.
    """
    if path[:8].lower().startswith(("http://", "https://")):
        return path
    base_path, _, base_query = base.partition("?")
    path_part, _, path_query = path.partition("?")
    url = f"{base_path.rstrip('/')}/{path_part.lstrip('/')}" if path_part.strip("/") else base_path
    query = "&".join(q for q in (base_query, path_query) if q)
    return f"{url}?{query}" if query else url


@functools.lru_cache(maxsize=512)  # a client calls few distinct URLs, each many times
def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.scheme, (parts.hostname or "").lower(), port


def _origin_text(origin: tuple[str, str, int | None]) -> str:
    return "{}://{}:{}".format(*origin)


# Query parameters whose values are secret by their name (`?key=`, `?api_key=`, `?access_token=`,
# `?sig=` …): masked wherever a URL is shown, and redacted like a key.
_SECRET_PARAM = re.compile(r"key|token|secret|passw|auth|sig|credential", re.IGNORECASE)


def shown_url(url: str) -> str:
    """`url` fit to show in a repr, an error or a log: its user:password and the values of query
    parameters named like secrets are masked (`https://***@host/v1?key=***&api-version=2024-10-21`)."""
    base, hash_, fragment = url.partition("#")
    rest, question, query = base.partition("?")
    scheme, slashes, tail = rest.partition("://")
    if slashes:
        host, slash, path = tail.partition("/")
        if "@" in host:
            rest = f"{scheme}://***@{host.rpartition('@')[2]}{slash}{path}"
    if query:
        pairs = (pair.partition("=") for pair in query.split("&"))
        query = "&".join(f"{name}{eq}***" if value and _SECRET_PARAM.search(name) else f"{name}{eq}{value}"
                         for name, eq, value in pairs)
    return f"{rest}{question}{query}{hash_}{fragment}"


class _MaskQuerySecrets(logging.Filter):
    """Masks query secrets in urllib3's request log lines, which show each request's target
    (`"POST /v1/chat?key=…"`). Installed once a transport's base URL holds a query."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(shown_url(a) if isinstance(a, str) and "?" in a else a for a in record.args)
        return True


_MASK_QUERY_SECRETS = _MaskQuerySecrets()


def _url_secrets(url: str) -> set[str]:
    """The secrets in `url`, in each spelling they may come back in: its password (as written and
    decoded), `user:password` and its base64 (Basic auth, a proxy's `Proxy-Authorization`), and the
    values of query parameters named like secrets."""
    try:
        parts = urlsplit(url)
        password, user = parts.password, parts.username or ""
    except ValueError:
        return set()
    found: set[str] = set()
    if password:
        pair = f"{unquote(user)}:{unquote(password)}"
        try:
            basic = base64.b64encode(pair.encode("latin-1")).decode()  # as requests encodes it
        except UnicodeEncodeError:
            basic = base64.b64encode(pair.encode()).decode()
        found |= {password, unquote(password), pair, basic}
    for name, _, value in (pair.partition("=") for pair in parts.query.split("&")):
        if value and _SECRET_PARAM.search(unquote_plus(name)):
            found |= {value, unquote_plus(value)}
    return found


@attrs.define(slots=True)
class Response:
    """A complete HTTP answer: status, headers (case-insensitive), body bytes."""

    status: int
    headers: Mapping[str, str]
    content: bytes
    request_id: str | None
    provider: str
    retries: int = 0
    _secrets: tuple[str, ...] = attrs.field(default=(), repr=False)  # masked out of error messages

    def preview(self, size: int = 200) -> str:
        """The start of the body as text, for an error message (an error page may echo the key)."""
        return errors.redact(self.content[:size].decode("utf-8", "replace"), self._secrets)

    @errors.drops_hidden_context
    def json(self) -> Any:
        """The body as JSON, or `ResponseDecodeError` naming the provider."""
        try:
            return _json.loads(self.content)
        except _json.JSONDecodeError as exc:
            raise errors.ResponseDecodeError(
                f"response body is not valid JSON ({errors.redact(str(exc), self._secrets)}); "
                f"starts with {self.preview()!r}",
                provider=self.provider,
                body=errors.redact_bytes(self.content, self._secrets),  # an error page may echo the key
            ) from None


class _Reply(Protocol):
    """What the transport reads of an answer: a `requests.Response` (a caller's session) or an `_Answer`."""

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def raw(self) -> Any: ...

    def close(self) -> None: ...


class _Answer:
    """A urllib3 answer read the way `requests.Response` reads one, without its per-answer setup."""

    __slots__ = ("_content", "headers", "raw", "status_code")

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.status_code: int = raw.status
        self.headers: Mapping[str, str] = raw.headers  # case-insensitive, like requests' headers
        self._content: bytes | None = None  # the body, once `_read_whole` read it

    def close(self) -> None:
        if self._content is None:  # unread: the connection cannot be reused
            self.raw.close()
        self.raw.release_conn()


class StreamResponse:
    """A streamed HTTP answer. Iterate `chunks()`; always `close()` (or use `with`)."""

    def __init__(self, raw: _Reply, provider: str, request_id: str | None,
                 secrets: tuple[str, ...] = (), model: str | None = None, scope: CancelScope | None = None) -> None:
        self._raw = raw
        self._scope = scope  # of the call: its cancel and deadline reach the stream wherever it is read
        self.model = model
        self._chunks_read = 0
        self._secrets = secrets  # masked out of the body: an error event may echo the key back
        self.provider = provider
        self.request_id = request_id
        self.status = raw.status_code
        self.headers: Mapping[str, str] = raw.headers
        self._closed = False
        self._finished = False
        self._body: Iterator[bytes] | None = None

    def chunks(self) -> Iterator[bytes]:
        """Body bytes as they arrive (one HTTP chunk or socket read at a time). One pass: every call
        returns the same iterator, so `finish()` can go on where a reader stopped."""
        if self._body is None:
            self._body = errors.redact_stream(self._read(), self._secrets) if self._secrets else self._read()
        return self._body

    def finish(self) -> None:
        """The reader has the whole answer (it saw the provider's last event): read what is left of
        the body, normally just the end-of-body marker, so the connection goes back to the pool
        instead of being closed. Past `_DRAIN_LIMIT` bytes, or on any error, it is simply closed."""
        self._finished = True
        try:
            left = _DRAIN_LIMIT
            for data in self.chunks():
                left -= len(data)
                if left < 0:
                    break
        except errors.RigError:
            pass  # the answer is complete; only the connection is lost
        finally:
            self.close()

    def _read(self) -> Iterator[bytes]:
        raw = self._raw.raw
        scope = self._scope if self._scope is not None and self._scope.deadline is not None else None
        try:
            if scope is None and raw.chunked and raw.supports_chunked_reads():
                pieces: Iterator[bytes] = raw.read_chunked(decode_content=True)
            else:  # one socket read at a time (requests leaves decoding off)
                pieces = iter(functools.partial(raw.read1, _READ_SIZE, decode_content=True), b"")
            while True:
                # Cut off (a cancel, the client's close) or out of time: stop, even with bytes in hand.
                why = getattr(getattr(raw, "connection", None), "_rig_cut", None)
                if why is not None:
                    raise _Cut(why)
                if scope is not None:
                    _fit_to_deadline(raw, scope)
                data = next(pieces, None)
                if data is None:
                    return
                self._chunks_read += 1
                yield data
        except (*_FAILURES, _Cut) as exc:
            causes = list(_causes(exc))
            why = _why_cut(causes, self._scope, getattr(raw, "_pool", None))
            if why is not None:
                raise _cut_error(why, "stream", self._scope, self.provider) from None
            if any(_is_timeout(c) for c in causes):
                raise errors.APITimeoutError(f"stream read timed out: {exc}", provider=self.provider) from None
            raise errors.StreamError(
                f"stream broke off before it was complete: {type(exc).__name__}",
                provider=self.provider,
                retryable=True,
            ) from None
        finally:
            self.close()

    @property
    def state(self) -> str:
        """One of "not started", "streaming", "finished" (the reader had the whole answer), "closed"."""
        if self._finished:
            return "finished"
        if self._closed:
            return "closed"
        return "not started" if self._body is None else "streaming"

    def __repr__(self) -> str:
        rid = f", request_id={self.request_id!r}" if self.request_id else ""
        return (f"StreamResponse(provider={self.provider!r}, model={self.model!r}, status={self.status}{rid}, "
                f"state={self.state!r}, chunks={self._chunks_read})")

    def abort(self) -> None:
        """Stop a read in progress from another thread: the reader wakes with `StreamError`.

        `close()` must not race a reading thread; shutting the socket down is safe to do.
        """
        try:
            self._raw.raw.shutdown()
        except (ValueError, RuntimeError, OSError, AttributeError):
            pass  # already released, closed or never connected: nothing is reading

    def close(self) -> None:
        """Close the stream; the connection is discarded, never reused half-read."""
        if not self._closed:
            self._closed = True
            self._raw.close()

    def __del__(self) -> None:
        # A stream dropped unclosed would keep its pool slot forever (the pool blocks when full).
        try:
            self.close()
        except Exception:  # noqa: BLE001 - nothing useful to do during garbage collection
            pass

    def __enter__(self) -> StreamResponse:
        return self

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        self.close()
        if isinstance(exc, errors.RigError) and self._secrets:
            # A provider's reader built it from decoded events, where a key the server escaped is plain.
            errors.scrub(exc, self._secrets)


# What a send or a body read can raise: requests' errors on a caller's session, urllib3's (and the
# socket's) where the transport drives urllib3 itself.
_FAILURES = (requests.RequestException, urllib3.exceptions.HTTPError, OSError)

_ACCEPT_ENCODING = urllib3.util.make_headers(accept_encoding=True)["accept-encoding"]

_DOCUMENT_TYPES = frozenset({"application/json", "text/html", "text/plain"})

_active_scope = threading.local()  # .current: the innermost CancelScope the thread is in


class _Cut(Exception):
    """A request ended on purpose: `why` is "cancelled", "closed" (its client was) or "deadline"."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


class _NoSlot(EmptyPoolError):
    """`_Cut` while waiting for a pooled connection. An `EmptyPoolError`, as urllib3 gives no
    connection back to the pool for it (none was taken)."""

    def __init__(self, pool: Any, why: str) -> None:
        super().__init__(pool, f"stopped waiting for a connection: {why}")
        self.why = why


def _current_scope() -> CancelScope | None:
    return getattr(_active_scope, "current", None)


def _interrupted(scope: CancelScope | None, pool: Any) -> str | None:
    """Why requests of `scope` (on `pool`) must stop now, if they must."""
    if scope is not None:
        if scope.cancelled:
            return "cancelled"
        if scope.deadline is not None and time.monotonic() >= scope.deadline:
            return "deadline"
    if pool is not None and pool.pool is None:
        return "closed"
    return None


def _cut(item: Any, why: str) -> None:
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
            if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
                raise TypeError(f"a deadline is a number of seconds, not {type(timeout).__name__}")
            if not timeout > 0:  # NaN too
                raise ValueError(f"a deadline is a positive number of seconds, not {timeout!r}")
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
        outer = _current_scope()
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
            _cut(item, "cancelled")
        for queue in waiting:
            with queue.not_empty:
                queue.not_empty.notify_all()
        for scope in inner:
            scope.cancel()

    def _take(self, conn: Any) -> None:
        with self._lock:
            if self.cancelled:
                raise _Cut("cancelled")
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
                raise _Cut("cancelled")
            held.add(item)
        try:
            yield
        finally:
            with self._lock:
                held.discard(item)

    def _pause(self, seconds: float) -> None:
        """Wait before a retry; a cancel ends the wait."""
        if self._cancelled.wait(seconds):
            raise _Cut("cancelled")


def deadline(seconds: float) -> CancelScope:
    """`with deadline(30): ...`: every request made inside ends by then, or raises `APITimeoutError`.

    It spans everything inside: several calls, their retries and waits, and streams read inside it
    (a stream opened inside must be read to its end by the deadline, wherever it is read). Nested
    deadlines keep the sooner one; `Timeout(total=...)` works per call within it. Enforced without a
    thread: every wait (for a pooled connection, connect, each read) is cut to the time left. Returns
    a `CancelScope`, so it can also be cancelled."""
    return CancelScope(seconds)


_NO_LIMIT = contextlib.nullcontext()
_READ_SIZE = 65536


def _why_cut(causes: list[BaseException], scope: CancelScope | None, pool: Any) -> str | None:
    """Why a failed request was cut off on purpose, if it was: cancelled, its client closed, or out of time."""
    for cause in causes:
        if isinstance(cause, (_Cut, _NoSlot)):
            return cause.why
        if isinstance(cause, ClosedPoolError):
            return "closed"
    return _interrupted(scope, pool)


def _cut_error(why: str, what: str, scope: CancelScope | None, provider: str) -> errors.APIConnectionError:
    if why == "cancelled":
        return errors.RequestCancelledError(f"{what}: cancelled (CancelScope.cancel())", provider=provider)
    if why == "closed":
        return errors.APIConnectionError(f"{what}: the client was closed while it was in flight "
                                         "(a call made after close() opens new connections)", provider=provider)
    seconds = scope.seconds if scope is not None and scope.seconds is not None else 0.0
    return errors.APITimeoutError(f"{what}: not done within its {seconds:g}s deadline "
                                  "(Timeout(total=...) or rig_sync.http.deadline())", provider=provider)


def _fit_to_deadline(raw: Any, scope: CancelScope) -> None:
    """Before a read: out of time raises; else the socket's timeout is cut to the time left."""
    if scope.deadline is not None and time.monotonic() >= scope.deadline:
        raise _Cut("deadline")
    conn: Any = getattr(raw, "connection", None)
    sock = getattr(conn, "sock", None)
    if sock is not None:
        sock.settimeout(conn.timeout)  # min(read timeout, time left): see `_connection_class`


class _TooLarge(Exception):
    """A body past its limit: `size` bytes came, or were announced (`announced`)."""

    def __init__(self, size: int, announced: bool) -> None:
        super().__init__(size)
        self.size, self.announced = size, announced


# Most decoded bytes of a 500's body `_read_ahead` reads to judge it: the deterministic errors it looks
# for are a line of JSON. A larger body is retried unjudged, as every 500 was.
_JUDGED_BYTES = 64 * 1024


def _read_ahead(response: Any, scope: CancelScope | None) -> bytes | None:
    """The body (decoded) of an answer urllib3 would retry, for `errors.answer_is_retryable` to judge;
    None if it is larger than `_JUDGED_BYTES` (announced or found) or broke off: then it is retried.

    What is read is kept on the answer (`_rig_ahead`), as it cannot be put back: if the answer is
    handed back after all, `_read_whole` begins with it (and reads on, if there is more); if it is
    retried, urllib3 drains the rest of the body, as for any answer it retries."""
    length = response.headers.get("content-length", "")
    if length.isdigit() and int(length) > _JUDGED_BYTES:
        return None  # not read at all
    scope = scope if scope is not None and scope.deadline is not None else None
    parts: list[bytes] = []
    size = 0
    try:
        while size <= _JUDGED_BYTES:
            if scope is None:
                data = response.read(_JUDGED_BYTES + 1 - size, decode_content=True)
            else:  # one socket read at a time, each within the time left (as `_read_whole`)
                _fit_to_deadline(response, scope)
                data = response.read1(_JUDGED_BYTES + 1 - size, decode_content=True)
            if not data:
                break
            parts.append(data)
            size += len(data)
    except (*_FAILURES, _Cut):
        size = _JUDGED_BYTES + 1  # unjudged: retried, unless a cancel or the deadline stops it first
    body = response._rig_ahead = b"".join(parts)
    return body if size <= _JUDGED_BYTES else None


def _read_whole(resp: _Reply, limit: int, scope: CancelScope | None) -> bytes:
    """The whole body, decoded, or `_TooLarge` as soon as it passes `limit` bytes.

    A body of announced length and no encoding is read in one go (http.client reads no more than
    the length). Any other is read in pieces that urllib3 inflates only as far as asked, so a
    compressed bomb stops at `limit`. Within a deadline, each read is one socket read waiting at
    most the time left (a server trickling bytes never lets a single read time out)."""
    done = getattr(resp, "_content", None)
    if isinstance(done, bytes):  # read already (a test library's mock of requests may preload it)
        if len(done) > limit:
            raise _TooLarge(len(done), False)
        return done
    raw, headers = resp.raw, resp.headers
    ahead = b""
    if resp.status_code == 500:  # its start may have been read to decide on a retry: see `_read_ahead`
        ahead = getattr(raw, "_rig_ahead", b"")
    length = headers.get("content-length", "")
    if length.isdigit():
        if int(length) > limit:
            raise _TooLarge(int(length), True)
        if scope is None and "content-encoding" not in headers and not ahead:
            body: bytes = raw.read(decode_content=True)
            if isinstance(resp, _Answer):
                resp._content = body
            return body
    parts: list[bytes] = [ahead] if ahead else []
    size = len(ahead)
    if size > limit:
        raise _TooLarge(size, False)
    while True:
        if scope is None:
            data = raw.read(_BODY_PIECE, decode_content=True)
        else:
            _fit_to_deadline(raw, scope)
            data = raw.read1(_READ_SIZE, decode_content=True)
        if not data:
            break
        size += len(data)
        if size > limit:
            raise _TooLarge(size, False)
        parts.append(data)
    body = parts[0] if len(parts) == 1 else b"".join(parts)
    if isinstance(resp, _Answer):
        resp._content = body
    return body


_BODY_PIECE = 2**20  # decoded bytes per read of a body read whole: the most it can overshoot its limit


# Largest body sent in the same write as the request head.
_ONE_WRITE_LIMIT = 64 * 1024


def _connection_class(connection_class: type[Any]) -> type[Any]:
    """A urllib3 connection class that honours its request's `CancelScope` (its waits end by the
    scope's deadline, and a cancel ends even a connect) and sends the request head and a small body
    in one write.

    urllib3 writes them separately: with many threads sharing one GIL, each extra write is another
    system call at which the thread hands the GIL on and waits to get it back, and another TCP
    segment for the server to read. Only an open connection holds the head back,
    so nothing else (a proxy's CONNECT) is ever written in between."""

    class Connection(connection_class):  # type: ignore[misc]
        _rig_held: bytes | None = None
        _rig_hold = False
        _rig_scope: CancelScope | None = None  # of the request using it
        _rig_cut: str | None = None  # why it was cut off ("cancelled", "closed"), for its readers
        _rig_timeout: Any = None

        @property
        def timeout(self) -> Any:
            # urllib3 sets this before connecting, sending and waiting for the answer (and we before
            # each read of a body with a deadline): each wait is cut to the time left.
            scope = self._rig_scope
            if scope is None or scope.deadline is None:
                return self._rig_timeout
            left = max(scope.deadline - time.monotonic(), 0.001)
            value = self._rig_timeout
            return min(value, left) if isinstance(value, (int, float)) else left

        @timeout.setter
        def timeout(self, value: Any) -> None:
            self._rig_timeout = value

        def _new_conn(self) -> socket.socket:
            scope = self._rig_scope
            return super()._new_conn() if scope is None else _open_socket(self, scope)

        def connect(self) -> None:
            super().connect()
            # cancel() or close() may have come while connecting, before there was a socket to shut down.
            why = "cancelled" if self._rig_scope is not None and self._rig_scope.cancelled else self._rig_cut
            if why is not None:
                self.close()
                raise _Cut(why)

        _rig_answered = 0  # answers this connection has carried: more than none means it is reused

        def getresponse(self, *args: Any, **kwargs: Any) -> Any:
            try:
                response = super().getresponse(*args, **kwargs)
            except (ConnectionResetError, BrokenPipeError) as exc:  # RemoteDisconnected is one too
                if self._rig_answered:  # the server dropped an idle kept-alive socket as we reused it
                    raise _StaleConnection(f"a kept-alive connection was closed before answering: {exc}") from exc
                raise
            self._rig_answered += 1
            return response

        def request(self, method: str, url: str, body: Any = None, headers: Any = None, **kwargs: Any) -> None:
            self._rig_hold = (self.sock is not None and isinstance(body, bytes)
                              and 0 < len(body) <= _ONE_WRITE_LIMIT)
            try:
                super().request(method, url, body, headers, **kwargs)
            finally:
                self._rig_hold, self._rig_held = False, None

        def send(self, data: Any) -> None:
            if self._rig_hold:
                if self._rig_held is None:  # the head: wait for the body
                    self._rig_held = bytes(data)
                    return
                data, self._rig_held, self._rig_hold = self._rig_held + data, None, False
            super().send(data)

    Connection.__name__ = f"Rig{connection_class.__name__}"
    return Connection


class _StaleConnection(http.client.RemoteDisconnected):
    """A reused connection the server had closed (llama-server closes one after a stream): nothing was
    answered, so the request is sent again at once on a new connection, not counted as a retry."""


def _open_socket(conn: Any, scope: CancelScope) -> socket.socket:
    """urllib3's `HTTPConnection._new_conn`, with each socket held by `scope` while it connects, so that
    `cancel()` can shut it down: that ends the connect at once instead of at the connect timeout."""
    try:
        found = socket.getaddrinfo(conn._dns_host.strip("[]"), conn.port, allowed_gai_family(), socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise urllib3.exceptions.NameResolutionError(conn.host, conn, exc) from exc
    error: OSError = OSError("getaddrinfo returned no address")
    timeout = conn.timeout
    for family, kind, proto, _, address in found:
        sock = socket.socket(family, kind, proto)
        try:
            for option in conn.socket_options or ():
                sock.setsockopt(*option)
            if isinstance(timeout, (int, float)):
                sock.settimeout(timeout)
            if conn.source_address:
                sock.bind(conn.source_address)
            with scope._holding(sock, scope._held):
                sock.connect(address)
            return sock
        except OSError as exc:
            sock.close()
            error = exc
        except BaseException:
            sock.close()
            raise
    if isinstance(error, TimeoutError):
        raise urllib3.exceptions.ConnectTimeoutError(
            conn, f"Connection to {conn.host} timed out. (connect timeout={timeout})") from error
    raise urllib3.exceptions.NewConnectionError(conn, f"Failed to establish a new connection: {error}") from error


def _scoped(pool_class: type[HTTPConnectionPool]) -> type[HTTPConnectionPool]:
    """A urllib3 pool class whose connections serve the thread's `CancelScope`, whose wait for a free
    connection is bounded (`_rig_wait`, the scope's deadline) and ends on a cancel or a close, and
    whose `close()` cuts off the connections in use too."""

    class Scoped(pool_class):  # type: ignore[valid-type, misc]
        ConnectionCls = _connection_class(pool_class.ConnectionCls)
        _rig_wait: float | None = None  # longest wait for a free connection (None: unbounded)

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._rig_lock = threading.Lock()
            self._rig_conns: weakref.WeakSet[Any] = weakref.WeakSet()  # every connection made: close() cuts them

        def _new_conn(self) -> Any:
            conn = super()._new_conn()
            with self._rig_lock:
                self._rig_conns.add(conn)
            return conn

        def _get_conn(self, timeout: float | None = None) -> Any:
            scope = _current_scope()
            try:
                conn = super()._get_conn(timeout=0)  # a free connection, or EmptyPoolError at once
            except EmptyPoolError:
                conn = self._wait_for_conn(timeout, scope)
            conn._rig_cut = None
            if scope is not None:
                try:
                    scope._take(conn)
                except _Cut:
                    conn.close()  # urllib3 gives its slot back (as None)
                    raise
            return conn

        def _wait_for_conn(self, timeout: float | None, scope: CancelScope | None) -> Any:
            queue = self.pool
            limit = timeout if timeout is not None else self._rig_wait
            end = None if limit is None else time.monotonic() + limit
            if scope is not None and scope.deadline is not None:
                end = scope.deadline if end is None else min(end, scope.deadline)
            try:
                with scope._holding(queue, scope._waiting) if scope is not None else contextlib.nullcontext():
                    while True:
                        with queue.not_empty:  # woken by a connection given back, a cancel or a close
                            while not queue._qsize():
                                why = _interrupted(scope, self)
                                left = None if end is None else end - time.monotonic()
                                if why is not None:
                                    raise _NoSlot(self, why)
                                if left is not None and left <= 0:
                                    raise EmptyPoolError(self, f"no free connection within {limit:g}s")
                                queue.not_empty.wait(left)
                        try:
                            return super()._get_conn(timeout=0)
                        except EmptyPoolError:
                            continue  # another thread took it first
            except _Cut as cut:  # cancelled before it began to wait
                raise _NoSlot(self, cut.why) from None

        def _put_conn(self, conn: Any) -> None:
            # Whichever thread gives it back: a connection back in the pool is no scope's to cut.
            scope = getattr(conn, "_rig_scope", None)
            if scope is not None:
                conn._rig_scope = None
                scope._give_back(conn)
            super()._put_conn(conn)

        def close(self) -> None:
            queue = self.pool
            super().close()  # closes the idle connections; one given back later is closed then
            with self._rig_lock:
                conns = list(self._rig_conns)
            for conn in conns:  # those in use: their users wake with an error at once
                _cut(conn, "closed")
            if queue is not None:
                with queue.not_empty:  # and so do the calls waiting for one
                    queue.not_empty.notify_all()

    Scoped.__name__ = f"Scoped{pool_class.__name__}"
    return Scoped


_SCOPED_POOLS = {"http": _scoped(HTTPConnectionPool), "https": _scoped(HTTPSConnectionPool)}


class _Adapter(HTTPAdapter):
    """requests' adapter on urllib3 pools that honour `CancelScope`, wait at most `pool_wait` seconds
    for a free connection, and are closed, every one, by `close()` (urllib3 2's `PoolManager.clear()`
    only forgets its pools, leaving their sockets open)."""

    __attrs__ = [*HTTPAdapter.__attrs__, "pool_wait"]
    pool_wait: float | None = None

    def __init__(self, *args: Any, pool_wait: float | None = None, **kwargs: Any) -> None:
        self.pool_wait = pool_wait
        super().__init__(*args, **kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        self._pools_lock = threading.Lock()
        self._pools: weakref.WeakSet[HTTPConnectionPool] = weakref.WeakSet()
        # Factories where urllib3 expects classes: it only calls them (PoolManager._new_pool).
        self._pool_classes: dict[str, Any] = {
            scheme: functools.partial(self._new_pool, pool_class) for scheme, pool_class in _SCOPED_POOLS.items()}
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = self._pool_classes

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if type(manager) is urllib3.ProxyManager:  # a SOCKS manager keeps its own pool classes
            manager.pool_classes_by_scheme = self._pool_classes
        return manager

    def _new_pool(self, pool_class: type[HTTPConnectionPool], *args: Any, **kwargs: Any) -> HTTPConnectionPool:
        pool = pool_class(*args, **kwargs)
        pool._rig_wait = self.pool_wait  # type: ignore[attr-defined]
        with self._pools_lock:
            self._pools.add(pool)
        return pool

    def close(self) -> None:
        super().close()
        with self._pools_lock:
            pools = list(self._pools)
        for pool in pools:
            pool.close()


class RateLimiterLike(Protocol):
    """What the transport needs of a rate limiter (see `rig_sync.ratelimit.RateLimiter`)."""

    def acquire(self, tokens: int = 0) -> float: ...

    def observe(self, status: int, headers: Mapping[str, str], retry_after: float | None = None) -> None: ...


def _header_auth(name: str, value: str) -> HeaderAuth:
    """A header given whole (`Authorization: Bearer <key>`): its last word is the secret to mask."""
    scheme, _, secret = value.strip().rpartition(" ")
    return HeaderAuth(name, secret, prefix=f"{scheme} " if scheme else "")


def _describe_error(body: Any, fallback: str) -> tuple[str, str | None]:
    """The provider's message and code from any of the error shapes providers send."""
    if isinstance(body, list) and body and isinstance(body[0], dict):
        body = body[0]  # Gemini streams wrap errors in a list
    if not isinstance(body, dict):
        return fallback, None
    err = body.get("error", body)
    if isinstance(err, str):
        return err, body.get("type") if isinstance(body.get("type"), str) else None
    if not isinstance(err, dict):
        return fallback, None
    message = err.get("message") or err.get("detail") or err.get("msg") or fallback
    if not isinstance(message, str):
        message = str(message)
    code = None
    for key in ("code", "type", "status"):
        value = err.get(key)
        if isinstance(value, str) and value:
            code = value
            break
    return message, code


class Transport:
    """Pooled, retrying, redacting HTTP for one provider client. Thread-safe; cheap to share.

    `auth_headers` hold secrets: they are sent to the base URL's host only, never logged, and
    never shown in a repr or an error.
    """

    def __init__(
        self,
        provider: str,
        base_url: str,
        *,
        auth: Auth | None = None,
        auth_headers: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: Timeout | float | tuple[float, float] = Timeout(),
        retry: RetryPolicy = RetryPolicy(),
        pool_size: int = 64,
        session: requests.Session | None = None,
        verify: bool | str = True,
        rate_limiter: RateLimiterLike | None = None,
        expected_prefix: str = "",
        max_response_bytes: int | None = None,
    ) -> None:
        """`expected_prefix` is the path the provider's API lives under (`/v1` for OpenAI): a 404
        from a base URL without it says so, with the corrected URL. `max_response_bytes` bounds a
        body read whole, once decoded (None: `MAX_RESPONSE_BYTES`); streams are bounded per event."""
        if pool_size < 1:
            raise ValueError("pool_size must be at least 1")
        if max_response_bytes is not None and (isinstance(max_response_bytes, bool) or max_response_bytes < 1):
            raise ValueError(f"max_response_bytes must be a positive number of bytes, not {max_response_bytes!r}")
        self.max_response_bytes = max_response_bytes
        self.provider = provider
        self.base_url = validate_base_url(base_url, provider)
        self._prefix_hint = _prefix_hint(shown_url(self.base_url), expected_prefix)
        # urllib3's debug log shows each request's target, which a base URL or an auth may put a key in.
        logging.getLogger("urllib3.connectionpool").addFilter(_MASK_QUERY_SECRETS)  # idempotent
        plain = dict(headers or {})
        # Credentials passed as plain headers (a gateway's own key) are sent and masked like the key.
        moved = {k: plain.pop(k) for k in list(plain) if k.lower() in _SENSITIVE_HEADERS}
        self.auth = combine(*(_header_auth(k, v) for k, v in {**moved, **(auth_headers or {})}.items()), auth)
        self._auth_names = _SENSITIVE_HEADERS | (self.auth.header_names() if self.auth else frozenset())
        # Compressed answers where the provider offers them (urllib3 decodes what it asked for:
        # gzip and deflate, and br/zstd when their modules are installed), as requests does.
        self.headers = {"User-Agent": "rig-sync/0.1", "Accept-Encoding": _ACCEPT_ENCODING, **plain}
        self.timeout = Timeout.of(timeout)
        self.retry = retry
        self.pool_size = pool_size
        self._custom_session = session
        if verify is False:
            log.warning("%s: TLS certificate verification is OFF for %s", provider, shown_url(self.base_url))
        self._verify = verify
        self.rate_limiter = rate_limiter
        self._lock = threading.Lock()
        self._origin = _origin(self.base_url)
        self._connect()

    # --- session life cycle -------------------------------------------------------------------

    def _connect(self) -> None:
        session = self._custom_session or requests.Session()
        adapter = _Adapter(
            pool_connections=4,
            pool_maxsize=self.pool_size,
            pool_block=True,  # wait for a free connection instead of opening and discarding extras
            max_retries=self._urllib3_retry(),
            pool_wait=self.timeout.pool or self.timeout.read,
        )
        self._adapter = adapter if self._custom_session is None else None
        if self._custom_session is None:
            session.trust_env = False  # resolved once below, not on every request
            for scheme in ("https://", "http://"):  # absolute URLs elsewhere get the same policy
                session.mount(scheme, adapter)
        elif session.get_adapter(self.base_url).__class__ in (HTTPAdapter, _Adapter):
            session.mount("{}://{}".format(*urlsplit(self.base_url)[:2]), adapter)
        # A caller's session keeps its own CA bundle (or the environment's) unless verify was passed.
        asked = None if self._custom_session is not None and self._verify is True else self._verify
        env = requests.Session.merge_environment_settings(_env_view(session), self.base_url, {}, None, asked, None)
        if env["verify"] is False and self._verify is not False:
            log.warning("%s: TLS certificate verification is OFF for %s (the custom session has verify=False)",
                        self.provider, shown_url(self.base_url))
        # A proxy's credentials (a 407 page may echo its Proxy-Authorization) and a base URL's query
        # token could come back in an error: redact them like a key.
        url_secrets = _url_secrets(self.base_url).union(
            *(_url_secrets(p) for p in env["proxies"].values() if isinstance(p, str)))
        self._url_redacted = tuple(sorted(url_secrets, key=len, reverse=True))
        self._adapter_kwargs: dict[str, Any] = {
            "proxies": env["proxies"],
            "verify": env["verify"],
            "cert": env["cert"],
            "timeout": (self.timeout.connect, self.timeout.read),
        }
        self._urllib3_timeout = urllib3.Timeout(connect=self.timeout.connect, read=self.timeout.read)
        self._direct: dict[tuple[str, str, int | None], _DirectRoute | None] = {}  # None: via requests (a proxy)
        self._session = session
        self._pid = os.getpid()

    def _urllib3_retry(self) -> _Retry:
        policy = self.retry
        return _Retry(
            total=policy.max_retries,
            connect=policy.max_retries,
            read=policy.max_retries,
            status=policy.max_retries,
            other=0,
            redirect=False,
            allowed_methods=None,  # POSTs to these APIs are safe to retry on the listed failures
            backoff_factor=policy.backoff_base,
            backoff_max=policy.backoff_max,
            raise_on_status=False,
            raise_on_redirect=False,
            respect_retry_after_header=True,
            max_retry_after=policy.max_retry_after,
            limiter=self.rate_limiter,
        )

    def _session_for_this_process(self) -> requests.Session:
        if self._pid != os.getpid():  # forked: never share the parent's sockets
            with self._lock:
                if self._pid != os.getpid():
                    if self._custom_session is not None:
                        self._custom_session = _without_connections(self._custom_session)
                    self._connect()
        return self._session

    def close(self) -> None:
        """Close every connection: idle ones at once; one in use is cut off, so its call or stream
        (on any thread) raises `APIConnectionError` ("the client was closed"), and a call waiting for
        a pooled connection does too. Not final: a later call opens new connections."""
        self._session.close()

    def _limit(self) -> contextlib.AbstractContextManager[Any]:
        """The scope of one call: its `Timeout.total`, if any."""
        total = self.timeout.total
        return _NO_LIMIT if total is None else CancelScope(total)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for key in ("_session", "_lock", "_custom_session", "_adapter", "_adapter_kwargs", "_direct",
                    "_urllib3_timeout"):
            state.pop(key, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._custom_session = None
        self._lock = threading.Lock()
        self._connect()

    def __repr__(self) -> str:
        return f"Transport(provider={self.provider!r}, base_url={shown_url(self.base_url)!r})"

    # --- requests -------------------------------------------------------------------------------

    def post_json(self, path: str, body: Any, *, headers: Mapping[str, str] | None = None,
                  model: str | None = None, capability: str | None = None) -> Any:
        """POST JSON, return the decoded JSON answer (or raise the mapped error).

        `model` and `capability` only tag the request for `rig_sync.observe` hooks.
        """
        return self.request("POST", path, json=body, headers=headers, model=model, capability=capability).json()

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: Any = None,
        files: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        model: str | None = None,
        capability: str | None = None,
    ) -> Response:
        """Send a request and read the whole answer; error statuses raise `APIStatusError`s."""
        with self._limit():
            resp, retries = self._send(method, path, json, data, files, params, headers, stream=False,
                                       tags=(model, capability))
            content = self._read_body(resp, method, path)
        request_id = _request_id(resp.headers)
        if resp.status_code >= 400:
            raise self._status_error(resp.status_code, resp.headers, content, request_id)
        return Response(
            resp.status_code, resp.headers, content, request_id, self.provider, retries, self._redacted
        )

    @errors.drops_hidden_context
    def _read_body(self, resp: _Reply, method: str, path: str) -> bytes:
        """The whole body. urllib3's retries end once the headers are in: a connection that breaks off
        or stalls mid-body is a connection error or timeout, never a short body or a `requests` error.
        Within a deadline, each read waits at most the time left. Past `max_response_bytes` (decoded),
        `ResponseTooLargeError`, and the connection is closed."""
        scope = _current_scope()
        limit = MAX_RESPONSE_BYTES if self.max_response_bytes is None else self.max_response_bytes
        try:
            return _read_whole(resp, limit, scope if scope is not None and scope.deadline is not None else None)
        except _TooLarge as exc:
            resp.close()
            came = f"announced {exc.size:,} bytes" if exc.announced else "went on past it"
            raise errors.ResponseTooLargeError(
                f"{method} {path}: the answer is larger than the {limit:,}-byte limit on a body read whole "
                f"(decoded; it {came}). If it is genuine, raise the limit: Transport(max_response_bytes=...) "
                "or rig_sync.http.MAX_RESPONSE_BYTES", provider=self.provider, limit=limit) from None
        except (*_FAILURES, _Cut) as exc:
            resp.close()
            why = _why_cut(list(_causes(exc)), scope, getattr(resp.raw, "_pool", None))
            if why is not None:
                raise self._cut_error(why, f"{method} {path}", scope) from None
            if any(_is_timeout(c) for c in _causes(exc)):
                raise errors.APITimeoutError(f"{method} {path}: the answer stalled mid-body",
                                             provider=self.provider) from None
            raise errors.APIConnectionError(
                f"{method} {path}: the connection broke off mid-answer: {self._redact(_root_cause(exc))}",
                provider=self.provider,
            ) from None

    def stream(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        model: str | None = None,
        capability: str | None = None,
        events: bool = False,
    ) -> StreamResponse:
        """Send a request and return the answer unread, for streaming; errors raise before.

        With `events=True` (an SSE request), a 200 whose body is a JSON or HTML document is an
        error the provider or a proxy sent in place of the stream: `StreamError` with its message.
        """
        with self._limit():
            resp, _ = self._send(method, path, json, None, None, params, headers, stream=True,
                                 tags=(model, capability))
            scope = _current_scope()
            request_id = _request_id(resp.headers)
            document = events and resp.headers.get("content-type", "").split(";")[0].strip() in _DOCUMENT_TYPES
            if resp.status_code >= 400 or document:
                try:
                    content = self._read_body(resp, method, path)
                except errors.APIConnectionError:
                    if _interrupted(scope, None):
                        raise
                    content = b""
                finally:
                    resp.close()
                error = self._status_error(resp.status_code, resp.headers, content, request_id)
                if resp.status_code >= 400:
                    raise error
                # A provider's JSON object will come again on a retry; a proxy's page or a cut body may not.
                raise errors.StreamError(
                    f"answered a stream request with a document instead of events: {error.message}",
                    provider=self.provider, body=error.body, retryable=not isinstance(error.body, dict))
        return StreamResponse(resp, self.provider, request_id, self._redacted, model, scope)

    @errors.drops_hidden_context
    def _send(
        self,
        method: str,
        path: str,
        json_body: Any,
        data: Any,
        files: Any,
        params: Mapping[str, str] | None,
        extra_headers: Mapping[str, str] | None,
        *,
        stream: bool,
        tags: tuple[str | None, str | None] = (None, None),
    ) -> tuple[_Reply, int]:
        session = self._session_for_this_process()
        url = join_url(self.base_url, path)
        headers = {**self.headers, **(extra_headers or {})}
        if json_body is not None:
            data = self._encode(json_body)
            headers["Content-Type"] = "application/json"
        queued = 0.0
        if self.rate_limiter is not None:
            tokens = _estimate_tokens(data, json_body) if json_body is not None else 0
            queued = self.rate_limiter.acquire(tokens) or 0.0  # a third-party limiter may return None
            scope = _current_scope()
            why = _interrupted(scope, None)  # cancelled or out of time while it waited: send nothing
            if why is not None:
                raise self._cut_error(why, f"{method} {path}", scope)
        started = time.perf_counter()
        seen = (started, queued, *tags)
        try:
            for hop in range(_MAX_REDIRECTS + 1):
                resp = self._send_once(session, method, *self._authorize(method, url, headers, data), data, files,
                                       params, stream)
                if resp.status_code not in _REDIRECTS or "location" not in resp.headers:
                    break
                _discard(resp)
                target, refused = self._redirect(resp, url, data is not None or files is not None, hop)
                if refused:
                    self._emit(method, path, resp, seen, None)
                    raise errors.APIStatusError(
                        f"{method} {path}: {refused}",
                        status_code=resp.status_code,
                        provider=self.provider,
                        request_id=_request_id(resp.headers),
                        headers=resp.headers,
                    )
                url, method, data, files, headers = self._follow(resp, target, method, data, files, headers)
                params = None
        except (*_FAILURES, _Cut) as exc:
            causes = list(_causes(exc))
            # Exhausted retries surface as MaxRetryError: every allowed retry was used.
            retries = self.retry.max_retries if any(isinstance(c, MaxRetryError) for c in causes) else 0
            self._emit(method, path, None, seen, exc, retries)
            scope = _current_scope()
            why = _why_cut(causes, scope, None)
            if why is not None:
                raise self._cut_error(why, f"{method} {path}", scope) from None
            if any(isinstance(c, EmptyPoolError) for c in causes):
                _, host, port = _origin(url)
                wait = self.timeout.pool or self.timeout.read
                raise errors.APITimeoutError(
                    f"no free connection to {host}:{port} within {wait:g}s: all {self.pool_size} pooled "
                    f"connections are in use ({method} {path}): close streams when done with them (use `with`) "
                    f"or raise pool_size (e.g. pool_size={2 * self.pool_size})", provider=self.provider) from None
            kind, what = _no_answer(causes, url, self.timeout)
            advice = ("Raise the timeout or retry later" if kind is errors.APITimeoutError
                      else f"Check the base URL ({shown_url(self.base_url)}) and that the server is up")
            raise kind(f"{self._redact(what)}: {method} {path}, {retries} retries. {advice}",
                       provider=self.provider) from None
        retries = _retries_used(resp)
        self._emit(method, path, resp, seen, None, retries)
        if self.rate_limiter is not None:
            self.rate_limiter.observe(resp.status_code, resp.headers, parse_retry_after(resp.headers))
        return resp, retries

    def _cut_error(self, why: str, what: str, scope: CancelScope | None) -> errors.APIConnectionError:
        return _cut_error(why, what, scope, self.provider)

    def _authorize(self, method: str, url: str, headers: dict[str, str], data: Any) -> tuple[str, dict[str, str]]:
        """The URL and headers of one hop: with credentials for the configured origin only, never for
        another host a redirect leads to."""
        if self.auth is None or _origin(url) != self._origin:
            return url, headers
        signed = dict(headers)
        try:
            url = self.auth.apply(method, url, signed, data if isinstance(data, bytes) else None)
        except errors.RigError:
            raise
        except Exception as exc:  # a token fetch that failed: nothing was sent
            raise errors.CredentialsError(
                f"{self.provider}: could not get credentials for {method} {shown_url(url)}: "
                f"{self._redact(f'{type(exc).__name__}: {exc}')[:300]}", provider=self.provider) from exc
        return url, signed

    @property
    def _redacted(self) -> tuple[str, ...]:
        """Every secret to mask: the auth's (a refreshed token among them) and those in the URLs."""
        if self.auth is None:
            return self._url_redacted
        return (*self.auth.secrets(), *self._url_redacted)

    def _encode(self, body: Any) -> bytes:
        """The JSON body as bytes; a value JSON cannot carry is refused before anything is sent."""
        try:
            return _json.dumps(body)
        except UnicodeEncodeError as exc:
            half = exc.object[exc.start:exc.end]
            raise errors.InvalidRequestError(
                f"{self.provider}: the request holds a lone surrogate (half a character, {half!a}) that UTF-8 "
                "cannot carry; clean the text first, e.g. text.encode('utf-8', 'replace').decode()"
            ) from exc
        except (TypeError, ValueError, RecursionError) as exc:
            raise errors.InvalidRequestError(
                f"{self.provider}: the request cannot be sent as JSON ({type(exc).__name__}: {str(exc)[:200]}); "
                "use strings, finite numbers, lists and dicts"
            ) from exc

    def _send_once(self, session: requests.Session, method: str, url: str, headers: dict[str, str], data: Any,
                   files: Any, params: Mapping[str, str] | None, stream: bool) -> _Reply:
        if self._adapter is None or _sending_is_patched():
            # The caller's session (its cookies, auth, hooks and adapters apply), or a test
            # library's mock of requests (responses, requests-mock), which must see every call.
            prepared = session.prepare_request(
                requests.Request(method, url, headers=headers, data=data, files=files, params=params))
            # Unread (stream=True): the body is read by `_read_whole`, within its limit.
            return session.send(prepared, stream=True, allow_redirects=False, **self._adapter_kwargs)
        if files is None and params is None and isinstance(data, (bytes, type(None))):
            pool = self._direct_pool(url)
            if pool is not None:
                return self._send_direct(pool, method, url, headers, data)
        # Our own session has no cookies, auth or hooks to merge: prepare and send directly,
        # skipping the per-call merging in Session.request/send (a measurable share of a call).
        prepared = requests.PreparedRequest()
        prepared.prepare(method=method, url=url, headers=headers, data=data, files=files, params=params)
        return self._adapter.send(prepared, stream=stream, **self._adapter_kwargs)

    def _direct_pool(self, url: str) -> HTTPConnectionPool | None:
        """The urllib3 pool our adapter would use for `url`, or None where a proxy applies.

        JSON calls skip requests' per-call work (preparing the request, resolving the pool's TLS
        settings, building a `requests.Response` with its cookie jar): about a quarter of the
        client CPU a call costs, which is what many threads sharing one GIL wait for. The pool,
        retries, timeouts and TLS settings are the adapter's own, so both ways behave the same."""
        assert self._adapter is not None
        origin = _origin(url)
        if origin not in self._direct:
            proxied = requests.utils.select_proxy(url, self._adapter_kwargs["proxies"])
            self._direct[origin] = None if proxied else _DirectRoute(self._adapter, url, self._adapter_kwargs)
        route = self._direct[origin]
        return route.pool() if route is not None else None

    def _send_direct(self, pool: HTTPConnectionPool, method: str, url: str, headers: dict[str, str],
                     data: bytes | None) -> _Answer:
        assert self._adapter is not None
        raw = pool.urlopen(method, _request_target(url), body=data, headers=headers, redirect=False,
                           assert_same_host=False, preload_content=False, decode_content=False,
                           retries=self._adapter.max_retries, timeout=self._urllib3_timeout)
        return _Answer(raw)

    def _redirect(self, resp: _Reply, url: str, with_body: bool, hop: int) -> tuple[str, str]:
        """Where a redirect from `url` leads, or ("", why it is not followed)."""
        if hop == _MAX_REDIRECTS:
            return "", f"more than {_MAX_REDIRECTS} redirects"
        location = resp.headers["location"]
        try:
            target = requests.compat.urljoin(url, location)
            parts = urlsplit(target)
            usable = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
            origin = _origin(target)  # a port out of range raises
        except ValueError:
            usable = False
        if not usable:
            shown = self._redact(shown_url(location))[:200]
            return "", f"the server redirected to {shown!r}, which is not an http(s) URL with a valid host and port"
        if with_body and resp.status_code in (307, 308) and origin != _origin(url):
            return "", (f"refused a {resp.status_code} redirect from {_origin_text(_origin(url))} to another origin, "
                        f"{_origin_text(origin)}: it would resend the request body (the prompt) there. "
                        "If the API has moved, set the base URL to where it is now")
        return target, ""

    def _follow(
        self, resp: _Reply, target: str, method: str, data: Any, files: Any, headers: dict[str, str]
    ) -> tuple[str, str, Any, Any, dict[str, str]]:
        if _origin(target) != self._origin:
            # Credentials go to the configured origin only: drop every auth header, in any spelling.
            headers = {k: v for k, v in headers.items() if k.lower() not in self._auth_names}
        if resp.status_code in (301, 302, 303) and method != "GET":
            method, data, files = "GET", None, None
            headers.pop("Content-Type", None)
        return target, method, data, files, headers

    def _status_error(
        self, status: int, headers: Mapping[str, str], content: bytes, request_id: str | None
    ) -> errors.APIStatusError:
        content = errors.redact_bytes(content, self._redacted)  # a body may echo the key ("Incorrect API key: sk-…")
        try:
            body: Any = _json.loads(content) if content else None
        except _json.JSONDecodeError:
            body = content.decode("utf-8", "replace")[:2000]
        fallback = body.strip()[:300] if isinstance(body, str) and body.strip() else f"HTTP {status}"
        message, code = _describe_error(body, fallback)
        if status == 404 and self._prefix_hint:
            message = f"{message} ({self._prefix_hint})"
        if isinstance(body, dict) and not request_id:
            rid = body.get("request_id")
            request_id = rid if isinstance(rid, str) else None
        error = errors.status_error(
            status,
            message,
            provider=self.provider,
            request_id=request_id,
            headers=headers,
            body=body,
            retry_after=parse_retry_after(headers),
            code=code,
        )
        # Decoded, a key the server escaped (`\u0073k-…`, `\/`) is plain: masked here too.
        errors.scrub(error, self._redacted)
        return error

    def _redact(self, text: str) -> str:
        return errors.redact(text, self._redacted)

    def _emit(
        self,
        method: str,
        path: str,
        resp: _Reply | None,
        seen: tuple[float, float, str | None, str | None],  # started, queued, model, capability
        exc: BaseException | None,
        retries: int = 0,
    ) -> None:
        started = seen[0]
        if log.isEnabledFor(logging.DEBUG):
            status = resp.status_code if resp is not None else type(exc).__name__
            log.debug("%s %s %s -> %s in %.1f ms (retries %d)", self.provider, method, path, status,
                      (time.perf_counter() - started) * 1000, retries)
        if observe.has_hooks():
            observe.emit(
                observe.RequestEvent(
                    provider=self.provider,
                    method=method,
                    path=path,
                    status=resp.status_code if resp is not None else None,
                    latency=time.perf_counter() - started,
                    retries=retries,
                    error=type(exc).__name__ if exc is not None else None,
                    request_id=_request_id(resp.headers) if resp is not None else None,
                    model=seen[2],
                    capability=seen[3],
                    queued=seen[1],
                    headers=resp.headers if resp is not None else {},
                )
            )


class _EnvView:
    """The parts of a session that `merge_environment_settings` reads."""

    def __init__(self, session: requests.Session) -> None:
        self.trust_env = True
        self.stream = False
        self.proxies = session.proxies
        self.verify = session.verify
        self.cert = session.cert


def _env_view(session: requests.Session) -> Any:
    # Our own sessions have trust_env off; the environment is still read, here, once.
    return _EnvView(session) if session.trust_env is False else session


class _DirectRoute:
    """Where JSON calls to one origin go without requests: the adapter's pool for it."""

    def __init__(self, adapter: HTTPAdapter, url: str, settings: Mapping[str, Any]) -> None:
        prepared = requests.PreparedRequest()
        prepared.prepare(method="GET", url=url)
        self._host, self._pool_kwargs = adapter.build_connection_pool_key_attributes(
            prepared, settings["verify"], settings["cert"])
        self._adapter, self._url, self._settings = adapter, url, settings
        self._pool: HTTPConnectionPool | None = None

    def pool(self) -> HTTPConnectionPool:
        pool = self._pool
        if pool is None or pool.pool is None:  # first use, or closed (the pool manager let it go)
            pool = self._adapter.poolmanager.connection_from_host(**self._host, pool_kwargs=self._pool_kwargs)
            # What requests' send does to each pool it is about to use (it checks the CA bundle path).
            self._adapter.cert_verify(pool, self._url, self._settings["verify"],  # type: ignore[no-untyped-call]
                                      self._settings["cert"])
            self._pool = pool
        return pool


def _discard(resp: _Reply) -> None:
    """Close an answer we do not read (a redirect), reading its body first if it is small, as
    requests does, so that its connection goes back to the pool instead of being closed."""
    try:
        if int(resp.headers.get("content-length") or _DRAIN_LIMIT + 1) <= _DRAIN_LIMIT:
            _read_whole(resp, _DRAIN_LIMIT, None)  # a compressed one too: it stops at the limit
    except (ValueError, _TooLarge, *_FAILURES):
        pass  # no length, a bad one, or a broken body: closing is all that is left
    resp.close()


def _sending_is_patched() -> bool:
    """Whether a test library has replaced requests' sending (responses patches `HTTPAdapter.send`,
    requests-mock `Session.get_adapter`): then every call must go through it, never around it."""
    send, get_adapter = HTTPAdapter.send, requests.Session.get_adapter
    return not (getattr(send, "__module__", None) == "requests.adapters"
                and getattr(send, "__qualname__", None) == "HTTPAdapter.send"
                and getattr(get_adapter, "__module__", None) == "requests.sessions"
                and getattr(get_adapter, "__qualname__", None) == "Session.get_adapter")


@functools.lru_cache(maxsize=512)
def _request_target(url: str) -> str:
    """The path and query to put on the request line, quoted as requests would quote them."""
    parts = urlsplit(url)
    target = f"{parts.path or '/'}?{parts.query}" if parts.query else parts.path or "/"
    return requests.utils.requote_uri(target)


def _request_id(headers: Mapping[str, str]) -> str | None:
    for name in _REQUEST_ID_HEADERS:
        value = headers.get(name)
        if value:
            return value
    return None


def _estimate_tokens(data: bytes, body: Any) -> int:
    """A rate limiter's token estimate for a JSON request: a quarter of its bytes plus the answer
    it may get (`max_tokens` and its other spellings). The model layer reports the real count."""
    tokens = len(data) // 4
    if isinstance(body, dict):
        for key in ("max_tokens", "max_completion_tokens", "max_output_tokens"):
            value = body.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return tokens + value
    return tokens


def _retries_used(resp: _Reply) -> int:
    retries = getattr(resp.raw, "retries", None)
    return len(retries.history) if retries is not None else 0


def _without_connections(session: requests.Session) -> requests.Session:
    """A copy of a user's session sharing its settings but none of its pooled sockets."""
    clone = copy.copy(session)  # Session.__setstate__: the same settings objects
    # An HTTPAdapter's __setstate__ builds a new, empty pool manager.
    clone.adapters = OrderedDict((prefix, copy.copy(adapter)) for prefix, adapter in session.adapters.items())
    return clone


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and everything behind it: causes, contexts, and urllib3's wrapped `reason`s."""
    seen: set[int] = set()
    stack: list[Any] = [exc]
    while stack:
        item = stack.pop()
        if not isinstance(item, BaseException) or id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        stack.extend((item.__cause__, item.__context__, getattr(item, "reason", None), *item.args))


def _no_answer(causes: list[BaseException], url: str, timeout: Timeout) -> tuple[type[errors.APIConnectionError], str]:
    """The error class and a sentence naming the host and port tried, for a request that got no answer."""
    _, host, port = _origin(url)
    where = f"{host}:{port}"
    exceptions = urllib3.exceptions

    def seen(*kinds: type[BaseException]) -> bool:
        return any(isinstance(c, kinds) for c in causes)

    if any(_is_timeout(c) for c in causes):
        if seen(exceptions.ConnectTimeoutError, requests.ConnectTimeout):
            return errors.APITimeoutError, f"could not connect to {where} within {timeout.connect:g}s"
        return errors.APITimeoutError, f"{where} did not answer within {timeout.read:g}s"
    if seen(ConnectionRefusedError):
        return errors.APIConnectionError, f"could not connect to {where} (connection refused)"
    if seen(socket.gaierror, exceptions.NameResolutionError):
        return errors.APIConnectionError, f"could not connect to {where} (host name {host!r} not found)"
    if seen(exceptions.SSLError, ssl.SSLError):
        return errors.APIConnectionError, f"TLS with {where} failed ({_root_cause(causes[0])})"
    verb = "could not connect to" if seen(exceptions.NewConnectionError) else "lost the connection to"
    return errors.APIConnectionError, f"{verb} {where} ({_root_cause(causes[0])})"


def _is_timeout(exc: BaseException) -> bool:
    # urllib3's NewConnectionError subclasses ConnectTimeoutError for history's sake: it is a refusal.
    timeouts = (requests.Timeout, urllib3.exceptions.TimeoutError, TimeoutError)
    return isinstance(exc, timeouts) and not isinstance(exc, urllib3.exceptions.NewConnectionError)


def _root_cause(exc: BaseException) -> str:
    while exc.__context__ is not None and exc.__context__ is not exc:
        exc = exc.__context__
    reason = getattr(exc, "reason", None)
    text = f"{type(exc).__name__}: {reason or exc}"
    return text[:300]
