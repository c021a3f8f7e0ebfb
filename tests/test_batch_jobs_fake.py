"""batch.submit end to end over HTTP against the FakeProvider's batch endpoints, the same cases for
OpenAI (/v1/files + /v1/batches), Anthropic (/v1/messages/batches) and Gemini (batchGenerateContent):
submit and wait, per-item errors, splitting, cancellation, expired and failed jobs, a finished job
downloaded once, and resume after a process is killed with SIGKILL after announcing a job, after
creating it and while waiting — the rerun never creates a second job."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rig_sync import batch
from rig_sync.batch_jobs import BatchJobInterrupted, JobNotFoundError
from rig_sync.client.jobs import JobLimits, JobState
from rig_sync.completion import CompletionResponse
from rig_sync.errors import BadRequestError
from rig_sync.providers import anthropic, gemini, openai
from rig_sync.testing import FakeProvider

# provider: (client class, the fake's path for its base URL, a model)
PROVIDERS: dict[str, tuple[Any, str, str]] = {"openai": (openai.Client, "/v1", "gpt-4o-mini"),
             "anthropic": (anthropic.Client, "", "claude-3-7-sonnet-latest"),
             "gemini": (gemini.Client, "", "gemini-2.0-flash")}


@pytest.fixture()
def fake() -> Iterator[FakeProvider]:
    with FakeProvider() as fake:
        yield fake


@pytest.fixture(params=list(PROVIDERS))
def provider(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


def chat(fake: FakeProvider, provider: str) -> Any:
    cls, path, model = PROVIDERS[provider]
    return cls(fake.api_key, base_url=fake.url + path, max_retries=0).completion_model(model)


def no_sleep(seconds: float) -> None:
    pass


def texts(results: list[Any]) -> list[str]:
    return [r.text if isinstance(r, CompletionResponse) else type(r).__name__ for r in results]


def batch_paths(fake: FakeProvider) -> list[str]:
    """The requests the batch APIs were sent (no plain chat call is ever made)."""
    return [f"{r.method} {r.path}" for r in fake.requests]


def test_submit_wait_and_item_errors(fake: FakeProvider, provider: str) -> None:
    model = chat(fake, provider)
    job = batch.submit(model, ["first", "FAIL_ITEM second", model.completion_request("third").preamble("Be brief")])
    assert fake.jobs_created == 1 and len(fake.batch_jobs(provider)) == 1
    with pytest.raises(batch.BatchError) as info:
        job.wait(sleep=no_sleep)
    assert texts(info.value.results) == ["echo: first", "NoneType", "echo: third"]
    assert list(info.value.failures) == [1] and isinstance(info.value.failures[1], BadRequestError)
    assert info.value.failures[1].status_code == 400
    assert [j.state for j in job.status()] == [JobState.COMPLETED]
    assert not any("/chat/completions" in p or p.endswith("/v1/messages") or p.endswith(":generateContent")
                   for p in batch_paths(fake))  # everything went through the batch API


def test_split_into_several_jobs(fake: FakeProvider, provider: str, monkeypatch: pytest.MonkeyPatch) -> None:
    model = chat(fake, provider)
    monkeypatch.setattr(type(model.client), "job_limits", lambda self, kind: JobLimits(2, 10**6))
    job = batch.submit(model, [f"q{i}" for i in range(5)])
    assert fake.jobs_created == 3 and sorted(j.total for j in fake.batch_jobs(provider)) == [1, 2, 2]
    assert texts(job.wait(sleep=no_sleep)) == [f"echo: q{i}" for i in range(5)]


def test_cancel_keeps_answers_made(fake: FakeProvider, provider: str) -> None:
    fake.batch_polls = 4
    job = batch.submit(chat(fake, provider), ["a", "b", "c", "d"])
    job.status()  # one poll: the first item answered
    (cancelled,) = job.cancel()  # Gemini answers a cancel with {}: its adapter reads the job again (a poll)
    assert cancelled.state in (JobState.CANCELLING, JobState.CANCELLED)
    out = job.wait(return_exceptions=True, sleep=no_sleep)
    assert texts(out) == ["echo: a", "JobError", "JobError", "JobError"]
    assert {e.reason for e in out[1:]} == {"cancelled"}
    assert job.status()[0].state is JobState.CANCELLED


def test_expired_job(fake: FakeProvider, provider: str) -> None:
    fake.batch_polls = 4
    job = batch.submit(chat(fake, provider), ["a", "b", "c", "d"])
    job.status()
    fake.expire_jobs()
    out = job.wait(return_exceptions=True, sleep=no_sleep)
    assert texts(out) == ["echo: a", "JobError", "JobError", "JobError"]
    assert {e.reason for e in out[1:]} == {"expired"}


def test_failed_job(fake: FakeProvider, provider: str) -> None:
    fake.fail_next_job("The input file is not valid.")
    out = batch.submit(chat(fake, provider), ["a", "b"]).wait(return_exceptions=True, sleep=no_sleep)
    if provider == "anthropic":  # a batch never fails as a whole there: each request ends errored
        assert texts(out) == ["BadRequestError", "BadRequestError"]
    else:
        assert texts(out) == ["JobError", "JobError"] and {e.reason for e in out} == {"failed"}
        assert "The input file is not valid." in str(out[0])


def test_ctrl_c_leaves_the_job_running(fake: FakeProvider, provider: str) -> None:
    fake.batch_polls = None
    job = batch.submit(chat(fake, provider), ["a"])

    def interrupt(seconds: float) -> None:
        raise KeyboardInterrupt

    with pytest.raises(BatchJobInterrupted) as info:
        job.wait(sleep=interrupt)
    assert info.value.job_ids == job.job_ids and fake.batch_jobs(provider)[0].phase == "running"
    fake.finish_jobs()
    assert texts(batch.attach(chat(fake, provider), job.to_json()).wait(sleep=no_sleep)) == ["echo: a"]


def test_a_finished_job_is_downloaded_once(fake: FakeProvider, provider: str, tmp_path: Path) -> None:
    journal = tmp_path / "jobs.jsonl"
    prompts = ["a", "FAIL_ITEM", "b"]
    first = batch.submit(chat(fake, provider), prompts, journal=journal).wait(return_exceptions=True, sleep=no_sleep)
    sent = fake.request_count
    job = batch.submit(chat(fake, provider), ["b", "a"], journal=journal)
    assert texts(job.wait(sleep=no_sleep)) == ["echo: b", "echo: a"]
    assert fake.request_count == sent and fake.jobs_created == 1  # read from the journal
    assert texts(first) == ["echo: a", "BadRequestError", "echo: b"]
    again = batch.submit(chat(fake, provider), prompts, journal=journal).wait(return_exceptions=True, sleep=no_sleep)
    assert texts(again) == texts(first) and fake.jobs_created == 2  # only the failed item was sent again
    assert fake.batch_jobs(provider)[0].total == 1


# --- SIGKILL ----------------------------------------------------------------------------------------

CHILD = """
import os, signal, sys
from rig_sync import batch
from rig_sync.providers import {provider} as module

point, url, key, model_name, journal = sys.argv[1:]
client = module.Client(key, base_url=url, max_retries=0)
cls = type(client)
create, status = cls.create_job, cls.job

def die():
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)

def create_job(self, *args, **kwargs):
    if point == "intent":
        die()  # the intent is journaled; nothing was sent
    job = create(self, *args, **kwargs)
    if point == "create":
        die()  # the job exists; its id is not journaled
    return job

def job(self, job_id):
    found = status(self, job_id)
    if point == "wait":
        die()  # polled once, then killed while waiting
    return found

cls.create_job, cls.job = create_job, job
batch.submit(client.completion_model(model_name), ["a", "b", "c"], journal=journal).wait(sleep=lambda s: None)
print("not killed")
"""


def run_killed(fake: FakeProvider, provider: str, point: str, journal: Path) -> None:
    _, path, model = PROVIDERS[provider]
    child = subprocess.run([sys.executable, "-c", CHILD.format(provider=provider), point, fake.url + path,
                            fake.api_key, model, str(journal)], capture_output=True, text=True, timeout=120)
    assert child.returncode == -9, child.stdout + child.stderr


@pytest.mark.parametrize("point", ["create", "wait"])
def test_resume_after_sigkill_creates_no_second_job(fake: FakeProvider, provider: str, point: str,
                                                    tmp_path: Path) -> None:
    journal = tmp_path / "jobs.jsonl"
    run_killed(fake, provider, point, journal)
    assert fake.jobs_created == 1
    lines = [json.loads(line) for line in journal.read_text().splitlines()]
    assert [next(iter(line)) for line in lines] == ["batch_jobs", "intent"] + (["created"] if point == "wait" else [])
    job = batch.submit(chat(fake, provider), ["a", "b", "c"], journal=journal)
    assert texts(job.wait(sleep=no_sleep)) == ["echo: a", "echo: b", "echo: c"]
    assert fake.jobs_created == 1 and job.job_ids == [fake.batch_jobs(provider)[0].id]


def test_resume_after_sigkill_before_creating(fake: FakeProvider, provider: str, tmp_path: Path) -> None:
    journal = tmp_path / "jobs.jsonl"
    run_killed(fake, provider, "intent", journal)
    assert fake.jobs_created == 0
    with pytest.raises(JobNotFoundError, match="resubmit=True"):
        batch.submit(chat(fake, provider), ["a", "b", "c"], journal=journal)
    job = batch.submit(chat(fake, provider), ["a", "b", "c"], journal=journal, resubmit=True)
    assert texts(job.wait(sleep=no_sleep)) == ["echo: a", "echo: b", "echo: c"] and fake.jobs_created == 1


def test_anthropic_cannot_tell_two_batches_of_one_size_apart(fake: FakeProvider, tmp_path: Path,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    journal = tmp_path / "jobs.jsonl"
    run_killed(fake, "anthropic", "create", journal)
    other = batch.submit(chat(fake, "anthropic"), ["x", "y", "z"])  # another run's batch, same size, same second
    with pytest.raises(JobNotFoundError, match="none or several of that size"):
        batch.submit(chat(fake, "anthropic"), ["a", "b", "c"], journal=journal)
    assert other.job_ids[0] in caplog.text  # the candidates are named
    assert fake.jobs_created == 2  # nothing sent while in doubt
