"""OpenAI Responses API (`POST /responses`): wire format and completion model."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import attrs

from .. import _json, _wire
from ..completion import (
    BaseCompletionModel,
    Citation,
    CompletionRequest,
    CompletionResponse,
    ToolChoice,
    Usage,
    deep_merge,
)
from ..errors import ResponseDecodeError, StreamError, UnsupportedFeature
from ..message import Audio, DocumentContent, Image, Message, Part, Reasoning, Text, ToolCall, ToolResult
from ..streaming import (
    FinalResponse,
    ReasoningChunk,
    StreamChunk,
    StreamingCompletionResponse,
    TextChunk,
    ToolCallChunk,
    parse_tool_call,
)
from ._annotations import openai_citations
from ._common import event_json, usage_of
from ._model import ModelView
from ._openai_wire import stream_error

__all__ = ["ResponsesModel"]

converter = _wire.make_converter()

# --- request --------------------------------------------------------------------------------------


@attrs.frozen
class _InputText:
    text: str
    type: str = "input_text"


@attrs.frozen
class _InputImage:
    image_url: str
    detail: str = "auto"
    type: str = "input_image"


@attrs.frozen
class _InputFile:
    file_data: str | None = None
    filename: str | None = None
    file_url: str | None = None
    type: str = "input_file"


_Content = _InputText | _InputImage | _InputFile


@attrs.frozen
class _MessageItem:
    role: str
    content: list[_Content]
    type: str = "message"


@attrs.frozen
class _FunctionCallItem:
    call_id: str
    name: str
    arguments: str
    type: str = "function_call"


@attrs.frozen
class _FunctionOutputItem:
    call_id: str
    output: str
    type: str = "function_call_output"


@attrs.frozen
class _SummaryText:
    text: str
    type: str = "summary_text"


@attrs.frozen
class _ReasoningItem:
    id: str
    summary: list[_SummaryText]
    encrypted_content: str | None = None
    type: str = "reasoning"


_Item = _MessageItem | _FunctionCallItem | _FunctionOutputItem | _ReasoningItem


@attrs.frozen
class _Tool:
    name: str
    description: str
    parameters: dict[str, Any]
    type: str = "function"


@attrs.frozen
class _Request:
    model: str
    input: list[_Item]
    instructions: str | None = None
    temperature: float | None = None
    max_output_tokens: int | None = None
    tools: list[_Tool] | None = None
    tool_choice: str | dict[str, Any] | None = None
    stream: bool | None = None
    store: bool | None = None
    include: list[str] | None = None


def _content(part: Part, provider: str) -> _Content:
    if isinstance(part, Text):
        return _InputText(part.text)
    if isinstance(part, Image):
        return _InputImage(part.data_url(), part.detail or "auto")
    if isinstance(part, DocumentContent):
        if part.is_url:
            return _InputFile(file_url=part.data)
        return _InputFile(f"data:{part.media_type};base64,{part.data}", part.filename or "document.pdf")
    if isinstance(part, Audio):
        raise UnsupportedFeature(f"{provider}: the Responses API takes no audio input; use completion_model")
    raise UnsupportedFeature(f"{provider}: cannot send {type(part).__name__} in a user message")


def _items(message: Message, provider: str) -> list[_Item]:
    items: list[_Item] = []
    if message.role == "assistant":
        # Reasoning goes back ahead of the output it led to, as the API gave it; only its own
        # (with an id): another provider's reasoning has no place here.
        items.extend(_ReasoningItem(p.id, [_SummaryText(t) for t in p.summary], p.encrypted)
                     for p in message.content if isinstance(p, Reasoning) and p.id)
        text = message.text
        if text:
            items.append(_MessageItem("assistant", [_InputText(text, "output_text")]))
        for call in message.tool_calls:
            items.append(_FunctionCallItem(call.call_id or call.id, call.name, _json.dumps(call.arguments).decode()))
        return items
    for part in message.content:
        if isinstance(part, ToolResult):
            items.append(_FunctionOutputItem(part.call_id or part.id, part.content))
    rest = [p for p in message.content if not isinstance(p, ToolResult)]
    if rest:
        items.append(_MessageItem("user", [_content(p, provider) for p in rest]))
    return items


def _tool_choice(choice: ToolChoice | None) -> str | dict[str, Any] | None:
    if choice is None:
        return None
    return {"type": "function", "name": choice.name} if choice.mode == "tool" else choice.mode


# Asked for when nothing is stored: the reasoning then comes back encrypted, to be sent again.
ENCRYPTED_REASONING = "reasoning.encrypted_content"


def responses_body(model: str, request: CompletionRequest, provider: str, *, stream: bool,
                   store: bool | None = None) -> dict[str, Any]:
    body = _wire.encode(
        converter,
        _Request(
            model=model,
            input=[item for m in request.messages_with_documents() for item in _items(m, provider)],
            instructions=request.preamble,
            temperature=request.temperature,
            max_output_tokens=request.max_tokens,
            tools=[_Tool(t.name, t.description, t.parameters) for t in request.tools] or None,
            tool_choice=_tool_choice(request.tool_choice) if request.tools else None,
            stream=True if stream else None,
            store=store,
            include=[ENCRYPTED_REASONING] if store is False else None,
        ),
    )
    merged = deep_merge(body, request.additional_params)
    given = merged.get("include")
    if store is False and isinstance(given, list) and ENCRYPTED_REASONING not in given:
        merged["include"] = [*given, ENCRYPTED_REASONING]  # the caller's own `include` replaced ours
    return merged


# --- response -------------------------------------------------------------------------------------


@attrs.frozen
class _OutputContent:
    type: str
    text: str | None = None
    refusal: str | None = None
    annotations: Any = None  # read tolerantly (`openai_citations`): they never fail an answer


@attrs.frozen
class _Summary:
    text: str = ""


@attrs.frozen
class _OutputItem:
    type: str
    id: str | None = None
    content: list[_OutputContent] | None = None
    call_id: str | None = None
    name: str | None = None
    arguments: Any = None  # JSON text; `parse_tool_call` reads any value
    summary: list[_Summary] | None = None
    encrypted_content: str | None = None


@_wire.lenient
@attrs.frozen
class _InputDetails:
    cached_tokens: _wire.Tokens = None
    cache_write_tokens: _wire.Tokens = None


@_wire.lenient
@attrs.frozen
class _OutputDetails:
    reasoning_tokens: _wire.Tokens = None


@_wire.lenient
@attrs.frozen
class _Usage:
    input_tokens: _wire.Tokens = None
    output_tokens: _wire.Tokens = None
    total_tokens: _wire.Tokens = None
    input_tokens_details: _InputDetails | None = None
    output_tokens_details: _OutputDetails | None = None
    cost_in_usd_ticks: _wire.Tokens = None  # xAI: units of 1e-10 US dollars


@attrs.frozen
class _ErrorInfo:
    message: str = ""
    code: str | None = None


@attrs.frozen
class _IncompleteDetails:
    reason: str | None = None


@attrs.frozen
class _Response:
    output: list[_OutputItem]
    id: str | None = None
    model: str | None = None
    status: str | None = None
    usage: _Usage | None = None
    error: _ErrorInfo | None = None
    incomplete_details: _IncompleteDetails | None = None


def _usage(usage: _Usage | None) -> Usage:
    if usage is None:
        return Usage()
    ticks = usage.cost_in_usd_ticks
    details = usage.input_tokens_details or _InputDetails()
    return usage_of(usage.input_tokens, usage.output_tokens, usage.total_tokens,
                    cached=details.cached_tokens, cache_write=details.cache_write_tokens,
                    reasoning=usage.output_tokens_details.reasoning_tokens if usage.output_tokens_details else None,
                    cost_usd=None if ticks is None else ticks / 1e10)


def _to_completion(resp: _Response, raw: Any, provider: str) -> CompletionResponse:
    if resp.status == "failed" and resp.error is not None:
        raise ResponseDecodeError(f"{provider} response failed: {resp.error.message}", provider=provider,
                                  field="error", body=raw)
    parts: list[Any] = []
    citations: list[Citation] = []
    length = 0  # of the text so far: annotation spans count within their own part, ours in `resp.text`
    for item in resp.output:
        if item.type == "message":
            for content in item.content or ():
                if content.type == "output_text" and content.text:
                    parts.append(Text(content.text))
                    citations.extend(_shifted(c, length) for c in openai_citations(content.annotations))
                    length += len(content.text)
                elif content.type == "refusal" and content.refusal:
                    parts.append(Text(content.refusal))
                    length += len(content.refusal)
        elif item.type == "function_call":
            if not item.name:
                raise ResponseDecodeError(f"{provider}: function_call without a name", provider=provider,
                                          field="output.name", body=raw)
            parts.append(parse_tool_call(item.id or item.call_id or "", item.name, item.arguments, provider,
                                         item.call_id))
        elif item.type == "reasoning" and (item.summary or item.id):
            summary = [s.text for s in item.summary or ()]
            parts.append(Reasoning("".join(summary), id=item.id, encrypted=item.encrypted_content, summary=summary))
    if resp.status == "incomplete":
        finish = resp.incomplete_details.reason if resp.incomplete_details else "incomplete"
    else:
        finish = "tool_calls" if any(isinstance(p, ToolCall) for p in parts) else resp.status
    return CompletionResponse(tuple(parts), _usage(resp.usage), raw, finish, resp.id, resp.model, citations)


def _shifted(citation: Citation, by: int) -> Citation:
    if not by:
        return citation
    return attrs.evolve(citation, start=None if citation.start is None else citation.start + by,
                        end=None if citation.end is None else citation.end + by)


def parse_response(data: Any, provider: str) -> CompletionResponse:
    return _to_completion(_wire.decode(converter, data, _Response, provider), data, provider)


def _delta_text(data: dict[str, Any], provider: str) -> str:
    piece = data.get("delta", "")
    if not isinstance(piece, str):  # a piece of the answer that is not text: not an answer to pass on
        raise ResponseDecodeError(f"{provider} sent a {data.get('type')} event whose delta is not text",
                                  provider=provider, field="delta", body=data)
    return piece


def stream_response(events: Iterator[Any], provider: str) -> Iterator[StreamChunk]:
    """Chunks from Responses API events; complete only on `response.completed`/`.incomplete`.

    An error the server sends instead raises `StreamError` with its message: an `error` event
    (`{"type": "error", "code", "message"}` as documented, `{"type": "error", "error": {…}}` as
    OpenAI sends it), `response.failed` (its `response.error`), and from compatible servers a bare
    `{"error": …}` object or llama.cpp's `error:` line."""
    for event in events:
        if event.event == "error":
            raise stream_error(event.data, provider)
        data = event_json(event, provider)
        kind = data.get("type") if isinstance(data, dict) else None
        if kind is None and isinstance(data, dict) and data.get("error") is not None:
            raise stream_error(data, provider)
        if kind == "response.output_text.delta" or kind == "response.refusal.delta":
            yield TextChunk(_delta_text(data, provider))
        elif kind == "response.reasoning_summary_text.delta":
            yield ReasoningChunk(_delta_text(data, provider))
        elif kind == "response.output_item.done" and isinstance(data.get("item"), dict):
            item = _wire.decode(converter, data["item"], _OutputItem, provider)
            if item.type == "function_call" and item.name:
                yield ToolCallChunk(parse_tool_call(item.id or item.call_id or "", item.name, item.arguments,
                                                    provider, item.call_id))
        elif kind in ("response.completed", "response.incomplete"):
            raw = data.get("response")
            yield FinalResponse(parse_response(raw, provider))
            return
        elif kind in ("response.failed", "error"):
            raise stream_error(data, provider)
    raise StreamError(f"{provider} stream ended before response.completed: the answer is incomplete",
                      provider=provider, retryable=True)


class ResponsesModel(ModelView, BaseCompletionModel):
    """A chat model on OpenAI's Responses API (`POST {base_url}/responses`).

    `store=False` keeps nothing on the server: every request sends `"store": false` and asks for
    the reasoning encrypted (`include: ["reasoning.encrypted_content"]`), and an answer's
    `Reasoning` parts, sent again in the conversation, carry it back (for reasoning models only:
    others refuse the `include`). `store=None` sends neither and leaves the server's default.
    """

    path = "/responses"

    def __init__(self, client: Any, model: str, *, store: bool | None = None) -> None:
        super().__init__(client, model)
        self.store = store

    def completion(self, request: CompletionRequest) -> CompletionResponse:
        body = responses_body(self.model, request, self.provider, stream=False, store=self.store)
        return self._complete(self.path, body, parse_response)

    def stream(self, request: CompletionRequest) -> StreamingCompletionResponse:
        body = responses_body(self.model, request, self.provider, stream=True, store=self.store)
        return self._stream(self.path, body, stream_response, raw=request.keep_raw_events)
