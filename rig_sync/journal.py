"""Resumable jobs: a JSON-lines journal of finished batch items, matched to items by content.

One line per finished item, appended to the file (unbuffered) the moment it finishes, so a
process killed with SIGKILL loses nothing that had finished:

    {"index": 3, "ok": true, "result": "the answer", "job": "5f0c…", "item": "9a1e…"}
    {"index": 4, "ok": false, "error": {"type": "RateLimitError", "message": "…"}, "job": "5f0c…", "item": "77b2…"}

What resume matches on: an entry is reused for an item only when both fingerprints match —
`job`, a hash of what produced the results (the batch function's module and qualified name, or
the `job=` string given to `batch.map`), and `item`, a hash of the item itself (or of `key(item)`).
Position plays no part: an item moved, inserted or changed is never given another item's
answer; a changed item is simply run again. An item listed twice gets two entries, one each.
Failures are run again. A journal holding only other jobs' entries (another function, or a file
from before fingerprints) is refused with `JournalError`, unless `on_mismatch="redo"`, which
leaves those entries in the file and runs every item.

Which items can be fingerprinted: JSON values (str, int, float, bool, None, lists, tuples, and
dicts with str keys, compared exactly: 1, 1.0 and True differ) and bytes. Anything else is
refused: its `repr` may hold a memory address (never equal twice), be abridged (numpy arrays:
two items, one answer) or depend on the hash seed (sets). Give `key=` a function returning a
JSON value that identifies the item, e.g. `key=lambda doc: doc.id`.

What is stored: results must be JSON values — they come back as they were (tuples as lists),
every string included (a lone surrogate, half an emoji, is written as its JSON escape). Anything
else is refused with `JournalError` naming the type: give `Journal(path, encode=…, decode=…)`,
e.g. `encode=lambda r: r.text` for completion responses. Lines may carry other keys (the `batch`
command adds "id"); they are ignored here. The half-written last line a kill can leave behind
is cut off when the journal is reopened.
"""

from __future__ import annotations

import collections
import errno
import functools
import hashlib
import json
import os
import stat
import threading
from collections.abc import Callable
from typing import Any, Literal, Protocol

from . import _json
from .errors import RigError

__all__ = ["Journal", "JournalError", "JournalLike", "fingerprint", "job_name", "read_journal"]

OnMismatch = Literal["refuse", "redo"]


class JournalError(RigError):
    """The journal cannot be read, belongs to another job, or cannot store a result."""


def read_journal(path: str) -> bytes | None:
    """A journal file's bytes (None if it does not exist yet); a path that is not a regular file
    (a device such as /dev/zero would be read for ever, a directory) is refused."""
    try:
        with open(path, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                raise JournalError(f"journal {path!r} is not a regular file; give a file path")
            return fh.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise JournalError(f"cannot read journal {path!r}: {exc.strerror}") from None


class JournalLike(Protocol):
    """What `rig_sync.batch` needs of a journal (`Journal` is the one to use)."""

    def begin(self, job: str, *, on_mismatch: OnMismatch = "refuse") -> None: ...

    def take(self, item: str) -> tuple[bool, Any]: ...

    def record(self, index: int, outcome: Any, ok: bool, *, item: str) -> None: ...

    def hold(self) -> None: ...

    def release(self) -> None: ...

    def close(self) -> None: ...


def _canonical(value: Any, out: list[str]) -> None:
    if value is None or isinstance(value, bool | str):
        out.append(json.dumps(value))  # ASCII: a lone surrogate is an escape like any other
    elif isinstance(value, int):
        out.append(int.__repr__(value))
    elif isinstance(value, float):
        out.append(float.__repr__(value))  # exact, and 1.0 stays apart from 1
    elif isinstance(value, bytes):
        out.append("b" + json.dumps(value.hex()))  # no JSON text starts with b
    elif isinstance(value, list | tuple):
        out.append("[")
        for n, element in enumerate(value):
            out.append("," if n else "")
            _canonical(element, out)
        out.append("]")
    elif isinstance(value, dict) and all(isinstance(k, str) for k in value):
        out.append("{")
        for n, k in enumerate(sorted(value)):
            out.append(("," if n else "") + json.dumps(k) + ":")
            _canonical(value[k], out)
        out.append("}")
    else:
        raise TypeError(type(value).__name__)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def fingerprint(value: Any) -> str:
    """A stable hash of a JSON value (or bytes), equal across runs and machines exactly when the
    values are equal. `TypeError` naming the type for anything else."""
    out: list[str] = []
    _canonical(value, out)
    return _digest("".join(out))


def job_name(fn: Callable[..., Any]) -> str:
    """A batch function's identity: its module and qualified name (of its class for a callable
    object; of the wrapped function for a `functools.partial`, whose arguments are not part of it)."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    named: Any = fn if getattr(fn, "__qualname__", None) else type(fn)
    return f"{getattr(named, '__module__', None) or 'builtins'}.{named.__qualname__}"


def _identity(value: Any) -> Any:
    return value


class Journal:
    """`Journal(path)`; results must be JSON values unless `encode`/`decode` convert them.
    `rig_sync.batch` binds it to a job (`begin`) and asks it for each item's earlier result (`take`)."""

    def __init__(self, path: str | os.PathLike[str], *, encode: Callable[[Any], Any] = _identity,
                 decode: Callable[[Any], Any] = _identity) -> None:
        self.path = os.fspath(path)
        self._encode = encode
        self._decode = decode
        self._lock = threading.Lock()
        self._landed = threading.Condition(self._lock)
        self._done: dict[int, Any] = {}
        self._failed: dict[int, dict[str, Any]] = {}
        self._jobs: collections.Counter[str | None] = collections.Counter()  # entries per job; None: unfingerprinted
        self._saved: dict[tuple[str, str], collections.deque[Any]] = {}  # (job, item) -> results, oldest first
        self._job: str | None = None
        self._ready: dict[str, collections.deque[Any]] = {}
        self._held = 0
        self._closing = False
        self._broken: JournalError | None = None
        complete = self._load()
        try:
            # Unbuffered: each line is one write, on its way to the disk when `record` returns.
            self._file = open(self.path, "ab", buffering=0)  # kept open for the life of the batch
            if complete is not None:
                self._file.truncate(complete)  # cut the torn last line of a killed run
        except OSError as exc:
            raise JournalError(f"cannot write journal {self.path!r}: {exc.strerror}") from None

    def _load(self) -> int | None:
        """Read earlier entries; the length of the complete lines if a torn line follows them."""
        data = read_journal(self.path)
        if data is None:
            return None
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
            job, item = entry.get("job"), entry.get("item")
            keyed = isinstance(job, str) and isinstance(item, str)
            self._jobs[job if keyed else None] += 1
            if entry.get("ok") is True:
                result = self._decode(entry.get("result"))
                self._done[index] = result
                self._failed.pop(index, None)
                if keyed:
                    self._saved.setdefault((job, item), collections.deque()).append(result)
            elif index not in self._done:
                error = entry.get("error")
                self._failed[index] = error if isinstance(error, dict) else {}
        return complete if complete < len(data) else None

    def begin(self, job: str, *, on_mismatch: OnMismatch = "refuse") -> None:
        """Bind the journal to `job` (a `job_name` or the caller's key): `take` offers only its
        entries, `record` marks new ones with it. `JournalError` if every entry is another job's,
        unless `on_mismatch="redo"` (those entries stay in the file, unused)."""
        if on_mismatch not in ("refuse", "redo"):
            raise ValueError(f"on_mismatch must be 'refuse' or 'redo', not {on_mismatch!r}")
        digest = _digest(job)
        with self._lock:
            others = sum(n for j, n in self._jobs.items() if j != digest)
            if others and not self._jobs[digest] and on_mismatch == "refuse":
                raise JournalError(self._mismatch(job, digest, others))
            self._job = digest
            self._ready = {item: collections.deque(results)
                           for (j, item), results in self._saved.items() if j == digest}

    def _mismatch(self, job: str, digest: str, others: int) -> str:
        fix = ("use another journal path, delete this file to start afresh, or pass on_mismatch='redo' "
               "to run every item again (its entries stay in the file, unused)")
        if self._jobs[None] == others:
            return (f"journal {self.path!r} was written without fingerprints (by an earlier rig_sync, or by hand), "
                    f"so its {others} entries cannot be matched to items safely; {fix}")
        theirs = ", ".join(sorted(j for j in self._jobs if j is not None))
        return (f"journal {self.path!r} holds {others} entries of another job (fingerprint {theirs}), not of "
                f"{job!r} (fingerprint {digest}): another function, or another job= key; {fix}")

    def take(self, item: str) -> tuple[bool, Any]:
        """`(True, result)` if this job's journal holds an unused result for `item` (an item's
        fingerprint; each entry is handed out once), else `(False, None)`."""
        with self._lock:
            results = self._ready.get(item)
            return (True, results.popleft()) if results else (False, None)

    def finished(self) -> dict[int, Any]:
        """Results of the items that finished (earlier runs and this one), by the index each was recorded under."""
        with self._lock:
            return dict(self._done)

    def failed(self) -> dict[int, dict[str, Any]]:
        """The last recorded error (`{"type", "message"}`) of indexes that have not succeeded."""
        with self._lock:
            return dict(self._failed)

    def is_finished(self, index: int) -> bool:
        return index in self._done

    def record(self, index: int, outcome: Any, ok: bool, *, item: str | None = None, **extra: Any) -> None:
        """Append one finished item (a result, or the error that failed it), fingerprinted with
        the job and `item`. `extra` keys are stored alongside (and ignored when loading).
        `JournalError` naming the path if the line cannot be encoded or written; after a write
        error every later `record` refuses too (a line is never written after a torn one)."""
        keys = {"job": self._job, "item": item} if self._job and item else {}
        if ok:
            try:
                line = _json.dumps_file({"index": index, **extra, "ok": True, "result": self._encode(outcome), **keys})
            except (TypeError, ValueError) as exc:
                raise JournalError(
                    f"cannot store the result of item {index} ({type(outcome).__name__}) in journal {self.path!r} "
                    f"as JSON: {exc}. Return JSON values from the batch function, or give Journal(path, encode=…, "
                    "decode=…)"
                ) from None
        else:
            error = {"type": type(outcome).__name__, "message": str(outcome)}
            line = _json.dumps_file({"index": index, **extra, "ok": False, "error": error, **keys})
        with self._lock:
            if self._broken is not None:
                raise self._broken
            if self._file.closed:
                raise JournalError(f"journal {self.path!r} is closed; item {index} was not recorded")
            try:
                if self._file.write(line + b"\n") != len(line) + 1:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # a short write: the disk is full
            except OSError as exc:
                self._broken = JournalError(f"cannot write journal {self.path!r}: {exc.strerror or exc}; item {index} "
                                            "and later items were not recorded (free space, or give another path)")
                raise self._broken from exc
            if ok:
                self._done[index] = outcome
                self._failed.pop(index, None)
            else:
                self._failed[index] = error

    def hold(self) -> None:
        """An answer is on the wire and will be recorded when it lands: `close` waits for it."""
        with self._lock:
            self._held += 1

    def release(self) -> None:
        """The held answer was recorded (or failed to be); the last release finishes a `close`."""
        with self._lock:
            self._held -= 1
            if self._held == 0:
                self._landed.notify_all()
                if self._closing:
                    self._file.close()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until every held answer has been recorded; False if `timeout` seconds passed first."""
        with self._lock:
            return self._landed.wait_for(lambda: self._held == 0, timeout)

    @property
    def held(self) -> int:
        """How many answers on the wire are yet to be recorded."""
        return self._held

    def close(self) -> None:
        """Close the file — at once, or when the last held answer has been recorded."""
        with self._lock:
            self._closing = True
            if self._held == 0 and not self._file.closed:
                self._file.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Journal({self.path!r}, finished={len(self._done)})"
