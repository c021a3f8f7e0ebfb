"""Provider-neutral completion types: request, builder, response, usage, the model protocol."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

import attrs

from ._chat_dicts import convert
from ._checks import number, whole
from .errors import InvalidMessageError, InvalidRequestError, InvalidTypeError
from .message import AssistantContent, Message, MessageLike, Reasoning, Text, ToolCall

if TYPE_CHECKING:
    from .streaming import StreamingCompletionResponse

__all__ = [
    "ToolDefinition",
    "Document",
    "Usage",
    "Citation",
    "SafetyResult",
    "ToolChoice",
    "CompletionRequest",
    "CompletionResponse",
    "CompletionModel",
    "BaseCompletionModel",
    "CompletionRequestBuilder",
    "Prompt",
    "deep_merge",
]

Prompt = str | Message | Mapping[str, Any] | Sequence[MessageLike]
"""What a request starts from: a text, one message (a `Message` or an OpenAI-style dict), or a
whole conversation in order, whose last message is the prompt."""

_EXCERPT = 60  # characters of a text a repr shows


def _cut(text: str, limit: int = _EXCERPT) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def excerpt(text: str | None, limit: int = _EXCERPT) -> str:
    """`text` cut to `limit` characters and quoted, for a repr."""
    return "None" if text is None else repr(_cut(text, limit))


def model_label(model: object) -> str:
    """`provider:model` of any completion model, for reprs and messages."""
    return f"{getattr(model, 'provider', '?')}:{getattr(model, 'model', '?')}"


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


def _add(a: Any, b: Any) -> Any:
    """Sum of two optional figures: what is known adds up; None only when neither is known."""
    return b if a is None else a if b is None else a + b


@attrs.frozen(repr=False)
class Usage:
    """What one answer used, as the provider reported it; add usages with `+` (or `sum()`) to
    total a multi-turn run.

    A figure the provider did not report is None, never 0: `Usage()` is "nothing reported" (a
    stream without usage, a provider that never counts), and a count that is no plausible number
    (negative, fractional, NaN, above 2**53-1) reads as not reported too. A sum counts what was
    reported and is None only where no addend reported that figure.

    The parts add up the same way for every provider:
    `input_tokens + output_tokens == total_tokens` (where the provider's own total says so);
    `cached_input_tokens` (read from the prompt cache) and `cache_write_tokens` (written to it)
    are parts of `input_tokens`; `reasoning_tokens` (thinking) are part of `output_tokens`, even
    where the wire counts them apart (Gemini, xAI). `cost_usd` is what the provider says the
    answer cost, in US dollars, where it says so (OpenRouter, Perplexity, xAI).
    """

    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    cached_input_tokens: int | None = None
    reasoning_tokens: int | None = None
    cache_write_tokens: int | None = None
    cost_usd: float | None = None

    def __add__(self, other: Usage | None) -> Usage:
        if other is None:
            return self
        if not isinstance(other, Usage):
            return NotImplemented
        return Usage(*(_add(a, b) for a, b in zip(attrs.astuple(self, recurse=False),
                                                    attrs.astuple(other, recurse=False), strict=True)))

    def __radd__(self, other: int | None) -> Usage:
        # `sum(usages)` starts from 0; None (no usage at all) adds nothing.
        if other is None or (other == 0 and not isinstance(other, bool)):
            return self
        return NotImplemented

    @property
    def reported(self) -> bool:
        """Whether the provider reported any figure at all."""
        return self != _UNREPORTED

    def __repr__(self) -> str:
        # Only what was reported: a notebook line, and `Usage()` reads as "nothing reported".
        shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in attrs.fields(Usage)
                          if getattr(self, f.name) is not None)
        return f"Usage({shown})"


_UNREPORTED = Usage()


@attrs.frozen
class Citation:
    """A source the answer rests on: where it is (`url`, or `document_id` for a document given
    with the request), its `title`, the passage quoted from it (`cited_text`), and the span of
    the answer's text that cites it (`start`, `end`: character offsets into `response.text`,
    where the provider says). Fields a provider does not send are None."""

    url: str | None = None
    title: str | None = None
    document_id: str | None = None
    cited_text: str | None = None
    start: int | None = None
    end: int | None = None


@attrs.frozen
class SafetyResult:
    """One safety check the provider reports on the prompt or the answer (`target`): its
    `category` in the provider's words ("hate", "HARM_CATEGORY_HARASSMENT", "jailbreak"), whether
    the provider `blocked` (filtered) content for it, and the `level` it found ("safe", "low",
    "NEGLIGIBLE", "HIGH", "detected", …) where it says; `message` is the provider's explanation."""

    category: str
    blocked: bool = False
    level: str | None = None
    target: str = "answer"
    message: str | None = None


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
    if value is not None:
        number(value, "temperature", at_least=0, at_most=2)


def check_max_tokens(_: Any, __: Any, value: int | None) -> None:
    if value is not None:
        whole(value, "max_tokens", minimum=1)


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
    # Not sent: a stream of this request keeps the provider's events (`StreamingCompletionResponse.raw_events`).
    keep_raw_events: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))

    def messages_with_documents(self) -> tuple[Message, ...]:
        """History with the documents as a leading user message, for providers without native docs."""
        if not self.documents:
            return self.chat_history
        docs = Message.user("\n".join(d.render() for d in self.documents))
        return (docs, *self.chat_history)


def _citations(items: Iterable[Citation]) -> tuple[Citation, ...]:
    return _tuple_of(items, Citation, "citations")


def _safety(items: Iterable[SafetyResult]) -> tuple[SafetyResult, ...]:
    return _tuple_of(items, SafetyResult, "safety")


@attrs.frozen
class CompletionResponse:
    """The model's answer: content parts (`choice`), token usage, and the provider's raw body."""

    choice: tuple[AssistantContent, ...]
    usage: Usage = Usage()  # Usage() when the provider reported none: every figure None
    raw_response: Any = attrs.field(default=None, eq=False, repr=False)
    finish_reason: str | None = None
    id: str | None = None
    model: str | None = None
    citations: tuple[Citation, ...] = attrs.field(default=(), converter=_citations)
    safety: tuple[SafetyResult, ...] = attrs.field(default=(), converter=_safety)

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

    def __repr__(self) -> str:
        # Short enough for a notebook cell: excerpts, never the raw body.
        fields = [f"text={excerpt(self.text)}"]
        if self.tool_calls:
            calls = ", ".join(f"{c.name}({_cut(repr(c.arguments), 40)})" for c in self.tool_calls[:5])
            fields.append(f"tool_calls=[{calls}{', …' if len(self.tool_calls) > 5 else ''}]")
        if self.reasoning:
            fields.append(f"reasoning={excerpt(self.reasoning)}")
        fields.append(f"usage={self.usage!r}")
        fields.extend(f"{name}={value!r}" for name, value in
                      (("finish_reason", self.finish_reason), ("model", self.model)) if value is not None)
        fields.extend(f"{name}=[{len(value)}]" for name, value in
                      (("citations", self.citations), ("safety", self.safety)) if value)
        return f"CompletionResponse({', '.join(fields)})"


@runtime_checkable
class CompletionModel(Protocol):
    """What composition (agents, extractors, pipelines) needs of any provider's chat model."""

    provider: str
    model: str

    def completion(self, request: CompletionRequest) -> CompletionResponse: ...

    def stream(self, request: CompletionRequest) -> StreamingCompletionResponse: ...

    def completion_request(self, prompt: Prompt) -> CompletionRequestBuilder: ...


class BaseCompletionModel:
    """Shared half of every provider's completion model: the request builder entry point."""

    provider: str
    model: str

    def completion(self, request: CompletionRequest) -> CompletionResponse:
        raise NotImplementedError

    def stream(self, request: CompletionRequest) -> StreamingCompletionResponse:
        raise NotImplementedError

    def completion_request(self, prompt: Prompt) -> CompletionRequestBuilder:
        """Start a request; nothing is sent until its `.send()` or `.stream()`.

        `prompt` is a text, one message (a `Message` or an OpenAI-style dict), or a whole
        conversation in order, whose last message is the prompt: a list of Messages and/or dicts
        such as `[{"role": "system", "content": "Be brief"}, {"role": "user", "content": "Hi"}]`.
        System and developer messages become the preamble; a run of tool messages becomes one
        message of tool results.

        Returns a `CompletionRequestBuilder`. Raises `InvalidRequestError` for an empty prompt and
        its subclass `InvalidMessageError`, naming the message and field, for a message that does
        not fit (an unknown role, missing content, tool arguments that are not a JSON object, …).
        """
        return CompletionRequestBuilder(self, prompt)


def join_preamble(*parts: str | None) -> str | None:
    """The non-empty parts of a preamble joined by blank lines; None if there are none."""
    return "\n\n".join(p for p in parts if p) or None


def split_prompt(prompt: Prompt) -> tuple[list[str], list[Message]]:
    """(system texts, messages) of a prompt; the last message is the one to answer."""
    if isinstance(prompt, str):
        if not prompt.strip():
            raise InvalidRequestError("prompt is empty; give the model something to answer")
        return [], [Message.user(prompt)]
    if isinstance(prompt, (Message, Mapping)):
        system, messages = convert(prompt, "prompt", single=True)
    elif isinstance(prompt, Sequence) and not isinstance(prompt, (bytes, bytearray)):
        if not prompt:
            raise InvalidMessageError('the conversation is an empty list; its last message is the prompt, '
                                      'e.g. [{"role": "user", "content": "Hi"}]')
        system, messages = convert(prompt, "messages")
    else:
        raise InvalidMessageError(f"prompt must be a str, a Message, a message dict like "
                                  f'{{"role": "user", "content": "Hi"}}, or a list of them (a conversation '
                                  f"whose last message is the prompt), not {type(prompt).__name__}")
    if not messages:
        raise InvalidMessageError("the prompt holds only system messages; add the message to answer, "
                                  'e.g. {"role": "user", "content": "Hi"}')
    return system, messages


def prompt_message(prompt: str | MessageLike) -> Message:
    """The one message a prompt stands for (a text, a Message or a message dict)."""
    return split_prompt(prompt)[1][-1]


def _describe(message: Message) -> str:
    """A message's text excerpt, or the kinds of its parts when it has no text (a tool result)."""
    if message.text:
        return excerpt(message.text)
    return "[" + ", ".join(sorted({type(p).__name__ for p in message.content})) + "]"


S = TypeVar("S", bound="RequestSettings")


class RequestSettings:
    """The settings every request builder shares (`CompletionRequestBuilder`, `AgentBuilder`,
    `ExtractorBuilder`), spelt and checked the same way in each. Each setter checks its argument
    at once, so a mistake points at the call that made it."""

    _preamble: str | None = None
    _temperature: float | None = None
    _max_tokens: int | None = None
    _params: dict[str, Any] | None = None

    def preamble(self: S, preamble: str) -> S:
        """The system prompt; replaces one given before (`append_preamble` adds to it)."""
        _check_text(preamble, "preamble")
        self._preamble = preamble
        return self

    def append_preamble(self: S, text: str) -> S:
        """Add a line to the system prompt."""
        _check_text(text, "append_preamble text")
        self._preamble = f"{self._preamble}\n{text}" if self._preamble else text
        return self

    def temperature(self: S, temperature: float | None) -> S:
        """Sampling temperature, 0 to 2 (None: the provider's default)."""
        check_temperature(None, None, temperature)
        self._temperature = temperature
        return self

    def max_tokens(self: S, max_tokens: int | None) -> S:
        """Most tokens of the answer (None: the provider's default)."""
        check_max_tokens(None, None, max_tokens)
        self._max_tokens = max_tokens
        return self

    def additional_params(self: S, params: Mapping[str, Any]) -> S:
        """Provider-specific body fields, deep-merged into what was given before."""
        self._params = deep_merge(self._params, params)
        return self


def _check_text(value: Any, what: str) -> None:
    if not isinstance(value, str):
        raise InvalidTypeError(f"{what} must be a string, not {type(value).__name__}")


class CompletionRequestBuilder(RequestSettings):
    """Fluent builder: `model.completion_request("Hi").preamble("…").temperature(0.2).send()`.

    Nothing is sent until `.send()` (the whole answer) or `.stream()` (pieces as they come).
    The messages sent are, in order: those given with `.message()` / `.messages()` (earlier
    turns), then those given to `completion_request`, whose last one is the prompt.
    """

    def __init__(self, model: CompletionModel, prompt: Prompt) -> None:
        self._model = model
        self._system, self._conversation = split_prompt(prompt)
        self._history: list[Message] = []
        self._history_system: list[str] = []
        self._documents: list[Document] = []
        self._tools: list[ToolDefinition] = []
        self._tool_choice: ToolChoice | None = None

    # `.preamble()` sets the system prompt. System (and developer) messages are not replaced but
    # follow it, each after a blank line: the preamble sent is this text, then the system messages
    # given with `.messages()`, then those given to `completion_request`, in order.

    def message(self, message: MessageLike) -> CompletionRequestBuilder:
        """Add one earlier turn (a `Message` or a message dict); see `messages`."""
        self._add_history(convert(message, "message", single=True))
        return self

    def messages(self, messages: Iterable[MessageLike]) -> CompletionRequestBuilder:
        """Add earlier turns of the conversation: `Message`s or OpenAI-style dicts.

        They are sent before the messages given to `completion_request` (so before the prompt),
        after those of earlier `.message()` / `.messages()` calls. To give a conversation in its
        natural order instead, pass the whole list to `completion_request`. System messages join
        the preamble (see `preamble`).
        """
        self._add_history(convert(messages, "messages"))
        return self

    def _add_history(self, conversation: tuple[list[str], list[Message]]) -> None:
        system, messages = conversation
        self._history_system.extend(system)
        self._history.extend(messages)

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

    def tool_choice(self, choice: ToolChoice | str) -> CompletionRequestBuilder:
        self._tool_choice = ToolChoice.of(choice)
        return self

    def _joined_preamble(self) -> str | None:
        system = (*self._history_system, *self._system)
        return join_preamble(self._preamble, *system) if system else self._preamble

    def build(self) -> CompletionRequest:
        """The `CompletionRequest` as it stands (nothing is sent)."""
        return CompletionRequest(
            chat_history=(*self._history, *self._conversation),
            preamble=self._joined_preamble(),
            documents=self._documents,
            tools=self._tools,
            temperature=self._temperature,
            max_tokens=self._max_tokens,
            tool_choice=self._tool_choice,
            additional_params=self._params,
        )

    def send(self) -> CompletionResponse:
        """Send the request and wait for the whole answer.

        Returns a `CompletionResponse` (`.text`, `.tool_calls`, `.usage`, `.message()` to append
        to a history, `.raw_response`). Raises, all `rig_sync.errors.RigError`s:
        `InvalidRequestError` for a request refused before sending; for an HTTP error after the
        retries, the `APIStatusError` kind of its status (`AuthenticationError`, `RateLimitError`,
        `BadRequestError`, …); `APIConnectionError` (`APITimeoutError`) when no answer came;
        `ResponseDecodeError` for an answer of the wrong shape; `UnsupportedFeature` for content
        the provider cannot take.
        """
        return self._model.completion(self.build())

    def stream(self, *, raw: bool = False) -> StreamingCompletionResponse:
        """Send the request and return at once a `StreamingCompletionResponse`, read as it arrives.

        Iterate it for `TextChunk`, `ReasoningChunk` and `ToolCallChunk` pieces, then one
        `FinalResponse`; `.text_stream()` yields the text alone, and `.response` is the whole
        `CompletionResponse` at the end. Use it in a `with` block to release the connection if you
        stop early. Raises what `send()` raises, before the first chunk; a stream that breaks off
        raises `StreamError` while you iterate.

        `raw=True` keeps the provider's payload, as `send()` keeps `raw_response`: every event's
        JSON value as received, in order, on the stream's `raw_events` and as the final response's
        `raw_response` (off by default: it costs a second decoding of every event).
        """
        request = self.build()
        return self._model.stream(attrs.evolve(request, keep_raw_events=True) if raw else request)

    def __repr__(self) -> str:
        # Says what it holds and that it has not been sent: a forgotten `.send()` shows here.
        count = len(self._history) + len(self._conversation)
        fields = [model_label(self._model), f"{count} message{'' if count == 1 else 's'}",
                  f"prompt={_describe(self._conversation[-1])}"]
        preamble = self._joined_preamble()
        if preamble:
            fields.append(f"preamble={excerpt(preamble, 40)}")
        if self._documents:
            fields.append(f"documents={len(self._documents)}")
        if self._tools:
            fields.append(f"tools={[t.name for t in self._tools]}")
        if self._tool_choice is not None:
            fields.append(f"tool_choice={self._tool_choice.name or self._tool_choice.mode!r}")
        fields.extend(f"{name}={value!r}" for name, value in
                      (("temperature", self._temperature), ("max_tokens", self._max_tokens)) if value is not None)
        if self._params:
            fields.append(f"additional_params={sorted(self._params)}")  # keys only: values may be secret
        return f"<CompletionRequestBuilder {', '.join(fields)}; not sent: call .send() or .stream()>"
