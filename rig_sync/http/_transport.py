"""`Transport`: one per client; a call goes down through layers, each with one job:

    request / stream      read the answer (whole, bounded) or hand it over for streaming; map errors
    _send                 the rate limiter, observation hooks, and what a request with no answer raises
    _follow_redirects     redirects, never carrying credentials to another origin
    _authorize            the client's `Auth`, on each hop to its own origin
    _attempt              one request (urllib3 retries it), straight to the pool where it can

The call travels as one small record (`Call`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool
from urllib3.exceptions import EmptyPoolError, MaxRetryError

from .. import _json, errors, observe
from ..auth import Auth, HeaderAuth, combine
from ._body import Answer, Reply, Response, StreamResponse, TooLarge, discard_unread, read_whole
from ._cancel import NO_LIMIT, CancelScope, Cut, current_scope, cut_error, interrupted, why_cut
from ._config import RateLimiterLike, RetryPolicy, Timeout, parse_retry_after
from ._failures import (
    FAILURES,
    REQUEST_ID_HEADERS,
    causes_of,
    describe_error,
    is_timeout,
    no_answer,
    request_id_of,
    root_cause,
)
from ._pool import Adapter, DirectRoute, env_view, sending_is_patched, without_connections
from ._retry import ProviderRetry
from ._urls import (
    MASK_QUERY_SECRETS,
    SECRET_NAME,
    join_url,
    origin_of,
    origin_text,
    prefix_hint,
    request_target,
    secrets_in_url,
    shown_url,
    validate_base_url,
)
from .conventions import COMMON, Conventions

log = logging.getLogger("rig_sync.http")


_REDIRECTS = {301, 302, 303, 307, 308}


_MAX_REDIRECTS = 5




def is_sensitive(header: str) -> bool:
    """Whether a header carries credentials: a cookie, or a name like a secret's (`authorization`,
    `x-api-key`, `api-key`, a gateway's `x-…-token`). Such headers, even passed as ordinary `headers`,
    are secrets: redacted, and sent to the configured origin only."""
    return header.lower() == "cookie" or SECRET_NAME.search(header) is not None


_ACCEPT_ENCODING = urllib3.util.make_headers(accept_encoding=True)["accept-encoding"]


_DOCUMENT_TYPES = frozenset({"application/json", "text/html", "text/plain"})


def _header_auth(name: str, value: str) -> HeaderAuth:
    """A header given whole (`Authorization: Bearer <key>`): its last word is the secret to mask."""
    scheme, _, secret = value.strip().rpartition(" ")
    return HeaderAuth(name, secret, prefix=f"{scheme} " if scheme else "")


class Call(NamedTuple):
    """One request on its way down the layers: what is sent, and where."""

    method: str
    path: str  # as the caller gave it, for messages and hooks
    url: str
    headers: dict[str, str]
    data: Any  # the encoded JSON body (bytes), a form, or None
    files: Any
    params: Mapping[str, str] | None
    stream: bool


class Transport:
    """Pooled, retrying, redacting HTTP for one provider client. Thread-safe; cheap to share.

    `auth` (and `auth_headers`, a fixed set of headers) hold secrets: they are sent to the base
    URL's origin only, never logged, and never shown in a repr or an error. `conventions` are the
    provider's own error shapes and headers.
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
        conventions: Conventions = COMMON,
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
        self.conventions = conventions
        self._request_id_headers = (*REQUEST_ID_HEADERS, *conventions.request_id_headers)
        self.base_url = validate_base_url(base_url, provider)
        self._prefix_hint = prefix_hint(shown_url(self.base_url), expected_prefix)
        # urllib3's debug log shows each request's target, which a base URL or an auth may put a key in.
        logging.getLogger("urllib3.connectionpool").addFilter(MASK_QUERY_SECRETS)  # idempotent
        plain = dict(headers or {})
        # Credentials passed as plain headers (a gateway's own key) are sent and masked like the key.
        moved = {k: plain.pop(k) for k in list(plain) if is_sensitive(k) or k.lower() in conventions.secret_headers}
        self.auth = combine(*(_header_auth(k, v) for k, v in {**moved, **(auth_headers or {})}.items()), auth)
        self._auth_names = conventions.secret_headers | (self.auth.header_names() if self.auth else frozenset())
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
        self._origin = origin_of(self.base_url)
        self._connect()

    # --- session life cycle -------------------------------------------------------------------

    def _connect(self) -> None:
        session = self._custom_session or requests.Session()
        adapter = Adapter(
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
        elif session.get_adapter(self.base_url).__class__ in (HTTPAdapter, Adapter):
            session.mount("{}://{}".format(*urlsplit(self.base_url)[:2]), adapter)
        # A caller's session keeps its own CA bundle (or the environment's) unless verify was passed.
        asked = None if self._custom_session is not None and self._verify is True else self._verify
        env = requests.Session.merge_environment_settings(env_view(session), self.base_url, {}, None, asked, None)
        if env["verify"] is False and self._verify is not False:
            log.warning("%s: TLS certificate verification is OFF for %s (the custom session has verify=False)",
                        self.provider, shown_url(self.base_url))
        # A proxy's credentials (a 407 page may echo its Proxy-Authorization) and a base URL's query
        # token could come back in an error: redact them like a key.
        url_secrets = secrets_in_url(self.base_url).union(
            *(secrets_in_url(p) for p in env["proxies"].values() if isinstance(p, str)))
        self._url_redacted = tuple(sorted(url_secrets, key=len, reverse=True))
        self._adapter_kwargs: dict[str, Any] = {
            "proxies": env["proxies"],
            "verify": env["verify"],
            "cert": env["cert"],
            "timeout": (self.timeout.connect, self.timeout.read),
        }
        self._urllib3_timeout = urllib3.Timeout(connect=self.timeout.connect, read=self.timeout.read)
        self._direct: dict[tuple[str, str, int | None], DirectRoute | None] = {}  # None: via requests (a proxy)
        self._session = session
        self._pid = os.getpid()

    def _urllib3_retry(self) -> ProviderRetry:
        policy = self.retry
        return ProviderRetry(
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
                        self._custom_session = without_connections(self._custom_session)
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
        return NO_LIMIT if total is None else CancelScope(total)

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
            resp, retries = self._send(self._call(method, path, json, data, files, params, headers, False),
                                       json, (model, capability))
            content = self._read_body(resp, method, path)
        request_id = request_id_of(resp.headers, self._request_id_headers)
        if resp.status_code >= 400:
            raise self.status_error(resp.status_code, resp.headers, content, request_id)
        return Response(
            resp.status_code, resp.headers, content, request_id, self.provider, retries, self._redacted
        )

    @errors.drops_hidden_context
    def _read_body(self, resp: Reply, method: str, path: str) -> bytes:
        """The whole body. urllib3's retries end once the headers are in: a connection that breaks off
        or stalls mid-body is a connection error or timeout, never a short body or a `requests` error.
        Within a deadline, each read waits at most the time left. Past `max_response_bytes` (decoded),
        `ResponseTooLargeError`, and the connection is closed."""
        scope = current_scope()
        limit = _max_response_bytes() if self.max_response_bytes is None else self.max_response_bytes
        try:
            return read_whole(resp, limit, scope if scope is not None and scope.deadline is not None else None)
        except TooLarge as exc:
            resp.close()
            came = f"announced {exc.size:,} bytes" if exc.announced else "went on past it"
            raise errors.ResponseTooLargeError(
                f"{method} {path}: the answer is larger than the {limit:,}-byte limit on a body read whole "
                f"(decoded; it {came}). If it is genuine, raise the limit: Transport(max_response_bytes=...) "
                "or rig_sync.http.MAX_RESPONSE_BYTES", provider=self.provider, limit=limit) from None
        except (*FAILURES, Cut) as exc:
            resp.close()
            why = why_cut(list(causes_of(exc)), scope, getattr(resp.raw, "_pool", None))
            if why is not None:
                raise self._cut_error(why, f"{method} {path}", scope) from None
            if any(is_timeout(c) for c in causes_of(exc)):
                raise errors.APITimeoutError(f"{method} {path}: the answer stalled mid-body",
                                             provider=self.provider) from None
            raise errors.APIConnectionError(
                f"{method} {path}: the connection broke off mid-answer: {self._redact(root_cause(exc))}",
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
            resp, _ = self._send(self._call(method, path, json, None, None, params, headers, True),
                                 json, (model, capability))
            scope = current_scope()
            request_id = request_id_of(resp.headers, self._request_id_headers)
            document = events and resp.headers.get("content-type", "").split(";")[0].strip() in _DOCUMENT_TYPES
            if resp.status_code >= 400 or document:
                try:
                    content = self._read_body(resp, method, path)
                except errors.APIConnectionError:
                    if interrupted(scope, None):
                        raise
                    content = b""
                finally:
                    resp.close()
                error = self.status_error(resp.status_code, resp.headers, content, request_id)
                if resp.status_code >= 400:
                    raise error
                # A provider's JSON object will come again on a retry; a proxy's page or a cut body may not.
                raise errors.StreamError(
                    f"answered a stream request with a document instead of events: {error.message}",
                    provider=self.provider, body=error.body, retryable=not isinstance(error.body, dict))
        return StreamResponse(resp, self.provider, request_id, self._redacted, model, scope)

    def _call(self, method: str, path: str, json_body: Any, data: Any, files: Any,
              params: Mapping[str, str] | None, extra_headers: Mapping[str, str] | None, stream: bool) -> Call:
        headers = {**self.headers, **(extra_headers or {})}
        if json_body is not None:
            data = self.encode_json(json_body)
            headers["Content-Type"] = "application/json"
        return Call(method, path, join_url(self.base_url, path), headers, data, files, params, stream)

    @errors.drops_hidden_context
    def _send(self, call: Call, json_body: Any, tags: tuple[str | None, str | None]) -> tuple[Reply, int]:
        """The rate limiter, the observation hooks, and the error a request with no answer raises."""
        self._session_for_this_process()  # before the limiter: a forked child reconnects first
        queued = 0.0
        if self.rate_limiter is not None:
            tokens = estimate_tokens(call.data, json_body) if json_body is not None else 0
            queued = self.rate_limiter.acquire(tokens) or 0.0  # a third-party limiter may return None
            scope = current_scope()
            why = interrupted(scope, None)  # cancelled or out of time while it waited: send nothing
            if why is not None:
                raise self._cut_error(why, f"{call.method} {call.path}", scope)
        started = time.perf_counter()
        seen = (started, queued, *tags)
        try:
            resp = self._follow_redirects(call, seen)
        except (*FAILURES, Cut) as exc:
            causes = list(causes_of(exc))
            # Exhausted retries surface as MaxRetryError: every allowed retry was used.
            retries = self.retry.max_retries if any(isinstance(c, MaxRetryError) for c in causes) else 0
            self._emit(call.method, call.path, None, seen, exc, retries)
            raise self._no_answer(call, causes, retries) from None
        retries = _retries_used(resp)
        self._emit(call.method, call.path, resp, seen, None, retries)
        if self.rate_limiter is not None:
            self.rate_limiter.observe(resp.status_code, resp.headers, parse_retry_after(resp.headers))
        return resp, retries

    def _no_answer(self, call: Call, causes: list[BaseException], retries: int) -> errors.APIConnectionError:
        what = f"{call.method} {call.path}"
        scope = current_scope()
        why = why_cut(causes, scope, None)
        if why is not None:
            return self._cut_error(why, what, scope)
        if any(isinstance(c, EmptyPoolError) for c in causes):
            _, host, port = origin_of(call.url)
            wait = self.timeout.pool or self.timeout.read
            return errors.APITimeoutError(
                f"no free connection to {host}:{port} within {wait:g}s: all {self.pool_size} pooled "
                f"connections are in use ({what}): close streams when done with them (use `with`) "
                f"or raise pool_size (e.g. pool_size={2 * self.pool_size})", provider=self.provider)
        kind, text = no_answer(causes, call.url, self.timeout)
        advice = ("Raise the timeout or retry later" if kind is errors.APITimeoutError
                  else f"Check the base URL ({shown_url(self.base_url)}) and that the server is up")
        return kind(f"{self._redact(text)}: {what}, {retries} retries. {advice}", provider=self.provider)

    def _follow_redirects(self, call: Call, seen: tuple[float, float, str | None, str | None]) -> Reply:
        """Redirects, up to `_MAX_REDIRECTS`: each hop is authorized afresh, for its own origin."""
        for hop in range(_MAX_REDIRECTS + 1):
            resp = self._attempt(self._authorize(call))
            if resp.status_code not in _REDIRECTS or "location" not in resp.headers:
                return resp
            discard_unread(resp)
            target, refused = self._redirect(resp, call.url, call.data is not None or call.files is not None, hop)
            if refused:
                self._emit(call.method, call.path, resp, seen, None)
                raise errors.APIStatusError(
                    f"{call.method} {call.path}: {refused}",
                    status_code=resp.status_code,
                    provider=self.provider,
                    request_id=request_id_of(resp.headers, self._request_id_headers),
                    headers=resp.headers,
                )
            call = self._follow(resp, target, call)
        raise AssertionError("unreachable: the last hop returns or is refused")  # pragma: no cover

    def _cut_error(self, why: str, what: str, scope: CancelScope | None) -> errors.APIConnectionError:
        return cut_error(why, what, scope, self.provider)

    def _authorize(self, call: Call) -> Call:
        """One hop with the client's credentials, for the configured origin only, never for another
        host a redirect leads to."""
        if self.auth is None or origin_of(call.url) != self._origin:
            return call
        signed = dict(call.headers)
        try:
            url = self.auth.apply(call.method, call.url, signed, call.data if isinstance(call.data, bytes) else None)
        except errors.RigError:
            raise
        except Exception as exc:  # a token fetch that failed: nothing was sent
            raise errors.CredentialsError(
                f"{self.provider}: could not get credentials for {call.method} {shown_url(call.url)}: "
                f"{self._redact(f'{type(exc).__name__}: {exc}')[:300]}", provider=self.provider) from exc
        return call._replace(url=url, headers=signed)

    @property
    def _redacted(self) -> tuple[str, ...]:
        """Every secret to mask: the auth's (a refreshed token among them) and those in the URLs."""
        if self.auth is None:
            return self._url_redacted
        return (*self.auth.secrets(), *self._url_redacted)

    def encode_json(self, body: Any) -> bytes:
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

    def _attempt(self, call: Call) -> Reply:
        """One request (urllib3 retries it within): straight to the pool for a JSON call where it can."""
        method, url, headers, data, files, params = (
            call.method, call.url, call.headers, call.data, call.files, call.params)
        session = self._session
        if self._adapter is None or sending_is_patched():
            # The caller's session (its cookies, auth, hooks and adapters apply), or a test
            # library's mock of requests (responses, requests-mock), which must see every call.
            prepared = session.prepare_request(
                requests.Request(method, url, headers=headers, data=data, files=files, params=params))
            # Unread (stream=True): the body is read by `read_whole`, within its limit.
            return session.send(prepared, stream=True, allow_redirects=False, **self._adapter_kwargs)
        if files is None and params is None and isinstance(data, (bytes, type(None))):
            pool = self._direct_pool(url)
            if pool is not None:
                return self._send_direct(pool, method, url, headers, data)
        # Our own session has no cookies, auth or hooks to merge: prepare and send directly,
        # skipping the per-call merging in Session.request/send (a measurable share of a call).
        prepared = requests.PreparedRequest()
        prepared.prepare(method=method, url=url, headers=headers, data=data, files=files, params=params)
        return self._adapter.send(prepared, stream=call.stream, **self._adapter_kwargs)

    def _direct_pool(self, url: str) -> HTTPConnectionPool | None:
        """The urllib3 pool our adapter would use for `url`, or None where a proxy applies.

        JSON calls skip requests' per-call work (preparing the request, resolving the pool's TLS
        settings, building a `requests.Response` with its cookie jar): about a quarter of the
        client CPU a call costs, which is what many threads sharing one GIL wait for. The pool,
        retries, timeouts and TLS settings are the adapter's own, so both ways behave the same."""
        assert self._adapter is not None
        origin = origin_of(url)
        if origin not in self._direct:
            proxied = requests.utils.select_proxy(url, self._adapter_kwargs["proxies"])
            self._direct[origin] = None if proxied else DirectRoute(self._adapter, url, self._adapter_kwargs)
        route = self._direct[origin]
        return route.pool() if route is not None else None

    def _send_direct(self, pool: HTTPConnectionPool, method: str, url: str, headers: dict[str, str],
                     data: bytes | None) -> Answer:
        assert self._adapter is not None
        raw = pool.urlopen(method, request_target(url), body=data, headers=headers, redirect=False,
                           assert_same_host=False, preload_content=False, decode_content=False,
                           retries=self._adapter.max_retries, timeout=self._urllib3_timeout)
        return Answer(raw)

    def _redirect(self, resp: Reply, url: str, with_body: bool, hop: int) -> tuple[str, str]:
        """Where a redirect from `url` leads, or ("", why it is not followed)."""
        if hop == _MAX_REDIRECTS:
            return "", f"more than {_MAX_REDIRECTS} redirects"
        location = resp.headers["location"]
        try:
            target = requests.compat.urljoin(url, location)
            parts = urlsplit(target)
            usable = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
            origin = origin_of(target)  # a port out of range raises
        except ValueError:
            usable = False
        if not usable:
            shown = self._redact(shown_url(location))[:200]
            return "", f"the server redirected to {shown!r}, which is not an http(s) URL with a valid host and port"
        if with_body and resp.status_code in (307, 308) and origin != origin_of(url):
            return "", (f"refused a {resp.status_code} redirect from {origin_text(origin_of(url))} to another origin, "
                        f"{origin_text(origin)}: it would resend the request body (the prompt) there. "
                        "If the API has moved, set the base URL to where it is now")
        return target, ""

    def _follow(self, resp: Reply, target: str, call: Call) -> Call:
        """The next hop: to `target`, with no query parameters of the first, and as a GET after a
        301/302/303 (as browsers and requests do)."""
        headers = call.headers
        if origin_of(target) != self._origin:
            # A caller's own header in a credential's spelling goes to the configured origin only.
            headers = {k: v for k, v in headers.items() if not is_sensitive(k) and k.lower() not in self._auth_names}
        if resp.status_code in (301, 302, 303) and call.method != "GET":
            headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
            return call._replace(url=target, method="GET", data=None, files=None, params=None, headers=headers)
        return call._replace(url=target, params=None, headers=headers)

    def status_error(
        self, status: int, headers: Mapping[str, str], content: bytes, request_id: str | None
    ) -> errors.APIStatusError:
        """The error for an answer of `status` with these headers and body, mapped as every call's
        is (a provider's own conventions, secrets masked); also for one item of a batch job."""
        content = errors.redact_bytes(content, self._redacted)  # a body may echo the key ("Incorrect API key: sk-…")
        try:
            body: Any = _json.loads(content) if content else None
        except _json.JSONDecodeError:
            body = content.decode("utf-8", "replace")[:2000]
        fallback = body.strip()[:300] if isinstance(body, str) and body.strip() else f"HTTP {status}"
        message, code = describe_error(self.conventions.error_body(body), fallback)
        if self.conventions.error_code is not None:
            code = self.conventions.error_code(headers, body) or code
        decide = self.conventions.error_class
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
            kind=decide(status, code, body) if decide is not None else None,
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
        resp: Reply | None,
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
                    request_id=request_id_of(resp.headers) if resp is not None else None,
                    model=seen[2],
                    capability=seen[3],
                    queued=seen[1],
                    headers=resp.headers if resp is not None else {},
                )
            )


def estimate_tokens(data: bytes, body: Any) -> int:
    """A rate limiter's token estimate for a JSON request: a quarter of its bytes plus the answer
    it may get (`max_tokens` and its other spellings). The model layer reports the real count."""
    tokens = len(data) // 4
    if isinstance(body, dict):
        for key in ("max_tokens", "max_completion_tokens", "max_output_tokens"):
            value = body.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return tokens + value
    return tokens


def _retries_used(resp: Reply) -> int:
    retries = getattr(resp.raw, "retries", None)
    return len(retries.history) if retries is not None else 0


def _max_response_bytes() -> int:
    """`rig_sync.http.MAX_RESPONSE_BYTES` as it is now: a user may change it after import."""
    return int(sys.modules[__package__].MAX_RESPONSE_BYTES)
