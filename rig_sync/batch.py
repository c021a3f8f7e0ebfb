"""Batch and fan-out without asyncio: threads, in order, nothing lost.

    from rig_sync import batch
    answers = batch.map(lambda p: model.completion_request(p).send().text, prompts, max_workers=16)

* `map` returns results in input order. A failure raises `BatchError` carrying every finished
  result and every failure with its index (or, with `return_exceptions=True`, the exception
  stands in the failed item's place).
* `imap` yields `(index, result_or_exception)` as items finish, holding at most a bounded number
  of items in flight, so an iterator of a million prompts is never materialised.
* `journal=path` appends every finished item to a JSON-lines file as it completes (flushed); a
  job started again with the same journal skips the finished items.
* Ctrl-C stops promptly: nothing new starts, queued work is cancelled, and what finished is in
  the `BatchInterrupted` error (and in the journal).
"""

from __future__ import annotations

import concurrent.futures as cf
import threading
from collections.abc import Callable, Generator, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar, overload

from .errors import RigError
from .progress import Progress, make_progress

if TYPE_CHECKING:
    from .client.builder import DynClientBuilder
    from .embeddings import Embedding, EmbeddingModel
    from .journal import Journal
    from .ratelimit import RateLimiter

__all__ = ["map", "imap", "fan_out", "embed_texts", "BatchError", "BatchInterrupted", "FanOutError"]

T = TypeVar("T")
R = TypeVar("R")

DEFAULT_WORKERS = 16


class BatchError(RigError, Generic[R]):
    """Some items failed. `results[i]` is the result of item i (None where it failed);
    `failures` maps each failed index to its exception. Nothing is dropped."""

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
    """Ctrl-C arrived. Finished results and failures are kept; the rest never started."""

    def __init__(self, results: list[R | None], failures: dict[int, BaseException], pending: list[int]) -> None:
        self.pending = pending
        super().__init__(results, failures, f"interrupted with {len(pending)} items not done")


class FanOutError(RigError):
    """Every target of a fan-out failed; `errors` maps each target to its exception."""

    def __init__(self, errors: dict[tuple[str, str], BaseException]) -> None:
        self.errors = errors
        summary = "; ".join(f"{p}:{m}: {type(e).__name__}" for (p, m), e in errors.items())
        super().__init__(f"all {len(errors)} targets failed: {summary}")


def _check_workers(max_workers: int) -> int:
    if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
        raise ValueError(f"max_workers must be a positive integer, not {max_workers!r}")
    return max_workers


def imap(
    fn: Callable[[T], R],
    items: Iterable[T],
    *,
    max_workers: int = DEFAULT_WORKERS,
    rate_limit: RateLimiter | None = None,
    executor: cf.Executor | None = None,
    journal: str | Journal | None = None,
    progress: bool | Progress | None = None,
    total: int | None = None,
) -> Generator[tuple[int, R | BaseException], None, None]:
    """`(index, result or exception)` for every item, in completion order; at most
    `2 * max_workers` items are held at once, whatever the length of `items`."""
    _check_workers(max_workers)
    if total is None and isinstance(items, Sequence):
        total = len(items)
    log = _open_journal(journal)
    bar = make_progress(progress, total)
    own_executor = executor is None
    pool = executor or cf.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="rig_sync.batch")
    call = _limited(fn, rate_limit) if rate_limit is not None else fn
    in_flight: dict[cf.Future[Any], int] = {}
    source = enumerate(items)
    exhausted = False
    try:
        if log is not None:
            done_before = log.finished()
            bar.skip(len(done_before))
            for index, result in done_before.items():
                yield index, result
        while True:
            while not exhausted and len(in_flight) < 2 * max_workers:
                try:
                    index, item = next(source)
                except StopIteration:
                    exhausted = True
                    break
                if log is not None and log.is_finished(index):
                    continue
                in_flight[pool.submit(call, item)] = index
            if not in_flight:
                return
            done, _ = cf.wait(in_flight, return_when=cf.FIRST_COMPLETED)
            for future in done:
                index = in_flight.pop(future)
                try:
                    outcome: R | BaseException = future.result()
                    ok = True
                except Exception as exc:  # noqa: BLE001 - every failure is reported, not raised here
                    outcome, ok = exc, False
                if log is not None:
                    log.record(index, outcome, ok)
                bar.update(ok)
                yield index, outcome
    finally:
        for future in in_flight:
            future.cancel()
        if own_executor:
            # On Ctrl-C or an abandoned generator: start nothing new, do not wait for stragglers.
            pool.shutdown(wait=not in_flight, cancel_futures=True)
        bar.close()
        if log is not None:
            log.close()


@overload
def map(fn: Callable[[T], R], items: Iterable[T], *, max_workers: int = ..., return_exceptions: Literal[False] = ...,
        progress: bool | Progress | None = ..., rate_limit: RateLimiter | None = ...,
        executor: cf.Executor | None = ..., journal: str | Journal | None = ...) -> list[R]: ...


@overload
def map(fn: Callable[[T], R], items: Iterable[T], *, max_workers: int = ..., return_exceptions: Literal[True],
        progress: bool | Progress | None = ..., rate_limit: RateLimiter | None = ...,
        executor: cf.Executor | None = ..., journal: str | Journal | None = ...) -> list[R | BaseException]: ...


def map(  # the public name mirrors builtins.map on purpose
    fn: Callable[[T], R],
    items: Iterable[T],
    *,
    max_workers: int = DEFAULT_WORKERS,
    return_exceptions: bool = False,
    progress: bool | Progress | None = None,
    rate_limit: RateLimiter | None = None,
    executor: cf.Executor | None = None,
    journal: str | Journal | None = None,
) -> list[R] | list[R | BaseException]:
    """`fn(item)` for every item, results in input order. See the module docstring."""
    items = list(items)
    results: list[Any] = [None] * len(items)
    failures: dict[int, BaseException] = {}
    seen: set[int] = set()
    stream = imap(fn, items, max_workers=max_workers, rate_limit=rate_limit, executor=executor,
                  journal=journal, progress=progress, total=len(items))
    try:
        for index, outcome in stream:
            seen.add(index)
            results[index] = outcome
            if isinstance(outcome, BaseException):
                failures[index] = outcome
    except KeyboardInterrupt:
        stream.close()
        pending = [i for i in range(len(items)) if i not in seen]
        raise BatchInterrupted([None if i in failures else r for i, r in enumerate(results)], failures,
                               pending) from None
    if failures and not return_exceptions:
        raise BatchError([None if i in failures else r for i, r in enumerate(results)], failures)
    return results


def embed_texts(
    model: EmbeddingModel,
    texts: Sequence[str],
    *,
    max_workers: int = 8,
    progress: bool | Progress | None = None,
    rate_limit: RateLimiter | None = None,
) -> list[Embedding]:
    """Embeddings for any number of texts: chunks of `model.max_documents` sent in parallel,
    input order kept. A failed chunk raises `BatchError` naming the chunk's first text index."""
    from .embeddings import check_texts

    items = check_texts(texts)
    size = max(1, model.max_documents)
    chunks = [items[start:start + size] for start in range(0, len(items), size)]
    try:
        parts = map(model.embed_texts, chunks, max_workers=max_workers, progress=progress, rate_limit=rate_limit)
    except BatchError as exc:
        failures = {i * size: e for i, e in exc.failures.items()}
        raise BatchError([None] * len(items), failures,
                         f"{len(failures)} of {len(chunks)} chunks of {size} texts failed") from None
    return [embedding for part in parts for embedding in part]


def fan_out(
    prompt: str,
    targets: Sequence[tuple[str, str]],
    *,
    builder: DynClientBuilder | None = None,
    preamble: str | None = None,
    mode: Literal["all", "first"] = "all",
    max_workers: int | None = None,
) -> dict[tuple[str, str], str | BaseException] | tuple[tuple[str, str], str]:
    """One prompt to several `(provider, model)` targets through `DynClientBuilder`.

    `mode="all"`: a dict target → answer text (or the exception that target raised).
    `mode="first"`: `(target, answer)` of the first success; the other requests are closed (their
    streams are cancelled mid-flight); `FanOutError` if every target fails.
    """
    if not targets:
        raise ValueError("fan_out needs at least one (provider, model) target")
    if builder is None:
        from .client.builder import DynClientBuilder

        builder = _default_builder(DynClientBuilder)
    models = {target: builder.completion(*target) for target in targets}  # unknown names fail here, up front
    workers = _check_workers(max_workers or len(targets))

    def build(target: tuple[str, str]) -> Any:
        request = models[target].completion_request(prompt)
        return request.preamble(preamble) if preamble else request

    if mode == "all":
        answers = map(lambda t: build(t).send().text, list(targets), max_workers=workers, return_exceptions=True)
        return dict(zip(targets, answers, strict=True))
    if mode != "first":
        raise ValueError(f"mode must be 'all' or 'first', not {mode!r}")
    return _first_success(targets, build, workers)


def _first_success(targets: Sequence[tuple[str, str]], build: Callable[[tuple[str, str]], Any],
                   workers: int) -> tuple[tuple[str, str], str]:
    """Stream every target; the first to finish wins and the losers' connections are closed."""
    cancel = threading.Event()
    streams: dict[tuple[str, str], Any] = {}
    lock = threading.Lock()

    def run(target: tuple[str, str]) -> str:
        stream = build(target).stream()
        with lock:
            streams[target] = stream
        if cancel.is_set():  # another target won while this request was being sent
            stream.close()
            raise _Cancelled()
        with stream:
            for _ in stream:
                if cancel.is_set():
                    raise _Cancelled()
            return str(stream.response.text)

    errors: dict[tuple[str, str], BaseException] = {}
    pool = cf.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rig_sync.fan_out")
    futures = {pool.submit(run, target): target for target in targets}
    try:
        for future in cf.as_completed(futures):
            target = futures[future]
            try:
                text = future.result()
            except Exception as exc:  # noqa: BLE001 - collected; raised only if all fail
                errors[target] = exc
                continue
            return target, text
    finally:
        cancel.set()
        with lock:
            for stream in streams.values():
                stream.abort()  # losers are mid-read in other threads: wake them, drop the sockets
        pool.shutdown(wait=False, cancel_futures=True)
    raise FanOutError(errors)


class _Cancelled(Exception):
    """A fan-out loser stopping because another target already answered."""


_builder_lock = threading.Lock()
_builder: DynClientBuilder | None = None


def _default_builder(factory: Callable[[], DynClientBuilder]) -> DynClientBuilder:
    """One shared registry, so clients (and their pools) are reused across fan-outs."""
    global _builder
    with _builder_lock:
        if _builder is None:
            _builder = factory()
        return _builder


def _limited(fn: Callable[[T], R], limiter: RateLimiter) -> Callable[[T], R]:
    def call(item: T) -> R:
        limiter.acquire()
        return fn(item)

    return call


def _open_journal(journal: str | Journal | None) -> Journal | None:
    if journal is None:
        return None
    from .journal import Journal

    return journal if isinstance(journal, Journal) else Journal(journal)
