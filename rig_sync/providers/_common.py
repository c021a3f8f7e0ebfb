"""Small pieces every provider shares."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from .. import observe
from ..sse import SSEEvent, iter_sse
from ..streaming import FinalResponse, StreamChunk, StreamingCompletionResponse


def report_usage(client: Any, model: str | None, capability: str, usage: observe.UsageLike | None) -> None:
    """After a model parsed an answer: tell the observe hooks its tokens and correct the client's
    rate limiter with the real count (its budget was booked from an estimate). An answer that
    reported no tokens is skipped: zero would be a guess, not a count."""
    if usage is None or not (usage.total_tokens or usage.input_tokens or usage.output_tokens):
        return
    observe.emit_usage(client.provider, model, capability, usage)
    record = getattr(client.transport.rate_limiter, "record_tokens", None)
    if record is not None:
        record(usage.total_tokens or usage.input_tokens + usage.output_tokens)


def sse_completion(
    client: Any,
    path: str,
    body: Any,
    parse: Callable[[Iterator[SSEEvent], str], Iterator[StreamChunk]],
    *,
    params: dict[str, str] | None = None,
    model: str | None = None,
    framing: Callable[[Iterable[bytes]], Iterator[SSEEvent]] = iter_sse,
) -> StreamingCompletionResponse:
    """POST `body` and stream the answer, split into events by `framing` (SSE by default), through
    `parse`; the connection closes with the stream.

    `model` (default: the body's "model") tags the request, and the usage of the final response
    is reported (`report_usage`) when the stream reaches it.
    """
    if model is None and isinstance(body, dict) and isinstance(body.get("model"), str):
        model = body["model"]
    http = client.transport.stream("POST", path, json=body, params=params, model=model, capability="completion",
                                   events=True)

    def chunks() -> Iterator[StreamChunk]:
        with http:
            for chunk in parse(framing(http.chunks()), client.provider):
                if isinstance(chunk, FinalResponse):
                    report_usage(client, model, "completion", chunk.response.usage)
                yield chunk
            http.finish()  # read to the end: the connection goes back to the pool

    return StreamingCompletionResponse(chunks(), client.provider, abort=http.abort)
