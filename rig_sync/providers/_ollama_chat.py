"""Ollama's native chat (`POST /api/chat`): wire format, response parsing, NDJSON streaming.

Mapping decisions:
- Ollama streams by default, so every non-streamed request says `"stream": false`.
- `temperature` and `max_tokens` travel in `options` (`num_predict`); `additional_params` are
  merged into the body, so `format` (structured output), `think`, `keep_alive` and further
  `options` pass straight through.
- Images go inline (base64 in `images`); Ollama cannot fetch URLs, so an image URL, audio or a
  document is refused with `UnsupportedFeature`.
- Tool calls carry no ids on the wire: each gets `<name>_<index>` (its position in the answer).
  A `ToolResult` goes back as role `tool` with `tool_name`, looked up from the matching
  `ToolCall` in the history (left out when the history lacks it; Ollama then matches by order).
- Ollama has no `tool_choice`: "auto" is its behaviour, "none" sends no tools, and "required"
  or a named tool raise `UnsupportedFeature`.
- `done_reason` is the finish reason as sent ("stop", "length"); "load"/"unload" mean no answer
  was generated and raise `NoAnswerError`. Usage: `prompt_eval_count` in, `eval_count` out.
- A stream is complete at its `done: true` object; an `{"error": …}` line or an end before it
  raises `StreamError`.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Any

import attrs

from .. import _wire
from ..completion import BaseCompletionModel, CompletionRequest, CompletionResponse, deep_merge
from ..errors import InvalidRequestError, NoAnswerError, ResponseDecodeError, StreamError, UnsupportedFeature
from ..message import Image, Message, Reasoning, Text, ToolCall, ToolResult
from ..streaming import (
    FinalResponse,
    ReasoningChunk,
    StreamChunk,
    StreamingCompletionResponse,
    TextBuffer,
    TextChunk,
    ToolCallChunk,
    content_from,
    parse_tool_call,
)
from ._common import iter_ndjson, tool_names, usage_of
from ._model import ModelView
from ._openai_wire import Tool, tools

__all__ = ["CompletionModel", "NoAnswerError", "chat_body", "parse_chat_response", "stream_chat"]

converter = _wire.make_converter()


# --- request --------------------------------------------------------------------------------------


@attrs.define
class _Function:
    name: str
    arguments: dict[str, Any]


@attrs.define
class _ToolCall:
    function: _Function


@attrs.define
class _Message:
    role: str
    content: str
    images: list[str] | None = None
    thinking: str | None = None
    tool_calls: list[_ToolCall] | None = None
    tool_name: str | None = None


@attrs.define
class _Options:
    temperature: float | None = None
    num_predict: int | None = None


@attrs.define
class _ChatRequest:
    model: str
    messages: list[_Message]
    stream: bool
    tools: list[Tool] | None = None
    options: _Options | None = None


def _user_messages(message: Message, names: dict[str, str], provider: str) -> list[_Message]:
    out = [_Message("tool", r.content, tool_name=names.get(r.id))
           for r in message.content if isinstance(r, ToolResult)]
    texts: list[str] = []
    images: list[str] = []
    for part in message.content:
        if isinstance(part, Text):
            texts.append(part.text)
        elif isinstance(part, Image):
            if part.is_url:
                raise UnsupportedFeature(f"{provider} cannot fetch images by URL; pass the bytes "
                                         "(Image.from_bytes)")
            images.append(part.data)
        elif not isinstance(part, ToolResult):
            raise UnsupportedFeature(f"{provider} chat takes text and images, not {type(part).__name__}")
    if texts or images:
        out.append(_Message("user", "\n".join(texts), images or None))
    return out


def _assistant_message(message: Message) -> _Message:
    text = "".join(p.text for p in message.content if isinstance(p, Text))
    thinking = "".join(p.text for p in message.content if isinstance(p, Reasoning))
    calls = [_ToolCall(_Function(c.name, c.arguments)) for c in message.content if isinstance(c, ToolCall)]
    return _Message("assistant", text, thinking=thinking or None, tool_calls=calls or None)


def _messages(request: CompletionRequest, provider: str) -> list[_Message]:
    names = tool_names(request)
    out = [_Message("system", request.preamble)] if request.preamble else []
    for message in request.messages_with_documents():
        if message.role == "assistant":
            out.append(_assistant_message(message))
        else:
            out.extend(_user_messages(message, names, provider))
    return out


def _tools(request: CompletionRequest, provider: str) -> list[Tool] | None:
    choice = request.tool_choice
    if not request.tools or (choice is not None and choice.mode == "none"):
        return None
    if choice is not None and choice.mode in ("required", "tool"):
        raise UnsupportedFeature(f"{provider} cannot force a tool call (tool_choice {choice.mode!r}); "
                                 "use 'auto' or 'none'")
    return tools(request.tools)


def chat_body(model: str, request: CompletionRequest, provider: str, *, stream: bool) -> dict[str, Any]:
    """The JSON body for `/api/chat`."""
    if not isinstance(request, CompletionRequest):
        raise InvalidRequestError(f"expected a CompletionRequest, got {type(request).__name__}")
    options = None
    if request.temperature is not None or request.max_tokens is not None:
        options = _Options(request.temperature, request.max_tokens)
    body = _wire.encode(converter, _ChatRequest(model, _messages(request, provider), stream,
                                                _tools(request, provider), options))
    return deep_merge(body, request.additional_params)


# --- response -------------------------------------------------------------------------------------


@attrs.define
class _RespFunction:
    name: str
    arguments: Any = None


@attrs.define
class _RespToolCall:
    function: _RespFunction
    id: str | None = None  # not sent by Ollama today; kept should it start to


@attrs.define
class _RespMessage:
    content: str | None = None
    thinking: str | None = None
    tool_calls: list[_RespToolCall] | None = None


@attrs.define
class _ChatResponse:
    message: _RespMessage | None = None
    model: str | None = None
    done: bool = False
    done_reason: str | None = None
    prompt_eval_count: _wire.Tokens = None  # left out when the whole prompt came from Ollama's cache
    eval_count: _wire.Tokens = None


_NO_ANSWER = frozenset({"load", "unload"})


def _tool_call(call: _RespToolCall, index: int, provider: str) -> ToolCall:
    return parse_tool_call(call.id or f"{call.function.name}_{index}", call.function.name, call.function.arguments,
                           provider)


def _response(last: _ChatResponse, text: str, thinking: str, calls: list[ToolCall], raw: Any,
              provider: str) -> CompletionResponse:
    if last.done_reason in _NO_ANSWER:
        raise NoAnswerError(f"{provider} finished with done_reason {last.done_reason!r} without generating an "
                            "answer", provider=provider, reason=last.done_reason, body=raw)
    usage = usage_of(last.prompt_eval_count, last.eval_count)
    return CompletionResponse(content_from(text, thinking, calls), usage, raw, last.done_reason, None, last.model)


def parse_chat_response(data: Any, provider: str) -> CompletionResponse:
    resp = _wire.decode(converter, data, _ChatResponse, provider)
    msg = resp.message
    if msg is None:
        said = f": {data['error']}" if isinstance(data, dict) and "error" in data else ""
        raise ResponseDecodeError(f"{provider} chat response has no message{said}", provider=provider,
                                  field="message", body=data)
    calls = [_tool_call(c, i, provider) for i, c in enumerate(msg.tool_calls or ())]
    return _response(resp, msg.content or "", msg.thinking or "", calls, data, provider)


def stream_chat(objects: Iterator[Any], provider: str) -> Iterator[StreamChunk]:
    """Chunks from `/api/chat` NDJSON objects; complete at the object with `done: true`."""
    text, thinking = TextBuffer(), TextBuffer()
    calls: list[ToolCall] = []
    for obj in objects:
        if isinstance(obj, dict) and "error" in obj:
            raise StreamError(f"{provider} reported an error mid-stream: {obj['error']}", provider=provider,
                              body=obj)
        chunk = _wire.decode(converter, obj, _ChatResponse, provider)
        msg = chunk.message
        if msg is not None:
            if msg.thinking:
                thinking.append(msg.thinking)
                yield ReasoningChunk(msg.thinking)
            if msg.content:
                text.append(msg.content)
                yield TextChunk(msg.content)
            for call in msg.tool_calls or ():  # tool calls arrive whole, never in pieces
                calls.append(_tool_call(call, len(calls), provider))
                yield ToolCallChunk(calls[-1])
        if chunk.done:
            yield FinalResponse(_response(chunk, "".join(text), "".join(thinking), calls, obj, provider))
            return
    raise StreamError(f"{provider} stream ended before its done:true object: the answer is incomplete",
                      provider=provider, retryable=True)


# --- model ----------------------------------------------------------------------------------------


class CompletionModel(ModelView, BaseCompletionModel):
    """A chat model on `POST {base_url}/api/chat`."""

    path = "/api/chat"

    def completion(self, request: CompletionRequest) -> CompletionResponse:
        body = chat_body(self.model, request, self.provider, stream=False)
        return self._complete(self.path, body, parse_chat_response)

    def stream(self, request: CompletionRequest) -> StreamingCompletionResponse:
        body = chat_body(self.model, request, self.provider, stream=True)
        return self._stream(self.path, body, stream_chat, framing=partial(iter_ndjson, provider=self.provider),
                            events=False, raw=request.keep_raw_events)
