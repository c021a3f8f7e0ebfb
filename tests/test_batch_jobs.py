"""batch.submit's orchestration (rig_sync.batch_jobs) against a BatchJobsClient double that runs
the FakeProvider's job board in process: ids, splitting, order, per-item failures, missing items,
expired/cancelled/failed jobs, the journal (resume at every point, a job downloaded once, failures
sent again), to_json/attach, Ctrl-C, timeouts, status-check failures, progress, bad arguments.
The same flows over HTTP, per provider, with SIGKILLed processes: tests/test_batch_jobs_fake.py."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlparse

import pytest

from rig_sync import batch
from rig_sync.batch_jobs import BatchJob, BatchJobInterrupted, BatchTimeout, JobNotFoundError, SubmitError
from rig_sync.client.jobs import BatchJobsClient, JobError, JobKind, JobLimits, JobState, RemoteJob
from rig_sync.completion import CompletionResponse
from rig_sync.embeddings import Embedding
from rig_sync.errors import (
    APIConnectionError,
    BadRequestError,
    InvalidRequestError,
    NotFoundError,
    RateLimitError,
    UnsupportedFeature,
)
from rig_sync.journal import JournalError
from rig_sync.providers import groq, openai
from rig_sync.testing import FakeProvider
from rig_sync.testing._jobs import Job, board_of

STATES = {"pending": JobState.PENDING, "running": JobState.RUNNING, "finalizing": JobState.RUNNING,
          "cancelling": JobState.CANCELLING, "completed": JobState.COMPLETED, "cancelled": JobState.CANCELLED,
          "expired": JobState.EXPIRED, "failed": JobState.FAILED}


class Killed(BaseException):
    """Stands for the process dying at that point (the SIGKILL tests kill real processes)."""


class Controls:
    """What a test sets and reads of the double (a client is immutable once built)."""

    def __init__(self, fake: FakeProvider) -> None:
        self.fake = fake
        self.limits = JobLimits(1000, 10_000_000)
        self.calls: Counter[str] = Counter()
        self.drop: set[str] = set()  # custom ids the results leave out
        self.extra: list[tuple[str, Any]] = []  # outcomes the results add (strangers, repeats)
        self.status_errors: list[Exception] = []  # raised by the next status checks
        self.kill_at: str | None = None  # "intent" (before creating), "create" (after), "poll"


class BoardJobs(BatchJobsClient):
    """The fake's job board as a provider's batch API, in process; counts every call."""

    job_kinds: ClassVar[tuple[JobKind, ...]] = ("completion", "embeddings")
    ctl: Controls

    def bind(self, fake: FakeProvider) -> BoardJobs:
        object.__setattr__(self, "ctl", Controls(fake))
        return self

    @property
    def fake(self) -> FakeProvider:
        return self.ctl.fake

    @property
    def calls(self) -> Counter[str]:
        return self.ctl.calls

    def _snapshot(self, job: Job) -> RemoteJob:
        failed = sum(r.outcome == "errored" for r in job.answered.values())
        return RemoteJob("double", job.id, STATES[job.phase], job.total, job.succeeded, failed, job.label,
                         job.refusal[1] if job.refusal and job.phase == "failed" else None)

    def _job(self, job_id: str) -> Job:
        job = board_of(self.fake).get("double", job_id)
        if job is None:
            raise NotFoundError(f"no job {job_id}", status_code=404, provider="double")
        return job

    def job_limits(self, kind: JobKind) -> JobLimits:
        self.calls["limits"] += 1
        return self.ctl.limits

    def create_job(self, kind: JobKind, model: str, entries: Any, *, label: str) -> RemoteJob:
        from rig_sync.testing._jobs import JobItem

        if self.ctl.kill_at == "intent":
            raise Killed
        self.calls["create"] += 1
        base = urlparse(self.fake.base_url).path
        items = [JobItem(e.custom_id, base + e.call.path, dict(e.call.body)) for e in entries]
        job = board_of(self.fake).create(self.fake, "double", items, id_prefix="job_", headers={}, label=label)
        if self.ctl.kill_at == "create":
            raise Killed
        return self._snapshot(job)

    def job(self, job_id: str) -> RemoteJob:
        self.calls["job"] += 1
        if self.ctl.kill_at == "poll":
            raise Killed
        if self.ctl.status_errors:
            raise self.ctl.status_errors.pop(0)
        board = board_of(self.fake)
        return self._snapshot(board.poll(self.fake, self._job(job_id)))

    def job_results(self, job: RemoteJob) -> Iterator[tuple[str, Any]]:
        self.calls["results"] += 1
        for r in self._job(job.id).results():
            if r.custom_id in self.ctl.drop:
                continue
            if r.outcome == "succeeded":
                yield r.custom_id, r.body
            elif r.outcome == "errored":
                yield r.custom_id, BadRequestError("item refused", status_code=r.status or 400, provider="double",
                                                   body=r.body)
            else:
                yield r.custom_id, JobError(f"item {r.outcome}", provider="double", job_id=job.id, reason=r.outcome,
                                            custom_id=r.custom_id)
        yield from self.ctl.extra

    def cancel_job(self, job_id: str) -> RemoteJob:
        self.calls["cancel"] += 1
        job = self._job(job_id)
        board_of(self.fake).cancel(job)
        return self._snapshot(job)

    def find_job(self, label: str) -> RemoteJob | None:
        self.calls["find"] += 1
        return next((self._snapshot(j) for j in board_of(self.fake).list("double") if j.label == label), None)


class DoubleClient(BoardJobs, openai.Client):
    pass


@pytest.fixture()
def fake() -> Iterator[FakeProvider]:
    with FakeProvider() as fake:
        yield fake


@pytest.fixture()
def client(fake: FakeProvider) -> DoubleClient:
    made = DoubleClient(fake.api_key, base_url=fake.base_url, max_retries=0)
    made.bind(fake)
    return made


def no_sleep(waits: list[float] | None = None) -> Any:
    def sleep(seconds: float) -> None:
        if waits is not None:
            waits.append(seconds)

    return sleep


def texts(results: list[Any]) -> list[Any]:
    return [r.text if isinstance(r, CompletionResponse) else type(r).__name__ for r in results]


# --- submit and wait ----------------------------------------------------------------------------


def test_submit_and_wait_answers_in_order_typed(fake: FakeProvider, client: DoubleClient) -> None:
    model = client.completion_model("gpt-4o-mini")
    requests: list[Any] = ["first", model.completion_request("second").preamble("Be brief"),
                           model.completion_request("third").temperature(0.5).build()]
    job = batch.submit(model, requests)
    assert isinstance(job, BatchJob) and len(job) == 3 and fake.jobs_created == 1
    (made,) = fake.batch_jobs("double")
    assert [i.custom_id for i in made.items] == ["i0", "i1", "i2"]
    # each line is the very call completion() would send
    assert made.items[1].body == dict(model.prepare(requests[1].build()).body)
    assert made.items[1].body["messages"][0] == {"role": "system", "content": "Be brief"}
    assert made.items[2].body["temperature"] == 0.5
    waits: list[float] = []
    answers = job.wait(progress=False, sleep=no_sleep(waits), poll=3)
    assert all(isinstance(a, CompletionResponse) for a in answers)
    assert texts(answers) == ["echo: first", "echo: second", "echo: third"]
    assert waits == [1.0]  # pending -> running after one poll, completed on the second
    assert client.calls["results"] == 1
    assert job.wait(sleep=no_sleep()) == answers and client.calls["results"] == 1  # downloaded once
    assert [j.state for j in job.status()] == [JobState.COMPLETED]


def test_polling_backs_off_up_to_poll(fake: FakeProvider, client: DoubleClient) -> None:
    fake.batch_polls = 7
    waits: list[float] = []
    batch.submit(client.completion_model("m"), ["a"]).wait(progress=False, sleep=no_sleep(waits), poll=5)
    assert waits == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0]


def test_empty_input_creates_no_job(fake: FakeProvider, client: DoubleClient) -> None:
    job = batch.submit(client.completion_model("m"), [])
    assert job.wait(sleep=no_sleep()) == [] and fake.jobs_created == 0 and job.job_ids == []


def test_embeddings_one_text_per_line(fake: FakeProvider, client: DoubleClient) -> None:
    from rig_sync.testing._openai import embed_text

    model = client.embedding_model("text-embedding-3-small")
    job = batch.submit(model, ["alpha", "beta"])
    (made,) = fake.batch_jobs("double")
    assert [i.body["input"] for i in made.items] == [["alpha"], ["beta"]]
    assert [i.path for i in made.items] == ["/v1/embeddings"] * 2
    vectors = job.wait(sleep=no_sleep())
    assert all(isinstance(v, Embedding) for v in vectors)
    assert [v.document for v in vectors] == ["alpha", "beta"]
    assert vectors[1].vec == pytest.approx(embed_text("beta"), abs=1e-6)
    with pytest.raises(InvalidRequestError, match="empty"):
        batch.submit(model, ["ok", ""])
    with pytest.raises(TypeError, match=r"texts\[1\] is int"):
        batch.submit(model, ["ok", 3])


# --- splitting ----------------------------------------------------------------------------------


def test_split_by_request_count(fake: FakeProvider, client: DoubleClient) -> None:
    client.ctl.limits = JobLimits(3, 10_000_000)
    job = batch.submit(client.completion_model("m"), [f"q{i}" for i in range(10)])
    sizes = sorted(j.total for j in fake.batch_jobs("double"))
    assert sizes == [1, 3, 3, 3] and len(job.job_ids) == 4
    assert texts(job.wait(sleep=no_sleep())) == [f"echo: q{i}" for i in range(10)]


def test_split_by_bytes_and_an_item_too_big(fake: FakeProvider, client: DoubleClient) -> None:
    one = 60 + 256 + len(json.dumps({"model": "m", "messages": [{"role": "user", "content": "x" * 1000}]}))
    client.ctl.limits = JobLimits(1000, int(2.5 * one))
    job = batch.submit(client.completion_model("m"), ["x" * 1000] * 5)
    assert sorted(j.total for j in fake.batch_jobs("double")) == [1, 2, 2]
    assert len(job.wait(sleep=no_sleep())) == 5
    fake.reset()
    with pytest.raises(InvalidRequestError, match=r"request 1 takes \d+ bytes encoded, more than the \d+ one"):
        batch.submit(client.completion_model("m"), ["short", "y" * 5000])
    assert fake.jobs_created == 0  # refused before anything was created


# --- failures in place ---------------------------------------------------------------------------


def test_item_failures_in_place_like_batch_map(fake: FakeProvider, client: DoubleClient) -> None:
    job = batch.submit(client.completion_model("m"), ["a", "FAIL_ITEM b", "c", "FAIL_ITEM d"])
    with pytest.raises(batch.BatchError) as info:
        job.wait(sleep=no_sleep())
    assert sorted(info.value.failures) == [1, 3]
    assert isinstance(info.value.failures[1], BadRequestError) and info.value.failures[1].status_code == 400
    assert texts([info.value.results[0], info.value.results[2]]) == ["echo: a", "echo: c"]
    assert info.value.results[1] is None
    mixed = job.wait(return_exceptions=True, sleep=no_sleep())
    assert texts(mixed) == ["echo: a", "BadRequestError", "echo: c", "BadRequestError"]


def test_an_item_missing_from_the_results_fails_never_dropped(fake: FakeProvider, client: DoubleClient) -> None:
    client.ctl.drop = {"i1"}
    client.ctl.extra = [("i99", {"not": "asked"}), ("i0", {"a": "repeat"})]  # a stranger and a repeat: ignored
    out = batch.submit(client.completion_model("m"), ["a", "b", "c"]).wait(return_exceptions=True, sleep=no_sleep())
    assert texts(out) == ["echo: a", "JobError", "echo: c"]
    assert out[1].reason == "missing" and out[1].custom_id == "i1" and "without an answer" in str(out[1])


def test_unreadable_answer_is_that_items_failure(fake: FakeProvider, client: DoubleClient) -> None:
    client.ctl.drop = {"i0"}
    client.ctl.extra = [("i0", {"choices": "not a list"})]
    out = batch.submit(client.completion_model("m"), ["a", "b"]).wait(return_exceptions=True, sleep=no_sleep())
    assert texts(out) == ["ResponseDecodeError", "echo: b"]


def test_expired_job_keeps_finished_answers(fake: FakeProvider, client: DoubleClient) -> None:
    fake.batch_polls = 4
    job = batch.submit(client.completion_model("m"), ["a", "b", "c", "d"])
    with pytest.raises(BatchTimeout):
        job.wait(timeout=0, sleep=no_sleep())  # one poll: the first item answered
    fake.expire_jobs()
    out = job.wait(return_exceptions=True, sleep=no_sleep())
    assert texts(out) == ["echo: a", "JobError", "JobError", "JobError"]
    assert {e.reason for e in out[1:]} == {"expired"} and out[1].job_id == job.job_ids[0]


def test_cancel_keeps_what_was_answered(fake: FakeProvider, client: DoubleClient) -> None:
    fake.batch_polls = 4
    job = batch.submit(client.completion_model("m"), ["a", "b", "c", "d"])
    assert [j.state for j in job.status()] == [JobState.RUNNING]  # one poll: one item answered
    assert [j.state for j in job.cancel()] == [JobState.CANCELLING]
    out = job.wait(return_exceptions=True, sleep=no_sleep())
    assert texts(out) == ["echo: a", "JobError", "JobError", "JobError"]
    assert {e.reason for e in out[1:]} == {"cancelled"}
    assert job.cancel()[0].state is JobState.CANCELLED and client.calls["cancel"] == 1  # an ended job is not asked


def test_failed_job_fails_every_item(fake: FakeProvider, client: DoubleClient) -> None:
    fake.fail_next_job("The input file is not valid.")
    out = batch.submit(client.completion_model("m"), ["a", "b"]).wait(return_exceptions=True, sleep=no_sleep())
    assert [e.reason for e in out] == ["failed", "failed"]
    assert "failed as a whole: The input file is not valid." in str(out[0])
    assert client.calls["results"] == 0  # a refused job has no results to read


# --- waiting: Ctrl-C, timeouts, status failures, progress ----------------------------------------


def interrupt_after(n: int) -> Any:
    calls = [0]

    def sleep(seconds: float) -> None:
        calls[0] += 1
        if calls[0] > n:
            raise KeyboardInterrupt

    return sleep


def test_ctrl_c_leaves_the_job_running(fake: FakeProvider, client: DoubleClient) -> None:
    fake.batch_polls = None  # only finish_jobs() ends it
    job = batch.submit(client.completion_model("m"), ["a", "b"])
    with pytest.raises(BatchJobInterrupted) as info:
        job.wait(sleep=interrupt_after(1))
    exc = info.value
    assert isinstance(exc, batch.BatchInterrupted) and isinstance(exc, KeyboardInterrupt)
    assert exc.job_ids == job.job_ids and not exc.cancelled and exc.pending == [0, 1] and exc.job is job
    assert "left running: job_" in str(exc)
    assert client.calls["cancel"] == 0 and fake.batch_jobs("double")[0].phase == "running"
    fake.finish_jobs()
    assert texts(job.wait(sleep=no_sleep())) == ["echo: a", "echo: b"]  # the same handle waits again


def test_ctrl_c_with_cancel_true_cancels(fake: FakeProvider, client: DoubleClient) -> None:
    fake.batch_polls = None
    job = batch.submit(client.completion_model("m"), ["a"])
    with pytest.raises(BatchJobInterrupted) as info:
        job.wait(sleep=interrupt_after(0), cancel=True)
    assert info.value.cancelled and "cancel asked for" in str(info.value)
    assert fake.batch_jobs("double")[0].phase == "cancelling"


def test_ctrl_c_keeps_what_finished(fake: FakeProvider, client: DoubleClient) -> None:
    client.ctl.limits = JobLimits(2, 10_000_000)
    fake.batch_polls = 1
    job = batch.submit(client.completion_model("m"), ["a", "b", "c"])
    fake.batch_jobs("double")[-1].polls_needed = None  # the first job (items 0 and 1) never ends by polling
    with pytest.raises(BatchJobInterrupted) as info:
        job.wait(sleep=interrupt_after(0))
    assert texts([info.value.results[2]]) == ["echo: c"] and info.value.pending == [0, 1]
    assert info.value.job_ids == [job.job_ids[0]]


def test_timeout(fake: FakeProvider, client: DoubleClient) -> None:
    fake.batch_polls = None
    job = batch.submit(client.completion_model("m"), ["a"])
    with pytest.raises(BatchTimeout) as info:
        job.wait(timeout=0, sleep=no_sleep())
    assert isinstance(info.value, TimeoutError) and info.value.job_ids == job.job_ids and info.value.job is job
    with pytest.raises(BatchTimeout, match="cancel asked for"):
        job.wait(timeout=0, cancel=True, sleep=no_sleep())
    assert fake.batch_jobs("double")[0].phase == "cancelling"


def test_failed_status_checks_are_waited_out(fake: FakeProvider, client: DoubleClient) -> None:
    client.ctl.status_errors = [RateLimitError("slow down", status_code=429, provider="double", retry_after=7.0),
                            APIConnectionError("reset", provider="double")]
    waits: list[float] = []
    out = batch.submit(client.completion_model("m"), ["a"]).wait(sleep=no_sleep(waits), poll=30)
    assert texts(out) == ["echo: a"] and waits[:2] == [7.0, 2.0]
    client.ctl.status_errors = [APIConnectionError("down", provider="double")] * 9
    with pytest.raises(APIConnectionError):
        batch.submit(client.completion_model("m"), ["a"]).wait(sleep=no_sleep())
    client.ctl.status_errors = [NotFoundError("gone", status_code=404, provider="double")]
    with pytest.raises(NotFoundError):  # not a passing trouble: raised at once
        batch.submit(client.completion_model("m"), ["a"]).wait(sleep=no_sleep())


class Recorder:
    def __init__(self) -> None:
        self.ok = self.failed = self.skipped = 0
        self.closed = False

    def update(self, ok: bool) -> None:
        if ok:
            self.ok += 1
        else:
            self.failed += 1

    def skip(self, n: int) -> None:
        self.skipped += n

    def close(self) -> None:
        self.closed = True


def test_progress_counts_every_item_once(fake: FakeProvider, client: DoubleClient, tmp_path: Path) -> None:
    fake.batch_polls = 4
    bar = Recorder()
    prompts = ["a", "FAIL_ITEM", "c", "d"]
    batch.submit(client.completion_model("m"), prompts).wait(progress=bar, return_exceptions=True, sleep=no_sleep())
    assert (bar.ok, bar.failed, bar.skipped, bar.closed) == (3, 1, 0, True)
    journal = tmp_path / "j.jsonl"
    batch.submit(client.completion_model("m"), ["a", "b"], journal=journal).wait(sleep=no_sleep())
    bar = Recorder()
    batch.submit(client.completion_model("m"), ["a", "b", "e"], journal=journal).wait(progress=bar, sleep=no_sleep())
    assert (bar.ok, bar.failed, bar.skipped) == (1, 0, 2)


def test_progress_clamps_a_providers_lying_counts(fake: FakeProvider, client: DoubleClient,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    def liar(self: BoardJobs, job: Job) -> RemoteJob:
        r = BoardJobs._snapshot(self, job)
        return RemoteJob(r.provider, r.id, r.state, r.total, 10**9, 10**9, r.label)

    monkeypatch.setattr(DoubleClient, "_snapshot", liar)
    bar = Recorder()
    batch.submit(client.completion_model("m"), ["a", "b"]).wait(progress=bar, sleep=no_sleep())
    assert bar.ok + bar.failed == 2


# --- the journal: resume at every point ----------------------------------------------------------


@pytest.mark.parametrize("point", ["create", "poll"])
def test_a_run_killed_after_creating_reattaches(fake: FakeProvider, client: DoubleClient, tmp_path: Path,
                                                point: str) -> None:
    journal = tmp_path / "jobs.jsonl"
    model = client.completion_model("m")
    client.ctl.kill_at = point
    with pytest.raises(Killed):
        batch.submit(model, ["a", "b"], journal=journal).wait(sleep=no_sleep())
    assert fake.jobs_created == 1
    client.ctl.kill_at = None
    again = batch.submit(model, ["a", "b"], journal=journal)
    assert fake.jobs_created == 1 and client.calls["find"] == (1 if point == "create" else 0)
    assert texts(again.wait(sleep=no_sleep())) == ["echo: a", "echo: b"]
    assert fake.jobs_created == 1


def test_a_run_killed_before_creating_is_refused_then_resubmitted(fake: FakeProvider, client: DoubleClient,
                                                                  tmp_path: Path) -> None:
    journal = tmp_path / "jobs.jsonl"
    model = client.completion_model("m")
    client.ctl.kill_at = "intent"
    with pytest.raises(Killed):
        batch.submit(model, ["a", "b"], journal=journal)
    client.ctl.kill_at = None
    with pytest.raises(JobNotFoundError) as info:
        batch.submit(model, ["a", "b"], journal=journal)
    assert "(2 items, announced" in str(info.value) and "resubmit=True" in str(info.value)
    assert info.value.labels and info.value.labels[0].startswith("rs-")
    assert fake.jobs_created == 0
    job = batch.submit(model, ["a", "b"], journal=journal, resubmit=True)
    assert fake.jobs_created == 1 and texts(job.wait(sleep=no_sleep())) == ["echo: a", "echo: b"]
    batch.submit(model, ["a", "b"], journal=journal).wait(sleep=no_sleep())  # the abandoned intent is not asked again
    assert fake.jobs_created == 1 and client.calls["find"] == 2


def test_a_finished_job_is_read_from_the_journal(fake: FakeProvider, client: DoubleClient, tmp_path: Path) -> None:
    journal = tmp_path / "jobs.jsonl"
    model = client.completion_model("m")
    first = batch.submit(model, ["a", "b", "c"], journal=journal).wait(sleep=no_sleep())
    calls = dict(client.calls)
    again = batch.submit(model, ["c", "a", "b"], journal=journal)  # moved: matched by content, not position
    assert texts(again.wait(sleep=no_sleep())) == ["echo: c", "echo: a", "echo: b"]
    assert dict(client.calls) == calls  # no status check, no download, no job
    c, a, b = again.wait(sleep=no_sleep())
    assert [a.raw_response, b.raw_response, c.raw_response] == [r.raw_response for r in first]


def test_rerun_sends_only_failed_and_new_items(fake: FakeProvider, client: DoubleClient, tmp_path: Path) -> None:
    journal = tmp_path / "jobs.jsonl"
    model = client.completion_model("m")
    out = batch.submit(model, ["a", "FAIL_ITEM", "b"], journal=journal).wait(return_exceptions=True, sleep=no_sleep())
    assert texts(out) == ["echo: a", "BadRequestError", "echo: b"]
    job = batch.submit(model, ["a", "FAIL_ITEM", "b", "new"], journal=journal)
    second = fake.batch_jobs("double")[0]
    assert fake.jobs_created == 2 and [i.body["messages"][-1]["content"] for i in second.items] == ["FAIL_ITEM", "new"]
    assert texts(job.wait(return_exceptions=True, sleep=no_sleep())) == ["echo: a", "BadRequestError", "echo: b",
                                                                          "echo: new"]


def test_a_changed_request_is_a_new_item(fake: FakeProvider, client: DoubleClient, tmp_path: Path) -> None:
    journal = tmp_path / "jobs.jsonl"
    model = client.completion_model("m")
    batch.submit(model, ["a"], journal=journal).wait(sleep=no_sleep())
    changed = model.completion_request("a").temperature(0.2)
    batch.submit(model, [changed], journal=journal).wait(sleep=no_sleep())
    assert fake.jobs_created == 2  # same prompt, other options: another request, another answer


def test_duplicates_each_get_their_own_answer(fake: FakeProvider, client: DoubleClient, tmp_path: Path) -> None:
    journal = tmp_path / "jobs.jsonl"
    model = client.completion_model("m")
    batch.submit(model, ["a", "a"], journal=journal).wait(sleep=no_sleep())
    assert fake.batch_jobs("double")[0].total == 2
    batch.submit(model, ["a", "a", "a"], journal=journal).wait(sleep=no_sleep())
    assert fake.batch_jobs("double")[0].total == 1 and fake.jobs_created == 2


def test_killed_mid_download_reads_the_rest_once(fake: FakeProvider, client: DoubleClient, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    journal = tmp_path / "jobs.jsonl"
    model = client.completion_model("m")

    def dies_after_one(self: BoardJobs, job: RemoteJob) -> Iterator[tuple[str, Any]]:
        yield next(BoardJobs.job_results(self, job))
        raise Killed

    with monkeypatch.context() as patch:
        patch.setattr(DoubleClient, "job_results", dies_after_one)
        with pytest.raises(Killed):
            batch.submit(model, ["a", "b"], journal=journal).wait(sleep=no_sleep())
    assert texts(batch.submit(model, ["a", "b"], journal=journal).wait(sleep=no_sleep())) == ["echo: a", "echo: b"]
    answers = [json.loads(line) for line in journal.read_text().splitlines() if '"answer"' in line]
    assert sorted(a["answer"] for a in answers) == ["i0", "i1"]  # none journaled twice
    assert fake.jobs_created == 1


def test_journal_of_another_model_or_of_batch_map_is_refused(fake: FakeProvider, client: DoubleClient,
                                                             tmp_path: Path) -> None:
    journal = tmp_path / "jobs.jsonl"
    batch.submit(client.completion_model("m"), ["a"], journal=journal)
    with pytest.raises(JournalError, match="holds completion jobs of openai:m, not completion jobs of openai:other"):
        batch.submit(client.completion_model("other"), ["a"], journal=journal)
    mapped = tmp_path / "map.jsonl"
    batch.map(str.upper, ["a"], journal=mapped)
    with pytest.raises(JournalError, match=r"written by batch\.map"):
        batch.submit(client.completion_model("m"), ["a"], journal=mapped)
    junk = tmp_path / "junk.jsonl"
    junk.write_text('{"batch_jobs": 1, "provider": "openai", "model": "m", "kind": "completion"}\n{"answer": 3}\n')
    with pytest.raises(JournalError, match=r"line 2 is not a batch\.submit journal entry"):
        batch.submit(client.completion_model("m"), ["a"], journal=junk)
    assert fake.jobs_created == 1


def test_a_torn_last_line_is_cut(fake: FakeProvider, client: DoubleClient, tmp_path: Path) -> None:
    journal = tmp_path / "jobs.jsonl"
    model = client.completion_model("m")
    batch.submit(model, ["a"], journal=journal).wait(sleep=no_sleep())
    with open(journal, "ab") as fh:
        fh.write(b'{"answer": "i0", "job": "x", "ok": tr')
    assert texts(batch.submit(model, ["a"], journal=journal).wait(sleep=no_sleep())) == ["echo: a"]
    assert journal.read_bytes().endswith(b"}\n") and fake.jobs_created == 1


@pytest.mark.parametrize(("limit", "created"), [(100, 0), (190, 1)])
def test_a_full_disk(fake: FakeProvider, tmp_path: Path, limit: int, created: int) -> None:
    # A child process whose files may not grow past `limit` bytes: 100 holds the header but not the
    # intent (nothing is created), 190 the intent but not the job's id (named in the error).
    code = f"""
import resource, signal, sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
from test_batch_jobs import DoubleClient
from rig_sync import batch
from rig_sync.journal import JournalError
from rig_sync.testing import FakeProvider
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
with FakeProvider() as fake:
    client = DoubleClient(fake.api_key, base_url=fake.base_url).bind(fake)
    try:
        batch.submit(client.completion_model("m"), ["a"], journal={str(tmp_path / "j.jsonl")!r})
    except JournalError as exc:
        print("refused:", exc, "| jobs created:", fake.jobs_created)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "refused: cannot write journal" in out.stdout, out.stderr
    assert out.stdout.strip().endswith(f"| jobs created: {created}")
    assert ("was created but not journaled: attach to it by its id" in out.stdout) == bool(created)


def test_a_journal_that_is_not_a_file(fake: FakeProvider, client: DoubleClient) -> None:
    with pytest.raises(JournalError, match="not a regular file"):
        batch.submit(client.completion_model("m"), ["a"], journal="/dev/zero")  # not read for ever
    assert fake.jobs_created == 0


# --- carrying a handle: to_json / attach --------------------------------------------------------


def test_to_json_and_attach(fake: FakeProvider, client: DoubleClient) -> None:
    fake.batch_polls = None
    model = client.completion_model("m")
    saved = batch.submit(model, ["a", "b"]).to_json()
    fake.finish_jobs()
    again = batch.attach(model, saved)
    assert texts(again.wait(sleep=no_sleep())) == ["echo: a", "echo: b"]
    assert texts(batch.attach(model, json.loads(saved)).wait(sleep=no_sleep())) == ["echo: a", "echo: b"]
    with pytest.raises(InvalidRequestError, match="not completion requests for openai:other"):
        batch.attach(client.completion_model("other"), saved)
    wrong_index = ('{"rig_sync": "batch_jobs", "version": 1, "provider": "openai", "model": "m", "kind": "completion", '
                   '"items": 1, "jobs": [{"id": "x", "label": "", "items": [[5, "i0"]]}]}')
    for bad in ["", "{}", wrong_index]:
        with pytest.raises(InvalidRequestError):
            batch.attach(model, bad)


def test_attach_by_job_id(fake: FakeProvider, client: DoubleClient) -> None:
    model = client.completion_model("m")
    ids = [f"q{i}" for i in range(12)]
    job_id = batch.submit(model, ids).job_ids[0]
    fake.finish_jobs()
    job = batch.attach(model, job_id)
    assert texts(job.wait(sleep=no_sleep())) == [f"echo: {i}" for i in ids]  # i2 before i10
    assert len(job) == 12 and batch.attach(model, job.to_json()).wait(sleep=no_sleep())[11].text == "echo: q11"


def test_attach_with_a_journal_reads_it(fake: FakeProvider, client: DoubleClient, tmp_path: Path) -> None:
    model = client.completion_model("m")
    job = batch.submit(model, ["a", "FAIL_ITEM"], journal=tmp_path / "j.jsonl")
    job.wait(return_exceptions=True, sleep=no_sleep())
    calls = dict(client.calls)
    out = batch.attach(model, job.to_json()).wait(return_exceptions=True, sleep=no_sleep())
    assert texts(out) == ["echo: a", "JobError"] and "BadRequestError" in str(out[1])
    assert dict(client.calls) == calls


# --- what submit refuses --------------------------------------------------------------------------


def test_providers_without_batch_jobs_name_batch_map(fake: FakeProvider) -> None:
    model = groq.Client(fake.api_key, base_url=fake.base_url).completion_model("llama")
    with pytest.raises(UnsupportedFeature, match=r"groq offers no batch API.*batch\.map"):
        batch.submit(model, ["a"])
    responses = DoubleClient(fake.api_key, base_url=fake.base_url).responses_model("gpt-4o")
    with pytest.raises(UnsupportedFeature, match="ResponsesModel requests cannot go in"):
        batch.submit(responses, ["a"])
    assert fake.request_count == 0 and fake.jobs_created == 0


def test_bad_arguments(fake: FakeProvider, client: DoubleClient) -> None:
    model = client.completion_model("m")
    with pytest.raises(TypeError, match="wrap one in a list"):
        batch.submit(model, "a prompt")
    with pytest.raises(InvalidRequestError, match="request 1: "):
        batch.submit(model, ["ok", ""])
    with pytest.raises(TypeError, match=r"not generator \(make it a list\)"):
        batch.submit(model, (p for p in ["a"]))  # type: ignore[arg-type]
    with pytest.raises(InvalidRequestError, match="request 1 cannot be sent as JSON"):
        batch.submit(model, ["fine", "half an emoji \ud83d"])
    with pytest.raises(TypeError, match="resubmit"):
        batch.submit(model, ["a"], resubmit="yes")  # type: ignore[arg-type]
    job = batch.submit(model, ["a"])
    for poll in (0, -1, math.nan, math.inf, "5"):
        with pytest.raises((InvalidRequestError, TypeError)):
            job.wait(poll=poll, sleep=no_sleep())  # type: ignore[arg-type]
    with pytest.raises(InvalidRequestError):
        job.wait(timeout=-1, sleep=no_sleep())
    assert fake.jobs_created == 1


def test_a_create_failure_after_other_jobs_carries_them(fake: FakeProvider, client: DoubleClient,
                                                        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    client.ctl.limits = JobLimits(1, 10_000_000)

    def second_fails(self: BoardJobs, kind: JobKind, model: str, entries: Any, *, label: str) -> RemoteJob:
        if self.calls["create"] == 1:
            self.calls["create"] += 1
            raise BadRequestError("file too large", status_code=400, provider="double")
        return BoardJobs.create_job(self, kind, model, entries, label=label)

    monkeypatch.setattr(DoubleClient, "create_job", second_fails)
    journal = tmp_path / "j.jsonl"
    with pytest.raises(SubmitError) as info:
        batch.submit(client.completion_model("m"), ["a", "b", "c"], journal=journal)
    assert "creating job 2 of 3 failed" in str(info.value) and isinstance(info.value.__cause__, BadRequestError)
    out = info.value.job.wait(sleep=no_sleep(), return_exceptions=True)
    assert texts(out) == ["echo: a", "JobError", "JobError"] and "not sent: creating its job failed" in str(out[1])
    assert out[2].error is info.value.__cause__
    # The refused job was never created: a rerun sends b and c without asking resubmit=True.
    out = batch.submit(client.completion_model("m"), ["a", "b", "c"], journal=journal).wait(sleep=no_sleep())
    assert texts(out) == ["echo: a", "echo: b", "echo: c"] and fake.jobs_created == 3


def test_importing_batch_does_not_import_batch_jobs() -> None:
    code = ("import sys, rig_sync.batch as b; assert 'rig_sync.batch_jobs' not in sys.modules; "
            "assert b.submit.__module__ == 'rig_sync.batch_jobs'; assert b.BatchJob is not None")
    subprocess.run([sys.executable, "-c", code], check=True)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        batch.nope  # noqa: B018

