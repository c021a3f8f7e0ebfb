"""OpenTelemetry traces and metrics for every request, following the GenAI semantic conventions.

    from rig_sync import otel
    otel.instrument()        # the global tracer and meter providers (or pass your own)
    ...                      # every client, every thread
    otel.uninstrument()

Each HTTP exchange becomes a CLIENT span named "{operation} {model}" (e.g. "chat gpt-4o"), a
child of whatever span is current in the calling thread (a web request's, a batch job's), with
`gen_ai.operation.name`, `gen_ai.provider.name`, `gen_ai.request.model`, the HTTP status, the
retries, the time queued behind a rate limiter, and `error.type` when it failed (for a stream,
the span ends when the answer's headers arrive; its tokens come with the last event). Two histograms
follow the conventions too: `gen_ai.client.operation.duration` (seconds) and
`gen_ai.client.token.usage` (tokens, by `gen_ai.token.type`).

It is built on `rig_sync.observe` hooks, so it costs nothing until `instrument()` is called: no
module imports this one, and without hooks the transport builds no events. Needs the
`opentelemetry-api` package, 1.30 or newer for the histograms' advised buckets
(`pip install rig-sync[otel]`); an SDK and exporter are the application's choice, as
OpenTelemetry intends.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from . import observe

try:
    from opentelemetry import metrics, trace
    from opentelemetry.trace import SpanKind, Status, StatusCode
except ImportError as exc:  # pragma: no cover - depends on the optional extra
    raise ImportError(
        "rig_sync.otel needs the OpenTelemetry API: pip install 'rig-sync[otel]' (or opentelemetry-api)"
    ) from exc

__all__ = ["instrument", "uninstrument", "OpenTelemetryHook"]

# The operation names the conventions define, by observe capability; others keep their own name.
_OPERATIONS = {"completion": "chat", "embeddings": "embeddings"}
# Bucket boundaries the conventions recommend for each histogram.
_DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
_TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)


def _operation(capability: str | None) -> str:
    return _OPERATIONS.get(capability or "", capability or "request")


class OpenTelemetryHook:
    """An `observe` hook that turns events into spans and GenAI metrics."""

    def __init__(self, tracer_provider: Any = None, meter_provider: Any = None) -> None:
        from . import __version__

        self._tracer = trace.get_tracer("rig_sync", __version__, tracer_provider=tracer_provider)
        meter = metrics.get_meter("rig_sync", __version__, meter_provider=meter_provider)
        self._duration = meter.create_histogram(
            "gen_ai.client.operation.duration", unit="s", description="GenAI operation duration",
            explicit_bucket_boundaries_advisory=list(_DURATION_BUCKETS))
        self._tokens = meter.create_histogram(
            "gen_ai.client.token.usage", unit="{token}", description="Number of input and output tokens used",
            explicit_bucket_boundaries_advisory=list(_TOKEN_BUCKETS))

    def __call__(self, event: observe.Event) -> None:
        if isinstance(event, observe.RequestEvent):
            self._request(event)
        else:
            self._usage(event)

    def _request(self, event: observe.RequestEvent) -> None:
        operation = _operation(event.capability)
        common: dict[str, Any] = {"gen_ai.operation.name": operation, "gen_ai.provider.name": event.provider}
        if event.model:
            common["gen_ai.request.model"] = event.model
        error = event.error or (str(event.status) if event.status is not None and event.status >= 400 else None)
        attributes: dict[str, Any] = {**common, "http.request.method": event.method, "url.path": event.path,
                                      "rig_sync.retries": event.retries, "rig_sync.queued": event.queued}
        if event.status is not None:
            attributes["http.response.status_code"] = event.status
        if event.request_id:
            attributes["rig_sync.request_id"] = event.request_id
        if error:
            attributes["error.type"] = common["error.type"] = error
        end = time.time_ns()
        span = self._tracer.start_span(f"{operation} {event.model}" if event.model else operation,
                                       kind=SpanKind.CLIENT, attributes=attributes,
                                       start_time=end - int(event.latency * 1e9))
        if error:
            span.set_status(Status(StatusCode.ERROR, error))
        span.end(end_time=end)
        self._duration.record(event.latency, common)

    def _usage(self, event: observe.UsageEvent) -> None:
        common: dict[str, Any] = {"gen_ai.operation.name": _operation(event.capability),
                                  "gen_ai.provider.name": event.provider}
        if event.model:
            common["gen_ai.request.model"] = event.model
        self._tokens.record(event.input_tokens, {**common, "gen_ai.token.type": "input"})
        self._tokens.record(event.output_tokens, {**common, "gen_ai.token.type": "output"})


_lock = threading.Lock()
_installed: OpenTelemetryHook | None = None


def instrument(tracer_provider: Any = None, meter_provider: Any = None) -> OpenTelemetryHook:
    """Send spans and metrics for every request from now on (again: replaces the earlier hook)."""
    global _installed
    hook = OpenTelemetryHook(tracer_provider, meter_provider)
    with _lock:
        if _installed is not None:
            observe.remove_hook(_installed)
        observe.add_hook(hook)
        _installed = hook
    return hook


def uninstrument() -> None:
    """Stop sending spans and metrics (nothing happens if `instrument` was not called)."""
    global _installed
    with _lock:
        if _installed is not None:
            observe.remove_hook(_installed)
            _installed = None
