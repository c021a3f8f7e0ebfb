"""What went wrong with a request that got no usable answer: the exceptions behind a failure, the
sentence naming the host and port tried, and the provider's message in an error body."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator, Mapping
from typing import Any

import requests
import urllib3

from .. import errors
from ._config import Timeout
from ._urls import origin_of

# What a send or a body read can raise: requests' errors on a caller's session, urllib3's (and the
# socket's) where the transport drives urllib3 itself.
FAILURES = (requests.RequestException, urllib3.exceptions.HTTPError, OSError)


# The common spellings; a provider's `Conventions.request_id_headers` adds its own.
REQUEST_ID_HEADERS = ("x-request-id", "request-id", "x-trace-id", "cf-ray")


def request_id_of(headers: Mapping[str, str], names: tuple[str, ...] = REQUEST_ID_HEADERS) -> str | None:
    """The request id the server gave, under the first of `names` it sent."""
    for name in names:
        value = headers.get(name)
        if value:
            return value
    return None


def describe_error(body: Any, fallback: str) -> tuple[str, str | None]:
    """The provider's message and code from the common error shapes (`{"error": {...}}`,
    `{"error": "..."}`, `{"message": ...}`, `{"detail": ...}`)."""
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


def causes_of(exc: BaseException) -> Iterator[BaseException]:
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


def no_answer(causes: list[BaseException], url: str, timeout: Timeout) -> tuple[type[errors.APIConnectionError], str]:
    """The error class and a sentence naming the host and port tried, for a request that got no answer."""
    _, host, port = origin_of(url)
    where = f"{host}:{port}"
    exceptions = urllib3.exceptions

    def seen(*kinds: type[BaseException]) -> bool:
        return any(isinstance(c, kinds) for c in causes)

    if any(is_timeout(c) for c in causes):
        if seen(exceptions.ConnectTimeoutError, requests.ConnectTimeout):
            return errors.APITimeoutError, f"could not connect to {where} within {timeout.connect:g}s"
        return errors.APITimeoutError, f"{where} did not answer within {timeout.read:g}s"
    if seen(ConnectionRefusedError):
        return errors.APIConnectionError, f"could not connect to {where} (connection refused)"
    if seen(socket.gaierror, exceptions.NameResolutionError):
        return errors.APIConnectionError, f"could not connect to {where} (host name {host!r} not found)"
    if seen(exceptions.SSLError, ssl.SSLError):
        return errors.APIConnectionError, f"TLS with {where} failed ({root_cause(causes[0])})"
    verb = "could not connect to" if seen(exceptions.NewConnectionError) else "lost the connection to"
    return errors.APIConnectionError, f"{verb} {where} ({root_cause(causes[0])})"


def is_timeout(exc: BaseException) -> bool:
    # urllib3's NewConnectionError subclasses ConnectTimeoutError for history's sake: it is a refusal.
    timeouts = (requests.Timeout, urllib3.exceptions.TimeoutError, TimeoutError)
    return isinstance(exc, timeouts) and not isinstance(exc, urllib3.exceptions.NewConnectionError)


def root_cause(exc: BaseException) -> str:
    while exc.__context__ is not None and exc.__context__ is not exc:
        exc = exc.__context__
    reason = getattr(exc, "reason", None)
    text = f"{type(exc).__name__}: {reason or exc}"
    return text[:300]
