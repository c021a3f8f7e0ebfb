"""rig_sync.ratelimit: evenly spaced slots, token budgets, adapting to the provider — all on a fake
clock (no test here sleeps for real, beyond urllib3's 1 ms retry in one end-to-end test)."""

from __future__ import annotations

import itertools
import json
import pickle
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import responses

from rig_sync import batch, errors
from rig_sync.http import RetryPolicy, Transport
from rig_sync.providers import openai
from rig_sync.ratelimit import RateLimiter, parse_reset
from rig_sync.testing import FakeProvider, Fault, Reply

FIXTURES = Path(__file__).resolve().parent / "fixtures"
_names = itertools.count()


class FakeTime:
    """A monotonic clock and a sleep that records waits. `advance=True`: sleeping moves the clock
    (one thread); `advance=False`: time stands still, so every wait is measured from the same
    instant and the waits show the schedule itself (many threads)."""

    def __init__(self, advance: bool = True, start: float = 1000.0) -> None:
        self.now = start
        self.advance = advance
        self.waits: list[float] = []
        self.lock = threading.Lock()
        self.during_sleep: list[Any] = []  # callbacks run (once each) inside the next sleep

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.waits.append(seconds)
            callbacks, self.during_sleep = self.during_sleep, []
        for callback in callbacks:
            callback()
        if self.advance:
            self.now += seconds

    def limiter(self, rpm: float | None = None, tpm: float | None = None, **kw: Any) -> RateLimiter:
        return RateLimiter(rpm, tpm, clock=self.clock, sleep=self.sleep, **kw)


def unique(prefix: str) -> str:
    return f"{prefix}-{next(_names)}-{id(object())}"


# --- spacing ----------------------------------------------------------------------------------------


def test_rpm_spaces_requests_evenly() -> None:
    t = FakeTime()
    limiter = t.limiter(rpm=60)
    waits = [limiter.acquire() for _ in range(4)]
    assert waits == [0.0, 1.0, 1.0, 1.0]
    assert t.now == 1003.0
    assert limiter.acquired == 4 and limiter.waited == 3.0


def test_a_slow_caller_never_waits() -> None:
    t = FakeTime()
    limiter = t.limiter(rpm=60)
    for _ in range(3):
        assert limiter.acquire() == 0.0
        t.now += 1.5  # slower than one a second: no slot is ever in the future
    assert t.waits == []


def test_no_limits_never_waits() -> None:
    t = FakeTime()
    limiter = t.limiter()
    assert [limiter.acquire(tokens=10_000) for _ in range(5)] == [0.0] * 5


def test_many_threads_get_distinct_evenly_spaced_slots() -> None:
    t = FakeTime(advance=False)
    limiter = t.limiter(rpm=600)
    threads, per_thread = 32, 8
    barrier = threading.Barrier(threads)
    returned: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        barrier.wait()
        for _ in range(per_thread):
            wait = limiter.acquire()
            with lock:
                returned.append(wait)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=10)
    n = threads * per_thread
    assert len(returned) == n and limiter.acquired == n
    # Time stood still, so each wait is its slot: 0, 0.1, 0.2, … — none shared, none skipped.
    assert sorted(returned) == pytest.approx([i * 0.1 for i in range(n)])
    assert sorted(t.waits) == pytest.approx([i * 0.1 for i in range(1, n)])


# --- tokens -----------------------------------------------------------------------------------------


def test_tpm_spaces_requests_by_their_tokens() -> None:
    t = FakeTime()
    limiter = t.limiter(tpm=600)  # 10 tokens a second
    assert limiter.acquire(tokens=100) == 0.0
    assert limiter.acquire(tokens=50) == 10.0  # the first request's 100 tokens take 10 s
    assert limiter.acquire() == 5.0  # then the 50 take 5 s


def test_record_tokens_corrects_the_estimate() -> None:
    t = FakeTime()
    limiter = t.limiter(tpm=600)
    limiter.acquire(tokens=300)  # booked 30 s
    limiter.record_tokens(60)  # used 6 s worth: this thread's estimate is corrected
    assert limiter.acquire() == 6.0
    limiter.record_tokens(120, estimated=0)  # an unbooked request that used 12 s worth
    assert limiter.acquire() == 12.0


def test_record_tokens_above_the_estimate_slows_down() -> None:
    t = FakeTime()
    limiter = t.limiter(tpm=600)
    limiter.acquire(tokens=10)
    limiter.record_tokens(100)
    assert limiter.acquire() == 10.0


def test_one_estimate_books_at_most_a_minute() -> None:
    t = FakeTime()
    limiter = t.limiter(tpm=1000)
    limiter.acquire(tokens=1_000_000)  # e.g. a base64 image counted as text
    assert limiter.acquire() == 60.0


# --- pauses ------------------------------------------------------------------------------------------


def test_429_retry_after_pauses_every_thread_of_a_shared_limiter() -> None:
    t = FakeTime(advance=False)
    name = unique("pause")
    limiter = RateLimiter.shared(name, clock=t.clock, sleep=t.sleep)
    RateLimiter.shared(name).observe(429, {}, retry_after=7.0)  # seen by one client ...
    waits: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        wait = RateLimiter.shared(name).acquire()  # ... holds back every other thread
        with lock:
            waits.append(wait)

    pool = [threading.Thread(target=worker) for _ in range(8)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=10)
    assert waits == [7.0] * 8
    assert limiter.waited == 56.0


def test_429_without_retry_after_pauses_a_second() -> None:
    t = FakeTime()
    limiter = t.limiter()
    limiter.observe(429, {})
    assert limiter.acquire() == 1.0


def test_a_pause_that_starts_while_a_thread_sleeps_holds_it_too() -> None:
    t = FakeTime()
    limiter = t.limiter(rpm=60)
    limiter.acquire()  # slot at 1000; the next is at 1001
    t.during_sleep.append(lambda: limiter.observe(429, {}, retry_after=10.0))  # at 1000, for 10 s
    assert limiter.acquire() == 10.0  # woke at 1001 inside the pause: went at 1010, not 1001
    assert t.now == 1010.0


def test_overload_with_retry_after_pauses_plain_500_does_not() -> None:
    t = FakeTime()
    limiter = t.limiter()
    limiter.observe(500, {})
    limiter.observe(503, {})  # no Retry-After: nothing to go by
    assert limiter.acquire() == 0.0
    limiter.observe(503, {}, retry_after=4.0)
    assert limiter.acquire() == 4.0


def test_pauses_are_capped_by_max_pause() -> None:
    t = FakeTime()
    limiter = t.limiter(max_pause=30)
    limiter.observe(429, {}, retry_after=3600.0)
    assert limiter.acquire() == 30.0


@pytest.mark.parametrize(
    ("reset", "seconds"),
    [("1s", 1.0), ("6m0s", 360.0), ("250ms", 0.25), ("1h2m3s", 3723.0), ("7.5s", 7.5), ("20", 20.0)],
)
def test_remaining_requests_zero_pauses_until_the_reset(reset: str, seconds: float) -> None:
    t = FakeTime()
    limiter = t.limiter(max_pause=7200)
    limiter.observe(200, {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": reset})
    assert limiter.acquire() == pytest.approx(seconds)


def test_remaining_tokens_zero_pauses_too() -> None:
    t = FakeTime()
    limiter = t.limiter()
    limiter.observe(200, {"x-ratelimit-remaining-requests": "99", "x-ratelimit-reset-requests": "1s",
                          "x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "2.5s"})
    assert limiter.acquire() == 2.5


def test_plenty_remaining_changes_nothing() -> None:
    t = FakeTime()
    limiter = t.limiter()
    limiter.observe(200, {"x-ratelimit-limit-requests": "3000", "x-ratelimit-remaining-requests": "2999",
                          "x-ratelimit-reset-requests": "20ms", "x-ratelimit-remaining-tokens": "149999710",
                          "x-ratelimit-reset-tokens": "0s"})
    assert [limiter.acquire() for _ in range(3)] == [0.0, 0.0, 0.0]


def test_nearly_spent_requests_are_paced_at_the_refill_rate_until_plenty_again() -> None:
    t = FakeTime()
    limiter = t.limiter()
    low = {"x-ratelimit-limit-requests": "100", "x-ratelimit-remaining-requests": "5",
           "x-ratelimit-reset-requests": "19s"}  # 95 come back in 19 s: one every 0.2 s
    limiter.observe(200, low)
    assert [limiter.acquire() for _ in range(3)] == pytest.approx([0.0, 0.2, 0.2])
    limiter.observe(200, {**low, "x-ratelimit-remaining-requests": "80"})
    t.now += 1
    assert [limiter.acquire() for _ in range(3)] == [0.0, 0.0, 0.0]


def test_garbage_headers_are_ignored() -> None:
    t = FakeTime()
    limiter = t.limiter()
    limiter.observe(200, {"x-ratelimit-remaining-requests": "none", "x-ratelimit-reset-requests": "1s",
                          "x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "soon",
                          "anthropic-ratelimit-requests-remaining": "nan",
                          "anthropic-ratelimit-requests-reset": "2024-03-26T20:00:00Z"})
    assert limiter.acquire() == 0.0


def test_anthropic_rfc3339_reset_times() -> None:
    t = FakeTime()
    wall = datetime(2024, 3, 26, 19, 59, 30, tzinfo=timezone.utc).timestamp() - t.now
    limiter = t.limiter(wall_clock=lambda: wall + t.now)  # the wall clock moves with the fake clock
    limiter.observe(200, {"anthropic-ratelimit-tokens-remaining": "0",
                          "anthropic-ratelimit-tokens-reset": "2024-03-26T20:00:00Z"})
    assert limiter.acquire() == pytest.approx(30.0)
    limiter.observe(200, {"anthropic-ratelimit-output-tokens-remaining": "0",
                          "anthropic-ratelimit-output-tokens-reset": "2024-03-26T20:00:00.500+00:00"})
    assert limiter.acquire() == pytest.approx(0.5)  # 30.5 s after the wall time; 30 have passed


def test_anthropic_recorded_429_headers() -> None:
    headers = json.loads((FIXTURES / "anthropic/error.429_headers.2024_no_retry_after.json").read_text())
    t = FakeTime()
    wall = datetime(2024, 3, 26, 19, 59, 15, tzinfo=timezone.utc).timestamp()
    limiter = t.limiter(wall_clock=lambda: wall)
    limiter.observe(429, headers, None)  # no Retry-After: the requests reset (45 s away) decides
    assert limiter.acquire() == pytest.approx(45.0)


def test_parse_reset() -> None:
    now = datetime(2024, 3, 26, 20, 0, 0, tzinfo=timezone.utc).timestamp()
    assert parse_reset("1s") == 1.0
    assert parse_reset("6m0s") == 360.0
    assert parse_reset("250ms") == 0.25
    assert parse_reset("1m30.5s") == 90.5
    assert parse_reset(" 12 ") == 12.0
    assert parse_reset("-3") == 0.0
    assert parse_reset("2024-03-26T20:00:10Z", lambda: now) == pytest.approx(10.0)
    assert parse_reset("2024-03-26T21:00:10+01:00", lambda: now) == pytest.approx(10.0)
    assert parse_reset("2024-03-26T20:00:10", lambda: now) == pytest.approx(10.0)  # naive: UTC
    assert parse_reset("2024-03-26T19:00:00Z", lambda: now) == 0.0  # already past
    for bad in ("", "soon", "nan", "1x", "m"):
        assert parse_reset(bad) is None


# --- construction -------------------------------------------------------------------------------------


def test_shared_returns_one_instance_per_name() -> None:
    name = unique("one")
    first = RateLimiter.shared(name, rpm=100)
    assert RateLimiter.shared(name) is first
    assert RateLimiter.shared(name, rpm=100) is first
    assert RateLimiter.shared(unique("other"), rpm=100) is not first
    assert first.name == name and name in repr(first)


def test_shared_with_other_limits_is_an_error() -> None:
    name = unique("conflict")
    RateLimiter.shared(name, rpm=100)
    with pytest.raises(ValueError, match="already exists"):
        RateLimiter.shared(name, rpm=200)
    with pytest.raises(ValueError, match="non-empty name"):
        RateLimiter.shared("")


@pytest.mark.parametrize("kwargs", [{"rpm": 0}, {"rpm": -5}, {"rpm": "60"}, {"rpm": True}, {"tpm": 0},
                                    {"tpm": float("nan")}, {"tpm": float("inf")}, {"rpm": float("inf")},
                                    {"max_pause": 0}, {"max_pause": None}, {"max_pause": float("inf")}])
def test_invalid_limits(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        RateLimiter(**kwargs)


def test_invalid_calls() -> None:
    limiter = RateLimiter(rpm=60)
    for tokens in (-1, 1.5, True, "10"):
        with pytest.raises(ValueError, match="tokens"):
            limiter.acquire(tokens)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="tokens"):
            limiter.reserve(tokens)  # type: ignore[arg-type]
    limiter.record_tokens(-3)  # the provider's figure: nonsense is ignored, never raised (the answer was paid for)
    with pytest.raises(TypeError, match="sleep"):
        RateLimiter(sleep=5)  # type: ignore[arg-type]


def test_limiters_pickle() -> None:
    plain = RateLimiter(rpm=60, tpm=1000)
    plain.acquire()
    copy = pickle.loads(pickle.dumps(plain))
    assert (copy.rpm, copy.tpm, copy.acquired) == (60, 1000, 0)  # limits travel, reservations do not
    assert copy.acquire() == 0.0
    shared = RateLimiter.shared(unique("pickled"), rpm=30)
    assert pickle.loads(pickle.dumps(shared)) is shared  # one per name in this process
    client = openai.Client("sk-test", base_url="http://127.0.0.1:9/v1", rate_limiter=shared)
    assert pickle.loads(pickle.dumps(client)).transport.rate_limiter is shared


# --- end to end -----------------------------------------------------------------------------------------


def client_for(fake: FakeProvider, limiter: RateLimiter, **kw: Any) -> openai.Client:
    kw.setdefault("retry", RetryPolicy(max_retries=0, backoff_base=0))
    return openai.Client(fake.api_key, base_url=fake.base_url, rate_limiter=limiter, timeout=5, **kw)


def test_a_final_429_reaches_the_limiter_and_pauses_the_next_request(fake: FakeProvider) -> None:
    t = FakeTime(advance=False)
    limiter = t.limiter()
    model = client_for(fake, limiter).completion_model("gpt-4o-mini")
    fake.inject(Fault.status(429, retry_after=7))
    with pytest.raises(errors.RateLimitError) as caught:
        model.completion_request("hi").send()
    assert caught.value.retry_after == 7.0
    assert model.completion_request("hi").send().text == "echo: hi"
    assert t.waits == [7.0]


def test_a_429_beyond_max_retry_after_is_raised_and_observed(fake: FakeProvider) -> None:
    t = FakeTime(advance=False)
    limiter = t.limiter()
    client = client_for(fake, limiter, retry=RetryPolicy(max_retries=2, max_retry_after=1))
    fake.inject(Fault.status(429, retry_after=30))  # too long to wait inside urllib3: raised at once
    with pytest.raises(errors.RateLimitError):
        client.completion_model("m").completion_request("hi").send()
    assert fake.request_count == 1
    client.completion_model("m").completion_request("hi").send()
    assert t.waits == [30.0]


def test_a_retried_429_pauses_the_limiter_and_the_retry_takes_a_slot(fake: FakeProvider) -> None:
    t = FakeTime(advance=False)
    limiter = t.limiter(rpm=60)
    client = client_for(fake, limiter, retry=RetryPolicy(max_retries=2, backoff_base=0))
    fake.inject(Fault.status(429, retry_after_ms=1))
    assert client.completion_model("m").completion_request("hi").send().text == "echo: hi"
    assert fake.request_count == 2
    assert limiter.acquired == 2  # the first try and its retry
    assert t.waits == [1.0]  # the retry waited for the next slot (the 1 ms pause is inside it)


def test_rate_limit_headers_of_a_reply_pause_the_next_request(fake: FakeProvider) -> None:
    t = FakeTime(advance=False)
    limiter = t.limiter()
    model = client_for(fake, limiter).completion_model("m")
    body = {"id": "c1", "object": "chat.completion", "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}]}
    fake.script(Reply.json(200, body, headers={"x-ratelimit-remaining-requests": "0",
                                               "x-ratelimit-reset-requests": "6s"}))
    assert model.completion_request("hi").send().text == "ok"
    model.completion_request("hi").send()
    assert t.waits == [6.0]


def test_client_requests_are_spaced(fake: FakeProvider) -> None:
    t = FakeTime(advance=False)
    model = client_for(fake, t.limiter(rpm=120)).completion_model("m")
    for _ in range(3):
        model.completion_request("hi").send()
    assert t.waits == [0.5, 1.0]  # time stands still: slots at +0.5 and +1.0


def test_chat_requests_book_an_estimate_and_usage_corrects_it(fake: FakeProvider) -> None:
    t = FakeTime(advance=False)
    limiter = t.limiter(tpm=6000)  # 100 tokens a second
    model = client_for(fake, limiter).completion_model("m")
    first = model.completion_request("hello there").max_tokens(5000).send()  # estimate >= 5000: 50 s
    used = first.usage.total_tokens
    assert used > 0
    model.completion_request("again").send()
    assert t.waits == [pytest.approx(used / 100)]  # corrected from the estimate to what was used


def test_streamed_usage_corrects_the_estimate(fake: FakeProvider) -> None:
    t = FakeTime(advance=False)
    limiter = t.limiter(tpm=6000)
    model = client_for(fake, limiter).completion_model("m")
    final = None
    for chunk in model.completion_request("hello there").max_tokens(5000).stream():
        final = chunk
    assert final is not None
    used = final.response.usage.total_tokens  # type: ignore[union-attr]
    model.completion_request("again").send()
    assert t.waits == [pytest.approx(used / 100)]


@responses.activate
def test_transport_observes_anthropic_headers_with_responses() -> None:
    t = FakeTime(advance=False)
    wall = datetime(2026, 2, 25, 20, 2, 0, tzinfo=timezone.utc).timestamp()
    limiter = t.limiter(wall_clock=lambda: wall)
    responses.add(responses.POST, "https://api.example.test/v1/messages", json={"ok": True},
                  headers={"anthropic-ratelimit-requests-limit": "50",
                           "anthropic-ratelimit-requests-remaining": "0",
                           "anthropic-ratelimit-requests-reset": "2026-02-25T20:02:32Z"})
    transport = Transport("anthropic", "https://api.example.test/v1", rate_limiter=limiter,
                          retry=RetryPolicy(max_retries=0))
    transport.post_json("/messages", {"model": "claude", "max_tokens": 10})
    transport.post_json("/messages", {"model": "claude", "max_tokens": 10})
    assert t.waits == [pytest.approx(32.0)]


def test_a_limiter_given_to_both_a_client_and_batch_map_takes_one_slot_per_item(fake: FakeProvider) -> None:
    t = FakeTime(advance=True)  # one worker: the fake clock moves with each wait
    limiter = t.limiter(rpm=60)
    model = client_for(fake, limiter).completion_model("m")
    answers = batch.map(lambda p: model.completion_request(p).send().text, ["a", "b", "c", "d"],
                        max_workers=1, rate_limit=limiter)
    assert answers == ["echo: a", "echo: b", "echo: c", "echo: d"]
    assert limiter.acquired == 4  # not 8: the batch's slot covered each item's request
    assert t.waits == [1.0, 1.0, 1.0]  # 60 rpm: one second apart, not two


def test_a_slot_covers_only_the_first_request_of_its_item(fake: FakeProvider) -> None:
    t = FakeTime(advance=True)
    limiter = t.limiter(rpm=60)
    model = client_for(fake, limiter).completion_model("m")
    with limiter.slot():
        model.completion_request("one").send()  # uses the slot
        model.completion_request("two").send()  # an agent's next turn: its own slot
    model.completion_request("three").send()  # outside any slot
    assert limiter.acquired == 3 and t.waits == [1.0, 1.0]


def test_a_slot_still_books_the_requests_tokens(fake: FakeProvider) -> None:
    def next_wait(in_slot: bool) -> float:
        t = FakeTime(advance=False)
        limiter = t.limiter(tpm=600)  # 10 tokens a second
        model = client_for(fake, limiter).completion_model("m")
        if in_slot:
            with limiter.slot():
                model.completion_request("hi").send()
        else:
            model.completion_request("hi").send()
        limiter.acquire(tokens=1)
        return t.waits[-1]

    assert next_wait(in_slot=True) == next_wait(in_slot=False) > 0  # the covered request's tokens count


def test_batch_map_spaces_items_through_its_limiter() -> None:
    t = FakeTime(advance=True)
    limiter = t.limiter(rpm=120)
    assert batch.map(str.upper, ["a", "b", "c"], max_workers=1, rate_limit=limiter) == ["A", "B", "C"]
    assert limiter.acquired == 3 and t.waits == [0.5, 0.5]


def test_batch_map_takes_a_limiter_of_the_callers_own() -> None:
    class Counting:
        def __init__(self) -> None:
            self.calls = 0

        def acquire(self, tokens: int = 0) -> float:
            self.calls += 1
            return 0.0

    limiter = Counting()
    assert batch.map(str.upper, ["a", "b"], max_workers=2, rate_limit=limiter) == ["A", "B"]  # type: ignore[arg-type]
    assert limiter.calls == 2


@pytest.mark.parametrize("bad", [60, "60/min", object()])
def test_batch_refuses_a_rate_limit_that_is_not_a_limiter(bad: Any) -> None:
    with pytest.raises(TypeError, match="rate_limit must be a RateLimiter"):
        batch.map(str.upper, ["a"], rate_limit=bad)
    with pytest.raises(TypeError, match="rate_limit must be a RateLimiter"):
        batch.imap(str.upper, ["a"], rate_limit=bad)
