"""rig_sync.otel: spans and GenAI metrics from real requests to the loopback fake provider."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from rig_sync import errors, observe, otel
from rig_sync.http import RetryPolicy
from rig_sync.providers import openai
from rig_sync.testing import FakeProvider, Fault


class Telemetry:
    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def points(self, name: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        return [point for rm in data.resource_metrics for sm in rm.scope_metrics for metric in sm.metrics
                if metric.name == name for point in metric.data.data_points]


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    t = Telemetry()
    otel.instrument(t.tracer_provider, t.meter_provider)
    yield t
    otel.uninstrument()


def client(fake: FakeProvider) -> openai.Client:
    return openai.Client(fake.api_key, base_url=fake.base_url, retry=RetryPolicy(max_retries=0))


def test_a_chat_completion_is_a_client_span_with_genai_attributes(fake: FakeProvider, telemetry: Telemetry) -> None:
    client(fake).completion_model("gpt-4o-mini").completion_request("hi").send()
    (span,) = telemetry.spans.get_finished_spans()
    assert span.name == "chat gpt-4o-mini" and span.kind == SpanKind.CLIENT
    attrs = dict(span.attributes or {})
    assert attrs["gen_ai.operation.name"] == "chat" and attrs["gen_ai.provider.name"] == "openai"
    assert attrs["gen_ai.request.model"] == "gpt-4o-mini"
    assert attrs["http.response.status_code"] == 200 and attrs["url.path"] == "/chat/completions"
    assert attrs["rig_sync.retries"] == 0 and "error.type" not in attrs
    assert span.status.status_code != StatusCode.ERROR
    assert span.end_time is not None and span.start_time is not None and span.end_time > span.start_time


def test_the_span_is_a_child_of_the_callers_current_span(fake: FakeProvider, telemetry: Telemetry) -> None:
    tracer = telemetry.tracer_provider.get_tracer("app")
    with tracer.start_as_current_span("handle view") as outer:
        client(fake).completion_model("gpt-4o-mini").completion_request("hi").send()
    ours = next(s for s in telemetry.spans.get_finished_spans() if s.name.startswith("chat"))
    assert ours.parent is not None and ours.parent.span_id == outer.get_span_context().span_id
    assert ours.context.trace_id == outer.get_span_context().trace_id


def test_a_failed_request_is_an_error_span_with_its_type(fake: FakeProvider, telemetry: Telemetry) -> None:
    fake.inject(Fault.status(500))
    with pytest.raises(errors.InternalServerError):
        client(fake).completion_model("gpt-4o-mini").completion_request("hi").send()
    (span,) = telemetry.spans.get_finished_spans()
    assert span.status.status_code == StatusCode.ERROR
    assert dict(span.attributes or {})["error.type"] == "500"
    (duration,) = telemetry.points("gen_ai.client.operation.duration")
    assert duration.attributes["error.type"] == "500" and duration.count == 1


def test_duration_and_token_usage_histograms(fake: FakeProvider, telemetry: Telemetry) -> None:
    model = client(fake).completion_model("gpt-4o-mini")
    usage = [model.completion_request(p).send().usage for p in ("one", "two words")]
    (duration,) = telemetry.points("gen_ai.client.operation.duration")
    assert duration.count == 2 and duration.sum > 0
    assert dict(duration.attributes) == {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                                         "gen_ai.request.model": "gpt-4o-mini"}
    tokens = {p.attributes["gen_ai.token.type"]: p for p in telemetry.points("gen_ai.client.token.usage")}
    assert tokens["input"].sum == sum(u.input_tokens for u in usage) > 0
    assert tokens["output"].sum == sum(u.output_tokens for u in usage) > 0
    assert tokens["input"].count == 2


def test_embeddings_are_their_own_operation(fake: FakeProvider, telemetry: Telemetry) -> None:
    client(fake).embedding_model("text-embedding-3-small").embed_texts(["a", "b"])
    (span,) = telemetry.spans.get_finished_spans()
    assert span.name == "embeddings text-embedding-3-small"


def test_uninstrument_stops_and_instrument_again_replaces(fake: FakeProvider, telemetry: Telemetry) -> None:
    model = client(fake).completion_model("gpt-4o-mini")
    otel.uninstrument()
    model.completion_request("hi").send()
    assert telemetry.spans.get_finished_spans() == () and not observe.has_hooks()
    otel.instrument(telemetry.tracer_provider, telemetry.meter_provider)
    otel.instrument(telemetry.tracer_provider, telemetry.meter_provider)  # replaces, never doubles
    model.completion_request("hi").send()
    assert len(telemetry.spans.get_finished_spans()) == 1


def test_unused_it_costs_nothing_not_even_an_import() -> None:
    code = ("import sys, rig_sync; from rig_sync import observe; from rig_sync.providers import openai; "
            "print(any(m.startswith(('opentelemetry', 'rig_sync.otel')) for m in sys.modules), observe.has_hooks())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
