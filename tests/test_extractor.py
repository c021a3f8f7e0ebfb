"""Extractors: a forced `submit` tool, retries that tell the model what was wrong, ExtractionError;
with a scripted model, over HTTP with `responses`, and against the loopback FakeProvider."""

from __future__ import annotations

import dataclasses
import enum
import json
from typing import Any

import attrs
import pytest
import responses
from conftest import sent_json

from rig_sync._schema import SchemaError, schema_of
from rig_sync.completion import BaseCompletionModel, CompletionRequest, CompletionResponse, ToolChoice, Usage
from rig_sync.errors import APIConnectionError, ResponseDecodeError, RigError
from rig_sync.extractor import ExtractionError, ExtractionResponse, ExtractorBuilder
from rig_sync.message import Message, Text, ToolCall, ToolResult
from rig_sync.providers import openai
from rig_sync.testing import FakeProvider, Reply


class Mood(enum.Enum):
    HAPPY = "happy"
    SAD = "sad"


@attrs.frozen
class Address:
    city: str
    country: str = "unknown"


@attrs.frozen
class Person:
    """A person mentioned in the text.

    Attributes:
        name: Full name.
        age: Age in years, if stated.
    """

    name: str
    age: int | None = None
    mood: Mood = Mood.HAPPY
    addresses: list[Address] = attrs.field(factory=list)


@dataclasses.dataclass
class Tags:
    tags: list[str]


Step = CompletionResponse | Exception


class ScriptedModel(BaseCompletionModel):
    provider = "scripted"
    model = "scripted-1"

    def __init__(self, *steps: Step) -> None:
        self.steps = list(steps)
        self.requests: list[CompletionRequest] = []

    def completion(self, request: CompletionRequest) -> CompletionResponse:
        self.requests.append(request)
        step = self.steps.pop(0)
        if isinstance(step, Exception):
            raise step
        return step


def submit(args: dict[str, Any], *, also: tuple[str, dict[str, Any]] | None = None) -> CompletionResponse:
    parts = [ToolCall("s1", "submit", args)]
    if also:
        parts.insert(0, ToolCall("o1", also[0], also[1]))
    return CompletionResponse(tuple(parts), Usage(10, 5, 15))


def said(text: str) -> CompletionResponse:
    return CompletionResponse((Text(text),), Usage(3, 2, 5))


# --- the happy path -----------------------------------------------------------------------------------


def test_extract_builds_the_instance_from_a_forced_submit_call() -> None:
    model = ScriptedModel(submit({"name": "Ada Lovelace", "age": 36, "mood": "sad",
                                  "addresses": [{"city": "London"}]}))
    person = ExtractorBuilder(Person, model).build().extract("Ada Lovelace, 36, lived in London. She was sad.")
    assert person == Person("Ada Lovelace", 36, Mood.SAD, [Address("London")])
    (request,) = model.requests
    assert request.tool_choice == ToolChoice("required")
    (definition,) = request.tools
    assert definition.name == "submit" and definition.parameters == schema_of(Person)
    assert definition.parameters["properties"]["name"]["description"] == "Full name."
    assert request.preamble is not None and "`submit`" in request.preamble
    assert request.chat_history == (Message.user("Ada Lovelace, 36, lived in London. She was sad."),)


def test_builder_settings_reach_the_request() -> None:
    model = ScriptedModel(submit({"name": "X"}))
    extractor = (ExtractorBuilder(Person, model).preamble("Names are in CAPS.").context("Glossary: X is a name")
                 .temperature(0).max_tokens(100).additional_params({"seed": 7}).build())
    extractor.extract("X")
    request = model.requests[0]
    assert request.preamble is not None and request.preamble.endswith("Names are in CAPS.")
    assert request.documents[0].text == "Glossary: X is a name"
    assert (request.temperature, request.max_tokens, request.additional_params) == (0, 100, {"seed": 7})


def test_extract_with_usage() -> None:
    model = ScriptedModel(said("Let me think."), submit({"name": "Bo"}))
    out = ExtractorBuilder(Person, model).retries(1).build().extract_with_usage("Bo")
    assert isinstance(out, ExtractionResponse)
    assert out.data == Person("Bo") and out.attempts == 2 and out.usage == Usage(13, 7, 20)


def test_an_explicit_null_fills_an_optional_field() -> None:
    model = ScriptedModel(submit({"name": "Ada", "age": None}))
    assert ExtractorBuilder(Person, model).build().extract("Ada") == Person("Ada", None)


def test_non_object_types_travel_wrapped() -> None:
    model = ScriptedModel(submit({"value": ["a", "b"]}))
    extractor = ExtractorBuilder(list[str], model).build()
    assert extractor.extract("a and b") == ["a", "b"]
    assert model.requests[0].tools[0].parameters["required"] == ["value"]


def test_dataclass_target() -> None:
    model = ScriptedModel(submit({"tags": ["x"]}))
    assert ExtractorBuilder(Tags, model).build().extract("x") == Tags(["x"])


# --- invalid output is retried, then ExtractionError -------------------------------------------------------


def test_wrong_arguments_are_retried_with_the_problem() -> None:
    model = ScriptedModel(submit({"name": "Ada", "age": "thirty-six"}), submit({"name": "Ada", "age": 36}))
    assert ExtractorBuilder(Person, model).retries(1).build().extract("Ada, 36") == Person("Ada", 36)
    retry = model.requests[1].chat_history
    assert retry[1].tool_calls == [ToolCall("s1", "submit", {"name": "Ada", "age": "thirty-six"})]
    (result,) = retry[2].content
    assert isinstance(result, ToolResult) and result.is_error and result.id == "s1"
    assert "$.age: expected integer or null, got string 'thirty-six'" in result.content


def test_no_tool_call_is_retried_with_a_reminder() -> None:
    model = ScriptedModel(said("Ada is 36."), submit({"name": "Ada"}))
    ExtractorBuilder(Person, model).retries(1).build().extract("Ada")
    reminder = model.requests[1].chat_history[-1]
    assert reminder.role == "user" and "did not call the `submit` tool" in reminder.text


def test_other_tool_calls_all_get_an_answer() -> None:
    model = ScriptedModel(
        CompletionResponse((ToolCall("o1", "search", {"q": "Ada"}),)),
        submit({"name": "Ada", "age": -1, "extra": 1}, also=("search", {})),
        submit({"name": "Ada"}),
    )
    ExtractorBuilder(Person, model).retries(2).build().extract("Ada")
    first_answer = model.requests[1].chat_history[-1].content
    assert [(r.id, r.is_error) for r in first_answer] == [("o1", True)]  # type: ignore[union-attr]
    second_answer = model.requests[2].chat_history[-1].content
    assert [r.id for r in second_answer] == ["o1", "s1"]  # type: ignore[union-attr]
    assert "unexpected property 'extra'" in second_answer[1].content  # type: ignore[union-attr]


def test_extraction_error_after_the_retries_carries_the_raw_output() -> None:
    model = ScriptedModel(submit({"nom": "Ada"}), submit({"nom": "Ada"}), submit({"nom": "Ada"}))
    with pytest.raises(ExtractionError) as info:
        ExtractorBuilder(Person, model).retries(2).build().extract("Ada")
    err = info.value
    assert isinstance(err, RigError) and err.attempts == 3 and len(model.requests) == 3
    assert json.loads(err.raw_output) == {"nom": "Ada"}
    assert "$: missing required property 'name'" in err.problems
    assert "could not extract Person after 3 attempt(s)" in str(err)
    assert err.usage == Usage(30, 15, 45)
    assert err.response is not None and err.response.tool_calls[0].arguments == {"nom": "Ada"}
    assert [m.role for m in err.history] == ["user", "assistant", "user", "assistant", "user", "assistant"]


def test_extraction_error_on_text_keeps_the_text() -> None:
    model = ScriptedModel(said("I refuse."))
    with pytest.raises(ExtractionError) as info:
        ExtractorBuilder(Person, model).build().extract("Ada")
    assert info.value.raw_output == "I refuse." and info.value.attempts == 1


def test_malformed_json_arguments_are_retried() -> None:
    bad = ResponseDecodeError("not JSON", provider="scripted", field="arguments", body='{"name": ')
    model = ScriptedModel(bad, submit({"name": "Ada"}))
    assert ExtractorBuilder(Person, model).retries(1).build().extract("Ada") == Person("Ada")
    note = model.requests[1].chat_history[-1]
    assert note.role == "user" and "not valid JSON" in note.text


def test_other_errors_propagate() -> None:
    model = ScriptedModel(APIConnectionError("down", provider="scripted"))
    with pytest.raises(APIConnectionError):
        ExtractorBuilder(Person, model).retries(3).build().extract("Ada")
    assert len(model.requests) == 1


def test_bad_builder_input() -> None:
    model = ScriptedModel()
    with pytest.raises(SchemaError):
        ExtractorBuilder(bytes, model)
    with pytest.raises(TypeError, match="CompletionModel"):
        ExtractorBuilder(Person, object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="retries"):
        ExtractorBuilder(Person, model).retries(-1)


# --- over HTTP with `responses` ----------------------------------------------------------------------------


def chat_reply(message: dict[str, Any]) -> dict[str, Any]:
    return {"id": "x", "object": "chat.completion", "created": 0, "model": "m",
            "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}],
            "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}}


def submit_message(arguments: str) -> dict[str, Any]:
    return {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "submit", "arguments": arguments}}]}


def test_extractor_over_openai_http(mocked: responses.RequestsMock) -> None:
    url = "http://127.0.0.1:9/v1/chat/completions"
    mocked.add(responses.POST, url, json=chat_reply(submit_message('{"name": "Ada", "age": "x"}')))
    mocked.add(responses.POST, url, json=chat_reply(submit_message('{"name": "Ada", "age": 36}')))
    client = openai.Client("sk-test", base_url="http://127.0.0.1:9/v1", max_retries=0)
    out = client.extractor(Person, "gpt-4o").retries(1).build().extract_with_usage("Ada is 36")
    assert out.data == Person("Ada", 36) and out.usage.total_tokens == 20
    first = sent_json(mocked, 0)
    assert first["tool_choice"] == "required"
    assert first["tools"][0]["function"]["name"] == "submit"
    assert first["tools"][0]["function"]["parameters"] == schema_of(Person)
    retry = sent_json(mocked, 1)["messages"]
    assert retry[-1]["role"] == "tool" and retry[-1]["tool_call_id"] == "call_1"
    assert "$.age" in retry[-1]["content"]


def test_malformed_json_over_openai_http_is_retried(mocked: responses.RequestsMock) -> None:
    url = "http://127.0.0.1:9/v1/chat/completions"
    mocked.add(responses.POST, url, json=chat_reply(submit_message('{"name": "Ad')))
    mocked.add(responses.POST, url, json=chat_reply(submit_message('{"name": "Ada"}')))
    client = openai.Client("sk-test", base_url="http://127.0.0.1:9/v1", max_retries=0)
    assert client.extractor(Person, "gpt-4o").retries(1).build().extract("Ada") == Person("Ada")
    assert len(mocked.calls) == 2


# --- against the loopback FakeProvider -------------------------------------------------------------------


def test_extractor_against_fake_provider(fake: FakeProvider) -> None:
    fake.script(
        Reply.text("Ada, I think."),
        Reply.tool_calls([("submit", {"name": "Ada", "mood": "happy", "addresses": [{"city": "Paris"}]})]),
    )
    client = openai.Client(fake.api_key, base_url=fake.base_url, timeout=5, max_retries=0)
    out = client.extractor(Person, "fake-model").retries(1).build().extract_with_usage("Ada lives in Paris")
    assert out.data == Person("Ada", None, Mood.HAPPY, [Address("Paris")]) and out.attempts == 2
    bodies = [r.json for r in fake.requests]
    assert bodies[0]["tool_choice"] == "required"
    assert bodies[1]["messages"][-1]["role"] == "user" and "submit" in bodies[1]["messages"][-1]["content"]


def test_extraction_error_against_fake_provider(fake: FakeProvider) -> None:
    fake.script(Reply.tool_calls([("submit", {"age": 3})]))
    client = openai.Client(fake.api_key, base_url=fake.base_url, timeout=5, max_retries=0)
    with pytest.raises(ExtractionError) as info:
        client.extractor(Person, "fake-model").build().extract("someone aged 3")
    assert json.loads(info.value.raw_output) == {"age": 3}
    assert len(fake.requests) == 1


@attrs.define
class Optional_:
    name: str | None = None


def test_cut_off_arguments_are_never_an_empty_extraction(mocked: responses.RequestsMock) -> None:
    url = "http://127.0.0.1:9/v1/chat/completions"
    mocked.add(responses.POST, url, json=chat_reply(submit_message('{"name": "Ad')))
    mocked.add(responses.POST, url, json=chat_reply(submit_message('{"name": "Ada"}')))
    client = openai.Client("sk-test", base_url="http://127.0.0.1:9/v1", max_retries=0)
    assert client.extractor(Optional_, "gpt-4o").retries(1).build().extract("Ada") == Optional_("Ada")
    retry = sent_json(mocked, 1)["messages"]
    assert "not a JSON object" in retry[-1]["content"]
