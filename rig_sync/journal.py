"""Resumable jobs: a JSON-lines journal of finished batch items.

One line per finished item, appended and flushed to the operating system the moment it
finishes, so a process killed with SIGKILL loses nothing that had finished:

    {"index": 3, "ok": true, "result": "the answer"}
    {"index": 4, "ok": false, "error": {"type": "RateLimitError", "message": "…"}}

Opening the journal again loads the successes (a later run skips them; failures are run again).
The half-written last line a kill can leave behind is cut off when the journal is reopened.
Lines may carry other keys (the `batch` command adds "id"); they are ignored here.

What is stored: results must be JSON values (str, numbers, bool, None, lists, dicts) — they are
stored as they are and come back as they were (tuples come back as lists). Anything else is
refused with `JournalError` at the first such result, before more is spent, naming the type:
give `Journal(path, encode=…, decode=…)` to store something else, e.g.
`encode=lambda r: r.text` for completion responses, or
`encode=lambda e: e.vec, decode=…` for embeddings. A journal belongs to one list of items:
entries are matched to items by their position.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any, Protocol

from . import _json
from .errors import RigError

__all__ = ["Journal", "JournalError", "JournalLike"]


class JournalError(RigError):
    """The journal cannot be read or a result cannot be stored in it."""


class JournalLike(Protocol):
    """What `rig_sync.batch` needs of a journal."""

    def finished(self) -> dict[int, Any]: ...

    def is_finished(self, index: int) -> bool: ...

    def record(self, index: int, outcome: Any, ok: bool) -> None: ...

    def close(self) -> None: ...


def _identity(value: Any) -> Any:
    return value


class Journal:
    """`Journal(path)`; results must be JSON values unless `encode`/`decode` convert them."""

    def __init__(self, path: str | os.PathLike[str], *, encode: Callable[[Any], Any] = _identity,
                 decode: Callable[[Any], Any] = _identity) -> None:
        self.path = os.fspath(path)
        self._encode = encode
        self._decode = decode
        self._lock = threading.Lock()
        self._done: dict[int, Any] = {}
        self._failed: dict[int, dict[str, Any]] = {}
        complete = self._load()
        try:
            self._file = open(self.path, "ab")  # kept open for the life of the batch
            if complete is not None:
                self._file.truncate(complete)  # cut the torn last line of a killed run
        except OSError as exc:
            raise JournalError(f"cannot write journal {self.path!r}: {exc.strerror}") from None

    def _load(self) -> int | None:
        """Read earlier entries; the length of the complete lines if a torn line follows them."""
        try:
            with open(self.path, "rb") as fh:
                data = fh.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise JournalError(f"cannot read journal {self.path!r}: {exc.strerror}") from None
        complete = data.rfind(b"\n") + 1
        for number, line in enumerate(data[:complete].splitlines(), 1):
            if not line.strip():
                continue
            try:
                entry = _json.loads(line)
            except _json.JSONDecodeError:
                raise JournalError(f"journal {self.path!r} line {number} is not JSON") from None
            index = entry.get("index") if isinstance(entry, dict) else None
            if not isinstance(index, int) or isinstance(index, bool):
                raise JournalError(f"journal {self.path!r} line {number} has no item index")
            if entry.get("ok") is True:
                self._done[index] = self._decode(entry.get("result"))
                self._failed.pop(index, None)
            elif index not in self._done:
                error = entry.get("error")
                self._failed[index] = error if isinstance(error, dict) else {}
        return complete if complete < len(data) else None

    def finished(self) -> dict[int, Any]:
        """Results of the items that finished (earlier runs and this one), by index."""
        with self._lock:
            return dict(self._done)

    def failed(self) -> dict[int, dict[str, Any]]:
        """The last recorded error (`{"type", "message"}`) of items that have not succeeded."""
        with self._lock:
            return dict(self._failed)

    def is_finished(self, index: int) -> bool:
        return index in self._done

    def record(self, index: int, outcome: Any, ok: bool, **extra: Any) -> None:
        """Append one finished item (a result, or the error that failed it) and flush.
        `extra` keys are stored alongside (and ignored when loading)."""
        if ok:
            try:
                line = _json.dumps({"index": index, **extra, "ok": True, "result": self._encode(outcome)})
            except (TypeError, ValueError) as exc:
                raise JournalError(
                    f"cannot store the result of item {index} ({type(outcome).__name__}) in the journal as JSON: "
                    f"{exc}. Return JSON values from the batch function, or give Journal(path, encode=…, decode=…)"
                ) from None
        else:
            error = {"type": type(outcome).__name__, "message": str(outcome)}
            line = _json.dumps({"index": index, **extra, "ok": False, "error": error})
        with self._lock:
            if self._file.closed:
                raise JournalError(f"journal {self.path!r} is closed; item {index} was not recorded")
            self._file.write(line + b"\n")
            self._file.flush()
            if ok:
                self._done[index] = outcome
                self._failed.pop(index, None)
            else:
                self._failed[index] = error

    def close(self) -> None:
        with self._lock:
            if not self._file.closed:
                self._file.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Journal({self.path!r}, finished={len(self._done)})"
