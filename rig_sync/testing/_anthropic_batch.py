"""Anthropic's Message Batches for the fake provider (``/v1/messages/batches``), on the shared job
state machine of ``_jobs.py``.

``POST /v1/messages/batches`` (``{"requests": [{"custom_id", "params"}]}``, checked as Anthropic
checks it: custom ids of 1-64 letters, digits, ``_`` or ``-``, each once, at most 100,000
requests, params that are a non-streaming ``/v1/messages`` body), ``GET /v1/messages/batches``
(``limit``, ``after_id``, ``before_id``, newest first), ``GET /v1/messages/batches/{id}`` (each
read is a poll: it advances the job), ``POST …/{id}/cancel``, and once a batch has ended its
``results_url``, ``GET …/{id}/results``: JSON lines sent one chunk per line, in the reverse of
the request order (Anthropic promises no order). Each item is answered by the fake's own
``/v1/messages`` route; a job the fake was told to fail (``fail_next_job``) ends with every
request ``errored``, as Anthropic has no failed batches.
"""

from __future__ import annotations

import datetime
import re
from typing import Any

from ._anthropic import ANTHROPIC_DIALECT
from ._dialect import ApiError, JSONDict, dumps
from ._jobs import ItemResult, Job, JobBoard, JobItem, board_of
from ._routes import Call, Response, route

__all__ = ["MAX_REQUESTS"]

PROVIDER = "anthropic"
MAX_REQUESTS = 100_000
_CUSTOM_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_BATCHES = r"/v1/messages/batches"
_ONE = _BATCHES + r"/(?P<batch_id>[^/]+)"
_STATUS = {"pending": "in_progress", "running": "in_progress", "finalizing": "in_progress",
           "cancelling": "canceling"}  # the rest have ended
_DAY = 24 * 3600


def _time(unix: int | None) -> str | None:
    if unix is None:
        return None
    return datetime.datetime.fromtimestamp(unix, datetime.timezone.utc).isoformat().replace("+00:00", "Z")


def _version(call: Call) -> None:
    if "anthropic-version" not in call.request.headers:
        raise ApiError(400, "anthropic-version: header is required")


def _results(job: Job) -> list[ItemResult]:
    """The items' results; a refused job (``fail_next_job``) has every item errored with its message."""
    if job.phase != "failed":
        return job.results()
    _, message = job.refusal or ("", "The batch could not be processed.")
    body = ANTHROPIC_DIALECT.error_body(400, message, "invalid_request_error", None, None)
    return [ItemResult(item.custom_id, "errored", 400, body) for item in job.items]


def _batch(call: Call, board: JobBoard, job: Job) -> JSONDict:
    """The ``message_batch`` object as Anthropic shows it."""
    with board.lock:
        ended = job.ended
        results = _results(job) if ended else list(job.answered.values())
        times = dict(job.times)
        phase = job.phase
    counts = {"processing": 0 if ended else job.total - len(results), "succeeded": 0, "errored": 0, "canceled": 0,
              "expired": 0}
    for r in results:
        counts[{"cancelled": "canceled"}.get(r.outcome, r.outcome)] += 1
    created = times["created"]
    ended_at = next((times[p] for p in ("completed", "cancelled", "expired", "failed") if p in times), None)
    return {
        "id": job.id,
        "type": "message_batch",
        "processing_status": "ended" if ended else _STATUS[phase],
        "request_counts": counts,
        "ended_at": _time(ended_at) if ended else None,
        "created_at": _time(created),
        "expires_at": _time(created + _DAY),
        "archived_at": None,
        "cancel_initiated_at": _time(times.get("cancelling")),
        "results_url": f"{call.provider.url}/v1/messages/batches/{job.id}/results" if ended else None,
    }


def _items(body: JSONDict) -> list[JobItem]:
    requests = body.get("requests")
    if not isinstance(requests, list) or not requests:
        raise ApiError(400, "requests: Field required" if requests is None else "requests: List should have at "
                       "least 1 item after validation")
    if len(requests) > MAX_REQUESTS:
        raise ApiError(400, f"requests: List should have at most {MAX_REQUESTS} items after validation, not "
                       f"{len(requests)}")
    items: list[JobItem] = []
    seen: set[str] = set()
    for i, request in enumerate(requests):
        if not isinstance(request, dict):
            raise ApiError(400, f"requests.{i}: Input should be a valid dictionary")
        cid, params = request.get("custom_id"), request.get("params")
        if not isinstance(cid, str) or not _CUSTOM_ID.fullmatch(cid):
            raise ApiError(400, f"requests.{i}.custom_id: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'")
        if cid in seen:
            raise ApiError(400, f"requests: Duplicate custom_id found: '{cid}'. Each request in a batch must have "
                           "a unique custom_id.")
        seen.add(cid)
        if not isinstance(params, dict):
            raise ApiError(400, f"requests.{i}.params: Field required")
        if params.get("stream"):
            raise ApiError(400, f"requests.{i}.params.stream: Streaming is not supported in batches")
        items.append(JobItem(cid, "/v1/messages", params))
    return items


@route("POST", _BATCHES, dialect=ANTHROPIC_DIALECT)
def create_batch(call: Call) -> Response:
    """``POST /v1/messages/batches``."""
    _version(call)
    board = board_of(call.provider)
    job = board.create(call.provider, PROVIDER, _items(call.body_object()), id_prefix="msgbatch_",
                       headers=call.request.headers)
    return Response.json(_batch(call, board, job))


def _job(call: Call) -> Job:
    _version(call)
    job = board_of(call.provider).get(PROVIDER, call.match["batch_id"])
    if job is None:
        raise ApiError(404, f"message_batch_id: Message Batch {call.match['batch_id']} not found")
    return job


@route("GET", _ONE, dialect=ANTHROPIC_DIALECT)
def get_batch(call: Call) -> Response:
    """A status read: the job advances one poll (see ``_jobs``)."""
    board = board_of(call.provider)
    return Response.json(_batch(call, board, board.poll(call.provider, _job(call))))


@route("POST", _ONE + "/cancel", dialect=ANTHROPIC_DIALECT, expects_json=False)
def cancel_batch(call: Call) -> Response:
    """Cancel: ``canceling`` until the next poll; an ended batch is answered as it is."""
    board, job = board_of(call.provider), _job(call)
    board.cancel(job)
    return Response.json(_batch(call, board, job))


def _line(r: ItemResult) -> bytes:
    result: dict[str, Any]
    if r.outcome == "succeeded":
        result = {"type": "succeeded", "message": r.body}
    elif r.outcome == "errored":
        result = {"type": "errored", "error": r.body}
    else:
        result = {"type": "canceled" if r.outcome == "cancelled" else "expired"}
    return dumps({"custom_id": r.custom_id, "result": result}) + b"\n"


@route("GET", _ONE + "/results", dialect=ANTHROPIC_DIALECT)
def batch_results(call: Call) -> Response:
    """An ended batch's results, one JSON line per request, streamed one chunk per line."""
    board, job = board_of(call.provider), _job(call)
    with board.lock:
        if not job.ended:
            raise ApiError(400, f"Message Batch {job.id} has not ended: its results are not available yet")
        results = _results(job)
    return Response(content_type="application/binary", events=[_line(r) for r in reversed(results)])


@route("GET", _BATCHES, dialect=ANTHROPIC_DIALECT)
def list_batches(call: Call) -> Response:
    """Batches newest first: ``limit`` (1-1000, default 20), after ``after_id`` or before ``before_id``."""
    _version(call)
    query = call.request.query
    try:
        limit = int(query.get("limit", "20"))
    except ValueError:
        limit = 0
    if not 1 <= limit <= 1000:
        raise ApiError(400, "limit: Input should be greater than or equal to 1 and less than or equal to 1000")
    board = board_of(call.provider)
    jobs = board.list(PROVIDER)
    ids = [j.id for j in jobs]
    after, before = query.get("after_id"), query.get("before_id")
    if before:  # the page just newer than `before`
        newer = jobs[:ids.index(before)] if before in ids else []
        page, more = newer[-limit:], len(newer) > limit
    else:
        older = (jobs[ids.index(after) + 1:] if after in ids else []) if after else jobs
        page, more = older[:limit], len(older) > limit
    return Response.json({"data": [_batch(call, board, j) for j in page], "has_more": more,
                          "first_id": page[0].id if page else None, "last_id": page[-1].id if page else None})
