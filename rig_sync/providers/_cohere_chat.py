"""Cohere v2 chat (`POST /v2/chat`): wire format, response parsing, streaming, completion model.

Mapping decisions:
- rig `Document`s travel as Cohere's native `documents` (`{id, data: {text, ...props}}`), so the
  model can cite them; they are never folded into the prompt.
- `tool_plan` (the plan Cohere writes before calling tools) and `thinking` content come back as
  `Reasoning`; an assistant message sent back with tool calls carries its reasoning and text as
  `tool_plan`, because Cohere refuses text content next to tool calls.
- Finish reasons: COMPLETE -> "stop", STOP_SEQUENCE -> "stop_sequence", MAX_TOKENS -> "length",
  TOOL_CALL -> "tool_calls"; ERROR and TIMEOUT raise `GenerationError` (never an empty answer).
- Usage counts the tokens the model processed (`usage.tokens`), falling back to `billed_units`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import attrs

from .. import _wire, errors
from ..completion import (
    BaseCompletionModel,
    Citation,
    CompletionRequest,
    CompletionResponse,
    ToolChoice,
    Usage,
    deep_merge,
)
from ..errors import APIStatusError, InvalidRequestError, NoAnswerError, StreamError, UnsupportedFeature
from ..message import Image, Message, Part, Reasoning, Text
from ..streaming import (
    FinalResponse,
    ReasoningChunk,
    StreamChunk,
    StreamingCompletionResponse,
    TextBuffer,
    TextChunk,
    ToolCallAssembler,
    ToolCallChunk,
    content_from,
    parse_tool_call,
)
from ._annotations import cohere_citations
from ._common import event_json, narrow_named_tool, usage_of
from ._model import ModelView
from ._openai_wire import (
    ChatMessage,
    ImagePart,
    TextPart,
    Tool,
    image_part,
    stream_error,
    tool_calls,
    tools,
    user_messages,
)

__all__ = ["CompletionModel", "GenerationError", "ContentBlockedError", "chat_body", "content_checked",
           "parse_chat_response", "stream_chat"]

converter = _wire.make_converter()


class GenerationError(NoAnswerError):
    """Cohere gave up on the answer: finish_reason ERROR or TIMEOUT, streamed or not.

    `reason` is Cohere's finish reason, `text` (also `partial_text`) whatever was generated before
    it stopped, `body` the raw response (or final stream event). Retryable, as the request was fine.
    """

    def __init__(self, message: str, *, provider: str | None = None, reason: str, partial_text: str = "",
                 body: Any = None) -> None:
        super().__init__(message, provider=provider, reason=reason, text=partial_text, body=body, retryable=True)

    @property
    def partial_text(self) -> str:
        return self.text


class ContentBlockedError(errors.ContentBlockedError, APIStatusError):
    """HTTP 498: the request or the response contained a token Cohere deny-lists. A status error
    too, with the status, request id and body of the answer."""

    __init__ = APIStatusError.__init__
    reason = "blocked"


# --- request --------------------------------------------------------------------------------------


@attrs.define
class _ThinkingPart:
    thinking: str
    type: str = "thinking"


_Part = TextPart | _ThinkingPart | ImagePart


@attrs.define
class _Message(ChatMessage):
    tool_plan: str | None = None  # the plan written before tool calls: Cohere's one addition


@attrs.define
class _Document:
    data: dict[str, Any]
    id: str | None = None


@attrs.define
class _ChatRequest:
    model: str
    messages: list[_Message]
    stream: bool
    documents: list[_Document] | None = None
    tools: list[Tool] | None = None
    tool_choice: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None


def _user_part(part: Part, provider: str) -> _Part:
    if isinstance(part, Text):
        return TextPart(part.text)
    if isinstance(part, Image):
        return image_part(part)
    raise UnsupportedFeature(f"{provider}: chat messages take text and images, not {type(part).__name__}")


def _wire_messages(message: Message, provider: str) -> list[_Message]:
    if message.role == "assistant":
        text = "".join(p.text for p in message.content if isinstance(p, Text))
        reasoning = "".join(p.text for p in message.content if isinstance(p, Reasoning))
        calls = tool_calls(message)
        if calls:
            # Cohere refuses text content beside tool calls: the plan field carries it instead.
            plan = "\n".join(p for p in (reasoning, text) if p)
            return [_Message("assistant", tool_calls=calls, tool_plan=plan or None)]
        if reasoning:
            parts: list[_Part] = [_ThinkingPart(reasoning)]
            if text:
                parts.append(TextPart(text))
            return [_Message("assistant", parts)]
        return [_Message("assistant", text)]
    return user_messages(message, partial(_user_part, provider=provider), _Message)


def _tool_choice(choice: ToolChoice | None) -> str | None:
    if choice is None or choice.mode == "auto":
        return None  # Cohere's default: the model decides
    return choice.mode.upper()  # a named tool arrives here as "required" (narrow_named_tool)


def chat_body(model: str, request: CompletionRequest, provider: str, *, stream: bool) -> dict[str, Any]:
    """The JSON body for one `/v2/chat` call."""
    if not isinstance(request, CompletionRequest):
        raise InvalidRequestError(f"expected a CompletionRequest, got {type(request).__name__}")
    messages = [_Message("system", request.preamble)] if request.preamble else []
    for message in request.chat_history:
        messages.extend(_wire_messages(message, provider))
    documents = [_Document({**d.additional_props, "text": d.text}, d.id) for d in request.documents]
    offered, choice = narrow_named_tool(request, provider)  # Cohere takes no named tool choice
    tool_defs = tools(offered)
    body = _wire.encode(converter, _ChatRequest(
        model=model,
        messages=messages,
        stream=stream,
        documents=documents or None,
        tools=tool_defs or None,
        tool_choice=_tool_choice(choice) if tool_defs else None,
        temperature=request.temperature,
        max_tokens=request.max_tokens,
    ))
    return deep_merge(body, request.additional_params)


# --- response -------------------------------------------------------------------------------------


@_wire.lenient
@attrs.define
class _Tokens:
    input_tokens: _wire.Tokens = None
    output_tokens: _wire.Tokens = None


@_wire.lenient
@attrs.define
class _Usage:
    billed_units: _Tokens | None = None
    tokens: _Tokens | None = None
    cached_tokens: _wire.Tokens = None


def usage_from(usage: _Usage | None) -> Usage:
    if usage is None:
        return Usage()
    counted = usage.tokens or usage.billed_units or _Tokens()
    return usage_of(counted.input_tokens, counted.output_tokens, cached=usage.cached_tokens)


@attrs.define
class _RespContent:
    type: str = "text"
    text: str | None = None
    thinking: str | None = None


@attrs.define
class _RespFunction:
    name: str
    arguments: Any = None  # JSON text ("null" for no parameters); `parse_tool_call` reads any value


@attrs.define
class _RespToolCall:
    id: str
    function: _RespFunction


@attrs.define
class _RespMessage:
    content: list[_RespContent] | None = None
    tool_plan: str | None = None
    tool_calls: list[_RespToolCall] | None = None


@attrs.define
class _ChatResponse:
    message: _RespMessage
    id: str | None = None
    finish_reason: str | None = None
    usage: _Usage | None = None


_FINISH = {"COMPLETE": "stop", "STOP_SEQUENCE": "stop_sequence", "MAX_TOKENS": "length", "TOOL_CALL": "tool_calls"}
_FAILED = ("ERROR", "TIMEOUT")


def _finish(reason: str | None, provider: str, text: str, body: Any, error: str | None = None) -> str | None:
    """Our finish reason for Cohere's; ERROR and TIMEOUT raise instead of passing as an answer."""
    if reason in _FAILED:
        said = f": {error}" if error else ""
        raise GenerationError(f"{provider} stopped generating with finish_reason {reason}{said}",
                              provider=provider, reason=reason, partial_text=text, body=body)
    if reason is None:
        return None
    return _FINISH.get(reason, reason.lower())


def parse_chat_response(data: Any, provider: str) -> CompletionResponse:
    resp = _wire.decode(converter, data, _ChatResponse, provider)
    msg = resp.message
    content = msg.content or []
    text = "".join(c.text or "" for c in content if c.type == "text")
    thinking = "".join(c.thinking or "" for c in content if c.type == "thinking")
    finish = _finish(resp.finish_reason, provider, text, data)
    calls = [parse_tool_call(c.id, c.function.name, c.function.arguments, provider) for c in msg.tool_calls or ()]
    reasoning = "\n".join(r for r in (thinking, msg.tool_plan) if r)
    cited = data["message"].get("citations") if isinstance(data["message"], dict) else None
    return CompletionResponse(content_from(text, reasoning, calls), usage_from(resp.usage), data, finish, resp.id,
                              citations=cohere_citations(cited))


# --- streaming ------------------------------------------------------------------------------------


@attrs.define
class _DeltaContent:
    text: str | None = None
    thinking: str | None = None


@attrs.define
class _DeltaFunction:
    name: str | None = None
    arguments: str | None = None


@attrs.define
class _DeltaToolCall:
    id: str | None = None
    function: _DeltaFunction | None = None


@attrs.define
class _DeltaMessage:
    content: _DeltaContent | None = None
    tool_plan: str | None = None
    tool_calls: _DeltaToolCall | None = None


@attrs.define
class _Delta:
    message: _DeltaMessage | None = None
    finish_reason: str | None = None
    usage: _Usage | None = None
    error: str | None = None


@attrs.define
class _Event:
    type: str
    id: str | None = None
    index: int = 0
    delta: _Delta | None = None


def _text_delta(data: Any) -> str | None:
    """The text of a plain `content-delta` event, read without the typed decode (the hot path)."""
    if data.__class__ is not dict or data.get("type") != "content-delta":
        return None
    try:
        content = data["delta"]["message"]["content"]
    except (KeyError, TypeError):
        return None
    if content.__class__ is not dict or len(content) != 1:
        return None  # thinking, or more than text: the typed path reads it
    text = content.get("text")
    return text if text.__class__ is str else None


def stream_chat(events: Iterator[Any], provider: str) -> Iterator[StreamChunk]:
    """Chunks from a Cohere v2 SSE stream. `message-end` is the completion marker (a `[DONE]`
    may follow); a stream that stops before it raises `StreamError`, and so does an error sent
    in place of an event (`StreamError` with the server's message; `GenerationError` for a
    `message-end` whose finish reason is ERROR or TIMEOUT)."""
    text, reasoning = TextBuffer(), TextBuffer()
    calls = ToolCallAssembler(provider)
    rid: str | None = None
    end: _Delta | None = None
    end_data: Any = None
    citations: list[Citation] = []
    for event in events:
        if event.data == "[DONE]":
            break
        if event.event == "error":  # an `event: error`, or llama.cpp's `error:` line
            raise stream_error(event.data, provider)
        data = event_json(event, provider)
        piece = _text_delta(data)
        if piece is not None:
            if piece:
                text.append(piece)
                yield TextChunk(piece)
            continue
        if isinstance(data, dict) and (data.get("type") == "error" or ("type" not in data and (
                isinstance(data.get("message"), str) or data.get("error") is not None))):
            # An error object in place of an event: Cohere's error shape ({"message": …}), or
            # {"error": …} from compatible servers.
            raise stream_error(data, provider)
        if isinstance(data, dict) and "type" not in data and event.event:
            data = {**data, "type": event.event}  # the SSE event name says it where the data does not
        ev = _wire.decode(converter, data, _Event, provider)
        if ev.type == "citation-start":  # one citation per event, read tolerantly from the raw body
            message = data["delta"].get("message") if isinstance(data.get("delta"), dict) else None
            citations += cohere_citations([message.get("citations")] if isinstance(message, dict) else None)
            continue
        delta = ev.delta or _Delta()
        message = delta.message or _DeltaMessage()
        if ev.type == "message-start":
            rid = ev.id
        elif ev.type == "content-delta" and message.content is not None:
            if message.content.thinking:
                reasoning.append(message.content.thinking)
                yield ReasoningChunk(message.content.thinking)
            if message.content.text:
                text.append(message.content.text)
                yield TextChunk(message.content.text)
        elif ev.type == "tool-plan-delta" and message.tool_plan:
            reasoning.append(message.tool_plan)
            yield ReasoningChunk(message.tool_plan)
        elif ev.type in ("tool-call-start", "tool-call-delta") and message.tool_calls is not None:
            call = message.tool_calls
            fn = call.function or _DeltaFunction()
            calls.add(ev.index, id=call.id, name=fn.name, arguments=fn.arguments)
        elif ev.type == "message-end":
            end, end_data = delta, data
    if end is None:
        raise StreamError(f"{provider} stream ended before message-end: the answer is incomplete",
                          provider=provider, retryable=True)
    finish = _finish(end.finish_reason, provider, "".join(text), end_data, end.error)
    tool_calls = calls.finish()
    for tool_call in tool_calls:
        yield ToolCallChunk(tool_call)
    response = CompletionResponse(content_from("".join(text), "".join(reasoning), tool_calls),
                                  usage_from(end.usage), None, finish, rid, citations=citations)
    yield FinalResponse(response)


# --- model ----------------------------------------------------------------------------------------


@contextmanager
def content_checked() -> Iterator[None]:
    """Turns HTTP 498 (deny-listed content) into `ContentBlockedError`; other errors pass."""
    try:
        yield
    except APIStatusError as err:
        if err.status_code != 498:
            raise
        raise ContentBlockedError(err.message, status_code=498, provider=err.provider, request_id=err.request_id,
                                  headers=err.headers, body=err.body, code=err.code) from err


class CompletionModel(ModelView, BaseCompletionModel):
    """A chat model on `POST {base_url}/v2/chat`."""

    path = "/v2/chat"

    def completion(self, request: CompletionRequest) -> CompletionResponse:
        body = chat_body(self.model, request, self.provider, stream=False)
        with content_checked():
            return self._complete(self.path, body, parse_chat_response)

    def stream(self, request: CompletionRequest) -> StreamingCompletionResponse:
        body = chat_body(self.model, request, self.provider, stream=True)
        with content_checked():
            return self._stream(self.path, body, stream_chat, raw=request.keep_raw_events)
