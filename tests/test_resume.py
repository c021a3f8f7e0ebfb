"""Resume you can trust with money: a journal's answer goes only to the item, of the job, that
produced it; an interrupt keeps what was paid for; any string and any write error is survived."""

from __future__ import annotations

import errno
import json
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from conftest import InterruptAfter

from rig_sync import batch
from rig_sync._batch_cli import run
from rig_sync.journal import Journal, JournalError
from rig_sync.testing import FakeProvider, Fault


def entries(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


class Counting:
    """A batch function that answers `item -> "answer to item #n"` and counts its calls."""

    def __init__(self) -> None:
        self.calls: Counter[Any] = Counter()
        self._lock = threading.Lock()

    def __call__(self, item: Any) -> str:
        with self._lock:
            self.calls[json.dumps(item)] += 1
            return f"answer to {json.dumps(item)} #{sum(self.calls.values())}"



# --- the library: by content, never by position --------------------------------------------------


def test_changed_inputs_are_recomputed_never_given_another_items_answer(tmp_path: Path) -> None:
    path = tmp_path / "job.jsonl"
    fn = Counting()
    first = batch.map(fn, ["q0", "q1"], journal=path, max_workers=1)
    fn.calls.clear()
    out = batch.map(fn, ["DIFFERENT 0", "DIFFERENT 1"], journal=path, max_workers=1)
    assert out == ['answer to "DIFFERENT 0" #1', 'answer to "DIFFERENT 1" #2']
    fn.calls.clear()
    # A line inserted at the top: every old item keeps its own answer, wherever it moved.
    out = batch.map(fn, ["new", "q0", {"q": 1}, "q1"], journal=path, max_workers=1)
    assert out[1:4:2] == first and out[0].startswith('answer to "new"') and out[2].startswith('answer to {"q": 1}')
    assert set(fn.calls) == {'"new"', '{"q": 1}'}


def test_an_item_listed_twice_gets_each_of_its_answers_once(tmp_path: Path) -> None:
    path = tmp_path / "job.jsonl"
    fn = Counting()
    first = batch.map(fn, ["joke", "joke", 1, 1.0, True], journal=path, max_workers=1)
    assert len(set(first)) == 5  # 1, 1.0 and True are three items
    fn.calls.clear()
    again = batch.map(fn, ["joke", 1.0, "joke", True, 1, "joke"], journal=path, max_workers=1)
    assert set(fn.calls) == {'"joke"'} and fn.calls['"joke"'] == 1  # only the third "joke" is new
    assert sorted(again[i] for i in (0, 2)) == sorted(first[:2]) and again[1:5:2] == [first[3], first[4]]
    assert again[4] == first[2]


def test_a_journal_of_another_function_is_refused_unless_asked_to_redo(tmp_path: Path) -> None:
    path = tmp_path / "job.jsonl"
    assert batch.map(str.upper, ["a", "b"], journal=path) == ["A", "B"]
    with pytest.raises(JournalError) as info:
        batch.map(str.lower, ["a", "b"], journal=path)
    message = str(info.value)
    assert str(path) in message and "another job" in message and "'builtins.str.lower'" in message
    assert "on_mismatch='redo'" in message and "delete this file" in message
    assert batch.map(str.lower, ["a", "B"], journal=path, on_mismatch="redo") == ["a", "b"]
    assert batch.map(str.lower, ["B"], journal=path) == ["b"]  # its own entries now: resumed, no refusal
    assert batch.map(str.upper, ["a", "b"], journal=path) == ["A", "B"]  # each job sees only its own
    # One function serving two jobs is told apart by job=.
    with pytest.raises(JournalError, match="'model-b'"):
        batch.map(str.upper, ["a"], journal=path, job="model-b")


def test_a_journal_without_fingerprints_is_refused_with_how_to_start_afresh(tmp_path: Path) -> None:
    path = tmp_path / "old.jsonl"
    path.write_text('{"index": 0, "ok": true, "result": "an answer to something else"}\n')
    fn = Counting()
    with pytest.raises(JournalError, match=r"without fingerprints.*delete this file to start afresh"):
        batch.map(fn, ["q0"], journal=path)
    assert not fn.calls
    assert batch.map(fn, ["q0"], journal=path, on_mismatch="redo") == ['answer to "q0" #1']


def test_an_item_that_cannot_be_fingerprinted_is_refused_before_anything_runs(tmp_path: Path) -> None:
    class Doc:
        def __init__(self, name: str) -> None:
            self.name = name

    fn = Counting()
    with pytest.raises(JournalError, match=r"item 1 \(Doc\).*key=lambda item"):
        batch.map(lambda d: fn(d.name), [{"ok": "json"}, Doc("a")], journal=tmp_path / "j.jsonl")
    with pytest.raises(JournalError, match=r"item 0 \(dict\) holds a set"):
        batch.map(fn, [{"tags": {"x"}}], journal=tmp_path / "j.jsonl")
    assert not fn.calls
    docs = [Doc("a"), Doc("b")]
    first = batch.map(lambda d: fn(d.name), docs, journal=tmp_path / "k.jsonl", key=lambda d: d.name, job="names")
    again = batch.map(lambda d: fn(d.name), docs[::-1], journal=tmp_path / "k.jsonl", key=lambda d: d.name,
                      job="names")
    assert again == first[::-1] and sum(fn.calls.values()) == 2


# --- the batch command: by id and text ------------------------------------------------------------


def cli_args(fake: FakeProvider, out: Path, *extra: str) -> list[str]:
    return ["--provider", "openai", "--base-url", fake.base_url, "--api-key", fake.api_key, "--workers", "4",
            "--no-progress", "--out", str(out), *extra]


def asked(fake: FakeProvider) -> list[str]:
    return sorted(r.json["messages"][-1]["content"] for r in fake.requests if r.json)


def test_cli_a_line_inserted_on_top_keeps_every_answer_with_its_id(tmp_path: Path) -> None:
    prompts, out = tmp_path / "p.jsonl", tmp_path / "out.jsonl"
    rows = [{"id": f"r{i}", "prompt": f"q{i}"} for i in range(4)]
    prompts.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with FakeProvider() as fake:
        assert run([str(prompts), *cli_args(fake, out, "--model", "gpt-4o")]) == 0
        fake.reset()
        edited = [{"id": "top", "prompt": "new"}, *rows[:2], {"id": "r2", "prompt": "q2, edited"}, rows[3]]
        prompts.write_text("".join(json.dumps(r) + "\n" for r in edited))
        assert run([str(prompts), *cli_args(fake, out, "--model", "gpt-4o")]) == 0
        assert asked(fake) == ["new", "q2, edited"]  # the rest were kept, each with its own id
    got = [(e["index"], e["id"], e["result"]) for e in entries(out)]
    assert got == [(i, r["id"], f"echo: {r['prompt']}") for i, r in enumerate(edited)]


def test_cli_another_model_is_refused_and_the_results_file_kept(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    prompts, out = tmp_path / "p.txt", tmp_path / "out.jsonl"
    prompts.write_text("a\nb\nc\nd\n")
    with FakeProvider() as fake:
        assert run([str(prompts), *cli_args(fake, out, "--model", "gpt-4o")]) == 0
        before = out.read_bytes()
        prompts.write_text("a\n")
        fake.reset()
        assert run([str(prompts), *cli_args(fake, out, "--model", "gpt-4o-mini")]) == 1
        err = capsys.readouterr().err
        assert f"journal {str(out)!r} holds 4 entries of another job" in err and "pass --redo" in err
        assert out.read_bytes() == before and fake.request_count == 0
        assert run([str(prompts), *cli_args(fake, out, "--model", "gpt-4o-mini", "--redo")]) == 0
        assert fake.last_request is not None and fake.last_request.json["model"] == "gpt-4o-mini"
        assert run([str(prompts), *cli_args(fake, out, "--model", "gpt-4o-mini", "--preamble", "Be brief")]) == 1
    assert [(e["id"], e["result"]) for e in entries(out)] == [(None, "echo: a")]


def test_cli_ids_must_be_unique(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"id": "x", "prompt": "a"}\n{"id": 1, "prompt": "b"}\n{"id": "x", "prompt": "c"}\n')
    with FakeProvider() as fake:
        assert run([str(prompts), *cli_args(fake, tmp_path / "o", "--model", "m")]) == 2
        assert fake.request_count == 0
    assert f"{prompts}:3: id 'x' is also on line 1; ids must be unique" in capsys.readouterr().err


# --- interrupts keep what was paid for ------------------------------------------------------------


def test_answers_on_the_wire_at_ctrl_c_reach_your_own_journal_after_it_closed(tmp_path: Path) -> None:
    path = tmp_path / "job.jsonl"
    started = threading.Barrier(4, timeout=10)
    release = threading.Event()
    threads: set[threading.Thread] = set()
    paid: list[str] = []

    def fn(item: str) -> str:
        assert item not in paid, "paid for already"
        paid.append(item)
        threads.add(threading.current_thread())
        started.wait()  # all four are running before the first one finishes
        if item != "fast":
            release.wait(10)
        return item.upper()

    items = ["fast", "slow1", "slow2", "slow3"]
    with Journal(path) as log, pytest.raises(batch.BatchInterrupted) as info:
        batch.map(fn, items, max_workers=4, journal=log, progress=InterruptAfter(1))
    assert info.value.pending == [1, 2, 3]  # still on the wire; the `with` has closed the journal
    release.set()
    for thread in threads:  # the interrupted batch's pool ends once they have landed
        thread.join(10)
    with Journal(path) as log:
        assert sorted(log.finished().values()) == ["FAST", "SLOW1", "SLOW2", "SLOW3"]
    assert batch.map(fn, items, journal=path) == [i.upper() for i in items]


def test_cli_ctrl_c_waits_for_the_requests_already_sent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    prompts, out = tmp_path / "p.txt", tmp_path / "out.jsonl"
    prompts.write_text("".join(f"q{i}\n" for i in range(4)))
    monkeypatch.setattr(batch, "make_progress", lambda progress, total: InterruptAfter(1))
    with FakeProvider() as fake:
        fake.inject(Fault.slow(0.3), times=3)  # three answers are still on the wire when the first lands
        assert run([str(prompts), *cli_args(fake, out, "--model", "m")]) == 130
        assert "interrupted; 4 of 4 done" in capsys.readouterr().err
        assert sorted(e["result"] for e in entries(out)) == [f"echo: q{i}" for i in range(4)]
        fake.reset()
        monkeypatch.undo()
        assert run([str(prompts), *cli_args(fake, out, "--model", "m")]) == 0
        assert fake.request_count == 0  # nothing paid for twice
    assert [e["result"] for e in entries(out)] == [f"echo: q{i}" for i in range(4)]


# --- any string, any write error ------------------------------------------------------------------

HALF_EMOJI = "half an emoji: \ud83d"


def test_a_lone_surrogate_is_journaled_and_read_back_equal(tmp_path: Path) -> None:
    path = tmp_path / "job.jsonl"
    answers = {"a": HALF_EMOJI, "b": ["\udfff", {"k\ud800": "whole \U0001f600"}]}
    paid = False

    def fn(key: str) -> Any:
        assert not paid, "journaled already"
        return answers[key]

    assert batch.map(fn, ["a", "b"], journal=path) == [answers["a"], answers["b"]]
    path.read_bytes().decode("utf-8")  # a UTF-8 file, as every other journal
    paid = True
    assert batch.map(fn, ["a", "b"], journal=path) == [answers["a"], answers["b"]]


def test_cli_an_answer_holding_half_an_emoji_is_kept_and_not_paid_for_again(tmp_path: Path) -> None:
    prompts, out = tmp_path / "p.txt", tmp_path / "out.jsonl"
    prompts.write_text("a\nb\n")
    body = (b'{"id": "c1", "object": "chat.completion", "created": 0, "model": "m", "choices": [{"index": 0, '
            b'"message": {"role": "assistant", "content": "half \\ud83d"}, "finish_reason": "stop"}], '
            b'"usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}')
    with FakeProvider() as fake:
        fake.inject(Fault.raw(200, body, content_type="application/json"))
        assert run([str(prompts), *cli_args(fake, out, "--model", "m")]) == 0
        fake.reset()
        assert run([str(prompts), *cli_args(fake, out, "--model", "m")]) == 0
        assert fake.request_count == 0
    got = [e["result"] for e in entries(out)]
    assert got in (["half \ud83d", "echo: b"], ["echo: a", "half \ud83d"])  # the first request to land had it


class FullDisk:
    """A journal's file on a disk that fills up after `room` lines."""

    def __init__(self, real: Any, room: int) -> None:
        self.real, self.room = real, room
        self.closed = False

    def write(self, data: bytes) -> int:
        if self.room == 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.room -= 1
        return int(self.real.write(data))

    def flush(self) -> None:
        self.real.flush()

    def close(self) -> None:
        self.closed = True
        self.real.close()


def test_a_full_disk_stops_the_batch_but_keeps_every_result(tmp_path: Path) -> None:
    path = tmp_path / "job.jsonl"
    log = Journal(path)
    log._file = FullDisk(log._file, room=3)  # type: ignore[assignment]
    fn = Counting()
    with pytest.raises(batch.BatchError) as info:
        batch.map(fn, [f"q{i}" for i in range(20)], max_workers=1, journal=log)
    err = info.value
    assert isinstance(err, JournalError) and isinstance(err.__cause__, JournalError)
    assert f"cannot write journal {str(path)!r}: No space left on device" in str(err.__cause__)
    ran = set(fn.calls)
    assert 4 <= len(ran) <= 5  # nothing new started once the journal refused item 3
    assert {i for i, r in enumerate(err.results) if r is not None} == {int(q[2:-1]) for q in ran}
    assert sorted([*err.succeeded, *err.pending]) == list(range(20))  # kept, or never run
    assert len(entries(path)) == 3
    fn.calls.clear()
    out = batch.map(fn, [f"q{i}" for i in range(20)], max_workers=1, journal=path)
    assert len(out) == 20 and len(fn.calls) == 17  # the three journaled are not paid for again
    log.close()
