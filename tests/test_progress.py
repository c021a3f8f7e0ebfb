"""rig_sync.progress: the plain fallback's line, and off when stderr is not a terminal."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from rig_sync import batch
from rig_sync.progress import NullProgress, PlainProgress, make_progress


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_plain_line_shows_done_failed_rate_and_eta() -> None:
    clock, out = Clock(), io.StringIO()
    bar = PlainProgress(100, stream=out, interval=0.5, clock=clock)
    bar.skip(10)  # from a journal: counted as done, not in the rate
    clock.now += 2.0
    for ok in [True] * 18 + [False] * 2:
        bar.update(ok)
    assert bar.line() == "30/100 done, 2 failed, 10.0/s, ETA 7s"
    bar.close()
    text = out.getvalue()
    assert text.startswith("\r") and text.endswith("30/100 done, 2 failed, 10.0/s, ETA 7s\n")
    assert text.count("\r") == 2  # redrawn at most every interval, then once on close


def test_plain_line_without_a_total() -> None:
    clock = Clock()
    bar = PlainProgress(None, stream=io.StringIO(), clock=clock)
    clock.now += 1.0
    bar.update(True)
    assert bar.line() == "1 done, 0 failed, 1.0/s"


def test_off_when_stderr_is_not_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stderr", io.StringIO())
    assert isinstance(make_progress(None, 10), NullProgress)
    assert batch.map(str, range(50)) == [str(i) for i in range(50)]
    assert __import__("sys").stderr.getvalue() == ""


def test_on_when_asked_falls_back_to_plain_without_tqdm(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("tqdm", "tqdm.auto"):  # import tqdm fails, even once imported
        monkeypatch.setitem(__import__("sys").modules, name, None)
    err = io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    assert isinstance(make_progress(True, 3), PlainProgress)
    batch.map(str, range(3), progress=True)
    assert err.getvalue().rstrip().endswith("3/3 done, 0 failed, " + err.getvalue().rsplit(", ", 2)[1] + ", ETA 0s")
    assert make_progress(False, 3).__class__ is NullProgress


def test_a_given_progress_object_sees_every_item() -> None:
    class Count:
        def __init__(self) -> None:
            self.ok = self.failed = self.skipped = 0
            self.closed = False

        def update(self, ok: bool) -> None:
            self.ok += ok
            self.failed += not ok

        def skip(self, n: int) -> None:
            self.skipped += n

        def close(self) -> None:
            self.closed = True

    count = Count()
    batch.map(lambda i: 1 // (i % 4), range(8), progress=count, return_exceptions=True)
    assert (count.ok, count.failed, count.closed) == (6, 2, True)


def test_progress_true_draws_a_tqdm_bar_with_failures(capsys: pytest.CaptureFixture[str]) -> None:
    def half_fail(i: int) -> int:
        if i % 5 == 0:
            raise ValueError("bad item")
        return i

    out = batch.map(half_fail, range(10), max_workers=2, progress=True, return_exceptions=True)
    assert [isinstance(r, ValueError) for r in out] == [i % 5 == 0 for i in range(10)]
    drawn = capsys.readouterr().err
    assert "10/10" in drawn and "failed=2" in drawn


def test_a_tqdm_bar_counts_items_a_journal_already_held(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    journal = tmp_path / "job.jsonl"
    batch.map(str.upper, ["a", "b", "c"], max_workers=1, journal=journal, progress=False)
    assert batch.map(str.upper, ["a", "b", "c", "d"], journal=journal, progress=True) == ["A", "B", "C", "D"]
    assert "4/4" in capsys.readouterr().err


def test_the_bar_is_tqdm_autos_which_is_a_widget_in_a_notebook(monkeypatch: pytest.MonkeyPatch) -> None:
    # tqdm.auto picks the notebook widget inside a Jupyter kernel (tests/test_notebook.py runs one)
    # and the text bar elsewhere: whatever it picks is what a batch draws.
    import tqdm.auto

    made: list[dict[str, object]] = []

    class Recorder:
        def __init__(self, **kwargs: object) -> None:
            made.append(kwargs)
            self.n = 0

        def update(self, n: int) -> None:
            self.n += n

        def set_postfix(self, **kwargs: object) -> None:
            pass

        def close(self) -> None:
            made.append({"closed_at": self.n})

    monkeypatch.setattr(tqdm.auto, "tqdm", Recorder)
    assert batch.map(str, range(4), progress=True) == ["0", "1", "2", "3"]
    assert made[0]["total"] == 4 and made[-1] == {"closed_at": 4}
