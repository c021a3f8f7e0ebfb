"""rig_sync.batch: ordered map, bounded imap, Ctrl-C, pools, fan-out, embeddings, fault injection."""

from __future__ import annotations

import logging
import threading
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import InterruptAfter

from rig_sync import batch
from rig_sync.client.builder import ClientFactory, DynClientBuilder
from rig_sync.embeddings import Embedding
from rig_sync.errors import APIConnectionError, RigError
from rig_sync.http import RetryPolicy
from rig_sync.journal import Journal
from rig_sync.providers import openai
from rig_sync.testing import FakeProvider, Fault

FAST_RETRY = RetryPolicy(max_retries=2, backoff_base=0.0, backoff_max=0.0, max_retry_after=0.0)


def client_for(fake: FakeProvider, **kwargs: Any) -> openai.Client:
    return openai.Client(fake.api_key, base_url=fake.base_url, retry=FAST_RETRY, timeout=10, **kwargs)


def ask(model: Any) -> Any:
    def call(prompt: str) -> str:
        return str(model.completion_request(prompt).send().text)

    return call


def prompts_sent(fake: FakeProvider) -> Counter[str]:
    return Counter(r.json["messages"][-1]["content"] for r in fake.requests if r.json)


# --- map ----------------------------------------------------------------------------------------


def test_map_keeps_input_order_whatever_the_finish_order() -> None:
    gates = [threading.Event() for _ in range(8)]

    def fn(i: int) -> int:
        if i < 7:  # each item waits for the next one: they finish in reverse order
            assert gates[i + 1].wait(5)
        gates[i].set()
        return i * i

    assert batch.map(fn, range(8), max_workers=8) == [i * i for i in range(8)]


def test_map_failure_raises_batch_error_with_every_result_and_failure() -> None:
    def fn(i: int) -> int:
        if i % 3 == 0:
            raise ValueError(f"bad {i}")
        return i

    with pytest.raises(batch.BatchError) as info:
        batch.map(fn, range(10), max_workers=4)
    err = info.value
    assert isinstance(err, RigError)
    assert sorted(err.failures) == [0, 3, 6, 9]
    assert all(isinstance(e, ValueError) and str(e) == f"bad {i}" for i, e in err.failures.items())
    assert err.results == [None if i % 3 == 0 else i for i in range(10)]
    assert err.succeeded == {i: i for i in range(10) if i % 3}
    assert "4 of 10 items failed; first: item 0: ValueError: bad 0" in str(err)


def test_map_return_exceptions_puts_them_in_place() -> None:
    def fn(i: int) -> int:
        if i == 2:
            raise KeyError(i)
        return i

    out = batch.map(fn, [0, 1, 2, 3], return_exceptions=True)
    assert out[:2] == [0, 1] and out[3] == 3
    assert isinstance(out[2], KeyError)


def test_map_of_nothing_and_bad_workers() -> None:
    assert batch.map(str, []) == []
    for bad in (0, -1, True, 2.5):
        with pytest.raises(ValueError, match="max_workers"):
            batch.map(str, [1], max_workers=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_workers"):
        batch.imap(str, [1], max_workers=0)


def test_map_uses_a_given_executor_and_leaves_it_running() -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2, thread_name_prefix="mine") as pool:
        names = batch.map(lambda _: threading.current_thread().name, range(4), executor=pool)
        assert all(name.startswith("mine") for name in names)
        assert pool.submit(lambda: 7).result(timeout=5) == 7  # not shut down by the batch


# --- imap ---------------------------------------------------------------------------------------


def test_imap_pulls_a_bounded_number_of_items_ahead_of_the_consumer() -> None:
    pulled = 0

    def endless() -> Iterator[int]:
        nonlocal pulled
        while True:
            pulled += 1
            yield pulled

    workers = 4
    stream = batch.imap(lambda x: x, endless(), max_workers=workers)
    consumed = 0
    try:
        for _ in range(50):
            next(stream)
            consumed += 1
            assert pulled - consumed <= 2 * workers + 1
    finally:
        stream.close()
    held = pulled
    assert consumed == 50 and held <= consumed + 2 * workers + 1
    assert pulled == held  # closed: nothing more is pulled


def test_imap_yields_index_and_outcome_as_items_finish() -> None:
    def fn(i: int) -> int:
        if i == 1:
            raise RuntimeError("one")
        return i * 10

    got = dict(batch.imap(fn, iter(range(5)), max_workers=2))
    assert sorted(got) == [0, 1, 2, 3, 4]
    assert isinstance(got[1], RuntimeError)
    assert {i: v for i, v in got.items() if i != 1} == {0: 0, 2: 20, 3: 30, 4: 40}


def test_imap_closed_early_cancels_queued_work() -> None:
    started: list[int] = []
    release = threading.Event()

    def fn(i: int) -> int:
        started.append(i)
        if i > 0:
            assert release.wait(5)
        return i

    stream = batch.imap(fn, range(100), max_workers=2)
    assert next(stream) == (0, 0)
    stream.close()
    release.set()
    assert len(started) <= 1 + 2 * 2  # the rest was cancelled, never started


# --- Ctrl-C -------------------------------------------------------------------------------------



def side_by_side(run: Callable[[str], None], names: str, timeout: float = 30) -> None:
    """`run(name)` for every name, each in its own thread, all at once; waits (bounded) for all."""
    threads = [threading.Thread(target=run, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)


class RecordingThreads:
    """Wraps a batch function and remembers the threads it ran on (the batch's own pool)."""

    def __init__(self, fn: Callable[[str], str]) -> None:
        self.fn = fn
        self.threads: set[threading.Thread] = set()

    def __call__(self, item: str) -> str:
        self.threads.add(threading.current_thread())
        return self.fn(item)

    def wait_until_done(self) -> None:
        """Wait (bounded) until those threads have exited: an interrupted batch's pool is shut
        down, so its threads end once what was on the wire has landed (and been journaled)."""
        deadline = time.monotonic() + 10
        while any(t.is_alive() for t in self.threads):
            assert time.monotonic() < deadline, "batch workers still running"
            threading.Event().wait(0.01)


def test_ctrl_c_stops_promptly_keeps_what_finished_and_journals_it(fake: FakeProvider, tmp_path: Path) -> None:
    fake.latency = 0.02
    model = client_for(fake).completion_model("gpt-4o-mini")
    journal = tmp_path / "job.jsonl"
    workers, stop_after = 3, 6
    prompts = [f"p{i}" for i in range(200)]
    fn = RecordingThreads(ask(model))
    with pytest.raises(batch.BatchInterrupted) as info:
        batch.map(fn, prompts, max_workers=workers, journal=journal, progress=InterruptAfter(stop_after), job="ask")
    err = info.value
    assert isinstance(err, KeyboardInterrupt)
    done = err.succeeded
    assert len(done) >= stop_after and not err.failures
    assert all(done[i] == f"echo: p{i}" for i in done)
    assert sorted([*done, *err.pending]) == list(range(200))
    fn.wait_until_done()  # requests still on the wire land (in the journal)
    sent = fake.request_count
    assert sent <= stop_after + 2 * workers  # nothing new started after the interrupt
    with Journal(journal) as log:
        finished = log.finished()
    assert len(finished) == sent and set(done) <= set(finished)
    assert all(finished[i] == f"echo: p{i}" for i in finished)

    # Run again with the journal: only the rest is requested, each once.
    fake.reset()
    again = batch.map(ask(model), prompts, max_workers=workers, journal=journal, job="ask")  # fn wrapped otherwise
    assert again == [f"echo: {p}" for p in prompts]
    sent_again = prompts_sent(fake)
    assert set(sent_again) == {f"p{i}" for i in range(200) if i not in finished}
    assert set(sent_again.values()) == {1}


# --- pools --------------------------------------------------------------------------------------


def test_two_batches_sharing_one_client_never_overflow_its_pool(
    fake: FakeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    fake.latency = 0.01
    model = client_for(fake, pool_size=4).completion_model("gpt-4o-mini")
    results: dict[str, list[str]] = {}

    def run(name: str) -> None:
        results[name] = batch.map(ask(model), [f"{name}{i}" for i in range(40)], max_workers=8)

    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.WARNING):
        warnings.simplefilter("always")
        side_by_side(run, "ab")
    assert results == {name: [f"echo: {name}{i}" for i in range(40)] for name in "ab"}
    assert 1 <= fake.connection_count <= 4  # the pool size, though 16 workers shared it
    assert not [r for r in caplog.records if "pool" in r.getMessage().lower()]
    assert not caught


def test_one_batch_opens_no_more_connections_than_workers(fake: FakeProvider) -> None:
    fake.latency = 0.005
    model = client_for(fake).completion_model("gpt-4o-mini")  # pool of 64
    assert len(batch.map(ask(model), [str(i) for i in range(60)], max_workers=3)) == 60
    assert 1 <= fake.connection_count <= 3


# --- fault injection ----------------------------------------------------------------------------


def test_ten_thousand_items_with_faults_none_lost_none_duplicated(fake: FakeProvider) -> None:
    model = client_for(fake, pool_size=16).completion_model("gpt-4o-mini")
    faults = [Fault.status(429, retry_after=0), Fault.status(500), Fault.status(529)]

    def fn(i: int) -> str:
        # Inject as we go, so faults are spread over the run: 10% status errors, 2% dropped.
        if i % 10 == 0:
            fake.inject(faults[(i // 10) % 3])
        if i % 50 == 25:
            fake.inject(Fault.drop())
        return str(model.completion_request(f"item {i}").send().text)

    n = 10_000
    out = batch.map(fn, range(n), max_workers=16, return_exceptions=True)
    assert len(out) == n
    answered = [i for i, r in enumerate(out) if isinstance(r, str)]
    failed = [i for i, r in enumerate(out) if not isinstance(r, str)]
    assert all(out[i] == f"echo: item {i}" for i in answered)  # each answer is its own item's
    assert all(isinstance(out[i], RigError) for i in failed)
    assert len(answered) >= n * 0.95
    sent = prompts_sent(fake)
    assert set(sent) == {f"item {i}" for i in range(n)}  # every item was asked
    # Retries only, no duplicates: a drop on a kept-alive connection is a stale connection, sent again
    # once at once without spending a retry, so an item goes out at most 1 + max_retries + 1 times.
    assert max(sent.values()) <= 2 + FAST_RETRY.max_retries
    assert all(sent[f"item {i}"] >= 1 + FAST_RETRY.max_retries for i in failed)  # failed only when out of retries
    retried = sum(sent.values()) - n
    assert n * 0.1 <= retried <= n * 0.13  # the injected faults were consumed by retries


# --- embed_texts --------------------------------------------------------------------------------


class ChunkRecorder:
    provider = "test"
    model = "chunky"
    max_documents = 3
    ndims = 1

    def __init__(self, fail_on: str | None = None) -> None:
        self.chunks: list[list[str]] = []
        self.fail_on = fail_on
        self._lock = threading.Lock()

    def embed_text(self, text: str) -> Embedding:
        return self.embed_texts([text])[0]

    def embed_texts(self, texts: Any) -> list[Embedding]:
        with self._lock:
            self.chunks.append(list(texts))
        if self.fail_on in texts:
            raise APIConnectionError("chunk lost", provider="test")
        return [Embedding(t, [float(t)]) for t in texts]


def test_embed_texts_chunks_by_max_documents_in_parallel_keeping_order() -> None:
    model = ChunkRecorder()
    texts = [str(i) for i in range(10)]
    out = batch.embed_texts(model, texts, max_workers=4)
    assert [e.document for e in out] == texts and [e.vec for e in out] == [[float(i)] for i in range(10)]
    assert sorted(model.chunks) == sorted([texts[0:3], texts[3:6], texts[6:9], texts[9:]])


def test_embed_texts_failure_keeps_the_chunks_that_succeeded() -> None:
    texts = [str(i) for i in range(10)]
    with pytest.raises(batch.BatchError) as info:
        batch.embed_texts(ChunkRecorder(fail_on="4"), texts)
    err = info.value
    assert list(err.failures) == [3] and isinstance(err.failures[3], APIConnectionError)
    assert [e.document if e else None for e in err.results] == ["0", "1", "2", None, None, None, "6", "7", "8", "9"]


def test_embed_texts_against_the_fake_matches_the_sequential_answer(fake: FakeProvider) -> None:
    model = client_for(fake).embedding_model("text-embedding-3-small")
    texts = [f"text {i}" for i in range(5000)]  # three chunks of 2048
    fake.reset()
    out = batch.embed_texts(model, texts)
    assert fake.request_count == 3
    assert [e.document for e in out] == texts
    assert [e.vec for e in out[::997]] == [e.vec for e in model.embed_texts(texts[::997])]


def test_embed_texts_caps_workers_at_the_pool(fake: FakeProvider) -> None:
    fake.latency = 0.01
    model = client_for(fake, pool_size=2).embedding_model("text-embedding-3-small")
    assert len(batch.embed_texts(model, [f"t{i}" for i in range(6000)], max_workers=8)) == 6000
    assert fake.connection_count <= 2


def test_embed_texts_rejects_bad_input() -> None:
    with pytest.raises(TypeError):
        batch.embed_texts(ChunkRecorder(), "one string")  # type: ignore[arg-type]
    with pytest.raises(RigError):
        batch.embed_texts(ChunkRecorder(), [])


# --- fan_out ------------------------------------------------------------------------------------


def builder_for(**fakes: FakeProvider) -> DynClientBuilder:
    builder = DynClientBuilder(include_builtins=False)
    for name, server in fakes.items():
        def make(server: FakeProvider = server) -> openai.Client:
            return openai.Client(server.api_key, base_url=server.base_url, retry=FAST_RETRY, timeout=60)

        builder.register(ClientFactory(name, make, lambda value, make=make: make()))
    return builder


def server_side_states(port: int) -> list[str]:
    """TCP states of the server's accepted sockets on `port` (from /proc/net/tcp)."""
    states = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and int(fields[2].split(":")[1], 16) != 0:
            states.append(fields[3])
    return states


def test_fan_out_all_answers_by_target_with_errors_in_place(fake: FakeProvider) -> None:
    with FakeProvider() as wrong:
        wrong.inject(Fault.status(401))
        builder = builder_for(good=fake, bad=wrong)
        out = batch.fan_out("hi", [("good", "gpt-4o"), ("bad", "gpt-4o")], builder=builder, preamble="Be brief")
    assert isinstance(out, dict)
    assert out[("good", "gpt-4o")] == "echo: hi"
    assert isinstance(out[("bad", "gpt-4o")], RigError)
    assert fake.last_request is not None and fake.last_request.json["messages"][0]["content"] == "Be brief"


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc/net/tcp")
@pytest.mark.parametrize("fault", [Fault.hang(), Fault.slow(30)], ids=["hang", "slow"])
def test_fan_out_first_returns_the_winner_and_closes_the_loser(fake: FakeProvider, fault: Fault) -> None:
    with FakeProvider() as slow:
        slow.inject(fault)
        builder = builder_for(fast=fake, slow=slow)
        fake.latency = 0.2  # the loser's request is surely on the wire before the winner answers
        started = time.monotonic()
        target, text = batch.fan_out("race", [("slow", "m"), ("fast", "m")], builder=builder, mode="first")
        elapsed = time.monotonic() - started
        assert (target, text) == (("fast", "m"), "echo: race")
        assert elapsed < 5  # the loser would hang (or take 30 s)
        assert slow.request_count == 1
        port = slow.address[1]
        deadline = time.monotonic() + 5
        while "01" in server_side_states(port) and time.monotonic() < deadline:
            threading.Event().wait(0.01)
        states = server_side_states(port)
        assert states and "01" not in states  # no ESTABLISHED: the client closed its end (CLOSE_WAIT)
        assert slow.request_count == 1  # and did not retry the cut request


def test_fan_out_first_all_failing_raises_with_every_error(fake: FakeProvider) -> None:
    fake.inject(Fault.status(400), times=2)
    builder = builder_for(a=fake, b=fake)
    with pytest.raises(batch.FanOutError) as info:
        batch.fan_out("x", [("a", "m"), ("b", "m")], builder=builder, mode="first")
    assert set(info.value.errors) == {("a", "m"), ("b", "m")}


def test_fan_out_rejects_bad_arguments(fake: FakeProvider) -> None:
    builder = builder_for(a=fake)
    with pytest.raises(ValueError, match="at least one"):
        batch.fan_out("x", [], builder=builder)
    with pytest.raises(ValueError, match="mode"):
        batch.fan_out("x", [("a", "m")], builder=builder, mode="fastest")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="distinct"):
        batch.fan_out("x", [("a", "m"), ("a", "m")], builder=builder)
    with pytest.raises(RigError, match="no provider named"):
        batch.fan_out("x", [("nope", "m")], builder=builder)


def test_fan_out_takes_ids_and_tuples_and_keys_results_as_given(fake: FakeProvider) -> None:
    with FakeProvider() as other:
        builder = builder_for(good=fake, other=other)
        targets: list[str | tuple[str, str]] = ["good:gpt-4o", ("other", "gpt-4o-mini"), "Good: gpt-4o-mini"]
        out = batch.fan_out("hi", targets, builder=builder)
        assert out == {"good:gpt-4o": "echo: hi", ("other", "gpt-4o-mini"): "echo: hi",
                       "Good: gpt-4o-mini": "echo: hi"}
        assert sorted(r.json["model"] for r in fake.requests) == ["gpt-4o", "gpt-4o-mini"]  # spaces dropped
        target, text = batch.fan_out("race", ["other:m"], builder=builder, mode="first")
        assert (target, text) == ("other:m", "echo: race")


def test_fan_out_refuses_bad_ids_and_one_model_named_twice(fake: FakeProvider) -> None:
    builder = builder_for(a=fake)
    with pytest.raises(ValueError, match="distinct"):
        batch.fan_out("x", ["a:m", ("a", "m")], builder=builder)
    with pytest.raises(ValueError, match="distinct"):
        batch.fan_out("x", ["a:m", "A: m"], builder=builder)
    with pytest.raises(TypeError, match="wrap one in a list"):
        batch.fan_out("x", "a:m", builder=builder)  # type: ignore[arg-type]
    with pytest.raises(RigError, match="spaces"):
        batch.fan_out("x", ["a:m 2"], builder=builder)
    with pytest.raises(RigError, match="no model given"):
        batch.fan_out("x", ["a"], builder=builder)
    assert fake.request_count == 0  # nothing was sent for any of them


def test_fan_out_errors_name_targets_as_given(fake: FakeProvider) -> None:
    fake.inject(Fault.status(400), times=2)
    with pytest.raises(batch.FanOutError, match="a:m: ") as info:
        batch.fan_out("x", ["a:m", ("b", "m")], builder=builder_for(a=fake, b=fake), mode="first")
    assert set(info.value.errors) == {"a:m", ("b", "m")} and "b:m: " in str(info.value)


def test_fan_out_without_a_builder_uses_the_shared_registry(fake: FakeProvider,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from rig_sync.client import builder as registry_module

    monkeypatch.setattr(registry_module, "_shared", None)
    monkeypatch.setenv("OPENAI_API_KEY", fake.api_key)
    monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
    for _ in range(3):
        assert batch.fan_out("hi", ["openai:gpt-4o"]) == {"openai:gpt-4o": "echo: hi"}
    assert registry_module.shared_registry().build("openai").base_url == fake.base_url
    assert fake.connection_count == 1  # one client, one pooled connection, across fan-outs


# --- warm pools between batches -------------------------------------------------------------------


def test_back_to_back_batches_reuse_warm_threads_within_max_workers(fake: FakeProvider) -> None:
    model = client_for(fake).completion_model("gpt-4o-mini")
    first, second = RecordingThreads(ask(model)), RecordingThreads(ask(model))
    prompts = [f"p{i}" for i in range(12)]
    assert batch.map(first, prompts, max_workers=3) == [f"echo: {p}" for p in prompts]
    assert batch.map(second, prompts, max_workers=3) == [f"echo: {p}" for p in prompts]
    assert 1 <= len(first.threads) <= 3
    assert second.threads <= first.threads  # the second batch started no thread of its own


def test_concurrent_batches_of_one_size_each_get_their_own_threads() -> None:
    both_running = threading.Barrier(4, timeout=10)  # 2 workers of each batch at once
    active = {"a": 0, "b": 0}
    most = {"a": 0, "b": 0}
    threads: dict[str, set[threading.Thread]] = {"a": set(), "b": set()}
    lock = threading.Lock()
    results: dict[str, list[str]] = {}

    def work(name: str) -> Callable[[int], str]:
        def step(i: int) -> str:
            with lock:
                active[name] += 1
                most[name] = max(most[name], active[name])
                threads[name].add(threading.current_thread())
            if i < 2:
                both_running.wait()  # proves the two batches really ran side by side
            with lock:
                active[name] -= 1
            return f"{name}{i}"

        return step

    def run(name: str) -> None:
        results[name] = batch.map(work(name), range(6), max_workers=2)

    side_by_side(run, "ab")
    assert results == {name: [f"{name}{i}" for i in range(6)] for name in "ab"}
    assert most == {"a": 2, "b": 2}  # max_workers bounds each batch
    assert not threads["a"] & threads["b"]
