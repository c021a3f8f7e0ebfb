"""Request pieces in OpenAI's chat shape, for every format that copies it: OpenAI Chat Completions
(and its compatible providers), Cohere v2 chat, Ollama's tool definitions, Anthropic's text block;
and `stream_error`, the error these formats' servers send mid-stream, in any of their shapes.

Only encoding lives here; each format keeps its own response classes, which differ.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import attrs

from .. import _json
from ..completion import ToolDefinition
from ..errors import APIError, StreamError, overflows_context, status_error
from ..message import Image, Message, Part, Text, ToolResult

__all__ = ["ImageURL", "TextPart", "ImagePart", "Function", "ToolCall", "ChatMessage", "FunctionDef", "Tool",
           "image_part", "tool_calls", "tools", "user_messages", "stream_error"]


@attrs.define
class ImageURL:
    url: str
    detail: str | None = None


@attrs.define
class TextPart:
    text: str
    type: str = "text"


@attrs.define
class ImagePart:
    image_url: ImageURL
    type: str = "image_url"


@attrs.define
class Function:
    name: str
    arguments: str  # JSON text


@attrs.define
class ToolCall:
    id: str
    function: Function
    type: str = "function"


@attrs.define
class ChatMessage:
    role: str
    content: str | list[Any] | None = None  # text, or a list of the format's part classes
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None


@attrs.define
class FunctionDef:
    name: str
    description: str
    parameters: dict[str, Any]


@attrs.define
class Tool:
    function: FunctionDef
    type: str = "function"


M = TypeVar("M", bound=ChatMessage)
P = TypeVar("P")


def image_part(image: Image) -> ImagePart:
    """An image as a URL (a data URL for inline bytes)."""
    return ImagePart(ImageURL(image.data_url(), image.detail))


def tool_calls(message: Message) -> list[ToolCall]:
    """The assistant's tool calls, their arguments as JSON text."""
    return [ToolCall(c.id, Function(c.name, _json.dumps(c.arguments).decode())) for c in message.tool_calls]


def tools(definitions: Iterable[ToolDefinition]) -> list[Tool]:
    return [Tool(FunctionDef(t.name, t.description, t.parameters)) for t in definitions]


def user_messages(message: Message, part: Callable[[Part], P], cls: type[M]) -> list[M]:
    """A user message as `cls` messages: each tool result a role "tool" message (first, as the
    API wants them right after the calls), then the rest as one user message, plain text when it
    is a single text, else a list of `part(p)`."""
    out = [cls("tool", r.content, tool_call_id=r.id) for r in message.content if isinstance(r, ToolResult)]
    rest = [p for p in message.content if not isinstance(p, ToolResult)]
    if len(rest) == 1 and isinstance(rest[0], Text):
        out.append(cls("user", rest[0].text))
    elif rest:
        out.append(cls("user", [part(p) for p in rest]))
    return out


# --- errors sent mid-stream -----------------------------------------------------------------------


def _word(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _error_parts(data: Any) -> tuple[str | None, str]:
    """(code, message) of an error a server sent mid-stream, whichever shape it took:
    `{"error": {"message", "code" | "type"}}` (Chat Completions, llama.cpp), `{"error": "text"}`,
    `{"message": …}` (Cohere's error body), the Responses API's `{"type": "error", "code",
    "message"}` (as documented) or `{"type": "error", "error": {…}}` (as sent), a
    `response.failed` event's `response.error`, or plain text."""
    if isinstance(data, dict) and data.get("type") == "response.failed" and isinstance(data.get("response"), dict):
        data = data["response"]
    inner = data.get("error") if isinstance(data, dict) else None
    if isinstance(inner, dict) or _word(inner):
        data = inner
    if not isinstance(data, dict):
        return None, str(data)[:500]
    kind = data.get("type")
    code = _word(data.get("code")) or (None if kind in ("error", "response.failed") else _word(kind))
    said = _word(data.get("message")) or _word(data.get("detail"))
    return code, said[:2000] if said else f"no message given: {_json.dumps(data).decode()[:300]}"


def stream_error(data: Any, provider: str) -> APIError:
    """The `StreamError` for an error a server sent mid-stream (`data`: the event's JSON value, or
    its data text, read as JSON where it is): its message says what the server said, and its code
    where it gave one. Not retryable: unlike Anthropic's, these error events do not say whether the
    same request may succeed again. A prompt too long for the context (llama.cpp says so in its
    stream) is `ContextWindowExceededError`, as it is unstreamed."""
    if isinstance(data, str):
        try:
            data = _json.loads(data)
        except _json.JSONDecodeError:
            pass
    code, said = _error_parts(data)
    if overflows_context(f"{code or ''} {said}"):
        return status_error(400, said, provider=provider, body=data, code=str(code) if code else None)
    label = f" ({code})" if code else ""
    return StreamError(f"{provider} reported an error mid-stream{label}: {said}", provider=provider, body=data)
