"""What the batch-job adapters (`_anthropic_batch`, `_gemini_batch`, …) share: checking the items
of a job before it is created, an item's error as the transport would have raised it, and a
job's results read as JSON lines, streamed, with each custom id taken once.

A results file comes from the provider, so every line is doubted: a line that is not JSON, or
names no custom id, cannot be given to any item. It is logged (with its line number) and left
out — the item it was meant for is then missing, which the caller reports in that item's place —
while a last line cut off mid-way means the download broke: `StreamError`, retryable.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Generator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from .. import _json
from ..errors import APIStatusError, InvalidRequestError, StreamError
from ..sse import LineSplitter

if TYPE_CHECKING:
    from ..client.jobs import JobEntry, JobLimits
    from ..http import StreamResponse

__all__ = ["BATCH_JOBS", "Attribution", "Line", "NOT_JSON", "check_entries", "count_of", "encode", "item_error",
           "job_path", "json_lines", "mapping", "text_of"]

log = logging.getLogger("rig_sync.batch_jobs")

BATCH_JOBS = "batch_jobs"  # the capability every job request is tagged with, for the observe hooks

NOT_JSON: Any = object()  # a line's value when it is not JSON


class Line(NamedTuple):
    """One line of a results file: its number (from 1), its JSON value (or `NOT_JSON`) and its text."""

    number: int
    value: Any
    text: bytes


def check_entries(entries: Sequence[JobEntry], limits: JobLimits, provider: str, *, custom_id: re.Pattern[str],
                  rule: str) -> None:
    """Refuse, before anything is sent, a job the provider would refuse: no items, more than the
    limit allows, or custom ids that are not unique or break the provider's `rule` (`custom_id`)."""
    if not entries:
        raise InvalidRequestError(f"{provider}: a batch job needs at least one request")
    if len(entries) > limits.max_requests:
        raise InvalidRequestError(f"{provider}: a batch job holds at most {limits.max_requests:,} requests, not "
                                  f"{len(entries):,}; rig_sync.batch.submit splits larger inputs into several jobs")
    seen: set[str] = set()
    for entry in entries:
        cid = entry.custom_id
        if not isinstance(cid, str) or not custom_id.fullmatch(cid):
            raise InvalidRequestError(f"{provider}: custom id {cid!r} is not allowed in a batch job: {rule}")
        if cid in seen:
            raise InvalidRequestError(f"{provider}: custom id {cid!r} is used twice in one batch job; each "
                                      "request needs its own, to match its answer")
        seen.add(cid)


def encode(body: Any, limits: JobLimits, provider: str) -> bytes:
    """A job's JSON body as bytes (encoded once: it may be hundreds of MB), refused past the limit."""
    try:
        data = _json.dumps(body)
    except (TypeError, ValueError, RecursionError) as exc:  # UnicodeEncodeError (a lone surrogate) among them
        raise InvalidRequestError(f"{provider}: a batch job's requests cannot be sent as JSON "
                                  f"({type(exc).__name__}: {str(exc)[:200]})") from exc
    if len(data) > limits.max_bytes:
        raise InvalidRequestError(f"{provider}: a batch job's body may be at most {limits.max_bytes:,} bytes, this "
                                  f"one is {len(data):,}; rig_sync.batch.submit splits larger inputs into several jobs")
    return data


_JOB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,255}")


def job_path(job_id: str, provider: str) -> str:
    """`job_id` fit to put in a URL path, or `InvalidRequestError` (a journal or a caller may hand
    in anything: `../files`, a URL, an empty string)."""
    if not isinstance(job_id, str) or not _JOB_ID.fullmatch(job_id):
        raise InvalidRequestError(f"{provider}: {job_id!r} is not a batch job id (letters, digits, '_', '-' and '.')")
    return job_id


def item_error(client: Any, status: int, body: Any, request_id: str | None = None) -> APIStatusError:
    """The `APIStatusError` subclass the transport would have raised for this item had it been sent
    on its own with this status and error body: the provider's conventions pick the class and read
    the message and code, and secrets are masked the same way."""
    error: APIStatusError = client.transport.status_error(status, {}, _json.dumps(body), request_id)
    return error


def json_lines(http: StreamResponse, provider: str, *, max_line: int | None = None) -> Generator[Line, None, None]:
    """Every line of a streamed JSON-lines answer (blank ones skipped), decoded one at a time; the
    connection closes when the lines end or the reader stops. A last line without a line end that
    is not JSON was cut off: `StreamError` (retryable). A line longer than `max_line` (default
    `rig_sync.sse.MAX_EVENT_BYTES`) is `StreamError` too: it cannot be resynchronised."""
    splitter = LineSplitter(max_line)
    number = 0
    with http:
        try:
            for chunk in http.chunks():
                for text in splitter.feed(chunk):
                    number += 1
                    if text.strip():
                        yield Line(number, _decode(text), text)
        except StreamError as err:
            err.provider = err.provider or provider
            raise
        tail = splitter.tail()
        if tail.strip():
            value = _decode(tail)
            if value is NOT_JSON:
                raise StreamError(f"{provider}: the batch results end in a line cut off mid-way (line {number + 1}: "
                                  f"{tail[:120]!r}); download them again", provider=provider, retryable=True)
            yield Line(number + 1, value, tail)


def _decode(text: bytes) -> Any:
    try:
        return _json.loads(text)
    except _json.JSONDecodeError:
        return NOT_JSON


class Attribution:
    """Which custom ids a job's results gave an outcome: each is taken once (a later line for the
    same id is logged and ignored, as is a line no item can be found for); `summary()` logs what
    was left out."""

    def __init__(self, provider: str, job_id: str) -> None:
        self.provider, self.job_id = provider, job_id
        self.seen: set[str] = set()
        self.ignored = 0

    def take(self, custom_id: object, where: str) -> bool:
        """Whether `custom_id` (read at `where`) gets this outcome: a fresh, non-empty string."""
        if not isinstance(custom_id, str) or not custom_id:
            return self.ignore(where, f"no custom id ({custom_id!r})")
        if custom_id in self.seen:
            return self.ignore(where, f"custom id {custom_id!r} again (its first outcome is kept)")
        self.seen.add(custom_id)
        return True

    def ignore(self, where: str, why: str) -> bool:
        self.ignored += 1
        log.warning("%s batch %s: %s: %s; ignored", self.provider, self.job_id, where, why)
        return False

    def summary(self) -> None:
        if self.ignored:
            log.warning("%s batch %s: %d result(s) could not be given to an item and were ignored; the items "
                        "they were for are reported missing", self.provider, self.job_id, self.ignored)


def text_of(value: object) -> str | None:
    """A non-empty string, or None."""
    return value if isinstance(value, str) and value else None


def count_of(value: object) -> int | None:
    """A count the provider gives as a number or (Google's int64) a string of digits; None otherwise."""
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def mapping(value: object) -> Mapping[str, Any]:
    """`value` if it is a JSON object, else an empty one."""
    return value if isinstance(value, Mapping) else {}
