"""Gemini's batch mode behind `rig_sync.batch.submit`: the `batch_jobs` capability of
`gemini.Client` (`GeminiBatchJobs`, a mixin in its bases).

    POST /{v}/models/{model}:batchGenerateContent
         {"batch": {"display_name": <label>, "input_config": {"requests": {"requests":
             [{"request": <a generateContent body>, "metadata": {"key": <custom id>}}]}}}}
    GET  /{v}/batches/{id}            an operation: metadata.state BATCH_STATE_*, metadata.batchStats,
                                      and once done the inlined responses [{"response" | "error", "metadata"}]
    POST /{v}/batches/{id}:cancel
    GET  /{v}/batches?pageSize=…      find_job: the display name is the label

Requests go inline, so one job's body is at most 20 MB (bigger inputs are split into several
jobs; Gemini's file input is not used). The answers come back inside the finished operation,
read whole, so a job also holds at most `MAX_REQUESTS` requests and the operation is read up to
`MAX_OPERATION_BYTES`.

An answer is matched to its request by the `metadata.key` it carries, never by its place: Gemini
documents the responses in request order, but users report them out of order in large batches.
A response without a key cannot be matched: it is logged and left out, and its item is missing.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from .. import _json
from ..client.capabilities import BatchJobsClient, _unix_seconds
from ..errors import InvalidRequestError, ResponseDecodeError, ResponseTooLargeError
from ._job_results import (
    BATCH_JOBS,
    Attribution,
    check_entries,
    count_of,
    encode,
    item_error,
    job_path,
    mapping,
    text_of,
)

if TYPE_CHECKING:
    from ..client.jobs import JobEntry, JobKind, JobOutcome, JobState, RemoteJob
    from ..http import Transport

__all__ = ["GeminiBatchJobs", "GRPC_STATUS", "MAX_REQUESTS", "MAX_BYTES", "MAX_OPERATION_BYTES"]

log = logging.getLogger("rig_sync.batch_jobs")

MAX_REQUESTS = 10_000  # answers come back in one operation: this keeps it to a few hundred MB
MAX_BYTES = 20 * 10**6  # Gemini's limit on a batch of inline requests
MAX_OPERATION_BYTES = 1 << 30  # a finished operation, answers and all, read whole
_PAGES = 10  # pages of 100 batches find_job reads at most
_CUSTOM_ID = re.compile(r"[\x21-\x7e]{1,256}")
_CUSTOM_ID_RULE = "1 to 256 printable ASCII characters without spaces"

# google.rpc.Code -> the HTTP status Google's REST APIs answer it with (an item's error is a Status
# message, whose `code` is the RPC code; an HTTP error body's `code` is the HTTP status itself).
GRPC_STATUS = {
    "CANCELLED": (1, 499), "UNKNOWN": (2, 500), "INVALID_ARGUMENT": (3, 400), "DEADLINE_EXCEEDED": (4, 504),
    "NOT_FOUND": (5, 404), "ALREADY_EXISTS": (6, 409), "PERMISSION_DENIED": (7, 403), "RESOURCE_EXHAUSTED": (8, 429),
    "FAILED_PRECONDITION": (9, 400), "ABORTED": (10, 409), "OUT_OF_RANGE": (11, 400), "UNIMPLEMENTED": (12, 501),
    "INTERNAL": (13, 500), "UNAVAILABLE": (14, 503), "DATA_LOSS": (15, 500), "UNAUTHENTICATED": (16, 401),
}
_BY_CODE = {code: (name, status) for name, (code, status) in GRPC_STATUS.items()}

# A batch's state (BATCH_STATE_*; Google's SDKs and Vertex AI say JOB_STATE_*) -> rig_sync's.
_STATES = {
    "UNSPECIFIED": "pending", "PENDING": "pending", "QUEUED": "pending", "RUNNING": "running", "PAUSED": "running",
    "UPDATING": "running", "CANCELLING": "cancelling", "SUCCEEDED": "completed", "PARTIALLY_SUCCEEDED": "completed",
    "FAILED": "failed", "CANCELLED": "cancelled", "EXPIRED": "expired",
}


class GeminiBatchJobs(BatchJobsClient):
    """Batch mode for `gemini.Client`: completion jobs of inline `generateContent` requests."""

    provider: ClassVar[str]
    transport: Transport
    if TYPE_CHECKING:
        @property
        def api_version(self) -> str: ...

    max_job_requests: ClassVar[int] = MAX_REQUESTS
    max_job_bytes: ClassVar[int] = MAX_BYTES

    def create_job(self, kind: JobKind, model: str, entries: Sequence[JobEntry], *, label: str) -> RemoteJob:
        from ._gemini_chat import model_path

        limits = self.job_limits(kind)
        check_entries(entries, limits, self.provider, custom_id=_CUSTOM_ID, rule=_CUSTOM_ID_RULE)
        if not isinstance(label, str) or not label or len(label) > 128:
            raise InvalidRequestError(f"{self.provider}: a batch's display name (the job label) is 1 to 128 "
                                      f"characters, not {label!r}")
        expected = model_path(self, model, "generateContent")
        requests = [{"request": _request(e, expected, self.provider), "metadata": {"key": e.custom_id}}
                    for e in entries]
        body = {"batch": {"display_name": label, "input_config": {"requests": {"requests": requests}}}}
        data = encode(body, limits, self.provider)
        answer = self.transport.request("POST", model_path(self, model, "batchGenerateContent"), data=data,
                                        headers={"Content-Type": "application/json"}, model=model,
                                        capability=BATCH_JOBS).json()
        return _remote(answer, self.provider)

    def job(self, job_id: str) -> RemoteJob:
        return _remote(self._operation(f"/{self.api_version}/batches/{self._id(job_id)}"), self.provider)

    def cancel_job(self, job_id: str) -> RemoteJob:
        """Ask Gemini to cancel (it answers with an empty object), then read the batch as it stands."""
        path = f"/{self.api_version}/batches/{self._id(job_id)}:cancel"
        self.transport.request("POST", path, capability=BATCH_JOBS)
        return self.job(job_id)

    def job_results(self, job: RemoteJob) -> Iterator[JobOutcome]:
        """Every answered item's outcome: a `generateContent` answer, or (an item's error) the
        `APIStatusError` its status stands for. Items a cancelled or expired batch did not answer
        are not listed by Gemini: they are missing."""
        from ..client.jobs import JobState

        self._id(job.id)
        if not job.state.ended:
            raise InvalidRequestError(f"{self.provider} batch {job.id} is {job.state}: its results come once it "
                                      "has ended (poll it with job(id))")
        if job.state is JobState.FAILED:
            return  # refused as a whole: no answers
        operation = job.raw if _output(job.raw) is not None else self._operation(
            f"/{self.api_version}/batches/{job.id}")  # a listed batch comes without its answers
        output = _output(operation)
        if output is None:
            holders = (mapping(operation.get("response")), mapping(mapping(operation.get("metadata")).get("output")))
            if any(text_of(h.get("responsesFile")) for h in holders):
                raise ResponseDecodeError(f"{self.provider} batch {job.id} wrote its answers to a file, which "
                                          "rig_sync does not read (its jobs send requests inline)",
                                          provider=self.provider, body=dict(operation))
            return  # ended with no answers (failed, or cancelled before any): every item is missing
        taken = Attribution(self.provider, job.id)
        for n, item in enumerate(output, 1):
            record = mapping(item)
            where = f"inlined response {n}"
            if not record:
                taken.ignore(where, f"not a JSON object: {str(item)[:120]!r}")
            elif taken.take(mapping(record.get("metadata")).get("key"), where):
                yield record["metadata"]["key"], self._outcome(record, record["metadata"]["key"], job.id)
        taken.summary()

    def find_job(self, label: str) -> RemoteJob | None:
        """The newest batch whose display name is `label` (a failed one only if no other is)."""
        found: list[tuple[int, RemoteJob]] = []
        token: str | None = None
        for _ in range(_PAGES):
            params = {"pageSize": "100", **({"pageToken": token} if token else {})}
            page = self._operation(f"/{self.api_version}/batches", params)
            operations = page.get("operations", [])
            if not isinstance(operations, list):
                raise ResponseDecodeError(f"{self.provider} answered its batch list without a list of 'operations'",
                                          provider=self.provider, field="operations", body=dict(page))
            for raw in operations:
                meta = mapping(mapping(raw).get("metadata"))
                if meta.get("displayName", meta.get("display_name")) == label:
                    job = _remote(raw, self.provider)
                    found.append((_unix_seconds(meta.get("createTime")) or 0, job))
            token = text_of(page.get("nextPageToken"))
            if token is None:
                break
        found.sort(key=lambda pair: (pair[1].state.value != "failed", pair[0]), reverse=True)
        return found[0][1] if found else None

    # --- helpers --------------------------------------------------------------------------------

    def _id(self, job_id: str) -> str:
        """A batch id with or without its `batches/` (Gemini names a batch `batches/<id>`)."""
        return job_path(job_id.removeprefix("batches/") if isinstance(job_id, str) else job_id, self.provider)

    def _operation(self, path: str, params: Mapping[str, str] | None = None) -> Mapping[str, Any]:
        """A JSON object read up to `MAX_OPERATION_BYTES` (a finished batch holds every answer)."""
        http = self.transport.stream("GET", path, params=params, capability=BATCH_JOBS)
        parts: list[bytes] = []
        size = 0
        with http:
            for chunk in http.chunks():
                size += len(chunk)
                if size > MAX_OPERATION_BYTES:
                    raise ResponseTooLargeError(
                        f"GET {path}: the batch is larger than {MAX_OPERATION_BYTES:,} bytes; split the input into "
                        "smaller jobs", provider=self.provider, limit=MAX_OPERATION_BYTES)
                parts.append(chunk)
        content = b"".join(parts)
        try:
            data = _json.loads(content)
        except _json.JSONDecodeError:
            raise ResponseDecodeError(f"GET {path}: the answer is not JSON; starts with {content[:200]!r}",
                                      provider=self.provider, body=content[:2000]) from None
        if not isinstance(data, Mapping):
            raise ResponseDecodeError(f"GET {path}: expected a JSON object, got {str(data)[:200]}",
                                      provider=self.provider, body=data)
        return data

    def _outcome(self, record: Mapping[str, Any], custom_id: str, job_id: str) -> Any:
        from ..client.jobs import JobError

        if isinstance(record.get("response"), Mapping):
            return record["response"]
        if isinstance(record.get("error"), Mapping):
            status, error = _http_status(record["error"])
            return item_error(self, status, {"error": error})
        bad = ResponseDecodeError(f"{self.provider} batch {job_id}: request {custom_id} came back with neither a "
                                  "response nor an error", provider=self.provider, body=dict(record))
        return JobError(str(bad), provider=self.provider, job_id=job_id, reason="errored", error=bad,
                        custom_id=custom_id)


def _http_status(error: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
    """An item's `google.rpc.Status` as the HTTP status Google would answer it with, and the error
    object as an HTTP error body holds it (`code` the HTTP status, `status` the code's name)."""
    name, code = text_of(error.get("status")), count_of(error.get("code"))
    if name in GRPC_STATUS:
        status = GRPC_STATUS[name][1]
    elif code is not None and code in _BY_CODE:
        name, status = _BY_CODE[code]
    elif code is not None and 400 <= code <= 599:  # an HTTP status already
        status = code
    else:
        status = 500
    return status, {**error, "code": status, **({"status": name} if name else {})}


def _request(entry: JobEntry, expected: str, provider: str) -> Mapping[str, Any]:
    """The `generateContent` body of one item, checked: the job's model and method."""
    if entry.call.path != expected:
        raise InvalidRequestError(f"{provider}: item {entry.custom_id} is a call to {entry.call.path!r}; this job "
                                  f"holds {expected!r} calls (one job holds one model's requests)")
    if not isinstance(entry.call.body, Mapping):
        raise InvalidRequestError(f"{provider}: item {entry.custom_id}'s request is not a JSON object")
    return entry.call.body


def _output(operation: Mapping[str, Any]) -> list[Any] | None:
    """The inlined responses of a finished operation: in the batch's `output` (where Google's SDK
    reads them), else in the operation's `response` (a succeeded batch holds both)."""
    for holder in (mapping(mapping(operation.get("metadata")).get("output")), mapping(operation.get("response"))):
        inlined = holder.get("inlinedResponses")
        if isinstance(inlined, Mapping):
            inlined = inlined.get("inlinedResponses")
        if isinstance(inlined, list):
            return inlined
    return None


def _state(operation: Mapping[str, Any], provider: str) -> JobState:
    from ..client.jobs import JobState

    meta = mapping(operation.get("metadata"))
    raw = text_of(meta.get("state"))
    if raw is not None:
        word = raw.removeprefix("BATCH_STATE_").removeprefix("JOB_STATE_")
        if word in _STATES:
            return JobState(_STATES[word])
        raise ResponseDecodeError(f"{provider} batch {text_of(operation.get('name'))} has a state rig_sync does "
                                  f"not know: {raw!r}", provider=provider, field="state", body=dict(operation))
    if operation.get("done") is True:  # an operation that ended without saying its state
        return JobState.FAILED if isinstance(operation.get("error"), Mapping) else JobState.COMPLETED
    if operation.get("done") is False:  # accepted, not yet started
        return JobState.PENDING
    raise ResponseDecodeError(f"{provider} answered with an operation that has no state: {str(operation)[:200]}",
                              provider=provider, field="state", body=dict(operation))


def _remote(data: Any, provider: str) -> RemoteJob:
    """A batch operation (`{name, metadata: GenerateContentBatch, done, response | error}`) as a `RemoteJob`."""
    from ..client.jobs import JobState, RemoteJob

    operation = mapping(data)
    name = text_of(operation.get("name")) or text_of(mapping(operation.get("metadata")).get("name"))
    if name is None or not name.startswith("batches/") or len(name) == len("batches/"):
        raise ResponseDecodeError(f"{provider} answered with something other than a batch operation (no name "
                                  f"'batches/…'): {str(data)[:200]}", provider=provider, field="name", body=data)
    meta = mapping(operation.get("metadata"))
    state = _state(operation, provider)
    stats = mapping(meta.get("batchStats"))
    error = mapping(operation.get("error"))
    total = count_of(stats.get("requestCount"))
    zero = 0 if total is not None else None  # proto3 JSON leaves zero counts out
    return RemoteJob(
        provider=provider, id=name.removeprefix("batches/"), state=state, total=total,
        succeeded=count_of(stats.get("successfulRequestCount", zero)),
        failed=count_of(stats.get("failedRequestCount", zero)),
        label=text_of(meta.get("displayName", meta.get("display_name"))),
        error=text_of(error.get("message")) if state is JobState.FAILED else None, raw=dict(operation))
