"""Agents: the tool loop, context, hooks and streaming; with a scripted model, over HTTP with
`responses`, and end to end against the loopback FakeProvider."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import responses
from conftest import load_fixture, sent_json

from rig_sync.agent import (
    Agent,
    AgentBuilder,
    Cancel,
    MaxTurnsError,
    PromptCancelledError,
    PromptHook,
    PromptResponse,
    ToolResultChunk,
)
from rig_sync.completion import (
    BaseCompletionModel,
    CompletionRequest,
    CompletionResponse,
    Document,
    ToolChoice,
    Usage,
)
from rig_sync.errors import InvalidRequestError, RigError
from rig_sync.message import Message, Text, ToolCall, ToolResult
from rig_sync.providers import openai
from rig_sync.streaming import (
    FinalResponse,
    StreamChunk,
    StreamingCompletionResponse,
    TextChunk,
    ToolCallChunk,
)
from rig_sync.testing import FakeProvider, Reply
from rig_sync.tool import ToolCallError, ToolError, tool

# --- a scripted model ----------

Step = CompletionResponse | Callable[[CompletionRequest], CompletionResponse]


def text(value: str, tokens: int = 1) -> CompletionResponse:
    return CompletionResponse((Text(value),), Usage(tokens, tokens, 2 * tokens))


def calls(*items: tuple[str, dict[str, Any]], tokens: int = 1) -> CompletionResponse:
    return CompletionResponse(tuple(ToolCall(f"call_{i}", name, args) for i, (name, args) in enumerate(items)),
                              Usage(tokens, tokens, 2 * tokens))


class ScriptedModel(BaseCompletionModel):
    """Answers each request with the next scripted response; records the requests."""

    provider = "scripted"
    model = "scripted-1"

    def __init__(self, *steps: Step) -> None:
        self.steps = list(steps)
        self.requests: list[CompletionRequest] = []

    def completion(self, request: CompletionRequest) -> CompletionResponse:
        self.requests.append(request)
        if not self.steps:
            raise AssertionError("the model was called more often than scripted")
        step = self.steps.pop(0)
        return step(request) if callable(step) else step

    def stream(self, request: CompletionRequest) -> StreamingCompletionResponse:
        response = self.completion(request)

        def chunks() -> Iterator[StreamChunk]:
            for word in response.text.split(" "):
                yield TextChunk(word + " ")
            for call in response.tool_calls:
                yield ToolCallChunk(call)
            yield FinalResponse(response)

        return StreamingCompletionResponse(chunks(), self.provider)


@tool
def add(a: int, b: int) -> int:
    """Add two numbers.

    Args:
        a: The first number.
        b: The second number.
    """
    return a + b


@tool
def divide(a: int, b: int) -> float:
    """Divide a by b."""
    return a / b


def agent_with(model: ScriptedModel, **settings: Any) -> Agent:
    builder = AgentBuilder(model).tools([add, divide])
    for name, value in settings.items():
        getattr(builder, name)(value)
    return builder.build()


class Recorder(PromptHook):
    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []

    def on_completion_call(self, request: CompletionRequest) -> Cancel | None:
        self.events.append(("call", len(request.chat_history)))
        return None

    def on_completion_response(self, request: CompletionRequest, response: CompletionResponse) -> Cancel | None:
        self.events.append(("response", response.text))
        return None

    def on_tool_call(self, call: ToolCall) -> Cancel | None:
        self.events.append(("tool_call", call.name, call.arguments))
        return None

    def on_tool_result(self, call: ToolCall, result: ToolResult, error: ToolError | None) -> Cancel | None:
        self.events.append(("tool_result", call.name, result.content, result.is_error, type(error).__name__))
        return None


# --- the loop ----------


def test_prompt_runs_tools_until_the_model_answers() -> None:
    model = ScriptedModel(calls(("add", {"a": 2, "b": 3})), text("It is 5."))
    assert agent_with(model).prompt("What is 2+3?") == "It is 5."
    first, second = model.requests
    assert [t.name for t in first.tools] == ["add", "divide"]
    assert first.tools[0] == add.definition()
    assert first.chat_history == (Message.user("What is 2+3?"),)
    assistant, results = second.chat_history[1:]
    assert assistant.role == "assistant" and assistant.tool_calls == [ToolCall("call_0", "add", {"a": 2, "b": 3})]
    assert results == Message.user([ToolResult("call_0", "5")])


def test_prompt_details_sums_usage_and_keeps_history() -> None:
    model = ScriptedModel(calls(("add", {"a": 1, "b": 1}), tokens=3), text("2", tokens=5))
    details = agent_with(model).prompt_details("1+1?")
    assert isinstance(details, PromptResponse)
    assert details.output == "2"
    assert details.usage == Usage(8, 8, 16)
    assert [m.role for m in details.history] == ["user", "assistant", "user", "assistant"]
    assert details.history[-1].text == "2"


def test_chat_sends_history_first_and_does_not_change_it() -> None:
    history = [Message.user("Hi"), Message.assistant("Hello!")]
    model = ScriptedModel(text("Fine."))
    agent = agent_with(model)
    assert agent.chat("How are you?", history) == "Fine."
    assert history == [Message.user("Hi"), Message.assistant("Hello!")]
    assert model.requests[0].chat_history == (*history, Message.user("How are you?"))
    model.steps.append(text("Yes."))
    details = agent.chat_details("More?", history)
    assert details.history[:2] == history and len(details.history) == 4


def test_settings_reach_every_request() -> None:
    model = ScriptedModel(calls(("add", {"a": 1, "b": 2})), text("3"))
    agent = (AgentBuilder(model).preamble("Be exact.").append_preamble("Use tools.").context("Doc one")
             .tool(add).temperature(0.2).max_tokens(50).tool_choice("required")
             .additional_params({"seed": 1}).additional_params({"extra": {"x": 1}}).build())
    agent.prompt("1+2")
    for request in model.requests:
        assert request.preamble == "Be exact.\nUse tools."
        assert request.documents == (Document("static_doc_0", "Doc one"),)
        assert (request.temperature, request.max_tokens) == (0.2, 50)
        assert request.tool_choice == ToolChoice("required")
        assert request.additional_params == {"seed": 1, "extra": {"x": 1}}


def test_no_tool_choice_without_tools() -> None:
    model = ScriptedModel(text("hi"))
    AgentBuilder(model).tool_choice("required").build().prompt("hello")
    assert model.requests[0].tool_choice is None and model.requests[0].tools == ()


# --- failures become results the model reads ----------


@pytest.mark.parametrize(
    ("call", "said", "error"),
    [
        (("divide", {"a": 1, "b": 0}), "ZeroDivisionError: division by zero", "ToolCallError"),
        (("add", {"a": "two", "b": 3}), "$.a: expected integer, got string 'two'", "ToolArgumentsError"),
        (("add", {"a": 1}), "missing required property 'b'", "ToolArgumentsError"),
        (("multiply", {"a": 1}), "no tool named 'multiply' (available: add, divide)", "UnknownToolError"),
    ],
)
def test_tool_failures_go_back_to_the_model(call: tuple[str, dict[str, Any]], said: str, error: str) -> None:
    model = ScriptedModel(calls(call), text("Sorry."))
    hook = Recorder()
    assert agent_with(model).prompt("go", hooks=[hook]) == "Sorry."
    result = model.requests[1].chat_history[-1].content[0]
    assert isinstance(result, ToolResult) and result.is_error and result.id == "call_0"
    assert result.content.startswith("Error: ") and said in result.content
    (event,) = [e for e in hook.events if e[0] == "tool_result"]
    assert event[3] is True and event[4] == error


def test_hooks_see_every_step_in_order() -> None:
    model = ScriptedModel(calls(("add", {"a": 2, "b": 3})), text("5"))
    hook = Recorder()
    AgentBuilder(model).tool(add).hook(hook).build().prompt("2+3")
    assert hook.events == [
        ("call", 1),
        ("response", ""),
        ("tool_call", "add", {"a": 2, "b": 3}),
        ("tool_result", "add", "5", False, "NoneType"),
        ("call", 3),
        ("response", "5"),
    ]


def test_max_turns_error_keeps_every_message() -> None:
    model = ScriptedModel(*(calls(("add", {"a": i, "b": 1})) for i in range(3)))
    with pytest.raises(MaxTurnsError) as info:
        agent_with(model).prompt("loop", max_turns=3)
    err = info.value
    assert err.max_turns == 3 and isinstance(err, RigError) and len(model.requests) == 3
    assert len(err.history) == 1 + 2 * 3  # prompt, then (assistant call, tool result) per turn
    assert [m.role for m in err.history] == ["user"] + ["assistant", "user"] * 3
    assert [m.content[0].content for m in err.history[2::2]] == ["1", "2", "3"]  # type: ignore[union-attr]
    assert err.usage == Usage(3, 3, 6)


def test_default_max_turns_from_the_builder() -> None:
    model = ScriptedModel(calls(("add", {"a": 1, "b": 1})), calls(("add", {"a": 1, "b": 1})))
    with pytest.raises(MaxTurnsError):
        AgentBuilder(model).tool(add).max_turns(2).build().prompt("x")
    assert len(model.requests) == 2


@pytest.mark.parametrize("how", ["return", "raise"])
def test_a_hook_can_cancel(how: str) -> None:
    class Stop(PromptHook):
        def on_tool_call(self, call: ToolCall) -> Cancel | None:
            if call.name == "divide":
                if how == "raise":
                    raise Cancel("no dividing")
                return Cancel("no dividing")
            return None

    ran: list[int] = []

    @tool
    def record(n: int) -> int:
        """Record n."""
        ran.append(n)
        return n

    model = ScriptedModel(calls(("record", {"n": 1}), ("divide", {"a": 1, "b": 1})))
    with pytest.raises(PromptCancelledError) as info:
        AgentBuilder(model).tools([record, divide]).build().prompt("go", hooks=[Stop()])
    assert info.value.reason == "no dividing" and "no dividing" in str(info.value)
    assert ran == []  # cancelled before any tool of the turn ran
    assert [m.role for m in info.value.history] == ["user", "assistant"]


def test_cancel_before_the_first_model_call() -> None:
    class Stop(PromptHook):
        def on_completion_call(self, request: CompletionRequest) -> Cancel | None:
            return Cancel("budget")

    model = ScriptedModel(text("never"))
    with pytest.raises(PromptCancelledError, match="budget") as info:
        agent_with(model).prompt("hi", hooks=[Stop()])
    assert model.requests == [] and info.value.history == [Message.user("hi")]


def test_cancel_on_tool_result_keeps_the_results() -> None:
    class Stop(PromptHook):
        def on_tool_result(self, call: ToolCall, result: ToolResult, error: ToolError | None) -> Cancel | None:
            return Cancel("seen enough") if isinstance(error, ToolCallError) else None

    model = ScriptedModel(calls(("divide", {"a": 1, "b": 0})))
    with pytest.raises(PromptCancelledError) as info:
        agent_with(model).prompt("1/0", hooks=[Stop()])
    last = info.value.history[-1].content[0]
    assert isinstance(last, ToolResult) and last.is_error


def test_tool_calls_of_one_turn_run_in_parallel_in_call_order() -> None:
    barrier = threading.Barrier(2, timeout=5)
    threads: dict[str, str] = {}

    @tool
    def left(x: int) -> str:
        """Left."""
        barrier.wait()  # both tools must be running at once to get past this
        threads["left"] = threading.current_thread().name
        return f"left {x}"

    @tool
    def right(x: int) -> str:
        """Right."""
        barrier.wait()
        threads["right"] = threading.current_thread().name
        return f"right {x}"

    model = ScriptedModel(calls(("right", {"x": 1}), ("left", {"x": 2})), text("done"))
    assert AgentBuilder(model).tools([left, right]).build().prompt("both") == "done"
    results = model.requests[1].chat_history[-1].content
    assert [(r.id, r.content, r.is_error) for r in results] == [  # type: ignore[union-attr]
        ("call_0", "right 1", False), ("call_1", "left 2", False)]
    assert threads["left"] != threads["right"]


def test_tool_concurrency_one_runs_calls_in_turn() -> None:
    order: list[int] = []

    @tool
    def step(n: int) -> int:
        """Step."""
        order.append(n)
        return n

    model = ScriptedModel(calls(*(("step", {"n": n}) for n in range(4))), text("ok"))
    AgentBuilder(model).tool(step).tool_concurrency(1).build().prompt("go")
    assert order == [0, 1, 2, 3]


# --- retrieval ----------


class FakeIndex:
    def __init__(self, entries: dict[str, Any]) -> None:
        self.entries = entries
        self.queries: list[tuple[str, int]] = []

    def top_n(self, query: str, n: int) -> list[tuple[float, str, Any]]:
        self.queries.append((query, n))
        hits = [(1.0, key, doc) for key, doc in self.entries.items() if key in query]
        return hits[:n]

    def top_n_ids(self, query: str, n: int) -> list[tuple[float, str]]:
        return [(score, key) for score, key, _ in self.top_n(query, n)]


def test_dynamic_context_is_retrieved_per_prompt() -> None:
    index = FakeIndex({"cats": "Cats purr.", "dogs": {"fact": "Dogs bark."}})
    model = ScriptedModel(text("a"), text("b"))
    agent = AgentBuilder(model).context("static").dynamic_context(2, index).build()
    agent.prompt("tell me about cats")
    agent.prompt("and dogs")
    assert index.queries == [("tell me about cats", 2), ("and dogs", 2)]
    assert model.requests[0].documents == (Document("static_doc_0", "static"), Document("cats", "Cats purr."))
    assert model.requests[1].documents[1] == Document("dogs", '{"fact":"Dogs bark."}')


def test_dynamic_tools_offer_only_what_the_index_finds() -> None:
    @tool
    def weather(city: str) -> str:
        """Weather in a city."""
        return f"sunny in {city}"

    index = FakeIndex({"weather": None, "add": None, "ghost": None})
    model = ScriptedModel(calls(("weather", {"city": "Oslo"})), text("Sunny."), text("plain"))
    agent = AgentBuilder(model).tool(divide).dynamic_tools(3, index, [weather, add]).build()
    assert agent.prompt("weather please") == "Sunny."
    assert [t.name for t in model.requests[0].tools] == ["divide", "weather"]
    assert model.requests[1].chat_history[-1].content[0] == ToolResult("call_0", "sunny in Oslo")
    agent.prompt("ghost add")  # "ghost" is not in the tool set: skipped
    assert [t.name for t in model.requests[2].tools] == ["divide", "add"]


# --- streaming ----------


def test_stream_prompt_yields_pieces_tool_calls_results_then_the_response() -> None:
    model = ScriptedModel(calls(("add", {"a": 2, "b": 3}), tokens=2), text("It is 5", tokens=3))
    with agent_with(model).stream_prompt("2+3") as stream:
        items = list(stream)
    kinds = [type(i).__name__ for i in items]
    assert kinds == ["TextChunk", "ToolCallChunk", "ToolResultChunk", "TextChunk", "TextChunk", "TextChunk",
                     "PromptResponse"]
    assert isinstance(items[2], ToolResultChunk) and items[2].result.content == "5"
    final = items[-1]
    assert isinstance(final, PromptResponse)
    assert final.output == "It is 5" and final.usage == Usage(5, 5, 10)
    assert stream.response is final


def test_stream_text_only() -> None:
    model = ScriptedModel(text("one two"))
    stream = agent_with(model).stream_chat("hi", [Message.user("a"), Message.assistant("b")])
    assert "".join(stream.text_stream()) == "one two "
    assert stream.response.output == "one two" and len(stream.response.history) == 4


def test_stream_max_turns() -> None:
    model = ScriptedModel(calls(("add", {"a": 1, "b": 1})))
    with pytest.raises(MaxTurnsError) as info:
        list(agent_with(model).stream_prompt("x", max_turns=1))
    assert len(info.value.history) == 3


# --- bad input ----------


def test_bad_input_is_refused_at_the_call() -> None:
    model = ScriptedModel()
    agent = agent_with(model)
    with pytest.raises(InvalidRequestError):
        agent.prompt("  ")
    with pytest.raises(InvalidRequestError):
        agent.stream_prompt("")  # refused before any iteration
    with pytest.raises(InvalidRequestError, match="max_turns"):
        agent.prompt("hi", max_turns=0)
    with pytest.raises(TypeError, match="CompletionModel"):
        AgentBuilder("gpt-4o")  # type: ignore[arg-type]
    with pytest.raises(InvalidRequestError):
        AgentBuilder(model).temperature(3)
    with pytest.raises(ValueError, match="positive"):
        AgentBuilder(model).dynamic_context(0, FakeIndex({}))
    with pytest.raises(TypeError, match="top_n"):
        AgentBuilder(model).dynamic_context(1, object())  # type: ignore[arg-type]
    assert model.requests == []


def test_an_agent_is_a_tool_for_another_agent() -> None:
    inner_model = ScriptedModel(text("Paris"))
    inner = AgentBuilder(inner_model).name("geo").description("Answers geography").build()
    outer_model = ScriptedModel(calls(("geo", {"prompt": "Capital of France?"})), text("It is Paris."))
    assert AgentBuilder(outer_model).tool(inner).build().prompt("Ask geo") == "It is Paris."
    assert outer_model.requests[0].tools[0].description == "Answers geography"
    assert inner_model.requests[0].chat_history[-1] == Message.user("Capital of France?")
    assert outer_model.requests[1].chat_history[-1].content[0] == ToolResult("call_0", "Paris")


def test_completion_request_prepares_one_plain_call() -> None:
    model = ScriptedModel(text("raw"))
    agent = AgentBuilder(model).preamble("P").tool(add).build()
    request = agent.completion_request("hi").build()
    assert request.preamble == "P" and request.tools == (add.definition(),)
    assert agent.completion_request("hi").send().text == "raw"



def test_completion_request_puts_history_then_the_conversation_and_joins_system_messages() -> None:
    model = ScriptedModel()
    agent = AgentBuilder(model).preamble("P").build()
    request = agent.completion_request(
        [{"role": "system", "content": "S2"}, {"role": "user", "content": "3"}, Message.assistant("4"),
         {"role": "user", "content": "5"}],
        [Message.user("1"), {"role": "system", "content": "S1"}, {"role": "assistant", "content": "2"}],
    ).build()
    assert request.preamble == "P\n\nS1\n\nS2"
    assert [m.text for m in request.chat_history] == ["1", "2", "3", "4", "5"]


def test_a_dict_prompt_drives_retrieval_like_a_text_prompt() -> None:
    index = FakeIndex({"cats": "Cats purr."})
    model = ScriptedModel(text("a"))
    AgentBuilder(model).dynamic_context(1, index).build().prompt({"role": "user", "content": "about cats"})
    assert index.queries == [("about cats", 1)]
    assert model.requests[0].documents == (Document("cats", "Cats purr."),)


def test_agent_and_builder_reprs_say_what_they_hold() -> None:
    key = "sk-secret-0123456789abcdef"
    builder = (openai.Client(key, base_url="http://127.0.0.1:9/v1").agent("gpt-4o")
               .preamble("You are a calculator that always shows its working in full.").tools([add, divide])
               .context("a document").temperature(0.2).max_turns(3))
    built = repr(builder)
    assert built.startswith("<AgentBuilder openai:gpt-4o, preamble='You are a calculator that always shows …'")
    assert "tools=['add', 'divide'], documents=1" in built and "temperature=0.2, max_turns=3" in built
    assert built.endswith("; not built: call .build()>")
    agent = repr(builder.build())
    assert agent.startswith("Agent(openai:gpt-4o, preamble='You are a calculator")
    assert "tools=['add', 'divide'], documents=1, name='agent', temperature=0.2, " in agent
    assert "tool_concurrency" not in agent and "object at 0x" not in agent
    assert key not in built + agent


# --- over HTTP with `responses` (OpenAI wire format, recorded payloads) ----------


@tool
def get_weather_for_city(city_name: str) -> str:
    """gets the current weather for a given city

    Args:
        city_name: the name of a city, e.g. Johannesburg or Ho Chi Minh City.
    """
    return {"Santiago": "Rainy", "Karachi": "Sunny"}[city_name]


def test_agent_over_openai_http(mocked: responses.RequestsMock) -> None:
    url = "http://127.0.0.1:9/v1/chat/completions"
    mocked.add(responses.POST, url, json=load_fixture("openai/chat_completion.tool_calls_parallel_2.json"))
    mocked.add(responses.POST, url, json=load_fixture("openai/chat_completion.after_tool_results.json"))
    client = openai.Client("sk-test", base_url="http://127.0.0.1:9/v1", max_retries=0)
    agent = client.agent("gpt-4o-mini").tool(get_weather_for_city).build()

    details = agent.prompt_details("Tell me what's the current weather in the following cities: Santiago and Karachi.")

    assert details.output == "The current weather is as follows:\n- Santiago: Rainy\n- Karachi: Sunny"
    assert details.usage.total_tokens == 133 + 169
    first = sent_json(mocked, 0)
    recorded = load_fixture("openai/requests/chat_completion.tool_calls_parallel_2.request.json")
    assert first["tools"][0]["function"]["name"] == recorded["tools"][0]["function"]["name"]
    assert first["tools"][0]["function"]["parameters"]["properties"] == \
        recorded["tools"][0]["function"]["parameters"]["properties"]
    second = sent_json(mocked, 1)["messages"]
    assert [m["role"] for m in second] == ["user", "assistant", "tool", "tool"]
    assert [c["id"] for c in second[1]["tool_calls"]] == ["call_SKQEHo7QVlJRoCtEzcrYZM9C",
                                                         "call_CkjljlLr7IebPc4hnvetfiZ8"]
    assert [(m["tool_call_id"], m["content"]) for m in second[2:]] == [
        ("call_SKQEHo7QVlJRoCtEzcrYZM9C", "Rainy"), ("call_CkjljlLr7IebPc4hnvetfiZ8", "Sunny")]


def test_tool_error_travels_as_a_tool_message_over_http(mocked: responses.RequestsMock) -> None:
    url = "http://127.0.0.1:9/v1/chat/completions"
    call = {"id": "call_1", "type": "function", "function": {"name": "divide", "arguments": '{"a": 1, "b": 0}'}}
    for message in ({"role": "assistant", "content": None, "tool_calls": [call]},
                    {"role": "assistant", "content": "Cannot divide by zero."}):
        mocked.add(responses.POST, url, json={
            "id": "x", "object": "chat.completion", "created": 0, "model": "m",
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        })
    client = openai.Client("sk-test", base_url="http://127.0.0.1:9/v1", max_retries=0)
    assert client.agent("m").tool(divide).build().prompt("1/0") == "Cannot divide by zero."
    tool_message = sent_json(mocked, 1)["messages"][-1]
    assert tool_message["role"] == "tool" and "ZeroDivisionError" in tool_message["content"]


# --- end to end against the loopback FakeProvider ----------


def fake_client(fake: FakeProvider) -> openai.Client:
    return openai.Client(fake.api_key, base_url=fake.base_url, timeout=5, max_retries=0)


def test_fake_provider_tool_round_trip(fake: FakeProvider) -> None:
    agent = fake_client(fake).agent("fake-model").tool(add).build()
    details = agent.prompt_details('call:add {"a": 2, "b": 3}')
    assert details.output == "tool result: 5"
    assert [m.role for m in details.history] == ["user", "assistant", "user", "assistant"]
    assert details.usage.total_tokens > 0
    bodies = [r.json for r in fake.requests]
    assert len(bodies) == 2 and bodies[0]["tools"][0]["function"]["name"] == "add"
    assert bodies[1]["messages"][-1] == {"role": "tool", "content": "5", "tool_call_id": "call_0"}


def test_fake_provider_scripted_parallel_calls_and_errors(fake: FakeProvider) -> None:
    fake.script(
        Reply.tool_calls([("add", {"a": 1, "b": 2}, "c1"), ("divide", {"a": 1, "b": 0}, "c2"),
                          ("nope", {}, "c3")]),
        Reply.text("Handled."),
    )
    hook = Recorder()
    agent = fake_client(fake).agent("fake-model").tools([add, divide]).build()
    assert agent.prompt("go", hooks=[hook]) == "Handled."
    tool_messages = fake.requests[1].json["messages"][-3:]
    assert [m["tool_call_id"] for m in tool_messages] == ["c1", "c2", "c3"]
    assert tool_messages[0]["content"] == "3"
    assert tool_messages[1]["content"] == "Error: tool 'divide' failed: ZeroDivisionError: division by zero"
    assert tool_messages[2]["content"].startswith("Error: no tool named 'nope'")
    assert [e[4] for e in hook.events if e[0] == "tool_result"] == ["NoneType", "ToolCallError", "UnknownToolError"]


def test_fake_provider_streamed_tool_loop(fake: FakeProvider) -> None:
    agent = fake_client(fake).agent("fake-model").tool(add).build()
    items = list(agent.stream_prompt('call:add {"a": 20, "b": 22}'))
    calls_seen = [i.tool_call for i in items if isinstance(i, ToolCallChunk)]
    assert calls_seen == [ToolCall("call_0", "add", {"a": 20, "b": 22})]
    assert [i.result.content for i in items if isinstance(i, ToolResultChunk)] == ["42"]
    assert "".join(i.text for i in items if isinstance(i, TextChunk)) == "tool result: 42"
    final = items[-1]
    assert isinstance(final, PromptResponse) and final.output == "tool result: 42"
    assert final.usage.total_tokens > 0


def test_fake_provider_max_turns(fake: FakeProvider) -> None:
    fake.script(*(Reply.tool_calls([("add", {"a": i, "b": 0})]) for i in range(2)))
    agent = fake_client(fake).agent("fake-model").tool(add).build()
    with pytest.raises(MaxTurnsError) as info:
        agent.prompt("loop", max_turns=2)
    assert len(fake.requests) == 2 and len(info.value.history) == 5
