"""What a provider's own batch API (OpenAI's Batch API, Anthropic's Message Batches, Gemini's
batch mode) offers `rig_sync.batch.submit`: the `batch_jobs` capability.

The split of work:

* A model turns one request into a `Prepared` call — the path and body it would POST, and how to
  read the answer — with `prepare(request)` (completion models) or `prepare_embeddings(texts)`
  (embedding models). `completion()` sends the same call, so a batch line is exactly the request
  the model would have sent on its own.
* A client with the capability (`BatchJobsClient`) turns prepared calls into the provider's job:
  `create_job` (upload, create), `job` (poll), `job_results` (download), `cancel_job`, `find_job`
  (a job created by a run that died before it could note the id), and `job_limits`.
* `rig_sync.batch.submit` does everything else, once for every provider: ids per item, splitting
  by the limits, the journal, polling with backoff, reading answers with the prepared `parse`,
  results in input order, cancellation.

A job carries a `label` of rig_sync's (in OpenAI's metadata, Gemini's display name, and — as
Anthropic's batches hold neither — in each item's custom id), so a run that died between creating
a job and writing its id down finds the job instead of paying for it again.
"""

from __future__ import annotations

import enum
import re
import secrets
import time
from collections.abc import Mapping
from typing import Any, Literal

import attrs

from ..errors import RigError
from .capabilities import BatchJobsClient, Prepared  # defined with the other mixins: a chat call needs no job types

__all__ = ["JobKind", "JobState", "JobLimits", "Prepared", "JobEntry", "RemoteJob", "JobOutcome",
           "BatchJobsClient", "JobError", "job_label", "label_facts"]

JobKind = Literal["completion", "embeddings"]


class JobState(str, enum.Enum):
    """A job's state, the same words for every provider (each adapter maps its own)."""

    PENDING = "pending"  # accepted: validating, queued (OpenAI validating, Gemini PENDING)
    RUNNING = "running"  # answering (OpenAI in_progress / finalizing, Anthropic in_progress)
    CANCELLING = "cancelling"  # asked to stop; answers so far are kept
    COMPLETED = "completed"  # ended with answers (some items may still have failed)
    CANCELLED = "cancelled"  # ended by a cancel; finished items' answers are kept
    EXPIRED = "expired"  # ended by the provider's deadline (24 h); finished items' answers are kept
    FAILED = "failed"  # the whole job was refused (e.g. a bad input file); no answers

    @property
    def ended(self) -> bool:
        return self in (JobState.COMPLETED, JobState.CANCELLED, JobState.EXPIRED, JobState.FAILED)

    def __str__(self) -> str:
        return str(self.value)


@attrs.frozen
class JobLimits:
    """The most one job may hold: requests, and bytes of the encoded input (file or body)."""

    max_requests: int
    max_bytes: int


@attrs.frozen
class JobEntry:
    """One item of a job: rig_sync's id for it (unique in the job) and its prepared call."""

    custom_id: str
    call: Prepared


@attrs.frozen
class RemoteJob:
    """A provider's job as last seen. Counts are None where the provider does not say them."""

    provider: str
    id: str
    state: JobState
    total: int | None = None
    succeeded: int | None = None
    failed: int | None = None
    label: str | None = None
    error: str | None = None  # why a FAILED job failed, as the provider says it
    raw: Mapping[str, Any] = attrs.field(factory=dict, eq=False, repr=False)


class JobError(RigError):
    """An item a job did not answer: `reason` is "errored", "expired", "cancelled", "failed" (the
    whole job was refused) or "missing" (a finished job's results leave it out); `error` the
    provider's error for the item where it gave one (an `APIStatusError` with its status, code and
    body), `job_id` the job it was in."""

    def __init__(self, message: str, *, provider: str, job_id: str, reason: str, error: BaseException | None = None,
                 custom_id: str | None = None) -> None:
        super().__init__(message)
        self.provider, self.job_id, self.reason, self.error, self.custom_id = provider, job_id, reason, error, custom_id


# (custom_id, the provider's answer body for that item — what the endpoint would have answered —
#  or the error that stands in its place: an APIStatusError, or a JobError for expired/cancelled).
JobOutcome = tuple[str, Any]


_LABEL = re.compile(r"rs-(\d{10})-(\d{1,9})-[0-9a-f]{8}")


def job_label(count: int, *, at: float | None = None) -> str:
    """A new job's label, `rs-<unix seconds>-<items>-<8 random hex digits>`: when the intent to
    create it was noted (`at`, default now) and how many items it holds. Anthropic's batches keep
    no label, so its `find_job` matches a listed batch by these two facts (created at or after
    that time, the same count). Letters, digits and `-` only: a safe custom-id prefix anywhere."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"a job holds at least one item, not {count!r}")
    return f"rs-{int(time.time() if at is None else at):010d}-{count}-{secrets.token_hex(4)}"


def label_facts(label: str) -> tuple[int, int] | None:
    """(unix seconds, item count) of a `job_label`, or None for a label of another form."""
    found = _LABEL.fullmatch(label) if isinstance(label, str) else None
    return (int(found.group(1)), int(found.group(2))) if found else None
