"""The journal of `batch.submit`: what a run announced, created and received, so that a run killed
at any point carries on instead of paying for its jobs twice.

JSON lines, appended unbuffered (each line is one write, on its way to the disk when the call
returns); the half-written last line a kill can leave behind is cut off when the journal is
reopened. In the order a run writes them:

    {"batch_jobs": 1, "provider": "openai", "model": "gpt-4o-mini", "kind": "completion"}
    {"intent": "nightly-3f2a9c01d4e6", "at": 1733380000.5, "items": ["9a1e…", "77b2…"]}
    {"created": "nightly-3f2a9c01d4e6", "id": "batch_abc"}
    {"answer": "i0", "job": "batch_abc", "item": "9a1e…", "ok": true, "body": {…}}
    {"answer": "i1", "job": "batch_abc", "item": "77b2…", "ok": false, "error": {"type", "message", "reason", "status"}}
    {"ended": "batch_abc", "state": "completed"}
    {"abandoned": "nightly-3f2a9c01d4e6"}

An intent (a job's label and the fingerprints of its items, in custom-id order: `i0`, `i1`, …) is
written before the job is created and its id after, so a run that died in between finds the job
by its label. Each item's answer body is kept, so a job is downloaded once. "ended" follows the
last answer of a job; "abandoned" marks an intent whose job was never found (`resubmit=True`) or
that the provider refused.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable, Mapping
from typing import IO, Any

import attrs

from . import _json
from .client.jobs import JobError
from .journal import JournalError, read_journal

__all__ = ["JobJournal", "Intent", "Answer", "error_record", "restore_error", "custom_id"]

VERSION = 1


def custom_id(position: int) -> str:
    """The custom id of a job's item at `position` (fits every provider's rules: letters, digits)."""
    return f"i{position}"


@attrs.define
class Intent:
    """A job announced: its label, when (Unix seconds), its items' fingerprints in custom-id order,
    and what became of it."""

    label: str
    at: float
    items: list[str]
    job_id: str | None = None
    abandoned: bool = False


@attrs.frozen
class Answer:
    """An item's outcome as journaled: the answer body (`ok`), or an error record (`error_record`)."""

    item: str
    ok: bool
    value: Any


def error_record(exc: BaseException) -> dict[str, Any]:
    """What the journal keeps of an item's failure."""
    status = getattr(exc, "status_code", None)
    return {"type": type(exc).__name__, "message": str(exc), "reason": getattr(exc, "reason", None) or "errored",
            "status": status if isinstance(status, int) else None}


def restore_error(record: Mapping[str, Any], *, provider: str, job_id: str, custom_id: str) -> JobError:
    """A journaled failure, as the `JobError` that stands in the item's place."""
    reason = record.get("reason") if isinstance(record.get("reason"), str) else "errored"
    return JobError(f"{record.get('type', 'Error')}: {record.get('message', '')}", provider=provider, job_id=job_id,
                    reason=str(reason), custom_id=custom_id)


class JobJournal:
    """`JobJournal(path)`: read what the file holds, then append to it (see the module docstring)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self.header: dict[str, Any] | None = None
        self.intents: dict[str, Intent] = {}  # by label, in the order announced
        self.answers: dict[str, dict[str, Answer]] = {}  # job id -> custom id -> answer
        self.ended: dict[str, str] = {}  # job id -> the state it ended in
        self._file: IO[bytes] | None = None
        self._broken: JournalError | None = None
        complete = self._load()
        if complete is not None:  # the torn last line of a killed run
            try:
                with open(self.path, "r+b") as fh:
                    fh.truncate(complete)
            except OSError as exc:
                raise JournalError(f"cannot write journal {self.path!r}: {exc.strerror}") from None

    # -- reading -------------------------------------------------------------------------------

    def _load(self) -> int | None:
        data = read_journal(self.path)
        if data is None:
            return None
        complete = data.rfind(b"\n") + 1
        for number, line in enumerate(data[:complete].splitlines(), 1):
            if line.strip():
                self._read(number, line)
        return complete if complete < len(data) else None

    def _read(self, number: int, line: bytes) -> None:
        where = f"journal {self.path!r} line {number}"
        try:
            entry = _json.loads(line)
        except _json.JSONDecodeError:
            raise JournalError(f"{where} is not JSON") from None
        if not isinstance(entry, dict):
            raise JournalError(f"{where} is not a JSON object")
        if self.header is None:
            if "index" in entry:
                raise JournalError(f"journal {self.path!r} was written by batch.map or the batch command "
                                   "(rig_sync.journal), not by batch.submit; give batch.submit a journal path "
                                   "of its own")
            if entry.get("batch_jobs") != VERSION:
                raise JournalError(f"journal {self.path!r} is not a batch.submit journal (its first line has no "
                                   f"\"batch_jobs\": {VERSION}); give batch.submit a journal path of its own")
            self.header = entry
            return
        try:
            self._apply(entry)
        except (KeyError, TypeError, ValueError):
            raise JournalError(f"{where} is not a batch.submit journal entry: {line[:120]!r}") from None

    def _apply(self, entry: dict[str, Any]) -> None:
        if "answer" in entry:
            job, cid, ok = _text(entry["job"]), _text(entry["answer"]), entry["ok"]
            if not isinstance(ok, bool):
                raise TypeError("ok")
            value = entry["body"] if ok else entry["error"]
            self.answers.setdefault(job, {})[cid] = Answer(_text(entry["item"]), ok, value)
        elif "intent" in entry:
            items = entry["items"]
            if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
                raise TypeError("items")
            at = entry["at"]
            if isinstance(at, bool) or not isinstance(at, (int, float)):
                raise TypeError("at")
            self.intents[_text(entry["intent"])] = Intent(_text(entry["intent"]), float(at), items)
        elif "created" in entry:
            self.intents[_text(entry["created"])].job_id = _text(entry["id"])
        elif "ended" in entry:
            self.ended[_text(entry["ended"])] = _text(entry["state"])
        elif "abandoned" in entry:
            self.intents[_text(entry["abandoned"])].abandoned = True
        else:
            raise KeyError("kind")

    # -- writing -------------------------------------------------------------------------------

    def begin(self, provider: str, model: str, kind: str) -> None:
        """Bind the journal to one provider, model and kind: a new file gets the header, an old
        one must carry the same (`JournalError` otherwise)."""
        mine = {"batch_jobs": VERSION, "provider": provider, "model": model, "kind": kind}
        if self.header is None:
            self._write([mine])
            self.header = mine
            return
        theirs = {k: self.header.get(k) for k in mine}
        if theirs != mine:
            raise JournalError(
                f"journal {self.path!r} holds {theirs['kind']} jobs of {theirs['provider']}:{theirs['model']}, "
                f"not {kind} jobs of {provider}:{model}; give this batch another journal path")

    def intend(self, label: str, items: list[str], at: float) -> Intent:
        """Announce a job (before creating it)."""
        self._write([{"intent": label, "at": at, "items": items}])
        intent = self.intents[label] = Intent(label, at, items)
        return intent

    def created(self, label: str, job_id: str) -> None:
        """Note the id of the job announced as `label`."""
        self._write([{"created": label, "id": job_id}])
        self.intents[label].job_id = job_id

    def abandon(self, label: str) -> None:
        """Give up on an announced job that was never created (or never found)."""
        self._write([{"abandoned": label}])
        self.intents[label].abandoned = True

    def record(self, job_id: str, answers: Iterable[tuple[str, Answer]]) -> None:
        """Keep the answers of job `job_id` (custom id, answer); one line each."""
        lines: list[dict[str, Any]] = []
        kept = self.answers.setdefault(job_id, {})
        for cid, answer in answers:
            outcome = {"body": answer.value} if answer.ok else {"error": answer.value}
            lines.append({"answer": cid, "job": job_id, "item": answer.item, "ok": answer.ok, **outcome})
            kept[cid] = answer
        self._write(lines)

    def end(self, job_id: str, state: str) -> None:
        """Every answer of `job_id` is above."""
        self._write([{"ended": job_id, "state": state}])
        self.ended[job_id] = state

    def _write(self, entries: list[dict[str, Any]]) -> None:
        if self._broken is not None:
            raise self._broken
        try:
            encoded = [_json.dumps_file(entry) + b"\n" for entry in entries]
        except (TypeError, ValueError) as exc:
            raise JournalError(f"cannot store an answer in journal {self.path!r} as JSON: {exc}") from None
        try:
            if self._file is None:
                # Unbuffered: each line is one write, on its way to the disk when this returns.
                self._file = open(self.path, "ab", buffering=0)
            for line in encoded:
                if self._file.write(line) != len(line):
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # a short write: the disk is full
        except OSError as exc:
            self._broken = JournalError(f"cannot write journal {self.path!r}: {exc.strerror or exc} "
                                        "(free space, or give another path)")
            raise self._broken from exc

    def close(self) -> None:
        """Close the file (a later write opens it again)."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def __repr__(self) -> str:
        return f"JobJournal({self.path!r}, jobs={sum(i.job_id is not None for i in self.intents.values())})"


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError("text")
    return value
