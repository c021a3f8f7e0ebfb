"""Streaming over NDJSON (one JSON object per line), the sibling of `_common.sse_completion`.

Generic on purpose (Ollama is its first user): it belongs next to `sse_completion` in
`_common.py` once a second provider streams NDJSON.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from .. import _json
from ..errors import StreamError
from ..sse import iter_lines
from ..streaming import FinalResponse, StreamChunk, StreamingCompletionResponse
from ._common import report_usage

__all__ = ["iter_ndjson", "ndjson_completion"]


def iter_ndjson(chunks: Iterable[bytes], provider: str) -> Iterator[Any]:
    """The JSON values of an NDJSON body, one per non-blank line.

    A line that is not JSON raises `StreamError`: mid-stream it is garbage, at the end it is an
    object cut in half (retryable: the request itself was fine).
    """
    for line in iter_lines(chunks):
        if not line.strip():
            continue
        try:
            yield _json.loads(line)
        except _json.JSONDecodeError:
            raise StreamError(f"{provider} sent a stream line that is not JSON (cut off?): {line[:200]!r}",
                              provider=provider, retryable=True) from None


def ndjson_completion(
    client: Any,
    path: str,
    body: Any,
    parse: Callable[[Iterator[Any], str], Iterator[StreamChunk]],
    *,
    params: dict[str, str] | None = None,
    model: str | None = None,
) -> StreamingCompletionResponse:
    """POST `body` and stream the NDJSON answer through `parse`; the connection closes with the stream.

    As `sse_completion`: `model` (default: the body's "model") tags the request, and the usage of
    the final response is reported when the stream reaches it.
    """
    if model is None and isinstance(body, dict) and isinstance(body.get("model"), str):
        model = body["model"]
    http = client.transport.stream("POST", path, json=body, params=params, model=model, capability="completion")

    def chunks() -> Iterator[StreamChunk]:
        with http:
            for chunk in parse(iter_ndjson(http.chunks(), client.provider), client.provider):
                if isinstance(chunk, FinalResponse):
                    report_usage(client, model, "completion", chunk.response.usage)
                yield chunk
            http.finish()  # read to the end: the connection goes back to the pool

    return StreamingCompletionResponse(chunks(), client.provider, abort=http.abort)
