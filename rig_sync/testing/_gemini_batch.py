"""Gemini's batch mode for the fake provider (``/v1beta``), on the shared job state machine of
``_jobs.py``.

``POST /v1beta/models/{model}:batchGenerateContent`` with inline requests (``{"batch":
{"display_name", "input_config": {"requests": {"requests": [{"request", "metadata"}]}}}}``; a
display name is required, file input is refused, at most 20 MB), ``GET /v1beta/batches/{id}``
(each read is a poll: it advances the job), ``POST /v1beta/batches/{id}:cancel`` (answers
``{}``), ``GET /v1beta/batches`` (``pageSize``, ``pageToken``, newest first). A batch is a
long-running operation: ``metadata`` is the batch (``state`` ``BATCH_STATE_*``, ``batchStats`` as
int64 strings, zero counts left out as proto3 JSON leaves them), and once ``done`` its answers are
in ``metadata.output.inlinedResponses.inlinedResponses`` (and again in ``response``, as Gemini
repeats them), in request order, each with the request's ``metadata``: a ``response``, or an
``error`` that is a ``google.rpc.Status`` (``code`` the RPC code). A cancelled (code 1) or expired
batch has an operation ``error`` instead of a ``response``, its answers so far in ``output``, the
requests it never ran left out; a failed batch has an ``error`` and no answers.
"""

from __future__ import annotations

import datetime
import json
from typing import Any

from ._dialect import ApiError, JSONDict, dumps
from ._gemini import GEMINI_DIALECT
from ._jobs import Job, JobBoard, JobItem, board_of
from ._routes import Call, Response, route

__all__ = ["MAX_BYTES"]

PROVIDER = "gemini"
MAX_BYTES = 20 * 10**6
_V = r"/(?P<version>v1beta)"
_ONE = _V + r"/batches/(?P<batch_id>[^/:]+)"
_STATE = {"pending": "PENDING", "running": "RUNNING", "finalizing": "RUNNING", "cancelling": "RUNNING",
          "completed": "SUCCEEDED", "cancelled": "CANCELLED", "expired": "EXPIRED", "failed": "FAILED"}
# HTTP error status name -> google.rpc.Code, for an item's error (a Status message)
_RPC_CODES = {"CANCELLED": 1, "UNKNOWN": 2, "INVALID_ARGUMENT": 3, "DEADLINE_EXCEEDED": 4, "NOT_FOUND": 5,
              "ALREADY_EXISTS": 6, "PERMISSION_DENIED": 7, "RESOURCE_EXHAUSTED": 8, "FAILED_PRECONDITION": 9,
              "ABORTED": 10, "OUT_OF_RANGE": 11, "UNIMPLEMENTED": 12, "INTERNAL": 13, "UNAVAILABLE": 14,
              "DATA_LOSS": 15, "UNAUTHENTICATED": 16}
_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1main."
# The operation's error for a batch stopped before every request ran (cancelled: code 1, as documented).
_STOPPED = {"cancelled": {"code": 1, "message": "The batch was cancelled."},
            "expired": {"code": 4, "message": "The batch expired before all its requests were run."}}


def _time(unix: int | None) -> str | None:
    if unix is None:
        return None
    return datetime.datetime.fromtimestamp(unix, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000000000Z")


def _field(obj: JSONDict, snake: str, camel: str) -> Any:
    """A field in either spelling proto JSON accepts."""
    return obj.get(snake, obj.get(camel))


def _status(body: Any) -> JSONDict:
    """An item's HTTP error body (``{"error": {code, message, status}}``) as a ``google.rpc.Status``."""
    error = body.get("error") if isinstance(body, dict) else None
    error = error if isinstance(error, dict) else {}
    return {"code": _RPC_CODES.get(str(error.get("status")), 2), "message": str(error.get("message", "Unknown"))}


def _operation(board: JobBoard, job: Job) -> JSONDict:
    """The batch's long-running operation as Gemini shows it."""
    with board.lock:
        phase, times, ended = job.phase, dict(job.times), job.ended
        results = job.results() if ended else list(job.answered.values())
        refusal = job.refusal
    keys: list[Any] = job.meta["metadata"]
    ok = sum(r.outcome == "succeeded" for r in results)
    failed = sum(r.outcome == "errored" for r in results)
    stats = {"requestCount": job.total, "successfulRequestCount": ok, "failedRequestCount": failed,
             "pendingRequestCount": 0 if ended else job.total - len(results)}
    name = f"batches/{job.id}"
    updated = max(times.values())
    batch: JSONDict = {"@type": _TYPE + "GenerateContentBatch", "model": job.meta["model"],
                       "displayName": job.label, "createTime": _time(times["created"]),
                       "updateTime": _time(updated), "batchStats": {k: str(v) for k, v in stats.items() if v},
                       "state": f"BATCH_STATE_{_STATE[phase]}", "name": name}
    operation: JSONDict = {"name": name, "metadata": batch}
    if not ended:
        return operation
    batch["endTime"] = _time(updated)
    operation["done"] = True
    if phase == "failed":
        _, message = refusal or ("", "The batch could not be processed.")
        operation["error"] = {"code": 3, "message": message}
        return operation
    inlined = []
    for r in results:
        if r.status is None:
            continue  # never run (cancelled or expired): left out
        answer: JSONDict = {"response": r.body} if r.outcome == "succeeded" else {"error": _status(r.body)}
        key = keys[int(r.custom_id)]
        if key is not None:
            answer["metadata"] = key
        inlined.append(answer)
    output = {"inlinedResponses": {"inlinedResponses": inlined}}
    batch["output"] = output
    if phase in _STOPPED:  # an operation holds an error or a response: the answers so far stay in `output`
        operation["error"] = _STOPPED[phase]
    else:
        operation["response"] = {"@type": _TYPE + "GenerateContentBatchOutput", **output}
    return operation


@route("POST", _V + r"/(?P<model>models/[^/:]+):batchGenerateContent", dialect=GEMINI_DIALECT)
def batch_generate_content(call: Call) -> Response:
    """``POST /v1beta/models/{model}:batchGenerateContent`` (inline requests)."""
    if len(call.request.body) > MAX_BYTES:
        raise ApiError(400, f"Request payload size exceeds the limit: {MAX_BYTES} bytes.")
    batch = call.body_object().get("batch")
    if not isinstance(batch, dict):
        raise ApiError(400, "* BatchGenerateContentRequest.batch: batch is required")
    label = _field(batch, "display_name", "displayName")
    if not isinstance(label, str) or not label:
        raise ApiError(400, "* GenerateContentBatch.display_name: display_name is required")
    config = _field(batch, "input_config", "inputConfig")
    if isinstance(config, dict) and _field(config, "file_name", "fileName") is not None:
        raise ApiError(400, "The fake serves inline requests only (input_config.requests), not file input.")
    holder = config.get("requests") if isinstance(config, dict) else None
    requests = holder.get("requests") if isinstance(holder, dict) else None
    if not isinstance(requests, list) or not requests:
        raise ApiError(400, "* GenerateContentBatch.input_config: input_config.requests must not be empty")
    model = call.match["model"]
    path = f"/{call.match['version']}/{model}:generateContent"
    items: list[JobItem] = []
    keys: list[Any] = []
    for i, r in enumerate(requests):
        request = r.get("request") if isinstance(r, dict) else None
        if not isinstance(request, dict):
            raise ApiError(400, f"* InlinedRequest[{i}].request: request is required")
        metadata = r.get("metadata")
        if metadata is not None and not isinstance(metadata, dict):
            raise ApiError(400, f"Invalid value at 'batch.input_config.requests.requests[{i}].metadata' "
                           f"(type.googleapis.com/google.protobuf.Struct), {json.dumps(metadata)[:60]}")
        items.append(JobItem(str(i), path, request))  # Gemini keys need not be unique: items go by place
        keys.append(metadata)
    board = board_of(call.provider)
    job = board.create(call.provider, PROVIDER, items, id_prefix="", headers=call.request.headers, label=label,
                       meta={"model": model, "metadata": keys})
    return Response.json(_operation(board, job))


def _job(call: Call) -> Job:
    job = board_of(call.provider).get(PROVIDER, call.match["batch_id"])
    if job is None:
        raise ApiError(404, f"Batch batches/{call.match['batch_id']} not found.")
    return job


@route("GET", _ONE, dialect=GEMINI_DIALECT)
def get_batch(call: Call) -> Response:
    """A status read: the job advances one poll (see ``_jobs``)."""
    board = board_of(call.provider)
    return Response.json(_operation(board, board.poll(call.provider, _job(call))))


@route("POST", _ONE + ":cancel", dialect=GEMINI_DIALECT, expects_json=False)
def cancel_batch(call: Call) -> Response:
    """Cancel: the batch stays RUNNING until its next poll, then CANCELLED; answers ``{}``."""
    board_of(call.provider).cancel(_job(call))
    return Response(body=b"{}")


@route("GET", _V + r"/batches", dialect=GEMINI_DIALECT)
def list_batches(call: Call) -> Response:
    """Batches newest first, ``pageSize`` (1-1000, default 50) a page from ``pageToken``."""
    query = call.request.query
    try:
        size, start = int(query.get("pageSize", "50")), int(query.get("pageToken", "0") or "0")
    except ValueError:
        raise ApiError(400, "Invalid pageSize or pageToken.") from None
    if not 1 <= size <= 1000 or start < 0:
        raise ApiError(400, "Invalid pageSize or pageToken.")
    board = board_of(call.provider)
    jobs = board.list(PROVIDER)
    page = jobs[start:start + size]
    body: JSONDict = {"operations": [_operation(board, j) for j in page]}
    if start + size < len(jobs):
        body["nextPageToken"] = str(start + size)
    return Response(body=dumps(body))
