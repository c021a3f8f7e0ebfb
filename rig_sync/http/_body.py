"""Reading answers: whole (bounded, within a deadline) or streamed, with secrets masked."""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from typing import Any, Protocol

import attrs

from .. import _json, errors
from ._cancel import CancelScope, Cut, cut_error, fit_to_deadline, why_cut
from ._failures import FAILURES, causes_of, is_timeout

# Most bytes `StreamResponse.finish` reads after the last event to keep a connection.
DRAIN_LIMIT = 64 * 1024


READ_SIZE = 65536


BODY_PIECE = 2**20  # decoded bytes per read of a body read whole: the most it can overshoot its limit


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


class Reply(Protocol):
    """What the transport reads of an answer: a `requests.Response` (a caller's session) or an `Answer`."""

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def raw(self) -> Any: ...

    def close(self) -> None: ...


class Answer:
    """A urllib3 answer read the way `requests.Response` reads one, without its per-answer setup."""

    __slots__ = ("_content", "headers", "raw", "status_code")

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.status_code: int = raw.status
        self.headers: Mapping[str, str] = raw.headers  # case-insensitive, like requests' headers
        self._content: bytes | None = None  # the body, once `read_whole` read it

    def close(self) -> None:
        if self._content is None:  # unread: the connection cannot be reused
            self.raw.close()
        self.raw.release_conn()


class StreamResponse:
    """A streamed HTTP answer. Iterate `chunks()`; always `close()` (or use `with`)."""

    def __init__(self, raw: Reply, provider: str, request_id: str | None,
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
        instead of being closed. Past `DRAIN_LIMIT` bytes, or on any error, it is simply closed."""
        self._finished = True
        try:
            left = DRAIN_LIMIT
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
                pieces = iter(functools.partial(raw.read1, READ_SIZE, decode_content=True), b"")
            while True:
                # Cut off (a cancel, the client's close) or out of time: stop, even with bytes in hand.
                why = getattr(getattr(raw, "connection", None), "_rig_cut", None)
                if why is not None:
                    raise Cut(why)
                if scope is not None:
                    fit_to_deadline(raw, scope)
                data = next(pieces, None)
                if data is None:
                    return
                self._chunks_read += 1
                yield data
        except (*FAILURES, Cut) as exc:
            causes = list(causes_of(exc))
            why = why_cut(causes, self._scope, getattr(raw, "_pool", None))
            if why is not None:
                raise cut_error(why, "stream", self._scope, self.provider) from None
            if any(is_timeout(c) for c in causes):
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


class TooLarge(Exception):
    """A body past its limit: `size` bytes came, or were announced (`announced`)."""

    def __init__(self, size: int, announced: bool) -> None:
        super().__init__(size)
        self.size, self.announced = size, announced


# Most decoded bytes of a 500's body `read_ahead` reads to judge it: the deterministic errors it looks
# for are a line of JSON. A larger body is retried unjudged, as every 500 was.
JUDGED_BYTES = 64 * 1024


def read_ahead(response: Any, scope: CancelScope | None) -> bytes | None:
    """The body (decoded) of an answer urllib3 would retry, for `errors.answer_is_retryable` to judge;
    None if it is larger than `JUDGED_BYTES` (announced or found) or broke off: then it is retried.

    What is read is kept on the answer (`_rig_ahead`), as it cannot be put back: if the answer is
    handed back after all, `read_whole` begins with it (and reads on, if there is more); if it is
    retried, urllib3 drains the rest of the body, as for any answer it retries."""
    length = response.headers.get("content-length", "")
    if length.isdigit() and int(length) > JUDGED_BYTES:
        return None  # not read at all
    scope = scope if scope is not None and scope.deadline is not None else None
    parts: list[bytes] = []
    size = 0
    try:
        while size <= JUDGED_BYTES:
            if scope is None:
                data = response.read(JUDGED_BYTES + 1 - size, decode_content=True)
            else:  # one socket read at a time, each within the time left (as `read_whole`)
                fit_to_deadline(response, scope)
                data = response.read1(JUDGED_BYTES + 1 - size, decode_content=True)
            if not data:
                break
            parts.append(data)
            size += len(data)
    except (*FAILURES, Cut):
        size = JUDGED_BYTES + 1  # unjudged: retried, unless a cancel or the deadline stops it first
    body = response._rig_ahead = b"".join(parts)
    return body if size <= JUDGED_BYTES else None


def read_whole(resp: Reply, limit: int, scope: CancelScope | None) -> bytes:
    """The whole body, decoded, or `TooLarge` as soon as it passes `limit` bytes.

    A body of announced length and no encoding is read in one go (http.client reads no more than
    the length). Any other is read in pieces that urllib3 inflates only as far as asked, so a
    compressed bomb stops at `limit`. Within a deadline, each read is one socket read waiting at
    most the time left (a server trickling bytes never lets a single read time out)."""
    done = getattr(resp, "_content", None)
    if isinstance(done, bytes):  # read already (a test library's mock of requests may preload it)
        if len(done) > limit:
            raise TooLarge(len(done), False)
        return done
    raw, headers = resp.raw, resp.headers
    ahead = b""
    if resp.status_code == 500:  # its start may have been read to decide on a retry: see `read_ahead`
        ahead = getattr(raw, "_rig_ahead", b"")
    length = headers.get("content-length", "")
    if length.isdigit():
        if int(length) > limit:
            raise TooLarge(int(length), True)
        if scope is None and "content-encoding" not in headers and not ahead:
            body: bytes = raw.read(decode_content=True)
            if isinstance(resp, Answer):
                resp._content = body
            return body
    parts: list[bytes] = [ahead] if ahead else []
    size = len(ahead)
    if size > limit:
        raise TooLarge(size, False)
    while True:
        if scope is None:
            data = raw.read(BODY_PIECE, decode_content=True)
        else:
            fit_to_deadline(raw, scope)
            data = raw.read1(READ_SIZE, decode_content=True)
        if not data:
            break
        size += len(data)
        if size > limit:
            raise TooLarge(size, False)
        parts.append(data)
    body = parts[0] if len(parts) == 1 else b"".join(parts)
    if isinstance(resp, Answer):
        resp._content = body
    return body


def discard_unread(resp: Reply) -> None:
    """Close an answer we do not read (a redirect), reading its body first if it is small, as
    requests does, so that its connection goes back to the pool instead of being closed."""
    try:
        if int(resp.headers.get("content-length") or DRAIN_LIMIT + 1) <= DRAIN_LIMIT:
            read_whole(resp, DRAIN_LIMIT, None)  # a compressed one too: it stops at the limit
    except (ValueError, TooLarge, *FAILURES):
        pass  # no length, a bad one, or a broken body: closing is all that is left
    resp.close()
