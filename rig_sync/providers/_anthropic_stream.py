"""Anthropic Messages streaming: named SSE events reassembled into the same `message` object a
non-streamed call returns, then read by the one `parse_message`.

Events: `message_start` (id, model, usage) · `content_block_start` (text / tool_use / thinking /
server blocks) · `content_block_delta` (`text_delta`, `input_json_delta`, `thinking_delta`,
`signature_delta`, `citations_delta`) · `content_block_stop` · `message_delta` (stop reason,
usage) · `message_stop` (the completion marker) · `ping` · `error`. Text and reasoning pieces
are yielded as they come; a tool call is yielded whole when its block stops; citations reach the
final response only.

An error raises `StreamError` whose message holds the server's error type and message, from an
`error` event, an `error: {json}` line (as llama.cpp's server fails a stream) or a bare
`data: {"error": …}` (a proxy's); it is retryable for the types the API says to retry.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import attrs

from .. import _json
from ..errors import ResponseDecodeError, StreamError
from ..sse import SSEEvent
from ..streaming import (
    FinalResponse,
    ReasoningChunk,
    StreamChunk,
    TextBuffer,
    TextChunk,
    ToolCallChunk,
    parse_tool_call,
)
from ._anthropic_wire import IncompleteToolCallError, parse_message
from ._common import event_json

__all__ = ["stream_messages"]

# Mid-stream error types worth the same request again (the API's own retry advice for them).
_RETRYABLE = frozenset({"overloaded_error", "api_error", "rate_limit_error", "timeout_error"})


@attrs.define
class _Block:
    """One content block while it streams in."""

    raw: dict[str, Any]  # the `content_block` of its start event, completed when it stops
    pieces: TextBuffer = attrs.field(factory=TextBuffer)  # text, thinking or input JSON, as it came
    done: bool = False


class _Message:
    """The message being streamed: the `message_start` object plus blocks by index."""

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.message: dict[str, Any] | None = None
        self.blocks: dict[int, _Block] = {}

    def _bad(self, what: str, data: Any, field: str) -> ResponseDecodeError:
        return ResponseDecodeError(f"unexpected {what} event from {self.provider}: {str(data)[:200]}",
                                   provider=self.provider, field=field, body=data)

    def _started(self, what: str, data: Any) -> dict[str, Any]:
        if self.message is None:
            raise StreamError(f"{self.provider} sent {what} before message_start", provider=self.provider, body=data)
        return self.message

    def start(self, data: dict[str, Any]) -> None:
        message = data.get("message")
        if not isinstance(message, dict):
            raise self._bad("message_start", data, "message")
        self.message = dict(message)

    def block_start(self, data: dict[str, Any]) -> StreamChunk | None:
        self._started("content_block_start", data)
        index, raw = data.get("index"), data.get("content_block")
        if index.__class__ is not int:
            raise self._bad("content_block_start", data, "index")
        if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
            raise self._bad("content_block_start", data, "content_block")
        kind = raw["type"]
        if kind in ("text", "thinking") and not isinstance(raw.get(kind, ""), str):
            raise self._bad("content_block_start", data, f"content_block.{kind}")
        self.blocks[index] = _Block(dict(raw))
        if kind == "text" and raw.get("text"):
            return TextChunk(raw["text"])
        if kind == "thinking" and raw.get("thinking"):
            return ReasoningChunk(raw["thinking"])
        return None

    def _block(self, data: dict[str, Any], what: str) -> _Block:
        self._started(what, data)
        index = data.get("index")
        block = self.blocks.get(index) if index.__class__ is int else None
        if block is None:
            raise self._bad(what, data, "index")
        return block

    def delta(self, data: dict[str, Any]) -> StreamChunk | None:
        block = self._block(data, "content_block_delta")
        delta = data.get("delta")
        if not isinstance(delta, dict):
            raise self._bad("content_block_delta", data, "delta")
        kind = delta.get("type")
        if kind == "text_delta":
            piece = delta.get("text")
            if isinstance(piece, str) and piece:
                block.pieces.append(piece)
                return TextChunk(piece)
        elif kind == "input_json_delta":
            piece = delta.get("partial_json")
            if isinstance(piece, str):
                block.pieces.append(piece)
        elif kind == "thinking_delta":
            piece = delta.get("thinking")
            if isinstance(piece, str) and piece:
                block.pieces.append(piece)
                return ReasoningChunk(piece)
        elif kind == "signature_delta":
            block.raw["signature"] = delta.get("signature")
        elif kind == "citations_delta":  # read into response.citations from the reassembled message
            cited = block.raw.get("citations")
            if not isinstance(cited, list):  # absent (or null) in the block's start event
                cited = block.raw["citations"] = []
            cited.append(delta.get("citation"))
        return None  # delta kinds newer than this code: the answer stands without them

    def block_stop(self, data: dict[str, Any]) -> StreamChunk | None:
        block = self._block(data, "content_block_stop")
        return self._close(block)

    def _close(self, block: _Block) -> StreamChunk | None:
        block.done = True
        raw, kind, joined = block.raw, block.raw["type"], "".join(block.pieces)
        if kind in ("text", "thinking"):
            raw[kind] = raw.get(kind, "") + joined
        elif kind == "tool_use":
            for field in ("id", "name"):
                if not isinstance(raw.get(field), str) or not raw[field]:
                    raise self._bad("content_block_start", raw, field)
            call = parse_tool_call(raw["id"], raw["name"], joined, self.provider)
            raw["input"] = joined if call.invalid_arguments is not None else call.arguments
            return ToolCallChunk(call)
        elif block.pieces:  # a server tool's input: raw_response only, so keep it even if unparsable
            try:
                raw["input"] = _json.loads(joined)
            except _json.JSONDecodeError:
                raw["input"] = joined
        return None

    def message_delta(self, data: dict[str, Any]) -> None:
        message = self._started("message_delta", data)
        delta = data.get("delta")
        if isinstance(delta, dict):  # stop_reason, stop_sequence, stop_details, …
            message.update(delta)
        usage = data.get("usage")
        if isinstance(usage, dict):  # cumulative counts: newer values replace older ones
            prior = message.get("usage")
            if prior is None or isinstance(prior, dict):  # else malformed: left for parse_message to reject
                message["usage"] = {**(prior or {}), **{k: v for k, v in usage.items() if v is not None}}

    def finish(self, data: dict[str, Any]) -> FinalResponse:
        message = self._started("message_stop", data)
        cut = [b for b in self.blocks.values() if not b.done and b.raw["type"] == "tool_use"]
        for block in self.blocks.values():
            if not block.done and block not in cut:
                self._close(block)  # e.g. a text block left open: keep what came
        whole = {**message, "content": [self.blocks[i].raw for i in sorted(self.blocks) if self.blocks[i].done]}
        response = parse_message(whole, self.provider)
        if cut:
            raise IncompleteToolCallError(
                f"{self.provider} stopped (stop_reason {message.get('stop_reason')!r}) while writing the "
                f"arguments of tool call {cut[0].raw.get('name')!r}; raise max_tokens and ask again",
                provider=self.provider, body="".join(cut[0].pieces), response=response,
            )
        return FinalResponse(response)


def stream_messages(events: Iterator[SSEEvent], provider: str) -> Iterator[StreamChunk]:
    """Chunks from an Anthropic SSE stream; complete only at `message_stop`."""
    state = _Message(provider)
    for event in events:
        if event.event == "error":  # Anthropic's error event, or llama.cpp's `error: {json}` line
            _raise_error_event(_error_data(event), provider)
        data = event_json(event, provider)
        if not isinstance(data, dict):
            raise StreamError(f"{provider} sent a stream event that is not an object: {event.data[:200]!r}",
                              provider=provider, body=data)
        kind = data.get("type") or event.event
        chunk: StreamChunk | None = None
        if kind == "content_block_delta":
            chunk = state.delta(data)
        elif kind == "content_block_start":
            chunk = state.block_start(data)
        elif kind == "content_block_stop":
            chunk = state.block_stop(data)
        elif kind == "message_start":
            state.start(data)
        elif kind == "message_delta":
            state.message_delta(data)
        elif kind == "message_stop":
            yield state.finish(data)
            return
        elif kind == "error" or ("error" in data and "type" not in data):
            _raise_error_event(data, provider)  # the second: a proxy's `data: {"error": …}`
        # `ping` and event kinds newer than this code: nothing to do
        if chunk is not None:
            yield chunk
    raise StreamError(f"{provider} stream ended before message_stop: the answer is incomplete",
                      provider=provider, retryable=True)


def _error_data(event: SSEEvent) -> Any:
    """An error event's data: its JSON, or the text itself when it is none."""
    try:
        return _json.loads(event.data)
    except _json.JSONDecodeError:
        return event.data


def _raise_error_event(data: Any, provider: str) -> None:
    """Raise the error a stream reported, with its type and message: Anthropic's
    `{"type": "error", "error": {"type", "message"}}`, or a flat `{"type"?, "message"}` (llama.cpp's
    `error:` line), or plain text."""
    err = data.get("error", data) if isinstance(data, dict) else data
    if isinstance(err, dict):
        kind, said = err.get("type"), err.get("message")
        kind = kind if isinstance(kind, str) and kind != "error" else None
        said = said if isinstance(said, str) and said else str(err)[:500]
    else:
        kind, said = None, str(err)[:500] or "no message"
    raise StreamError(f"error event mid-stream ({kind or 'unknown'}): {said}",
                      provider=provider, body=data, retryable=kind in _RETRYABLE)
