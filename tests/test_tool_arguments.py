"""The agent never dies on a model's mistake.

Tool-call arguments that are no JSON object (cut off, a bare string, a list, nested too deep) are
the model's mistake, not a broken answer: every provider, sent or streamed, hands the call out
with `arguments == {}` and the text as sent in `invalid_arguments`; the rest of the answer (text,
other calls, usage) stands. No arguments at all (`null`, the text "null" that Cohere v2 and Groq
send for a tool without parameters, or nothing) are `{}`, a valid call. An agent answers a call
with unusable arguments with an error result quoting them, and the model can correct itself.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import responses

from rig_sync.agent import PromptHook, PromptResponse, ToolResultChunk
from rig_sync.message import ToolCall, ToolResult
from rig_sync.providers import anthropic, azure, cohere, gemini, groq, mistral, ollama, openai
from rig_sync.streaming import ToolCallChunk
from rig_sync.testing import FakeProvider, Reply
from rig_sync.tool import ToolArgumentsError, ToolError, tool
from tests.conftest import ADD, load_fixture

# provider -> a completion model on the fake
MODELS: dict[str, Callable[[FakeProvider], Any]] = {
    "openai": lambda f: openai.Client(f.api_key, base_url=f.base_url, max_retries=0).completion_model("gpt-4o"),
    "responses": lambda f: openai.Client(f.api_key, base_url=f.base_url, max_retries=0).responses_model("gpt-4o"),
    "groq": lambda f: groq.Client(f.api_key, base_url=f.base_url, max_retries=0).completion_model("llama"),
    "mistral": lambda f: mistral.Client(f.api_key, base_url=f.base_url, max_retries=0).completion_model("mistral"),
    "azure": lambda f: azure.Client(f.api_key, endpoint=f.url, max_retries=0).completion_model("gpt-4o"),
    "anthropic": lambda f: anthropic.Client(f.api_key, base_url=f.url, max_retries=0).completion_model("claude"),
    "gemini": lambda f: gemini.Client(f.api_key, base_url=f.url, max_retries=0).completion_model("gemini-2.0-flash"),
    "cohere": lambda f: cohere.Client(f.api_key, base_url=f.url, max_retries=0).completion_model("command-a"),
    "ollama": lambda f: ollama.Client(base_url=f.url, max_retries=0).completion_model("llama3.2"),
}
TEXT_WIRE = {"openai", "responses", "groq", "mistral", "azure", "cohere"}  # arguments travel as JSON text


def sent_as(provider: str, streamed: bool, text: str) -> str:
    """The arguments as the call keeps them. Text wires (and Anthropic's streamed input_json_delta
    pieces) carry the text itself; where the wire has an object (Anthropic's input, Gemini's
    args, Ollama's arguments) the fake sends the decoded value, or the text as a string."""
    if provider in TEXT_WIRE or (provider == "anthropic" and streamed):
        return text
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))

UNUSABLE = ['{"a": 1, "b":', '"add two numbers"', "[1, 2]", "{oops}"]
NOTHING = ["null", ""]


def answer(model: Any, streamed: bool) -> Any:
    request = model.completion_request("go").tool(ADD)
    return request.stream().response if streamed else request.send()


@pytest.fixture(scope="module")
def shared_fake() -> Any:
    with FakeProvider() as fp:
        yield fp


@pytest.mark.parametrize("streamed", [False, True], ids=["send", "stream"])
@pytest.mark.parametrize("provider", MODELS)
def test_unusable_arguments_are_kept_on_the_call_and_the_answer_stands(
        shared_fake: FakeProvider, provider: str, streamed: bool) -> None:
    model = MODELS[provider](shared_fake)
    for text in UNUSABLE:
        shared_fake.script(Reply.tool_calls([("add", text, "c1"), ("add", {"a": 2, "b": 3}, "c2")]))
        response = answer(model, streamed)
        bad, good = response.tool_calls
        assert (bad.name, bad.arguments, bad.invalid_arguments) == ("add", {}, sent_as(provider, streamed, text))
        assert (good.arguments, good.invalid_arguments) == ({"a": 2, "b": 3}, None)
        assert response.finish_reason is not None


@pytest.mark.parametrize("streamed", [False, True], ids=["send", "stream"])
@pytest.mark.parametrize("provider", MODELS)
def test_no_arguments_are_an_empty_object(shared_fake: FakeProvider, provider: str, streamed: bool) -> None:
    model = MODELS[provider](shared_fake)
    for text in NOTHING:
        shared_fake.script(Reply.tool_calls([("now", text, "c1")]))
        call = answer(model, streamed).tool_calls[0]
        assert (call.name, call.arguments, call.invalid_arguments) == ("now", {}, None), text


@pytest.mark.parametrize("streamed", [False, True], ids=["send", "stream"])
@pytest.mark.parametrize("provider", sorted(TEXT_WIRE))
def test_arguments_nested_too_deep_to_decode_are_kept(shared_fake: FakeProvider, provider: str,
                                                       streamed: bool) -> None:
    deep = "[" * 100_000
    shared_fake.script(Reply.tool_calls([("add", deep, "c1")]))
    call = answer(MODELS[provider](shared_fake), streamed).tool_calls[0]
    assert (call.arguments, call.invalid_arguments) == ({}, deep)


# --- recorded shapes ----------------------------------------------------------------------------------


def test_cohere_v2_null_arguments_in_a_recorded_stream(mocked: responses.RequestsMock) -> None:
    """The recorded tool-call stream, its arguments replaced by what Cohere sends for a tool
    without parameters: the text "null", in the first delta of each call."""
    events = load_fixture("cohere/chat_stream.v2.tool_calls.events.json")
    nulled: set[int] = set()
    for event in events:
        data = event["data"]
        calls = data.get("delta", {}).get("message", {}).get("tool_calls")
        if isinstance(calls, dict) and "arguments" in calls.get("function", {}):
            first = data["type"] == "tool-call-delta" and data["index"] not in nulled
            calls["function"]["arguments"] = "null" if first else ""
            if first:
                nulled.add(data["index"])
    body = "".join(f"event: {e['event']}\ndata: {json.dumps(e['data'])}\n\n" for e in events)
    mocked.add(responses.POST, "http://127.0.0.1:9/v2/chat", body=body, content_type="text/event-stream")
    client = cohere.Client("k", base_url="http://127.0.0.1:9", max_retries=0)
    stream = client.completion_model("command-a").completion_request("sales?").stream()
    calls = [c.tool_call for c in stream if isinstance(c, ToolCallChunk)]
    assert calls and all(c.arguments == {} and c.invalid_arguments is None for c in calls)
    assert stream.response.tool_calls == calls and stream.response.usage.output_tokens > 0


def test_groq_null_arguments_in_a_recorded_answer(mocked: responses.RequestsMock) -> None:
    data = load_fixture("openai/chat_completion.tool_calls_parallel.json")
    data["choices"][0]["message"]["tool_calls"][1]["function"]["arguments"] = "null"
    mocked.add(responses.POST, "http://127.0.0.1:9/v1/chat/completions", json=data)
    client = groq.Client("k", base_url="http://127.0.0.1:9/v1", max_retries=0)
    first, second = client.completion_model("llama").completion_request("hi").send().tool_calls
    assert first.arguments and first.invalid_arguments is None
    assert (second.arguments, second.invalid_arguments) == ({}, None)


def test_anthropic_stream_assembles_unusable_input_into_the_same_call(mocked: responses.RequestsMock) -> None:
    """A closed tool_use block whose input_json_delta pieces are no JSON object: the streamed call
    and the reassembled answer's call are the same, marked, and the text after it stands."""
    def event(kind: str, **data: Any) -> str:
        return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n"

    body = "".join([
        event("message_start", message={"id": "msg_1", "type": "message", "role": "assistant", "model": "claude",
                                        "content": [], "usage": {"input_tokens": 3, "output_tokens": 1}}),
        event("content_block_start", index=0, content_block={"type": "tool_use", "id": "t1", "name": "add",
                                                             "input": {}}),
        event("content_block_delta", index=0, delta={"type": "input_json_delta", "partial_json": '{"a": 1, '}),
        event("content_block_delta", index=0, delta={"type": "input_json_delta", "partial_json": '"b":'}),
        event("content_block_stop", index=0),
        event("content_block_start", index=1, content_block={"type": "text", "text": "done"}),
        event("content_block_stop", index=1),
        event("message_delta", delta={"stop_reason": "tool_use"}, usage={"output_tokens": 9}),
        event("message_stop"),
    ])
    mocked.add(responses.POST, "http://127.0.0.1:9/v1/messages", body=body, content_type="text/event-stream")
    client = anthropic.Client("k", base_url="http://127.0.0.1:9", max_retries=0)
    stream = client.completion_model("claude").completion_request("hi").tool(ADD).stream()
    streamed = [c.tool_call for c in stream if isinstance(c, ToolCallChunk)]
    assert streamed == [ToolCall("t1", "add", {}, invalid_arguments='{"a": 1, "b":')]
    assert stream.response.tool_calls == streamed and stream.response.text == "done"


# --- the agent answers the model, which corrects itself ------------------------------------------------


@tool
def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: The first number.
        b: The second number.
    """
    return a + b


@tool
def now() -> str:
    """The time of day."""
    return "noon"


def tool_results(details: Any) -> list[ToolResult]:
    """The tool results of a run, in order, from its history (what the model read)."""
    return [p for m in details.history for p in m.content if isinstance(p, ToolResult)]


class Results(PromptHook):
    def __init__(self) -> None:
        self.errors: list[ToolError | None] = []

    def on_tool_result(self, call: ToolCall, result: ToolResult, error: ToolError | None) -> None:
        self.errors.append(error)


@pytest.mark.parametrize("streamed", [False, True], ids=["prompt", "stream_prompt"])
@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini", "cohere", "ollama"])
def test_the_agent_answers_unusable_arguments_and_the_model_corrects_itself(
        fake: FakeProvider, provider: str, streamed: bool) -> None:
    fake.script(Reply.tool_calls([("add", '{"a": 1, "b":', "c1")]),
                Reply.tool_calls([("add", {"a": 1, "b": 2}, "c2")]),
                Reply.text("It is 3."))
    agent = MODELS[provider](fake).client.agent(MODELS[provider](fake).model).tool(add).build()
    hook = Results()
    if streamed:
        items = list(agent.stream_prompt("1 + 2?", hooks=[hook]))
        assert [i.result for i in items if isinstance(i, ToolResultChunk)] == tool_results(items[-1])
        details = items[-1]
        assert isinstance(details, PromptResponse)
    else:
        details = agent.prompt_details("1 + 2?", hooks=[hook])
    results = tool_results(details)
    assert details.output == "It is 3."
    first, second = results
    assert first.is_error and first.content.startswith("Error: invalid arguments for tool 'add'")
    assert '{"a": 1, "b":' in first.content and "JSON object" in first.content
    assert (second.is_error, second.content) == (False, "3")
    assert isinstance(hook.errors[0], ToolArgumentsError) and hook.errors[1] is None
    assert details.history[1].tool_calls[0].invalid_arguments == '{"a": 1, "b":'
    assert len(fake.requests) == 3  # the model read the error and called again


def test_the_agent_calls_a_tool_without_parameters_sent_null(fake: FakeProvider) -> None:
    fake.script(Reply.tool_calls([("now", "null", "c1")]), Reply.text("It is noon."))
    agent = MODELS["groq"](fake).client.agent("llama").tool(now).build()
    details = agent.prompt_details("time?")
    assert details.output == "It is noon."
    assert details.history[2].content == (ToolResult("c1", "noon"),)


def test_an_unknown_tool_with_unusable_arguments_is_said_to_be_unknown(fake: FakeProvider) -> None:
    fake.script(Reply.tool_calls([("nope", "{", "c1")]), Reply.text("Sorry."))
    agent = MODELS["openai"](fake).client.agent("gpt-4o").tool(add).build()
    details = agent.prompt_details("go")
    assert tool_results(details)[0].content.startswith("Error: no tool named 'nope'")
