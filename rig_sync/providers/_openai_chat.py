"""OpenAI Chat Completions (`POST /chat/completions`): wire format and completion model.

Shared by OpenAI and every OpenAI-compatible provider (groq, deepseek, xai, together, …): a
provider that speaks this format differs only in its `ChatDialect` (a value its client class
carries as `chat_dialect`), never in this code.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Any

import attrs

from .. import _json, _wire
from ..client.capabilities import Prepared
from ..completion import (
    BaseCompletionModel,
    Citation,
    CompletionRequest,
    CompletionResponse,
    SafetyResult,
    ToolChoice,
    Usage,
    deep_merge,
)
from ..errors import APIError, InvalidRequestError, ResponseDecodeError, StreamError, UnsupportedFeature
from ..message import Audio, DocumentContent, Image, Message, Part, Reasoning, Text
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
from ._annotations import content_filters, merge_safety, openai_citations, prompt_filters, search_citations
from ._chat_dialect import OPENAI_DIALECT, OPENAI_PARTS, ChatDialect, PartDialect, dialect_of
from ._common import event_json, narrow_named_tool, usage_of
from ._model import ModelView
from ._openai_wire import (
    ChatMessage,
    ImagePart,
    TextPart,
    Tool,
    ToolCall,
    image_part,
    stream_error,
    tool_calls,
    tools,
    user_messages,
)

__all__ = ["ChatCompletionsModel", "ChatDialect", "OPENAI_DIALECT", "PartDialect", "OPENAI_PARTS", "converter",
           "dialect_of", "usage_from"]

converter = _wire.make_converter()

# --- request --------------------------------------------------------------------------------------


@attrs.define
class _InputAudio:
    data: str
    format: str


@attrs.define
class _File:
    file_data: str | None = None
    filename: str | None = None


@attrs.define
class _AudioPart:
    input_audio: _InputAudio
    type: str = "input_audio"


@attrs.define
class _FilePart:
    file: _File
    type: str = "file"


@attrs.define
class _BareAudioPart:  # Mistral: the base64 audio itself, no format object
    input_audio: str
    type: str = "input_audio"


@attrs.define
class _DocumentURLPart:  # Mistral: documents by URL only (or an uploaded file's id)
    document_url: str
    document_name: str | None = None
    type: str = "document_url"


_Part = TextPart | ImagePart | _AudioPart | _FilePart | _BareAudioPart | _DocumentURLPart


@attrs.define
class _AssistantMessage:
    """An assistant turn. `content` is always sent, as null beside tool calls (as openai-python
    does): early-2025 llama-server answers a turn without the key with 500 "Expected 'content'"."""

    role: str
    content: str | None
    tool_calls: list[ToolCall] | None = None


@attrs.define
class _StreamOptions:
    include_usage: bool = True


@attrs.define
class _ChatRequest:
    model: str
    messages: list[ChatMessage | _AssistantMessage]
    temperature: float | None = None
    max_tokens: int | None = None
    tools: list[Tool] | None = None
    tool_choice: str | dict[str, Any] | None = None
    stream: bool | None = None
    stream_options: _StreamOptions | None = None


def _user_part(part: Part, provider: str, dialect: PartDialect) -> _Part:
    if isinstance(part, Text):
        return TextPart(part.text)
    if isinstance(part, Image):
        return image_part(part)
    if isinstance(part, Audio):
        return _BareAudioPart(part.data) if dialect.bare_audio else _AudioPart(_InputAudio(part.data, part.format))
    if isinstance(part, DocumentContent):
        if dialect.documents_by_url:
            if not part.is_url:
                raise UnsupportedFeature(f"{provider}: documents go by URL (DocumentContent(url, is_url=True)); "
                                         "it takes no inline document bytes")
            return _DocumentURLPart(part.data, part.filename)
        if part.is_url:
            raise UnsupportedFeature(f"{provider}: documents by URL are not supported; pass the bytes")
        return _FilePart(_File(f"data:{part.media_type};base64,{part.data}", part.filename))
    raise UnsupportedFeature(f"{provider}: cannot send {type(part).__name__} in a user message")


def _messages(request: CompletionRequest, provider: str,
              dialect: PartDialect) -> list[ChatMessage | _AssistantMessage]:
    out: list[ChatMessage | _AssistantMessage] = []
    if request.preamble:
        out.append(ChatMessage("system", request.preamble))
    for message in request.messages_with_documents():
        out.extend(_wire_messages(message, provider, dialect))
    return out


def _wire_messages(message: Message, provider: str,
                   dialect: PartDialect) -> list[ChatMessage] | list[_AssistantMessage]:
    if message.role == "assistant":
        text = "".join(p.text for p in message.content if isinstance(p, Text))
        return [_AssistantMessage("assistant", text or None, tool_calls(message) or None)]
    return user_messages(message, partial(_user_part, provider=provider, dialect=dialect), ChatMessage)


def _tool_choice(choice: ToolChoice | None, required: str) -> str | dict[str, Any] | None:
    if choice is None:
        return None
    if choice.mode == "tool":
        return {"type": "function", "function": {"name": choice.name}}
    return required if choice.mode == "required" else choice.mode


def chat_body(model: str, request: CompletionRequest, provider: str, *, stream: bool,
              dialect: ChatDialect = OPENAI_DIALECT) -> dict[str, Any]:
    """The JSON body for one chat completion (shared by every OpenAI-compatible provider), as
    `dialect` spells it (see `ChatDialect`)."""
    if request.tools and not dialect.tools:
        raise UnsupportedFeature(f"{provider} does not support tool calling; send the request without tools")
    offered, choice = (request.tools, request.tool_choice) if dialect.named_tool_choice else narrow_named_tool(
        request, provider)
    body = _wire.encode(
        converter,
        _ChatRequest(
            model=model,
            messages=_messages(request, provider, dialect.user_parts),
            temperature=request.temperature,
            max_tokens=request.max_tokens,
            tools=tools(offered) or None,
            tool_choice=_tool_choice(choice, dialect.required_tool_choice) if offered else None,
            stream=True if stream else None,
            stream_options=_StreamOptions() if stream and dialect.stream_usage else None,
        ),
    )
    return deep_merge(body, request.additional_params)


# --- response -------------------------------------------------------------------------------------


@_wire.lenient
@attrs.define
class _TokenDetails:
    cached_tokens: _wire.Tokens = None
    cache_write_tokens: _wire.Tokens = None  # OpenRouter


@_wire.lenient
@attrs.define
class _OutputDetails:
    reasoning_tokens: _wire.Tokens = None


@_wire.lenient
@attrs.define
class _Usage:
    prompt_tokens: _wire.Tokens = None
    completion_tokens: _wire.Tokens = None
    total_tokens: _wire.Tokens = None
    prompt_tokens_details: _TokenDetails | None = None
    completion_tokens_details: _OutputDetails | None = None
    prompt_cache_hit_tokens: _wire.Tokens = None  # DeepSeek's name for cache reads
    cost: Any = None  # OpenRouter: US dollars; Perplexity: {"total_cost": dollars, …}
    cost_in_usd_ticks: _wire.Tokens = None  # xAI: units of 1e-10 US dollars


def usage_from(usage: _Usage | None) -> Usage:
    if usage is None:
        return Usage()
    prompt, output, total = usage.prompt_tokens, usage.completion_tokens, usage.total_tokens
    details = usage.prompt_tokens_details or _TokenDetails()
    reasoning = usage.completion_tokens_details.reasoning_tokens if usage.completion_tokens_details else None
    # OpenAI counts reasoning within completion_tokens; xAI apart from it, which its total shows.
    if reasoning and prompt is not None and output is not None and total == prompt + output + reasoning:
        output += reasoning
    cached = details.cached_tokens if details.cached_tokens is not None else usage.prompt_cache_hit_tokens
    cost = usage.cost.get("total_cost") if isinstance(usage.cost, dict) else usage.cost
    dollars = _wire.read_cost(cost)
    if dollars is None and usage.cost_in_usd_ticks is not None:
        dollars = usage.cost_in_usd_ticks / 1e10
    return usage_of(prompt, output, total, cached=cached, reasoning=reasoning,
                    cache_write=details.cache_write_tokens, cost_usd=dollars)


@attrs.define
class _RespFunction:
    name: str
    arguments: Any = None  # JSON text; Mistral may send the object itself


@attrs.define
class _RespToolCall:
    id: str
    function: _RespFunction


@attrs.define
class _RespMessage:
    content: Any = None  # text, or (Mistral) a list of text / thinking chunks
    tool_calls: list[_RespToolCall] | None = None
    refusal: str | None = None
    reasoning_content: str | None = None  # deepseek, xai, …
    reasoning: str | None = None  # openrouter, groq, …


@attrs.define
class _Choice:
    message: _RespMessage
    finish_reason: str | None = None


@attrs.define
class _ChatResponse:
    choices: list[_Choice]
    id: str | None = None
    model: str | None = None
    usage: _Usage | None = None


def _content_pieces(content: Any, provider: str) -> tuple[str, str]:
    """(text, reasoning) of a message's content: a string, or a list of typed chunks (Mistral:
    `{"type": "text", "text": …}` and `{"type": "thinking", "thinking": [text chunks]}`)."""
    if content is None or content.__class__ is str:
        return content or "", ""
    if not isinstance(content, list):
        raise ResponseDecodeError(f"{provider} sent message content of type {type(content).__name__}",
                                  provider=provider, field="content", body=content)
    text: list[str] = []
    reasoning: list[str] = []
    for chunk in content:
        if not isinstance(chunk, dict):
            continue
        if chunk.get("type") == "text" and isinstance(chunk.get("text"), str):
            text.append(chunk["text"])
        elif chunk.get("type") == "thinking" and isinstance(chunk.get("thinking"), list):
            thought = chunk["thinking"]
            reasoning.extend(t["text"] for t in thought if isinstance(t, dict) and isinstance(t.get("text"), str))
    return "".join(text), "".join(reasoning)


def _check_finish(finish: str | None, provider: str, body: Any, *, stream: bool) -> None:
    # Mistral ends a generation that failed server-side with finish_reason "error": not an answer.
    if finish == "error":
        message = f"{provider} stopped the generation with finish_reason 'error'; the answer is unusable"
        if stream:
            raise StreamError(message, provider=provider, body=body, retryable=True)
        raise APIError(message, provider=provider)


def parse_chat_response(data: Any, provider: str) -> CompletionResponse:
    resp = _wire.decode(converter, data, _ChatResponse, provider)
    if not resp.choices:
        raise ResponseDecodeError(f"{provider} returned no choices", provider=provider, field="choices", body=data)
    choice = resp.choices[0]
    _check_finish(choice.finish_reason, provider, data, stream=False)
    msg = choice.message
    parts: list[Any] = []
    content, thinking = _content_pieces(msg.content, provider)
    reasoning = msg.reasoning_content or msg.reasoning or thinking
    if reasoning:
        parts.append(Reasoning(reasoning))
    if content:
        parts.append(Text(content))
    elif msg.refusal:
        parts.append(Text(msg.refusal))
    for call in msg.tool_calls or ():
        parts.append(parse_tool_call(call.id, call.function.name, call.function.arguments, provider))
    finish = "refusal" if msg.refusal and not content else choice.finish_reason
    citations, safety = _side_fields(data, "message")
    return CompletionResponse(tuple(parts), usage_from(resp.usage), data, finish, resp.id, resp.model,
                              citations, safety)


def _side_fields(data: dict[str, Any], message_key: str) -> tuple[list[Citation], list[SafetyResult]]:
    """Citations and safety results of a response, or a chunk's (`message_key` "delta"), read from
    the raw body beside the typed decode: OpenAI's `annotations`, Perplexity's `citations` and
    `search_results`, Azure's `prompt_filter_results` and `content_filter_results`."""
    choices = data.get("choices")
    listed = choices if isinstance(choices, list) else []
    # The answer's choice (index 0): with n > 1 a chunk may carry another choice's delta alone.
    choice = next((c for c in listed if isinstance(c, dict) and c.get("index", 0) == 0), {})
    message = choice.get(message_key)
    citations = openai_citations(message.get("annotations")) if isinstance(message, dict) else []
    if "citations" in data or "search_results" in data:
        citations += search_citations(data.get("citations"), data.get("search_results"))
    safety = prompt_filters(data.get("prompt_filter_results"))
    safety += content_filters(choice.get("content_filter_results"), "answer")
    return citations, safety


# --- streaming ------------------------------------------------------------------------------------


@attrs.define
class _DeltaFunction:
    name: str | None = None
    arguments: Any = None  # JSON text piece; Mistral may send the whole object at once


@attrs.define
class _DeltaToolCall:
    index: int = 0
    id: str | None = None
    function: _DeltaFunction | None = None


@attrs.define
class _Delta:
    content: Any = None  # text, or (Mistral) a list of text / thinking chunks
    tool_calls: list[_DeltaToolCall] | None = None
    refusal: str | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None


@attrs.define
class _ChunkChoice:
    delta: _Delta | None = None
    index: int = 0
    finish_reason: str | None = None


@attrs.define
class _Chunk:
    choices: list[_ChunkChoice] = attrs.field(factory=list)
    id: str | None = None
    model: str | None = None
    object: str | None = None
    usage: _Usage | None = None


_TEXT_DELTA_KEYS = frozenset(("content", "role"))
# A chunk and choice with only these keys carry no citations or safety results (`_side_fields`).
_PLAIN_CHUNK_KEYS = frozenset(("id", "object", "created", "model", "system_fingerprint", "choices", "service_tier",
                               "obfuscation", "usage"))
_PLAIN_CHOICE_KEYS = frozenset(("index", "delta", "finish_reason", "logprobs"))


def _plain_text_delta(data: Any) -> str | None:
    """The text of a chunk that is nothing but one text delta of choice 0, else None.

    Nearly every chunk of a stream is one; reading it directly skips the typed decode (about a
    third of the per-chunk cost). Anything else takes the typed path below.
    """
    if data.__class__ is not dict or data.get("usage") is not None:
        return None
    choices = data.get("choices")
    if choices.__class__ is not list or len(choices) != 1:
        return None
    choice = choices[0]
    if choice.__class__ is not dict or choice.get("finish_reason") is not None or choice.get("index", 0) != 0 \
            or not choice.keys() <= _PLAIN_CHOICE_KEYS:
        return None
    delta = choice.get("delta")
    if delta.__class__ is not dict or not delta.keys() <= _TEXT_DELTA_KEYS:
        return None
    content = delta.get("content")
    return content if content.__class__ is str else None


def stream_chat(events: Iterator[Any], provider: str, dialect: ChatDialect = OPENAI_DIALECT) -> Iterator[StreamChunk]:
    """Chunks from an OpenAI-style SSE stream. It is complete at `data: [DONE]`, or at a chunk whose
    `object` is the dialect's `end_object` (Perplexity's "chat.completion.done"); a provider without
    that marker (`done_marker=False`) is complete once a finish reason arrived. A stream cut short raises
    `StreamError`, never passes for a shorter answer; so does an error event (`data: {"error": …}`,
    or llama.cpp's `error:` line), and a stream with no content, no tool call and no finish reason,
    which is no answer at all."""
    require_done, end_object = dialect.done_marker, dialect.end_object
    text, reasoning = TextBuffer(), TextBuffer()  # the pieces, in blocks: memory near the text's size
    calls = ToolCallAssembler(provider)
    usage: _Usage | None = None
    finish: str | None = None
    rid = model = None
    done = False
    refused = answered = False  # a refusal with no content finishes as "refusal", as unstreamed answers do
    slots: dict[int, tuple[int, str | None]] = {}  # wire index -> (assembler key, call id)
    opened = 0
    citations: list[Citation] = []
    sources: list[Citation] = []  # Perplexity repeats its sources on every chunk: the last list holds
    safety: dict[tuple[str, str], SafetyResult] = {}
    loads, add_text = _json.loads, text.append
    for event in events:
        kind, payload, _ = event
        if payload == "[DONE]":
            done = True
            break
        if kind == "error":  # llama.cpp's `error: {json}` line (then `[DONE]`), or an `event: error`
            raise stream_error(payload, provider)
        try:
            data = loads(payload)
        except _json.JSONDecodeError:
            data = event_json(event, provider)  # raises the StreamError that names the event
        if end_object is not None and data.__class__ is dict and data.get("object") == end_object:
            done = True
        elif rid is not None and data.__class__ is dict and data.keys() <= _PLAIN_CHUNK_KEYS:
            piece = _plain_text_delta(data)  # nearly every chunk: no side fields, no typed decode
            if piece is not None:
                if piece:
                    add_text(piece)
                    yield TextChunk(piece)
                continue
        if data.__class__ is dict:
            cited, checked = _side_fields(data, "delta")
            if "citations" in data or "search_results" in data:
                sources = cited
            else:
                citations += cited
            merge_safety(safety, checked)
        if isinstance(data, dict) and data.get("error") is not None:
            raise stream_error(data, provider)
        chunk = _wire.decode(converter, data, _Chunk, provider)
        rid = rid or chunk.id
        model = model or chunk.model
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            if choice.index != 0:
                continue  # n > 1: the first choice is the answer, as in non-streamed responses
            if choice.finish_reason:
                finish = choice.finish_reason
            delta = choice.delta
            if delta is None:
                continue
            content, thinking = _content_pieces(delta.content, provider)
            piece = delta.reasoning_content or delta.reasoning or thinking
            if piece:
                reasoning.append(piece)
                yield ReasoningChunk(piece)
            answered = answered or bool(content)
            refused = refused or bool(delta.refusal)
            said = content or delta.refusal
            if said:
                text.append(said)
                yield TextChunk(said)
            for tc in delta.tool_calls or ():
                slot = slots.get(tc.index)
                if slot is None or (tc.id and slot[1] and tc.id != slot[1]):
                    # A new id at a used index is a new call: Mistral (and some servers) send each
                    # parallel call whole, every one at index 0.
                    slot = slots[tc.index] = (opened, tc.id)
                    opened += 1
                fn = tc.function
                args = fn.arguments if fn else None
                if args is not None and not isinstance(args, str):
                    args = _json.dumps(args).decode()
                calls.add(slot[0], id=tc.id, name=fn.name if fn else None, arguments=args)
    _check_finish(finish, provider, None, stream=True)
    if not done and (require_done or finish is None):
        marker = "its [DONE] marker" if require_done else "a finish reason"
        raise StreamError(f"{provider} stream ended before {marker}: the answer is incomplete",
                          provider=provider, retryable=True)
    if finish is None and not (text or reasoning or calls):
        raise StreamError(f"{provider} stream ended with no content, no tool call and no finish reason: "
                          "the server gave no answer", provider=provider, retryable=True)
    if refused and not answered:
        finish = "refusal"
    tool_calls = calls.finish()
    for call in tool_calls:
        yield ToolCallChunk(call)
    response = CompletionResponse(
        content_from("".join(text), "".join(reasoning), tool_calls), usage_from(usage), None, finish, rid, model,
        citations + sources, safety.values(),
    )
    yield FinalResponse(response)


# --- model ----------------------------------------------------------------------------------------


class ChatCompletionsModel(ModelView, BaseCompletionModel):
    """A chat model on `POST {base_url}/chat/completions`, speaking its client's `ChatDialect`
    (read once, here: `dialect`)."""

    path = "/chat/completions"

    def __init__(self, client: Any, model: str) -> None:
        super().__init__(client, model)
        self.dialect: ChatDialect = dialect_of(client)

    def _body(self, request: CompletionRequest, stream: bool) -> dict[str, Any]:
        if not isinstance(request, CompletionRequest):
            raise InvalidRequestError(f"expected a CompletionRequest, got {type(request).__name__}")
        return chat_body(self.model, request, self.provider, stream=stream, dialect=self.dialect)

    def prepare(self, request: CompletionRequest) -> Prepared:
        """The call `completion(request)` sends (a batch job's line holds the same)."""
        return Prepared(self.path, self._body(request, stream=False), parse_chat_response)

    def completion(self, request: CompletionRequest) -> CompletionResponse:
        return self._complete_prepared(self.prepare(request))

    def stream(self, request: CompletionRequest) -> StreamingCompletionResponse:
        if not self.dialect.streaming:
            raise UnsupportedFeature(f"{self.provider} does not support streaming")
        body = self._body(request, stream=True)
        return self._stream(self.path, body, partial(stream_chat, dialect=self.dialect), raw=request.keep_raw_events)
