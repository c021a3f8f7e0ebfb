"""Tools: JSON Schema from type hints and docstrings, argument checking, results, ToolSet."""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal, Optional, Union

import attrs
import pytest

from rig_sync._schema import SchemaError, parse_docstring, schema_of, validate
from rig_sync.completion import ToolDefinition
from rig_sync.errors import RigError
from rig_sync.tool import (
    FunctionTool,
    Tool,
    ToolArgumentsError,
    ToolCallError,
    ToolError,
    ToolSet,
    UnknownToolError,
    tool,
)


class Color(enum.Enum):
    """A primary colour."""

    RED = "red"
    BLUE = "blue"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


@attrs.frozen
class Point:
    """A point on the plane.

    Attributes:
        x: Horizontal position.
        y: Vertical position.
    """

    x: float
    y: float = 0.0


@dataclasses.dataclass
class Shape:
    name: str = dataclasses.field(metadata={"description": "What to call it"})
    points: list[Point] = dataclasses.field(default_factory=list)
    color: Color | None = None


# --- schema derivation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hint", "schema"),
    [
        (str, {"type": "string"}),
        (int, {"type": "integer"}),
        (float, {"type": "number"}),
        (bool, {"type": "boolean"}),
        (None, {"type": "null"}),
        (type(None), {"type": "null"}),
        (Any, {}),
        (Optional[int], {"type": ["integer", "null"]}),  # noqa: UP045 - the typing spelling is what is tested
        (int | None, {"type": ["integer", "null"]}),
        (Union[int, str], {"type": ["integer", "string"]}),  # noqa: UP007 - the typing spelling is what is tested
        (list, {"type": "array"}),
        (list[str], {"type": "array", "items": {"type": "string"}}),
        (Sequence[int], {"type": "array", "items": {"type": "integer"}}),
        (set[str], {"type": "array", "items": {"type": "string"}, "uniqueItems": True}),
        (tuple[int, ...], {"type": "array", "items": {"type": "integer"}}),
        (tuple[int, str], {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}],
                           "items": False, "minItems": 2, "maxItems": 2}),
        (dict, {"type": "object"}),
        (dict[str, int], {"type": "object", "additionalProperties": {"type": "integer"}}),
        (Mapping[str, list[bool]], {"type": "object",
                                    "additionalProperties": {"type": "array", "items": {"type": "boolean"}}}),
        (Literal["a", "b"], {"type": "string", "enum": ["a", "b"]}),
        (Literal[1, "x"], {"type": ["integer", "string"], "enum": [1, "x"]}),
        (Color, {"type": "string", "enum": ["red", "blue"], "description": "A primary colour."}),
        (Level, {"type": "integer", "enum": [1, 2]}),
        (Annotated[int, "How many"], {"type": "integer", "description": "How many"}),
    ],
)
def test_schema_of_each_type(hint: Any, schema: dict[str, Any]) -> None:
    assert schema_of(hint) == schema


def test_schema_of_attrs_class_uses_docstring_and_defaults() -> None:
    assert schema_of(Point) == {
        "type": "object",
        "description": "A point on the plane.",
        "properties": {
            "x": {"type": "number", "description": "Horizontal position."},
            "y": {"type": "number", "description": "Vertical position.", "default": 0.0},
        },
        "required": ["x"],
        "additionalProperties": False,
    }


def test_schema_of_nested_dataclass() -> None:
    schema = schema_of(Shape)
    assert "description" not in schema  # the generated "Shape(name: str, …)" doc is not a description
    assert schema["required"] == ["name"]
    assert schema["properties"]["name"] == {"type": "string", "description": "What to call it"}
    assert schema["properties"]["points"]["items"] == schema_of(Point)
    assert schema["properties"]["color"] == {
        "anyOf": [{"type": "string", "enum": ["red", "blue"], "description": "A primary colour."}, {"type": "null"}],
        "default": None,
    }


@dataclasses.dataclass
class Node:
    value: int
    children: list[Node]


@pytest.mark.parametrize("hint", [bytes, complex, dict[int, str], Node, object.__new__])
def test_schema_of_unsupported_types_is_a_clear_error(hint: Any) -> None:
    with pytest.raises(SchemaError) as info:
        schema_of(hint)
    assert isinstance(info.value, TypeError) and isinstance(info.value, RigError)


def test_recursive_type_error_says_so() -> None:
    with pytest.raises(SchemaError, match="refers to itself"):
        schema_of(Node)


# --- docstrings ----------------------------------------------------------------------------------------


def test_google_docstring() -> None:
    summary, params = parse_docstring("""Do a thing.

    More about it.

    Args:
        a (int): The first
            value, continued.
        b: The second: with a colon.

    Returns:
        c: not a parameter.
    """)
    assert summary == "Do a thing.\n\nMore about it."
    assert params == {"a": "The first value, continued.", "b": "The second: with a colon."}


def test_sphinx_docstring() -> None:
    summary, params = parse_docstring("""Do a thing.

    :param a: The first
        value.
    :param int b: The second.
    :type b: int
    :returns: something
    """)
    assert summary == "Do a thing."
    assert params == {"a": "The first value.", "b": "The second."}


def test_no_docstring() -> None:
    assert parse_docstring(None) == ("", {})


# --- @tool -------------------------------------------------------------------------------------------


@tool
def add(a: int, b: int = 1) -> int:
    """Add two numbers.

    Args:
        a: The first number.
        b: The second number.
    """
    return a + b


def test_tool_definition_from_hints_and_docstring() -> None:
    assert add.definition() == ToolDefinition("add", "Add two numbers.", {
        "type": "object",
        "properties": {
            "a": {"type": "integer", "description": "The first number."},
            "b": {"type": "integer", "description": "The second number.", "default": 1},
        },
        "required": ["a"],
        "additionalProperties": False,
    })
    assert add.name == "add" and add.__name__ == "add"


def test_tool_stays_a_plain_function() -> None:
    assert add(2, 3) == 5
    assert isinstance(add, Tool)


def test_tool_call_returns_text() -> None:
    assert add.call({"a": 2, "b": 3}) == "5"
    assert add.call({"a": 2}) == "3"
    assert add.call({"a": 2.0}) == "3"  # a whole float is an integer in JSON


def test_tool_with_name_and_description() -> None:
    @tool(name="sum-two", description="Sum.")
    def f(a: int) -> int:
        return a

    assert (f.definition().name, f.definition().description) == ("sum-two", "Sum.")


def test_sphinx_documented_tool() -> None:
    @tool
    def greet(name: str, times: int = 1) -> str:
        """Greet someone.

        :param name: Who to greet.
        :param times: How often.
        """
        return " ".join([f"hi {name}"] * times)

    props = greet.definition().parameters["properties"]
    assert props["name"]["description"] == "Who to greet."
    assert props["times"]["description"] == "How often."
    assert greet.call({"name": "Ada", "times": 2}) == "hi Ada hi Ada"  # str is returned as is


def test_tool_structures_nested_arguments_and_unstructures_results() -> None:
    @tool
    def move(shape: Shape, by: Point, mode: Literal["copy", "move"] = "move", level: Level = Level.LOW) -> Shape:
        """Move a shape."""
        assert isinstance(shape.points[0], Point) and isinstance(by, Point) and isinstance(level, Level)
        return Shape(f"{shape.name}-{mode}-{level.name}", [Point(p.x + by.x, p.y + by.y) for p in shape.points],
                     shape.color)

    out = move.call({"shape": {"name": "tri", "points": [{"x": 1, "y": 2}], "color": "red"},
                     "by": {"x": 1.5}, "mode": "copy", "level": 2})
    assert json.loads(out) == {"name": "tri-copy-HIGH", "points": [{"x": 2.5, "y": 2.0}], "color": "red"}


def test_tool_union_argument_picks_the_member_that_fits() -> None:
    @tool
    def kind(value: int | str | list[int]) -> str:
        """Say the type."""
        return type(value).__name__

    assert [kind.call({"value": v}) for v in (3, "3", [3])] == ["int", "str", "list"]


def test_tool_optional_arguments_take_an_explicit_null() -> None:
    @tool
    def place(at: Point | None = Point(1.0), n: int | None = 1) -> str:
        """Place something."""
        return repr((at, n))

    assert place.call({"at": None, "n": None}) == "(None, None)"
    assert place.call({"at": {"x": 2}}) == "(Point(x=2.0, y=0.0), 1)"


def test_tool_results_other_values_are_json() -> None:
    @tool
    def info() -> dict[str, Any]:
        """Info."""
        return {"ok": True, "n": None, "c": [Color.RED.value]}

    assert json.loads(info.call({})) == {"ok": True, "n": None, "c": ["red"]}


def test_positional_only_parameters() -> None:
    @tool
    def sub(a: int, b: int, /) -> int:
        """a - b."""
        return a - b

    assert sub.call({"a": 5, "b": 2}) == "3"


def test_method_tool_keeps_state() -> None:
    class Counter:
        def __init__(self) -> None:
            self.count = 0

        def bump(self, by: int) -> int:
            """Increase the counter."""
            self.count += by
            return self.count

    counter = Counter()
    bump = tool(counter.bump)
    assert "self" not in bump.definition().parameters["properties"]
    bump.call({"by": 2})
    assert bump.call({"by": 3}) == "5" and counter.count == 5


# --- bad arguments and failures --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        ({}, "missing required property 'a'"),
        ({"a": "2"}, "$.a: expected integer, got string '2'"),
        ({"a": True}, "$.a: expected integer, got boolean"),
        ({"a": 2.5}, "$.a: expected integer, got number"),
        ({"a": 1, "c": 3}, "unexpected property 'c'"),
        ({"a": None}, "$.a: expected integer, got null"),
    ],
)
def test_bad_arguments_are_a_clear_error(args: dict[str, Any], problem: str) -> None:
    with pytest.raises(ToolArgumentsError) as info:
        add.call(args)
    assert problem in str(info.value)
    assert info.value.tool == "add" and isinstance(info.value, ValueError)


def test_nested_bad_arguments_name_the_path() -> None:
    @tool
    def draw(shape: Shape) -> str:
        """Draw."""
        return shape.name

    with pytest.raises(ToolArgumentsError) as info:
        draw.call({"shape": {"name": "x", "points": [{"x": 1}, {"x": "far"}], "color": "green"}})
    assert info.value.problems == [
        "$.shape.points[1].x: expected number, got string 'far'",
        "$.shape.color: expected one of 'red', 'blue' or null, got string 'green'",
    ]


@attrs.frozen
class Seat:
    row: int = attrs.field(validator=attrs.validators.gt(0))


def test_a_class_validator_refusal_names_the_path() -> None:
    @tool
    def reserve(seats: list[Seat], extra: Seat | None = None) -> str:
        """Reserve seats."""
        return "ok"

    with pytest.raises(ToolArgumentsError) as info:
        reserve.call({"seats": [{"row": 1}, {"row": -2}], "extra": {"row": 0}})
    assert info.value.problems == ["$.seats[1]: 'row' must be > 0: -2", "$.extra: 'row' must be > 0: 0"]


def test_arguments_that_are_not_an_object() -> None:
    with pytest.raises(ToolArgumentsError, match="expected object"):
        add.call([1, 2])  # type: ignore[arg-type]


def test_a_raising_tool_gives_tool_call_error() -> None:
    @tool
    def divide(a: int, b: int) -> float:
        """Divide."""
        return a / b

    with pytest.raises(ToolCallError) as info:
        divide.call({"a": 1, "b": 0})
    assert "ZeroDivisionError" in str(info.value) and isinstance(info.value.__cause__, ZeroDivisionError)


def test_an_unserialisable_result_is_a_tool_call_error() -> None:
    @tool
    def weird() -> object:
        """Returns something odd."""
        return object()

    with pytest.raises(ToolCallError, match="not JSON-serialisable"):
        weird.call({})


def test_undescribable_functions_fail_at_decoration() -> None:
    def untyped(a, b: int) -> int:  # type: ignore[no-untyped-def]
        return b

    def star(*args: int) -> int:
        return 0

    def binary(data: bytes) -> int:
        return 0

    with pytest.raises(SchemaError, match="'a' needs a type annotation"):
        tool(untyped)
    with pytest.raises(SchemaError, match=r"\*args"):
        tool(star)
    with pytest.raises(SchemaError, match="bytes"):
        tool(binary)
    with pytest.raises(ValueError, match="tool name"):
        tool(lambda: 1)


# --- ToolSet ------------------------------------------------------------------------------------------------


class Memory:
    """A class-based tool with state."""

    name = "remember"

    def __init__(self) -> None:
        self.items: list[str] = []

    def definition(self) -> ToolDefinition:
        return ToolDefinition(self.name, "Remember a thing", {"type": "object", "properties": {"item": {}}})

    def call(self, args: Mapping[str, Any]) -> Any:
        if "item" not in args:
            raise KeyError("item")
        self.items.append(args["item"])
        return Point(len(self.items), 0)


def test_toolset_holds_tools_by_name() -> None:
    memory = Memory()
    tools = ToolSet([add]).add(memory)
    assert tools.names() == ["add", "remember"] and "add" in tools and len(tools) == 2
    assert tools.get("remember") is memory
    assert [d.name for d in tools.definitions()] == ["add", "remember"]
    assert [d.name for d in tools.definitions(["remember"])] == ["remember"]
    assert tools.call("add", {"a": 1}) == "2"
    assert json.loads(tools.call("remember", {"item": "milk"})) == {"x": 1, "y": 0}
    assert memory.items == ["milk"]


def test_toolset_errors() -> None:
    tools = ToolSet([add, Memory()])
    with pytest.raises(UnknownToolError, match="no tool named 'nope' \\(available: add, remember\\)"):
        tools.call("nope", {})
    with pytest.raises(ToolCallError, match="KeyError"):  # class-based tool failures are wrapped too
        tools.call("remember", {})
    with pytest.raises(ToolArgumentsError):
        tools.call("add", {"a": "x"})
    def other(a: int) -> int:
        return a

    with pytest.raises(ValueError, match="already"):
        tools.add(tool(name="add")(other))
    tools.add(add)  # the same tool again is fine
    with pytest.raises(TypeError):
        tools.add(object())  # type: ignore[arg-type]
    assert issubclass(ToolError, RigError)


def test_validate_reports_every_problem() -> None:
    schema = schema_of(Point)
    assert validate({"x": 1}, schema) == []
    assert validate({"y": "a", "z": 1}, schema) == [
        "$: missing required property 'x'",
        "$.y: expected number, got string 'a'",
        "$: unexpected property 'z' (known: x, y)",
    ]


def test_function_tool_repr() -> None:
    assert repr(add) == "FunctionTool('add')" and isinstance(add, FunctionTool)
