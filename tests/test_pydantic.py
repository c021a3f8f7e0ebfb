"""Pydantic models in tools and extractors: pydantic's own schema, reshaped like an attrs class's;
answers validated by pydantic (validators and constraints run) and refused as the house's typed
errors; pydantic never imported unless a pydantic class is given. End to end against FakeProvider."""

from __future__ import annotations

import datetime
import enum
import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Literal

import attrs
import pytest

pytest.importorskip("pydantic")  # the `pydantic` extra; rig_sync works without it

import pydantic
from pydantic import BaseModel, ConfigDict, Field, RootModel, field_validator, model_validator

from rig_sync._schema import SchemaError, schema_of
from rig_sync.errors import RigError
from rig_sync.extractor import ExtractionError, ExtractorBuilder
from rig_sync.providers import openai
from rig_sync.testing import FakeProvider, Reply
from rig_sync.tool import ToolArgumentsError, tool


class Mood(enum.Enum):
    """How they feel."""

    HAPPY = "happy"
    SAD = "sad"


class Address(BaseModel):
    city: str = Field(description="City name")
    country: str = "unknown"


class Person(BaseModel):
    """A person mentioned in the text.

    Attributes:
        name: Full name.
    """

    name: str
    age: int | None = Field(default=None, ge=0, description="Age in years, if stated")
    nick: str | None = None
    mood: Mood = Mood.HAPPY
    kind: Literal["human", "robot"] = "human"
    home: Address | None = None
    addresses: list[Address] = []

    @field_validator("name")
    @classmethod
    def capitalised(cls, value: str) -> str:
        if not value[:1].isupper():
            raise ValueError("a name starts with a capital letter")
        return value


@attrs.frozen
class AttrsAddress:
    city: str = attrs.field(metadata={"description": "City name"})
    country: str = "unknown"


@attrs.frozen
class AttrsPerson:
    """A person mentioned in the text.

    Attributes:
        name: Full name.
    """

    name: str
    age: int | None = attrs.field(default=None, metadata={"description": "Age in years, if stated"})
    nick: str | None = None
    mood: Mood = Mood.HAPPY
    kind: Literal["human", "robot"] = "human"
    home: AttrsAddress | None = None
    addresses: list[AttrsAddress] = attrs.field(factory=list)


def client_of(fake: FakeProvider) -> openai.Client:
    return openai.Client(fake.api_key, base_url=fake.base_url, timeout=5, max_retries=0)


# --- the schema a model is shown ------------------------------------------------------------------------


def test_schema_reads_like_the_schema_of_the_same_attrs_class() -> None:
    mine, theirs = schema_of(Person), schema_of(AttrsPerson)
    # pydantic adds the constraint the attrs class cannot state; everything else is the same
    assert mine["properties"]["age"] == {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "null"}],
                                         "default": None, "description": "Age in years, if stated"}
    mine["properties"]["age"] = theirs["properties"]["age"]
    assert mine == theirs
    assert "$ref" not in json.dumps(mine) and "title" not in json.dumps(mine)


def test_schema_keeps_pydantic_details_and_the_class_config() -> None:
    class Loose(BaseModel):
        model_config = ConfigDict(extra="allow")
        only: Literal["x"]
        when: datetime.date
        code: str = Field(alias="Code", pattern=r"^[A-Z]{3}$", default="ABC")

    class Strict(BaseModel):
        model_config = ConfigDict(extra="forbid")
        title: str  # a property called "title" is a field, not pydantic's title noise

    loose = schema_of(Loose)
    assert loose["additionalProperties"] is True and loose["required"] == ["only", "when"]
    assert loose["properties"] == {
        "only": {"type": "string", "enum": ["x"]},
        "when": {"type": "string", "format": "date"},
        "Code": {"type": "string", "pattern": "^[A-Z]{3}$", "default": "ABC"},
    }
    assert schema_of(Strict) == {"type": "object", "properties": {"title": {"type": "string"}},
                                 "required": ["title"], "additionalProperties": False}


def test_a_discriminated_union_becomes_any_of_inlined_objects() -> None:
    class Cat(BaseModel):
        pet: Literal["cat"]
        lives: int

    class Dog(BaseModel):
        pet: Literal["dog"]
        good: bool

    class Owner(BaseModel):
        pets: list[Cat | Dog] = Field(discriminator=None)
        best: Cat | Dog = Field(discriminator="pet")

    schema = schema_of(Owner)
    best = schema["properties"]["best"]
    assert [option["properties"]["pet"]["enum"] for option in best["anyOf"]] == [["cat"], ["dog"]]
    text = json.dumps(schema)
    assert not any(word in text for word in ('"$ref"', '"$defs"', '"oneOf"', '"discriminator"', '"const"'))


def test_recursive_and_undescribable_models_are_a_clear_error() -> None:
    class Node(BaseModel):
        children: list[Node] = []

    Node.model_rebuild()
    with pytest.raises(SchemaError, match="Node refers to itself"):
        schema_of(Node)

    class Opaque(BaseModel):
        model_config = ConfigDict(arbitrary_types_allowed=True)
        handle: Path

    class Blob(BaseModel):
        model_config = ConfigDict(arbitrary_types_allowed=True)
        thing: object = Field(default_factory=object)
        custom: attrs.Attribute  # type: ignore[type-arg]

    schema_of(Opaque)  # a Path is a string to pydantic: fine
    with pytest.raises(SchemaError, match="pydantic cannot describe Blob") as info:
        ExtractorBuilder(Blob, openai.Client("sk-x", base_url="http://127.0.0.1:9/v1").completion_model("m"))
    assert isinstance(info.value, RigError)


# --- extractors, end to end against the FakeProvider ----------------------------------------------------


def test_extract_a_pydantic_model(fake: FakeProvider) -> None:
    fake.script(Reply.tool_calls([("submit", {"name": "Ada Lovelace", "age": 36, "mood": "sad",
                                              "home": {"city": "London"}, "addresses": [{"city": "Paris"}]})]))
    extractor = client_of(fake).extractor(Person, "fake-model").build()
    person = extractor.extract("Ada Lovelace, 36, of London, sad, once in Paris")
    assert person == Person(name="Ada Lovelace", age=36, mood=Mood.SAD, home=Address(city="London"),
                            addresses=[Address(city="Paris")])
    assert isinstance(person.home, Address) and person.mood is Mood.SAD
    (body,) = [r.json for r in fake.requests]
    assert body["tools"][0]["function"]["parameters"] == schema_of(Person)
    assert body["tool_choice"] == "required"


def test_a_validator_refusal_is_sent_back_and_retried(fake: FakeProvider) -> None:
    fake.script(Reply.tool_calls([("submit", {"name": "ada", "age": 36})]),
                Reply.tool_calls([("submit", {"name": "Ada", "age": 36})]))
    out = client_of(fake).extractor(Person, "fake-model").retries(1).build().extract_with_usage("ada, 36")
    assert out.data == Person(name="Ada", age=36) and out.attempts == 2
    feedback = fake.requests[1].json["messages"][-1]
    assert feedback["role"] == "tool"
    assert "$.name: Value error, a name starts with a capital letter" in feedback["content"]
    assert "errors.pydantic.dev" not in feedback["content"]  # no links for the model to chase


class Reading(BaseModel):
    label: str
    value: float = Field(allow_inf_nan=False)
    when: datetime.date | None = None

    @model_validator(mode="after")
    def labelled(self) -> Reading:
        if self.label == "?":
            raise ValueError("label must say what was measured")
        return self


@pytest.mark.parametrize(
    ("target", "answer", "problem"),
    [
        (Person, {"name": 5}, "$.name: expected string, got integer 5"),
        (Person, {}, "$: missing required property 'name'"),
        (Person, {"name": "Ada", "height": 1.8}, "$: unexpected property 'height' (known: name, age, nick"),
        (Person, {"name": "Ada", "age": -1}, "$.age: Input should be greater than or equal to 0"),
        (Person, {"name": "Ada", "mood": "angry"}, "$.mood: expected one of 'happy', 'sad', got 'angry'"),
        (Person, {"name": "Ada", "home": {"city": {"deep": [[[[{"deeper": 1}]]]]}}},
         "$.home: expected object or null"),
        (Person, {"name": "Ada", "addresses": [{"city": "Rome"}, {"town": "Oslo"}]},
         "$.addresses[1]: missing required property 'city'"),
        (Reading, {"label": "t", "value": 1, "when": "last week"}, "$.when: Input should be a valid date"),
        (Reading, {"label": "?", "value": 1}, "$: Value error, label must say what was measured"),
        (list[Reading], {"value": [{"label": "a", "value": 1}, {"label": "b", "value": "x"}]},
         "$.value[1].value: expected number, got string 'x'"),
        (list[Reading], {"value": [{"label": "a", "value": 1}, {"label": "?", "value": 2}]},
         "$.value[1]: Value error, label must say what was measured"),
    ],
)
def test_hostile_answers_are_an_extraction_error(fake: FakeProvider, target: Any, answer: dict[str, Any] | str,
                                                  problem: str) -> None:
    fake.script(Reply.tool_calls([("submit", answer)]))
    with pytest.raises(ExtractionError) as info:
        client_of(fake).extractor(target, "fake-model").build().extract("anything")
    err = info.value
    assert isinstance(err, RigError) and not isinstance(err, pydantic.ValidationError)
    assert any(p.startswith(problem) for p in err.problems), err.problems
    assert problem in str(err)
    assert err.attempts == 1 and len(fake.requests) == 1


@pytest.mark.parametrize(
    ("target", "answer", "problem"),
    [(Reading, '{"label": "t", "value": NaN}', "$.value: Input should be a finite number"),
     (Person, '{"name": "Ada", "age": NaN}', "$.age: expected integer or null, got number nan")],
)
def test_nan_is_refused(fake: FakeProvider, target: Any, answer: str, problem: str) -> None:
    fake.script(Reply.tool_calls([("submit", answer)]))
    with pytest.raises(ExtractionError) as info:
        client_of(fake).extractor(target, "fake-model").build().extract("anything")
    assert any(p.startswith(problem) for p in info.value.problems), info.value.problems


def test_a_strict_model_takes_json_values(fake: FakeProvider) -> None:
    # strict pydantic refuses "2024-01-31" for a date in Python but not in JSON, which is what arrived
    class Visit(BaseModel):
        model_config = ConfigDict(strict=True)
        on: datetime.date
        mood: Mood

    fake.script(Reply.tool_calls([("submit", {"on": "2024-01-31", "mood": "happy"})]))
    visit = client_of(fake).extractor(Visit, "fake-model").build().extract("a happy visit on 31 January 2024")
    assert visit == Visit(on=datetime.date(2024, 1, 31), mood=Mood.HAPPY)


class Tags(RootModel[list[str]]):
    pass


@attrs.frozen
class Visitor:
    who: Person
    room: Room | None = None  # defined below, resolved when first described


def test_root_models_travel_wrapped_and_mixed_classes_nest(fake: FakeProvider) -> None:
    fake.script(Reply.tool_calls([("submit", {"value": ["a", "b"]})]),
                Reply.tool_calls([("submit", {"who": {"name": "Ada"}, "room": {"beds": 2}})]))
    client = client_of(fake)
    assert client.extractor(Tags, "fake-model").build().extract("a, b") == Tags(["a", "b"])
    assert fake.requests[0].json["tools"][0]["function"]["parameters"]["properties"]["value"] == {
        "type": "array", "items": {"type": "string"}}
    visitor = client.extractor(Visitor, "fake-model").build().extract("Ada, two beds")
    assert visitor == Visitor(Person(name="Ada"), Room(beds=2))


def test_extractor_reprs_name_the_class_and_model() -> None:
    client = openai.Client("sk-secret-key", base_url="http://127.0.0.1:9/v1")
    builder = client.extractor(Person, "gpt-4o").retries(2).temperature(0).context("glossary")
    assert repr(builder) == ("<ExtractorBuilder Person, openai:gpt-4o, retries=2, documents=1, temperature=0; "
                             "not built: call .build()>")
    assert repr(builder.build()) == "Extractor(Person, openai:gpt-4o, retries=2, documents=1, temperature=0)"
    assert repr(client.extractor(Person, "gpt-4o").build()) == "Extractor(Person, openai:gpt-4o)"
    assert "sk-secret" not in repr(builder) + repr(builder.build())


# --- tools ------------------------------------------------------------------------------------------------


class Room(BaseModel):
    beds: int = Field(ge=1, le=4, description="Beds in the room")
    view: Literal["sea", "street"] = "street"


class Guest(BaseModel):
    name: str
    email: str
    arrives: datetime.date

    @field_validator("email")
    @classmethod
    def has_at(cls, value: str) -> str:
        if "@" not in value:
            raise ValueError("an email address has an @")
        return value


class Booking(BaseModel):
    guest: Guest
    rooms: list[Room]
    nights: int


@tool
def book(guest: Guest, rooms: list[Room], nights: int = 1) -> Booking:
    """Book rooms for a guest.

    Args:
        guest: Who is coming.
        rooms: The rooms to hold.
        nights: How long they stay.
    """
    assert isinstance(guest, Guest) and all(isinstance(r, Room) for r in rooms)
    return Booking(guest=guest, rooms=rooms, nights=nights)


ADA = {"name": "Ada", "email": "ada@example.org", "arrives": "2024-05-01"}
GOOD: dict[str, Any] = {"guest": ADA, "rooms": [{"beds": 2, "view": "sea"}, {"beds": 1}], "nights": 3}


def test_tool_parameters_get_the_model_schema_and_instances() -> None:
    parameters = book.definition().parameters
    assert parameters["required"] == ["guest", "rooms"]
    assert parameters["properties"]["guest"] == {**schema_of(Guest), "description": "Who is coming."}
    assert parameters["properties"]["rooms"]["items"] == schema_of(Room)
    assert json.loads(book.call(GOOD)) == {  # a pydantic result is dumped in JSON mode
        "guest": {"name": "Ada", "email": "ada@example.org", "arrives": "2024-05-01"},
        "rooms": [{"beds": 2, "view": "sea"}, {"beds": 1, "view": "street"}], "nights": 3}


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"guest": {**ADA, "email": "ada"}}, "$.guest.email: Value error, an email address has an @"),
        ({"rooms": [{"beds": 2}, {"beds": 9}]}, "$.rooms[1].beds: Input should be less than or equal to 4"),
        ({"rooms": [{"beds": 2, "view": "garden"}]}, "$.rooms[0].view: expected one of 'sea', 'street'"),
        ({"guest": {**ADA, "arrives": "soon"}}, "$.guest.arrives: Input should be a valid date"),
        ({"guest": "Ada"}, "$.guest: expected object, got string 'Ada'"),
        ({"rooms": [{"beds": 1, "pets": 2}]}, "$.rooms[0]: unexpected property 'pets' (known: beds, view)"),
    ],
)
def test_bad_pydantic_arguments_are_tool_argument_errors(change: dict[str, Any], problem: str) -> None:
    with pytest.raises(ToolArgumentsError) as info:
        book.call({**GOOD, **change})
    assert info.value.tool == "book" and not isinstance(info.value, pydantic.ValidationError)
    assert any(p.startswith(problem) for p in info.value.problems), info.value.problems


def test_an_optional_pydantic_parameter() -> None:
    @tool
    def where(room: Room | None = None) -> str:
        """Say where."""
        return "anywhere" if room is None else f"{room.beds} beds, {room.view} view"

    assert where.definition().parameters["properties"]["room"] == {"anyOf": [schema_of(Room), {"type": "null"}],
                                                                   "default": None}
    assert [where.call(args) for args in ({}, {"room": None}, {"room": {"beds": 3, "view": "sea"}})] == [
        "anywhere", "anywhere", "3 beds, sea view"]
    with pytest.raises(ToolArgumentsError, match=r"\$\.room\.beds: Input should be greater than or equal to 1"):
        where.call({"room": {"beds": 0}})


def test_an_agent_calls_a_pydantic_tool_and_reads_its_errors(fake: FakeProvider) -> None:
    bad = {**GOOD, "rooms": [{"beds": 0}]}
    fake.script(Reply.tool_calls([("book", bad, "c1")]), Reply.tool_calls([("book", GOOD, "c2")]),
                Reply.text("Booked."))
    agent = client_of(fake).agent("fake-model").tool(book).build()
    assert agent.prompt("Book two rooms for Ada from 1 May, 3 nights") == "Booked."
    first, second = (r.json["messages"][-1] for r in fake.requests[1:])
    assert first["tool_call_id"] == "c1"
    assert "$.rooms[0].beds: Input should be greater than or equal to 1" in first["content"]
    assert second["tool_call_id"] == "c2" and json.loads(second["content"])["nights"] == 3


# --- optional, cheap and typed ----------------------------------------------------------------------------


def test_pydantic_is_imported_only_when_a_pydantic_class_is_given() -> None:
    code = (
        "import sys, json, attrs\n"
        "import rig_sync.tool, rig_sync.extractor\n"
        "from rig_sync.providers import openai\n"
        "from rig_sync.testing import FakeProvider, Reply\n"
        "@rig_sync.tool.tool\n"
        "def add(a: int, b: int) -> int:\n"
        "    'Add.'\n"
        "    return a + b\n"
        "@attrs.frozen\n"
        "class P:\n"
        "    name: str\n"
        "with FakeProvider() as fake:\n"
        "    fake.script(Reply.tool_calls([('submit', {'name': 'Ada'})]))\n"
        "    c = openai.Client(fake.api_key, base_url=fake.base_url)\n"
        "    assert c.extractor(P, 'm').build().extract('Ada') == P('Ada')\n"
        "assert add.call({'a': 1, 'b': 2}) == '3'\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('pydantic', 'pydantic_core'))))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


def test_mypy_infers_the_extracted_pydantic_class(tmp_path: Path) -> None:
    script = tmp_path / "user.py"
    script.write_text(
        "from pydantic import BaseModel\n"
        "from rig_sync.providers import openai\n"
        "class Person(BaseModel):\n"
        "    name: str\n"
        "client = openai.Client('sk-test', base_url='http://127.0.0.1:9/v1')\n"
        "person: Person = client.extractor(Person, 'gpt-4o').build().extract('Ada')\n"
        "print(person.name.upper())\n"
        "wrong: int = client.extractor(Person, 'gpt-4o').retries(1).build().extract('Ada')\n",  # planted misuse
        encoding="utf-8",
    )
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-error-summary", str(script)],
                          capture_output=True, text=True, timeout=300, cwd=root)
    errors = [line for line in done.stdout.splitlines() if ": error:" in line]
    assert [line.split(":")[1] for line in errors] == ["8"], done.stdout + done.stderr
    assert '"Person"' in errors[0] and '"int"' in errors[0]
