"""Batch and fan-out without asyncio: threads, in order, nothing lost.

    from rig_sync import batch
    answers = batch.map(lambda p: model.completion_request(p).send().text, prompts, max_workers=16)

* `map` returns results in input order. A failure raises `BatchError` carrying every finished
  result and every failure with its index (or, with `return_exceptions=True`, the exception
  stands in the failed item's place).
* `imap` yields `(index, result_or_exception)` as items finish, holding at most `2 * max_workers`
  items at once, so an iterator of a million prompts is never materialised.
* `journal=path` appends every finished item to a JSON-lines file as it completes; a job started
  again with the same journal reuses an entry only for the same item (by content, or `key=`) of
  the same job (the function's module and name, or `job=`), never by position; a journal of
  another job is refused unless `on_mismatch="redo"` (see `rig_sync.journal`). If the journal
  cannot be written (a full disk), no new item starts and `BatchJournalError` carries the results.
* Ctrl-C stops promptly: nothing new starts, queued work is cancelled, what finished is in the
  `BatchInterrupted` error and the journal; requests already on the wire are left to finish in
  the background and are journaled when they land (they were paid for): the journal, yours or
  the batch's, closes only after the last of them.
* `executor=` takes any `concurrent.futures.Executor`, e.g. a Dask cluster's
  `Client(...).get_executor()`: clients and models pickle without their connections.
* Threads: a batch runs on a pool of exactly `max_workers` threads; back-to-back batches reuse a
  warm pool of their size instead of starting new threads each time (an interrupted batch's pool,
  with requests still running, is shut down instead).
* Connections: every client's pool blocks instead of overflowing, so a batch never opens more
  connections than the pool holds (`pool_size`, 64 by default) however many workers share it;
  `embed_texts` and `fan_out` also cap their workers at the model's pool.
* `submit(model, requests)` sends the same requests as the provider's own batch job instead (about
  half the price, answers within 24 hours): a `BatchJob` to `wait()` on, resumable through a
  journal; `attach` reattaches to one (see `rig_sync.batch_jobs`, imported on first use).
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import os
import queue
import threading
from collections import OrderedDict
from collections.abc import Callable, Generator, Iterable, Sequence, Sized
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar, overload

from ._checks import whole
from .errors import RigError
from .http import CancelScope, deadline
from .journal import JournalError, OnMismatch, fingerprint, job_name
from .progress import Progress, make_progress

if TYPE_CHECKING:
    from .client.builder import DynClientBuilder
    from .completion import CompletionModel
    from .embeddings import Embedding, EmbeddingModel
    from .journal import JournalLike
    from .ratelimit import RateLimiter

    JournalArg = str | os.PathLike[str] | JournalLike | None  # a path (opened and closed by the batch) or yours
    from .batch_jobs import (
        BatchJob,
        BatchJobInterrupted,
        BatchTimeout,
        JobNotFoundError,
        SubmitError,
        attach,
        submit,
    )

__all__ = ["map", "imap", "fan_out", "embed_texts", "BatchError", "BatchInterrupted", "BatchJournalError",
           "FanOutError", "submit", "attach", "BatchJob", "BatchJobInterrupted", "BatchTimeout", "JobNotFoundError",
           "SubmitError"]

# Provider batch jobs live in rig_sync.batch_jobs, imported when first named here (`batch.submit`).
_JOBS = frozenset({"submit", "attach", "BatchJob", "BatchJobInterrupted", "BatchTimeout", "JobNotFoundError",
                   "SubmitError"})


def __getattr__(name: str) -> Any:
    if name in _JOBS:
        from . import batch_jobs

        return getattr(batch_jobs, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

T = TypeVar("T")
R = TypeVar("R")

DEFAULT_WORKERS = 16


class BatchError(RigError, Generic[R]):
    """Some items failed. `results[i]` is the result of item i (None where it failed or never
    ran); `failures` maps each failed index to its exception. Nothing is dropped."""

    def __init__(self, results: list[R | None], failures: dict[int, BaseException], message: str = "") -> None:
        self.results = results
        self.failures = dict(sorted(failures.items()))
        first = next(iter(self.failures.items()), None)
        detail = f"; first: item {first[0]}: {type(first[1]).__name__}: {first[1]}" if first else ""
        super().__init__(message or f"{len(self.failures)} of {len(results)} items failed{detail}")

    @property
    def succeeded(self) -> dict[int, R]:
        """Finished results by index."""
        return {i: r for i, r in enumerate(self.results) if i not in self.failures and r is not None}


class BatchInterrupted(BatchError[R], KeyboardInterrupt):
    """Ctrl-C arrived. Finished results and failures are kept; `pending` lists the items that
    did not finish (never started, cancelled, or still on the wire when the batch stopped)."""

    def __init__(self, results: list[R | None], failures: dict[int, BaseException], pending: list[int]) -> None:
        self.pending = pending
        super().__init__(results, failures, f"interrupted with {len(pending)} of {len(results)} items not done")


class BatchJournalError(BatchError[R], JournalError):
    """The journal could not record an item (a full disk, a result it cannot store), so no new
    item was started. `results` holds every result that came back, journaled or not; `pending`
    the items that never ran; the `JournalError` naming the path is the `__cause__`."""

    def __init__(self, results: list[R | None], failures: dict[int, BaseException], pending: list[int],
                 cause: JournalError) -> None:
        self.pending = pending
        done = len(results) - len(pending) - len(failures)
        super().__init__(results, failures, f"{cause}; the batch stopped with {done} of {len(results)} results "
                                            f"(in .results), {len(pending)} items not run")


class FanOutError(RigError):
    """Every target of a fan-out failed; `errors` maps each target (as given) to its exception."""

    def __init__(self, errors: dict[Any, BaseException]) -> None:
        self.errors = errors
        summary = "; ".join(f"{_label(t)}: {type(e).__name__}: {e}" for t, e in errors.items())
        super().__init__(f"all {len(errors)} targets failed: {summary}")


def _check_workers(max_workers: int) -> int:
    return whole(max_workers, "max_workers", minimum=1)


def _check_limiter(limiter: object) -> None:
    # Else every item would fail alike, in the worker, as a BatchError.
    if limiter is not None and not callable(getattr(limiter, "acquire", None)):
        raise TypeError(f"rate_limit must be a RateLimiter (or have an acquire() method), not {limiter!r}")


def _check_fn(fn: object) -> None:
    # Else every item would fail alike, one worker call at a time, as a BatchError.
    if not callable(fn):
        raise TypeError(f"fn must be callable, not {type(fn).__name__}")


# --- the engine shared by map and imap ----------------------------------------------------------


class _IdlePools:
    """Thread pools kept warm between batches, by size.

    Back-to-back batches (a job sending bursts, a web view calling `map` per request) would
    otherwise start `max_workers` new threads every time while the last batch's threads are
    still winding down. A batch takes a pool of exactly its size, so `max_workers` still bounds
    it; it gives the pool back only if nothing of its own is still running. At most one pool per
    size and `KEEP` sizes are kept; a forked child forgets them (their threads are the parent's)."""

    KEEP = 2

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: OrderedDict[int, cf.ThreadPoolExecutor] = OrderedDict()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._forget)

    def take(self, workers: int) -> cf.ThreadPoolExecutor:
        with self._lock:
            pool = self._idle.pop(workers, None)
        return pool or cf.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rig_sync.batch")

    def give_back(self, workers: int, pool: cf.ThreadPoolExecutor) -> None:
        with self._lock:
            if workers in self._idle:
                extra: cf.ThreadPoolExecutor | None = pool  # one warm pool per size is enough
            else:
                self._idle[workers] = pool
                extra = self._idle.popitem(last=False)[1] if len(self._idle) > self.KEEP else None
        if extra is not None:
            extra.shutdown(wait=False)

    def _forget(self) -> None:
        self._lock = threading.Lock()
        self._idle = OrderedDict()


_pools = _IdlePools()


def _outcome(future: cf.Future[Any]) -> tuple[Any, bool]:
    try:
        return future.result(), True
    except Exception as exc:  # noqa: BLE001 - every failure (and a foreign executor's cancel) is reported
        return exc, False


def _run(
    fn: Callable[[T], R],
    items: Iterable[T],
    *,
    max_workers: int,
    rate_limit: RateLimiter | None,
    executor: cf.Executor | None,
    journal: JournalArg,
    job: str | None,
    key: Callable[[T], Any] | None,
    on_mismatch: OnMismatch,
    progress: bool | Progress | None,
    total: int | None,
    sink: Callable[[int, Any], None] | None = None,
    prints: Sequence[str] | None = None,
    item_timeout: float | None = None,
) -> Generator[tuple[int, Any], None, None]:
    """Submit items as slots free up, yield outcomes as they finish. `sink` sees every outcome
    before the progress bar does, so an interrupt raised by the bar never loses the item.
    `prints`: the items' fingerprints, if the caller has them already."""
    workers = _check_workers(max_workers)
    _check_limiter(rate_limit)
    if total is None and isinstance(items, Sized):
        total = len(items)
    log, own_log = _open_journal(journal)
    if log is not None:
        try:
            log.begin(job if job is not None else job_name(fn), on_mismatch=on_mismatch)
        except BaseException:
            if own_log:
                log.close()
            raise
    bar = make_progress(progress, total)
    own: cf.ThreadPoolExecutor | None = None  # ours: given back when idle
    if executor is None:
        executor = own = _pools.take(workers)
    call = _within(fn, item_timeout) if item_timeout is not None else fn
    call = _limited(call, rate_limit) if rate_limit is not None else call
    in_flight: dict[cf.Future[Any], tuple[int, str]] = {}  # index and fingerprint ("" without a journal)
    # Finished futures arrive here: O(1) per item, where cf.wait re-arms every pending future
    # on each wake-up (a GIL-held cost the worker threads feel).
    finished: queue.SimpleQueue[cf.Future[Any]] = queue.SimpleQueue()
    source = enumerate(items)
    exhausted = False
    broken: list[JournalError] = []  # the journal refused a line: start nothing more

    def finish(index: int, print_: str, future: cf.Future[Any]) -> tuple[Any, bool]:
        outcome, ok = _outcome(future)
        if log is not None and not broken:
            try:
                log.record(index, outcome, ok, item=print_)
            except JournalError as exc:
                broken.append(exc)
        if sink is not None:
            sink(index, outcome)
        return outcome, ok

    try:
        while True:
            while not exhausted and not broken and len(in_flight) < 2 * workers:
                try:
                    index, item = next(source)
                except StopIteration:
                    exhausted = True
                    break
                print_ = ""
                if log is not None:
                    print_ = prints[index] if prints is not None else _fingerprint(key, item, index)
                    found, earlier = log.take(print_)
                    if found:  # this job's answer to this very item: not run again
                        bar.skip(1)
                        if sink is not None:
                            sink(index, earlier)
                        yield index, earlier
                        continue
                future = executor.submit(call, item)
                in_flight[future] = index, print_
                future.add_done_callback(finished.put)
            if broken:  # what has not started never will; what runs is kept when it lands
                for future in [f for f in in_flight if f.cancel()]:
                    del in_flight[future]
            if not in_flight:
                if broken:
                    raise broken[0]
                return
            done = [finished.get()]
            while not finished.empty():
                done.append(finished.get_nowait())
            for future in sorted((f for f in done if f in in_flight), key=in_flight.__getitem__):
                index, print_ = in_flight.pop(future)
                outcome, ok = finish(index, print_, future)
                bar.update(ok)
                yield index, outcome
    finally:
        stragglers = _settle(in_flight, finish, log)
        if own is not None:
            if stragglers:  # interrupted with requests on the wire: the pool is not idle
                own.shutdown(wait=False, cancel_futures=True)
            else:
                _pools.give_back(workers, own)
        bar.close()
        if log is not None and own_log:
            log.close()  # at once, or when the last straggler has been journaled


def _fingerprint(key: Callable[[Any], Any] | None, item: Any, index: int) -> str:
    try:
        return fingerprint(item if key is None else key(item))
    except TypeError as exc:
        what = f"item {index} ({type(item).__name__})" if key is None else f"key(item {index})"
        raise JournalError(
            f"{what} holds a {exc}, which the journal cannot fingerprint to match its answer to it on resume; "
            "give key=lambda item: … returning JSON values (str, numbers, lists, dicts with str keys) "
            "that identify the item") from None


def _settle(in_flight: dict[cf.Future[Any], tuple[int, str]],
            finish: Callable[[int, str, cf.Future[Any]], Any], log: JournalLike | None) -> list[cf.Future[Any]]:
    """After an interrupt or an abandoned generator: keep what finished, cancel what has not
    started, and return the futures still running (requests on the wire), which journal their
    outcome when they land; the journal is held open for them."""
    running = []
    for future, (index, print_) in sorted(in_flight.items(), key=lambda pair: pair[1]):
        if future.done():
            if not future.cancelled():
                finish(index, print_, future)
        elif not future.cancel():
            running.append(future)
            if log is not None:
                log.hold()
                future.add_done_callback(_recorder(log, index, print_))
    in_flight.clear()
    return running


def _recorder(log: JournalLike, index: int, print_: str) -> Callable[[cf.Future[Any]], None]:
    def record(future: cf.Future[Any]) -> None:
        try:
            log.record(index, *_outcome(future), item=print_)
        except JournalError as exc:  # nobody left to raise to
            logging.getLogger("rig_sync.batch").error("%s", exc)
        finally:
            log.release()

    return record


def imap(
    fn: Callable[[T], R],
    items: Iterable[T],
    *,
    max_workers: int = DEFAULT_WORKERS,
    rate_limit: RateLimiter | None = None,
    executor: cf.Executor | None = None,
    journal: JournalArg = None,
    progress: bool | Progress | None = None,
    total: int | None = None,
    job: str | None = None,
    key: Callable[[T], Any] | None = None,
    on_mismatch: OnMismatch = "refuse",
    item_timeout: float | None = None,
) -> Generator[tuple[int, R | BaseException], None, None]:
    """`(index, result or exception)` for every item, in completion order (an item the journal
    already holds is yielded when it is reached, without running). At most `2 * max_workers`
    items are pulled from `items` ahead of the consumer, whatever its length. Closing the
    generator early stops the batch like Ctrl-C. A journal that cannot be written stops the
    batch: what is running is still yielded, then the `JournalError` is raised. `item_timeout`:
    as for `map`."""
    _check_fn(fn)  # fail at the call, not at the first next()
    _check_workers(max_workers)
    _check_limiter(rate_limit)
    _check_journal_args(job, key, on_mismatch)
    _check_item_timeout(item_timeout)
    return _run(fn, items, max_workers=max_workers, rate_limit=rate_limit, executor=executor, journal=journal,
                job=job, key=key, on_mismatch=on_mismatch, progress=progress, total=total,
                item_timeout=item_timeout)


def _check_journal_args(job: object, key: object, on_mismatch: object) -> None:
    if job is not None and not isinstance(job, str):
        raise TypeError(f"job must be a str naming what produces the results, not {type(job).__name__}")
    if key is not None and not callable(key):
        raise TypeError(f"key must be a function of an item, not {type(key).__name__}")
    if on_mismatch not in ("refuse", "redo"):
        raise ValueError(f"on_mismatch must be 'refuse' or 'redo', not {on_mismatch!r}")


@overload
def map(fn: Callable[[T], R], items: Iterable[T], *, max_workers: int = ..., return_exceptions: Literal[False] = ...,
        progress: bool | Progress | None = ..., rate_limit: RateLimiter | None = ...,
        executor: cf.Executor | None = ..., journal: JournalArg = ..., job: str | None = ...,
        key: Callable[[T], Any] | None = ..., on_mismatch: OnMismatch = ...,
        item_timeout: float | None = ...) -> list[R]: ...


@overload
def map(fn: Callable[[T], R], items: Iterable[T], *, max_workers: int = ..., return_exceptions: Literal[True],
        progress: bool | Progress | None = ..., rate_limit: RateLimiter | None = ...,
        executor: cf.Executor | None = ..., journal: JournalArg = ..., job: str | None = ...,
        key: Callable[[T], Any] | None = ..., on_mismatch: OnMismatch = ...,
        item_timeout: float | None = ...) -> list[R | BaseException]: ...


def map(  # the public name mirrors builtins.map on purpose
    fn: Callable[[T], R],
    items: Iterable[T],
    *,
    max_workers: int = DEFAULT_WORKERS,
    return_exceptions: bool = False,
    progress: bool | Progress | None = None,
    rate_limit: RateLimiter | None = None,
    executor: cf.Executor | None = None,
    journal: JournalArg = None,
    job: str | None = None,
    key: Callable[[T], Any] | None = None,
    on_mismatch: OnMismatch = "refuse",
    item_timeout: float | None = None,
) -> list[R] | list[R | BaseException]:
    """`[fn(item) for item in items]`, run on `max_workers` threads; results in input order.

    Returns the list of results. With `return_exceptions=True` a failed item's exception stands
    in its place and nothing is raised for it. Otherwise raises `BatchError` if any item failed:
    `.results` holds every finished result (None where an item failed) and `.failures` each
    failure by index; Ctrl-C raises `BatchInterrupted` (a `BatchError` that also lists
    `.pending` items). `TypeError`/`ValueError` for a bad `fn`, `max_workers` or `rate_limit`.
    See the module docstring for `journal=`, `executor=` and `progress=`.

    With `journal=`, an item is skipped only if the journal holds its answer from the same job:
    `job` names it (default: `fn`'s module and qualified name — give `job=` when one function
    serves several models or prompts), `key(item)` identifies an item that is not a JSON value.
    `on_mismatch="redo"` runs every item of a journal written by another job instead of refusing
    it. If the journal cannot be written, `BatchJournalError` (a `BatchError`) carries the results.

    `item_timeout` (seconds) is the most each item may take once it starts (after any `rate_limit`
    wait): every request it makes ends by then, or raises `APITimeoutError`, which is the item's
    failure (see `rig_sync.http.deadline`; no thread is added). Work of `fn` that makes no request
    is not interrupted."""
    _check_fn(fn)
    _check_workers(max_workers)
    _check_journal_args(job, key, on_mismatch)
    _check_item_timeout(item_timeout)
    seq = items if isinstance(items, Sequence) else list(items)
    # Every item is fingerprinted before anything is sent: one that cannot be fails the call, not item 5,000.
    prints = [_fingerprint(key, item, i) for i, item in enumerate(seq)] if journal is not None else None
    results: list[Any] = [None] * len(seq)
    finished = bytearray(len(seq))
    failures: dict[int, BaseException] = {}

    def store(index: int, outcome: Any) -> None:
        results[index] = outcome
        finished[index] = 1
        if isinstance(outcome, BaseException):
            failures[index] = outcome

    stream = _run(fn, seq, max_workers=max_workers, rate_limit=rate_limit, executor=executor, journal=journal,
                  job=job, key=key, on_mismatch=on_mismatch, progress=progress, total=len(seq), sink=store,
                  prints=prints, item_timeout=item_timeout)
    try:
        for _ in stream:
            pass
    except KeyboardInterrupt:
        stream.close()  # settles the batch if the interrupt landed between two items
        pending = [i for i, done in enumerate(finished) if not done]
        raise BatchInterrupted(_without(results, failures), failures, pending) from None
    except JournalError as exc:
        if not any(finished):  # refused before anything ran (unreadable, another job's): nothing to carry
            raise
        pending = [i for i, done in enumerate(finished) if not done]
        raise BatchJournalError(_without(results, failures), failures, pending, exc) from exc
    if failures and not return_exceptions:
        raise BatchError(_without(results, failures), failures)
    return results


def _without(results: list[Any], failures: dict[int, BaseException]) -> list[Any]:
    return [None if i in failures else r for i, r in enumerate(results)]


# --- embeddings -------------------------------------------------------------------------------


def embed_texts(
    model: EmbeddingModel,
    texts: Sequence[str],
    *,
    max_workers: int = 8,
    progress: bool | Progress | None = None,
    rate_limit: RateLimiter | None = None,
    executor: cf.Executor | None = None,
) -> list[Embedding]:
    """Embeddings for any number of texts: chunks of `model.max_documents` sent in parallel,
    input order kept. If a chunk fails, `BatchError.results` holds the embeddings of every
    chunk that succeeded (by text index) and `failures` names the first text of each failed chunk."""
    from .embeddings import check_texts

    if not callable(getattr(model, "embed_texts", None)):
        raise TypeError(f"embed_texts needs an EmbeddingModel, not {type(model).__name__}")
    items = check_texts(texts)
    size = max(1, model.max_documents)
    chunks = [items[start:start + size] for start in range(0, len(items), size)]
    workers = _fit_pool(model, min(_check_workers(max_workers), len(chunks)))
    try:
        parts = map(model.embed_texts, chunks, max_workers=workers, progress=progress, rate_limit=rate_limit,
                    executor=executor)
    except BatchError as exc:
        flat: list[Embedding | None] = []
        for i, chunk in enumerate(chunks):
            part = exc.results[i]
            flat.extend(part if part is not None else [None] * len(chunk))
        failures = {i * size: e for i, e in exc.failures.items()}
        error = BatchInterrupted(flat, failures, [i * size for i in exc.pending]) \
            if isinstance(exc, BatchInterrupted) else \
            BatchError(flat, failures, f"{len(failures)} of {len(chunks)} chunks of {size} texts failed")
        raise error from None
    return [embedding for part in parts for embedding in part]


def _fit_pool(model: object, workers: int) -> int:
    """No more workers than the model's client has pooled connections (more would only wait)."""
    transport = getattr(getattr(model, "client", None), "transport", None)
    pool = getattr(transport, "pool_size", None)
    return min(workers, pool) if isinstance(pool, int) and pool > 0 else workers


# --- fan-out ----------------------------------------------------------------------------------

Target = str | tuple[str, str]  # "provider:model" or ("provider", "model")
TargetT = TypeVar("TargetT", bound=Target)  # results are keyed by the targets as the caller typed them


def _label(target: Target) -> str:
    return target if isinstance(target, str) else ":".join(target)



@overload
def fan_out(prompt: str, targets: Sequence[TargetT], *, builder: DynClientBuilder | None = ...,
            preamble: str | None = ..., mode: Literal["all"] = ..., max_workers: int | None = ...,
            ) -> dict[TargetT, str | BaseException]: ...


@overload
def fan_out(prompt: str, targets: Sequence[TargetT], *, builder: DynClientBuilder | None = ...,
            preamble: str | None = ..., mode: Literal["first"], max_workers: int | None = ...,
            ) -> tuple[TargetT, str]: ...


def fan_out(
    prompt: str,
    targets: Sequence[TargetT],
    *,
    builder: DynClientBuilder | None = None,
    preamble: str | None = None,
    mode: Literal["all", "first"] = "all",
    max_workers: int | None = None,
) -> dict[TargetT, str | BaseException] | tuple[TargetT, str]:
    """One prompt to several targets at once, each `"provider:model"` or `("provider", "model")`,
    through `builder` (default: the shared registry, so clients and connections are reused).

    `mode="all"` returns a dict target → answer text, or the exception that target raised in its
    place; keys are the targets exactly as given. `mode="first"` returns `(target, answer)` of the
    first success; the other requests are cut off at once (their sockets are shut down, even
    before the server has answered) and return nothing; `FanOutError` if every target fails.

    Raises before any request: `TypeError`/`ValueError` for malformed, missing or repeated targets
    (`"openai:gpt-4o"` and `("openai", "gpt-4o")` are the same target), `InvalidIdString` for a
    bad id, `UnknownProvider`, `UnsupportedFeature`, and `MissingAPIKeyError` for a target whose
    client cannot be built.
    """
    if mode not in ("all", "first"):
        raise ValueError(f"mode must be 'all' or 'first', not {mode!r}")
    if isinstance(targets, str):
        raise TypeError(f"fan_out targets must be a list of targets; wrap one in a list: [{targets!r:.100}]")
    if not targets:
        raise ValueError("fan_out needs at least one target, e.g. ['openai:gpt-4o']")
    if any(not isinstance(t, str) and not (isinstance(t, tuple) and len(t) == 2 and all(isinstance(p, str) for p in t))
           for t in targets):
        raise TypeError(f"fan_out targets are 'provider:model' strings or (provider, model) tuples of strings, "
                        f"not {targets!r:.200}")
    from .client.builder import shared_registry, target
    from .completion import prompt_message

    prompt_message(prompt)  # an empty prompt fails here once, not once per target
    workers = _check_workers(len(targets) if max_workers is None else max_workers)
    registry = shared_registry() if builder is None else builder
    pairs = {t: target(*t) if isinstance(t, tuple) else target(t, None) for t in targets}
    # Unknown names and ids fail here, up front; the provider's case is folded ("OpenAI" is "openai").
    named = {t: (registry.factory(p).name, m) for t, (p, m) in pairs.items()}
    if len(set(named.values())) != len(targets):
        raise ValueError(f"fan_out targets must be distinct, but {[_label(t) for t in targets]!r:.200} "
                         "name one model more than once")
    models = {target: registry.completion(*named[target]) for target in targets}

    def answer(model: CompletionModel) -> str:
        request = model.completion_request(prompt)
        return (request.preamble(preamble) if preamble else request).send().text

    if mode == "all":
        answers = map(lambda t: answer(models[t]), list(targets), max_workers=workers, return_exceptions=True)
        return dict(zip(targets, answers, strict=True))
    return _first_success(models, answer, workers)


def _first_success(models: dict[TargetT, CompletionModel], answer: Callable[[CompletionModel], str],
                   workers: int) -> tuple[TargetT, str]:
    """Ask every target at once; the first answer wins. The others are cut off through their
    `CancelScope`s: their sockets are shut down, which wakes their threads at once wherever they
    are blocked (even before the server's first byte), and nothing of theirs is retried."""
    scopes = {target: CancelScope() for target in models}

    def run(target: TargetT) -> str:
        with scopes[target]:
            return answer(models[target])

    errors: dict[TargetT, BaseException] = {}
    pool = cf.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rig_sync.fan_out")
    futures = {pool.submit(run, target): target for target in models}
    try:
        for future in cf.as_completed(futures):
            target = futures[future]
            try:
                return target, future.result()
            except Exception as exc:  # noqa: BLE001 - collected; raised only if all fail
                errors[target] = exc
    finally:
        for scope in scopes.values():
            scope.cancel()
        pool.shutdown(wait=False, cancel_futures=True)
    raise FanOutError(errors)


def _check_item_timeout(seconds: object) -> None:
    if seconds is not None:
        deadline(seconds)  # type: ignore[arg-type]  # raises TypeError/ValueError for a bad one


def _within(fn: Callable[[T], R], seconds: float) -> Callable[[T], R]:
    def call(item: T) -> R:
        with deadline(seconds):  # every request the item makes ends by then
            return fn(item)

    return call


def _limited(fn: Callable[[T], R], limiter: RateLimiter) -> Callable[[T], R]:
    def call(item: T) -> R:
        with limiter.slot():  # covers the item's first request if its client shares the limiter
            return fn(item)

    def call_other(item: T) -> R:  # a limiter of the caller's own, with just `acquire`
        limiter.acquire()
        return fn(item)

    return call if callable(getattr(limiter, "slot", None)) else call_other


def _open_journal(journal: JournalArg) -> tuple[JournalLike | None, bool]:
    """The journal and whether the batch opened it (and so closes it)."""
    if journal is None:
        return None, False
    if isinstance(journal, (str, os.PathLike)):
        from .journal import Journal

        return Journal(journal), True
    needs = ("begin", "take", "record", "hold", "release", "close")
    missing = [m for m in needs if not callable(getattr(journal, m, None))]
    if missing:  # e.g. a journal written for the positional protocol of before: it would misattribute answers
        raise TypeError(f"journal must be a path or a rig_sync.journal.Journal, not {type(journal).__name__} "
                        f"(it lacks {', '.join(missing)}; see rig_sync.journal.JournalLike)")
    return journal, False
