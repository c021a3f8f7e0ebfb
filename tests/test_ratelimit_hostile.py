"""rig_sync.ratelimit against a provider that lies: absurd usage, absurd rate-limit headers, garbage.

One bad answer must not stall every thread sharing a limiter: every server-provided figure is
clamped, a later healthy header set releases the waits an earlier one caused (threads already
waiting included), no single wait exceeds `max_pause`, and nothing but a `RigError` escapes.
All on a fake clock; the one test with real threads waits on the limiter, never on a sleep."""

from __future__ import annotations

import math
import threading
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rig_sync import batch, errors
from rig_sync.ratelimit import RateLimiter
from rig_sync.testing import FakeProvider, Reply
from tests.test_ratelimit import FakeTime, client_for

# "1 of 100 requests left, full again in 31,700 years" and "none left until then".
NEARLY_SPENT = {"x-ratelimit-limit-requests": "100", "x-ratelimit-remaining-requests": "1",
                "x-ratelimit-reset-requests": "1e12"}
SPENT = {"x-ratelimit-limit-tokens": "100", "x-ratelimit-remaining-tokens": "0",
         "x-ratelimit-reset-tokens": "1e12"}
HEALTHY = {"x-ratelimit-limit-requests": "100", "x-ratelimit-remaining-requests": "99",
           "x-ratelimit-reset-requests": "1s", "x-ratelimit-limit-tokens": "100",
           "x-ratelimit-remaining-tokens": "90", "x-ratelimit-reset-tokens": "1s"}
HOSTILE_NUMBERS: list[Any] = [10**12, 1e12, 1e30, 10**30, 10**400, -5, -1e30, float("nan"), float("inf"),
                              float("-inf"), "1e12", "nan", "-5", "x", None, True, b"7", [3], {"n": 1}]


# --- reported usage ----------------------------------------------------------------------------------


def test_one_absurd_usage_books_at_most_one_window() -> None:
    t = FakeTime()
    limiter = t.limiter(tpm=90_000)
    limiter.acquire()
    limiter.record_tokens(10**12)  # would be 666,666,667 s
    assert limiter.acquire() == 60.0  # one answer never books more than a minute's budget


def test_one_usage_books_no_more_than_max_pause() -> None:
    t = FakeTime()
    limiter = t.limiter(tpm=90_000, max_pause=30)
    limiter.record_tokens(10**12, estimated=0)
    assert limiter.acquire() == 30.0


@pytest.mark.parametrize("used", HOSTILE_NUMBERS, ids=repr)
def test_hostile_usage_never_raises_and_never_stalls(used: Any) -> None:
    t = FakeTime()
    limiter = t.limiter(tpm=90_000)
    limiter.acquire(tokens=100)
    limiter.record_tokens(used)  # the answer was paid for: never lose it to the limiter
    wait = limiter.acquire()
    assert 0.0 <= wait <= 60.0
    assert all(0 <= w <= limiter.max_pause for w in t.waits)


# --- rate-limit headers -----------------------------------------------------------------------------


@pytest.mark.parametrize("headers", [NEARLY_SPENT, SPENT], ids=["nearly-spent", "spent"])
def test_absurd_reset_holds_64_waiting_requests_no_longer_than_max_pause(headers: dict[str, str]) -> None:
    t = FakeTime(advance=False)  # time stands still: each wait is the slot the schedule gave
    limiter = t.limiter()
    limiter.observe(200, headers)
    waits = [limiter.acquire() for _ in range(64)]  # 64 workers sharing the limiter
    assert max(waits) <= limiter.max_pause  # not 0, 120, … 7560 s
    assert all(w <= limiter.max_pause for w in t.waits)


def test_healthy_headers_release_the_slots_hostile_ones_booked() -> None:
    t = FakeTime(advance=False)
    limiter = t.limiter(rpm=6000)
    limiter.observe(200, NEARLY_SPENT)
    booked = [limiter.reserve() for _ in range(64)]
    assert booked[-1] > 10  # paced: the provider says the budget is nearly spent
    limiter.observe(200, HEALTHY)
    # The provider's newest word wins: only this limiter's own 6000 rpm spacing remains.
    assert limiter.acquire() == pytest.approx(64 * 0.01)


def test_healthy_headers_end_a_hold_that_absurd_ones_began() -> None:
    t = FakeTime()
    limiter = t.limiter()
    limiter.observe(200, SPENT)
    limiter.observe(200, HEALTHY)
    assert limiter.acquire() == 0.0


@pytest.mark.parametrize("headers", [NEARLY_SPENT, SPENT], ids=["nearly-spent", "spent"])
def test_healthy_headers_release_threads_already_waiting(headers: dict[str, str]) -> None:
    """64 real threads wait (on the limiter, with its own default sleep, on a clock that stands
    still); a healthy header set wakes them and they go: none sleeps out its booked slot."""
    workers = 64
    arrived: set[str] = set()
    all_waiting = threading.Event()
    lock = threading.Lock()

    def clock() -> float:
        # Called by each worker under the limiter's lock while it books its slot; it holds that
        # lock until it waits, so once all 64 have called, the next observe finds them all waiting.
        if threading.current_thread() is not threading.main_thread():
            with lock:
                arrived.add(threading.current_thread().name)  # idents are reused
                if len(arrived) == workers:
                    all_waiting.set()
        return 1000.0

    limiter = RateLimiter(clock=clock)
    limiter.observe(200, headers)
    pool = [threading.Thread(target=limiter.acquire, daemon=True) for _ in range(workers)]
    for thread in pool:
        thread.start()
    assert all_waiting.wait(10)
    limiter.observe(200, HEALTHY)
    deadline = time.monotonic() + 10
    for thread in pool:
        thread.join(max(deadline - time.monotonic(), 0))
    assert not any(thread.is_alive() for thread in pool)
    assert limiter.acquired == workers


def test_no_single_wait_is_longer_than_max_pause() -> None:
    t = FakeTime()
    limiter = t.limiter(rpm=1, max_pause=25)  # a slot a minute: the waits come in steps
    assert limiter.acquire() == 0.0
    assert limiter.acquire() == 60.0
    assert t.waits == [25.0, 25.0, 10.0]


@pytest.mark.parametrize("retry_after", HOSTILE_NUMBERS, ids=repr)
def test_hostile_retry_after_never_raises_and_is_capped(retry_after: Any) -> None:
    t = FakeTime()
    limiter = t.limiter(max_pause=30)
    limiter.observe(429, {}, retry_after)
    assert 0 < limiter.acquire() <= 30.0  # a 429 pauses (1 s when its Retry-After is unreadable)


# --- anything at all ---------------------------------------------------------------------------------

_NAMES = [name for group in (NEARLY_SPENT, SPENT, HEALTHY) for name in group] + [
    "anthropic-ratelimit-requests-limit", "anthropic-ratelimit-requests-remaining",
    "anthropic-ratelimit-requests-reset", "anthropic-ratelimit-output-tokens-remaining",
    "anthropic-ratelimit-output-tokens-reset"]
_numbers = st.one_of(st.sampled_from(HOSTILE_NUMBERS), st.integers(min_value=-(10**40), max_value=10**40),
                     st.floats(allow_nan=True, allow_infinity=True))
_texts = st.one_of(_numbers.map(str), st.text(max_size=12),
                   st.sampled_from(["1s", "6m0s", "9999999h", "250ms", "2024-03-26T20:00:00Z", "9999-12-31T23:59:59Z",
                                    "0001-01-01T00:00:00Z", "1e400", "-0", "", " "]))
_values = st.one_of(_texts, _numbers, st.none(), st.binary(max_size=4))
_headers = st.one_of(st.dictionaries(st.sampled_from(_NAMES), _values, max_size=8),
                     st.dictionaries(st.text(max_size=8), _values, max_size=3), st.none(), st.integers(), st.text())
_statuses = st.one_of(st.sampled_from([200, 429, 503, 529, 500]), st.integers(), st.none(), st.text(max_size=3),
                      st.floats())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=st.lists(st.one_of(st.tuples(st.just("observe"), _statuses, _headers, _values),
                                 st.tuples(st.just("usage"), _values, st.one_of(st.none(), _values)),
                                 st.tuples(st.just("acquire"), _values)), max_size=8))
def test_whatever_the_limiter_receives_it_raises_only_rig_errors_and_waits_bounded(events: list[Any]) -> None:
    t = FakeTime()
    limiter = t.limiter(rpm=600, tpm=6000, max_pause=50)
    for kind, *args in events:
        try:
            if kind == "observe":
                limiter.observe(*args)
            elif kind == "usage":
                limiter.record_tokens(*args)
            else:
                limiter.acquire(*args)
        except errors.RigError:
            assert kind == "acquire"  # a caller's bad token count; a server's figure is never an error
    limiter.acquire(tokens=1)
    assert all(0 < w <= 50 and math.isfinite(w) for w in t.waits)


# --- end to end ---------------------------------------------------------------------------------------


def _answer(text: str, total: Any) -> dict[str, Any]:
    return {"id": "c1", "object": "chat.completion", "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": total}}


def test_batch_map_finishes_with_every_answer_despite_a_hostile_provider(fake: FakeProvider) -> None:
    t = FakeTime(advance=False)
    limiter = t.limiter(tpm=90_000)
    model = client_for(fake, limiter).completion_model("m")
    fake.script(Reply.json(200, _answer("big", 1e30), headers=NEARLY_SPENT),
                Reply.json(200, _answer("negative", -5), headers=SPENT),
                Reply.json(200, _answer("huge", 10**12), headers={**SPENT, "retry-after": "1e400"}))
    items = [f"q{i}" for i in range(64)]
    answers = batch.map(lambda p: model.completion_request(p).send().text, items, max_workers=8)
    assert sorted(a for a in answers if not a.startswith("echo")) == ["big", "huge", "negative"]
    assert all(a == f"echo: {item}" for a, item in zip(answers, items, strict=True) if a.startswith("echo"))
    assert fake.request_count == 64  # nothing was lost and asked again
    assert t.waits and all(0 < w <= limiter.max_pause for w in t.waits)
