"""Anthropic Messages API (`POST /v1/messages`): wire classes, request encoding, response decoding.

Mapping choices, in one place:

* `preamble` -> `system`; context `documents` -> native `document` blocks (plain-text source,
  `title` = document id, `context` = its properties) in a user turn ahead of the history, so
  Claude can cite them.
* Tool results go first in their user turn (the API requires it); a tool result is a
  `tool_result` block, with `is_error` only when set.
* `Reasoning` round-trips as a `thinking` block with its signature; a `redacted_thinking` block
  becomes `Reasoning("", signature=REDACTED_THINKING + data)` and goes back as itself. Unsigned
  reasoning (from another provider) cannot be sent back and is refused.
* `ToolChoice` "auto"/"none"/"tool" map to themselves, "required" to `{"type": "any"}`.
* `max_tokens` is required by the API: when the request has none, a per-model default.
* Usage: Anthropic's `input_tokens` excludes cache reads and writes. `Usage.input_tokens` is
  every prompt token (input + cache creation + cache read), so it means the same as for other
  providers; `cached_input_tokens` is the cache reads, `cache_write_tokens` the cache creation;
  `total_tokens` = input + output.
* Finish reasons are Anthropic's own (`end_turn`, `max_tokens`, `stop_sequence`, `tool_use`,
  `pause_turn`, `refusal`, …). `pause_turn` means a server tool paused a long turn: send the
  answer back as the last assistant message to let it continue. A `refusal` with text keeps the
  text; a refusal with no text at all raises `RefusalError`.
* A stream that stops (at `max_tokens`) inside a tool call's arguments raises
  `IncompleteToolCallError` carrying what did complete; a half-written call is never handed out.
  A finished tool_use block whose input is no JSON object is the model's mistake: the call keeps
  it as text (`ToolCall.invalid_arguments`), streamed or not.
* Citations on text blocks (web search results, the request's documents, search results; streamed
  as `citations_delta`) fill `response.citations` (`_annotations.anthropic_citations`: `start` and
  `end` span the citing block in `response.text`), streamed or not. Server tool blocks
  (`server_tool_use`, `web_search_tool_result`, …) are not core content: they stay in
  `raw_response` (for streams too: it is the reassembled message), as do a citation's fields that
  have no place in `Citation` (`encrypted_index`, offsets into the source).
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

import attrs

from .. import _wire
from ..completion import CompletionRequest, CompletionResponse, ToolChoice, Usage, deep_merge
from ..errors import ContentBlockedError, InvalidRequestError, ResponseDecodeError, UnsupportedFeature
from ..http.conventions import RateLimitHeaders, register_rate_limit_headers
from ..message import (
    Audio,
    DocumentContent,
    Image,
    Message,
    Part,
    Reasoning,
    Text,
    ToolCall,
    ToolResult,
)
from ..streaming import parse_tool_call
from ._annotations import anthropic_citations
from ._common import usage_of
from ._openai_wire import TextPart

# Anthropic reports each budget under its own names (resets as RFC 3339 times), read by
# `rig_sync.ratelimit.RateLimiter` beside the common `x-ratelimit-*` ones.
register_rate_limit_headers(*(
    RateLimitHeaders(f"anthropic-ratelimit-{budget}-limit", f"anthropic-ratelimit-{budget}-remaining",
                     f"anthropic-ratelimit-{budget}-reset", budget == "requests")
    for budget in ("requests", "tokens", "input-tokens", "output-tokens")))

__all__ = [
    "REDACTED_THINKING",
    "RefusalError",
    "IncompleteToolCallError",
    "default_max_tokens",
    "messages_body",
    "parse_message",
]

converter = _wire.make_converter()

# Marks a Reasoning part that holds a `redacted_thinking` block's encrypted data (signatures are
# base64, so no real signature starts with it).
REDACTED_THINKING = "redacted_thinking:"

_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
# Claude 3.5 / 3.7 and the Claude 4+ families (sonnet, opus, haiku) take 8192 output tokens by
# default here; the older Claude 3 models (and anything unknown) 4096.
_LARGE_OUTPUT = re.compile(r"claude-(?:3-[57]-|(?:opus|sonnet|haiku)-(?:[4-9]|\d\d))")


class RefusalError(ContentBlockedError):
    """Claude refused (`stop_reason: "refusal"`) without writing any text.

    `stop_details` holds what the API said about it (`category`, `explanation`) when it said
    anything; `body` is the whole message.
    """

    def __init__(self, message: str, *, provider: str | None = None, body: Any = None,
                 stop_details: dict[str, Any] | None = None) -> None:
        super().__init__(message, provider=provider, body=body, reason="refusal")
        self.stop_details = stop_details or {}


class IncompleteToolCallError(ResponseDecodeError):
    """A streamed answer stopped (e.g. at `max_tokens`) while a tool call's arguments were still
    being written. `response` holds everything that did complete (text, usage, finish reason);
    `body` the partial arguments. Raise `max_tokens` and ask again."""

    def __init__(self, message: str, *, provider: str | None = None, body: Any = None,
                 response: CompletionResponse | None = None) -> None:
        super().__init__(message, provider=provider, field="input", body=body)
        self.response = response


def default_max_tokens(model: str) -> int:
    """The `max_tokens` sent when a request sets none (the API requires the field)."""
    return 8192 if _LARGE_OUTPUT.match(model.lower()) else 4096


# --- request --------------------------------------------------------------------------------------


@attrs.define
class _Source:
    type: str
    media_type: str | None = None
    data: str | None = None
    url: str | None = None


@attrs.define
class _ImageBlock:
    source: _Source
    type: str = "image"


@attrs.define
class _DocumentBlock:
    source: _Source
    title: str | None = None
    context: str | None = None
    type: str = "document"


@attrs.define
class _ToolUseBlock:
    id: str
    name: str
    input: dict[str, Any]
    type: str = "tool_use"


@attrs.define
class _ToolResultBlock:
    tool_use_id: str
    content: str
    is_error: bool | None = None
    type: str = "tool_result"


@attrs.define
class _ThinkingBlock:
    thinking: str
    signature: str
    type: str = "thinking"


@attrs.define
class _RedactedThinkingBlock:
    data: str
    type: str = "redacted_thinking"


_Block = (TextPart | _ImageBlock | _DocumentBlock | _ToolUseBlock | _ToolResultBlock | _ThinkingBlock
          | _RedactedThinkingBlock)


@attrs.define
class _Message:
    role: str
    content: str | list[_Block]


@attrs.define
class _Tool:
    name: str
    input_schema: dict[str, Any]
    description: str | None = None


@attrs.define
class _ToolChoice:
    type: str
    name: str | None = None


@attrs.define
class _Request:
    model: str
    max_tokens: int
    messages: list[_Message]
    system: str | None = None
    temperature: float | None = None
    tools: list[_Tool] | None = None
    tool_choice: _ToolChoice | None = None
    stream: bool | None = None


def _image(part: Image, provider: str) -> _ImageBlock:
    if part.is_url:
        return _ImageBlock(_Source("url", url=part.data))
    if part.media_type not in _IMAGE_TYPES:
        raise UnsupportedFeature(f"{provider}: images must be one of {', '.join(sorted(_IMAGE_TYPES))}, "
                                 f"not {part.media_type!r}")
    # `detail` is an OpenAI rendering hint with no Anthropic counterpart; the image itself is sent whole.
    return _ImageBlock(_Source("base64", part.media_type, part.data))


def _document(part: DocumentContent, provider: str) -> _DocumentBlock:
    if part.is_url:
        return _DocumentBlock(_Source("url", url=part.data), part.filename)
    if part.media_type == "application/pdf":
        return _DocumentBlock(_Source("base64", part.media_type, part.data), part.filename)
    if part.media_type == "text/plain":
        try:
            text = base64.b64decode(part.data, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise InvalidRequestError(f"{provider}: a text/plain document must be base64 of UTF-8 text") from None
        return _DocumentBlock(_Source("text", "text/plain", text), part.filename)
    raise UnsupportedFeature(f"{provider}: documents must be PDF or plain text, not {part.media_type!r}")


def _reasoning(part: Reasoning, provider: str) -> _ThinkingBlock | _RedactedThinkingBlock:
    if part.signature is None:
        raise UnsupportedFeature(
            f"{provider}: reasoning without a signature (e.g. from another provider) cannot be sent to "
            "Claude; leave the Reasoning parts out of the history"
        )
    if part.signature.startswith(REDACTED_THINKING):
        return _RedactedThinkingBlock(part.signature[len(REDACTED_THINKING):])
    return _ThinkingBlock(part.text, part.signature)


def _block(part: Part, provider: str) -> _Block:
    if isinstance(part, Text):
        return TextPart(part.text)  # the text block is OpenAI's text part
    if isinstance(part, ToolResult):
        return _ToolResultBlock(part.id, part.content, True if part.is_error else None)
    if isinstance(part, ToolCall):
        return _ToolUseBlock(part.id, part.name, part.arguments)
    if isinstance(part, Reasoning):
        return _reasoning(part, provider)
    if isinstance(part, Image):
        return _image(part, provider)
    if isinstance(part, DocumentContent):
        return _document(part, provider)
    if isinstance(part, Audio):
        raise UnsupportedFeature(f"{provider}: Claude does not take audio input")
    raise UnsupportedFeature(f"{provider}: cannot send {type(part).__name__}")  # pragma: no cover


def _wire_messages(messages: tuple[Message, ...], provider: str) -> list[_Message]:
    out: list[_Message] = []
    for message in messages:
        parts = [p for p in message.content if not (isinstance(p, Text) and not p.text)]  # the API refuses ""
        if not parts:
            if message.role == "assistant":
                continue  # an empty answer (Claude gives one at times) says nothing; the API would refuse it
            raise InvalidRequestError(f"{provider}: a user message needs non-empty content")
        if message.role == "user":
            parts.sort(key=lambda p: not isinstance(p, ToolResult))  # tool_result blocks must open the turn
        if len(parts) == 1 and isinstance(parts[0], Text):
            out.append(_Message(message.role, parts[0].text))
        else:
            out.append(_Message(message.role, [_block(p, provider) for p in parts]))
    return out


def _documents(request: CompletionRequest) -> list[_Message]:
    if not request.documents:
        return []
    blocks: list[_Block] = [
        _DocumentBlock(
            _Source("text", "text/plain", doc.text),
            title=doc.id,
            context="".join(f"{k}: {v}\n" for k, v in doc.additional_props.items()) or None,
        )
        for doc in request.documents
    ]
    return [_Message("user", blocks)]


def _tool_choice(choice: ToolChoice) -> _ToolChoice:
    if choice.mode == "required":
        return _ToolChoice("any")
    return _ToolChoice(choice.mode, choice.name)


def messages_body(model: str, request: CompletionRequest, provider: str, *, stream: bool,
                  model_in_body: bool = True, anthropic_version: str | None = None) -> dict[str, Any]:
    """The JSON body for one `POST /v1/messages`. A cloud that names the model in the URL and the API
    version in the body (Vertex AI: `model_in_body=False, anthropic_version="vertex-2023-10-16"`)
    gets the same body otherwise."""
    if not isinstance(request, CompletionRequest):
        raise InvalidRequestError(f"expected a CompletionRequest, got {type(request).__name__}")
    if request.temperature is not None and request.temperature > 1:
        raise InvalidRequestError(f"{provider}: temperature must be from 0 to 1, not {request.temperature!r}")
    extra = request.additional_params or {}
    choice = request.tool_choice
    has_tools = bool(request.tools or extra.get("tools"))  # server tools may come in additional_params
    if choice is not None and not has_tools:
        if choice.mode in ("required", "tool"):
            raise InvalidRequestError(f"{provider}: tool_choice {choice.mode!r} needs at least one tool")
        choice = None  # "auto" / "none" without tools ask for nothing
    body = _wire.encode(
        converter,
        _Request(
            model=model,
            max_tokens=request.max_tokens or default_max_tokens(model),
            messages=[*_documents(request), *_wire_messages(request.chat_history, provider)],
            system=request.preamble or None,
            temperature=request.temperature,
            tools=[_Tool(t.name, t.parameters, t.description or None) for t in request.tools] or None,
            tool_choice=_tool_choice(choice) if choice is not None else None,
            stream=True if stream else None,
        ),
    )
    if not model_in_body:
        del body["model"]
    if anthropic_version is not None:
        body["anthropic_version"] = anthropic_version
    if extra:
        body = deep_merge(body, extra)
    return body


# --- response -------------------------------------------------------------------------------------


@_wire.lenient
@attrs.define
class _Usage:
    input_tokens: _wire.Tokens = None
    output_tokens: _wire.Tokens = None
    cache_creation_input_tokens: _wire.Tokens = None
    cache_read_input_tokens: _wire.Tokens = None


@attrs.define
class _Response:
    content: list[dict[str, Any]]
    id: str | None = None
    model: str | None = None
    stop_reason: str | None = None
    stop_details: dict[str, Any] | None = None
    usage: _Usage | None = None


@attrs.define
class _TextOut:
    text: str


@attrs.define
class _ToolUseOut:
    id: str
    name: str
    input: Any = None  # an object; anything else is the model's mistake (`parse_tool_call` keeps it)


@attrs.define
class _ThinkingOut:
    thinking: str
    signature: str | None = None


@attrs.define
class _RedactedOut:
    data: str


def usage_from(usage: _Usage | None) -> Usage:
    if usage is None:
        return Usage()
    read, written = usage.cache_read_input_tokens, usage.cache_creation_input_tokens
    # Anthropic's input_tokens leaves out cache reads and writes; ours holds them (see module doc).
    prompt = None if usage.input_tokens is None else usage.input_tokens + (written or 0) + (read or 0)
    return usage_of(prompt, usage.output_tokens, cached=read, cache_write=written)


def _part(block: dict[str, Any], provider: str) -> Text | ToolCall | Reasoning | None:
    kind = block.get("type")
    if kind == "text":
        text = _wire.decode(converter, block, _TextOut, provider).text
        return Text(text) if text else None
    if kind == "tool_use":
        call = _wire.decode(converter, block, _ToolUseOut, provider)
        return parse_tool_call(call.id, call.name, call.input, provider)
    if kind == "thinking":
        thought = _wire.decode(converter, block, _ThinkingOut, provider)
        return Reasoning(thought.thinking, thought.signature)
    if kind == "redacted_thinking":
        return Reasoning("", REDACTED_THINKING + _wire.decode(converter, block, _RedactedOut, provider).data)
    return None  # server tool blocks and future kinds: kept in raw_response


def parse_message(data: Any, provider: str) -> CompletionResponse:
    """A Messages API `message` object as a CompletionResponse (streams assemble one too)."""
    msg = _wire.decode(converter, data, _Response, provider)
    parts = [p for p in (_part(b, provider) for b in msg.content) if p is not None]
    if msg.stop_reason == "refusal" and not any(isinstance(p, Text) and p.text.strip() for p in parts):
        details = msg.stop_details or {}
        why = "; ".join(str(details[k]) for k in ("category", "explanation") if details.get(k))
        raise RefusalError(f"Claude refused to answer{f' ({why})' if why else ''} and wrote no text",
                           provider=provider, body=data, stop_details=details)
    return CompletionResponse(tuple(parts), usage_from(msg.usage), data, msg.stop_reason, msg.id, msg.model,
                              anthropic_citations(msg.content))
