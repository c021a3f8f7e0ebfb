"""Agents: a model plus preamble, context documents and tools, run as a multi-turn tool loop.

    agent = (AgentBuilder(model).preamble("You are a calculator.").tool(add).build())
    agent.prompt("What is 2+3?")            # the model calls add, gets "5", answers in text

Each turn the model either answers in text (the loop ends) or asks for tools. The agent runs the
calls of one turn in parallel threads, appends the assistant message and one user message of
tool results (in call order) to the history, and asks again, for at most `max_turns` model calls.
A tool that raises, gets bad arguments or does not exist becomes an error result the model reads;
it never ends the loop. Hooks (`PromptHook`) see every model call, response, tool call and tool
result, and may stop the run by returning or raising `Cancel`.

An `Agent` is immutable once built and safe to share across threads.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, runtime_checkable

import attrs

from ._chat_dicts import convert
from ._checks import whole
from ._schema import to_text, validate
from .completion import (
    CompletionModel,
    CompletionRequest,
    CompletionRequestBuilder,
    CompletionResponse,
    Document,
    Prompt,
    RequestSettings,
    ToolChoice,
    ToolDefinition,
    Usage,
    excerpt,
    join_preamble,
    model_label,
    split_prompt,
)
from .errors import RigError
from .message import Message, MessageLike, ToolCall, ToolResult
from .streaming import FinalResponse, ReasoningChunk, TextChunk, ToolCallChunk
from .tool import Tool, ToolArgumentsError, ToolError, ToolSet

__all__ = [
    "VectorStoreIndex",
    "AgentBuilder",
    "Agent",
    "AgentStream",
    "PromptResponse",
    "ToolResultChunk",
    "AgentStreamItem",
    "PromptHook",
    "Cancel",
    "MaxTurnsError",
    "PromptCancelledError",
    "DEFAULT_MAX_TURNS",
]

log = logging.getLogger("rig_sync.agent")

DEFAULT_MAX_TURNS = 10
DEFAULT_TOOL_CONCURRENCY = 8


@runtime_checkable
class VectorStoreIndex(Protocol):
    """What retrieval needs of a vector index: best matches first."""

    def top_n(self, query: str, n: int) -> list[tuple[float, str, Any]]: ...

    def top_n_ids(self, query: str, n: int) -> list[tuple[float, str]]: ...


# --- results, stream items and errors -----------------------------------------------------------


@attrs.frozen(eq=False)
class PromptResponse:
    """A finished prompt: the final text, usage summed over every turn, and the whole history
    (prior history, the prompt, and every message of the run)."""

    output: str
    usage: Usage
    history: list[Message]


@attrs.frozen(eq=False)
class ToolResultChunk:
    """A tool ran: its call, the result sent back to the model, and the error if it failed."""

    call: ToolCall
    result: ToolResult
    error: ToolError | None = None


AgentStreamItem = TextChunk | ReasoningChunk | ToolCallChunk | ToolResultChunk | PromptResponse


class _RunError(RigError):
    """A run that stopped early; `history` holds every message up to that point."""

    def __init__(self, message: str, history: list[Message], usage: Usage) -> None:
        super().__init__(message)
        self.history = history
        self.usage = usage


class MaxTurnsError(_RunError):
    """The model still wanted tools after `max_turns` model calls. `history` ends with the
    results of the last tool calls, so `agent.chat(…, err.history)` can carry on."""

    def __init__(self, max_turns: int, history: list[Message], usage: Usage) -> None:
        super().__init__(f"the model still called tools after {max_turns} turns (max_turns={max_turns})",
                         history, usage)
        self.max_turns = max_turns


class PromptCancelledError(_RunError):
    """A hook cancelled the run; `reason` says why."""

    def __init__(self, reason: str, history: list[Message], usage: Usage) -> None:
        super().__init__(f"prompt cancelled by a hook: {reason}", history, usage)
        self.reason = reason


class Cancel(Exception):
    """Return (or raise) this from a hook to stop the run with `PromptCancelledError`."""

    def __init__(self, reason: str = "cancelled") -> None:
        super().__init__(reason)
        self.reason = reason


class PromptHook:
    """Callbacks on a run; override what you need. Each may return (or raise) `Cancel`.

    Tool hooks run on the calling thread, in call order: `on_tool_call` for every call of a
    turn before any runs, `on_tool_result` after all have run.
    """

    def on_completion_call(self, request: CompletionRequest) -> Cancel | None:
        return None

    def on_completion_response(self, request: CompletionRequest, response: CompletionResponse) -> Cancel | None:
        return None

    def on_tool_call(self, call: ToolCall) -> Cancel | None:
        return None

    def on_tool_result(self, call: ToolCall, result: ToolResult, error: ToolError | None) -> Cancel | None:
        return None


def _fire(hooks: Sequence[Any], event: str, history: list[Message], usage: Usage, *args: Any) -> None:
    for hook in hooks:
        method = getattr(hook, event, None)
        if method is None:
            continue
        try:
            outcome = method(*args)
        except Cancel as cancel:
            outcome = cancel
        if isinstance(outcome, Cancel):
            raise PromptCancelledError(outcome.reason, list(history), usage)


class AgentStream:
    """Items of a streamed run: text pieces, reasoning, tool calls, tool results, and last the
    `PromptResponse` (also at `.response`). Close it (or use `with`) to stop early."""

    def __init__(self, items: Iterator[AgentStreamItem]) -> None:
        self._items = items
        self._response: PromptResponse | None = None

    def __iter__(self) -> Iterator[AgentStreamItem]:
        for item in self._items:
            if isinstance(item, PromptResponse):
                self._response = item
            yield item

    @property
    def response(self) -> PromptResponse:
        """The finished run; reads the rest of the stream first if needed."""
        if self._response is None:
            for _ in self:
                pass
        assert self._response is not None
        return self._response

    def text_stream(self) -> Iterator[str]:
        """Only the text pieces."""
        for item in self:
            if isinstance(item, TextChunk):
                yield item.text

    def close(self) -> None:
        close = getattr(self._items, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> AgentStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- the agent ------------------------------------------------------------------------------------


def _summary(model: object, preamble: str | None, tools: Sequence[str], counts: Mapping[str, int],
             settings: Mapping[str, Any]) -> str:
    """What an agent (or its builder) holds, for a repr: names and excerpts, never secrets."""
    fields = [model_label(model)]
    if preamble:
        fields.append(f"preamble={excerpt(preamble, 40)}")
    if tools:
        fields.append(f"tools={list(tools)}")
    fields.extend(f"{name}={n}" for name, n in counts.items() if n)
    for name, value in settings.items():
        if isinstance(value, ToolChoice):
            value = value.name or value.mode
        if value is not None:
            fields.append(f"{name}={excerpt(value, 40) if isinstance(value, str) else repr(value)}")
    return ", ".join(fields)


def _check_turns(max_turns: int) -> int:
    return whole(max_turns, "max_turns", minimum=1)


@attrs.frozen(kw_only=True, eq=False)
class Agent:
    """Build with `AgentBuilder` (or `client.agent(model)`)."""

    model: CompletionModel
    name: str = "agent"
    description: str = ""
    preamble: str | None = None
    documents: tuple[Document, ...] = ()
    dynamic_context: tuple[tuple[int, VectorStoreIndex], ...] = ()
    static_tools: tuple[str, ...] = ()
    dynamic_tools: tuple[tuple[int, VectorStoreIndex], ...] = ()
    toolset: ToolSet = attrs.field(factory=ToolSet)
    temperature: float | None = None
    max_tokens: int | None = None
    tool_choice: ToolChoice | None = None
    additional_params: dict[str, Any] | None = None
    hooks: tuple[Any, ...] = ()
    max_turns: int = DEFAULT_MAX_TURNS
    tool_concurrency: int = DEFAULT_TOOL_CONCURRENCY

    def __repr__(self) -> str:
        counts = {"documents": len(self.documents), "dynamic_context": len(self.dynamic_context),
                  "dynamic_tools": len(self.dynamic_tools), "hooks": len(self.hooks)}
        settings = {"name": self.name, "temperature": self.temperature, "max_tokens": self.max_tokens,
                    "tool_choice": self.tool_choice, "max_turns": self.max_turns}
        return f"Agent({_summary(self.model, self.preamble, self.static_tools, counts, settings)})"

    # -- public API --------------------------------------------------------------------------------

    def prompt(self, prompt: Prompt, *, max_turns: int | None = None,
               hooks: Iterable[PromptHook] = ()) -> str:
        """Run the tool loop on `prompt`; the model's final text.

        `prompt` is a text, one message (a `Message` or an OpenAI-style dict), or a whole
        conversation in order whose last message is the prompt; its system messages follow the
        agent's preamble. Raises `InvalidMessageError` for a message that does not fit,
        `MaxTurnsError`, `PromptCancelledError`, and what `CompletionRequestBuilder.send` raises.
        """
        return self.prompt_details(prompt, max_turns=max_turns, hooks=hooks).output

    def chat(self, prompt: Prompt, history: Sequence[MessageLike], *, max_turns: int | None = None,
             hooks: Iterable[PromptHook] = ()) -> str:
        """Like `prompt`, after `history`: earlier turns, as `Message`s or OpenAI-style dicts (a
        system message there follows the agent's preamble). `history` is not changed;
        `chat_details(…).history` is the new history, as `Message`s."""
        return self.chat_details(prompt, history, max_turns=max_turns, hooks=hooks).output

    def prompt_details(self, prompt: Prompt, *, max_turns: int | None = None,
                       hooks: Iterable[PromptHook] = ()) -> PromptResponse:
        """Run the tool loop; output, usage summed over every turn, and the full history."""
        return self.chat_details(prompt, (), max_turns=max_turns, hooks=hooks)

    def chat_details(self, prompt: Prompt, history: Sequence[MessageLike], *, max_turns: int | None = None,
                     hooks: Iterable[PromptHook] = ()) -> PromptResponse:
        return AgentStream(self._run(prompt, history, max_turns, hooks, stream=False)).response

    def stream_prompt(self, prompt: Prompt, *, max_turns: int | None = None,
                      hooks: Iterable[PromptHook] = ()) -> AgentStream:
        """Run the tool loop with streamed model calls: text pieces, tool calls and results as
        they come, then the `PromptResponse`."""
        return self.stream_chat(prompt, (), max_turns=max_turns, hooks=hooks)

    def stream_chat(self, prompt: Prompt, history: Sequence[MessageLike], *, max_turns: int | None = None,
                    hooks: Iterable[PromptHook] = ()) -> AgentStream:
        return AgentStream(self._run(prompt, history, max_turns, hooks, stream=True))

    def completion_request(self, prompt: Prompt, history: Sequence[MessageLike] = ()) -> CompletionRequestBuilder:
        """A request builder with the agent's preamble, context and tools for `prompt` (context and
        tools retrieved for this prompt), to adjust and `send()` as one plain model call.

        The messages are `history`, then `prompt` (which may be a whole conversation); the
        preamble is the agent's, then the system messages of `history` and `prompt`.
        """
        # Converted here, so the model is handed core messages only (any CompletionModel will do).
        earlier_system, earlier = convert(history, "history")
        system, conversation = split_prompt(prompt)
        message = conversation[-1]
        documents, definitions = self._retrieve(message)
        builder = (self.model.completion_request(message).messages([*earlier, *conversation[:-1]])
                   .documents(documents).tools(definitions).temperature(self.temperature)
                   .max_tokens(self.max_tokens))
        preamble = join_preamble(self.preamble, *earlier_system, *system)
        if preamble:
            builder.preamble(preamble)
        if self.tool_choice is not None and definitions:
            builder.tool_choice(self.tool_choice)
        if self.additional_params:
            builder.additional_params(self.additional_params)
        return builder

    # An agent is itself a tool other agents can call.
    def definition(self) -> ToolDefinition:
        return ToolDefinition(self.name, self.description or f"Ask the {self.name} agent", {
            "type": "object",
            "properties": {"prompt": {"type": "string", "description": "What to ask the agent"}},
            "required": ["prompt"],
            "additionalProperties": False,
        })

    def call(self, args: Mapping[str, Any]) -> str:
        problems = validate(args, self.definition().parameters)
        if problems:
            raise ToolArgumentsError(self.name, problems)
        return self.prompt(args["prompt"])

    # -- the loop ----------------------------------------------------------------------------------

    def _retrieve(self, prompt: Message) -> tuple[list[Document], list[ToolDefinition]]:
        """Static context and tools, plus what the indexes find for this prompt's text."""
        documents = list(self.documents)
        names = list(self.static_tools)
        query = prompt.text
        if query.strip():
            for n, index in self.dynamic_context:
                documents.extend(Document(doc_id, to_text(doc)) for _, doc_id, doc in index.top_n(query, n))
            for n, index in self.dynamic_tools:
                for _, name in index.top_n_ids(query, n):
                    if name in self.toolset and name not in names:
                        names.append(name)
                    elif name not in self.toolset:
                        log.warning("tool index returned %r, which is not in the agent's tool set", name)
        return documents, self.toolset.definitions(names)

    def _run(self, prompt: Prompt, history: Sequence[MessageLike], max_turns: int | None,
             extra_hooks: Iterable[PromptHook], *, stream: bool) -> Iterator[AgentStreamItem]:
        # Checked and retrieved now, so bad input fails at the call, not at the first read of a stream.
        turns = _check_turns(self.max_turns if max_turns is None else max_turns)
        request = self.completion_request(prompt, history).build()
        return self._loop(request, turns, (*self.hooks, *extra_hooks), stream)

    def _loop(self, request: CompletionRequest, turns: int, hooks: Sequence[Any],
              stream: bool) -> Iterator[AgentStreamItem]:
        messages = list(request.chat_history)
        usage = Usage()
        for _ in range(turns):
            request = attrs.evolve(request, chat_history=messages)
            _fire(hooks, "on_completion_call", messages, usage, request)
            if stream:
                with self.model.stream(request) as streamed:
                    for chunk in streamed:
                        if not isinstance(chunk, FinalResponse):
                            yield chunk
                    response = streamed.response
            else:
                response = self.model.completion(request)
            usage += response.usage
            messages.append(response.message())
            _fire(hooks, "on_completion_response", messages, usage, request, response)
            calls = response.tool_calls
            if not calls:
                yield PromptResponse(response.text, usage, messages)
                return
            for call in calls:
                _fire(hooks, "on_tool_call", messages, usage, call)
            outcomes = self._run_tools(calls)
            messages.append(Message.user([result for result, _ in outcomes]))
            for call, (result, error) in zip(calls, outcomes, strict=True):
                _fire(hooks, "on_tool_result", messages, usage, call, result, error)
                yield ToolResultChunk(call, result, error)
        raise MaxTurnsError(turns, messages, usage)

    def _run_tools(self, calls: list[ToolCall]) -> list[tuple[ToolResult, ToolError | None]]:
        """Run one turn's calls (in parallel when there are several); results in call order."""
        workers = min(len(calls), self.tool_concurrency)
        if workers <= 1:
            return [self._run_tool(call) for call in calls]
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rig-sync-tool") as pool:
            return list(pool.map(self._run_tool, calls))

    def _run_tool(self, call: ToolCall) -> tuple[ToolResult, ToolError | None]:
        try:
            if call.invalid_arguments is not None:  # the model's mistake, for the model to correct
                self.toolset.get(call.name)  # an unknown tool is the first thing to say
                raise ToolArgumentsError(call.name, [_unreadable(call.invalid_arguments)])
            return ToolResult(call.id, self.toolset.call(call.name, call.arguments), call.call_id), None
        except ToolError as exc:
            return ToolResult(call.id, f"Error: {exc}", call.call_id, is_error=True), exc


def _unreadable(arguments: str) -> str:
    """What is wrong with arguments that are no JSON object, quoting them (cut to 200 characters)."""
    shown = arguments if len(arguments) <= 200 else arguments[:199] + "…"
    return f"the arguments must be one JSON object that fits the tool's parameters, not {shown!r}"


# --- the builder ------------------------------------------------------------------------------------


def _check_n(n: int, what: str) -> int:
    return whole(n, f"{what}: n", minimum=1)


def _check_str(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a string, not {type(value).__name__}")
    return value


_HOOK_EVENTS = tuple(name for name in vars(PromptHook) if name.startswith("on_"))


def _check_hook(hook: Any) -> Any:
    if not any(callable(getattr(hook, event, None)) for event in _HOOK_EVENTS):
        raise TypeError(f"a hook needs one of {', '.join(_HOOK_EVENTS)} (see PromptHook); got {type(hook).__name__}")
    return hook


def _check_index(index: Any, method: str) -> Any:
    if not callable(getattr(index, method, None)):
        raise TypeError(f"a vector index needs a {method}(query, n) method; got {type(index).__name__}")
    return index


class AgentBuilder(RequestSettings):
    """Fluent builder for an `Agent` on any `CompletionModel` (`preamble`, `append_preamble`,
    `temperature`, `max_tokens` and `additional_params` as every request builder has them)."""

    def __init__(self, model: CompletionModel) -> None:
        if not isinstance(model, CompletionModel):
            raise TypeError(f"AgentBuilder needs a CompletionModel, not {type(model).__name__}")
        self._model = model
        self._settings: dict[str, Any] = {}
        self._documents: list[Document] = []
        self._dynamic_context: list[tuple[int, VectorStoreIndex]] = []
        self._static_tools: list[str] = []
        self._dynamic_tools: list[tuple[int, VectorStoreIndex]] = []
        self._toolset = ToolSet()
        self._hooks: list[Any] = []

    def name(self, name: str) -> AgentBuilder:
        self._settings["name"] = _check_str(name, "name")
        return self

    def description(self, description: str) -> AgentBuilder:
        self._settings["description"] = _check_str(description, "description")
        return self

    def context(self, text: str) -> AgentBuilder:
        """A static document sent with every prompt."""
        self._documents.append(Document(f"static_doc_{len(self._documents)}", text))
        return self

    def dynamic_context(self, n: int, index: VectorStoreIndex) -> AgentBuilder:
        """Per prompt, send the `n` documents of `index` that best match the prompt text."""
        self._dynamic_context.append((_check_n(n, "dynamic_context"), _check_index(index, "top_n")))
        return self

    def tool(self, tool: Tool) -> AgentBuilder:
        """A tool offered with every prompt."""
        self._toolset.add(tool)
        if tool.name not in self._static_tools:
            self._static_tools.append(tool.name)
        return self

    def tools(self, tools: Iterable[Tool]) -> AgentBuilder:
        for t in tools:
            self.tool(t)
        return self

    def dynamic_tools(self, n: int, index: VectorStoreIndex, toolset: ToolSet | Iterable[Tool]) -> AgentBuilder:
        """Per prompt, offer the `n` tools whose ids (tool names) `index` ranks best for the prompt."""
        self._dynamic_tools.append((_check_n(n, "dynamic_tools"), _check_index(index, "top_n_ids")))
        for t in toolset:
            self._toolset.add(t)
        return self

    def tool_choice(self, choice: ToolChoice | str) -> AgentBuilder:
        """"auto", "none", "required" or a tool name; sent on every turn that offers tools."""
        self._settings["tool_choice"] = ToolChoice.of(choice)
        return self

    def max_turns(self, max_turns: int) -> AgentBuilder:
        """Default limit on model calls per prompt (`prompt(…, max_turns=…)` overrides it)."""
        self._settings["max_turns"] = _check_turns(max_turns)
        return self

    def tool_concurrency(self, workers: int) -> AgentBuilder:
        """How many tool calls of one turn may run at once (1: one after another)."""
        self._settings["tool_concurrency"] = _check_n(workers, "tool_concurrency")
        return self

    def hook(self, hook: PromptHook) -> AgentBuilder:
        """Callbacks for every run of the agent."""
        self._hooks.append(_check_hook(hook))
        return self

    def __repr__(self) -> str:
        counts = {"documents": len(self._documents), "dynamic_context": len(self._dynamic_context),
                  "dynamic_tools": len(self._dynamic_tools), "hooks": len(self._hooks)}
        summary = _summary(self._model, self._preamble, self._static_tools, counts, self._all_settings())
        return f"<AgentBuilder {summary}; not built: call .build()>"

    def build(self) -> Agent:
        """The `Agent`: immutable, and safe to share across threads."""
        return Agent(
            model=self._model,
            preamble=self._preamble,
            documents=tuple(self._documents),
            dynamic_context=tuple(self._dynamic_context),
            static_tools=tuple(self._static_tools),
            dynamic_tools=tuple(self._dynamic_tools),
            toolset=ToolSet(self._toolset),  # a copy: later builder changes do not reach the agent
            additional_params=self._params,
            hooks=tuple(self._hooks),
            **self._all_settings(),
        )

    def _all_settings(self) -> dict[str, Any]:
        sampling = {"temperature": self._temperature, "max_tokens": self._max_tokens}
        return {**{k: v for k, v in sampling.items() if v is not None}, **self._settings}
