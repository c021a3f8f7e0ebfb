"""The error tree. `RigError` is the root of every error the library raises.

Status errors are chosen from the HTTP status (as openai-python does) and carry everything a
caller needs to act on a failure: provider, status, request id, headers, parsed body and the
provider's own message. No message, repr or traceback line ever contains an API key: messages
are built from server bodies and our own text only, and `redact` scrubs known secrets from
anything that might echo them back.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, ParamSpec, TypeVar

from . import _json

_P = ParamSpec("_P")
_R = TypeVar("_R")

__all__ = [
    "RigError",
    "ClientBuildError",
    "UnknownProvider",
    "UnsupportedFeature",
    "FactoryError",
    "InvalidIdString",
    "MissingAPIKeyError",
    "OptionTypeError",
    "InvalidBaseURLError",
    "InvalidRequestError",
    "InvalidMessageError",
    "APIError",
    "APIConnectionError",
    "APITimeoutError",
    "RequestCancelledError",
    "APIStatusError",
    "BadRequestError",
    "ContextWindowExceededError",
    "AuthenticationError",
    "PermissionDeniedError",
    "NotFoundError",
    "ConflictError",
    "UnprocessableEntityError",
    "RequestTimeoutStatusError",
    "RateLimitError",
    "InternalServerError",
    "OverloadedError",
    "ResponseDecodeError",
    "ResponseTooLargeError",
    "StreamError",
    "NoAnswerError",
    "ContentBlockedError",
    "status_error",
]


class RigError(Exception):
    """Root of every error rig_sync raises."""

    def is_retryable(self) -> bool:
        """Whether trying the same request again may succeed."""
        return False

    @property
    def retry_after(self) -> float | None:
        """Seconds the server asked us to wait before retrying, or None."""
        return None


# --- build time -------------------------------------------------------------------------------


class ClientBuildError(RigError):
    """A client or model could not be built from the given settings."""


class UnknownProvider(ClientBuildError):
    """No provider is registered under this name."""


class UnsupportedFeature(ClientBuildError):
    """The provider (or model) lacks the capability or feature asked for."""


class FactoryError(ClientBuildError):
    """A registered client factory failed to build its client."""


class InvalidIdString(ClientBuildError):
    """A `provider:model` id string is malformed."""


class OptionTypeError(ClientBuildError, TypeError):
    """A client option of the wrong type (a number where a string belongs): a `TypeError` too."""


class MissingAPIKeyError(ClientBuildError):
    """No API key was given and none was found in the environment."""


class InvalidBaseURLError(ClientBuildError):
    """A base URL is malformed (no scheme/host, or credentials inside it)."""


class InvalidRequestError(RigError, ValueError):
    """A request was refused before sending: empty prompt, empty audio, negative size, …"""


class InvalidTypeError(InvalidRequestError, TypeError):
    """An argument of the wrong type (a number where a string belongs, …): a `TypeError` too."""


class InvalidMessageError(InvalidRequestError, TypeError):
    """A chat message (a `Message` or an OpenAI-style dict) does not have a shape rig_sync
    understands. Also a `TypeError`, as a value of the wrong type was one before."""


# --- run time -----------------------------------------------------------------------------------


class APIError(RigError):
    """A request to a provider failed."""

    def __init__(self, message: str, *, provider: str | None = None) -> None:
        message = printable(message)  # a server's text: it must print and log, whatever it holds
        super().__init__(message)
        self.message = message
        self.provider = provider

    def __str__(self) -> str:
        return f"[{self.provider}] {self.message}" if self.provider else self.message

    def __reduce__(self) -> tuple[Any, ...]:
        # The default rebuilds with `cls(*args)`, which keyword-only fields break: errors must
        # cross process pools (rig_sync.batch, Dask) intact.
        return _restore, (type(self), self.args, self.__dict__)


def _restore(cls: type[APIError], args: tuple[Any, ...], state: dict[str, Any]) -> APIError:
    err = cls.__new__(cls, *args)
    err.args = args
    err.__dict__.update(state)
    return err


class _Headers(Mapping[str, str]):
    """Response headers kept on an error: read-only, case-insensitive, picklable plain data."""

    def __init__(self, headers: Mapping[str, str] | None = None) -> None:
        self._items = {str(k).lower(): (str(k), str(v)) for k, v in (headers or {}).items()}

    def __getitem__(self, key: str) -> str:
        if not isinstance(key, str):
            raise KeyError(key)
        return self._items[key.lower()][1]

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return repr(dict(self.items()))


class CredentialsError(APIError):
    """The credentials for a request could not be had (a token fetch failed); nothing was sent."""


class APIConnectionError(APIError):
    """The request never got a complete HTTP answer: refused, reset, DNS, TLS, dropped mid-body."""

    def is_retryable(self) -> bool:
        return True


class APITimeoutError(APIConnectionError):
    """Connecting or reading timed out."""


class RequestCancelledError(APIConnectionError):
    """The request was cut off on purpose (`rig_sync.http.CancelScope.cancel()`)."""

    def is_retryable(self) -> bool:
        return False


class StreamError(APIError):
    """A stream failed midway: cut off, or the provider sent an error event."""

    def __init__(
        self, message: str, *, provider: str | None = None, body: Any = None, retryable: bool = False
    ) -> None:
        super().__init__(message, provider=provider)
        self.body = body
        self._retryable = retryable

    def is_retryable(self) -> bool:
        return self._retryable


class NoAnswerError(APIError):
    """The provider answered, but without a usable answer: it gave up, refused, or a filter withheld
    it. Every provider's such error is one of these (or a `ContentBlockedError`).

    `reason` is the provider's own reason (its finish, stop, done or block reason), `text` whatever
    text it wrote before it stopped, `safety` its filters' results as `SafetyResult`s where it reports
    them (as `CompletionResponse.safety` holds them), `body` the raw response. Retryable only where
    the reason says asking again may help (a generation that failed or timed out)."""

    reason: str | None = None
    text: str = ""
    safety: tuple[Any, ...] = ()
    body: Any = None
    retryable: bool = False

    def __init__(self, message: str, *, provider: str | None = None, reason: str | None = None, text: str = "",
                 safety: Iterable[Any] = (), body: Any = None, retryable: bool = False) -> None:
        APIError.__init__(self, message, provider=provider)  # not super(): a subclass may also be a status error
        self.reason = reason
        self.text = text
        self.safety = tuple(safety)
        self.body = body
        self.retryable = retryable

    def is_retryable(self) -> bool:
        return self.retryable


class ContentBlockedError(NoAnswerError):
    """A safety, policy or content filter blocked the prompt or withheld the answer (or the model
    refused): asking the same again gets the same."""


class APIStatusError(APIError):
    """The provider answered with an error status."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        provider: str | None = None,
        request_id: str | None = None,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
        retry_after: float | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message, provider=provider)
        self.status_code = status_code
        self.request_id = printable(request_id) if request_id else request_id  # may come from the body
        self.headers: Mapping[str, str] = _Headers(headers)
        self.body = body
        self.code = code  # the provider's error code or type, e.g. "rate_limit_exceeded"
        self._retry_after = retry_after

    def __str__(self) -> str:
        rid = f", request id {self.request_id}" if self.request_id else ""
        where = f"{self.provider} " if self.provider else ""
        return f"{where}HTTP {self.status_code}{rid}: {self.message}"

    def is_retryable(self) -> bool:
        return answer_is_retryable(self.status_code, self.headers, self.body)

    @property
    def retry_after(self) -> float | None:
        return self._retry_after


class BadRequestError(APIStatusError):
    """400: the provider rejected the request as malformed or invalid."""


class ContextWindowExceededError(BadRequestError):
    """400: the prompt does not fit the model's context window."""


class AuthenticationError(APIStatusError):
    """401: the API key is missing, wrong or revoked."""


class PermissionDeniedError(APIStatusError):
    """403: the key may not use this model or endpoint."""


class NotFoundError(APIStatusError):
    """404: no such model, deployment or endpoint."""


class ConflictError(APIStatusError):
    """409: a conflicting request is in progress."""


class UnprocessableEntityError(APIStatusError):
    """422: the request parsed but its values are invalid."""


class RequestTimeoutStatusError(APIStatusError):
    """408: the server timed out waiting for the request."""


class RateLimitError(APIStatusError):
    """429: too many requests or tokens; see `retry_after`."""


class InternalServerError(APIStatusError):
    """5xx: the provider failed."""


class OverloadedError(InternalServerError):
    """529 (or an overloaded error body): the provider is overloaded."""


# The retry rules, in one place (the transport's retries and `is_retryable()` both read them):
# the provider's `x-should-retry` header decides; else a timeout (408), a conflict (409), a rate
# limit (429) and a server failure (5xx) are worth another try, except those that are deterministic:
# 501 Not Implemented and 505 HTTP Version Not Supported answer the same every time.
_RETRYABLE_STATUS = frozenset({408, 409, 429})
_DETERMINISTIC_5XX = frozenset({501, 505})


def status_is_retryable(status: int, headers: Mapping[str, str]) -> bool:
    """Whether an answer with this status and these headers is worth sending again."""
    should = headers.get("x-should-retry")
    if should in ("true", "false"):
        return should == "true"
    return status in _RETRYABLE_STATUS or (status >= 500 and status not in _DETERMINISTIC_5XX)


# Deterministic 500s: some servers answer a request they can never serve with a 500 instead of a 4xx
# or 501. Early-2025 llama.cpp `llama-server` builds answer a streamed request with tools with
# `500 {"error": {"code": 500, "message": "Cannot use tools with stream", "type": "server_error"}}`,
# and one without a message's content with `500 ... "Expected 'content'"`: sent again, it fails
# again. Only the error's own type and message are matched (never the rest of the body), and
# conservatively: any other 500 ("Internal server error", a crash, an overload) is still retried.
_DETERMINISTIC_500_TYPES = frozenset({
    "not_supported_error",  # llama.cpp's type for a feature the server or model lacks
    "invalid_request_error",  # the server blames the request, whatever status it chose
})
_DETERMINISTIC_500_MESSAGES = (  # lower case, found anywhere in the message
    "not supported",  # "image input is not supported", "… is not supported by this model"
    "cannot use tools with stream",  # llama.cpp: a streamed request with tools
    "tools param requires --jinja",  # llama.cpp: a request with tools to a server without --jinja
    "unsupported param",  # llama.cpp: "Unsupported param: tool_choice"
    "expected 'content'",  # llama.cpp's check of the messages ("Failed to parse messages: Expected …")
    "is too large to process",  # llama.cpp: an embedding input longer than the server's batch
    "context shift is disabled",  # llama.cpp (before May 2025): generating past the context
)
# A failure to parse what the model wrote is not the request's: a new sample may parse. Its message
# quotes the model's output, which may say anything, so it is retried whatever else it holds.
_MODEL_OUTPUT_FAILURES = (
    "failed to parse input at pos",  # llama.cpp: the model's answer did not fit the chat format
    "failed to parse tool call",  # llama.cpp: "Failed to parse tool call arguments as JSON"
)


def body_can_decide(status: int, headers: Mapping[str, str]) -> bool:
    """Whether the body of an answer its status and headers leave retryable may still make
    `answer_is_retryable` say no: a 500 without `x-should-retry`. Only then is it worth reading."""
    return status == 500 and headers.get("x-should-retry") not in ("true", "false")


def answer_is_retryable(status: int, headers: Mapping[str, str], body: Any = None) -> bool:
    """Whether an answer is worth sending again: `status_is_retryable`, except a 500 whose error says
    the request itself can never be served (see `_DETERMINISTIC_500_MESSAGES`). `body` is the answer's
    body, bytes (bounded by the caller), text or decoded JSON; None if unread: then the status decides."""
    if not status_is_retryable(status, headers):
        return False
    if body is None or not body_can_decide(status, headers):
        return True
    kind, message = _error_type_and_message(body)
    if any(marker in message for marker in _MODEL_OUTPUT_FAILURES):
        return True
    return not (kind in _DETERMINISTIC_500_TYPES or any(marker in message for marker in _DETERMINISTIC_500_MESSAGES))


def _error_type_and_message(body: Any) -> tuple[str, str]:
    """The error type (or string code) and message of an error body, lower case; a body that is
    not JSON is all message."""
    if isinstance(body, bytes):
        try:
            body = _json.loads(body)
        except _json.JSONDecodeError:  # not JSON (or not UTF-8): its text is the message
            body = body.decode("utf-8", "replace")
    if isinstance(body, list) and body:
        body = body[0]  # Gemini streams wrap errors in a list
    if isinstance(body, str):
        return "", body.lower()
    if not isinstance(body, dict):
        return "", ""
    err = body.get("error", body)
    if isinstance(err, str):
        return "", err.lower()
    if not isinstance(err, dict):
        return "", ""
    kind = err.get("type") if isinstance(err.get("type"), str) else err.get("code")
    message = err.get("message")
    return (kind.lower() if isinstance(kind, str) else "",
            message.lower() if isinstance(message, str) else "")


_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    408: RequestTimeoutStatusError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitError,
    529: OverloadedError,
}

# Phrases providers use for "prompt too long" in a 400 (OpenAI, Anthropic, Gemini, Mistral …).
_CONTEXT_MARKERS = (
    "context_length_exceeded",
    "maximum context length",
    "context window",
    "prompt is too long",
    "input is too long",
    "too many tokens",
    "exceed_context_size",  # llama.cpp's error type
    "exceeds the available context size",  # llama.cpp
    "exceeds the maximum number of tokens",  # Gemini
)


def overflows_context(text: str) -> bool:
    """Whether an error's code or message says the prompt is longer than the model's context."""
    haystack = text.lower()
    return any(marker in haystack for marker in _CONTEXT_MARKERS)


def status_error(
    status_code: int,
    message: str,
    *,
    provider: str | None,
    request_id: str | None = None,
    headers: Mapping[str, str] | None = None,
    body: Any = None,
    retry_after: float | None = None,
    code: str | None = None,
    kind: type[APIStatusError] | None = None,
) -> APIStatusError:
    """The `APIStatusError` subclass for an HTTP status (and, for 400, the provider's code), or
    `kind` where the provider's conventions know better than the status."""
    cls = kind or _BY_STATUS.get(status_code)
    if cls is None:
        cls = InternalServerError if status_code >= 500 else APIStatusError
    if cls is BadRequestError:
        if overflows_context(f"{code or ''} {message}"):
            cls = ContextWindowExceededError
    if kind is None and status_code != 529 and code in ("overloaded_error", "overloaded"):
        cls = OverloadedError
    return cls(
        message,
        status_code=status_code,
        provider=provider,
        request_id=request_id,
        headers=headers,
        body=body,
        retry_after=retry_after,
        code=code,
    )


class ResponseDecodeError(APIError):
    """A response body could not be decoded into the expected shape."""

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        field: str | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(message, provider=provider)
        self.field = field
        self.body = body


class ResponseTooLargeError(ResponseDecodeError):
    """An answer grew past the transport's limit on a body read whole (decoded: a small compressed
    body may inflate a thousandfold), so it was not read further. `limit` is that limit in bytes."""

    def __init__(self, message: str, *, provider: str | None = None, limit: int = 0) -> None:
        super().__init__(message, provider=provider)
        self.limit = limit


def printable(text: str) -> str:
    """`text` with what UTF-8 cannot encode (lone surrogates, from a server's escaped JSON) escaped
    as `\\udXXX`, so that printing, logging or writing it never raises `UnicodeEncodeError`."""
    if text.isascii():
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret (of 4+ characters) replaced by a mask."""
    for secret in secrets:
        if secret and len(secret) >= 4 and secret in text:
            text = text.replace(secret, "***")
    return text


def redact_value(value: Any, secrets: Iterable[str]) -> Any:
    """`value` (a decoded body: str, or dicts and lists of them) with every secret masked in its
    strings, keys included; containers are changed in place. A key that the server sent escaped
    (`\\u0073k-…`, `\\/`) is masked here, where the raw bytes could not show it. Iterative: a
    decoded body may nest deeper than the recursion limit allows."""
    masks = [s for s in secrets if s and len(s) >= 4]
    if not masks:
        return value
    if isinstance(value, str):
        return redact(value, masks)
    stack: list[Any] = [value]
    seen: set[int] = set()
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, dict):
            for key, child in list(item.items()):
                clean = redact(key, masks) if isinstance(key, str) else key
                if clean != key:
                    del item[key]
                if isinstance(child, str):
                    item[clean] = redact(child, masks)
                else:
                    item[clean] = child
                    stack.append(child)
        elif isinstance(item, list):
            for i, child in enumerate(item):
                if isinstance(child, str):
                    item[i] = redact(child, masks)
                else:
                    stack.append(child)
    return value


def scrub(err: BaseException, secrets: Iterable[str]) -> None:
    """Mask `secrets` in all that `err` and the exceptions behind it show, log or pickle: their
    arguments and attributes (message, body, …). For errors built from decoded server text."""
    masks = [s for s in secrets if s and len(s) >= 4]
    seen: set[int] = set()
    exc: BaseException | None = err
    while masks and exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        exc.args = tuple(redact_value(arg, masks) for arg in exc.args)
        for name, value in list(vars(exc).items()):
            if isinstance(value, (str, dict, list)):
                setattr(exc, name, redact_value(value, masks))
        exc = exc.__cause__ or exc.__context__


def drops_hidden_context(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """`fn`, whose `raise … from None` errors also lose the exception they hide.

    `from None` only hides the original exception: it stays on `__context__`, and pickling helpers
    that keep exception chains (tblib, which Dask installs) would ship it, with the body or message
    it holds (possibly an echoed key), to another process. A bare `raise` keeps it dropped.
    """

    @functools.wraps(fn)
    def call(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return fn(*args, **kwargs)
        except RigError as err:
            _drop_hidden_context(err)
            raise

    return call


def _drop_hidden_context(err: BaseException) -> None:
    if err.__suppress_context__:
        err.__context__ = None


def _masks(secrets: Iterable[str]) -> list[bytes]:
    return [s.encode() for s in secrets if s and len(s) >= 4]


def _mask_all(content: bytes, masks: list[bytes]) -> bytes:
    for mask in masks:
        if mask in content:
            content = content.replace(mask, b"***")
    return content


def redact_bytes(content: bytes, secrets: Iterable[str]) -> bytes:
    """`content` (a body that may echo the key back) with every secret masked."""
    return _mask_all(content, _masks(secrets))


def redact_stream(chunks: Iterator[bytes], secrets: Iterable[str]) -> Iterator[bytes]:
    """`chunks` with every secret masked, also one split across chunks: a chunk's end that may
    begin a secret (rare: event streams end chunks with a newline) waits for the next chunk."""
    masks = _masks(secrets)
    in_masks = frozenset(b for mask in masks for b in mask)
    held = b""
    try:
        for data in chunks:
            if held:
                data, held = held + data, b""
            for mask in masks:
                if mask in data:
                    data = data.replace(mask, b"***")
            if data and data[-1] in in_masks:  # a chunk ending in "\n" (nearly all) cannot end inside a key
                keep = max((k for mask in masks for k in range(min(len(mask) - 1, len(data)), 0, -1)
                            if data.endswith(mask[:k])), default=0)
                if keep:
                    held, data = data[len(data) - keep:], data[:len(data) - keep]
            if data:
                yield data
        if held:
            yield held
    except RigError as err:  # the reader's errors, from None: see drops_hidden_context
        _drop_hidden_context(err)
        raise
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:  # a reader that stops early closes the source (and its connection) too
            close()
