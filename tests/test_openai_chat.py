"""OpenAI Chat Completions through the public API, against every recorded chat payload
(tests/fixtures/openai), then end to end against the loopback FakeProvider."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import responses
from conftest import ADD, load_bytes, load_fixture, recorded_headers, sent_json, serve_fixture, sse_payloads

from rig_sync import errors
from rig_sync.completion import CompletionResponse, Document, ToolChoice, ToolDefinition
from rig_sync.http import RetryPolicy
from rig_sync.message import Image, Message, Text, ToolCall, ToolResult
from rig_sync.providers import openai
from rig_sync.streaming import FinalResponse, TextChunk, ToolCallChunk
from rig_sync.testing import FakeProvider, Fault

BASE = "http://127.0.0.1:9/v1"
CHAT = f"{BASE}/chat/completions"
KEY = "sk-test-0123456789abcdef"


def client(**options: Any) -> openai.Client:
    if "retry" not in options:
        options.setdefault("max_retries", 0)
    return openai.Client(KEY, base_url=BASE, **options)


def model(name: str = "gpt-4o-mini") -> openai.ChatCompletionsModel:
    return client().completion_model(name)


# --- recorded responses ---------------------------------------------------------------------------

CHAT_RESPONSES = [
    "openai/chat_completion.after_tool_results.json",
    "openai/chat_completion.finish_length.json",
    "openai/chat_completion.hello_world.json",
    "openai/chat_completion.refusal.json",
    "openai/chat_completion.text.json",
    "openai/chat_completion.tool_call_strict.json",
    "openai/chat_completion.tool_calls_parallel.json",
    "openai/chat_completion.tool_calls_parallel_2.json",
    "openai/spec.chat.default.json",
    "openai/spec.chat.functions.json",
    "openai/spec.chat.image_input.json",
    "openai/spec.chat.logprobs.json",
]


def send_fixture(mocked: responses.RequestsMock, name: str) -> CompletionResponse:
    serve_fixture(mocked, CHAT, name)
    return model().completion_request("Hello").send()


@pytest.mark.parametrize("name", CHAT_RESPONSES)
def test_every_recorded_chat_completion_parses(mocked: responses.RequestsMock, name: str) -> None:
    data = load_fixture(name)
    resp = send_fixture(mocked, name)
    msg = data["choices"][0]["message"]
    assert resp.text == (msg.get("content") or msg.get("refusal") or "")
    calls = [(c["id"], c["function"]["name"], json.loads(c["function"]["arguments"]))
             for c in msg.get("tool_calls") or []]
    assert [(c.id, c.name, c.arguments) for c in resp.tool_calls] == calls
    refused = msg.get("refusal") and not msg.get("content")
    assert resp.finish_reason == ("refusal" if refused else data["choices"][0]["finish_reason"])
    usage = data["usage"]
    assert resp.usage.input_tokens == usage["prompt_tokens"]
    assert resp.usage.output_tokens == usage["completion_tokens"]
    assert resp.usage.total_tokens == usage["total_tokens"]
    assert resp.usage.cached_input_tokens == (usage.get("prompt_tokens_details") or {}).get("cached_tokens")
    assert (resp.id, resp.model) == (data["id"], data["model"])
    assert resp.raw_response == data


def test_recorded_values_spot_checks(mocked: responses.RequestsMock) -> None:
    hello = send_fixture(mocked, "openai/chat_completion.hello_world.json")
    assert hello.text == "Hello! How can I assist you today?"
    assert (hello.usage.input_tokens, hello.usage.output_tokens, hello.usage.total_tokens) == (11, 9, 20)
    refusal = send_fixture(mocked, "openai/chat_completion.refusal.json")
    assert refusal.text == "I'm very sorry, but I can't assist with that."
    assert refusal.finish_reason == "refusal"
    cut = send_fixture(mocked, "openai/chat_completion.finish_length.json")
    assert (cut.text, cut.finish_reason) == ('{"', "length")
    parallel = send_fixture(mocked, "openai/chat_completion.tool_calls_parallel.json")
    assert [c.name for c in parallel.tool_calls] == ["GetWeatherArgs", "get_stock_price"]
    assert parallel.tool_calls[0].arguments == {"city": "Edinburgh", "country": "GB", "units": "c"}
    assert parallel.tool_calls[1].arguments == {"ticker": "AAPL", "exchange": "NASDAQ"}
    assert parallel.finish_reason == "tool_calls" and parallel.text == ""
    spec = send_fixture(mocked, "openai/spec.chat.functions.json")
    assert spec.tool_calls == [ToolCall("call_abc123", "get_current_weather", {"location": "Boston, MA"})]
    # The answer goes back into a history as an assistant message carrying the calls.
    assert spec.message().tool_calls == spec.tool_calls


def test_cached_prompt_tokens_reach_usage(mocked: responses.RequestsMock) -> None:
    # The recorded hello-world body with a cache hit (the recordings all have cached_tokens 0).
    data = load_fixture("openai/chat_completion.hello_world.json")
    data["usage"]["prompt_tokens_details"]["cached_tokens"] = 7
    mocked.add(responses.POST, CHAT, json=data)
    assert model().completion_request("Hello").send().usage.cached_input_tokens == 7


# --- recorded streams -----------------------------------------------------------------------------

CHAT_STREAMS = [
    "openai/chat_stream.finish_length.sse",
    "openai/chat_stream.include_usage.sse",
    "openai/chat_stream.logprobs.sse",
    "openai/chat_stream.n3_multiple_choices.sse",
    "openai/chat_stream.refusal.sse",
    "openai/chat_stream.text.sse",
    "openai/chat_stream.tool_call_single.sse",
    "openai/chat_stream.tool_call_strict.sse",
]


def expected_stream(name: str) -> dict[str, Any]:
    """What a stream says, read straight from the fixture: choice 0's text, calls, finish, usage."""
    text: list[str] = []
    args: dict[int, list[str]] = {}
    heads: dict[int, tuple[str, str]] = {}
    finish = usage = None
    refused = answered = False
    for chunk in sse_payloads(name):
        usage = chunk.get("usage") or usage
        for choice in chunk["choices"]:
            if choice["index"] != 0:
                continue
            finish = choice.get("finish_reason") or finish
            delta = choice.get("delta") or {}
            answered = answered or bool(delta.get("content"))
            refused = refused or bool(delta.get("refusal"))
            text.append(delta.get("content") or delta.get("refusal") or "")
            for tc in delta.get("tool_calls") or []:
                if tc.get("id"):
                    heads[tc["index"]] = (tc["id"], tc["function"]["name"])
                args.setdefault(tc["index"], []).append(tc["function"].get("arguments") or "")
    calls = [ToolCall(*heads[i], json.loads("".join(parts))) for i, parts in sorted(args.items())]
    return {"text": "".join(text), "calls": calls, "finish": "refusal" if refused and not answered else finish,
            "usage": usage}


@pytest.mark.parametrize("name", CHAT_STREAMS)
def test_every_recorded_chat_stream_reassembles(mocked: responses.RequestsMock, name: str) -> None:
    want = expected_stream(name)
    serve_fixture(mocked, CHAT, name)
    stream = model().completion_request("Hello").stream()
    chunks = list(stream)
    assert "".join(c.text for c in chunks if isinstance(c, TextChunk)) == want["text"]
    assert [c.tool_call for c in chunks if isinstance(c, ToolCallChunk)] == want["calls"]
    assert isinstance(chunks[-1], FinalResponse)
    final = stream.response
    assert final is chunks[-1].response
    assert final.text == want["text"]
    assert final.tool_calls == want["calls"]
    assert final.finish_reason == want["finish"]
    assert want["usage"] is not None, "every recorded stream ends with a usage chunk"
    assert (final.usage.input_tokens, final.usage.output_tokens, final.usage.total_tokens) == (
        want["usage"]["prompt_tokens"], want["usage"]["completion_tokens"], want["usage"]["total_tokens"])


def stream_fixture(mocked: responses.RequestsMock, name: str) -> CompletionResponse:
    serve_fixture(mocked, CHAT, name)
    return model().completion_request("Hello").stream().response


def test_recorded_stream_spot_checks(mocked: responses.RequestsMock) -> None:
    usage = stream_fixture(mocked, "openai/chat_stream.include_usage.sse").usage
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens, usage.cached_input_tokens) == (22, 712, 734, 0)
    assert stream_fixture(mocked, "openai/chat_stream.logprobs.sse").text == "Foo!"
    refusal = stream_fixture(mocked, "openai/chat_stream.refusal.sse")
    assert refusal.text == "I'm sorry, I can't assist with that request."
    assert refusal.finish_reason == "refusal"
    single = stream_fixture(mocked, "openai/chat_stream.tool_call_single.sse")
    assert single.tool_calls == [ToolCall("call_4XzlGBLtUe9dy3GVNV4jhq7h", "get_weather", {"city": "New York City"})]
    assert single.finish_reason == "tool_calls"
    cut = stream_fixture(mocked, "openai/chat_stream.finish_length.sse")
    assert (cut.text, cut.finish_reason, cut.usage.output_tokens) == ('{"', "length", 1)


def test_n3_stream_answers_with_choice_zero_only(mocked: responses.RequestsMock) -> None:
    name = "openai/chat_stream.n3_multiple_choices.sse"
    others = {
        i: "".join((c.get("delta") or {}).get("content") or "" for p in sse_payloads(name)
                   for c in p["choices"] if c["index"] == i)
        for i in (1, 2)
    }
    text = stream_fixture(mocked, name).text
    assert text == expected_stream(name)["text"] and text.startswith('{"city"')
    assert all(other and other not in text for other in others.values())


def truncated(name: str, drop_events: int) -> bytes:
    """The stream without its [DONE] marker and its last `drop_events` events."""
    events = [e for e in load_bytes(name).split(b"\n\n") if e.strip()]
    assert events[-1] == b"data: [DONE]"
    return b"\n\n".join(events[: -1 - drop_events]) + b"\n\n"


@pytest.mark.parametrize(("name", "drop"), [
    ("openai/chat_stream.text.sse", 3),  # usage, finish and the last content delta
    ("openai/chat_stream.tool_call_single.sse", 4),  # cut inside the tool call's arguments
])
def test_truncated_stream_raises_stream_error(mocked: responses.RequestsMock, name: str, drop: int) -> None:
    serve_fixture(mocked, CHAT, name, body=truncated(name, drop))
    stream = model().completion_request("Hello").stream()
    with pytest.raises(errors.StreamError) as info:
        list(stream)
    assert info.value.provider == "openai"
    assert info.value.is_retryable()


def test_stream_error_event_raises(mocked: responses.RequestsMock) -> None:
    events = [e for e in load_bytes("openai/chat_stream.text.sse").split(b"\n\n") if e.strip()][:3]
    body = b"\n\n".join([*events, b'data: {"error": {"message": "The server had an error", "type": "server_error"}}'])
    mocked.add(responses.POST, CHAT, body=body + b"\n\n", content_type="text/event-stream")
    with pytest.raises(errors.StreamError, match="The server had an error"):
        _ = model().completion_request("Hello").stream().response


# --- recorded errors ------------------------------------------------------------------------------

CHAT_ERRORS = [
    ("openai/error.400_context_length_exceeded.json", errors.ContextWindowExceededError),
    ("openai/error.400_invalid_function_schema.json", errors.BadRequestError),
    ("openai/error.401_invalid_api_key.json", errors.AuthenticationError),
    ("openai/error.404_not_found.json", errors.NotFoundError),
    ("openai/error.429_rate_limit_exceeded.json", errors.RateLimitError),
]


@pytest.mark.parametrize(("name", "cls"), CHAT_ERRORS)
def test_recorded_errors_map_to_the_error_tree(mocked: responses.RequestsMock, name: str,
                                               cls: type[errors.APIStatusError]) -> None:
    body = load_fixture(name)
    status = int(name.split(".")[1].split("_")[0])
    serve_fixture(mocked, CHAT, name)
    with pytest.raises(errors.APIStatusError) as info:
        model().completion_request("Hello").send()
    err = info.value
    assert type(err) is cls
    assert isinstance(err, errors.RigError)
    assert (err.status_code, err.provider, err.message) == (status, "openai", body["error"]["message"])
    assert err.body == body
    assert err.code == (body["error"]["code"] or body["error"]["type"])
    assert err.request_id == recorded_headers(name).get("x-request-id")
    assert err.is_retryable() is (status == 429)
    assert KEY not in str(err) and KEY not in repr(err)
    assert len(mocked.calls) == 1  # max_retries=0: no retry


def test_request_id_header_reaches_the_error(mocked: responses.RequestsMock) -> None:
    serve_fixture(mocked, CHAT, "openai/error.400_context_length_exceeded.json", headers={"x-request-id": "req_123"})
    with pytest.raises(errors.ContextWindowExceededError) as info:
        model().completion_request("Hello").send()
    assert info.value.request_id == "req_123"
    assert "req_123" in str(info.value)


def test_429_is_retried_until_the_budget_is_spent(mocked: responses.RequestsMock) -> None:
    for _ in range(3):
        serve_fixture(mocked, CHAT, "openai/error.429_rate_limit_exceeded.json", headers={"Retry-After": "0"})
    chat = client(retry=RetryPolicy(max_retries=2, backoff_base=0)).completion_model("gpt-4o")
    with pytest.raises(errors.RateLimitError) as info:
        chat.completion_request("Hello").send()
    assert len(mocked.calls) == 3
    assert info.value.retry_after == 0


def test_429_then_success(mocked: responses.RequestsMock) -> None:
    serve_fixture(mocked, CHAT, "openai/error.429_rate_limit_exceeded.json", headers={"Retry-After": "0"})
    serve_fixture(mocked, CHAT, "openai/chat_completion.hello_world.json")
    chat = client(retry=RetryPolicy(max_retries=2, backoff_base=0)).completion_model("gpt-4o-mini")
    assert chat.completion_request("Hello, world!").send().text == "Hello! How can I assist you today?"
    assert len(mocked.calls) == 2


# --- recorded requests: the body we send carries what the recorded request carries ------------------

WEATHER_TOOL = ToolDefinition(
    "get_weather_for_city",
    "gets the current weather for a given city",
    {"type": "object",
     "properties": {"city_name": {"type": "string",
                                  "description": "the name of a city, e.g. Johannesburg or Ho Chi Minh City."}},
     "required": ["city_name"]},
)
CITIES = "Tell me what's the current weather in the following cities: Santiago and Karachi."
SANTIAGO = ToolCall("call_SKQEHo7QVlJRoCtEzcrYZM9C", "get_weather_for_city", {"city_name": "Santiago"})
KARACHI = ToolCall("call_CkjljlLr7IebPc4hnvetfiZ8", "get_weather_for_city", {"city_name": "Karachi"})


def normalised(body: dict[str, Any]) -> dict[str, Any]:
    """A chat body with tool-call arguments parsed (whitespace differs) and `developer` read as `system`."""
    body = json.loads(json.dumps(body))
    for msg in body["messages"]:
        if msg["role"] == "developer":
            msg["role"] = "system"
        for call in msg.get("tool_calls") or []:
            call["function"]["arguments"] = json.loads(call["function"]["arguments"])
    return body


def test_request_hello_world(mocked: responses.RequestsMock) -> None:
    serve_fixture(mocked, CHAT, "openai/chat_completion.hello_world.json")
    model("gpt-4o-mini").completion_request("Hello, world!").send()
    assert sent_json(mocked) == load_fixture("openai/requests/chat_completion.hello_world.request.json")


def test_request_parallel_tool_calls(mocked: responses.RequestsMock) -> None:
    serve_fixture(mocked, CHAT, "openai/chat_completion.tool_calls_parallel_2.json")
    resp = model("gpt-4o-mini").completion_request(CITIES).tool(WEATHER_TOOL).send()
    assert sent_json(mocked) == load_fixture("openai/requests/chat_completion.tool_calls_parallel_2.request.json")
    assert resp.tool_calls == [SANTIAGO, KARACHI]


def test_request_after_tool_results_sends_role_tool_messages(mocked: responses.RequestsMock) -> None:
    serve_fixture(mocked, CHAT, "openai/chat_completion.after_tool_results.json")
    results = Message.user([ToolResult(SANTIAGO.id, "rainy"), ToolResult(KARACHI.id, "sunny")])
    resp = (model("gpt-4o-mini").completion_request(results)
            .messages([Message.user(CITIES), Message.assistant([SANTIAGO, KARACHI])])
            .tool(WEATHER_TOOL).send())
    recorded = load_fixture("openai/requests/chat_completion.after_tool_results.request.json")
    # The .NET SDK left the assistant turn's content out; rig_sync sends it as null (as openai-python
    # does), for early-2025 llama.cpp answers a turn without it with 500 "Expected 'content'".
    recorded["messages"][1] = {"role": "assistant", "content": None, **recorded["messages"][1]}
    assert normalised(sent_json(mocked)) == normalised(recorded)
    assert [m["role"] for m in sent_json(mocked)["messages"]] == ["user", "assistant", "tool", "tool"]
    assert resp.text == "The current weather is as follows:\n- Santiago: Rainy\n- Karachi: Sunny"


def test_request_stream_with_usage(mocked: responses.RequestsMock) -> None:
    serve_fixture(mocked, CHAT, "openai/chat_stream.include_usage.sse")
    prompt = "What are the best pizza toppings? Give me a breakdown on the reasons."
    text = model("gpt-4o-mini").completion_request(prompt).stream().text
    assert sent_json(mocked) == load_fixture("openai/requests/chat_stream.include_usage.request.json")
    assert text.startswith("The best pizza toppings")


def test_request_bad_key(mocked: responses.RequestsMock) -> None:
    serve_fixture(mocked, CHAT, "openai/error.401_invalid_api_key.json")
    with pytest.raises(errors.AuthenticationError, match="Incorrect API key provided"):
        model("gpt-4o-mini").completion_request("Uh oh, this isn't going to work with that key").send()
    assert sent_json(mocked) == load_fixture("openai/requests/error.401_invalid_api_key.request.json")


def test_request_invalid_function_schema(mocked: responses.RequestsMock) -> None:
    recorded = load_fixture("openai/requests/error.400_invalid_function_schema.request.json")
    fn = recorded["tools"][0]["function"]
    serve_fixture(mocked, CHAT, "openai/error.400_invalid_function_schema.json")
    with pytest.raises(errors.BadRequestError) as info:
        (model("gpt-4o-2024-08-06").completion_request("What's my favorite color on Tuesday?")
         .preamble(recorded["messages"][0]["content"])
         .tool(ToolDefinition(fn["name"], fn["description"])).send())
    assert info.value.body["error"]["code"] == "invalid_function_parameters"
    sent = sent_json(mocked)
    assert sent["model"] == recorded["model"] and sent["messages"] == recorded["messages"]
    assert [(t["type"], t["function"]["name"], t["function"]["description"]) for t in sent["tools"]] == [
        ("function", fn["name"], fn["description"])]


def test_request_spec_default(mocked: responses.RequestsMock) -> None:
    serve_fixture(mocked, CHAT, "openai/spec.chat.default.json")
    resp = model("VAR_chat_model_id").completion_request("Hello!").preamble("You are a helpful assistant.").send()
    assert normalised(sent_json(mocked)) == normalised(load_fixture("openai/requests/spec.chat.default.request.json"))
    assert resp.text == "Hello! How can I assist you today?"


def test_request_spec_functions(mocked: responses.RequestsMock) -> None:
    recorded = load_fixture("openai/requests/spec.chat.functions.request.json")
    fn = recorded["tools"][0]["function"]
    serve_fixture(mocked, CHAT, "openai/spec.chat.functions.json")
    (model("gpt-5.4").completion_request("What is the weather like in Boston today?")
     .tool(ToolDefinition(fn["name"], fn["description"], fn["parameters"])).tool_choice("auto").send())
    assert sent_json(mocked) == recorded


def test_request_spec_image_input(mocked: responses.RequestsMock) -> None:
    recorded = load_fixture("openai/requests/spec.chat.image_input.request.json")
    url = recorded["messages"][0]["content"][1]["image_url"]["url"]
    serve_fixture(mocked, CHAT, "openai/spec.chat.image_input.json")
    resp = (model("gpt-5.4").completion_request(Message.user([Text("What is in this image?"), Image.from_url(url)]))
            .max_tokens(300).send())
    assert sent_json(mocked) == recorded
    assert resp.text.startswith("The image shows a wooden boardwalk")


def test_request_spec_logprobs(mocked: responses.RequestsMock) -> None:
    serve_fixture(mocked, CHAT, "openai/spec.chat.logprobs.json")
    resp = (model("VAR_chat_model_id").completion_request("Hello!")
            .additional_params({"logprobs": True, "top_logprobs": 2}).send())
    assert sent_json(mocked) == load_fixture("openai/requests/spec.chat.logprobs.request.json")
    assert resp.raw_response["choices"][0]["logprobs"]["content"][0]["token"] == "Hello"


def test_request_spec_streaming(mocked: responses.RequestsMock) -> None:
    serve_fixture(mocked, CHAT, "openai/chat_stream.text.sse")
    stream = model("VAR_chat_model_id").completion_request("Hello!").preamble("You are a helpful assistant.").stream()
    assert stream.text == expected_stream("openai/chat_stream.text.sse")["text"]
    recorded = normalised(load_fixture("openai/requests/spec.chat.streaming.request.json"))
    sent = normalised(sent_json(mocked))
    assert {k: sent[k] for k in recorded} == recorded
    assert sent["stream_options"] == {"include_usage": True}


# --- what the client sends --------------------------------------------------------------------------


def test_headers_carry_bearer_key_organization_and_project(mocked: responses.RequestsMock) -> None:
    serve_fixture(mocked, CHAT, "openai/chat_completion.hello_world.json")
    chat = openai.Client(KEY, base_url=BASE, organization="org-1", project="proj-2",
                         headers={"X-Team": "a"}).completion_model("gpt-4o-mini")
    chat.completion_request("Hello").send()
    headers = mocked.calls[0].request.headers
    assert headers["Authorization"] == f"Bearer {KEY}"
    assert (headers["OpenAI-Organization"], headers["OpenAI-Project"], headers["X-Team"]) == ("org-1", "proj-2", "a")
    assert headers["Content-Type"] == "application/json"


def test_no_organization_headers_unless_asked(mocked: responses.RequestsMock) -> None:
    serve_fixture(mocked, CHAT, "openai/chat_completion.hello_world.json")
    model().completion_request("Hello").send()
    headers = mocked.calls[0].request.headers
    assert "OpenAI-Organization" not in headers and "OpenAI-Project" not in headers


@pytest.mark.parametrize("base", ["http://127.0.0.1:9/v1", "http://127.0.0.1:9/v1/", "http://127.0.0.1:9/v1//"])
def test_base_url_joins_with_or_without_trailing_slash(mocked: responses.RequestsMock, base: str) -> None:
    serve_fixture(mocked, CHAT, "openai/chat_completion.hello_world.json")
    openai.Client(KEY, base_url=base).completion_model("m").completion_request("Hello").send()
    assert mocked.calls[0].request.url == CHAT


def test_base_url_with_a_path_prefix(mocked: responses.RequestsMock) -> None:
    url = "http://127.0.0.2:9/openai/v1/chat/completions"
    serve_fixture(mocked, url, "openai/chat_completion.hello_world.json")
    openai.Client(KEY, base_url="http://127.0.0.2:9/openai/v1/").completion_model("m").completion_request("Hi").send()
    assert mocked.calls[0].request.url == url


def test_from_env(mocked: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.3:9/v1/")
    serve_fixture(mocked, "http://127.0.0.3:9/v1/chat/completions", "openai/chat_completion.hello_world.json")
    env_client = openai.Client.from_env()
    assert env_client.base_url == "http://127.0.0.3:9/v1"
    env_client.completion_model("gpt-4o-mini").completion_request("Hello").send()
    assert mocked.calls[0].request.headers["Authorization"] == "Bearer sk-from-env"


def test_from_env_defaults_to_the_public_api(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    assert openai.Client.from_env().base_url == "https://api.openai.com/v1"


def test_missing_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(errors.MissingAPIKeyError, match="OPENAI_API_KEY"):
        openai.Client.from_env()
    for key in (None, "", "   "):
        with pytest.raises(errors.MissingAPIKeyError):
            openai.Client(key)


def test_key_is_never_shown() -> None:
    c = client()
    chat = c.completion_model("gpt-4o")
    built = openai.ClientBuilder(KEY).base_url(BASE).build()
    for text in (repr(c), str(c), repr(chat), repr(c.transport), repr(built), repr(openai.ClientBuilder(KEY))):
        assert KEY not in text


def test_documents_are_rendered_into_a_leading_user_message(mocked: responses.RequestsMock) -> None:
    serve_fixture(mocked, CHAT, "openai/chat_completion.hello_world.json")
    doc = Document("doc1", "Santiago is rainy.", {"source": "forecast"})
    model().completion_request("What is the weather?").preamble("Be brief").document(doc).send()
    messages = sent_json(mocked)["messages"]
    assert messages == [
        {"role": "system", "content": "Be brief"},
        {"role": "user", "content": "<file id: doc1>\nsource: forecast\nSantiago is rainy.\n</file>"},
        {"role": "user", "content": "What is the weather?"},
    ]


def test_inline_image_becomes_an_image_url_part(mocked: responses.RequestsMock) -> None:
    serve_fixture(mocked, CHAT, "openai/chat_completion.hello_world.json")
    png = b"\x89PNG\r\n\x1a\n fake"
    prompt = Message.user([Text("Describe"), Image.from_bytes(png, "image/png", detail="low")])
    model().completion_request(prompt).send()
    content = sent_json(mocked)["messages"][0]["content"]
    assert content[0] == {"type": "text", "text": "Describe"}
    assert content[1]["type"] == "image_url"
    assert content[1]["image_url"]["detail"] == "low"
    head, _, data = content[1]["image_url"]["url"].partition(",")
    assert head == "data:image/png;base64" and base64.b64decode(data) == png


def test_named_tool_choice_and_sampling_options(mocked: responses.RequestsMock) -> None:
    serve_fixture(mocked, CHAT, "openai/chat_completion.tool_calls_parallel_2.json")
    (model().completion_request(CITIES).tool(WEATHER_TOOL).tool_choice(ToolChoice.tool(WEATHER_TOOL.name))
     .temperature(0.2).max_tokens(64).send())
    sent = sent_json(mocked)
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_weather_for_city"}}
    assert (sent["temperature"], sent["max_tokens"]) == (0.2, 64)
    assert "stream" not in sent and "stream_options" not in sent


# --- end to end against the loopback FakeProvider ---------------------------------------------------


def fake_model(fake: FakeProvider, **options: Any) -> openai.ChatCompletionsModel:
    return openai.Client(fake.api_key, base_url=fake.base_url, timeout=5, **options).completion_model("gpt-4o")


def test_fake_completion_echo(fake: FakeProvider) -> None:
    resp = fake_model(fake).completion_request("Hello there").preamble("Be brief").send()
    assert resp.text == "echo: Hello there"
    assert resp.finish_reason == "stop"
    assert resp.usage.output_tokens > 0 and resp.usage.input_tokens > 0
    sent = fake.last_request
    assert sent is not None and sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {fake.api_key}"
    assert sent.json["messages"][0] == {"role": "system", "content": "Be brief"}


def test_fake_streaming(fake: FakeProvider) -> None:
    stream = fake_model(fake).completion_request("stream these words please").stream()
    pieces = list(stream.text_stream())
    assert len(pieces) > 1
    assert "".join(pieces) == stream.response.text == "echo: stream these words please"
    assert stream.response.usage.output_tokens > 0
    assert fake.last_request is not None and fake.last_request.json["stream_options"] == {"include_usage": True}


def test_fake_tool_call(fake: FakeProvider) -> None:
    resp = fake_model(fake).completion_request('call:add {"a": 2, "b": 3}').tool(ADD).send()
    assert [(c.name, c.arguments) for c in resp.tool_calls] == [("add", {"a": 2, "b": 3})]
    assert resp.finish_reason == "tool_calls"
    stream = fake_model(fake).completion_request('call:add {"a": 2, "b": 3}').tool(ADD).stream()
    calls = [c.tool_call for c in stream if isinstance(c, ToolCallChunk)]
    assert [(c.name, c.arguments) for c in calls] == [("add", {"a": 2, "b": 3})]


def test_fake_tool_result_round_trip(fake: FakeProvider) -> None:
    call = fake_model(fake).completion_request('call:add {"a": 2, "b": 3}').tool(ADD).send().tool_calls[0]
    resp = (fake_model(fake).completion_request(Message.tool_result(call.id, "5"))
            .messages([Message.user('call:add {"a": 2, "b": 3}'), Message.assistant(call)]).tool(ADD).send())
    assert resp.text == "tool result: 5"


def test_fake_429_with_retry_after_zero_is_retried(fake: FakeProvider) -> None:
    fake.inject(Fault.status(429, retry_after=0))
    chat = fake_model(fake, retry=RetryPolicy(max_retries=2, backoff_base=0))
    assert chat.completion_request("again").send().text == "echo: again"
    assert fake.request_count == 2


def test_fake_429_without_retries_raises(fake: FakeProvider) -> None:
    fake.inject(Fault.status(429, retry_after=0))
    with pytest.raises(errors.RateLimitError) as info:
        fake_model(fake, max_retries=0).completion_request("again").send()
    assert info.value.status_code == 429 and info.value.retry_after == 0
    assert fake.request_count == 1


def test_fake_stream_cut_raises_stream_error(fake: FakeProvider) -> None:
    fake.inject(Fault.stream_cut(after_events=2))
    with pytest.raises(errors.StreamError):
        _ = fake_model(fake, max_retries=0).completion_request("a b c d e f g").stream().response
