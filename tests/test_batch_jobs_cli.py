"""`rig-sync batch --provider-batch`, `batch status JOB` and `batch fetch JOB` end to end against the
FakeProvider's batch endpoints (OpenAI, Anthropic, Gemini): results keyed by input id, reruns that
send only what failed, Ctrl-C answered "leave it running" or "cancel", a SIGKILLed command that a
rerun reattaches, embeddings, and the errors."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import rig_sync.batch_jobs
from rig_sync._batch_cli import run
from rig_sync.testing import FakeProvider

# provider: (--model, the fake's path for its base URL)
PROVIDERS = {"openai": ("openai:gpt-4o-mini", "/v1"), "anthropic": ("anthropic:claude-3-7-sonnet-latest", ""),
             "gemini": ("gemini:gemini-2.0-flash", "")}


@pytest.fixture()
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeProvider]:
    monkeypatch.setattr(rig_sync.batch_jobs, "_nap", lambda seconds: None)  # polls advance the fake's jobs
    with FakeProvider() as fake:
        yield fake


@pytest.fixture(params=list(PROVIDERS))
def provider(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


def options(fake: FakeProvider, provider: str, *extra: str) -> list[str]:
    model, path = PROVIDERS[provider]
    return ["--model", model, "--base-url", fake.url + path, "--api-key", fake.api_key, "--no-progress", *extra]


def lines(path: Path) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    for row in rows:
        row.pop("job", None)
        row.pop("item", None)
    return rows


@pytest.fixture()
def prompts(tmp_path: Path) -> Path:
    path = tmp_path / "prompts.jsonl"
    path.write_text('{"id": "a", "prompt": "first"}\n{"id": 7, "prompt": "FAIL_ITEM"}\nplain third\n')
    return path


def test_provider_batch_writes_results_by_id(fake: FakeProvider, provider: str, prompts: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "results.jsonl"
    assert run([str(prompts), "--provider-batch", "--out", str(out), *options(fake, provider)]) == 1
    rows = lines(out)
    assert [(r["index"], r["id"], r["ok"]) for r in rows] == [(0, "a", True), (1, 7, False), (2, None, True)]
    assert [rows[0]["result"], rows[2]["result"]] == ["echo: first", "echo: plain third"]
    assert rows[1]["error"]["type"] == "BadRequestError"
    err = capsys.readouterr().err
    (made,) = fake.batch_jobs(provider)
    assert f"3 lines in {provider} batch job(s) {made.id}; waiting" in err and "2 of 3 done, 1 failed" in err
    assert not (tmp_path / "results.jsonl.jobs").exists()  # every job ended: its journal is gone
    # Run again: only the failed line is sent, in a new job of one request.
    assert run([str(prompts), "--provider-batch", "--out", str(out), *options(fake, provider)]) == 1
    assert fake.jobs_created == 2 and fake.batch_jobs(provider)[0].total == 1
    again = lines(out)
    assert [(r["id"], r["ok"], r.get("result"), "error" in r) for r in again] == \
        [(r["id"], r["ok"], r.get("result"), "error" in r) for r in rows]


def test_answers_from_a_plain_run_are_reused(fake: FakeProvider, prompts: Path, tmp_path: Path) -> None:
    out = tmp_path / "results.jsonl"
    assert run([str(prompts), "--out", str(out), "--workers", "2", *options(fake, "openai")]) == 0
    with open(prompts, "a") as fh:
        fh.write("a new line\n")
    assert run([str(prompts), "--provider-batch", "--out", str(out), *options(fake, "openai")]) == 0
    (made,) = fake.batch_jobs("openai")
    assert [i.body["messages"][-1]["content"] for i in made.items] == ["a new line"]  # only the new line
    assert [r["result"] for r in lines(out)][-2:] == ["echo: plain third", "echo: a new line"]


def test_preamble_goes_in_every_request(fake: FakeProvider, provider: str, tmp_path: Path) -> None:
    texts = tmp_path / "t.txt"
    texts.write_text("hello\n")
    out = tmp_path / "o.jsonl"
    assert run([str(texts), "--provider-batch", "--preamble", "Be brief", "--out", str(out),
                *options(fake, provider)]) == 0
    (item,) = fake.batch_jobs(provider)[0].items
    assert "Be brief" in json.dumps(item.body)


def ctrl_c(monkeypatch: pytest.MonkeyPatch, answer: str) -> None:
    def interrupted(seconds: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(rig_sync.batch_jobs, "_nap", interrupted)
    monkeypatch.setattr(sys, "stdin", io.StringIO(answer))


def test_ctrl_c_leave_running_then_reattach(fake: FakeProvider, provider: str, prompts: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    fake.batch_polls = None  # only finish_jobs() ends it
    out = tmp_path / "results.jsonl"
    ctrl_c(monkeypatch, "n\n")
    assert run([str(prompts), "--provider-batch", "--out", str(out), *options(fake, provider)]) == 130
    (made,) = fake.batch_jobs(provider)
    err = capsys.readouterr().err
    assert "Cancel the job(s)" in err and f"left running: {made.id}" in err and "run the same command again" in err
    assert made.phase == "running" and (tmp_path / "results.jsonl.jobs").exists()
    monkeypatch.setattr(rig_sync.batch_jobs, "_nap", lambda seconds: None)
    fake.finish_jobs()
    assert run([str(prompts), "--provider-batch", "--out", str(out), *options(fake, provider)]) == 1
    assert fake.jobs_created == 1 and [r["ok"] for r in lines(out)] == [True, False, True]


def test_ctrl_c_cancel(fake: FakeProvider, provider: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                       capsys: pytest.CaptureFixture[str]) -> None:
    fake.batch_polls = None
    texts = tmp_path / "t.txt"
    texts.write_text("a\nb\n")
    out = tmp_path / "o.jsonl"
    ctrl_c(monkeypatch, "y\n")
    assert run([str(texts), "--provider-batch", "--out", str(out), *options(fake, provider)]) == 130
    (made,) = fake.batch_jobs(provider)
    assert made.phase in ("cancelling", "cancelled") and "cancel asked for" in capsys.readouterr().err
    monkeypatch.setattr(rig_sync.batch_jobs, "_nap", lambda seconds: None)
    assert run([str(texts), "--provider-batch", "--out", str(out), *options(fake, provider)]) == 1
    assert [r["error"]["type"] for r in lines(out)] == ["JobError", "JobError"] and fake.jobs_created == 1


def test_ctrl_c_with_no_answer_leaves_it_running(fake: FakeProvider, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    fake.batch_polls = None
    texts = tmp_path / "t.txt"
    texts.write_text("a\n")
    ctrl_c(monkeypatch, "")  # stdin at its end: no answer is no
    assert run([str(texts), "--provider-batch", "--out", str(tmp_path / "o"), *options(fake, "openai")]) == 130
    assert fake.batch_jobs("openai")[0].phase == "running"


def test_embeddings_through_the_openai_batch_api(fake: FakeProvider, tmp_path: Path) -> None:
    from rig_sync.testing._openai import embed_text

    texts = tmp_path / "t.txt"
    texts.write_text("alpha\nbeta\n")
    out = tmp_path / "v.jsonl"
    assert run(["embed", str(texts), "--provider-batch", "--out", str(out), "--model",
                "openai:text-embedding-3-small", "--base-url", fake.base_url, "--api-key", fake.api_key,
                "--no-progress"]) == 0
    rows = lines(out)
    assert rows[1]["result"] == pytest.approx(embed_text("beta"), abs=1e-6)
    assert [i.path for i in fake.batch_jobs("openai")[0].items] == ["/v1/embeddings"] * 2


def test_status_and_fetch(fake: FakeProvider, provider: str, tmp_path: Path,
                          capsys: pytest.CaptureFixture[str]) -> None:
    from rig_sync import batch
    from rig_sync.client import ProviderValue
    from rig_sync.client.builder import DynClientBuilder

    fake.batch_polls = None
    name, model = PROVIDERS[provider][0].split(":", 1)
    value = ProviderValue(fake.api_key, base_url=fake.url + PROVIDERS[provider][1])
    chat = DynClientBuilder().model("completion", name, model, value)  # a job made elsewhere, by the library
    job = batch.submit(chat, ["x", "FAIL_ITEM", "z"])
    (job_id,) = job.job_ids
    capsys.readouterr()
    assert run(["status", job_id, *options(fake, provider)]) == 0
    assert capsys.readouterr().out == f"{job_id}  running  0/3 answered\n"  # a status read is a poll
    fake.finish_jobs()
    answers = tmp_path / "answers.jsonl"
    assert run(["fetch", job_id, "--out", str(answers), *options(fake, provider)]) == 1
    rows = lines(answers)
    assert [(r["id"], r["ok"]) for r in rows] == [("i0", True), ("i1", False), ("i2", True)]
    assert rows[2]["result"] == "echo: z"
    assert run(["status", job_id, *options(fake, provider)]) == 0
    assert capsys.readouterr().out.startswith(f"{job_id}  completed  2/3 answered, 1 failed")


def test_command_errors(fake: FakeProvider, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    texts = tmp_path / "t.txt"
    texts.write_text("a\n")
    assert run([str(texts), *options(fake, "openai")]) == 2
    assert capsys.readouterr().err == "rig-sync: error: batch needs --out RESULTS, the file the results go to\n"
    assert run(["status", "batch_nope", *options(fake, "openai")]) == 1
    assert "rig-sync: error: " in capsys.readouterr().err
    groq = ["--model", "groq:llama", "--base-url", fake.base_url, "--api-key", fake.api_key, "--no-progress"]
    assert run([str(texts), "--provider-batch", "--out", str(tmp_path / "o"), *groq]) == 2
    err = capsys.readouterr().err
    assert "groq offers no batch API" in err and "batch.map" in err
    assert run(["status", "x", *groq]) == 2
    for poll in ("0", "nan", "-1"):
        with pytest.raises(SystemExit) as info:
            run([str(texts), "--provider-batch", "--poll", poll, "--out", "o", *options(fake, "openai")])
        assert info.value.code == 2
    assert fake.jobs_created == 0


def test_a_sigkilled_command_is_reattached(fake: FakeProvider, provider: str, prompts: Path, tmp_path: Path) -> None:
    fake.batch_polls = None
    out = tmp_path / "results.jsonl"
    argv = [sys.executable, "-m", "rig_sync", "batch", str(prompts), "--provider-batch", "--out", str(out),
            *options(fake, provider)]
    child = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert child.stderr is not None
    said = child.stderr.readline()  # "… batch job(s) ID; waiting for the answers …": the id is journaled
    child.send_signal(signal.SIGKILL)
    assert child.wait(timeout=60) == -9 and "waiting for the answers" in said, said
    assert fake.jobs_created == 1 and (tmp_path / "results.jsonl.jobs").exists()
    fake.finish_jobs()
    assert run([str(prompts), "--provider-batch", "--out", str(out), *options(fake, provider)]) == 1
    assert fake.jobs_created == 1 and [r["id"] for r in lines(out)] == ["a", 7, None]
