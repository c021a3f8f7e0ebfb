"""Small pieces every provider shares."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from ..sse import SSEEvent, iter_sse
from ..streaming import StreamChunk, StreamingCompletionResponse


def sse_completion(
    client: Any,
    path: str,
    body: Any,
    parse: Callable[[Iterator[SSEEvent], str], Iterator[StreamChunk]],
    *,
    params: dict[str, str] | None = None,
) -> StreamingCompletionResponse:
    """POST `body` and stream the SSE answer through `parse`; the connection closes with the stream."""
    http = client.transport.stream("POST", path, json=body, params=params)

    def chunks() -> Iterator[StreamChunk]:
        with http:
            yield from parse(iter_sse(http.chunks()), client.provider)

    return StreamingCompletionResponse(chunks(), client.provider, abort=http.abort)
