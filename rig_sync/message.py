"""Provider-neutral chat messages and their content parts."""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import Any, Literal, Union

import attrs

from .errors import InvalidRequestError

__all__ = [
    "Text",
    "Image",
    "Audio",
    "DocumentContent",
    "ToolCall",
    "ToolResult",
    "Reasoning",
    "UserContent",
    "AssistantContent",
    "Message",
]


@attrs.frozen
class Text:
    text: str = attrs.field(validator=attrs.validators.instance_of(str))


def _b64(data: bytes | str) -> str:
    return base64.b64encode(data).decode("ascii") if isinstance(data, bytes) else data


@attrs.frozen
class Image:
    """An image by URL, or inline as base64 (`from_bytes`)."""

    data: str
    media_type: str | None = None
    detail: str | None = None
    is_url: bool = False

    @classmethod
    def from_url(cls, url: str, detail: str | None = None) -> Image:
        return cls(url, None, detail, True)

    @classmethod
    def from_bytes(cls, data: bytes | str, media_type: str = "image/png", detail: str | None = None) -> Image:
        return cls(_b64(data), media_type, detail, False)

    def data_url(self) -> str:
        """A URL for the image: itself, or a `data:` URL for inline bytes."""
        return self.data if self.is_url else f"data:{self.media_type or 'image/png'};base64,{self.data}"


@attrs.frozen
class Audio:
    """Inline audio as base64, with its format (e.g. "wav", "mp3")."""

    data: str
    format: str = "wav"

    @classmethod
    def from_bytes(cls, data: bytes, format: str = "wav") -> Audio:
        return cls(_b64(data), format)


@attrs.frozen
class DocumentContent:
    """A file the model should read (e.g. a PDF), inline as base64 or by URL."""

    data: str
    media_type: str = "application/pdf"
    filename: str | None = None
    is_url: bool = False

    @classmethod
    def from_bytes(cls, data: bytes, media_type: str = "application/pdf", filename: str | None = None) -> DocumentContent:
        return cls(_b64(data), media_type, filename, False)


@attrs.frozen
class ToolCall:
    """The model asks for `name(**arguments)`. `call_id` is the provider's second id, if any."""

    id: str
    name: str
    arguments: dict[str, Any] = attrs.field(factory=dict)
    call_id: str | None = None


@attrs.frozen
class ToolResult:
    """The answer to the tool call with id `id`, as text."""

    id: str
    content: str
    call_id: str | None = None
    is_error: bool = False


@attrs.frozen
class Reasoning:
    """The model's visible reasoning (thinking) text; `signature` where the provider signs it."""

    text: str
    signature: str | None = None


UserContent = Union[Text, Image, Audio, DocumentContent, ToolResult]
AssistantContent = Union[Text, ToolCall, Reasoning]
Part = Union[Text, Image, Audio, DocumentContent, ToolResult, ToolCall, Reasoning]
_USER_TYPES = (Text, Image, Audio, DocumentContent, ToolResult)
_ASSISTANT_TYPES = (Text, ToolCall, Reasoning)


def _content(value: str | Part | Iterable[str | Part], allowed: tuple[type, ...], role: str) -> tuple[Part, ...]:
    if isinstance(value, str):
        items: list[Any] = [Text(value)]
    elif isinstance(value, allowed):
        items = [value]
    elif isinstance(value, Iterable):
        items = [Text(v) if isinstance(v, str) else v for v in value]
    else:
        raise TypeError(f"{role} message content must be text or content parts, not {type(value).__name__}")
    if not items:
        raise InvalidRequestError(f"a {role} message needs at least one content part")
    for item in items:
        if not isinstance(item, allowed):
            names = ", ".join(t.__name__ for t in allowed)
            raise TypeError(f"{role} message content may hold {names}, not {type(item).__name__}")
    return tuple(items)


@attrs.frozen
class Message:
    """One chat turn: a role ("user" or "assistant") and its content parts.

    Tool results travel in user messages (`Message.tool_result`), as in Rig.
    """

    role: Literal["user", "assistant"]
    content: tuple[Part, ...]

    @classmethod
    def user(cls, content: str | UserContent | Iterable[str | UserContent]) -> Message:
        return cls("user", _content(content, _USER_TYPES, "user"))

    @classmethod
    def assistant(cls, content: str | AssistantContent | Iterable[str | AssistantContent]) -> Message:
        return cls("assistant", _content(content, _ASSISTANT_TYPES, "assistant"))

    @classmethod
    def tool_result(cls, id: str, text: str, call_id: str | None = None, is_error: bool = False) -> Message:
        return cls("user", (ToolResult(id, text, call_id, is_error),))

    @property
    def text(self) -> str:
        """The text parts joined (tool calls and media are left out)."""
        return "".join(p.text for p in self.content if isinstance(p, Text))

    @property
    def tool_calls(self) -> list[ToolCall]:
        return [p for p in self.content if isinstance(p, ToolCall)]
