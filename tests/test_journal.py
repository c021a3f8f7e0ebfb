"""rig_sync.journal: JSON lines, flushed per item; resume after SIGKILL; torn last line."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from rig_sync import batch
from rig_sync.embeddings import Embedding
from rig_sync.journal import Journal, JournalError
from rig_sync.testing import FakeProvider


def lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def without_prints(path: Path) -> list[dict[str, object]]:
    rows = lines(path)
    assert all(len(str(row.pop("job"))) == len(str(row.pop("item"))) == 32 for row in rows)
    return rows


def test_every_finished_item_is_on_disk_as_it_completes(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"

    def fn(i: int) -> int:
        if i == 3:
            raise ValueError("three")
        return i * 2

    out: dict[int, object] = {}
    for index, outcome in batch.imap(fn, range(6), max_workers=2, journal=path):
        assert lines(path)[-1]["index"] == index  # on disk before the caller sees it
        out[index] = outcome
    assert isinstance(out[3], ValueError)
    assert sorted(entry["index"] for entry in lines(path)) == list(range(6))  # type: ignore[type-var]
    assert {"index": 3, "ok": False, "error": {"type": "ValueError", "message": "three"}} in without_prints(path)
    assert {"index": 5, "ok": True, "result": 10} in without_prints(path)


def test_resume_skips_finished_and_reruns_failed(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    calls: list[int] = []
    first_run = True

    def flaky(i: int) -> str:
        calls.append(i)
        if i % 2 and first_run:
            raise RuntimeError("first time")
        return f"r{i}"

    with pytest.raises(batch.BatchError):
        batch.map(flaky, range(5), max_workers=1, journal=str(path))
    calls.clear()
    first_run = False
    assert batch.map(flaky, range(5), max_workers=1, journal=path) == [f"r{i}" for i in range(5)]
    assert sorted(calls) == [1, 3]
    with Journal(path) as log:
        assert log.finished() == {i: f"r{i}" for i in range(5)} and log.failed() == {}


def test_a_torn_last_line_is_ignored_and_cut(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    batch.map(lambda i: "a", range(1), journal=path, job="torn")
    path.write_bytes(path.read_bytes() + b'{"index": 1, "ok": tr')
    calls: list[int] = []
    assert batch.map(lambda i: calls.append(i) or f"x{i}", range(3), journal=path, job="torn") == ["a", "x1", "x2"]
    assert sorted(calls) == [1, 2]
    assert [entry["index"] for entry in lines(path)] == [0, 1, 2]  # every line is whole again
    with Journal(path) as log:  # and it loads again
        assert sorted(log.finished()) == [0, 1, 2]


def test_a_corrupt_middle_line_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    path.write_text('garbage\n{"index": 1, "ok": true, "result": 1}\n')
    with pytest.raises(JournalError, match="line 1 is not JSON"):
        Journal(path)
    path.write_text('{"ok": true}\n')
    with pytest.raises(JournalError, match="no item index"):
        Journal(path)


def test_non_json_results_need_an_encoder(tmp_path: Path) -> None:
    with pytest.raises(JournalError, match=r"Embedding.*encode="):
        batch.map(lambda t: Embedding(t, [1.0]), ["a"], journal=tmp_path / "a.jsonl")

    def journal() -> Journal:
        return Journal(tmp_path / "b.jsonl", encode=lambda e: [e.document, e.vec], decode=lambda v: Embedding(*v))

    first = batch.map(lambda t: Embedding(t, [float(len(t))]), ["a", "bb"], journal=journal())
    again = batch.map(lambda t: pytest.fail("already journaled"), ["a", "bb"], journal=journal())
    assert again == first == [Embedding("a", [1.0]), Embedding("bb", [2.0])]


CHILD = """
import os, signal, sys, threading
from rig_sync import batch
from rig_sync.http import RetryPolicy
from rig_sync.providers import openai

base_url, journal, kill_at = sys.argv[1], sys.argv[2], int(sys.argv[3])
model = openai.Client("fake-key", base_url=base_url, retry=RetryPolicy(max_retries=0), timeout=10) \\
    .completion_model("gpt-4o-mini")
count, lock = 0, threading.Lock()

def fn(prompt):
    global count
    with lock:
        count += 1
        if count == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
    return model.completion_request(prompt).send().text

batch.map(fn, [f"p{i}" for i in range(100)], max_workers=4, journal=journal, job="echo")
"""


def test_killed_with_sigkill_then_resumed_loses_nothing_and_pays_once(tmp_path: Path) -> None:
    path = tmp_path / "job.jsonl"
    prompts = [f"p{i}" for i in range(100)]
    with FakeProvider() as fake:
        fake.latency = 0.005
        child = subprocess.run([sys.executable, "-c", CHILD, fake.base_url, str(path), "40"], timeout=60,
                               capture_output=True)
        assert child.returncode == -signal.SIGKILL, child.stderr.decode()
        before = Counter(r.json["messages"][-1]["content"] for r in fake.requests if r.json)  # not cut-off sends
        with Journal(path) as log:
            journaled = {prompts[i] for i in log.finished()}
        assert len(journaled) >= 30  # the child got well along before it died
        assert journaled <= set(before)

        from rig_sync.providers import openai

        model = openai.Client(fake.api_key, base_url=fake.base_url).completion_model("gpt-4o-mini")
        fake.reset()
        out = batch.map(lambda p: model.completion_request(p).send().text, prompts, max_workers=4, journal=path,
                        job="echo")  # the child's function, under another name
        assert out == [f"echo: {p}" for p in prompts]  # complete and in order
        after = Counter(r.json["messages"][-1]["content"] for r in fake.requests)
        assert not journaled & set(after)  # nothing journaled was paid for again
        assert set(after) == set(prompts) - journaled and set(after.values()) == {1}
        assert max(before.values()) == 1


def test_a_journal_where_no_file_can_be_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(JournalError, match="cannot write journal"):
        Journal(tmp_path / "no-such-dir" / "job.jsonl")
    with pytest.raises(JournalError, match="cannot read journal"):
        Journal(tmp_path)  # a directory


def test_blank_lines_are_skipped_and_a_closed_journal_refuses_to_record(tmp_path: Path) -> None:
    path = tmp_path / "job.jsonl"
    path.write_text('{"index": 0, "ok": true, "result": "A"}\n\n{"index": 1, "ok": true, "result": "B"}\n')
    log = Journal(path)
    assert log.finished() == {0: "A", 1: "B"} and repr(log) == f"Journal({str(path)!r}, finished=2)"
    log.close()
    with pytest.raises(JournalError, match="closed; item 2 was not recorded"):
        log.record(2, "C", True)


@pytest.mark.parametrize("path", ["/dev/zero", "/dev/null"])
def test_a_journal_path_that_is_not_a_file_is_refused_not_read_for_ever(path: str) -> None:
    from rig_sync.journal import Journal, JournalError

    with pytest.raises(JournalError, match="not a regular file"):
        Journal(path)
