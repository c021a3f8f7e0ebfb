"""Provider-neutral chat messages and their content parts."""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import attrs

from .errors import InvalidMessageError

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
    "MessageLike",
]


_str = attrs.validators.instance_of(str)
_opt_str = attrs.validators.optional(_str)


@attrs.frozen
class Text:
    text: str = attrs.field(validator=_str)


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
    def from_bytes(
        cls, data: bytes, media_type: str = "application/pdf", filename: str | None = None
    ) -> DocumentContent:
        return cls(_b64(data), media_type, filename, False)


@attrs.frozen
class ToolCall:
    """The model asks for `name(**arguments)`. `call_id` is the provider's second id, if any.

    `invalid_arguments` is set when the model's arguments were not a JSON object (cut off, a bare
    string, a list): it holds them as sent, and `arguments` is empty. The answer still stands; an
    agent answers such a call with an error result the model can correct.
    """

    id: str = attrs.field(validator=_str)
    name: str = attrs.field(validator=_str)
    arguments: dict[str, Any] = attrs.field(factory=dict, validator=attrs.validators.instance_of(dict))
    call_id: str | None = attrs.field(default=None, validator=_opt_str)
    invalid_arguments: str | None = attrs.field(default=None, validator=_opt_str)


@attrs.frozen
class ToolResult:
    """The answer to the tool call with id `id`, as text."""

    id: str = attrs.field(validator=_str)
    content: str = attrs.field(validator=_str)
    call_id: str | None = attrs.field(default=None, validator=_opt_str)
    is_error: bool = False


def _strings(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(items)


def _shown_length(value: str | None) -> str:
    return "None" if value is None else f"<{len(value)} characters>"


@attrs.frozen
class Reasoning:
    """The model's visible reasoning (thinking) text; `signature` where the provider signs it.

    Reasoning a provider keeps so that it can be sent back (OpenAI Responses reasoning items) also
    has its `id`, its `summary` parts as the provider split them (`text` is them joined), and
    `encrypted`: the reasoning itself, opaque and encrypted, for a provider that stores nothing
    between requests to read back.
    """

    text: str = attrs.field(validator=_str)
    signature: str | None = attrs.field(default=None, validator=_opt_str)
    id: str | None = attrs.field(default=None, validator=_opt_str, kw_only=True)
    encrypted: str | None = attrs.field(default=None, validator=_opt_str, kw_only=True, repr=_shown_length)
    summary: tuple[str, ...] = attrs.field(default=(), converter=_strings, kw_only=True,
                                           validator=attrs.validators.deep_iterable(_str))


UserContent = Text | Image | Audio | DocumentContent | ToolResult
AssistantContent = Text | ToolCall | Reasoning
Part = Text | Image | Audio | DocumentContent | ToolResult | ToolCall | Reasoning
_PART_TYPES = (Text, Image, Audio, DocumentContent, ToolResult, ToolCall, Reasoning)
_ALLOWED: dict[str, tuple[type, ...]] = {
    "user": (Text, Image, Audio, DocumentContent, ToolResult),
    "assistant": (Text, ToolCall, Reasoning),
}


def _content(value: str | Part | Iterable[str | Part]) -> tuple[Part, ...]:
    """Content parts as a tuple; a bare string is one Text part."""
    if isinstance(value, str):
        return (Text(value),)
    if isinstance(value, _PART_TYPES):
        return (value,)
    # A dict or bytes is iterable too, but never meant as a list of parts.
    if isinstance(value, (Mapping, bytes, bytearray)) or not isinstance(value, Iterable):
        raise InvalidMessageError(f"message content must be text or content parts, not {type(value).__name__}")
    return tuple(Text(v) if isinstance(v, str) else v for v in value)


def _check_role(_: Any, __: Any, role: str) -> None:
    if role not in _ALLOWED:
        raise InvalidMessageError(f"message role must be 'user' or 'assistant', not {role!r}; a system prompt is "
                                  "the request's preamble")


def _check_content(message: Message, _: Any, content: tuple[Part, ...]) -> None:
    role = message.role
    if not content:
        raise InvalidMessageError(f"a {role} message needs at least one content part")
    allowed = _ALLOWED[role]
    for item in content:
        if not isinstance(item, allowed):
            names = ", ".join(t.__name__ for t in allowed)
            raise InvalidMessageError(f"{role} message content may hold {names}, not {type(item).__name__}")


@attrs.frozen
class Message:
    """One chat turn: a role ("user" or "assistant") and its content parts.

    Tool results travel in user messages (`Message.tool_result`), as in Rig.
    """

    role: Literal["user", "assistant"] = attrs.field(validator=_check_role)
    content: tuple[Part, ...] = attrs.field(converter=_content, validator=_check_content)

    @classmethod
    def user(cls, content: str | UserContent | Iterable[str | UserContent]) -> Message:
        return cls("user", content)

    @classmethod
    def assistant(cls, content: str | AssistantContent | Iterable[str | AssistantContent]) -> Message:
        return cls("assistant", content)

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


MessageLike = Message | Mapping[str, Any]
"""A `Message`, or an OpenAI-style message dict such as `{"role": "user", "content": "Hi"}`."""
