"""rig_sync.observe: one RequestEvent per HTTP exchange, never breaking the request."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from rig_sync import errors, observe
from rig_sync.http import RetryPolicy, Timeout, Transport
from rig_sync.observe import RequestEvent
from rig_sync.testing import FakeProvider, Fault

BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def events() -> Iterator[list[RequestEvent]]:
    seen: list[RequestEvent] = []
    observe.add_hook(seen.append)
    yield seen
    observe.remove_hook(seen.append)
    assert not observe.has_hooks()


def make(fake: FakeProvider, retries: int = 1) -> Transport:
    return Transport("openai", fake.base_url, auth_headers={"Authorization": f"Bearer {fake.api_key}"},
                     retry=RetryPolicy(max_retries=retries, backoff_base=0), timeout=Timeout(connect=1, read=2))


def test_one_event_per_request_with_its_details(fake: FakeProvider, events: list[RequestEvent]) -> None:
    make(fake).post_json("/chat/completions", BODY)
    assert len(events) == 1
    event = events[0]
    assert (event.provider, event.method, event.path, event.status) == ("openai", "POST", "/chat/completions", 200)
    assert event.retries == 0 and event.error is None
    assert event.request_id == "req_1"
    assert 0 < event.latency < 5


def test_retries_are_counted_in_one_event(fake: FakeProvider, events: list[RequestEvent]) -> None:
    fake.inject(Fault.status(503))
    make(fake, retries=2).post_json("/chat/completions", BODY)
    assert fake.request_count == 2
    assert [(e.status, e.retries) for e in events] == [(200, 1)]


def test_error_status_is_reported(fake: FakeProvider, events: list[RequestEvent]) -> None:
    fake.inject(Fault.status(404))
    with pytest.raises(errors.NotFoundError):
        make(fake).post_json("/chat/completions", BODY)
    assert [(e.status, e.retries, e.error) for e in events] == [(404, 0, None)]


def test_connection_failure_is_reported(fake: FakeProvider, events: list[RequestEvent]) -> None:
    fake.inject(Fault.drop(), times=3)
    with pytest.raises(errors.APIConnectionError):
        make(fake, retries=2).post_json("/chat/completions", BODY)
    assert fake.request_count == 3
    assert len(events) == 1
    assert events[0].status is None and events[0].error is not None and events[0].retries == 2


def test_a_raising_hook_does_not_break_the_request(
    fake: FakeProvider, events: list[RequestEvent], caplog: pytest.LogCaptureFixture
) -> None:
    def broken(event: RequestEvent) -> None:
        raise RuntimeError("hook bug")

    observe.add_hook(broken)
    try:
        with caplog.at_level(logging.ERROR, logger="rig_sync.observe"):
            answer = make(fake).post_json("/chat/completions", BODY)
    finally:
        observe.remove_hook(broken)
    assert answer["choices"][0]["message"]["content"] == "echo: hi"
    assert len(events) == 1  # hooks after the broken one still ran
    assert "hook bug" in caplog.text


def test_remove_hook(fake: FakeProvider) -> None:
    class Counter:
        def __init__(self) -> None:
            self.n = 0

        def on_event(self, event: RequestEvent) -> None:
            self.n += 1

    counter = Counter()
    plain: list[RequestEvent] = []
    observe.add_hook(counter.on_event)  # a bound method: a new object on every attribute access
    observe.add_hook(plain.append)
    transport = make(fake)
    transport.post_json("/chat/completions", BODY)
    observe.remove_hook(counter.on_event)
    observe.remove_hook(plain.append)
    assert not observe.has_hooks()
    transport.post_json("/chat/completions", BODY)
    assert counter.n == 1 and len(plain) == 1
    observe.remove_hook(plain.append)  # removing twice is harmless


def test_stream_is_observed_once(fake: FakeProvider, events: list[RequestEvent]) -> None:
    with make(fake).stream("POST", "/chat/completions", json={**BODY, "stream": True}) as stream:
        assert b"[DONE]" in b"".join(stream.chunks())
    assert [(e.status, e.path) for e in events] == [(200, "/chat/completions")]


def test_emit_calls_hooks_in_order() -> None:
    order: list[str] = []

    def first(event: RequestEvent) -> None:
        order.append("first")

    def second(event: RequestEvent) -> None:
        order.append("second")

    observe.add_hook(first)
    observe.add_hook(second)
    try:
        observe.emit(RequestEvent("p", "GET", "/x", 200, 0.1, 0, None, None))
    finally:
        observe.remove_hook(first)
        observe.remove_hook(second)
    assert order == ["first", "second"]
