"""The fake's batch jobs, shared by every provider's batch routes (``_openai_batch``,
``_anthropic_batch``, ``_gemini_batch``): one :class:`JobBoard` per fake (``FakeState.jobs``),
holding :class:`Job` s keyed by id, each with its :class:`JobItem` s.

A job is answered by the fake itself: every item goes through the very route a synchronous call
would (``answer_item``: ``/v1/chat/completions``, ``/v1/messages``, ``...:generateContent``), so a
batch answer is what the endpoint answers; an item whose body holds ``FAIL_ITEM`` gets a 400 in
the route's own error shape instead.

States advance by status polls, never by the clock, so tests are deterministic:

* ``FakeProvider(batch_polls=N)`` (default 2; also ``fake.batch_polls = N`` for jobs created
  later): a job is ``pending`` until its first poll, then ``running`` (answering items a share at a
  time, so counts grow), ``finalizing`` on poll N-1 (when N >= 3, every item answered) and
  ``completed`` on poll N. ``0``: completed when created; ``None``: only ``finish_jobs()`` ends it.
* ``fake.finish_jobs()`` ends every open job now (completed; cancelling ones cancelled; refused
  ones failed); ``fake.expire_jobs()`` expires every open job (answered items kept, the rest
  ``expired``); ``fake.fail_next_job(message, code)`` makes the next job created fail validation at
  its first poll (no answers).
* cancel: ``cancelling`` until the next poll (or ``finish_jobs()``), then ``cancelled``; items
  answered before it are kept, the rest ``cancelled``.
* ``fake.jobs_created`` counts jobs created (a test of resume asserts no second job);
  ``fake.batch_jobs(provider)`` lists them.

A provider's routes map the neutral states to their own words, keep their own fields in
``Job.meta`` and render ``Job.results()`` in their own result format. ``JobBoard.files`` is a small
store for uploaded and produced files (OpenAI's Files API; anything else that needs one).
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from ._dialect import ApiError, JSONDict, dumps
from ._routes import Call, find_route, requested_model
from ._values import RecordedRequest

if TYPE_CHECKING:
    from ._server import FakeProvider
    from ._state import FakeState

__all__ = ["FAIL_MARKER", "ItemResult", "Job", "JobBoard", "JobControls", "JobItem", "JobPhase", "Outcome",
           "StoredFile", "answer_item", "board_of"]

# An item whose request body contains this text is answered with a 400 (partial failures).
FAIL_MARKER = "FAIL_ITEM"

JobPhase = Literal["pending", "running", "finalizing", "cancelling", "completed", "cancelled", "expired", "failed"]
Outcome = Literal["succeeded", "errored", "cancelled", "expired"]
ENDED: frozenset[str] = frozenset({"completed", "cancelled", "expired", "failed"})


@dataclass(frozen=True)
class JobItem:
    """One request of a job: its ``custom_id``, the fake's own route it goes to (POST ``path``,
    e.g. ``/v1/chat/completions``) and its JSON ``body``."""

    custom_id: str
    path: str
    body: JSONDict


@dataclass(frozen=True)
class ItemResult:
    """An item's outcome: ``status`` and ``body`` are what the endpoint answered (success or error
    body); both None for an item ``cancelled`` or ``expired`` before it was answered."""

    custom_id: str
    outcome: Outcome
    status: int | None = None
    body: Any = None
    request_id: str = ""


@dataclass
class Job:
    """One job. Read it under no lock only through ``JobBoard`` snapshots (``get``/``list``).

    ``meta`` holds the provider's own fields (endpoint, metadata, display name, file ids ...);
    ``times`` the unix time each phase began (``created``, ``running``, ``finalizing``,
    ``cancelling``, ``completed``, ``cancelled``, ``expired``, ``failed``).
    """

    provider: str
    id: str
    seq: int
    items: tuple[JobItem, ...]
    headers: dict[str, str]  # the creating request's, given to each item's route
    label: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    phase: JobPhase = "pending"
    polls: int = 0
    polls_needed: int | None = 2
    refusal: tuple[str, str] | None = None  # (code, message): fails at its first advance
    answered: dict[str, ItemResult] = field(default_factory=dict)
    times: dict[str, int] = field(default_factory=dict)

    @property
    def ended(self) -> bool:
        return self.phase in ENDED

    @property
    def error(self) -> tuple[str, str] | None:
        """(code, message) of a failed job."""
        return self.refusal if self.phase == "failed" else None

    @property
    def total(self) -> int:
        return len(self.items)

    @property
    def succeeded(self) -> int:
        return sum(r.outcome == "succeeded" for r in self.answered.values())

    @property
    def errored(self) -> int:
        return sum(r.outcome == "errored" for r in self.answered.values())

    def results(self) -> list[ItemResult]:
        """Every item's result in item order: answered ones, then (for an ended job) the rest as
        ``expired`` or ``cancelled``; an open job gives only the answered ones. A failed job has
        none."""
        if self.phase == "failed":
            return []
        out: list[ItemResult] = []
        rest: Outcome | None = "expired" if self.phase == "expired" else "cancelled" if self.ended else None
        for item in self.items:
            got = self.answered.get(item.custom_id)
            if got is not None:
                out.append(got)
            elif rest is not None:
                out.append(ItemResult(item.custom_id, rest))
        return out


@dataclass(frozen=True)
class StoredFile:
    """A file the fake holds: uploaded (``data``) or produced by a job (``job_id`` and ``role``,
    e.g. ``"output"``/``"error"``, rendered by the route from the job's results when read)."""

    provider: str
    id: str
    purpose: str
    filename: str
    created_at: int
    data: bytes = b""
    job_id: str | None = None
    role: str | None = None


def answer_item(fake: FakeProvider, item: JobItem, headers: Mapping[str, str], request_id: str,
                seq: int = 0) -> ItemResult:
    """What the fake's own route for ``item.path`` answers ``item.body`` (as POSTed with
    ``headers``): a scripted reply if one waits for that path, the model check of
    ``FakeProvider(models=...)``, the route's errors in its own shape; ``FAIL_ITEM`` in the body
    gives a 400. A streaming answer is refused (a batch item cannot stream). ``seq`` numbers the
    answer's ids (``chatcmpl-<seq>``, ``msg_<seq>``) as a request's sequence number does."""
    found = find_route("POST", item.path)
    if found is None:
        return ItemResult(item.custom_id, "errored", 404, {"error": {
            "message": f"Invalid URL (POST {item.path})", "type": "invalid_request_error", "code": "not_found"}},
            request_id)
    rt, match = found
    raw = dumps(item.body)
    req = RecordedRequest(method="POST", path=item.path, headers=dict(headers), body=raw, json=item.body,
                          request_id=request_id)
    try:
        if FAIL_MARKER.encode() in raw:
            raise ApiError(400, f"This item asked to fail ({FAIL_MARKER} in its request).", code="fail_item")
        model = requested_model(req, match)
        if fake.models is not None and model is not None and model not in fake.models:
            raise rt.dialect.unknown_model(model, req)
        reply = board_of(fake).state.take_reply(item.path, rt.conversational)
        if reply is not None and reply.kind == "json":
            body = reply.body
            if isinstance(body, (bytes, str)):
                body = json.loads(body)
            return _result(item.custom_id, reply.status, body, request_id)
        resp = rt.handler(Call(request=req, match=match, reply=reply, seq=seq, provider=fake))
    except ApiError as err:
        return _result(item.custom_id, err.status,
                       rt.dialect.error_body(err.status, err.message, err.type, err.code, err.param), request_id)
    if resp.events is not None:
        return _result(item.custom_id, 400, rt.dialect.error_body(
            400, "Streaming is not supported in batch requests.", "invalid_request_error", None, "stream"),
            request_id)
    return _result(item.custom_id, resp.status, json.loads(resp.body) if resp.body else None, request_id)


def _result(custom_id: str, status: int, body: Any, request_id: str) -> ItemResult:
    return ItemResult(custom_id, "succeeded" if 200 <= status < 300 else "errored", status, body, request_id)


class JobBoard:
    """Every job and file of one fake, behind its own lock (answering an item takes the state's
    lock for scripted replies, never the other way round)."""

    def __init__(self, state: FakeState) -> None:
        self.state = state
        self.lock = threading.RLock()
        self.jobs: dict[str, Job] = {}
        self.files: dict[str, StoredFile] = {}
        self.polls: int | None = 2
        self.created = 0
        self._next_refusal: tuple[str, str] | None = None
        self._seq = itertools.count(1)
        self._item_seq = itertools.count(1_000_001)  # answer ids apart from those of plain requests

    def clear(self) -> None:
        with self.lock:
            self.jobs.clear()
            self.files.clear()
            self.created = 0
            self._next_refusal = None

    # -- creating and reading ----------------------------------------------------------------

    def create(self, fake: FakeProvider, provider: str, items: Iterable[JobItem], *, id_prefix: str,
               headers: Mapping[str, str], label: str | None = None, meta: Mapping[str, Any] | None = None,
               refusal: tuple[str, str] | None = None) -> Job:
        """A new job of ``items`` for ``provider`` (the routes' tag, e.g. ``"openai"``), its id
        ``id_prefix`` + 24 hex digits; with ``batch_polls=0`` it is completed at once. ``refusal``
        (code, message): the route found the input bad, so the job fails at its first poll, as
        ``fail_next_job`` makes the next one do."""
        with self.lock:
            seq = next(self._seq)
            job = Job(provider=provider, id=f"{id_prefix}{uuid.uuid4().hex[:24]}", seq=seq, items=tuple(items),
                      headers=dict(headers), label=label, meta=dict(meta or {}), polls_needed=self.polls,
                      refusal=refusal or self._next_refusal, times={"created": int(time.time())})
            self._next_refusal = None
            self.jobs[job.id] = job
            self.created += 1
            if job.polls_needed == 0 and job.refusal is None:
                self._complete(fake, job)
            return job

    def get(self, provider: str, job_id: str) -> Job | None:
        """The job ``job_id`` of ``provider``, or None."""
        with self.lock:
            job = self.jobs.get(job_id)
            return job if job is not None and job.provider == provider else None

    def list(self, provider: str) -> list[Job]:
        """``provider``'s jobs, newest first."""
        with self.lock:
            return sorted((j for j in self.jobs.values() if j.provider == provider), key=lambda j: -j.seq)

    # -- advancing ---------------------------------------------------------------------------

    def poll(self, fake: FakeProvider, job: Job) -> Job:
        """Count one status read of ``job`` and advance it (see the module's docstring)."""
        with self.lock:
            if job.ended:
                return job
            job.polls += 1
            if job.refusal is not None:
                self._enter(job, "failed")
            elif job.phase == "cancelling":
                self._enter(job, "cancelled")
            elif job.polls_needed is None:
                self._enter(job, "running")
            elif job.polls >= job.polls_needed:
                self._complete(fake, job)
            elif job.polls == job.polls_needed - 1 and job.polls_needed >= 3:
                self._answer(fake, job, job.total)
                self._enter(job, "finalizing")
            else:
                self._answer(fake, job, job.total * job.polls // job.polls_needed)
                self._enter(job, "running")
            return job

    def cancel(self, job: Job) -> bool:
        """Ask ``job`` to stop: ``cancelling`` until its next poll. False if it has ended."""
        with self.lock:
            if job.ended:
                return False
            if job.phase != "cancelling":
                self._enter(job, "cancelling")
            return True

    def finish_all(self, fake: FakeProvider) -> int:
        """End every open job now; how many were ended."""
        with self.lock:
            open_jobs = [j for j in self.jobs.values() if not j.ended]
            for job in open_jobs:
                if job.refusal is not None:
                    self._enter(job, "failed")
                elif job.phase == "cancelling":
                    self._enter(job, "cancelled")
                else:
                    self._complete(fake, job)
            return len(open_jobs)

    def expire_all(self) -> int:
        """Expire every open job (answers so far kept); how many."""
        with self.lock:
            open_jobs = [j for j in self.jobs.values() if not j.ended]
            for job in open_jobs:
                self._enter(job, "expired")
            return len(open_jobs)

    def fail_next(self, code: str, message: str) -> None:
        with self.lock:
            self._next_refusal = (code, message)

    # -- files -------------------------------------------------------------------------------

    def put_file(self, provider: str, *, purpose: str, filename: str, data: bytes = b"", job_id: str | None = None,
                 role: str | None = None, id_prefix: str = "file-") -> StoredFile:
        with self.lock:
            f = StoredFile(provider, f"{id_prefix}{uuid.uuid4().hex[:24]}", purpose, filename, int(time.time()),
                           data, job_id, role)
            self.files[f.id] = f
            return f

    def file(self, provider: str, file_id: str) -> StoredFile | None:
        with self.lock:
            f = self.files.get(file_id)
            return f if f is not None and f.provider == provider else None

    # -- internals ---------------------------------------------------------------------------

    def _enter(self, job: Job, phase: JobPhase) -> None:
        if job.phase != phase:
            job.phase = phase
            job.times.setdefault(phase, int(time.time()))

    def _answer(self, fake: FakeProvider, job: Job, upto: int) -> None:
        """Answer the first ``upto`` items (those not answered yet)."""
        for n, item in enumerate(job.items[:upto], 1):
            if item.custom_id not in job.answered:
                job.answered[item.custom_id] = answer_item(fake, item, job.headers, f"req_{job.seq}_{n}",
                                                           next(self._item_seq))

    def _complete(self, fake: FakeProvider, job: Job) -> None:
        self._enter(job, "running")
        self._answer(fake, job, job.total)
        self._enter(job, "completed")


def board_of(fake: FakeProvider) -> JobBoard:
    """The job board of ``fake`` (what a batch route uses: ``board_of(call.provider)``)."""
    return fake._state.jobs


class JobControls:
    """The batch-job knobs of :class:`~rig_sync.testing.FakeProvider` (see this module's
    docstring for the states)."""

    _state: FakeState

    @property
    def batch_polls(self) -> int | None:
        """Status polls a job created from now on takes to complete (0: at once; None: only
        :meth:`finish_jobs` ends it)."""
        return self._state.jobs.polls

    @batch_polls.setter
    def batch_polls(self, value: int | None) -> None:
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise ValueError(f"batch_polls must be a whole number >= 0 or None, not {value!r}")
        self._state.jobs.polls = value

    @property
    def jobs_created(self) -> int:
        """How many batch jobs were created (every provider)."""
        with self._state.jobs.lock:
            return self._state.jobs.created

    def batch_jobs(self, provider: str | None = None) -> list[Job]:
        """The jobs (of ``provider``: ``"openai"``, ``"anthropic"``, ``"gemini"``), newest first."""
        board = self._state.jobs
        with board.lock:
            jobs = list(board.jobs.values()) if provider is None else board.list(provider)
            return sorted(jobs, key=lambda j: -j.seq)

    def finish_jobs(self) -> int:
        """End every open job now (completed, or cancelled/failed as they were headed); how many."""
        return self._state.jobs.finish_all(self._fake())

    def expire_jobs(self) -> int:
        """Expire every open job: items answered so far are kept, the rest are expired."""
        return self._state.jobs.expire_all()

    def fail_next_job(self, message: str = "The input file is not valid.", code: str = "invalid_request") -> None:
        """Make the next job created fail validation at its first poll (no item answered)."""
        self._state.jobs.fail_next(code, message)

    def _fake(self) -> FakeProvider:
        from ._server import FakeProvider

        assert isinstance(self, FakeProvider)
        return self
