"""Observation: hooks called for every request the library makes, and a `Metrics` collector.

    from rig_sync import observe
    with observe.collect() as metrics:          # or: metrics = observe.Metrics(); observe.add_hook(metrics)
        ...                                     # any clients, any threads
    metrics.summary().success_rate; metrics.summary().p95
    metrics.by("provider", "model")[("openai", "gpt-4o")].input_tokens

Hooks receive two kinds of event:

* `RequestEvent`, from the transport, once per HTTP exchange (after its retries), successful or
  not: provider, model, capability, status, latency, retries, the time spent waiting for a rate
  limiter, the response headers.
* `UsageEvent`, from the model layer, once per answer that reports tokens (the transport cannot
  see them: they are in the parsed body, or at the end of a stream).

How a provider takes part: its models subclass `rig_sync.providers._model.ModelView` and send through
its helpers, which tag every request with the model and capability ("completion", "embeddings",
"transcription", "image_generation", "audio_generation") and report usage after parsing:
`self._post(...)` / `self._send(...)` for whole answers, `self._complete(...)` to post, parse and
report in one step, `self._stream(...)` for streams (reported once, at the final response, via
`providers._common.event_completion`), and `self._report(capability, usage)` where the usage is
parsed separately. Reporting emits the `UsageEvent` and corrects the client's rate limiter with
the real token count.

Hooks cost nothing when none is registered (`has_hooks()` is checked first). A hook that raises
is logged and ignored: observing must never break a request. Events carry no credentials.
"""

from __future__ import annotations

import logging
import threading
from array import array
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Protocol

import attrs

__all__ = [
    "RequestEvent",
    "UsageEvent",
    "Event",
    "Hook",
    "Metrics",
    "Summary",
    "add_hook",
    "remove_hook",
    "has_hooks",
    "emit",
    "emit_usage",
    "collect",
]

log = logging.getLogger("rig_sync.observe")


@attrs.frozen
class RequestEvent:
    """One finished HTTP exchange (after retries), successful or not.

    `status` is None when no answer came (then `error` names the exception); `queued` is the
    seconds spent waiting for the client's rate limiter before sending, not part of `latency`.
    """

    provider: str
    method: str
    path: str
    status: int | None
    latency: float
    retries: int
    error: str | None
    request_id: str | None
    model: str | None = None
    capability: str | None = None
    queued: float = 0.0
    headers: Mapping[str, str] = attrs.field(factory=dict, repr=False, eq=False)

    @property
    def ok(self) -> bool:
        return self.error is None and self.status is not None and self.status < 400


@attrs.frozen
class UsageEvent:
    """Tokens one answer used, as the provider reported them."""

    provider: str
    model: str | None
    capability: str | None
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    cached_input_tokens: int = 0


Event = RequestEvent | UsageEvent
Hook = Callable[[Event], None]


class UsageLike(Protocol):
    """What `emit_usage` reads (`rig_sync.completion.Usage` has it; None is "not reported")."""

    @property
    def input_tokens(self) -> int | None: ...
    @property
    def output_tokens(self) -> int | None: ...
    @property
    def total_tokens(self) -> int | None: ...
    @property
    def cached_input_tokens(self) -> int | None: ...


_hooks: tuple[Hook, ...] = ()
_lock = threading.Lock()


def add_hook(hook: Hook) -> None:
    """Call `hook(event)` for every event (a `RequestEvent` or `UsageEvent`; check the type)."""
    if not callable(hook):
        raise TypeError(f"a hook must be callable, not {hook!r}")
    global _hooks
    with _lock:
        _hooks = (*_hooks, hook)


def remove_hook(hook: Hook) -> None:
    """Stop calling `hook` (no error if it was not registered)."""
    global _hooks
    with _lock:
        # Equality, not identity: `obj.method` makes a new bound-method object on every access.
        _hooks = tuple(h for h in _hooks if h != hook)


def has_hooks() -> bool:
    return bool(_hooks)


def emit(event: Event) -> None:
    for hook in _hooks:  # a tuple snapshot: safe while other threads add or remove
        try:
            hook(event)
        except Exception:
            log.exception("observe hook %r failed", hook)


def emit_usage(provider: str, model: str | None, capability: str | None, usage: UsageLike) -> None:
    """Report the tokens of one answer to the hooks (cheap when there are none)."""
    if _hooks:
        # Events count tokens: a figure the provider did not report adds nothing (0).
        inp, out = usage.input_tokens or 0, usage.output_tokens or 0
        emit(UsageEvent(provider, model, capability, inp, out, usage.total_tokens or inp + out,
                        usage.cached_input_tokens or 0))


# --- metrics --------------------------------------------------------------------------------------


@attrs.frozen
class Summary:
    """Totals over a set of requests. Latencies are seconds; `failures` counts failed requests
    by HTTP status ("429") or, when no answer came, by error ("APITimeoutError")."""

    total: int
    succeeded: int
    failed: int
    success_rate: float  # 0.0 when there were no requests
    p50: float
    p95: float
    p99: float
    mean_latency: float
    max_latency: float
    retries: int
    queued: float
    input_tokens: int
    output_tokens: int
    total_tokens: int
    cached_input_tokens: int
    failures: Mapping[str, int]

    def as_dict(self) -> dict[str, Any]:
        return {**attrs.asdict(self, recurse=False), "failures": dict(self.failures)}


_FIELDS = ("provider", "model", "capability")


def _percentile(ordered: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), of sorted data."""
    if not ordered:
        return 0.0
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


class _Group:
    __slots__ = ("failures", "latencies", "queued", "retries", "succeeded", "tokens", "total")

    def __init__(self) -> None:
        self.total = self.succeeded = self.retries = 0
        self.queued = 0.0
        self.latencies = array("d")  # 8 bytes a request: exact percentiles for long runs too
        self.failures: dict[str, int] = {}
        self.tokens = [0, 0, 0, 0]  # input, output, total, cached input


def _summarize(groups: list[_Group]) -> Summary:
    latencies = sorted(x for g in groups for x in g.latencies)
    total = sum(g.total for g in groups)
    succeeded = sum(g.succeeded for g in groups)
    failures: dict[str, int] = {}
    for g in groups:
        for key, n in g.failures.items():
            failures[key] = failures.get(key, 0) + n
    tokens = [sum(g.tokens[i] for g in groups) for i in range(4)]
    return Summary(
        total=total,
        succeeded=succeeded,
        failed=total - succeeded,
        success_rate=succeeded / total if total else 0.0,
        p50=_percentile(latencies, 0.50),
        p95=_percentile(latencies, 0.95),
        p99=_percentile(latencies, 0.99),
        mean_latency=sum(latencies) / len(latencies) if latencies else 0.0,
        max_latency=latencies[-1] if latencies else 0.0,
        retries=sum(g.retries for g in groups),
        queued=sum(g.queued for g in groups),
        input_tokens=tokens[0],
        output_tokens=tokens[1],
        total_tokens=tokens[2],
        cached_input_tokens=tokens[3],
        failures=dict(sorted(failures.items())),
    )


class Metrics:
    """A thread-safe hook that totals requests and tokens per (provider, model, capability).

    Register it (`observe.add_hook(metrics)`, or `with observe.collect() as metrics:`), then read
    `summary()` for everything or `by("provider", "model")` for a breakdown.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._groups: dict[tuple[str, str | None, str | None], _Group] = {}

    def __call__(self, event: Event) -> None:
        key = (event.provider, event.model, event.capability)
        with self._lock:
            group = self._groups.get(key)
            if group is None:
                group = self._groups[key] = _Group()
            if isinstance(event, UsageEvent):
                tokens = group.tokens
                tokens[0] += event.input_tokens
                tokens[1] += event.output_tokens
                tokens[2] += event.total_tokens
                tokens[3] += event.cached_input_tokens
                return
            group.total += 1
            group.retries += event.retries
            group.queued += event.queued
            group.latencies.append(event.latency)
            if event.ok:
                group.succeeded += 1
            else:
                reason = str(event.status) if event.status is not None else (event.error or "error")
                group.failures[reason] = group.failures.get(reason, 0) + 1

    def summary(self) -> Summary:
        """Totals over every request seen."""
        with self._lock:
            return _summarize(list(self._groups.values()))

    def by(self, *fields: str) -> dict[Any, Summary]:
        """Summaries grouped by some of "provider", "model", "capability".

        One field keys the dict by its value (`by("provider")["openai"]`); several by a tuple
        (`by("provider", "model")[("openai", "gpt-4o")]`). Untagged requests have model None.
        """
        if not fields or any(f not in _FIELDS for f in fields) or len(set(fields)) != len(fields):
            raise ValueError(f"group by one or more distinct fields of {_FIELDS}, not {fields!r}")
        picks = [_FIELDS.index(f) for f in fields]
        buckets: dict[Any, list[_Group]] = {}
        with self._lock:
            for key, group in self._groups.items():
                values = tuple(key[i] for i in picks)
                buckets.setdefault(values[0] if len(values) == 1 else values, []).append(group)
            return {k: _summarize(groups) for k, groups in buckets.items()}

    def reset(self) -> None:
        """Forget everything seen so far."""
        with self._lock:
            self._groups.clear()

    def __repr__(self) -> str:
        s = self.summary()
        return f"Metrics(total={s.total}, failed={s.failed}, p50={s.p50:.3f}s, tokens={s.total_tokens})"


@contextmanager
def collect() -> Iterator[Metrics]:
    """Collect metrics for the duration of a `with` block (every thread's requests)."""
    metrics = Metrics()
    add_hook(metrics)
    try:
        yield metrics
    finally:
        remove_hook(metrics)
