"""Streaming completions: an iterator of text pieces, reasoning, whole tool calls, then the final
response with usage. Closable early: `with model.completion_request(p).stream() as s:` closes the
connection on exit, whether or not the stream was read to the end.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import attrs

from . import _json
from .completion import CompletionResponse
from .errors import ResponseDecodeError, StreamError
from .message import AssistantContent, Reasoning, Text, ToolCall

__all__ = [
    "TextChunk",
    "ReasoningChunk",
    "ToolCallChunk",
    "FinalResponse",
    "StreamChunk",
    "StreamingCompletionResponse",
    "ToolCallAssembler",
    "TextBuffer",
]


@attrs.frozen(slots=True)
class TextChunk:
    text: str


@attrs.frozen(slots=True)
class ReasoningChunk:
    text: str


@attrs.frozen(slots=True)
class ToolCallChunk:
    """A tool call, whole: arguments already assembled from the provider's deltas."""

    tool_call: ToolCall


@attrs.frozen(slots=True)
class FinalResponse:
    """Last item of every stream: the whole answer with usage and finish reason."""

    response: CompletionResponse


StreamChunk = TextChunk | ReasoningChunk | ToolCallChunk | FinalResponse

_EXCERPT = 60  # characters of the text so far a repr shows


class TextBuffer:
    """The pieces of a streamed text, kept as a few large blocks: `append` as to a list,
    `"".join(buffer)` for the text, true once anything was appended.

    A list of the pieces themselves costs about 12 times the text when they are single words (a
    `str` object per piece); joining every `BLOCK` pieces keeps memory near the text's own size,
    at the same cost per piece."""

    __slots__ = ("_blocks", "_pieces")
    BLOCK = 256

    def __init__(self) -> None:
        self._blocks: list[str] = []
        self._pieces: list[str] = []

    def append(self, piece: str) -> None:
        pieces = self._pieces
        pieces.append(piece)
        if len(pieces) >= self.BLOCK:
            self._blocks.append("".join(pieces))
            pieces.clear()

    def __iter__(self) -> Iterator[str]:
        yield from self._blocks
        yield from self._pieces

    def __bool__(self) -> bool:
        return bool(self._blocks or self._pieces)

    def __repr__(self) -> str:
        return f"TextBuffer({''.join(self)[:_EXCERPT]!r})"


class StreamingCompletionResponse:
    """Iterate for chunks; afterwards `.response` holds the whole answer.

    Providers feed it a generator of `TextChunk` / `ReasoningChunk` / `ToolCallChunk` that
    ends with one `FinalResponse`; a generator that ends without one raises `StreamError`
    (a cut-off stream never passes for a short answer). Its repr shows how far it got (not
    started, streaming, finished or closed), the chunks and the start of the text so far.

    `raw_events` is None, unless the stream was asked to keep the provider's payload
    (`completion_request(...).stream(raw=True)`): then it is the list of the events' JSON values as
    received, in order, filled as the stream is read, and the final response's `raw_response`.
    """

    def __init__(self, chunks: Iterable[StreamChunk], provider: str,
                 abort: Callable[[], None] | None = None, *, model: str | None = None,
                 raw_events: list[Any] | None = None) -> None:
        self._chunks = iter(chunks)  # one pass: a list given here must not replay on a second loop
        self._abort = abort
        self.provider = provider
        self.model = model
        self.raw_events = raw_events
        self._response: CompletionResponse | None = None
        self._closed = False
        self._seen = 0  # chunks read so far, and the start of their text: for the repr
        self._head = ""

    def __iter__(self) -> Iterator[StreamChunk]:
        for chunk in self._chunks:
            self._seen += 1
            if isinstance(chunk, TextChunk):
                if len(self._head) <= _EXCERPT:  # the repr's excerpt; the text itself is the response's
                    self._head += chunk.text[:_EXCERPT + 1]
            elif isinstance(chunk, FinalResponse):
                self._response = chunk.response
                self.model = self.model or chunk.response.model
            yield chunk
        if self._response is None:
            why = "the stream was closed" if self._closed else "the stream ended"
            raise StreamError(f"{why} before the provider finished its answer", provider=self.provider)

    @property
    def response(self) -> CompletionResponse:
        """The whole answer; reads the rest of the stream first if needed."""
        if self._response is None:
            for _ in self:
                pass
        assert self._response is not None
        return self._response

    @property
    def text(self) -> str:
        """The whole answer's text; reads the rest of the stream first if needed."""
        return self.response.text

    def text_stream(self) -> Iterator[str]:
        """Only the text pieces, as plain strings, as they arrive: reasoning, tool calls and the
        final response are skipped (the latter stays on `.response` once the loop ends)::

            for piece in model.completion_request("Tell a story").stream().text_stream():
                print(piece, end="", flush=True)

        Like iterating the stream itself, it is one pass and raises `StreamError` if the
        stream is cut off before the provider finished its answer.
        """
        for chunk in self:
            if isinstance(chunk, TextChunk):
                yield chunk.text

    @property
    def state(self) -> str:
        """One of "not started", "streaming", "finished" (the final response arrived), "closed" (before it)."""
        if self._response is not None:
            return "finished"
        if self._closed:
            return "closed"
        return "streaming" if self._seen else "not started"

    def __repr__(self) -> str:
        text = self._head
        excerpt = text if len(text) <= _EXCERPT else text[:_EXCERPT - 1] + "…"
        return (f"StreamingCompletionResponse(provider={self.provider!r}, model={self.model!r}, "
                f"state={self.state!r}, chunks={self._seen}, text={excerpt!r})")

    def close(self) -> None:
        """Stop reading and release the connection."""
        self._closed = True
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()

    def abort(self) -> None:
        """Cancel from another thread: the thread reading this stream stops with `StreamError`
        and the connection is dropped. (`close()` is for the reading thread itself.)"""
        self._closed = True
        if self._abort is not None:
            self._abort()

    def __enter__(self) -> StreamingCompletionResponse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@attrs.define
class _PendingCall:
    id: str = ""
    name: str = ""
    arguments: list[str] = attrs.field(factory=list)
    call_id: str | None = None


class ToolCallAssembler:
    """Collects tool-call deltas keyed by index (several calls may interleave) into ToolCalls."""

    def __init__(self, provider: str) -> None:
        self._provider = provider
        self._calls: dict[Any, _PendingCall] = {}

    def add(self, key: Any, *, id: str | None = None, name: str | None = None,
            arguments: str | None = None, call_id: str | None = None) -> None:
        call = self._calls.get(key)
        if call is None:
            call = self._calls[key] = _PendingCall()
        if id:
            call.id = id
        if name and not call.name:
            call.name = name
        if call_id:
            call.call_id = call_id
        if arguments:
            call.arguments.append(arguments)

    def __bool__(self) -> bool:
        return bool(self._calls)

    def finish(self) -> list[ToolCall]:
        """The assembled calls in order of first appearance; non-object arguments raise."""
        pending = list(self._calls.values())
        self._calls.clear()
        for call in pending:
            if not call.name:
                raise ResponseDecodeError(f"a streamed tool call (id {call.id!r}) never got a function name",
                                          provider=self._provider, field="name")
        return [parse_tool_call(c.id, c.name, "".join(c.arguments), self._provider, c.call_id) for c in pending]


def parse_tool_call(id: str, name: str, arguments: Any, provider: str, call_id: str | None = None) -> ToolCall:
    """A ToolCall from a name and the provider's arguments: JSON text, or the value itself.

    No arguments (None, empty text, JSON `null`: Cohere and Groq send the text "null" for a tool
    without parameters) are `{}`. Arguments that are not a JSON object (cut off, a bare string, a
    list, nested too deep to decode) are the model's mistake, not a broken answer: they are kept as
    text in `invalid_arguments`, for the agent to answer, and never fail the response. (`provider`
    is kept for callers; nothing here raises.)
    """
    value = arguments
    if isinstance(arguments, str):
        try:
            value = _json.loads(arguments) if arguments.strip() else None
        except _json.JSONDecodeError:  # nested too deep included
            return ToolCall(id, name, {}, call_id, arguments)
    if value is None:
        return ToolCall(id, name, {}, call_id)
    if isinstance(value, dict):
        return ToolCall(id, name, value, call_id)
    if isinstance(arguments, str):
        return ToolCall(id, name, {}, call_id, arguments)
    try:
        text = _json.dumps_file(value).decode()
    except (TypeError, ValueError, RecursionError):  # not from JSON after all, or nested too deep to write
        text = f"(a {type(value).__name__} that cannot be written as JSON)"
    return ToolCall(id, name, {}, call_id, text)


def content_from(text: str, reasoning: str, tool_calls: list[ToolCall]) -> tuple[AssistantContent, ...]:
    """The `choice` of a streamed answer, in the order providers present it."""
    parts: list[AssistantContent] = []
    if reasoning:
        parts.append(Reasoning(reasoning))
    if text:
        parts.append(Text(text))
    parts.extend(tool_calls)
    return tuple(parts)
