"""Whole-call deadlines: `Timeout(total=...)` per call, `rig_sync.http.deadline(seconds)` around any code,
and `batch.map(..., item_timeout=...)` per item. A server that trickles a byte at a time (each one well
inside the read timeout) cannot keep a call alive past its deadline; retries and their waits, the wait
for a pooled connection and streams all count. No thread is started to enforce any of it.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from loopback_support import SlowServer, chunked_head, chunks, json_head

from rig_sync import batch, errors
from rig_sync.http import CancelScope, RetryPolicy, Timeout, Transport, deadline
from rig_sync.testing import FakeProvider, Fault

BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
PROMPT = "/chat/completions"
SLACK = 2.5  # how far past a deadline a call may end on a loaded CI machine (it ends within ms here)


def transport(base_url: str, timeout: Timeout, **kw: Any) -> Transport:
    kw.setdefault("retry", RetryPolicy(max_retries=2, backoff_base=0))
    return Transport("openai", base_url, auth_headers={"Authorization": "Bearer sk-test"}, timeout=timeout, **kw)


def trickle(length: int = 1000, interval: float = 0.1) -> SlowServer:
    """A JSON answer of `length` bytes, one byte every `interval` s: each read is quick, the whole is not."""
    return SlowServer(json_head(length), body=b"x" * length, interval=interval)


def timed(fn: Any) -> tuple[BaseException | None, float]:
    started = time.monotonic()
    try:
        fn()
    except BaseException as exc:  # returned to the test
        return exc, time.monotonic() - started
    return None, time.monotonic() - started


def test_timeout_total_is_validated_and_optional() -> None:
    assert Timeout().total is None and Timeout().pool is None
    assert Timeout(1, 2, total=30).total == 30.0
    for bad in (0, -1):
        with pytest.raises(ValueError):
            Timeout(total=bad)
        with pytest.raises(ValueError):
            Timeout(pool=bad)


def test_a_trickling_answer_ends_at_the_total_deadline() -> None:
    with trickle() as server:
        t = transport(server.base_url, Timeout(connect=1, read=2, total=1))
        error, elapsed = timed(lambda: t.post_json(PROMPT, BODY))
    assert isinstance(error, errors.APITimeoutError), repr(error)
    assert "1s deadline" in str(error) and "POST /chat/completions" in str(error)
    assert 1.0 <= elapsed < 1.0 + SLACK
    assert server.requests == 1  # a deadline is not retried


def test_a_trickling_chunked_answer_ends_at_the_total_deadline() -> None:
    with SlowServer(chunked_head(), body=chunks(b"y" * 1000), interval=0.02) as server:
        t = transport(server.base_url, Timeout(connect=1, read=2, total=1))
        error, elapsed = timed(lambda: t.post_json(PROMPT, BODY))
    assert isinstance(error, errors.APITimeoutError), repr(error)
    assert 1.0 <= elapsed < 1.0 + SLACK


def test_the_deadline_spans_retries(fake: FakeProvider) -> None:
    fake.inject(Fault.hang(), times=3)
    t = transport(fake.base_url, Timeout(connect=1, read=1, total=1.5))  # 3 attempts would take 3 s
    error, elapsed = timed(lambda: t.post_json(PROMPT, BODY))
    assert isinstance(error, errors.APITimeoutError), repr(error)
    assert "deadline" in str(error)
    assert 1.5 <= elapsed < 1.5 + SLACK
    assert fake.request_count == 2


def test_a_retry_wait_past_the_deadline_is_not_slept(fake: FakeProvider) -> None:
    fake.inject(Fault.status(503), times=3)
    t = transport(fake.base_url, Timeout(connect=1, read=5, total=2), retry=RetryPolicy(max_retries=2, backoff_base=5))
    error, elapsed = timed(lambda: t.post_json(PROMPT, BODY))
    assert isinstance(error, errors.APIStatusError) and error.status_code == 503  # the server's own answer
    assert elapsed < 1.5
    assert fake.request_count == 1


def test_the_deadline_bounds_the_wait_for_a_pooled_connection(fake: FakeProvider) -> None:
    t = transport(fake.base_url, Timeout(connect=1, read=30, total=0.5), pool_size=1)
    with t.stream("POST", PROMPT, json={**BODY, "stream": True}):
        error, elapsed = timed(lambda: t.post_json(PROMPT, BODY))
    assert isinstance(error, errors.APITimeoutError), repr(error)
    assert "deadline" in str(error)
    assert 0.5 <= elapsed < 0.5 + SLACK


def test_the_total_applies_to_the_whole_stream() -> None:
    event = b'data: {"n": 1}\n\n'
    with SlowServer(chunked_head(b"text/event-stream"), body=chunks(event * 1000), interval=0.01) as server:
        t = transport(server.base_url, Timeout(connect=1, read=2, total=1))
        got: list[bytes] = []

        def read() -> None:
            with t.stream("POST", PROMPT, json={**BODY, "stream": True}) as stream:
                got.extend(stream.chunks())

        error, elapsed = timed(read)
    assert isinstance(error, errors.APITimeoutError), repr(error)
    assert got  # it streamed until the deadline
    assert 1.0 <= elapsed < 1.0 + SLACK


def test_deadline_scope_covers_every_request_inside_it(fake: FakeProvider) -> None:
    fake.latency = 1.0  # one call fits in the deadline, two do not
    t = transport(fake.base_url, Timeout(connect=1, read=5))
    error, elapsed = timed(lambda: _two_calls_within(t, 1.5))
    assert isinstance(error, errors.APITimeoutError), repr(error)
    assert "1.5s deadline" in str(error)
    assert 1.5 <= elapsed < 1.5 + SLACK
    assert fake.request_count == 2  # the first call finished, the second ran out of time


def _two_calls_within(t: Transport, seconds: float) -> None:
    with deadline(seconds):
        t.post_json(PROMPT, BODY)
        t.post_json(PROMPT, BODY)


def test_the_earlier_of_nested_deadlines_wins() -> None:
    with trickle() as server:
        t = transport(server.base_url, Timeout(connect=1, read=2, total=30))

        def call() -> None:
            with deadline(60), deadline(0.5), deadline(60):
                t.post_json(PROMPT, BODY)

        error, elapsed = timed(call)
    assert isinstance(error, errors.APITimeoutError) and "0.5s deadline" in str(error), repr(error)
    assert 0.5 <= elapsed < 0.5 + SLACK


def test_deadline_is_a_cancel_scope_and_validates() -> None:
    assert isinstance(deadline(1), CancelScope)
    for bad in (0, -1, float("nan"), "1", True):
        with pytest.raises((ValueError, TypeError)):
            deadline(bad)  # type: ignore[arg-type]


def test_no_thread_is_started_to_enforce_a_deadline() -> None:
    with trickle() as server:
        t = transport(server.base_url, Timeout(connect=1, read=2, total=0.5))
        before = threading.active_count()
        seen: list[int] = []
        t.rate_limiter = _Spy(seen)  # counts the threads alive while the call runs
        error, _ = timed(lambda: t.post_json(PROMPT, BODY))
    assert isinstance(error, errors.APITimeoutError)
    assert seen == [before + 1]  # the server's thread for the connection, and no other


def test_a_deadline_passed_while_a_rate_limiter_held_the_call_sends_nothing(fake: FakeProvider) -> None:
    class Slow:
        def acquire(self, tokens: int = 0) -> float:
            threading.Event().wait(0.5)  # the limiter's own wait (a limiter spaces requests out)
            return 0.5

        def observe(self, status: int, headers: Any, retry_after: float | None = None) -> None:
            pass

    t = transport(fake.base_url, Timeout(connect=1, read=5), rate_limiter=Slow())
    with deadline(0.2), pytest.raises(errors.APITimeoutError, match=r"0\.2s deadline"):
        t.post_json(PROMPT, BODY)
    assert fake.request_count == 0


class _Spy:
    def __init__(self, seen: list[int]) -> None:
        self.seen = seen

    def acquire(self, tokens: int = 0) -> float:
        return 0.0

    def observe(self, status: int, headers: Any, retry_after: float | None = None) -> None:
        self.seen.append(threading.active_count())


def test_batch_map_item_timeout_ends_slow_items_only(fake: FakeProvider) -> None:
    with trickle() as server:
        slow = transport(server.base_url, Timeout(connect=1, read=2))
        fast = transport(fake.base_url, Timeout(connect=1, read=2))

        def work(item: str) -> Any:
            return (slow if item.startswith("slow") else fast).post_json(PROMPT, BODY)["object"]

        items = ["fast0", "slow0", "fast1", "slow1"]
        started = time.monotonic()
        out = batch.map(work, items, max_workers=4, item_timeout=0.5, return_exceptions=True)
        elapsed = time.monotonic() - started
    assert out[0] == out[2] == "chat.completion"
    for i in (1, 3):
        assert isinstance(out[i], errors.APITimeoutError) and "0.5s deadline" in str(out[i]), repr(out[i])
    assert elapsed < 0.5 + SLACK


def test_batch_imap_item_timeout(fake: FakeProvider) -> None:
    with trickle() as server:
        slow = transport(server.base_url, Timeout(connect=1, read=2))
        got = dict(batch.imap(lambda _: slow.post_json(PROMPT, BODY), range(3), max_workers=3, item_timeout=0.3))
    assert sorted(got) == [0, 1, 2] and all(isinstance(e, errors.APITimeoutError) for e in got.values())


def test_batch_item_timeout_is_validated() -> None:
    for bad in (0, -1, "1", True):
        with pytest.raises((ValueError, TypeError)):
            batch.map(str, [1], item_timeout=bad)  # type: ignore[arg-type]
