"""rig_sync.observe.Metrics and usage reporting: exact counts from many threads against the real
loopback FakeProvider, failures by status, retries, tokens; logging keeps keys out."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from rig_sync import errors, observe
from rig_sync.http import RetryPolicy
from rig_sync.observe import Metrics, RequestEvent, UsageEvent
from rig_sync.providers import openai
from rig_sync.ratelimit import RateLimiter
from rig_sync.streaming import FinalResponse
from rig_sync.testing import FakeProvider, Fault


@pytest.fixture
def metrics() -> Iterator[Metrics]:
    with observe.collect() as collected:
        yield collected
    assert not observe.has_hooks()


def client_for(fake: FakeProvider, retries: int = 0, **kw: Any) -> openai.Client:
    return openai.Client(fake.api_key, base_url=fake.base_url, timeout=5,
                         retry=RetryPolicy(max_retries=retries, backoff_base=0), **kw)


def event(latency: float = 0.1, status: int | None = 200, **kw: Any) -> RequestEvent:
    fields: dict[str, Any] = {"provider": "p", "method": "POST", "path": "/x", "status": status,
                              "latency": latency, "retries": 0, "error": None, "request_id": None}
    fields.update(kw)
    return RequestEvent(**fields)


def test_many_threads_counts_and_tokens_are_exact(fake: FakeProvider, metrics: Metrics) -> None:
    model = client_for(fake).completion_model("gpt-4o-mini")
    threads, per_thread = 8, 15
    usages: list[int] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        for i in range(per_thread):
            usage = model.completion_request(f"thread {n} call {i}").send().usage
            with lock:
                usages.append(usage.input_tokens * 1000 + usage.output_tokens)

    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=30)
    s = metrics.summary()
    n = threads * per_thread
    assert (s.total, s.succeeded, s.failed, s.success_rate, s.retries) == (n, n, 0, 1.0, 0)
    assert s.input_tokens == sum(u // 1000 for u in usages) > 0
    assert s.output_tokens == sum(u % 1000 for u in usages) > 0
    assert s.total_tokens == s.input_tokens + s.output_tokens
    assert 0 < s.p50 <= s.p95 <= s.p99 <= s.max_latency < 5
    assert s.failures == {}
    assert list(metrics.by("provider", "model")) == [("openai", "gpt-4o-mini")]
    assert metrics.by("capability")["completion"].total == n


def test_failures_are_counted_by_status_and_retries_summed(fake: FakeProvider, metrics: Metrics) -> None:
    model = client_for(fake, retries=2).completion_model("m")
    fake.inject(Fault.status(400), times=3)
    for _ in range(3):
        with pytest.raises(errors.BadRequestError):
            model.completion_request("hi").send()
    fake.inject(Fault.status(503), times=2)
    model.completion_request("hi").send()  # two retries, then success
    fake.inject(Fault.status(429, retry_after=0), times=3)
    with pytest.raises(errors.RateLimitError):
        model.completion_request("hi").send()  # retries exhausted
    model.completion_request("hi").send()
    s = metrics.summary()
    assert (s.total, s.succeeded, s.failed) == (6, 2, 4)
    assert s.success_rate == pytest.approx(2 / 6)
    assert s.failures == {"400": 3, "429": 1}
    assert s.retries == 4
    assert fake.request_count == 3 + 3 + 3 + 1


def test_a_connection_failure_is_counted_by_its_error(fake: FakeProvider, metrics: Metrics) -> None:
    fake.inject(Fault.drop())
    with pytest.raises(errors.APIConnectionError):
        client_for(fake).completion_model("m").completion_request("hi").send()
    s = metrics.summary()
    assert (s.total, s.failed) == (1, 1)
    [(reason, count)] = s.failures.items()
    assert count == 1 and not reason.isdigit()  # no status: named by its exception


def test_breakdown_by_provider_model_and_capability(fake: FakeProvider, metrics: Metrics) -> None:
    client = client_for(fake)
    client.completion_model("a").completion_request("one").send()
    client.completion_model("b").completion_request("two").send()
    client.completion_model("b").completion_request("three").send()
    vectors = client.embedding_model("text-embedding-3-small").embed_texts(["x", "y z"])
    assert len(vectors) == 2
    table = metrics.by("provider", "model")
    assert {k: v.total for k, v in table.items()} == {("openai", "a"): 1, ("openai", "b"): 2,
                                                      ("openai", "text-embedding-3-small"): 1}
    embeddings = metrics.by("capability")["embeddings"]
    assert embeddings.total == 1 and embeddings.input_tokens > 0 and embeddings.output_tokens == 0
    assert metrics.by("provider")["openai"].total == 4
    assert metrics.by("model", "capability")[("b", "completion")].succeeded == 2


def test_streamed_usage_is_counted_once(fake: FakeProvider, metrics: Metrics) -> None:
    chunks = list(client_for(fake).completion_model("m").completion_request("stream me please").stream())
    final = chunks[-1]
    assert isinstance(final, FinalResponse)
    s = metrics.summary()
    assert s.total == 1
    assert (s.input_tokens, s.output_tokens) == (final.response.usage.input_tokens, final.response.usage.output_tokens)
    assert s.output_tokens > 0


def test_events_carry_model_capability_headers_and_queue_time(fake: FakeProvider) -> None:
    seen: list[observe.Event] = []
    observe.add_hook(seen.append)
    try:
        limiter = RateLimiter(rpm=60, sleep=lambda s: None, clock=lambda: 0.0)
        model = client_for(fake, rate_limiter=limiter).completion_model("gpt-x")
        model.completion_request("hi").send()
        model.completion_request("hi").send()
    finally:
        observe.remove_hook(seen.append)
    requests_ = [e for e in seen if isinstance(e, RequestEvent)]
    usage = [e for e in seen if isinstance(e, UsageEvent)]
    assert [(e.model, e.capability, e.status) for e in requests_] == [("gpt-x", "completion", 200)] * 2
    assert [e.queued for e in requests_] == [0.0, 1.0]
    assert requests_[0].headers.get("x-request-id") == requests_[0].request_id
    assert fake.api_key not in repr(requests_[0])
    assert [(e.provider, e.model, e.capability) for e in usage] == [("openai", "gpt-x", "completion")] * 2
    assert all(e.total_tokens == e.input_tokens + e.output_tokens > 0 for e in usage)


def test_percentiles_interpolate() -> None:
    metrics = Metrics()
    for ms in range(100, 0, -1):
        metrics(event(latency=ms / 1000))
    s = metrics.summary()
    assert s.p50 == pytest.approx(0.0505)
    assert s.p95 == pytest.approx(0.09505)
    assert s.p99 == pytest.approx(0.09901)
    assert s.mean_latency == pytest.approx(0.0505)
    assert s.max_latency == 0.1


def test_empty_metrics() -> None:
    s = Metrics().summary()
    assert (s.total, s.success_rate, s.p99, s.total_tokens) == (0, 0.0, 0.0, 0)
    assert s.as_dict()["failures"] == {}


def test_metrics_is_thread_safe() -> None:
    metrics = Metrics()
    threads, per_thread = 16, 2000

    def worker(n: int) -> None:
        for i in range(per_thread):
            metrics(event(status=500 if i % 10 == 0 else 200, retries=1, model=f"m{n % 2}"))
            metrics(UsageEvent("p", f"m{n % 2}", None, 3, 2, 5, 1))

    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=30)
    n = threads * per_thread
    s = metrics.summary()
    assert (s.total, s.failed, s.retries) == (n, n // 10, n)
    assert (s.input_tokens, s.output_tokens, s.total_tokens, s.cached_input_tokens) == (3 * n, 2 * n, 5 * n, n)
    assert s.failures == {"500": n // 10}
    assert {k: v.total for k, v in metrics.by("model").items()} == {"m0": n // 2, "m1": n // 2}
    metrics.reset()
    assert metrics.summary().total == 0


def test_summary_as_dict() -> None:
    metrics = Metrics()
    metrics(event(status=404))
    d = metrics.summary().as_dict()
    assert d["total"] == 1 and d["failed"] == 1 and d["failures"] == {"404": 1}
    assert set(d) >= {"succeeded", "success_rate", "p50", "p95", "p99", "retries", "input_tokens", "output_tokens"}


@pytest.mark.parametrize("fields", [(), ("route",), ("model", "model")])
def test_by_rejects_unknown_fields(fields: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="group by"):
        Metrics().by(*fields)


def test_add_hook_rejects_non_callables() -> None:
    with pytest.raises(TypeError):
        observe.add_hook(42)  # type: ignore[arg-type]


def test_usage_without_hooks_costs_nothing_and_hooks_see_it() -> None:
    class Usage:
        input_tokens, output_tokens, total_tokens, cached_input_tokens = 4, 6, 0, 0

    observe.emit_usage("p", "m", "completion", Usage())  # no hook: nothing happens, nothing fails
    with observe.collect() as metrics:
        observe.emit_usage("p", "m", "completion", Usage())
    assert metrics.summary().total_tokens == 10  # a total of 0 is computed from the parts
    assert metrics.summary().total == 0  # usage is not a request


def test_debug_logging_never_shows_the_key(fake: FakeProvider, caplog: pytest.LogCaptureFixture) -> None:
    key = "sk-secret-" + "x" * 24
    client = openai.Client(key, base_url=fake.base_url, timeout=5, retry=RetryPolicy(max_retries=1, backoff_base=0))
    fake.inject(Fault.status(401, body={"error": {"message": f"Incorrect API key provided: {key}"}}))
    fake.inject(Fault.status(503))
    # at_level on "rig_sync" too: an earlier test (Django's LOGGING) may have set that logger's level.
    with caplog.at_level(logging.DEBUG), caplog.at_level(logging.DEBUG, logger="rig_sync"):
        with pytest.raises(errors.AuthenticationError) as caught:
            client.completion_model("m").completion_request("hi").send()
        client.completion_model("m").completion_request("hi").send()
    assert "/chat/completions -> 401" in caplog.text and "-> 200" in caplog.text
    assert key not in caplog.text and key not in str(caught.value)
    assert key not in repr(client) and key not in repr(client.transport)
