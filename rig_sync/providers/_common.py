"""Small pieces every provider shares."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import quote

import attrs

from .. import _json, observe
from ..completion import CompletionRequest, ToolChoice, ToolDefinition, Usage
from ..errors import InvalidRequestError, StreamError
from ..sse import SSEEvent, iter_lines, iter_sse
from ..streaming import FinalResponse, StreamChunk, StreamingCompletionResponse

__all__ = ["usage_of", "report_usage", "event_completion", "iter_ndjson", "event_json", "tool_names", "model_in_path",
           "narrow_named_tool"]

# What no model or deployment name holds, and what would let one steer the URL it is put in: a
# backslash (some servers read it as "/"), a query or fragment start, control characters.
_NOT_IN_A_NAME = re.compile(r"[\\?#\x00-\x1f\x7f-\x9f]")


def model_in_path(provider: str, model: str, *, nested: bool = False) -> str:
    """`model` as it goes into a URL path, for every provider and capability that puts one there.

    A model name is data, not a path: each segment is percent-encoded (`:` and `@` too), and a name
    that could point the request elsewhere (a `.` or `..` segment, an empty one, a backslash, `?`,
    `#`, a control character; any `/` unless `nested`) is refused with `InvalidRequestError` before
    anything is sent. Refused rather than encoded, because `%2E%2E` is decoded back to `..` by
    `requests` and by servers and proxies alike. `nested` allows `/`-separated names where the API
    has them (Gemini `tunedModels/x`, Hugging Face `org/model`).
    """
    segments = model.split("/") if nested else [model]
    if _NOT_IN_A_NAME.search(model):
        why = "a backslash, '?', '#' or a control character"
    elif not nested and "/" in model:
        why = "a '/'"
    elif any(segment in ("", ".", "..") for segment in segments):
        why = "an empty, '.' or '..' path segment"
    else:
        return "/".join(quote(segment, safe="") for segment in segments)
    shown = model if len(model) <= 100 else model[:99] + "…"
    raise InvalidRequestError(f"{provider}: the model name {shown!r} has {why}; it cannot be put in a URL")


def usage_of(input_tokens: int | None, output_tokens: int | None, total_tokens: int | None = None, *,
             cached: int | None = None, reasoning: int | None = None, cache_write: int | None = None,
             cost_usd: float | None = None) -> Usage:
    """A provider's figures as a `Usage`, in its shape (see `Usage`: cache reads and writes are part
    of the input, reasoning of the output; the caller folds in what its wire counts apart). The
    total is the provider's, else input + output where both are known."""
    if total_tokens is None and input_tokens is not None and output_tokens is not None:
        total_tokens = input_tokens + output_tokens
    return Usage(input_tokens, output_tokens, total_tokens, cached, reasoning, cache_write, cost_usd)


def report_usage(client: Any, model: str | None, capability: str, usage: observe.UsageLike | None) -> None:
    """After a model parsed an answer: tell the observe hooks its tokens and correct the client's
    rate limiter with the real count (its budget was booked from an estimate). An answer that
    reported no tokens is skipped: zero would be a guess, not a count."""
    if usage is None:
        return
    tokens = usage.total_tokens or (usage.input_tokens or 0) + (usage.output_tokens or 0)
    if not tokens:
        return
    observe.emit_usage(client.provider, model, capability, usage)
    record = getattr(client.transport.rate_limiter, "record_tokens", None)
    if record is not None:
        record(tokens)


def tool_names(request: CompletionRequest) -> dict[str, str]:
    """Tool-call id -> function name, from the history's tool calls: for the wire formats whose
    tool result names the function (Gemini, Ollama) where ours carries the call's id."""
    return {call.id: call.name for message in request.chat_history for call in message.tool_calls}


def narrow_named_tool(request: CompletionRequest,
                      provider: str) -> tuple[tuple[ToolDefinition, ...], ToolChoice | None]:
    """The tools and tool choice to send to a provider that cannot force one named tool.

    A named choice becomes "required" with only that tool offered: the model must call a tool, and
    that is the only one it has. Any other choice is sent as it is. A name that is not among the
    request's tools is an `InvalidRequestError` (nothing could be forced).
    """
    choice = request.tool_choice
    if choice is None or choice.mode != "tool":
        return request.tools, choice
    named = tuple(t for t in request.tools if t.name == choice.name)
    if not named:
        offered = ", ".join(repr(t.name) for t in request.tools) or "none"
        raise InvalidRequestError(f"{provider}: tool_choice names {choice.name!r}, which is not among the "
                                  f"request's tools ({offered})")
    return named[:1], ToolChoice("required")


def event_json(event: SSEEvent, provider: str) -> Any:
    """The JSON value of one SSE event's data; a `StreamError` when it is not JSON."""
    try:
        return _json.loads(event.data)
    except _json.JSONDecodeError:
        raise StreamError(f"{provider} sent a stream event that is not JSON: {event.data[:200]!r}",
                          provider=provider) from None


def iter_ndjson(chunks: Iterable[bytes], provider: str) -> Iterator[Any]:
    """NDJSON framing (one JSON value per line; Ollama streams so): the values, one per non-blank line.

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


def event_completion(
    client: Any,
    path: str,
    body: Any,
    parse: Callable[[Iterator[Any], str], Iterator[StreamChunk]],
    *,
    params: dict[str, str] | None = None,
    model: str | None = None,
    framing: Callable[[Iterable[bytes]], Iterator[Any]] = iter_sse,
    events: bool = True,
    raw: bool = False,
) -> StreamingCompletionResponse:
    """POST `body` and stream the answer, split into events by `framing` (SSE by default), through
    `parse`; the connection closes with the stream.

    `events=True` says the framing is SSE (`text/event-stream`): a JSON or HTML document in its
    place is then the provider's or a proxy's error (`Transport.stream(events=True)`). NDJSON
    (`framing=partial(iter_ndjson, provider=…)`, `events=False`) is JSON itself, and its parser
    reads error objects among the lines.

    `model` (default: the body's "model") tags the request, and the usage of the final response
    is reported (`report_usage`) when the stream reaches it.

    `raw` keeps every event's JSON value, in order, on the stream's `raw_events`, and makes that
    list the final response's `raw_response`; off, no event is touched twice.
    """
    if model is None and isinstance(body, dict) and isinstance(body.get("model"), str):
        model = body["model"]
    http = client.transport.stream("POST", path, json=body, params=params, model=model, capability="completion",
                                   events=events)

    kept: list[Any] | None = [] if raw else None

    def chunks() -> Iterator[StreamChunk]:
        with http:
            try:
                framed = framing(http.chunks())
                for chunk in parse(framed if kept is None else _keeping(framed, kept), client.provider):
                    if isinstance(chunk, FinalResponse):
                        report_usage(client, model, "completion", chunk.response.usage)
                        if kept is not None:  # the same list: events after the final one join it too
                            chunk = FinalResponse(attrs.evolve(chunk.response, raw_response=kept))
                    yield chunk
            except StreamError as err:
                err.provider = err.provider or client.provider  # the framers (a line too long) know none
                raise
            http.finish()  # read to the end: the connection goes back to the pool

    return StreamingCompletionResponse(chunks(), client.provider, abort=http.abort, model=model, raw_events=kept)


def _keeping(events: Iterator[Any], kept: list[Any]) -> Iterator[Any]:
    """`events` passed on unchanged, each one's JSON value appended to `kept` first. SSE data is
    decoded here a second time (the parser decodes its own copy): the cost of asking for it.
    Data that is no JSON (`[DONE]`) carries no payload and is left out."""
    for event in events:
        if isinstance(event, SSEEvent):
            try:
                kept.append(_json.loads(event.data))
            except _json.JSONDecodeError:
                pass
        else:  # NDJSON framing yields the values themselves
            kept.append(event)
        yield event

