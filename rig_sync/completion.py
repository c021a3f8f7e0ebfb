"""Provider-neutral completion types: request, builder, response, usage, the model protocol."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import attrs

from .errors import InvalidRequestError
from .message import AssistantContent, Message, Reasoning, Text, ToolCall

if TYPE_CHECKING:
    from .streaming import StreamingCompletionResponse

__all__ = [
    "ToolDefinition",
    "Document",
    "Usage",
    "ToolChoice",
    "CompletionRequest",
    "CompletionResponse",
    "CompletionModel",
    "BaseCompletionModel",
    "CompletionRequestBuilder",
    "deep_merge",
]


def deep_merge(base: Mapping[str, Any] | None, extra: Mapping[str, Any] | None) -> dict[str, Any]:
    """`base` updated by `extra`, merging nested dicts key by key instead of replacing them."""
    for given in (base, extra):
        if given is not None and not isinstance(given, Mapping):
            raise TypeError(f"additional params must be a mapping (a dict), not {type(given).__name__}")
    merged = dict(base or {})
    for key, value in (extra or {}).items():
        old = merged.get(key)
        # Nested dicts are copied, so later changes to the caller's dict never leak into a request.
        if isinstance(value, Mapping):
            value = deep_merge(old if isinstance(old, Mapping) else None, value)
        merged[key] = value
    return merged


def _tuple_of(items: Iterable[Any], cls: type, what: str) -> tuple[Any, ...]:
    """`items` as a tuple, or TypeError unless it is an iterable of `cls` instances."""
    if isinstance(items, (str, bytes, Mapping)) or not isinstance(items, Iterable):
        raise TypeError(f"{what} must be a list of {cls.__name__}, not {type(items).__name__}")
    out = tuple(items)
    for item in out:
        if not isinstance(item, cls):
            raise TypeError(f"{what} must hold {cls.__name__} objects, not {type(item).__name__}")
    return out


def _non_empty(_: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequestError(f"{attribute.name} must be a non-empty string")


@attrs.frozen
class ToolDefinition:
    """What the model sees of a tool: name, description and JSON Schema of its parameters."""

    name: str = attrs.field(validator=_non_empty)
    description: str = attrs.field(default="", validator=attrs.validators.instance_of(str))
    parameters: dict[str, Any] = attrs.field(
        factory=lambda: {"type": "object", "properties": {}}, validator=attrs.validators.instance_of(dict)
    )


@attrs.frozen
class Document:
    """A context document given to the model alongside the prompt."""

    id: str = attrs.field(validator=attrs.validators.instance_of(str))
    text: str = attrs.field(validator=attrs.validators.instance_of(str))
    additional_props: dict[str, str] = attrs.field(factory=dict, validator=attrs.validators.instance_of(dict))

    def render(self) -> str:
        """The document as the text block providers without native documents receive."""
        meta = "".join(f"{k}: {v}\n" for k, v in self.additional_props.items())
        return f"<file id: {self.id}>\n{meta}{self.text}\n</file>"


@attrs.frozen
class Usage:
    """Tokens used; add usages with `+` to total a multi-turn run."""

    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    cached_input_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        if not isinstance(other, Usage):
            return NotImplemented
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.total_tokens + other.total_tokens,
            self.cached_input_tokens + other.cached_input_tokens,
        )

    def __radd__(self, other: int) -> Usage:
        # `sum(usages)` starts from 0.
        if other == 0 and not isinstance(other, bool):
            return self
        return NotImplemented


@attrs.frozen
class ToolChoice:
    """"auto", "none", "required", or one named tool (`ToolChoice.tool("name")`)."""

    mode: str = attrs.field(default="auto")
    name: str | None = None

    @mode.validator
    def _check(self, _: Any, mode: str) -> None:
        if mode not in ("auto", "none", "required", "tool"):
            raise InvalidRequestError(f"tool_choice mode must be 'auto', 'none', 'required' or 'tool', not {mode!r}")
        if (mode == "tool") != (isinstance(self.name, str) and bool(self.name)):
            raise InvalidRequestError("tool_choice names a tool exactly when its mode is 'tool'")

    @classmethod
    def tool(cls, name: str) -> ToolChoice:
        return cls("tool", name)

    @classmethod
    def of(cls, value: ToolChoice | str) -> ToolChoice:
        if isinstance(value, ToolChoice):
            return value
        if value in ("auto", "none", "required"):
            return cls(value)
        if isinstance(value, str) and value:
            return cls.tool(value)
        raise InvalidRequestError(f"tool_choice must be 'auto', 'none', 'required' or a tool name, not {value!r}")


def check_temperature(_: Any, __: Any, value: float | None) -> None:
    """attrs validator (also called directly by builders): None, or a number from 0 to 2."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                              or math.isnan(value) or not 0 <= value <= 2):
        raise InvalidRequestError(f"temperature must be a number from 0 to 2, not {value!r}")


def check_max_tokens(_: Any, __: Any, value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
        raise InvalidRequestError(f"max_tokens must be a positive integer, not {value!r}")


def _check_history(_: Any, __: Any, value: tuple[Message, ...]) -> None:
    if not value:
        raise InvalidRequestError("a completion request needs at least one message (the prompt)")


def _messages(items: Iterable[Message]) -> tuple[Message, ...]:
    return _tuple_of(items, Message, "chat history")


def _documents(items: Iterable[Document]) -> tuple[Document, ...]:
    return _tuple_of(items, Document, "documents")


def _tools(items: Iterable[ToolDefinition]) -> tuple[ToolDefinition, ...]:
    return _tuple_of(items, ToolDefinition, "tools")


def _tool_choice(value: ToolChoice | str | None) -> ToolChoice | None:
    return None if value is None else ToolChoice.of(value)


def _check_preamble(_: Any, __: Any, value: str | None) -> None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"preamble must be a string, not {type(value).__name__}")


@attrs.frozen
class CompletionRequest:
    """Everything a provider needs for one completion. The last message is the prompt."""

    chat_history: tuple[Message, ...] = attrs.field(converter=_messages, validator=_check_history)
    preamble: str | None = attrs.field(default=None, validator=_check_preamble)
    documents: tuple[Document, ...] = attrs.field(default=(), converter=_documents)
    tools: tuple[ToolDefinition, ...] = attrs.field(default=(), converter=_tools)
    temperature: float | None = attrs.field(default=None, validator=check_temperature)
    max_tokens: int | None = attrs.field(default=None, validator=check_max_tokens)
    tool_choice: ToolChoice | None = attrs.field(default=None, converter=_tool_choice)
    additional_params: dict[str, Any] | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.instance_of(dict))
    )

    def messages_with_documents(self) -> tuple[Message, ...]:
        """History with the documents as a leading user message, for providers without native docs."""
        if not self.documents:
            return self.chat_history
        docs = Message.user("\n".join(d.render() for d in self.documents))
        return (docs, *self.chat_history)


@attrs.frozen
class CompletionResponse:
    """The model's answer: content parts (`choice`), token usage, and the provider's raw body."""

    choice: tuple[AssistantContent, ...]
    usage: Usage = Usage()
    raw_response: Any = attrs.field(default=None, eq=False, repr=False)
    finish_reason: str | None = None
    id: str | None = None
    model: str | None = None

    @property
    def text(self) -> str:
        """All text parts joined."""
        return "".join(p.text for p in self.choice if isinstance(p, Text))

    @property
    def tool_calls(self) -> list[ToolCall]:
        return [p for p in self.choice if isinstance(p, ToolCall)]

    @property
    def reasoning(self) -> str:
        return "".join(p.text for p in self.choice if isinstance(p, Reasoning))

    def message(self) -> Message:
        """The answer as an assistant message, to append to a chat history."""
        return Message("assistant", self.choice or (Text(""),))


@runtime_checkable
class CompletionModel(Protocol):
    """What composition (agents, extractors, pipelines) needs of any provider's chat model."""

    provider: str
    model: str

    def completion(self, request: CompletionRequest) -> CompletionResponse: ...

    def stream(self, request: CompletionRequest) -> StreamingCompletionResponse: ...

    def completion_request(self, prompt: str | Message) -> CompletionRequestBuilder: ...


class BaseCompletionModel:
    """Shared half of every provider's completion model: the request builder entry point."""

    provider: str
    model: str

    def completion(self, request: CompletionRequest) -> CompletionResponse:
        raise NotImplementedError

    def stream(self, request: CompletionRequest) -> StreamingCompletionResponse:
        raise NotImplementedError

    def completion_request(self, prompt: str | Message) -> CompletionRequestBuilder:
        """Start a request with `prompt` as the last user message."""
        return CompletionRequestBuilder(self, prompt)


def _prompt_message(prompt: str | Message) -> Message:
    if isinstance(prompt, Message):
        return prompt
    if not isinstance(prompt, str):
        raise TypeError(f"prompt must be str or Message, not {type(prompt).__name__}")
    if not prompt.strip():
        raise InvalidRequestError("prompt is empty; give the model something to answer")
    return Message.user(prompt)


class CompletionRequestBuilder:
    """Fluent builder: `model.completion_request("Hi").preamble("…").temperature(0.2).send()`."""

    def __init__(self, model: CompletionModel, prompt: str | Message) -> None:
        self._model = model
        self._prompt = _prompt_message(prompt)
        self._preamble: str | None = None
        self._history: list[Message] = []
        self._documents: list[Document] = []
        self._tools: list[ToolDefinition] = []
        self._temperature: float | None = None
        self._max_tokens: int | None = None
        self._tool_choice: ToolChoice | None = None
        self._params: dict[str, Any] | None = None

    # Each setter checks its argument at once, so a mistake points at the call that made it.

    def preamble(self, preamble: str) -> CompletionRequestBuilder:
        _check_preamble(None, None, preamble)
        self._preamble = preamble
        return self

    def message(self, message: Message) -> CompletionRequestBuilder:
        """Add a message of history (sent before the prompt)."""
        return self.messages([message])

    def messages(self, messages: Iterable[Message]) -> CompletionRequestBuilder:
        self._history.extend(_messages(messages))
        return self

    def document(self, document: Document) -> CompletionRequestBuilder:
        return self.documents([document])

    def documents(self, documents: Iterable[Document]) -> CompletionRequestBuilder:
        self._documents.extend(_documents(documents))
        return self

    def tool(self, tool: ToolDefinition) -> CompletionRequestBuilder:
        return self.tools([tool])

    def tools(self, tools: Iterable[ToolDefinition]) -> CompletionRequestBuilder:
        self._tools.extend(_tools(tools))
        return self

    def temperature(self, temperature: float | None) -> CompletionRequestBuilder:
        check_temperature(None, None, temperature)
        self._temperature = temperature
        return self

    def max_tokens(self, max_tokens: int | None) -> CompletionRequestBuilder:
        check_max_tokens(None, None, max_tokens)
        self._max_tokens = max_tokens
        return self

    def tool_choice(self, choice: ToolChoice | str) -> CompletionRequestBuilder:
        self._tool_choice = ToolChoice.of(choice)
        return self

    def additional_params(self, params: Mapping[str, Any]) -> CompletionRequestBuilder:
        """Provider-specific body fields, deep-merged into what was given before."""
        self._params = deep_merge(self._params, params)
        return self

    def build(self) -> CompletionRequest:
        return CompletionRequest(
            chat_history=(*self._history, self._prompt),
            preamble=self._preamble,
            documents=self._documents,
            tools=self._tools,
            temperature=self._temperature,
            max_tokens=self._max_tokens,
            tool_choice=self._tool_choice,
            additional_params=self._params,
        )

    def send(self) -> CompletionResponse:
        return self._model.completion(self.build())

    def stream(self) -> StreamingCompletionResponse:
        return self._model.stream(self.build())
