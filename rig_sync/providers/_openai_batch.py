"""OpenAI's Batch API behind `rig_sync.batch.submit`: the `batch_jobs` capability of `openai.Client`.

A job is a JSONL input file uploaded to `POST /files` (purpose "batch"), one line per item:

    {"custom_id": "...", "method": "POST", "url": "/v1/chat/completions", "body": {...}}

where `body` is exactly what the model would POST on its own (`prepare` / `prepare_embeddings`)
and `url` the API's own path (the base URL's path + the prepared path). `POST /batches` starts it
({input_file_id, endpoint, completion_window "24h", metadata {"rig_sync_label": label}}); `GET
/batches/{id}` polls; an ended job's answers are in its output file (answered items) and error
file (items answered with an error status, or not run: `batch_expired`, `batch_cancelled`), both
read line by line from `GET /files/{id}/content`, never whole. `find_job` lists `GET /batches`
newest first and matches the label in the metadata.

Results files are read as every adapter reads them (`_job_results`): a line that is not a result
(not JSON, no custom id, a custom id seen before) is logged with its line number and left out, so
the item it was meant for is reported missing in its place; a last line cut off mid-way, or a
download that breaks off, is `StreamError` (retryable) after the lines read before it.

Job types come from `rig_sync.client.jobs`, imported when a job method is first used: a chat
call loads no job machinery.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from .. import errors
from ..client.capabilities import BatchJobsClient
from ._job_results import BATCH_JOBS, NOT_JSON, Attribution, check_entries, count_of, item_error, job_path, json_lines

if TYPE_CHECKING:
    from ..client.jobs import JobEntry, JobKind, JobOutcome, JobState, RemoteJob
    from ..http import Transport

__all__ = ["OpenAIBatchJobs", "LABEL_KEY", "MAX_REQUESTS", "MAX_FILE_BYTES", "MAX_EMBEDDING_INPUTS"]

# OpenAI's limits per batch (its OpenAPI spec, CreateBatchRequest; tests/fixtures/batch/LIMITS.md):
# requests and input file size ("200 MB": read as decimal, the smaller), and for /v1/embeddings
# the embedding inputs across all of its requests.
MAX_REQUESTS = 50_000
MAX_FILE_BYTES = 200 * 10**6
MAX_EMBEDDING_INPUTS = 50_000
COMPLETION_WINDOW = "24h"
LABEL_KEY = "rig_sync_label"  # the metadata key find_job reads
_MAX_METADATA_VALUE = 512  # characters OpenAI allows in a metadata value
_FIND_PAGES = 5  # pages of 100 batches find_job reads, newest first
_CUSTOM_ID = re.compile(r"[^\x00-\x1f]{1,512}")
_CUSTOM_ID_RULE = "a non-empty str of at most 512 characters, no control characters"

# OpenAI's batch statuses -> rig_sync's (by name, so this module loads no job types).
_STATES = {
    "validating": "PENDING",
    "in_progress": "RUNNING",
    "finalizing": "RUNNING",
    "completed": "COMPLETED",
    "failed": "FAILED",
    "expired": "EXPIRED",
    "cancelling": "CANCELLING",
    "cancelled": "CANCELLED",
}
# The error codes of an item the batch did not run.
_NOT_RUN = {"batch_expired": "expired", "batch_cancelled": "cancelled"}


class OpenAIBatchJobs(BatchJobsClient):
    """The Batch API methods of `openai.Client` (see this module's docstring)."""

    job_kinds: ClassVar[tuple[JobKind, ...]] = ("completion", "embeddings")
    transport: Transport

    # --- BatchJobsClient ----------------------------------------------------------------------

    max_job_requests: ClassVar[int] = MAX_REQUESTS
    max_job_bytes: ClassVar[int] = MAX_FILE_BYTES

    def create_job(self, kind: JobKind, model: str, entries: Sequence[JobEntry], *, label: str) -> RemoteJob:
        """Upload `entries` as a JSONL file and start a batch on it. If OpenAI refuses the batch,
        the uploaded file is deleted again (best effort)."""
        self.check_job_kind(kind)
        _check_label(self.provider, label)
        data, endpoint = self._input_file(kind, entries)
        file_id = self._upload(data, label)
        body = {"input_file_id": file_id, "endpoint": endpoint, "completion_window": COMPLETION_WINDOW,
                "metadata": {LABEL_KEY: label}}
        try:
            answer = self.transport.request("POST", "batches", json=body, model=model, capability=BATCH_JOBS)
        except errors.APIStatusError as exc:
            if exc.status_code < 500:  # refused, so no batch holds the file (a 5xx may have made one)
                self._delete_file(file_id)
            raise
        return self._remote(answer.json(), "POST /batches")

    def job(self, job_id: str) -> RemoteJob:
        job_path(job_id, self.provider)
        return self._remote(self.transport.request("GET", f"batches/{job_id}", capability=BATCH_JOBS).json(),
                            f"GET /batches/{job_id}")

    def cancel_job(self, job_id: str) -> RemoteJob:
        """Ask OpenAI to stop the batch (it goes `cancelling`, then `cancelled`); answers already
        made are kept. A batch that has already ended is returned as it is."""
        job_path(job_id, self.provider)
        try:
            answer = self.transport.request("POST", f"batches/{job_id}/cancel", capability=BATCH_JOBS)
        except (errors.BadRequestError, errors.ConflictError):
            job = self.job(job_id)  # OpenAI refuses to cancel an ended batch: nothing is left to stop
            if job.state.ended:
                return job
            raise
        return self._remote(answer.json(), f"POST /batches/{job_id}/cancel")

    def find_job(self, label: str) -> RemoteJob | None:
        """The newest batch whose metadata holds `label`, among the newest 500 batches."""
        _check_label(self.provider, label)
        after: str | None = None
        for _ in range(_FIND_PAGES):
            params = {"limit": "100", **({"after": after} if after else {})}
            page = self.transport.request("GET", "batches", params=params, capability=BATCH_JOBS).json()
            data = page.get("data") if isinstance(page, dict) else None
            if not isinstance(data, list):
                raise self._decode_error("GET /batches: the answer holds no 'data' list of batches", "data", page)
            for batch in data:
                metadata = batch.get("metadata") if isinstance(batch, dict) else None
                if isinstance(metadata, dict) and metadata.get(LABEL_KEY) == label:
                    return self._remote(batch, "GET /batches")
            last = page.get("last_id") or (data[-1].get("id") if data and isinstance(data[-1], dict) else None)
            if page.get("has_more") is not True or not isinstance(last, str) or not last:
                return None
            after = last
        return None

    def job_results(self, job: RemoteJob) -> Iterator[JobOutcome]:
        """Every answered or failed item of an ended batch, streamed from its output file and then
        its error file: `(custom_id, answer body)`, `(custom_id, APIStatusError)` for an item
        answered with an error status, `(custom_id, JobError)` for one expired or cancelled before
        it ran (see the module's docstring for lines that are not results)."""
        job_path(job.id, self.provider)
        if not job.state.ended or "status" not in job.raw:
            job = self.job(job.id)  # a job noted in a journal carries no file ids: read it afresh
        if not job.state.ended:
            raise errors.InvalidRequestError(
                f"{self.provider}: batch {job.id} is {job.state}, not ended; its results come once it has "
                "ended (wait for it, e.g. BatchJob.wait())")
        taken = Attribution(self.provider, job.id)
        for key in ("output_file_id", "error_file_id"):
            file_id = job.raw.get(key)
            if file_id is None:
                continue
            if not isinstance(file_id, str):
                raise self._decode_error(f"batch {job.id}: {key} is not a file id: {file_id!r}", key, job.raw)
            yield from self._file_outcomes(job.id, job_path(file_id, self.provider), taken)
        taken.summary()

    # --- the pieces ---------------------------------------------------------------------------

    def _input_file(self, kind: JobKind, entries: Sequence[JobEntry]) -> tuple[bytes, str]:
        """The JSONL input file and its endpoint; every limit checked before anything is sent."""
        check_entries(entries, self.job_limits(kind), self.provider, custom_id=_CUSTOM_ID, rule=_CUSTOM_ID_RULE)
        base_path = urlsplit(self.transport.base_url).path.rstrip("/")
        endpoint: str | None = None
        lines: list[bytes] = []
        size = inputs = 0
        for n, entry in enumerate(entries):
            cid = entry.custom_id
            url = f"{base_path}/{entry.call.path.lstrip('/')}"
            if endpoint is None:
                endpoint = url
            elif url != endpoint:
                raise errors.InvalidRequestError(
                    f"{self.provider}: one batch job goes to one endpoint; request {cid!r} goes to {url}, "
                    f"the first to {endpoint}")
            if kind == "embeddings":
                given = entry.call.body.get("input")
                inputs += len(given) if isinstance(given, list) else 1
            line = self.transport.encode_json({"custom_id": cid, "method": "POST", "url": url, "body": entry.call.body})
            lines.append(line)
            size += len(line) + 1
            if size > self.max_job_bytes:
                raise errors.InvalidRequestError(
                    f"{self.provider}: the batch input file passes OpenAI's {self.max_job_bytes:,}-byte limit at "
                    f"request {cid!r} ({n + 1} of {len(entries)}); split the requests into smaller jobs")
        if inputs > MAX_EMBEDDING_INPUTS:
            raise errors.InvalidRequestError(
                f"{self.provider}: {inputs:,} texts to embed in one batch job; OpenAI takes at most "
                f"{MAX_EMBEDDING_INPUTS:,} across a batch's requests: split them into smaller jobs")
        assert endpoint is not None
        lines.append(b"")
        return b"\n".join(lines), endpoint

    def _upload(self, data: bytes, label: str) -> str:
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", label)[:100] + ".jsonl"
        answer = self.transport.request(
            "POST", "files", data={"purpose": "batch"}, files={"file": (name, data, "application/jsonl")},
            capability=BATCH_JOBS).json()
        file_id = answer.get("id") if isinstance(answer, dict) else None
        if not isinstance(file_id, str) or not file_id:
            raise self._decode_error(f"POST /files: the answer holds no file id: {str(answer)[:200]}", "id", answer)
        return job_path(file_id, self.provider)

    def _delete_file(self, file_id: str) -> None:
        try:
            self.transport.request("DELETE", f"files/{file_id}", capability=BATCH_JOBS)
        except errors.RigError:
            pass  # an unused input file costs nothing; the refusal is the error worth raising

    def _file_outcomes(self, job_id: str, file_id: str, taken: Attribution) -> Iterator[JobOutcome]:
        from ..http import MAX_RESPONSE_BYTES

        limit = self.transport.max_response_bytes or MAX_RESPONSE_BYTES  # a line is one answer
        http = self.transport.stream("GET", f"files/{file_id}/content", capability=BATCH_JOBS)
        for line in json_lines(http, self.provider, max_line=limit):
            where = f"file {file_id} line {line.number}"
            record = line.value if isinstance(line.value, dict) else None
            if line.value is NOT_JSON or record is None:
                taken.ignore(where, f"not a JSON object: {line.text[:120]!r}")
                continue
            outcome = self._outcome(job_id, record)
            if outcome is None:
                taken.ignore(where, "no answer in it (a response with a status_code and body, or an error): "
                                    f"{line.text[:120]!r}")
            elif taken.take(record.get("custom_id"), where):
                yield record["custom_id"], outcome

    def _outcome(self, job_id: str, record: Mapping[str, Any]) -> Any:
        """A result line's answer body, `APIStatusError` or `JobError`; None if it holds none."""
        from ..client.jobs import JobError

        cid = record.get("custom_id")
        response, error = record.get("response"), record.get("error")
        if isinstance(response, dict):
            status = response.get("status_code")
            if isinstance(status, bool) or not isinstance(status, int):
                return None
            body = response.get("body")
            if 200 <= status < 300:
                return body
            rid = response.get("request_id")
            return item_error(self, status, body, rid if isinstance(rid, str) else None)
        if isinstance(error, dict):
            code, message = error.get("code"), error.get("message")
            reason = _NOT_RUN.get(code, "errored") if isinstance(code, str) else "errored"
            text = message if isinstance(message, str) and message else f"the request was not run ({code})"
            return JobError(f"{self.provider} batch {job_id}: {cid}: {text}", provider=self.provider,
                            job_id=job_id, reason=reason, custom_id=cid if isinstance(cid, str) else None)
        return None

    def _remote(self, obj: Any, what: str) -> RemoteJob:
        from ..client.jobs import JobState, RemoteJob

        if not isinstance(obj, dict):
            raise self._decode_error(f"{what}: the answer is not a batch object: {str(obj)[:200]}", None, obj)
        job_id, status = obj.get("id"), obj.get("status")
        try:
            job_id = job_path(job_id, self.provider) if isinstance(job_id, str) else None
        except errors.InvalidRequestError:
            job_id = None
        if job_id is None:
            raise self._decode_error(f"{what}: the batch object has no id: {str(obj)[:200]}", "id", obj)
        state_name = _STATES.get(status) if isinstance(status, str) else None
        if state_name is None:
            raise self._decode_error(f"{what}: batch {job_id} has status {status!r}, not one of "
                                     f"{', '.join(_STATES)}", "status", obj)
        state: JobState = JobState[state_name]
        counts = obj.get("request_counts")
        counts = counts if isinstance(counts, dict) else {}
        metadata = obj.get("metadata")
        label = metadata.get(LABEL_KEY) if isinstance(metadata, dict) else None
        return RemoteJob(provider=self.provider, id=job_id, state=state, total=count_of(counts.get("total")),
                         succeeded=count_of(counts.get("completed")), failed=count_of(counts.get("failed")),
                         label=label if isinstance(label, str) else None,
                         error=_batch_errors(obj.get("errors")) if state is JobState.FAILED else None, raw=obj)

    def _decode_error(self, message: str, field: str | None, body: Any) -> errors.ResponseDecodeError:
        return errors.ResponseDecodeError(f"{self.provider}: {message}", provider=self.provider, field=field, body=body)


def _batch_errors(value: Any) -> str:
    """Why a batch failed, from its `errors` list ("code: message (line n)"; at most five)."""
    data = value.get("data") if isinstance(value, dict) else None
    said: list[str] = []
    for err in data if isinstance(data, list) else []:
        if isinstance(err, Mapping):
            line = f" (line {err['line']})" if isinstance(err.get("line"), int) else ""
            said.append(f"{err.get('code') or 'error'}: {err.get('message') or ''}{line}".strip())
    more = f"; and {len(said) - 5} more" if len(said) > 5 else ""
    return "; ".join(said[:5]) + more if said else "the batch failed (OpenAI gave no reason)"


def _check_label(provider: str, label: object) -> None:
    if not isinstance(label, str) or not label or len(label) > _MAX_METADATA_VALUE:
        raise errors.InvalidRequestError(
            f"{provider}: a batch job label must be a non-empty str of at most {_MAX_METADATA_VALUE} characters "
            f"(it goes in the batch's metadata), not {label!r:.80}")
