"""OpenAI-style message dicts, and conversations given in their natural order.

`completion_request`, the builder's `.message()` / `.messages()` and the agent's `prompt` / `chat`
take `[{"role": ..., "content": ...}]` lists as people have them; anything that does not fit is
refused with `InvalidMessageError` naming the message and field. What the providers receive is
checked on the wire: against the loopback FakeProvider and with `responses`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any

import pytest
import responses
from conftest import ADD, RecordingModel, sent_json

from rig_sync.completion import CompletionRequest
from rig_sync.errors import InvalidMessageError, InvalidRequestError, RigError
from rig_sync.message import Audio, DocumentContent, Image, Message, Text, ToolCall, ToolResult
from rig_sync.providers import anthropic, openai
from rig_sync.testing import FakeProvider
from rig_sync.tool import tool

PNG_URL = "data:image/png;base64,iVBORw0KGgo="
CALL = {"id": "call_1", "type": "function", "function": {"name": "add", "arguments": '{"a": 2, "b": 3}'}}



def build(prompt: Any) -> CompletionRequest:
    return RecordingModel().completion_request(prompt).build()


class FrozenMapping(Mapping[str, Any]):
    """A Mapping that is not a dict (as some libraries hand messages over)."""

    def __init__(self, **items: Any) -> None:
        self._items = items

    def __getitem__(self, key: str) -> Any:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


# --- conversion -------------------------------------------------------------------------------------


def test_a_conversation_of_dicts_becomes_preamble_history_and_prompt() -> None:
    req = build([
        {"role": "system", "content": "Be brief"},
        {"role": "user", "content": "What is 2 + 3?"},
        {"role": "assistant", "content": None, "tool_calls": [CALL]},
        {"role": "tool", "tool_call_id": "call_1", "content": "5"},
    ])
    assert req.preamble == "Be brief"
    assert req.chat_history == (
        Message.user("What is 2 + 3?"),
        Message.assistant(ToolCall("call_1", "add", {"a": 2, "b": 3})),
        Message.tool_result("call_1", "5"),  # the last message is the prompt
    )


def test_one_dict_is_a_prompt_and_mappings_need_not_be_dicts() -> None:
    assert build({"role": "user", "content": "Hi"}).chat_history == (Message.user("Hi"),)
    assert build(MappingProxyType({"role": "user", "content": "Hi"})).chat_history == (Message.user("Hi"),)
    req = build([FrozenMapping(role="developer", content="Terse."), FrozenMapping(role="user", content="Hi")])
    assert (req.preamble, req.chat_history) == ("Terse.", (Message.user("Hi"),))


def test_user_content_parts() -> None:
    req = build([{"role": "user", "content": [
        {"type": "text", "text": "What is in"},
        {"type": "text", "text": " these?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "low"}},
        {"type": "image_url", "image_url": {"url": PNG_URL}},
        {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "mp3"}},
        {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "a.pdf"}},
        {"type": "file", "file": {"file_data": "JVBERi0="}},
    ]}])
    assert req.chat_history[0].content == (
        Text("What is in"), Text(" these?"),
        Image.from_url("https://example.com/cat.png", "low"),
        Image.from_bytes("iVBORw0KGgo=", "image/png"),
        Audio("UklGRg==", "mp3"),
        DocumentContent("JVBERi0=", "application/pdf", "a.pdf"),
        DocumentContent("JVBERi0="),
    )


def test_assistant_messages_with_text_tool_calls_or_both() -> None:
    parallel = {**CALL, "id": "call_2", "function": {"name": "add", "arguments": {"a": 1, "b": 1}}}
    req = build([
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Add twice"},
        {"role": "assistant", "content": [{"type": "text", "text": "Adding"}], "tool_calls": [CALL, parallel]},
        {"role": "tool", "tool_call_id": "call_1", "content": "5"},
        {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "2"}]},
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "call_3", "function": {"name": "noop", "arguments": ""}}]},  # "type" may be left out
        {"role": "tool", "tool_call_id": "call_3", "content": ""},
    ])
    assert req.chat_history[1] == Message.assistant("Hello!")
    assert req.chat_history[3] == Message.assistant(
        [Text("Adding"), ToolCall("call_1", "add", {"a": 2, "b": 3}), ToolCall("call_2", "add", {"a": 1, "b": 1})])
    # A run of tool messages is one message of results, as the agent writes them.
    assert req.chat_history[4] == Message.user([ToolResult("call_1", "5"), ToolResult("call_2", "2")])
    assert req.chat_history[5] == Message.assistant(ToolCall("call_3", "noop", {}))  # no empty text beside calls
    assert req.chat_history[6] == Message.tool_result("call_3", "")
    assert len(req.chat_history) == 7


def test_extra_keys_and_null_fields_of_a_dumped_openai_message_are_ignored() -> None:
    dumped = {"role": "assistant", "content": "Hi", "refusal": None, "annotations": [], "audio": None,
              "function_call": None, "tool_calls": None, "name": "bot"}
    assert build([dumped, {"role": "user", "content": "Hello", "name": "ada"}]).chat_history[0] == \
        Message.assistant("Hi")


def test_messages_and_dicts_mix() -> None:
    req = build([Message.user("Hi"), {"role": "assistant", "content": "Hello!"}, Message.user("Bye")])
    assert [m.text for m in req.chat_history] == ["Hi", "Hello!", "Bye"]


# --- the preamble -------------------------------------------------------------------------------------


def test_system_messages_follow_the_explicit_preamble_in_order() -> None:
    req = (RecordingModel()
           .completion_request([{"role": "system", "content": "C"}, {"role": "user", "content": "Hi"},
                                {"role": "developer", "content": [{"type": "text", "text": "D"}]}])
           .messages([{"role": "system", "content": "B"}])
           .preamble("first try")
           .preamble("A")  # .preamble() replaces its own earlier text, not the system messages
           .build())
    assert req.preamble == "A\n\nB\n\nC\n\nD"
    assert req.chat_history == (Message.user("Hi"),)  # the developer message after it is no turn


def test_without_system_messages_the_preamble_is_as_given() -> None:
    assert RecordingModel().completion_request("Hi").preamble("A").build().preamble == "A"
    assert build("Hi").preamble is None
    assert build([{"role": "system", "content": ""}, {"role": "user", "content": "Hi"}]).preamble is None


# --- the order of history and prompt ---------------------------------------------------------------------


def test_messages_are_earlier_turns_before_the_conversation() -> None:
    req = (RecordingModel()
           .completion_request([{"role": "user", "content": "3"}, {"role": "assistant", "content": "4"},
                                {"role": "user", "content": "5"}])
           .messages([{"role": "user", "content": "1"}])
           .message({"role": "assistant", "content": "2"})
           .build())
    assert [m.text for m in req.chat_history] == ["1", "2", "3", "4", "5"]


def fake_model(fake: FakeProvider) -> openai.ChatCompletionsModel:
    return openai.Client(fake.api_key, base_url=fake.base_url, max_retries=0).completion_model("gpt-4o-mini")


def test_the_natural_order_tool_round_trip_reaches_the_wire_in_order(fake: FakeProvider) -> None:
    model = fake_model(fake)
    first = model.completion_request('call:add {"a": 2, "b": 3}').tool(ADD).send()
    call = first.tool_calls[0]
    answer = model.completion_request([
        Message.user('call:add {"a": 2, "b": 3}'),
        first.message(),
        Message.tool_result(call.id, str(call.arguments["a"] + call.arguments["b"])),
    ]).tool(ADD).send()
    assert answer.text == "tool result: 5"
    sent = fake.requests[-1].json["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool"]
    assert sent[1]["tool_calls"][0]["id"] == call.id and sent[2]["tool_call_id"] == call.id


def test_the_same_conversation_as_dicts_reaches_the_wire_in_order(fake: FakeProvider) -> None:
    answer = fake_model(fake).completion_request([
        {"role": "system", "content": "Be brief"},
        {"role": "user", "content": [{"type": "text", "text": "Add"},
                                     {"type": "image_url", "image_url": {"url": PNG_URL}}]},
        {"role": "assistant", "content": None, "tool_calls": [CALL]},
        {"role": "tool", "tool_call_id": "call_1", "content": "5"},
    ]).tool(ADD).send()
    assert answer.text == "tool result: 5"
    sent = fake.requests[-1].json["messages"]
    assert sent[0] == {"role": "system", "content": "Be brief"}
    assert sent[1]["content"][1] == {"type": "image_url", "image_url": {"url": PNG_URL}}
    assert json.loads(sent[2]["tool_calls"][0]["function"]["arguments"]) == {"a": 2, "b": 3}
    assert sent[3] == {"role": "tool", "content": "5", "tool_call_id": "call_1"}


def test_streaming_sends_the_same_order(fake: FakeProvider) -> None:
    history = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
    with fake_model(fake).completion_request([*history, {"role": "user", "content": "Again"}]).stream() as stream:
        assert "".join(stream.text_stream()) == "echo: Again"
    assert [m["content"] for m in fake.requests[-1].json["messages"]] == ["Hi", "Hello!", "Again"]


def test_anthropic_receives_the_preamble_and_the_turns_in_order(mocked: responses.RequestsMock) -> None:
    mocked.post("http://api.test/v1/messages", json={
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-haiku-4-5",
        "content": [{"type": "text", "text": "5 and 2"}], "stop_reason": "end_turn",
        "usage": {"input_tokens": 9, "output_tokens": 3}})
    model = anthropic.Client("sk-ant-test", base_url="http://api.test", max_retries=0).completion_model("claude")
    parallel = {**CALL, "id": "call_2", "function": {"name": "add", "arguments": '{"a": 1, "b": 1}'}}
    resp = model.completion_request([
        {"role": "system", "content": "Be brief"},
        {"role": "user", "content": "Add twice"},
        {"role": "assistant", "content": None, "tool_calls": [CALL, parallel]},
        {"role": "tool", "tool_call_id": "call_1", "content": "5"},
        {"role": "tool", "tool_call_id": "call_2", "content": "2"},
    ]).tool(ADD).max_tokens(64).send()
    assert resp.text == "5 and 2"
    body = sent_json(mocked)
    assert "Be brief" in json.dumps(body["system"])
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert [b["id"] for b in body["messages"][1]["content"]] == ["call_1", "call_2"]
    # Both results in the one user message that follows the calls, as Anthropic requires.
    assert [(b["type"], b["tool_use_id"]) for b in body["messages"][2]["content"]] == \
        [("tool_result", "call_1"), ("tool_result", "call_2")]


# --- agents -------------------------------------------------------------------------------------------


@tool
def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: The first number.
        b: The second number.
    """
    return a + b


def test_agent_chat_takes_a_dict_history_and_a_dict_prompt(fake: FakeProvider) -> None:
    agent = openai.Client(fake.api_key, base_url=fake.base_url).agent("gpt-4o-mini").preamble("Be kind").build()
    history = [{"role": "system", "content": "Answer in French"},
               {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
    assert agent.chat({"role": "user", "content": "And then?"}, history) == "echo: And then?"
    assert fake.requests[-1].json["messages"] == [
        {"role": "system", "content": "Be kind\n\nAnswer in French"},
        {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "And then?"},
    ]
    assert history[0] == {"role": "system", "content": "Answer in French"}  # the caller's list is left alone


def test_agent_prompt_takes_a_whole_conversation_and_runs_its_tools(fake: FakeProvider) -> None:
    agent = openai.Client(fake.api_key, base_url=fake.base_url).agent("gpt-4o-mini").tool(add).build()
    details = agent.prompt_details([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
                                    {"role": "user", "content": 'call:add {"a": 2, "b": 3}'}])
    assert details.output == "tool result: 5"
    assert [m.role for m in details.history] == ["user", "assistant", "user", "assistant", "user", "assistant"]
    assert [m["role"] for m in fake.requests[-1].json["messages"]] == \
        ["user", "assistant", "user", "assistant", "tool"]


def test_agent_names_the_bad_history_message(fake: FakeProvider) -> None:
    agent = openai.Client(fake.api_key, base_url=fake.base_url).agent("gpt-4o-mini").build()
    with pytest.raises(InvalidMessageError, match=r"history\[1\]\.role: 'function'"):
        agent.chat("Hi", [{"role": "user", "content": "a"}, {"role": "function", "content": "b"}])
    with pytest.raises(InvalidMessageError, match=r"history\[0\]\.content"):
        agent.stream_chat("Hi", [{"role": "user"}])
    assert fake.request_count == 0


# --- what does not fit -----------------------------------------------------------------------------------

USER = {"role": "user", "content": "Hi"}

BAD: dict[str, tuple[Any, str]] = {
    "empty list": ([], "empty list"),
    "only system": ([{"role": "system", "content": "Be brief"}], "only system messages"),
    "unknown role": ([USER, {"role": "function", "content": "x"}], r"messages[1].role: 'function' is not a role"),
    "missing role": ([{"content": "x"}], "messages[0].role: None is not a role"),
    "role not a str": ([{"role": ["user"], "content": "x"}], "messages[0].role: <list> is not a role"),
    "missing content": ([{"role": "user"}], "messages[0].content: is missing"),
    "content a number": ([{"role": "user", "content": 5}], "messages[0].content: must be a string or a list"),
    "content NaN": ([{"role": "user", "content": math.nan}], "messages[0].content: must be a string or a list"),
    "content bytes": ([{"role": "user", "content": b"hi"}], "messages[0].content: must be a string or a list"),
    "empty parts": ([{"role": "user", "content": []}], "messages[0].content: is an empty list"),
    "part not a dict": ([{"role": "user", "content": ["hi"]}], "messages[0].content[0]: must be an object"),
    "unknown part": ([{"role": "user", "content": [{"type": "video"}]}],
                     "messages[0].content[0].type: 'video' is not a user content part"),
    "text part without text": ([{"role": "user", "content": [{"type": "text"}]}],
                               "messages[0].content[0].text: is missing"),
    "image without url": ([{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}],
                          "messages[0].content[0].image_url.url: is missing"),
    "data URL not base64": ([{"role": "user", "content": [
        {"type": "image_url", "image_url": "data:image/svg,<svg/>"}]}], "is not a base64 data URL"),
    "file by id": ([{"role": "user", "content": [{"type": "file", "file": {"file_id": "file-1"}}]}],
                   "messages[0].content[0].file.file_id: an uploaded file's id"),
    "assistant without content": ([{"role": "assistant"}, USER],
                                  "messages[0].content: is missing (None is allowed only beside tool_calls)"),
    "assistant image": ([{"role": "assistant", "content": [{"type": "image_url"}]}, USER],
                        "messages[0].content[0].type: an assistant message holds"),
    "tool_calls a dict": ([{"role": "assistant", "tool_calls": CALL}, USER], "messages[0].tool_calls: must be a list"),
    "legacy function_call": ([{"role": "assistant", "content": None, "function_call": {"name": "f"}}, USER],
                             "messages[0].function_call: the legacy function_call"),
    "call without id": ([{"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "{}"}}]}, USER],
                        "messages[0].tool_calls[0].id: is missing"),
    "call of another type": ([{"role": "assistant", "tool_calls": [{**CALL, "type": "custom"}]}, USER],
                             "messages[0].tool_calls[0].type: must be 'function'"),
    "call without name": ([{"role": "assistant", "tool_calls": [{"id": "c", "function": {"arguments": "{}"}}]}, USER],
                          "messages[0].tool_calls[0].function.name: is missing"),
    "arguments not JSON": ([{"role": "assistant", "tool_calls": [
        {"id": "c", "function": {"name": "f", "arguments": "{a: 1}"}}]}, USER],
        "messages[0].tool_calls[0].function.arguments: is not valid JSON"),
    "arguments a JSON list": ([{"role": "assistant", "tool_calls": [
        {"id": "c", "function": {"name": "f", "arguments": "[1, 2]"}}]}, USER],
        "messages[0].tool_calls[0].function.arguments: must hold a JSON object, not a JSON list"),
    "arguments with NaN": ([{"role": "assistant", "tool_calls": [
        {"id": "c", "function": {"name": "f", "arguments": '{"a": NaN}'}}]}, USER], "is not valid JSON"),
    "arguments a mapping with NaN": ([{"role": "assistant", "tool_calls": [
        {"id": "c", "function": {"name": "f", "arguments": {"a": math.inf}}}]}, USER], "is not valid JSON"),
    "arguments a number": ([{"role": "assistant", "tool_calls": [
        {"id": "c", "function": {"name": "f", "arguments": 5}}]}, USER], "must be a JSON object string"),
    "tool without id": ([{"role": "tool", "content": "5"}], "messages[0].tool_call_id: is missing"),
    "tool id not a str": ([{"role": "tool", "tool_call_id": 1, "content": "5"}],
                          "messages[0].tool_call_id: must be a string, not int"),
    "tool without content": ([{"role": "tool", "tool_call_id": "c"}], "messages[0].content: is missing"),
    "tool image part": ([{"role": "tool", "tool_call_id": "c", "content": [{"type": "image_url"}]}],
                        "messages[0].content[0].type: only text parts are allowed here"),
    "system number": ([{"role": "system", "content": 3}, USER], "messages[0].content: must be a string or a list"),
    "a str in the list": (["Hi"], "messages[0] must be a Message or a message dict"),
    "a number as prompt": (3, "prompt must be a str, a Message, a message dict"),
    "a set as prompt": ({"Hi"}, "prompt must be a str, a Message, a message dict"),
    "one bad dict as prompt": ({"role": "user", "content": None}, "prompt.content: is missing"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_what_does_not_fit_is_refused_naming_message_and_field(case: str) -> None:
    prompt, expected = BAD[case]
    model = RecordingModel()
    with pytest.raises(InvalidMessageError) as info:
        model.completion_request(prompt).send()
    message = str(info.value)
    assert expected in message
    assert isinstance(info.value, RigError) and isinstance(info.value, InvalidRequestError)
    assert isinstance(info.value, TypeError)  # as the wrong types were before
    if "[0]" in expected or "[1]" in expected:
        assert '{"role": ' in message  # the shape to follow
    assert len(message) < 1000 and model.requests == []


def test_the_builder_methods_name_their_argument() -> None:
    b = RecordingModel().completion_request("Hi")
    with pytest.raises(InvalidMessageError, match=r"^messages\[1\]\.content: is missing"):
        b.messages([USER, {"role": "user"}])
    with pytest.raises(InvalidMessageError, match=r"^messages must be a list .*wrap one message in a list"):
        b.messages(USER)  # type: ignore[arg-type]
    with pytest.raises(InvalidMessageError, match=r"^message\.role"):
        b.message({"role": "robot", "content": "x"})
    with pytest.raises(InvalidMessageError, match="must be a Message or a message dict"):
        b.message("Hi")  # type: ignore[arg-type]
    assert b.build().chat_history == (Message.user("Hi"),)  # nothing half-added


def test_an_object_with_model_dump_gets_a_hint() -> None:
    class ChatCompletionMessage:  # as openai-python returns it
        def model_dump(self) -> dict[str, Any]:
            return {"role": "assistant", "content": "Hi"}

    with pytest.raises(InvalidMessageError, match=r"not ChatCompletionMessage; convert it with \.model_dump\(\)"):
        build([ChatCompletionMessage(), USER])


def test_a_refusal_never_reaches_the_fake_provider(fake: FakeProvider) -> None:
    with pytest.raises(InvalidMessageError):
        fake_model(fake).completion_request([{"role": "tool", "content": "5"}]).send()
    with pytest.raises(InvalidMessageError):
        fake_model(fake).completion_request([{"role": "tool", "content": "5"}]).stream()
    assert fake.request_count == 0


# --- hostile input ------------------------------------------------------------------------------------


def call_with(arguments: Any) -> list[Any]:
    return [{"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": arguments}}]},
            USER]


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"a": value}
    return value


def cyclic() -> dict[str, Any]:
    value: dict[str, Any] = {}
    value["self"] = value
    return value


HOSTILE: dict[str, Any] = {
    "deep JSON arguments": call_with("[" * 200_000 + "]" * 200_000),  # "nested too deeply"
    "deep mapping arguments": call_with(nested(100_000)),
    "cyclic arguments": call_with(cyclic()),
    "a set in arguments": call_with({"a": {1, 2}}),
    "a huge integer in JSON": call_with('{"a": ' + "9" * 100_000 + "}"),
    "a huge integer as role": [{"role": 10 ** 5000, "content": "x"}],
    "a huge string as role": [{"role": "x" * 10_000_000, "content": "x"}],
    "deeply nested content": [{"role": "user", "content": nested(100_000)}],
    "a list as a part type": [{"role": "user", "content": [{"type": ["text"], "text": "x"}]}],
    "a non-str key": [{1: "user", "content": "x"}],
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_input_gets_the_same_clear_error(case: str) -> None:
    with pytest.raises(InvalidMessageError) as info:
        build(HOSTILE[case])
    assert "messages[0]" in str(info.value) and len(str(info.value)) < 1000


def test_a_huge_valid_conversation_is_converted_whole() -> None:
    turns = [{"role": "user" if i % 2 == 0 else "assistant", "content": "x" * 1000} for i in range(20_001)]
    assert len(build(turns).chat_history) == 20_001


def test_huge_but_valid_arguments_pass_as_plain_json() -> None:
    args = {"a": nested(50), "b": list(range(10_000))}
    req = build([{"role": "assistant", "tool_calls": [
        {"id": "c", "function": {"name": "f", "arguments": json.dumps(args)}}]}, USER])
    assert req.chat_history[0].tool_calls[0].arguments == args


@pytest.mark.parametrize("text", ["\ud800", "ok \udfff then"])
def test_half_a_character_is_refused_before_sending(fake: FakeProvider, text: str) -> None:
    model = openai.Client(fake.api_key, base_url=fake.base_url).completion_model("gpt-4o-mini")
    with pytest.raises(InvalidRequestError, match="lone surrogate") as info:
        model.completion_request([{"role": "user", "content": text}]).send()
    assert "encode('utf-8', 'replace')" in str(info.value)
    assert fake.request_count == 0


def test_a_value_json_cannot_carry_is_refused_before_sending(fake: FakeProvider) -> None:
    model = openai.Client(fake.api_key, base_url=fake.base_url).completion_model("gpt-4o-mini")
    with pytest.raises(InvalidRequestError, match="cannot be sent as JSON"):
        model.completion_request("hi").additional_params({"metadata": {"when": object()}}).send()
    assert fake.request_count == 0
