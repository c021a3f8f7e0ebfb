"""Completion core types: the request and its builder, the response, usage, tools and documents.

Bad input must be refused before any request leaves: proved with `responses` holding no
registered URL (a request would fail) and with the loopback FakeProvider's request counter.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import pytest
import responses
from conftest import RecordingModel

from rig_sync.completion import (
    BaseCompletionModel,
    CompletionModel,
    CompletionRequest,
    CompletionRequestBuilder,
    CompletionResponse,
    Document,
    ToolChoice,
    ToolDefinition,
    Usage,
    deep_merge,
)
from rig_sync.errors import InvalidRequestError, RigError
from rig_sync.message import Message, Reasoning, Text, ToolCall
from rig_sync.providers import openai
from rig_sync.testing import FakeProvider

BASE = "http://127.0.0.1:9/v1"  # never reached: `responses` answers, or nothing is sent at all



def builder(prompt: str | Message = "Hello") -> CompletionRequestBuilder:
    return RecordingModel().completion_request(prompt)


WEATHER = ToolDefinition(
    "get_weather",
    "The weather in a city",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


# --- the builder ----------------------------------------------------------------------------------


def test_builder_collects_every_setting_into_the_request() -> None:
    history = [Message.user("Hi"), Message.assistant("Hello!")]
    doc1, doc2, doc3 = Document("d1", "one"), Document("d2", "two"), Document("d3", "three")
    other_tool = ToolDefinition("noop")
    req = (
        builder("What now?")
        .preamble("Be brief")
        .message(history[0])
        .messages(history[1:])
        .document(doc1)
        .documents([doc2, doc3])
        .tool(WEATHER)
        .tools([other_tool])
        .temperature(0.2)
        .max_tokens(64)
        .tool_choice("required")
        .build()
    )
    assert req.preamble == "Be brief"
    assert req.chat_history == (*history, Message.user("What now?"))  # the prompt is last
    assert req.documents == (doc1, doc2, doc3)
    assert req.tools == (WEATHER, other_tool)
    assert (req.temperature, req.max_tokens) == (0.2, 64)
    assert req.tool_choice == ToolChoice("required")


def test_send_hands_the_built_request_to_the_model() -> None:
    model = RecordingModel()
    resp = model.completion_request("Hello").temperature(0).send()
    assert resp.text == "ok"
    assert len(model.requests) == 1
    assert model.requests[0].chat_history[-1] == Message.user("Hello")
    assert model.requests[0].temperature == 0


def test_a_message_can_be_the_prompt() -> None:
    prompt = Message.user(["Describe", Text("this")])
    assert builder(prompt).build().chat_history == (prompt,)


def test_additional_params_are_deep_merged_across_calls() -> None:
    b = builder()
    b.additional_params({"response_format": {"type": "json_schema", "json_schema": {"name": "a"}}, "seed": 1})
    b.additional_params({"response_format": {"json_schema": {"strict": True}}, "seed": 2, "top_p": 0.5})
    assert b.build().additional_params == {
        "response_format": {"type": "json_schema", "json_schema": {"name": "a", "strict": True}},
        "seed": 2,
        "top_p": 0.5,
    }


def test_additional_params_are_copied_not_aliased() -> None:
    given: dict[str, Any] = {"metadata": {"team": "a"}}
    b = builder().additional_params(given)
    given["metadata"]["team"] = "changed later"
    given["extra"] = 1
    assert b.build().additional_params == {"metadata": {"team": "a"}}


def test_deep_merge_replaces_non_dicts_and_leaves_inputs_alone() -> None:
    base = {"a": {"x": 1}, "b": [1, 2], "c": 1}
    extra = {"a": {"y": 2}, "b": [3], "c": {"now": "a dict"}}
    assert deep_merge(base, extra) == {"a": {"x": 1, "y": 2}, "b": [3], "c": {"now": "a dict"}}
    assert base == {"a": {"x": 1}, "b": [1, 2], "c": 1}
    assert deep_merge(None, None) == {}
    with pytest.raises(TypeError, match="mapping"):
        deep_merge({}, [("a", 1)])  # type: ignore[arg-type]


def test_tool_choice_forms() -> None:
    assert builder().tool_choice("auto").build().tool_choice == ToolChoice("auto")
    assert builder().tool_choice("none").build().tool_choice == ToolChoice("none")
    assert builder().tool_choice("get_weather").build().tool_choice == ToolChoice.tool("get_weather")
    assert builder().tool_choice(ToolChoice.tool("x")).build().tool_choice == ToolChoice("tool", "x")
    with pytest.raises(InvalidRequestError, match="tool_choice"):
        builder().tool_choice("")
    with pytest.raises(InvalidRequestError, match="mode"):
        ToolChoice("sometimes")
    with pytest.raises(InvalidRequestError):
        ToolChoice("tool")  # a tool choice without the tool's name


def test_request_defaults_are_empty() -> None:
    req = builder().build()
    assert (req.preamble, req.documents, req.tools, req.temperature, req.max_tokens) == (None, (), (), None, None)
    assert (req.tool_choice, req.additional_params) == (None, None)


def test_request_is_a_frozen_value() -> None:
    req = builder().build()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        req.temperature = 1.0  # type: ignore[misc]
    assert req == builder().build()


def test_documents_lead_the_history_for_providers_without_native_documents() -> None:
    req = builder("Summarise").document(Document("doc-1", "Rust is fast.", {"source": "wiki"})).build()
    first, prompt = req.messages_with_documents()
    assert prompt == Message.user("Summarise")
    assert first.text == "<file id: doc-1>\nsource: wiki\nRust is fast.\n</file>"
    assert builder().build().messages_with_documents() == builder().build().chat_history


# --- refused input --------------------------------------------------------------------------------

Start = Callable[..., CompletionRequestBuilder]  # `model.completion_request`

# Each mistake is written once against any model's `completion_request`.
BAD_BUILDS: dict[str, tuple[Callable[[Start], Any], type[Exception]]] = {
    "empty prompt": (lambda start: start(""), InvalidRequestError),
    "whitespace prompt": (lambda start: start("  \n\t"), InvalidRequestError),
    "non-str prompt": (lambda start: start(42), TypeError),
    "None prompt": (lambda start: start(None), TypeError),
    "NaN temperature": (lambda start: start("hi").temperature(math.nan), InvalidRequestError),
    "negative temperature": (lambda start: start("hi").temperature(-0.1), InvalidRequestError),
    "too-high temperature": (lambda start: start("hi").temperature(2.5), InvalidRequestError),
    "infinite temperature": (lambda start: start("hi").temperature(math.inf), InvalidRequestError),
    "bool temperature": (lambda start: start("hi").temperature(True), InvalidRequestError),
    "str temperature": (lambda start: start("hi").temperature("0.5"), InvalidRequestError),
    "zero max_tokens": (lambda start: start("hi").max_tokens(0), InvalidRequestError),
    "negative max_tokens": (lambda start: start("hi").max_tokens(-5), InvalidRequestError),
    "bool max_tokens": (lambda start: start("hi").max_tokens(True), InvalidRequestError),
    "float max_tokens": (lambda start: start("hi").max_tokens(10.0), InvalidRequestError),
    "non-str preamble": (lambda start: start("hi").preamble(5), TypeError),
    "str as message": (lambda start: start("hi").message("hi"), TypeError),
    "str as messages": (lambda start: start("hi").messages("hi"), TypeError),
    "dict as tool": (lambda start: start("hi").tool({"name": "x"}), TypeError),
    "str as document": (lambda start: start("hi").document("text"), TypeError),
    "list as params": (lambda start: start("hi").additional_params([1]), TypeError),
}


@pytest.mark.parametrize("case", list(BAD_BUILDS))
def test_bad_builder_input_is_refused_at_the_call(case: str) -> None:
    make, error = BAD_BUILDS[case]
    model = RecordingModel()
    with pytest.raises(error) as info:
        make(model.completion_request)
    assert model.requests == []
    assert str(info.value)  # a message saying what was wrong
    if error is InvalidRequestError:
        assert isinstance(info.value, RigError) and isinstance(info.value, ValueError)


def test_the_error_names_the_bad_value() -> None:
    with pytest.raises(InvalidRequestError, match=r"temperature must be a number from 0 to 2, not 3"):
        builder().temperature(3)
    with pytest.raises(InvalidRequestError, match=r"max_tokens must be a positive integer, not 0"):
        builder().max_tokens(0)
    with pytest.raises(InvalidRequestError, match="prompt is empty"):
        builder(" ")


def test_request_checks_fields_when_built_directly() -> None:
    hello = (Message.user("hi"),)
    with pytest.raises(InvalidRequestError, match="at least one message"):
        CompletionRequest(chat_history=())
    with pytest.raises(InvalidRequestError):
        CompletionRequest(hello, temperature=-1)
    with pytest.raises(InvalidRequestError):
        CompletionRequest(hello, max_tokens=0)
    with pytest.raises(TypeError):
        CompletionRequest(("hi",))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        CompletionRequest(hello, tools=[{"name": "x"}])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        CompletionRequest(hello, documents="a document")  # type: ignore[arg-type]
    # A tool choice given as text is understood.
    assert CompletionRequest(hello, tool_choice="auto").tool_choice == ToolChoice("auto")


@pytest.fixture
def no_network() -> Iterator[responses.RequestsMock]:
    """HTTP through `responses` with nothing registered: any request that is sent fails."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


def openai_model(base_url: str = BASE, key: str = "sk-test") -> openai.ChatCompletionsModel:
    return openai.Client(key, base_url=base_url, max_retries=0).completion_model("gpt-4o")


@pytest.mark.parametrize("case", list(BAD_BUILDS))
def test_bad_input_sends_nothing_through_a_real_client(case: str, no_network: responses.RequestsMock) -> None:
    make, error = BAD_BUILDS[case]
    model = openai_model()
    with pytest.raises(error):
        make(model.completion_request).send()
    with pytest.raises(error):
        make(model.completion_request).stream()
    assert len(no_network.calls) == 0


def test_bad_input_never_reaches_the_fake_provider() -> None:
    with FakeProvider() as fake:
        model = openai_model(fake.base_url, fake.api_key)
        for make in (
            lambda: model.completion_request("").send(),
            lambda: model.completion_request("   ").stream(),
            lambda: model.completion_request(3).send(),  # type: ignore[arg-type]
            lambda: model.completion_request("hi").temperature(math.nan).send(),
            lambda: model.completion_request("hi").max_tokens(-1).send(),
        ):
            with pytest.raises((InvalidRequestError, TypeError)):
                make()
        assert fake.request_count == 0
        # And a good request does arrive, so the counter is live.
        assert model.completion_request("Hello").max_tokens(5).send().text
        assert fake.request_count == 1


def test_a_valid_request_reaches_the_wire_as_built(no_network: responses.RequestsMock) -> None:
    no_network.add(
        responses.POST,
        f"{BASE}/chat/completions",
        json={"choices": [{"message": {"content": "hi"}, "finish_reason": "stop"}],
              "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}},
    )
    resp = (
        openai_model()
        .completion_request("Hello")
        .preamble("Be brief")
        .temperature(0.2)
        .max_tokens(64)
        .tool(WEATHER)
        .tool_choice("get_weather")
        .additional_params({"metadata": {"a": "1"}})
        .additional_params({"metadata": {"b": "2"}})
        .send()
    )
    body = json.loads(no_network.calls[0].request.body or b"")
    assert body["messages"] == [{"role": "system", "content": "Be brief"}, {"role": "user", "content": "Hello"}]
    assert (body["temperature"], body["max_tokens"]) == (0.2, 64)
    assert body["tools"][0]["function"]["name"] == "get_weather"
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert body["metadata"] == {"a": "1", "b": "2"}
    assert resp.text == "hi" and resp.usage == Usage(3, 1, 4)


# --- the response ---------------------------------------------------------------------------------


def test_response_text_tool_calls_reasoning_and_message() -> None:
    call = ToolCall("c1", "get_weather", {"city": "Paris"})
    resp = CompletionResponse(
        (Reasoning("think"), Text("It is "), Text("sunny."), call),
        Usage(10, 5, 15),
        raw_response={"id": "x"},
        finish_reason="tool_calls",
    )
    assert resp.text == "It is sunny."
    assert resp.tool_calls == [call]
    assert resp.reasoning == "think"
    assert resp.raw_response == {"id": "x"}
    msg = resp.message()
    assert msg.role == "assistant" and msg.content == resp.choice
    # The raw body does not take part in equality: two answers with the same content are equal.
    assert resp == CompletionResponse(resp.choice, Usage(10, 5, 15), raw_response=None, finish_reason="tool_calls")


def test_an_empty_response_still_makes_a_valid_history_message() -> None:
    msg = CompletionResponse(()).message()
    assert msg.role == "assistant" and msg.text == ""
    assert CompletionResponse(()).usage == Usage()


def test_usage_adds_up() -> None:
    total = Usage(1, 2, 3, 0) + Usage(10, 20, 30, 5)
    assert total == Usage(11, 22, 33, 5)
    assert sum([Usage(1, 1, 2), Usage(2, 2, 4), Usage(3, 3, 6)]) == Usage(6, 6, 12)  # sum() starts at 0
    with pytest.raises(TypeError):
        Usage() + 1  # type: ignore[operator]


def test_tool_definition_and_document_validate() -> None:
    assert ToolDefinition("noop").parameters == {"type": "object", "properties": {}}
    with pytest.raises(InvalidRequestError, match="name"):
        ToolDefinition("  ")
    with pytest.raises(TypeError):
        ToolDefinition("x", parameters="not a schema")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Document(1, "text")  # type: ignore[arg-type]
    assert Document("a", "b").render() == "<file id: a>\nb\n</file>"


def test_base_model_satisfies_the_protocol_and_refuses_unimplemented_calls() -> None:
    model = RecordingModel()
    assert isinstance(model, CompletionModel)
    assert isinstance(openai_model(), CompletionModel)
    with pytest.raises(NotImplementedError):
        model.stream(model.completion_request("x").build())


# --- readable objects (notebooks and REPLs) ---------------------------------------------------------


def test_an_unsent_builder_says_what_it_holds_and_how_to_send_it() -> None:
    key = "sk-secret-0123456789abcdef"
    b = (openai_model(key=key).completion_request("Hello")
         .messages([Message.user("Hi"), Message.assistant("Hello!")])
         .preamble("You are a careful assistant who answers every question in full sentences.")
         .tool(WEATHER).temperature(0.2).max_tokens(64).tool_choice("required")
         .additional_params({"metadata": {"token": "hidden-value"}}))
    text = repr(b)
    assert text.startswith("<CompletionRequestBuilder openai:gpt-4o, 3 messages, prompt='Hello'")
    assert "preamble='You are a careful assistant who answers…'" in text
    for part in ("tools=['get_weather']", "tool_choice='required'", "temperature=0.2", "max_tokens=64",
                 "additional_params=['metadata']", "not sent: call .send() or .stream()"):
        assert part in text
    assert key not in text and "hidden-value" not in text and "object at 0x" not in text


def test_a_builder_whose_prompt_is_a_tool_result_says_so() -> None:
    text = repr(builder(Message.tool_result("c1", "5")))
    assert "1 message, prompt=[ToolResult]" in text


def test_a_response_repr_is_short_and_leaves_out_the_raw_body() -> None:
    raw = {"choices": [{"message": {"content": "x" * 100_000}}]}
    resp = CompletionResponse((Reasoning("hmm"), Text("The weather in Paris is " + "sunny " * 1000),
                               ToolCall("c1", "get_weather", {"city": "Paris"})),
                              Usage(10, 5, 15), raw_response=raw, finish_reason="tool_calls", model="gpt-4o")
    text = repr(resp)
    assert text.startswith("CompletionResponse(text='The weather in Paris is sunny")
    assert "…'" in text and "tool_calls=[get_weather({'city': 'Paris'})]" in text and "reasoning='hmm'" in text
    assert "usage=Usage(input_tokens=10, output_tokens=5" in text and "finish_reason='tool_calls'" in text
    assert "model='gpt-4o'" in text and "x" * 100 not in text and len(text) < 400


def test_resp_text_is_the_natural_spelling() -> None:
    resp = builder().send()
    assert resp.text == resp.choice[0].text == "ok"  # type: ignore[union-attr]
    assert repr(resp) == "CompletionResponse(text='ok', usage=Usage(input_tokens=1, output_tokens=1, " \
                         "total_tokens=2))"  # only the figures reported


def test_entry_points_document_what_they_return_and_raise() -> None:
    for method, returned in ((CompletionRequestBuilder.send, "Returns a `CompletionResponse`"),
                             (CompletionRequestBuilder.stream, "return at once a `StreamingCompletionResponse`"),
                             (BaseCompletionModel.completion_request, "Returns a `CompletionRequestBuilder`")):
        doc = " ".join((method.__doc__ or "").split())
        assert returned in doc and "Raises" in doc
