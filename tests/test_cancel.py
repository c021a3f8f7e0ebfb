"""`CancelScope.cancel()` ends a request promptly whatever it is doing: waiting for a pooled connection,
connecting, sending, waiting for the answer's head, reading its body or a stream, or waiting between
retries. Each state is reached for sure (seen in the pool or the kernel's socket table) before the
cancel, and every request ends with `RequestCancelledError` within a bound far below its timeouts.
And `batch.fan_out(mode="first")` leaves no loser running.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import pytest
from loopback_support import (
    SYN_SENT,
    SlowServer,
    chunked_head,
    client_sockets,
    finished,
    json_head,
    needs_proc,
    run_in_thread,
    server_states,
    wait_until,
)

from rig_sync import batch, errors
from rig_sync.client.builder import ClientFactory, DynClientBuilder
from rig_sync.http import CancelScope, RetryPolicy, Timeout, Transport, join_url
from rig_sync.providers import openai
from rig_sync.testing import FakeProvider, Fault

BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
PROMPT = "/chat/completions"
LONG = Timeout(connect=30, read=30)  # far beyond every bound below: only the cancel can end these calls
BOUND = 3.0  # seconds a cancelled call may take to end (generous, for a loaded CI machine)


def transport(base_url: str, **kw: Any) -> Transport:
    kw.setdefault("timeout", LONG)
    kw.setdefault("retry", RetryPolicy(max_retries=2, backoff_base=0))
    return Transport("openai", base_url, auth_headers={"Authorization": "Bearer sk-test"}, **kw)


def in_scope(scope: CancelScope, call: Any) -> tuple[threading.Thread, list[Any]]:
    def run() -> Any:
        with scope:
            return call()

    return run_in_thread(run)


def assert_cancelled_within(scope: CancelScope, thread: threading.Thread, outcome: list[Any]) -> BaseException:
    started = time.monotonic()
    scope.cancel()
    error = finished(thread, outcome, BOUND)
    assert time.monotonic() - started < BOUND
    assert isinstance(error, errors.RequestCancelledError), repr(error)
    assert "cancel" in str(error)
    return error


def test_cancel_wakes_a_call_waiting_for_a_pooled_connection(fake: FakeProvider) -> None:
    t = transport(fake.base_url, pool_size=1)
    held = t.stream("POST", PROMPT, json={**BODY, "stream": True})  # the pool's only connection
    pool = t._direct_pool(join_url(t.base_url, PROMPT))
    assert pool is not None and pool.pool is not None
    scope = CancelScope()
    thread, outcome = in_scope(scope, lambda: t.post_json(PROMPT, BODY))
    wait_until(lambda: pool.pool.not_empty._waiters, what="the call waiting for a connection")  # type: ignore[union-attr]
    assert_cancelled_within(scope, thread, outcome)
    held.close()
    assert t.post_json(PROMPT, BODY)["choices"]  # the pool is intact
    assert fake.request_count == 2


@needs_proc
def test_cancel_wakes_a_call_that_is_connecting() -> None:
    # A listener that never accepts, its queue full: the next connect stays in SYN_SENT.
    listener = socket.create_server(("127.0.0.1", 0), backlog=0)
    port = listener.getsockname()[1]
    queued = socket.create_connection(("127.0.0.1", port))
    try:
        t = transport(f"http://127.0.0.1:{port}/v1")
        scope = CancelScope()
        thread, outcome = in_scope(scope, lambda: t.post_json(PROMPT, BODY))
        wait_until(lambda: any(s["state"] == SYN_SENT for s in client_sockets(port)), what="a connect in progress")
        assert_cancelled_within(scope, thread, outcome)
        assert not any(s["state"] == SYN_SENT for s in client_sockets(port))
    finally:
        queued.close()
        listener.close()


@needs_proc
def test_cancel_wakes_a_call_that_is_sending() -> None:
    # A server that accepts and never reads: a 32 MB body fills every buffer and the send blocks.
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    accepted: list[socket.socket] = []
    acceptor = threading.Thread(target=lambda: accepted.append(listener.accept()[0]), daemon=True)
    acceptor.start()
    try:
        t = transport(f"http://127.0.0.1:{port}/v1")
        scope = CancelScope()
        big = b"x" * (32 << 20)
        thread, outcome = in_scope(scope, lambda: t.request("POST", "/upload", data=big))
        wait_until(lambda: any(s["tx_queue"] > 0 for s in client_sockets(port)), what="a send in progress")
        assert_cancelled_within(scope, thread, outcome)
        assert len(accepted) == 1  # and nothing was retried
    finally:
        listener.close()
        for conn in accepted:
            conn.close()


def test_cancel_wakes_a_call_waiting_for_the_answer(fake: FakeProvider) -> None:
    fake.inject(Fault.hang())
    t = transport(fake.base_url)
    scope = CancelScope()
    thread, outcome = in_scope(scope, lambda: t.post_json(PROMPT, BODY))
    wait_until(lambda: fake.request_count == 1, what="the request reaching the server")
    assert_cancelled_within(scope, thread, outcome)
    assert fake.request_count == 1  # not retried


def test_cancel_wakes_a_call_reading_the_body() -> None:
    with SlowServer(json_head(1000) + b'{"partial": ', body=None) as server:  # the head, a bit, then nothing
        t = transport(server.base_url)
        scope = CancelScope()
        thread, outcome = in_scope(scope, lambda: t.post_json(PROMPT, BODY))
        wait_until(server.answering.is_set, what="the answer's head going out")
        assert_cancelled_within(scope, thread, outcome)
        assert server.requests == 1


def test_cancel_wakes_a_thread_reading_a_stream() -> None:
    event = b"data: {\"n\": 1}\n\n"
    head = chunked_head(b"text/event-stream") + b"%x\r\n%s\r\n" % (len(event), event)
    with SlowServer(head, body=None) as server:  # one event, then silence
        t = transport(server.base_url)
        scope = CancelScope()
        got: list[bytes] = []

        def read() -> None:
            stream = t.stream("POST", PROMPT, json={**BODY, "stream": True})
            for chunk in stream.chunks():
                got.append(chunk)

        thread, outcome = in_scope(scope, read)
        wait_until(lambda: got, what="the first event")
        assert_cancelled_within(scope, thread, outcome)
        assert got == [event]


def test_cancel_wakes_a_call_waiting_between_retries(fake: FakeProvider) -> None:
    fake.inject(Fault.status(500), times=3)
    t = transport(fake.base_url, retry=RetryPolicy(max_retries=2, backoff_base=30, backoff_max=30))
    scope = CancelScope()
    thread, outcome = in_scope(scope, lambda: t.post_json(PROMPT, BODY))
    wait_until(lambda: fake.request_count == 1, what="the first attempt")
    assert_cancelled_within(scope, thread, outcome)
    assert fake.request_count == 1


def test_a_request_in_a_cancelled_scope_is_never_sent(fake: FakeProvider) -> None:
    t = transport(fake.base_url)
    scope = CancelScope()
    scope.cancel()
    with scope, pytest.raises(errors.RequestCancelledError):
        t.post_json(PROMPT, BODY)
    assert fake.request_count == 0 and fake.connection_count == 0


def test_cancelling_an_outer_scope_cuts_a_call_in_an_inner_one(fake: FakeProvider) -> None:
    fake.inject(Fault.hang())
    t = transport(fake.base_url)
    outer = CancelScope()

    def call() -> Any:
        with CancelScope():
            return t.post_json(PROMPT, BODY)

    thread, outcome = in_scope(outer, call)
    wait_until(lambda: fake.request_count == 1, what="the request reaching the server")
    assert_cancelled_within(outer, thread, outcome)


def builder_for(**fakes: FakeProvider) -> DynClientBuilder:
    builder = DynClientBuilder(include_builtins=False)
    for name, server in fakes.items():
        def make(server: FakeProvider = server) -> openai.Client:
            return openai.Client(server.api_key, base_url=server.base_url, timeout=60,
                                 retry=RetryPolicy(max_retries=2, backoff_base=0))

        builder.register(ClientFactory(name, make, lambda value, make=make: make()))
    return builder


@needs_proc
def test_fan_out_first_leaves_no_loser_running(fake: FakeProvider) -> None:
    runs = 200
    with FakeProvider() as slow:
        slow.inject(Fault.hang(), times=runs)
        builder = builder_for(fast=fake, slow=slow)
        for _ in range(runs):
            target, text = batch.fan_out("race", [("slow", "m"), ("fast", "m")], builder=builder, mode="first")
            assert (target, text) == (("fast", "m"), "echo: race")

        def losers() -> list[threading.Thread]:
            return [t for t in threading.enumerate() if t.name.startswith("rig_sync.fan_out")]

        wait_until(lambda: not losers(), seconds=BOUND, what="every loser ending")
        wait_until(lambda: "01" not in server_states(slow.address[1]), seconds=BOUND,
                   what="the server seeing every loser's connection end")
        assert not client_sockets(slow.address[1])
        assert slow.request_count <= runs  # a cut request is never retried


def test_cancels_in_every_state_give_every_pooled_connection_back(fake: FakeProvider) -> None:
    t = transport(fake.base_url, pool_size=2, timeout=Timeout(connect=30, read=30, pool=1))
    fake.inject(Fault.hang(), times=20)
    for _ in range(10):
        scopes = [CancelScope(), CancelScope()]
        calls = [in_scope(scope, lambda: t.post_json(PROMPT, BODY)) for scope in scopes]
        for scope, (thread, outcome) in zip(scopes, calls, strict=True):
            scope.cancel()
            finished(thread, outcome, BOUND)
    fake.reset()
    with t.stream("POST", PROMPT, json={**BODY, "stream": True}) as one, \
            t.stream("POST", PROMPT, json={**BODY, "stream": True}) as two:
        assert one.status == two.status == 200  # both connections free: nothing leaked a pool slot
