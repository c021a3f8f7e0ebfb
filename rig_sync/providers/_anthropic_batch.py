"""Anthropic's Message Batches behind `rig_sync.batch.submit`: the `batch_jobs` capability of
`anthropic.Client` (`AnthropicBatchJobs`, a mixin in its bases).

    POST /v1/messages/batches              {"requests": [{"custom_id", "params": <a /v1/messages body>}]}
    GET  /v1/messages/batches/{id}         processing_status in_progress / canceling / ended, request_counts
    GET  <results_url>                     JSON lines {"custom_id", "result": {"type": succeeded | errored |
                                           canceled | expired, "message" | "error"}}, streamed, in no set order
    POST /v1/messages/batches/{id}/cancel
    GET  /v1/messages/batches?limit=…      newest first (find_job)

The results are read from the batch's `results_url` only where it is on the client's own origin
(the API key goes nowhere else); a `results_url` elsewhere — a proxy or gateway in front of the
API still hands out Anthropic's own URL — is not followed: the documented results path is read
from the configured base URL instead.

A batch keeps no label, so `find_job(label)` reads the two facts a `job_label` carries (when the
intent was noted, how many items) and matches listed batches created from then on (within 15
minutes) with that many requests. More than one candidate is ambiguous: None, with the candidates
logged. A batch another run of the same size created in those minutes is indistinguishable from
this run's own: the label narrows the risk, it cannot rule it out.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

from ..client.capabilities import BatchJobsClient, _unix_seconds
from ..errors import InvalidRequestError, ResponseDecodeError
from ._job_results import (
    BATCH_JOBS,
    NOT_JSON,
    Attribution,
    check_entries,
    count_of,
    encode,
    item_error,
    job_path,
    json_lines,
    mapping,
    text_of,
)

if TYPE_CHECKING:
    from ..client.jobs import JobEntry, JobKind, JobOutcome, RemoteJob
    from ..http import Transport

__all__ = ["AnthropicBatchJobs", "ERROR_STATUS", "MAX_REQUESTS", "MAX_BYTES"]

log = logging.getLogger("rig_sync.batch_jobs")

PATH = "/v1/messages/batches"
_MESSAGES = "/v1/messages"  # the one endpoint a batch request may stand for
_CUSTOM_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_CUSTOM_ID_RULE = "1 to 64 letters, digits, '_' or '-' (Anthropic's rule)"

# The HTTP status each error type of Anthropic's stands for (its errors page): an errored item
# carries the type only, and becomes the error class a request on its own would have raised.
ERROR_STATUS = {
    "invalid_request_error": 400, "authentication_error": 401, "billing_error": 402, "permission_error": 403,
    "not_found_error": 404, "request_too_large": 413, "rate_limit_error": 429, "api_error": 500,
    "timeout_error": 504, "overloaded_error": 529,
}

_SKEW = 300  # seconds a batch's created_at may come before the intent's time (clocks differ)
_WINDOW = 900  # and after it (sending 256 MB takes minutes); wider would take in more strangers
_PAGES = 10  # pages of 100 batches find_job reads at most


# Per batch. Anthropic's guide says 100,000 requests or 256 MB; its API reference (some languages)
# says 1-10,000 requests. The lower is kept: a larger input only becomes more batches.
MAX_REQUESTS, MAX_BYTES = 10_000, 256 * 10**6


class AnthropicBatchJobs(BatchJobsClient):
    """Message Batches for `anthropic.Client`: completion jobs of `/v1/messages` calls."""

    provider: ClassVar[str]
    transport: Transport

    max_job_requests: ClassVar[int] = MAX_REQUESTS
    max_job_bytes: ClassVar[int] = MAX_BYTES

    def create_job(self, kind: JobKind, model: str, entries: Sequence[JobEntry], *, label: str) -> RemoteJob:
        limits = self.job_limits(kind)
        check_entries(entries, limits, self.provider, custom_id=_CUSTOM_ID, rule=_CUSTOM_ID_RULE)
        requests = [{"custom_id": e.custom_id, "params": _params(e, model, self.provider)} for e in entries]
        data = encode({"requests": requests}, limits, self.provider)
        answer = self.transport.request("POST", PATH, data=data, headers={"Content-Type": "application/json"},
                                        model=model, capability=BATCH_JOBS).json()
        return _remote(answer, self.provider, label)

    def job(self, job_id: str) -> RemoteJob:
        return _remote(self._get(f"{PATH}/{job_path(job_id, self.provider)}"), self.provider)

    def cancel_job(self, job_id: str) -> RemoteJob:
        path = f"{PATH}/{job_path(job_id, self.provider)}/cancel"
        return _remote(self.transport.request("POST", path, capability=BATCH_JOBS).json(), self.provider)

    def job_results(self, job: RemoteJob) -> Iterator[JobOutcome]:
        """Every item's outcome, streamed from the results file: an answer (the message), an
        `APIStatusError` (errored, the class its error type stands for), or a `JobError`
        ("cancelled", "expired")."""
        job_path(job.id, self.provider)
        if not job.state.ended:
            raise InvalidRequestError(f"{self.provider} batch {job.id} is {job.state}: its results come once it "
                                      "has ended (poll it with job(id))")
        http = self.transport.stream("GET", self._results_url(job), capability=BATCH_JOBS)
        taken = Attribution(self.provider, job.id)
        for line in json_lines(http, self.provider):
            where = f"results line {line.number}"
            record = mapping(line.value)
            if line.value is NOT_JSON or not record:
                taken.ignore(where, f"not a JSON object: {line.text[:120]!r}")
            elif taken.take(record.get("custom_id"), where):
                yield record["custom_id"], self._outcome(record.get("result"), record["custom_id"], job.id)
        taken.summary()

    def find_job(self, label: str) -> RemoteJob | None:
        from ..client.jobs import label_facts

        facts = label_facts(label)
        if facts is None:  # a label of another form says nothing a batch could be matched by
            log.info("%s keeps no label with a batch, and %r is no job_label: find_job cannot match it",
                     self.provider, label)
            return None
        since, count = facts
        found: list[RemoteJob] = []
        after: str | None = None
        for _ in range(_PAGES):
            page = self._get(PATH, {"limit": "100", **({"after_id": after} if after else {})})
            batches = page.get("data") if isinstance(page, Mapping) else None
            if not isinstance(batches, list):
                raise ResponseDecodeError(f"{self.provider} answered its batch list without a list of 'data'",
                                          provider=self.provider, field="data", body=page)
            older = False
            for raw in batches:
                created = _unix_seconds(mapping(raw).get("created_at"))
                if created is None:
                    continue
                older = older or created < since - _SKEW
                if since - _SKEW <= created <= since + _WINDOW:
                    job = _remote(raw, self.provider)
                    if job.total == count:
                        found.append(job)
            after = text_of(page.get("last_id"))
            if older or page.get("has_more") is not True or after is None:
                break  # newest first: the rest were created before the intent
        if len(found) > 1:
            log.warning("%s: %d batches could be the one labelled %s (%s); none is taken for it", self.provider,
                        len(found), label, ", ".join(j.id for j in found))
            return None
        return attrs.evolve(found[0], label=label) if found else None

    # --- helpers --------------------------------------------------------------------------------

    def _get(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        return self.transport.request("GET", path, params=params, capability=BATCH_JOBS).json()

    def _results_url(self, job: RemoteJob) -> str:
        """The batch's `results_url` where it is on the client's own origin, else the documented path."""
        from ..http._urls import origin_of, shown_url

        url = text_of(job.raw.get("results_url"))
        documented = f"{PATH}/{job.id}/results"
        if url is None:
            return documented
        try:
            same = origin_of(url) == origin_of(self.transport.base_url) and url.startswith(("http://", "https://"))
        except ValueError:  # a port out of range
            same = False
        if not same:
            log.warning("%s batch %s: its results_url %s is not on the client's origin; reading %s from the base "
                        "URL instead (the API key is sent to the base URL only)", self.provider, job.id,
                        shown_url(url)[:200], documented)
            return documented
        return url

    def _outcome(self, result: Any, custom_id: str, job_id: str) -> Any:
        from ..client.jobs import JobError

        result = mapping(result)
        kind = result.get("type")
        if kind == "succeeded" and isinstance(result.get("message"), Mapping):
            return result["message"]
        if kind == "errored":
            return self._item_error(result.get("error"))
        if kind in ("canceled", "expired"):
            reason = "cancelled" if kind == "canceled" else "expired"
            return JobError(f"{self.provider} batch {job_id}: request {custom_id} was {reason} before it was "
                            "answered", provider=self.provider, job_id=job_id, reason=reason, custom_id=custom_id)
        bad = ResponseDecodeError(f"{self.provider} batch {job_id}: request {custom_id} has a result rig_sync cannot "
                                  f"read (type {kind!r})", provider=self.provider, body=dict(result))
        return JobError(str(bad), provider=self.provider, job_id=job_id, reason="errored", error=bad,
                        custom_id=custom_id)

    def _item_error(self, error: Any) -> Any:
        """An errored item's error — `{"type": "error", "error": {"type", "message"}}` (or the inner
        object alone) — as the `APIStatusError` its type stands for."""
        body = mapping(error)
        inner = mapping(body.get("error")) if isinstance(body.get("error"), Mapping) else body
        status = ERROR_STATUS.get(str(inner.get("type")), 500)  # an unknown type: Anthropic's own api_error
        wrapped = body if "error" in body else {"type": "error", "error": dict(inner)}
        return item_error(self, status, wrapped, text_of(body.get("request_id")))


def _params(entry: JobEntry, model: str, provider: str) -> Mapping[str, Any]:
    """The `/v1/messages` body of one item, checked: the right endpoint and model, no streaming."""
    path, body = entry.call.path, entry.call.body
    if path != _MESSAGES:
        raise InvalidRequestError(f"{provider}: a message batch holds /v1/messages requests, not {path!r} "
                                  f"(item {entry.custom_id})")
    if not isinstance(body, Mapping):
        raise InvalidRequestError(f"{provider}: item {entry.custom_id}'s request is not a JSON object")
    if body.get("stream"):
        raise InvalidRequestError(f"{provider}: item {entry.custom_id} asks to stream; a batch answers whole")
    if body.get("model") != model:
        raise InvalidRequestError(f"{provider}: item {entry.custom_id} is for model {body.get('model')!r}, the job "
                                  f"for {model!r}; one job holds one model's requests")
    return body


_STATES = {"in_progress": "running", "canceling": "cancelling"}


def _remote(data: Any, provider: str, label: str | None = None) -> RemoteJob:
    """A `message_batch` object as a `RemoteJob`; `ResponseDecodeError` when it is not one."""
    from ..client.jobs import JobState, RemoteJob

    record = mapping(data)
    job_id, status = text_of(record.get("id")), record.get("processing_status")
    if job_id is None or not isinstance(status, str):
        raise ResponseDecodeError(f"{provider} answered with something other than a message batch (no id or "
                                  f"processing_status): {str(data)[:200]}", provider=provider, body=data)
    counts = mapping(record.get("request_counts"))
    numbers = {k: count_of(counts.get(k)) for k in ("processing", "succeeded", "errored", "canceled", "expired")}
    if status == "ended":
        state = (JobState.CANCELLED if text_of(record.get("cancel_initiated_at"))
                 else JobState.EXPIRED if (numbers["expired"] or 0) > 0 else JobState.COMPLETED)
    elif status in _STATES:
        state = JobState(_STATES[status])
    else:
        raise ResponseDecodeError(f"{provider} batch {job_id} has a processing_status rig_sync does not know: "
                                  f"{status!r} (known: in_progress, canceling, ended)", provider=provider,
                                  field="processing_status", body=data)
    known = [n for n in numbers.values() if n is not None]
    unanswered = [numbers[k] for k in ("errored", "canceled", "expired")]
    return RemoteJob(
        provider=provider, id=job_id, state=state,
        total=sum(known) if len(known) == len(numbers) else None,
        succeeded=numbers["succeeded"],
        failed=sum(n for n in unanswered if n is not None) if any(n is not None for n in unanswered) else None,
        label=label, raw=dict(record))
