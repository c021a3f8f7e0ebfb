"""Thread safety: one client shared by 64 threads for 5,000 mixed requests (completions, streams,
embeddings) against the fake provider.

Every request carries its own unique token and the fake echoes it (chat) or embeds it
deterministically (embeddings), so an answer delivered to the wrong thread, a response read on
a connection another thread is using, or a pool that opens and discards sockets all show up.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
import warnings

import pytest

from rig_sync.providers import openai
from rig_sync.testing import FakeProvider
from rig_sync.testing._openai import embed_text

THREADS = 64
REQUESTS = 5000
POOL_SIZE = 64
NDIMS = 8  # small vectors: the point is routing, not payload size
BOUND = 120.0  # seconds for the whole run; it takes a fraction of that


def one_request(client: openai.Client, n: int, token: str) -> str | None:
    """Request number `n` (its kind chosen by n); None if the answer is its own, else what is wrong."""
    kind = n % 3
    if kind == 0:
        prompt = f"complete {token}"
        text = client.completion_model("gpt-4o-mini").completion_request(prompt).send().text
        return None if text == f"echo: {prompt}" else f"completion {n}: got {text!r}"
    if kind == 1:
        prompt = f"stream {token}"
        stream = client.completion_model("gpt-4o-mini").completion_request(prompt).stream()
        pieces = "".join(stream.text_stream())
        ok = pieces == stream.text == f"echo: {prompt}"
        return None if ok else f"stream {n}: got {pieces!r}"
    text = f"embed {token}"
    embedding = client.embedding_model("text-embedding-3-small", NDIMS).embed_text(text)
    ok = embedding.document == text and embedding.vec == embed_text(text, NDIMS)
    return None if ok else f"embedding {n}: vector of another text"


def test_one_client_shared_by_64_threads(fake: FakeProvider, caplog: pytest.LogCaptureFixture) -> None:
    client: openai.Client = (
        openai.Client.builder(fake.api_key).base_url(fake.base_url).pool_size(POOL_SIZE).timeout(30).build()
    )
    run = uuid.uuid4().hex[:8]
    problems: list[str] = []
    errors: list[BaseException] = []
    done = [0] * THREADS
    start = threading.Barrier(THREADS)  # everyone starts at once: maximum contention for the pool

    def worker(k: int) -> None:
        try:
            start.wait(timeout=BOUND)
            for n in range(k, REQUESTS, THREADS):
                problem = one_request(client, n, f"{run}-{n}")
                if problem is not None:
                    problems.append(problem)
                done[k] += 1
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(THREADS)]
    deadline = time.monotonic() + BOUND
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.WARNING):
        warnings.simplefilter("always")
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    assert not any(t.is_alive() for t in threads), f"not finished within {BOUND} s"
    assert errors == []
    assert problems == []
    assert sum(done) == REQUESTS
    assert fake.request_count == REQUESTS
    assert 1 <= fake.connection_count <= POOL_SIZE  # connections reused, never opened and discarded
    pool_full = "Connection pool is full"
    assert not [r for r in caplog.records if pool_full in r.getMessage()]
    assert not [w for w in caught if pool_full in str(w.message)]


def test_a_stream_read_to_the_end_gives_its_connection_back(fake: FakeProvider) -> None:
    # What keeps the shared pool within its size: a finished stream's connection is reused, and
    # only one abandoned half-read is dropped (never handed to another request mid-answer).
    client = openai.Client.builder(fake.api_key).base_url(fake.base_url).pool_size(1).timeout(5).build()
    model = client.completion_model("gpt-4o-mini")
    for n in range(3):
        assert model.completion_request(f"s{n}").stream().text == f"echo: s{n}"
    assert model.completion_request("plain").send().text == "echo: plain"
    assert fake.connection_count == 1
    with model.completion_request("one two three four").stream() as stream:
        next(iter(stream))
    assert model.completion_request("after").send().text == "echo: after"
    assert fake.connection_count == 2
