"""Closing a client closes every connection it opened: idle ones at once; one in use (a call on another
thread, a stream held open, a call waiting for a pooled connection) is cut off, so its user gets an
error at once instead of finishing on a socket the client no longer owns. A closed client is not
dead: a later call opens new connections (the documented choice).
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from loopback_support import client_sockets, finished, needs_proc, run_in_thread, server_states, wait_until

from rig_sync import batch, errors
from rig_sync.http import RetryPolicy, Timeout
from rig_sync.providers import openai
from rig_sync.testing import FakeProvider, Fault

pytestmark = needs_proc
LONG = Timeout(connect=30, read=30)
BOUND = 3.0  # seconds a cut-off call may take to end (generous, for a loaded CI machine)


def client_for(fake: FakeProvider, **kw: Any) -> openai.Client:
    kw.setdefault("timeout", LONG)
    return openai.Client(fake.api_key, base_url=fake.base_url, retry=RetryPolicy(max_retries=2, backoff_base=0), **kw)


def ask(client: openai.Client, prompt: str = "hi") -> str:
    return client.completion_model("m").completion_request(prompt).send().text


def all_ended(port: int) -> bool:
    """The server's end of every connection saw the client go (no ESTABLISHED socket left)."""
    return "01" not in server_states(port)


def test_close_after_a_batch_closes_every_socket(fake: FakeProvider) -> None:
    fake.latency = 0.05  # so that the 32 workers each hold a connection at once
    client = client_for(fake)
    answers = batch.map(lambda p: ask(client, p), [f"q{i}" for i in range(64)], max_workers=32)
    assert answers == [f"echo: q{i}" for i in range(64)]
    port = fake.address[1]
    assert len(client_sockets(port)) == fake.connection_count > 1
    client.close()
    assert client_sockets(port) == []  # closed by the time close() returns
    wait_until(lambda: all_ended(port), what="the server seeing every connection end")


def test_leaving_with_closes_every_socket(fake: FakeProvider) -> None:
    with client_for(fake) as client:
        batch.map(lambda p: ask(client, p), ["a", "b", "c", "d"], max_workers=4)
        assert client_sockets(fake.address[1])
    assert client_sockets(fake.address[1]) == []


def test_a_closed_client_opens_new_connections_when_used_again(fake: FakeProvider) -> None:
    client = client_for(fake)
    assert ask(client) == "echo: hi"
    client.close()
    assert ask(client, "again") == "echo: again"
    assert fake.connection_count == 2
    client.close()
    assert client_sockets(fake.address[1]) == []


def test_a_stream_held_open_is_cut_off_by_close(fake: FakeProvider) -> None:
    client = client_for(fake)
    port = fake.address[1]
    stream = client.completion_model("m").completion_request("one two three").stream()
    assert len(client_sockets(port)) == 1
    client.close()
    wait_until(lambda: all_ended(port), what="the server seeing the stream's connection end")
    with pytest.raises(errors.APIConnectionError, match="client was closed"):
        list(stream)
    assert client_sockets(port) == []  # the failed read closed the stream's socket


def test_a_call_in_flight_on_another_thread_ends_at_close(fake: FakeProvider) -> None:
    fake.inject(Fault.hang())
    client = client_for(fake)
    thread, outcome = run_in_thread(lambda: ask(client))
    wait_until(lambda: fake.request_count == 1, what="the request reaching the server")
    started = time.monotonic()
    client.close()
    error = finished(thread, outcome, BOUND)
    assert time.monotonic() - started < BOUND
    assert isinstance(error, errors.APIConnectionError) and "client was closed" in str(error), repr(error)
    assert fake.request_count == 1  # not retried on a fresh connection behind the caller's back
    assert client_sockets(fake.address[1]) == []


def test_a_call_waiting_for_a_pooled_connection_ends_at_close(fake: FakeProvider) -> None:
    client = client_for(fake, pool_size=1)
    held = client.completion_model("m").completion_request("hold").stream()
    pool = client.transport._direct_pool(client.transport.base_url + "/chat/completions")
    assert pool is not None and pool.pool is not None
    queue = pool.pool
    thread, outcome = run_in_thread(lambda: ask(client))
    wait_until(lambda: queue.not_empty._waiters, what="the call waiting for a connection")  # type: ignore[attr-defined]
    client.close()
    error = finished(thread, outcome, BOUND)
    assert isinstance(error, errors.APIConnectionError) and "client was closed" in str(error), repr(error)
    held.close()
    assert client_sockets(fake.address[1]) == []
