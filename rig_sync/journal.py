"""Resumable jobs: a JSON-lines journal of finished batch items.

Each finished item is appended as one line and flushed to the operating system at once, so a
process killed with SIGKILL loses nothing that had finished. Opening the journal again loads the
successes (failures are retried); a half-written last line from a kill is ignored.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

from . import _json
from .errors import RigError

__all__ = ["Journal", "JournalError"]


class JournalError(RigError):
    """The journal cannot be read or a result cannot be stored in it."""


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
        self._load()
        self._file = open(self.path, "ab")  # kept open for the life of the batch
        if self._needs_newline:
            self._file.write(b"\n")
            self._file.flush()

    def _load(self) -> None:
        self._needs_newline = False
        try:
            with open(self.path, "rb") as fh:
                data = fh.read()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise JournalError(f"cannot read journal {self.path!r}: {exc.strerror}") from None
        self._needs_newline = bool(data) and not data.endswith(b"\n")
        for number, line in enumerate(data.splitlines(), 1):
            if not line.strip():
                continue
            try:
                entry = _json.loads(line)
            except _json.JSONDecodeError:
                if number == data.count(b"\n") + 1:
                    continue  # the torn last line of a killed run
                raise JournalError(f"journal {self.path!r} line {number} is not JSON") from None
            if isinstance(entry, dict) and entry.get("ok") and isinstance(entry.get("i"), int):
                self._done[entry["i"]] = self._decode(entry.get("result"))

    def finished(self) -> dict[int, Any]:
        """Results of the items a previous run finished, by index."""
        return dict(self._done)

    def is_finished(self, index: int) -> bool:
        return index in self._done

    def record(self, index: int, outcome: Any, ok: bool) -> None:
        """Append one finished item (a result, or the error that failed it) and flush."""
        if ok:
            try:
                line = _json.dumps({"i": index, "ok": True, "result": self._encode(outcome)})
            except TypeError as exc:
                raise JournalError(
                    f"cannot store the result of item {index} ({type(outcome).__name__}) as JSON: {exc}. "
                    "Return JSON values from the batch function, or give Journal(path, encode=…, decode=…)"
                ) from None
        else:
            error = {"type": type(outcome).__name__, "message": str(outcome)}
            line = _json.dumps({"i": index, "ok": False, "error": error})
        with self._lock:
            self._file.write(line + b"\n")
            self._file.flush()
            if ok:
                self._done[index] = outcome

    def close(self) -> None:
        with self._lock:
            if not self._file.closed:
                self._file.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
