"""The providers' own batch APIs — OpenAI's Batch API, Anthropic's Message Batches, Gemini's batch
mode — behind one synchronous interface: about half the price of `batch.map`, answers within 24
hours, far higher rate limits.

    from rig_sync import batch
    job = batch.submit(model, prompts, journal="nightly.jobs")   # uploads and creates the job(s)
    answers = job.wait(progress=True)                            # CompletionResponses, in input order

* `submit(model, requests)` takes what `batch.map` would send: `CompletionRequest`s, request
  builders or prompts for a completion model, texts for an (OpenAI) embedding model. Every item is
  prepared exactly as `model.completion()` would send it (`model.prepare`), given a custom id
  (`i0`, `i1`, … within its job) and put in a job; more than a provider's per-job limits
  (requests, encoded bytes) become several jobs. Texts go one per job line: OpenAI counts
  embedding inputs, not lines, against a job's limit, so packing texts into lines would fit no
  more in a job, and would let one bad text fail its neighbours.
* `BatchJob.wait()` polls with backoff (1 s doubling up to `poll`; a 429 or an outage on a status
  call is waited out, `Retry-After` honoured) and returns the results in input order, typed as
  `model.completion()` returns them (`Embedding`s for texts). Failures stay in place exactly as
  `batch.map` keeps them: `BatchError` carries every result and every failure, or with
  `return_exceptions=True` the exception stands in the item's place. An item a job did not
  answer (it expired, was cancelled, or the whole job failed) fails with `JobError`; an item
  missing from a job's results is a `JobError` too, never dropped.
* `journal=path` makes the whole thing resumable. Before a job is created the journal gets its
  intent (a label, the items' fingerprints), after it the job's id, and when it ends every
  item's answer body. Run the same `submit` again after a crash, a SIGKILL or Ctrl-C and it
  reattaches: a journaled job id is polled again, an intent without an id is looked up by its
  label (`client.find_job`) and, if the provider lists no such job, refused with
  `JobNotFoundError` unless `resubmit=True`; answers already journaled are read from the journal,
  not downloaded again; items whose answer failed are sent again in a new job. An item is matched
  by its fingerprint (provider, kind, and the exact call: model, messages, options), never by
  position.
* Ctrl-C while waiting leaves the jobs running (they are the provider's now), unless
  `wait(cancel=True)`, and raises `BatchJobInterrupted` (a `BatchInterrupted`) holding what
  finished and the job ids to reattach to. `handle.cancel()` stops them later; answers made
  before the cancel are kept.
* `handle.to_json()` and `attach(model, saved)` carry a handle across processes; `attach(model,
  "batch_abc")` reattaches to a job known only by its id (its items in custom-id order).

Providers without a batch API raise `UnsupportedFeature` naming `batch.map`.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections import defaultdict, deque
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from . import _json
from ._checks import number
from ._job_journal import Answer, JobJournal, custom_id, error_record, restore_error
from .batch import BatchError, BatchInterrupted
from .client.jobs import BatchJobsClient, JobEntry, JobError, JobKind, JobState, Prepared, RemoteJob, job_label
from .errors import (
    APIConnectionError,
    APIStatusError,
    InternalServerError,
    InvalidRequestError,
    RateLimitError,
    RequestCancelledError,
    RigError,
    UnsupportedFeature,
)
from .journal import JournalError, fingerprint
from .progress import Progress, make_progress

if TYPE_CHECKING:
    from .embeddings import Embedding

__all__ = ["submit", "attach", "BatchJob", "BatchJobInterrupted", "BatchTimeout", "JobNotFoundError", "SubmitError",
           "jobs_client"]

log = logging.getLogger("rig_sync.batch")

FIRST_POLL = 1.0  # seconds before the second status check; doubled up to `poll`
ENTRY_OVERHEAD = 256  # bytes a provider's request line adds around a body (custom id, method, url, keys)
BYTES_MARGIN = 0.98  # of a job's byte limit: the adapter's encoding may differ from ours by a little
MAX_STATUS_FAILURES = 8  # status checks in a row that may fail (after the transport's retries) before wait gives up
MAX_PAUSE = 600.0  # the longest a provider's Retry-After may hold the polling back


# --- errors --------------------------------------------------------------------------------------


class JobNotFoundError(RigError):
    """A run died after announcing a job (its intent is in the journal) and before writing down the
    job's id, and the provider lists no job that is certainly it. `labels` names the intents."""

    def __init__(self, message: str, labels: list[str]) -> None:
        super().__init__(message)
        self.labels = labels


class SubmitError(RigError):
    """Creating a job failed after other jobs of the same submit were created. `job` holds those
    (wait for them or cancel them); the failure is the `__cause__`."""

    def __init__(self, message: str, job: BatchJob) -> None:
        super().__init__(message)
        self.job = job


class BatchTimeout(RigError, TimeoutError):
    """`wait(timeout=…)` ran out with jobs still running (left running unless `cancel=True`);
    `job` is the handle to wait on again, `job_ids` the jobs not done."""

    def __init__(self, message: str, job: BatchJob, job_ids: list[str]) -> None:
        super().__init__(message)
        self.job = job
        self.job_ids = job_ids


class BatchJobInterrupted(BatchInterrupted[Any]):
    """Ctrl-C while waiting: `results`/`failures` hold what finished, `pending` the items not
    done, `job_ids` the jobs not done (left running unless `cancelled`), `job` the handle to wait
    on again (or `attach` to `job.to_json()` in another process)."""

    def __init__(self, results: list[Any], failures: dict[int, BaseException], pending: list[int], *,
                 job: BatchJob, job_ids: list[str], cancelled: bool) -> None:
        self.job = job
        self.job_ids = job_ids
        self.cancelled = cancelled
        super().__init__(results, failures, pending)
        what = "cancel asked for" if cancelled else "left running"
        self.args = (f"{self.args[0]}; jobs {what}: {', '.join(job_ids) or 'none'} (wait again, or attach to "
                     "job.to_json(), or submit again with the same journal)",)


# --- what a batch is made of ---------------------------------------------------------------------


@attrs.define(eq=False)
class _Part:
    """One provider job of a handle: its items (custom ids in order, their fingerprints) and which
    input index each wanted item stands for (a resumed job may hold items no longer asked for)."""

    label: str
    job_id: str
    cids: list[str] | None  # None: a job attached by id, its items learnt from its results
    prints: list[str]
    slots: dict[str, int] = attrs.field(factory=dict)
    remote: RemoteJob | None = None
    fetched: bool = False  # every wanted answer is in hand
    shown: list[int] = attrs.field(factory=lambda: [0, 0])  # succeeded, failed: drawn on the progress bar


def jobs_client(model: Any) -> BatchJobsClient:
    """`model`'s client, if its provider runs batch jobs; `UnsupportedFeature` naming `batch.map` if not."""
    client = getattr(model, "client", None)
    if not isinstance(client, BatchJobsClient):
        provider = getattr(model, "provider", type(model).__name__)
        raise UnsupportedFeature(
            f"{provider} offers no batch API that rig_sync can use (column B of `python -m rig_sync providers`): "
            "send the requests with rig_sync.batch.map (full price, answers in seconds)")
    return client


def _capable(model: Any) -> tuple[JobKind, BatchJobsClient]:
    """What kind of job `model`'s items make, and its client (which must run batch jobs)."""
    client = jobs_client(model)
    provider = model.provider
    kind: JobKind
    if callable(getattr(model, "prepare", None)):
        kind = "completion"
    elif callable(getattr(model, "prepare_embeddings", None)):
        kind = "embeddings"
    else:
        raise UnsupportedFeature(f"{type(model).__name__} requests cannot go in {provider}'s batch jobs; use the "
                                 "client's completion_model(...) (or embedding_model), or rig_sync.batch.map")
    client.check_job_kind(kind)
    return kind, client


def _prepare(model: Any, kind: JobKind, requests: Sequence[Any]) -> list[Prepared]:
    if isinstance(requests, (str, bytes)) or not isinstance(requests, Sequence):
        hint = "; wrap one in a list" if isinstance(requests, (str, bytes)) else " (make it a list)"
        raise TypeError(f"submit takes a list of requests, not {type(requests).__name__}{hint}")
    if kind == "embeddings":
        from .embeddings import check_texts

        return [model.prepare_embeddings([text]) for text in check_texts(requests)]
    from .completion import CompletionRequest, CompletionRequestBuilder

    calls = []
    for i, item in enumerate(requests):
        try:
            if isinstance(item, CompletionRequestBuilder):
                item = item.build()
            elif not isinstance(item, CompletionRequest):
                item = model.completion_request(item).build()  # a prompt, a message, a conversation
            calls.append(model.prepare(item))
        except InvalidRequestError as exc:
            raise type(exc)(f"request {i}: {exc}") from exc
    return calls


def _item_print(provider: str, kind: str, call: Prepared, index: int) -> str:
    try:
        return fingerprint([provider, kind, call.path, call.body])
    except TypeError as exc:
        raise InvalidRequestError(f"request {index}'s body holds a {exc}, which is not JSON and cannot be "
                                  "sent in a batch job") from None


def _parser(model: Any, kind: JobKind) -> Callable[[Any, str], Any]:
    """How `model` reads an answer body (the same for each of its requests)."""
    if kind == "embeddings":
        parse: Callable[[Any, str], Any] = model.prepare_embeddings(["-"]).parse
    else:
        parse = model.prepare(model.completion_request("-").build()).parse
    return parse


def _split(provider: str, calls: Sequence[Prepared], todo: list[int], max_requests: int,
           max_bytes: int) -> list[list[int]]:
    """`todo` in order, cut into jobs of at most `max_requests` items and `max_bytes` encoded."""
    budget = max(1, int(max_bytes * BYTES_MARGIN))
    chunks: list[list[int]] = []
    current: list[int] = []
    size = 0
    for i in todo:
        try:
            encoded = len(_json.dumps(calls[i].body))
        except (TypeError, ValueError) as exc:  # a lone surrogate ("\ud83d") among them: UTF-8 cannot carry it
            raise InvalidRequestError(f"request {i} cannot be sent as JSON ({type(exc).__name__}: "
                                      f"{str(exc)[:200]})") from None
        cost = encoded + len(calls[i].path) + len(custom_id(len(current))) + ENTRY_OVERHEAD
        if cost > budget:
            raise InvalidRequestError(f"request {i} takes {cost} bytes encoded, more than the {budget} one "
                                      f"{provider} batch job may hold; shorten it, or send it with batch.map")
        if current and (len(current) >= max_requests or size + cost > budget):
            chunks.append(current)
            current, size = [], 0
        current.append(i)
        size += cost
    if current:
        chunks.append(current)
    return chunks


# --- submit --------------------------------------------------------------------------------------


def submit(model: Any, requests: Sequence[Any], *, journal: str | os.PathLike[str] | None = None,
           resubmit: bool = False) -> BatchJob:
    """Send `requests` as the provider's batch job(s); returns the `BatchJob` to wait on.

    `model` is a completion model of a client with batch jobs (OpenAI, Anthropic, Gemini), or an
    OpenAI embedding model (then `requests` are texts). `requests`: `CompletionRequest`s, request
    builders, or prompts (`model.completion_request(p)`). `journal=path` makes it resumable (see
    the module docstring); `resubmit=True` sends again the items of a job announced in the journal that the
    provider cannot find.

    Raises before creating anything: `UnsupportedFeature` (no batch API: use `batch.map`),
    `TypeError`/`InvalidRequestError` for a bad request (naming its index) or one larger than a
    job may hold, `JournalError` for a journal of another model, `JobNotFoundError`. If creating a
    job fails after others were created, `SubmitError` carries those."""
    kind, client = _capable(model)
    if not isinstance(resubmit, bool):
        raise TypeError(f"resubmit must be True or False, not {resubmit!r:.40}")
    calls = _prepare(model, kind, requests)
    provider = model.provider
    prints = [_item_print(provider, kind, call, i) for i, call in enumerate(calls)]
    documents = list(requests) if kind == "embeddings" else None
    book = JobJournal(journal) if journal is not None else None
    try:
        parts: list[_Part] = []
        outcomes: dict[int, tuple[bool, Any]] = {}
        todo = list(range(len(calls)))
        if book is not None:
            book.begin(provider, model.model, kind)
            parts, outcomes, todo = _resume(book, client, provider, prints, resubmit)
        chunks: list[list[int]] = []
        if todo:
            limits = client.job_limits(kind)
            chunks = _split(provider, calls, todo, limits.max_requests, limits.max_bytes)

        def handle() -> BatchJob:
            return BatchJob(model, kind, len(calls), parts, journal=book, outcomes=outcomes,
                            documents=documents)

        for n, chunk in enumerate(chunks):
            try:
                parts.append(_create(client, model.model, kind, calls, prints, chunk, book))
            except (RigError, OSError) as exc:
                if not parts and not outcomes:
                    raise
                for i in (i for rest in chunks[n:] for i in rest):  # never dropped: failed in place
                    outcomes[i] = False, JobError(f"not sent: creating its job failed ({type(exc).__name__}: {exc})",
                                                  provider=provider, job_id="", reason="failed", error=exc)
                created = ", ".join(p.job_id for p in parts) or "no job"
                raise SubmitError(f"creating job {n + 1} of {len(chunks)} failed ({type(exc).__name__}: {exc}) "
                                  f"after {created} were created: wait for them with .job.wait(), or submit again "
                                  "with the same journal to send the rest", handle()) from exc
        return handle()
    finally:
        if book is not None:
            book.close()


def _create(client: BatchJobsClient, model: str, kind: JobKind, calls: Sequence[Prepared], prints: list[str],
            chunk: list[int], book: JobJournal | None) -> _Part:
    """One job of the items `chunk`: announced in the journal, created, its id journaled."""
    at = time.time()
    # The job's own label (when, how many, random): find_job never mistakes another run's job for it,
    # and where a provider keeps no label (Anthropic) the time and count still single it out.
    label = job_label(len(chunk), at=at)
    cids = [custom_id(k) for k in range(len(chunk))]
    items = [prints[i] for i in chunk]
    if book is not None:
        book.intend(label, items, at)
    try:
        remote = client.create_job(kind, model,
                                   [JobEntry(cid, calls[i]) for cid, i in zip(cids, chunk, strict=True)], label=label)
    except APIStatusError:
        if book is not None:  # refused outright: nothing was created, a rerun need not look for it
            book.abandon(label)
        raise
    part = _Part(label, remote.id, cids, items, dict(zip(cids, chunk, strict=True)), remote=remote)
    if book is not None:
        try:
            book.created(label, remote.id)
        except JournalError as exc:
            raise JournalError(f"{exc}; job {remote.id} was created but not journaled: attach to it by its id "
                               "(batch.attach(model, job_id)) or cancel it") from exc
    return part


def _resume(book: JobJournal, client: BatchJobsClient, provider: str, prints: list[str],
            resubmit: bool) -> tuple[list[_Part], dict[int, tuple[bool, Any]], list[int]]:
    """The journal's jobs that hold these items, the answers it already holds, and the items no job
    holds (to send). A job announced without an id is looked up by its label."""
    parts: list[_Part] = []
    lost = []
    for intent in list(book.intents.values()):
        if intent.abandoned:
            continue
        if intent.job_id is None:
            found = client.find_job(intent.label)
            if found is None:
                lost.append(intent)
                continue
            book.created(intent.label, found.id)
        assert intent.job_id is not None
        parts.append(_Part(intent.label, intent.job_id, [custom_id(k) for k in range(len(intent.items))],
                           intent.items))
    if lost and not resubmit:
        when = ", ".join(f"{i.label} ({len(i.items)} items, announced "
                         f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(i.at))})" for i in lost)
        raise JobNotFoundError(
            f"journal {book.path!r} announced jobs whose ids were never written down (the run stopped between "
            f"announcing and creating them): {when}, and {provider} lists no job that is certainly it (none of "
            "that label, or, where batches keep no label, none or several of that size created then: the log names "
            "them). It was most likely never created; check the provider's console for a job created then, and "
            "submit again with resubmit=True to send those items again (paying twice if the job did exist)",
            [i.label for i in lost])
    for intent in lost:
        book.abandon(intent.label)
    answered: dict[str, deque[tuple[_Part, str, Any]]] = defaultdict(deque)
    running: dict[str, deque[tuple[_Part, str]]] = defaultdict(deque)
    for part in parts:
        answers = book.answers.get(part.job_id, {})
        ended = part.job_id in book.ended
        for cid, item in zip(part.cids or (), part.prints, strict=True):
            answer = answers.get(cid)
            if answer is not None and answer.ok:
                answered[item].append((part, cid, answer.value))
            elif not ended:  # a failure in an ended job is sent again, in a new job
                running[item].append((part, cid))
    outcomes: dict[int, tuple[bool, Any]] = {}
    todo = []
    for i, item in enumerate(prints):
        if answered[item]:
            part, cid, body = answered[item].popleft()
            part.slots[cid] = i
            outcomes[i] = True, body
        elif running[item]:
            part, cid = running[item].popleft()
            part.slots[cid] = i
        else:
            todo.append(i)
    used = [part for part in parts if part.slots]
    for part in used:
        part.fetched = all(i in outcomes for i in part.slots.values())
    return used, outcomes, todo


# --- attach --------------------------------------------------------------------------------------


def attach(model: Any, saved: str | Mapping[str, Any]) -> BatchJob:
    """The `BatchJob` that `saved` describes: `handle.to_json()` (the text or its parsed dict), or a
    job id alone (its items are then learnt from its results, in custom-id order). `model` must be
    the one the job was submitted with. `InvalidRequestError` for anything else."""
    kind, _ = _capable(model)
    if isinstance(saved, str) and not saved.lstrip().startswith("{"):
        if not saved.strip() or not saved.isprintable():
            raise InvalidRequestError(f"attach takes handle.to_json() or a job id, not {saved!r:.60}")
        return BatchJob(model, kind, None, [_Part("", saved.strip(), None, [])], journal=None,
                        outcomes={}, documents=None)
    data = _saved(saved)
    mine = {"provider": model.provider, "model": model.model, "kind": kind}
    theirs = {k: data.get(k) for k in mine}
    if theirs != mine:
        raise InvalidRequestError(f"this job holds {theirs['kind']} requests for "
                                  f"{theirs['provider']}:{theirs['model']}, not {kind} requests for "
                                  f"{model.provider}:{model.model}; attach it with that model")
    try:
        n = data["items"]
        parts = [_saved_part(job, n) for job in data["jobs"]]
        if n is None and [p.cids for p in parts] != [None]:  # only a job attached by id has no count yet
            raise ValueError
        documents = data.get("documents")
        if kind == "embeddings" and n is not None and (not isinstance(documents, list) or len(documents) != n):
            raise ValueError
        path = data.get("journal")
        book = JobJournal(path) if isinstance(path, str) and os.path.exists(path) else None
    except (KeyError, TypeError, ValueError, InvalidRequestError):
        raise InvalidRequestError("attach takes what handle.to_json() gave (or a job id); this is not it") from None
    slots = [i for part in parts for i in part.slots.values()]
    if len(set(slots)) != len(slots):
        raise InvalidRequestError("attach takes what handle.to_json() gave: this one gives an item to two jobs")
    outcomes: dict[int, tuple[bool, Any]] = {}
    if book is not None:
        book.begin(model.provider, model.model, kind)
        for part in parts:
            answers = book.answers.get(part.job_id, {})
            for cid, i in part.slots.items():
                answer = answers.get(cid)
                if answer is not None:
                    outcomes[i] = (True, answer.value) if answer.ok else \
                        (False, restore_error(answer.value, provider=model.provider, job_id=part.job_id, custom_id=cid))
            part.fetched = part.job_id in book.ended and all(i in outcomes for i in part.slots.values())
        book.close()
    return BatchJob(model, kind, n, parts, journal=book, outcomes=outcomes, documents=documents)


def _saved(saved: str | Mapping[str, Any]) -> Mapping[str, Any]:
    data: Any = saved
    if isinstance(saved, str):
        try:
            data = _json.loads(saved)
        except _json.JSONDecodeError:
            data = None
    if not isinstance(data, Mapping) or data.get("rig_sync") != "batch_jobs" or data.get("version") != 1:
        raise InvalidRequestError("attach takes what handle.to_json() gave (or a job id); this is not it")
    return data


def _saved_part(job: Any, n: Any) -> _Part:
    job_id, label, items = job["id"], job["label"], job["items"]
    if not isinstance(job_id, str) or not job_id or not isinstance(label, str):
        raise ValueError
    if items is None:
        return _Part(label, job_id, None, [])
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError
    cids = []
    slots = {}
    for entry in items:
        index, cid = entry
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < n or not isinstance(cid, str):
            raise ValueError
        cids.append(cid)
        slots[cid] = index
    return _Part(label, job_id, cids, [""] * len(cids), slots)


# --- the handle ----------------------------------------------------------------------------------


def _nap(seconds: float) -> None:
    """The wait between status checks (a test passes `wait(sleep=…)` instead)."""
    time.sleep(seconds)


def _natural(cid: str) -> tuple[Any, ...]:
    """`i2` before `i10`: custom ids in the order they were given."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", cid))


class BatchJob:
    """Requests sent as provider batch jobs: `status()`, `wait()`, `cancel()`, `to_json()`. Made by
    `submit` or `attach`; see the module docstring."""

    def __init__(self, model: Any, kind: JobKind, n: int | None, parts: list[_Part], *,
                 journal: JobJournal | None, outcomes: dict[int, tuple[bool, Any]],
                 documents: list[str] | None) -> None:
        self.model = model
        self.kind = kind
        self._client: BatchJobsClient = model.client
        self._parse = _parser(model, kind)
        self._n = n
        self._parts = parts
        self._journal = journal
        self._outcomes = dict(outcomes)
        self._documents = documents

    @property
    def provider(self) -> str:
        return str(self.model.provider)

    @property
    def job_ids(self) -> list[str]:
        """The provider's ids of the jobs this handle waits on (or read its answers from)."""
        return [part.job_id for part in self._parts]

    @property
    def custom_ids(self) -> list[str | None]:
        """Each item's custom id in its job, in input order (a job attached by id: once it has ended)."""
        ids: list[str | None] = [None] * (self._n or 0)
        for part in self._parts:
            for cid, i in part.slots.items():
                ids[i] = cid
        return ids

    def __len__(self) -> int:
        return self._n if self._n is not None else 0

    def status(self) -> list[RemoteJob]:
        """Each job as the provider sees it now (one status call per job not yet ended)."""
        return [self._refresh(part) for part in self._parts]

    def cancel(self) -> list[RemoteJob]:
        """Ask the provider to stop every job not yet ended; answers already made are kept, and
        `wait()` then returns them, the other items failing with `JobError` ("cancelled")."""
        out = []
        for part in self._parts:
            if part.fetched or (part.remote is not None and part.remote.state.ended):
                out.append(part.remote or self._refresh(part))
                continue
            part.remote = self._client.cancel_job(part.job_id)
            out.append(part.remote)
        return out

    def wait(self, *, progress: bool | Progress | None = None, poll: float = 30.0, timeout: float | None = None,
             cancel: bool = False, return_exceptions: bool = False,
             sleep: Callable[[float], object] | None = None) -> list[Any]:
        """Wait for every job to end, then return the results in input order.

        Polls each job not ended (1 s, then doubling up to `poll` seconds between checks); a
        failed status check (429, 5xx, a dropped connection, after the transport's own retries)
        is waited out, its `Retry-After` honoured. `progress`: as for `batch.map` (the provider's
        counts while a job runs). `timeout` seconds: `BatchTimeout` if the jobs are not done by
        then. Ctrl-C: `BatchJobInterrupted`. Either way the jobs are left running, unless
        `cancel=True`. Failed items: `BatchError`, or in place with `return_exceptions=True`.
        `sleep(seconds)` waits between checks (`time.sleep`; a test passes its own)."""
        poll = number(poll, "poll", above=0)
        deadline = None if timeout is None else time.monotonic() + number(timeout, "timeout", at_least=0)
        if not isinstance(cancel, bool):
            raise TypeError(f"cancel must be True or False, not {cancel!r:.40}")
        nap = sleep if sleep is not None else _nap
        if any(not part.fetched for part in self._parts):
            self._poll(make_progress(progress, self._n), poll, deadline, cancel, nap)
        return self._results(return_exceptions)

    def _poll(self, bar: Progress, poll: float, deadline: float | None, cancel: bool,
              nap: Callable[[float], object]) -> None:
        bar.skip(len(self._outcomes))
        interval = min(FIRST_POLL, poll)
        failures = 0
        try:
            while True:
                pause = interval
                try:
                    for part in [p for p in self._parts if not p.fetched]:
                        remote = self._refresh(part)
                        self._show(bar, part, remote)
                        if remote.state.ended:
                            self._fetch(part, remote, bar)
                    failures = 0
                except (RateLimitError, InternalServerError, APIConnectionError) as exc:
                    if isinstance(exc, RequestCancelledError) or failures >= MAX_STATUS_FAILURES:
                        raise
                    failures += 1
                    retry_after = exc.retry_after if isinstance(exc, APIStatusError) else None
                    pause = min(max(interval, retry_after or 0.0), MAX_PAUSE)
                    log.warning("batch job status check failed (%s); trying again in %.0f s", exc, pause)
                if all(part.fetched for part in self._parts):
                    return
                if deadline is not None and time.monotonic() + pause > deadline:
                    raise self._timed_out(cancel)
                nap(pause)
                interval = min(interval * 2, poll)
        except KeyboardInterrupt:
            raise self._interrupted(cancel) from None
        finally:
            bar.close()
            if self._journal is not None:
                self._journal.close()

    def _refresh(self, part: _Part) -> RemoteJob:
        if part.remote is None or not part.remote.state.ended:
            part.remote = self._client.job(part.job_id)
        return part.remote

    def _show(self, bar: Progress, part: _Part, remote: RemoteJob) -> None:
        """Draw the provider's counts of a running job (never more than the items this handle wants)."""
        wanted = len(part.slots) if part.cids is not None else (remote.total or 0)
        ok = min(max(remote.succeeded or 0, part.shown[0]), wanted)
        failed = min(max(remote.failed or 0, part.shown[1]), wanted - ok)
        for _ in range(ok - part.shown[0]):
            bar.update(True)
        for _ in range(failed - part.shown[1]):
            bar.update(False)
        part.shown[:] = [ok, failed]

    def _fetch(self, part: _Part, remote: RemoteJob, bar: Progress) -> None:
        """Read an ended job's answers (once), journal them, and put the wanted ones in place."""
        got: dict[str, Any] = {}
        known = None if part.cids is None else set(part.cids)
        if remote.state is not JobState.FAILED:
            for cid, outcome in self._client.job_results(remote):
                if (known is None or cid in known) and cid not in got:  # a stranger or a repeat is ignored
                    got[cid] = outcome
        if part.cids is None:  # attached by id: the items are whatever the job answered
            part.cids = sorted(got, key=_natural)
            part.prints = [""] * len(part.cids)
            part.slots = {cid: k for k, cid in enumerate(part.cids)}
            self._n = len(part.cids)
        kept = self._journal.answers.get(part.job_id, {}) if self._journal is not None else {}
        fresh: list[tuple[str, Answer]] = []
        for cid, item in zip(part.cids, part.prints, strict=True):
            value = got[cid] if cid in got else self._missing(part, remote, cid)
            ok = not isinstance(value, BaseException)
            if self._journal is not None and cid not in kept:
                fresh.append((cid, Answer(item, ok, value if ok else error_record(value))))
            if cid in part.slots:
                self._outcomes[part.slots[cid]] = ok, value
        if self._journal is not None:
            self._journal.record(part.job_id, fresh)
            self._journal.end(part.job_id, remote.state.value)
        part.fetched = True
        oks = sum(self._outcomes[i][0] for i in part.slots.values())
        for ok, total in ((True, oks), (False, len(part.slots) - oks)):
            shown = part.shown[0 if ok else 1]
            for _ in range(total - min(shown, total)):
                bar.update(ok)

    def _missing(self, part: _Part, remote: RemoteJob, cid: str) -> JobError:
        state = remote.state
        if state is JobState.FAILED:
            why, reason = f"failed as a whole: {remote.error or 'no reason given'}", "failed"
        elif state in (JobState.EXPIRED, JobState.CANCELLED):
            why, reason = f"was {state.value} before answering it", state.value
        else:
            why, reason = f"ended {state.value} without an answer for it", "missing"
        return JobError(f"{self.provider} job {part.job_id} {why} (item {cid})", provider=self.provider,
                        job_id=part.job_id, reason=reason, custom_id=cid)

    def _read(self, index: int, body: Any) -> Any:
        if self.kind == "completion":
            return self._parse(body, self.provider)
        from .embeddings import Embedding

        vectors = self._parse(body, self.provider)
        if len(vectors) != 1:
            from .errors import ResponseDecodeError

            raise ResponseDecodeError(f"{self.provider} answered one text with {len(vectors)} vectors",
                                      provider=self.provider, field="data", body=body)
        document = self._documents[index] if self._documents is not None else ""
        found: Embedding = Embedding(document, vectors[0])
        return found

    def _collect(self) -> tuple[list[Any], dict[int, BaseException], list[int]]:
        n = self._n or 0
        results: list[Any] = [None] * n
        failures: dict[int, BaseException] = {}
        pending = []
        for i in range(n):
            if i not in self._outcomes:
                pending.append(i)
                continue
            ok, value = self._outcomes[i]
            if ok:
                try:
                    results[i] = self._read(i, value)
                except Exception as exc:  # noqa: BLE001 - an unreadable answer is that item's failure
                    failures[i] = exc
            else:
                failures[i] = value
        return results, failures, pending

    def _results(self, return_exceptions: bool) -> list[Any]:
        results, failures, _ = self._collect()
        if return_exceptions:
            return [failures.get(i, r) for i, r in enumerate(results)]
        if failures:
            raise BatchError(results, failures)
        return results

    def _open_ids(self) -> list[str]:
        return [part.job_id for part in self._parts if not part.fetched]

    def _cancel_open(self) -> bool:
        try:
            self.cancel()
            return True
        except RigError as exc:  # reported; the jobs' ids are in the error raised
            log.error("could not cancel batch jobs %s: %s", ", ".join(self._open_ids()), exc)
            return False

    def _timed_out(self, cancel: bool) -> BatchTimeout:
        cancelled = cancel and self._cancel_open()
        ids = self._open_ids()
        what = "cancel asked for" if cancelled else "left running"
        return BatchTimeout(f"batch jobs not done in time: {', '.join(ids)} ({what}); wait again for the rest",
                            self, ids)

    def _interrupted(self, cancel: bool) -> BatchJobInterrupted:
        cancelled = cancel and self._cancel_open()
        results, failures, pending = self._collect()
        return BatchJobInterrupted(results, failures, pending, job=self, job_ids=self._open_ids(),
                                   cancelled=cancelled)

    def to_json(self) -> str:
        """The handle as JSON text, for `attach(model, text)` in another process."""
        data: dict[str, Any] = {
            "rig_sync": "batch_jobs", "version": 1, "provider": self.provider, "model": self.model.model,
            "kind": self.kind, "items": self._n,
            "journal": os.path.abspath(self._journal.path) if self._journal is not None else None,
            "jobs": [{"id": p.job_id, "label": p.label,
                      "items": None if p.cids is None else [[i, cid] for cid, i in p.slots.items()]}
                     for p in self._parts]}
        if self._documents is not None:
            data["documents"] = self._documents
        return _json.dumps_file(data).decode("utf-8")

    def __repr__(self) -> str:
        return (f"BatchJob(provider={self.provider!r}, model={self.model.model!r}, items={self._n}, "
                f"jobs={self.job_ids!r})")

