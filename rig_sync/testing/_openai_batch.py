"""OpenAI's Files and Batch APIs for the fake provider (routes under ``/v1``), on the shared job
state machine of ``_jobs.py``.

``POST /v1/files`` (multipart: ``purpose``, ``file``), ``GET``/``DELETE /v1/files/{id}``,
``GET /v1/files/{id}/content``; ``POST /v1/batches``, ``GET /v1/batches`` (``limit``, ``after``),
``GET /v1/batches/{id}`` (each read is a poll: it advances the job), ``POST
/v1/batches/{id}/cancel``. The input file is checked as OpenAI checks it while ``validating``: a
line that is not a JSON request, a ``url`` other than the batch's endpoint, a repeated
``custom_id``, mixed models or too many requests make the batch ``failed`` with ``errors``. An
ended batch's answers go to an output file (2xx answers) and an error file (error answers, and
``batch_expired`` / ``batch_cancelled`` for items it never ran), as OpenAI writes them.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ._dialect import ApiError, JSONDict, dumps
from ._jobs import Job, JobBoard, JobItem, board_of
from ._routes import Call, Response, route

__all__ = ["ENDPOINTS", "MAX_REQUESTS"]

PROVIDER = "openai"
ENDPOINTS = ("/v1/responses", "/v1/chat/completions", "/v1/embeddings", "/v1/completions", "/v1/moderations",
             "/v1/images/generations", "/v1/images/edits", "/v1/videos")
MAX_REQUESTS = 50_000
_PURPOSES = ("batch", "assistants", "fine-tune", "vision", "user_data", "evals")
_STATUS = {"pending": "validating", "running": "in_progress", "finalizing": "finalizing",
           "cancelling": "cancelling", "completed": "completed", "cancelled": "cancelled",
           "expired": "expired", "failed": "failed"}
_NOT_RUN = {
    "expired": ("batch_expired", "This request could not be executed before the completion window expired."),
    "cancelled": ("batch_cancelled", "This request was not executed because the batch was cancelled."),
}
_DAY = 24 * 3600


# --------------------------------------------------------------------------- #
# Files
# --------------------------------------------------------------------------- #


def _file_json(board: JobBoard, file_id: str) -> JSONDict:
    f = board.file(PROVIDER, file_id)
    if f is None:
        raise ApiError(404, f"No such File object: {file_id}", code="not_found", param="id")
    size = len(f.data) if f.role is None else len(_file_content(board, f.job_id or "", f.role))
    return {"id": f.id, "object": "file", "bytes": size, "created_at": f.created_at, "filename": f.filename,
            "purpose": f.purpose, "status": "processed", "status_details": None,
            "expires_at": f.created_at + 30 * _DAY if f.purpose in ("batch", "batch_output") else None}


@route("POST", r"/v1/files", expects_json=False)
def upload_file(call: Call) -> Response:
    """``POST /v1/files``: a multipart upload (``purpose``, ``file``)."""
    req = call.request
    purpose = req.form.get("purpose")
    if purpose not in _PURPOSES:
        raise ApiError(400, f"'{purpose}' is not one of {list(_PURPOSES)} - 'purpose'", param="purpose")
    if "file" not in req.files:
        raise ApiError(400, "'file' is a required property", param="file")
    filename, data = req.files["file"]
    if purpose == "batch" and not filename.endswith(".jsonl"):
        raise ApiError(400, "Invalid file format for Batch API. Must be .jsonl", param="file")
    board = board_of(call.provider)
    f = board.put_file(PROVIDER, purpose=purpose, filename=filename, data=data)
    return Response.json(_file_json(board, f.id))


@route("GET", r"/v1/files/(?P<file_id>[^/]+)")
def get_file(call: Call) -> Response:
    return Response.json(_file_json(board_of(call.provider), call.match["file_id"]))


@route("DELETE", r"/v1/files/(?P<file_id>[^/]+)")
def delete_file(call: Call) -> Response:
    board, file_id = board_of(call.provider), call.match["file_id"]
    _file_json(board, file_id)  # 404 for an unknown file
    with board.lock:
        board.files.pop(file_id, None)
    return Response.json({"id": file_id, "object": "file", "deleted": True})


@route("GET", r"/v1/files/(?P<file_id>[^/]+)/content")
def file_content(call: Call) -> Response:
    """A file's bytes: an upload as sent, a batch's output or error file as JSON lines."""
    board, file_id = board_of(call.provider), call.match["file_id"]
    f = board.file(PROVIDER, file_id)
    if f is None:
        raise ApiError(404, f"No such File object: {file_id}", code="not_found", param="id")
    data = f.data if f.role is None else _file_content(board, f.job_id or "", f.role)
    return Response(body=data, content_type="application/octet-stream")


def _result_line(job: Job, custom_id: str, response: JSONDict | None, error: JSONDict | None) -> bytes:
    line_id = "batch_req_" + hashlib.sha256(f"{job.id}/{custom_id}".encode()).hexdigest()[:24]
    return dumps({"id": line_id, "custom_id": custom_id, "response": response, "error": error}) + b"\n"


def _file_content(board: JobBoard, job_id: str, role: str) -> bytes:
    """An ended job's output file (``role`` "output") or error file ("error")."""
    with board.lock:
        job = board.jobs.get(job_id)
        results = job.results() if job is not None else []
    if job is None:
        return b""
    lines: list[bytes] = []
    for r in results:
        if r.status is not None:
            if (200 <= r.status < 300) == (role == "output"):
                response = {"status_code": r.status, "request_id": r.request_id, "body": r.body}
                lines.append(_result_line(job, r.custom_id, response, None))
        elif role == "error":
            code, message = _NOT_RUN[r.outcome]
            lines.append(_result_line(job, r.custom_id, None, {"code": code, "message": message}))
    return b"".join(lines)


# --------------------------------------------------------------------------- #
# Batches
# --------------------------------------------------------------------------- #


def _read_input(data: bytes, endpoint: str) -> tuple[list[JobItem], tuple[str, str] | None, int | None]:
    """The input file's requests, or why OpenAI would fail the batch (code, message) and the line."""
    items: list[JobItem] = []
    ids: set[str] = set()
    models: set[str] = set()
    lines = data.decode("utf-8", "replace").splitlines()
    for n, text in enumerate(lines, 1):
        if not text.strip():
            continue
        try:
            obj = json.loads(text)
        except ValueError:
            return [], ("invalid_json_line", f"This line is not parseable as valid JSON: {text[:80]}"), n
        if not isinstance(obj, dict):
            return [], ("invalid_json_line", "This line is not a JSON object."), n
        for key in ("custom_id", "method", "url", "body"):
            if key not in obj:
                return [], ("missing_required_parameter", f"Missing required parameter: '{key}'."), n
        cid, url, body = obj["custom_id"], obj["url"], obj["body"]
        if not isinstance(cid, str) or not cid:
            return [], ("invalid_custom_id", "The custom_id must be a non-empty string."), n
        if obj["method"] != "POST":
            return [], ("invalid_method", f"The method must be POST, not {obj['method']!r}."), n
        if url != endpoint:
            return [], ("mismatched_endpoint", f"The url {url!r} does not match the batch endpoint {endpoint!r}."), n
        if not isinstance(body, dict):
            return [], ("invalid_body", "The body must be a JSON object."), n
        if cid in ids:
            return [], ("duplicate_custom_id", f"The custom_id '{cid}' is used more than once in this file."), n
        ids.add(cid)
        if isinstance(body.get("model"), str):
            models.add(body["model"])
            if len(models) > 1:
                return [], ("mismatched_model", "All requests in a batch must use the same model."), n
        items.append(JobItem(cid, url, body))
    if not items:
        return [], ("empty_file", "The input file has no requests."), None
    if len(items) > MAX_REQUESTS:
        return [], ("too_many_requests", f"The batch has {len(items)} requests; at most {MAX_REQUESTS} "
                    "are allowed."), None
    return items, None, None


def _batch(board: JobBoard, job: Job) -> JSONDict:
    """The batch object as OpenAI shows it; an ended batch gets its output/error files here once."""
    with board.lock:
        if job.ended and job.phase != "failed" and "output_file_id" not in job.meta:
            results = job.results()
            for role, key in (("output", "output_file_id"), ("error", "error_file_id")):
                wanted = any((r.status is not None and 200 <= r.status < 300) == (role == "output") for r in results)
                made = board.put_file(PROVIDER, purpose="batch_output", filename=f"batch_{job.id}_{role}.jsonl",
                                      job_id=job.id, role=role) if wanted else None
                job.meta[key] = made.id if made is not None else None
        times = dict(job.times)
        counts = {"total": 0 if job.phase in ("pending", "failed") else job.total,
                  "completed": job.succeeded, "failed": job.errored}
        tokens = [0, 0]
        for r in job.answered.values():
            usage = r.body.get("usage") if isinstance(r.body, dict) else None
            if isinstance(usage, dict):
                tokens[0] += int(usage.get("prompt_tokens") or 0)
                tokens[1] += int(usage.get("completion_tokens") or 0)
        errors = None
        if job.phase == "failed" and job.refusal is not None:
            code, message = job.refusal
            errors = {"object": "list", "data": [{"code": code, "message": message, "param": None,
                                                  "line": job.meta.get("error_line")}]}
        created = times["created"]
        return {
            "id": job.id,
            "object": "batch",
            "endpoint": job.meta.get("endpoint"),
            "model": job.meta.get("model"),
            "errors": errors,
            "input_file_id": job.meta.get("input_file_id"),
            "completion_window": "24h",
            "status": _STATUS[job.phase],
            "output_file_id": job.meta.get("output_file_id"),
            "error_file_id": job.meta.get("error_file_id"),
            "created_at": created,
            "in_progress_at": times.get("running"),
            "expires_at": created + _DAY,
            "finalizing_at": times.get("finalizing"),
            "completed_at": times.get("completed"),
            "failed_at": times.get("failed"),
            "expired_at": times.get("expired"),
            "cancelling_at": times.get("cancelling"),
            "cancelled_at": times.get("cancelled"),
            "request_counts": counts,
            "usage": {"input_tokens": tokens[0], "output_tokens": tokens[1], "total_tokens": sum(tokens),
                      "input_tokens_details": {"cached_tokens": 0}, "output_tokens_details": {"reasoning_tokens": 0}},
            "metadata": job.meta.get("metadata"),
        }


def _check_metadata(metadata: Any) -> dict[str, str] | None:
    if metadata is None:
        return None
    if (not isinstance(metadata, dict) or len(metadata) > 16
            or not all(isinstance(k, str) and len(k) <= 64 and isinstance(v, str) and len(v) <= 512
                       for k, v in metadata.items())):
        raise ApiError(400, "Invalid 'metadata': at most 16 pairs of string keys (64 characters) and string values "
                       "(512 characters).", param="metadata")
    return dict(metadata)


@route("POST", r"/v1/batches")
def create_batch(call: Call) -> Response:
    """``POST /v1/batches``: ``input_file_id``, ``endpoint``, ``completion_window``, ``metadata``."""
    body = call.body_object()
    endpoint = body.get("endpoint")
    if endpoint not in ENDPOINTS:
        raise ApiError(400, f"Invalid value for 'endpoint': {endpoint!r}; supported: {', '.join(ENDPOINTS)}.",
                       param="endpoint")
    if body.get("completion_window") != "24h":
        raise ApiError(400, "Invalid value for 'completion_window': only '24h' is supported.",
                       param="completion_window")
    metadata = _check_metadata(body.get("metadata"))
    file_id = body.get("input_file_id")
    board = board_of(call.provider)
    f = board.file(PROVIDER, file_id) if isinstance(file_id, str) else None
    if f is None or f.role is not None:
        raise ApiError(404, f"No such File object: {file_id}", code="not_found", param="input_file_id")
    if f.purpose != "batch":
        raise ApiError(400, f"The file {file_id} has purpose '{f.purpose}', not 'batch'.", param="input_file_id")
    items, refusal, line = _read_input(f.data, endpoint)
    model = next((i.body["model"] for i in items if isinstance(i.body.get("model"), str)), None)
    label = metadata.get("rig_sync_label") if metadata else None
    job = board.create(call.provider, PROVIDER, items, id_prefix="batch_", headers=call.request.headers,
                       label=label, refusal=refusal,
                       meta={"endpoint": endpoint, "input_file_id": file_id, "metadata": metadata, "model": model,
                             "error_line": line})
    return Response.json(_batch(board, job))


def _job(call: Call) -> Job:
    job = board_of(call.provider).get(PROVIDER, call.match["batch_id"])
    if job is None:
        raise ApiError(404, f"No batch found with id '{call.match['batch_id']}'.", code="not_found")
    return job


@route("GET", r"/v1/batches/(?P<batch_id>[^/]+)")
def get_batch(call: Call) -> Response:
    """A status read: the job advances one poll (see ``_jobs``)."""
    board = board_of(call.provider)
    job = board.poll(call.provider, _job(call))
    return Response.json(_batch(board, job))


@route("POST", r"/v1/batches/(?P<batch_id>[^/]+)/cancel")
def cancel_batch(call: Call) -> Response:
    board, job = board_of(call.provider), _job(call)
    if not board.cancel(job):
        raise ApiError(409, f"Cannot cancel a batch with status '{_STATUS[job.phase]}'.", code="batch_not_cancellable")
    return Response.json(_batch(board, job))


@route("GET", r"/v1/batches")
def list_batches(call: Call) -> Response:
    """Batches newest first: ``limit`` (1-100, default 20) after the batch ``after``."""
    query = call.request.query
    try:
        limit = int(query.get("limit", "20"))
    except ValueError:
        limit = 0
    if not 1 <= limit <= 100:
        raise ApiError(400, f"Invalid 'limit': {query.get('limit')!r}; expected an integer from 1 to 100.",
                       param="limit")
    board = board_of(call.provider)
    jobs = board.list(PROVIDER)
    after = query.get("after")
    if after:
        ids = [j.id for j in jobs]
        jobs = jobs[ids.index(after) + 1:] if after in ids else []
    page = jobs[:limit]
    data = [_batch(board, j) for j in page]
    return Response.json({"object": "list", "data": data, "first_id": page[0].id if page else None,
                          "last_id": page[-1].id if page else None, "has_more": len(jobs) > limit})

