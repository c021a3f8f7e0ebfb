"""Tools a model can call: `@tool` on a typed, documented function; the `Tool` protocol for
stateful tools; `ToolSet`, tools by name.

    @tool
    def add(a: int, b: int) -> int:
        '''Add two numbers.

        Args:
            a: The first number.
            b: The second number.
        '''
        return a + b

    add.definition()            # ToolDefinition("add", "Add two numbers.", {JSON Schema of a, b})
    add.call({"a": 2, "b": 3})  # "5" -- the text the model receives
    add(2, 3)                   # 5   -- still a plain function

Parameters may be attrs classes, dataclasses or pydantic models (validated by pydantic, so their
validators run); the model sees their schema and the function receives instances.
`call` raises `ToolArgumentsError` when the arguments do not fit the schema and `ToolCallError`
when the function raises; an agent turns both into an error result for the model.
To make a tool of a method (a tool with state), decorate the bound method: `tool(counter.bump)`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Generic, Protocol, TypeVar, overload, runtime_checkable

from ._schema import FunctionSignature, function_schema, structure, structure_problems, to_text, validate
from .completion import ToolDefinition
from .errors import RigError

__all__ = [
    "Tool",
    "FunctionTool",
    "ToolSet",
    "tool",
    "ToolError",
    "ToolArgumentsError",
    "ToolCallError",
    "UnknownToolError",
]

R = TypeVar("R")
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")  # what every major provider accepts as a function name


class ToolError(RigError):
    """A tool could not produce a result. `tool` is the tool's name."""

    def __init__(self, message: str, *, tool: str) -> None:
        super().__init__(message)
        self.tool = tool


class ToolArgumentsError(ToolError, ValueError):
    """The arguments do not fit the tool's parameter schema; `problems` lists each misfit."""

    def __init__(self, tool: str, problems: list[str]) -> None:
        super().__init__(f"invalid arguments for tool {tool!r}: " + "; ".join(problems), tool=tool)
        self.problems = problems


class ToolCallError(ToolError):
    """The tool raised; the original exception is `__cause__` (and `error`)."""

    def __init__(self, tool: str, error: BaseException) -> None:
        super().__init__(f"tool {tool!r} failed: {type(error).__name__}: {error}", tool=tool)
        self.error = error


class UnknownToolError(ToolError, LookupError):
    """No tool of that name is available."""

    def __init__(self, tool: str, available: Iterable[str]) -> None:
        known = ", ".join(sorted(available)) or "none"
        super().__init__(f"no tool named {tool!r} (available: {known})", tool=tool)


@runtime_checkable
class Tool(Protocol):
    """Anything with a name, a definition and a `call`: implement it for tools with state.

    `call` receives the model's arguments (a dict) and returns the result: a str is sent as is,
    anything else is JSON-encoded (attrs classes and dataclasses unstructured first).
    """

    @property
    def name(self) -> str: ...

    def definition(self) -> ToolDefinition: ...

    def call(self, args: Mapping[str, Any]) -> Any: ...


def _guarded(name: str, run: Callable[[], R]) -> R:
    """`run()`, with any failure that is not already a ToolError reported as a ToolCallError."""
    try:
        return run()
    except ToolError:
        raise
    except Exception as exc:  # every tool failure goes back to the model as text
        raise ToolCallError(name, exc) from exc


class FunctionTool(Generic[R]):
    """A function with a `ToolDefinition` derived from its type hints and docstring."""

    __name__: str  # copied from the function, with its docstring and module

    def __init__(self, fn: Callable[..., R], name: str | None = None, description: str | None = None) -> None:
        if not callable(fn):
            raise TypeError(f"tool() needs a function, not {type(fn).__name__}")
        self.fn = fn
        self.name = name if name is not None else getattr(fn, "__name__", "")
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ValueError(f"tool name {self.name!r} must be 1-64 letters, digits, '_', '-' or '.'")
        self._signature: FunctionSignature = function_schema(fn)
        self.description = description if description is not None else self._signature.summary
        self._definition = ToolDefinition(self.name, self.description, self._signature.parameters)
        functools.update_wrapper(self, fn)

    def __call__(self, *args: Any, **kwargs: Any) -> R:
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"FunctionTool({self.name!r})"

    def definition(self) -> ToolDefinition:
        return self._definition

    def parse_args(self, args: Mapping[str, Any]) -> tuple[list[Any], dict[str, Any]]:
        """The model's arguments checked against the schema and structured for the function."""
        if not isinstance(args, Mapping):
            raise ToolArgumentsError(self.name, [f"$: expected object, got {type(args).__name__}"])
        problems = validate(dict(args), self._signature.parameters)
        if problems:
            raise ToolArgumentsError(self.name, problems)
        values: dict[str, Any] = {}
        for f in self._signature.fields:
            if f.name in args:
                try:
                    values[f.name] = structure(args[f.name], f.type)
                except Exception as exc:  # noqa: BLE001 - whatever cattrs or pydantic says, it did not fit
                    problems.extend(structure_problems(exc, f"$.{f.name}"))
        if problems:
            raise ToolArgumentsError(self.name, problems)
        positional = [values.pop(name) for name in self._signature.positional if name in values]
        return positional, values

    def call(self, args: Mapping[str, Any]) -> str:
        """Run the function on the model's arguments; the result as text for the model."""
        positional, kwargs = self.parse_args(args)
        return _guarded(self.name, lambda: to_text(self.fn(*positional, **kwargs)))


@overload
def tool(fn: Callable[..., R], /) -> FunctionTool[R]: ...


@overload
def tool(
    *, name: str | None = None, description: str | None = None
) -> Callable[[Callable[..., R]], FunctionTool[R]]: ...


def tool(fn: Callable[..., R] | None = None, /, *, name: str | None = None,
         description: str | None = None) -> FunctionTool[R] | Callable[[Callable[..., R]], FunctionTool[R]]:
    """Make a `FunctionTool` of a typed function: `@tool` or `@tool(name="…", description="…")`."""
    if fn is not None:
        return FunctionTool(fn, name, description)
    return lambda f: FunctionTool(f, name, description)


class ToolSet:
    """Tools by name. Add tools while building; afterwards it is read-only and thread-safe."""

    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for t in tools:
            self.add(t)

    def add(self, tool: Tool) -> ToolSet:
        """Add a tool; a different tool with the same name is refused (it would shadow the first)."""
        if not isinstance(tool, Tool):
            raise TypeError(f"a tool needs name, definition() and call(); got {type(tool).__name__}")
        existing = self._tools.get(tool.name)
        if existing is not None and existing is not tool:
            raise ValueError(f"a different tool named {tool.name!r} is already in the set")
        self._tools[tool.name] = tool
        return self

    def get(self, name: str) -> Tool:
        try:
            return self._tools[name]
        except KeyError:
            raise UnknownToolError(name, self._tools) from None

    def names(self) -> list[str]:
        return list(self._tools)

    def definitions(self, names: Iterable[str] | None = None) -> list[ToolDefinition]:
        """Definitions of all tools, or of `names` in that order."""
        chosen = self._tools.values() if names is None else [self.get(n) for n in names]
        return [t.definition() for t in chosen]

    def call(self, name: str, args: Mapping[str, Any]) -> str:
        """Run tool `name`; the result as text. Raises `UnknownToolError`, `ToolArgumentsError`
        or `ToolCallError`."""
        found = self.get(name)
        return _guarded(name, lambda: to_text(found.call(args)))

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __len__(self) -> int:
        return len(self._tools)

    def __iter__(self) -> Iterator[Tool]:
        return iter(list(self._tools.values()))

    def __repr__(self) -> str:
        return f"ToolSet({self.names()!r})"
