"""OpenAI Responses API through the public API (`client.responses_model`), against every recorded
Responses payload (tests/fixtures/openai), then end to end against the loopback FakeProvider."""

from __future__ import annotations

import json
from typing import Any

import pytest
import responses
from conftest import load_bytes, load_fixture, sent_json, serve_fixture, sse_payloads

from rig_sync import errors
from rig_sync.completion import CompletionResponse, ToolDefinition
from rig_sync.message import DocumentContent, Image, Message, Text, ToolCall
from rig_sync.providers import openai
from rig_sync.streaming import FinalResponse, TextChunk, ToolCallChunk
from rig_sync.testing import FakeProvider

BASE = "http://127.0.0.1:9/v1"
URL = f"{BASE}/responses"


def model(name: str = "gpt-4o-mini") -> openai.ResponsesModel:
    return openai.Client("sk-test", base_url=BASE, max_retries=0).responses_model(name)


def expected(data: dict[str, Any]) -> dict[str, Any]:
    """What a Responses object says, read straight from the payload."""
    text = "".join(c["text"] for item in data["output"] if item["type"] == "message"
                   for c in item["content"] if c["type"] == "output_text")
    calls = [ToolCall(item["id"], item["name"], json.loads(item["arguments"]), item["call_id"])
             for item in data["output"] if item["type"] == "function_call"]
    return {"text": text, "calls": calls, "finish": "tool_calls" if calls else data["status"]}


RESPONSES = [
    "openai/responses.after_function_call_output.json",
    "openai/responses.function_call.json",
    "openai/responses.text.json",
    "openai/responses.text.python_sdk.json",
    "openai/spec.responses.file_input.json",
    "openai/spec.responses.file_search.json",
    "openai/spec.responses.functions.json",
    "openai/spec.responses.image_input.json",
    "openai/spec.responses.reasoning.json",
    "openai/spec.responses.text_input.json",
    "openai/spec.responses.web_search.json",
]


def send_fixture(mocked: responses.RequestsMock, name: str) -> CompletionResponse:
    serve_fixture(mocked, URL, name)
    return model().completion_request("Hello").send()


@pytest.mark.parametrize("name", RESPONSES)
def test_every_recorded_response_parses(mocked: responses.RequestsMock, name: str) -> None:
    data = load_fixture(name)
    want = expected(data)
    resp = send_fixture(mocked, name)
    assert resp.text == want["text"]
    assert resp.text or resp.tool_calls
    assert resp.tool_calls == want["calls"]
    assert resp.finish_reason == want["finish"]
    usage = data["usage"]
    assert (resp.usage.input_tokens, resp.usage.output_tokens, resp.usage.total_tokens) == (
        usage["input_tokens"], usage["output_tokens"], usage["total_tokens"])
    assert resp.usage.cached_input_tokens == (usage.get("input_tokens_details") or {}).get("cached_tokens")
    assert (resp.id, resp.model) == (data["id"], data["model"])
    assert resp.raw_response == data


def test_recorded_response_spot_checks(mocked: responses.RequestsMock) -> None:
    text = send_fixture(mocked, "openai/responses.text.json")
    assert text.text == "It looks like you're testing the system! How can I assist you today?"
    assert (text.usage.input_tokens, text.usage.output_tokens, text.usage.total_tokens) == (12, 16, 28)
    assert text.finish_reason == "completed"
    call = send_fixture(mocked, "openai/responses.function_call.json").tool_calls
    assert call == [ToolCall("fc_0df7c3d8927b3a940068c9ef446a748194b8266e13adcc9781", "get_weather_at_location",
                             {"location": "San Francisco, CA"}, "call_S2X9KuEJpYvFcF4hgv1XwM0j")]
    spec = send_fixture(mocked, "openai/spec.responses.functions.json")
    assert spec.tool_calls[0].arguments == {"location": "Boston, MA", "unit": "celsius"}
    assert spec.usage.cached_input_tokens is None  # no input_tokens_details at all: not reported
    # Built-in tool items (web search, file search) are skipped; the message after them is the answer.
    web = send_fixture(mocked, "openai/spec.responses.web_search.json")
    assert web.text == "As of today, March 9, 2025, one notable positive news story..."


# --- streams --------------------------------------------------------------------------------------

STREAM = "openai/responses.stream.text.sse"


def test_recorded_stream_reassembles(mocked: responses.RequestsMock) -> None:
    events = sse_payloads(STREAM)
    deltas = [e["delta"] for e in events if e["type"] == "response.output_text.delta"]
    completed = events[-1]["response"]
    serve_fixture(mocked, URL, STREAM)
    stream = model().completion_request("Hello, responses!").stream()
    chunks = list(stream)
    assert [c.text for c in chunks if isinstance(c, TextChunk)] == deltas
    assert isinstance(chunks[-1], FinalResponse)
    final = stream.response
    assert final.text == "".join(deltas) == "Hello! How can I assist you today?"
    assert final.id == completed["id"] and final.finish_reason == "completed"
    usage = completed["usage"]
    assert (final.usage.input_tokens, final.usage.output_tokens) == (usage["input_tokens"], usage["output_tokens"])


def test_truncated_stream_raises_stream_error(mocked: responses.RequestsMock) -> None:
    events = [e for e in load_bytes(STREAM).split(b"\n\n") if e.strip()]
    assert events[-1].startswith(b"event: response.completed")
    serve_fixture(mocked, URL, STREAM, body=b"\n\n".join(events[:-4]) + b"\n\n")
    with pytest.raises(errors.StreamError) as info:
        _ = model().completion_request("Hello, responses!").stream().response
    assert info.value.is_retryable()


def sse(events: list[dict[str, Any]]) -> bytes:
    return b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)


WEATHER = load_fixture("openai/requests/responses.function_call.request.json")["tools"][0]
WEATHER_TOOL = ToolDefinition(WEATHER["name"], WEATHER["description"], WEATHER["parameters"])
WEAR = "What should I wear for the weather in San Francisco, CA?"


def test_streamed_function_call(mocked: responses.RequestsMock) -> None:
    # The recorded function-call response, framed as the stream's closing events.
    recorded = load_fixture("openai/responses.function_call.json")
    item = recorded["output"][0]
    body = sse([{"type": "response.output_item.done", "output_index": 0, "item": item},
                {"type": "response.completed", "response": recorded}])
    mocked.add(responses.POST, URL, body=body, content_type="text/event-stream")
    stream = model().completion_request(WEAR).tool(WEATHER_TOOL).stream()
    calls = [c.tool_call for c in stream if isinstance(c, ToolCallChunk)]
    assert calls == [ToolCall(item["id"], item["name"], {"location": "San Francisco, CA"}, item["call_id"])]
    assert stream.response.finish_reason == "tool_calls"
    sent = sent_json(mocked)
    assert normalised(sent) == normalised(load_fixture("openai/requests/responses.stream.function_call.request.json"))


def test_stream_failure_event_raises(mocked: responses.RequestsMock) -> None:
    body = sse([{"type": "response.failed", "response": {"error": {"message": "model overloaded"}}}])
    mocked.add(responses.POST, URL, body=body, content_type="text/event-stream")
    with pytest.raises(errors.StreamError, match="model overloaded"):
        _ = model().completion_request("Hello").stream().response


def test_error_status_on_responses_endpoint(mocked: responses.RequestsMock) -> None:
    serve_fixture(mocked, URL, "openai/error.400_context_length_exceeded.json")
    with pytest.raises(errors.ContextWindowExceededError) as info:
        model().completion_request("Hello").send()
    assert (info.value.status_code, info.value.provider) == (400, "openai")


# --- recorded requests --------------------------------------------------------------------------------


def normalised(body: dict[str, Any]) -> dict[str, Any]:
    """A Responses body in one spelling: string input as a user message, `type` on every item,
    `detail: auto` (the default) dropped, and tools without `strict` (no builder sets it)."""
    body = json.loads(json.dumps(body))
    if isinstance(body["input"], str):
        body["input"] = [{"role": "user", "content": body["input"]}]
    for item in body["input"]:
        if "role" in item:
            item.setdefault("type", "message")
            if isinstance(item["content"], str):
                item["content"] = [{"type": "input_text", "text": item["content"]}]
            for part in item["content"]:
                if part.get("detail") == "auto":
                    del part["detail"]
    for tool in body.get("tools") or []:
        tool.pop("strict", None)
    return body


def check_request(mocked: responses.RequestsMock, recorded_name: str) -> dict[str, Any]:
    recorded = load_fixture(f"openai/requests/{recorded_name}")
    sent = sent_json(mocked)
    assert normalised(sent) == normalised(recorded)
    return sent


def test_request_text(mocked: responses.RequestsMock) -> None:
    serve_fixture(mocked, URL, "openai/responses.text.json")
    model().completion_request("This is a test.").send()
    assert sent_json(mocked) == load_fixture("openai/requests/responses.text.request.json")


def test_request_function_call(mocked: responses.RequestsMock) -> None:
    serve_fixture(mocked, URL, "openai/responses.function_call.json")
    model().completion_request(WEAR).tool(WEATHER_TOOL).send()
    check_request(mocked, "responses.function_call.request.json")


def test_request_after_function_call_output(mocked: responses.RequestsMock) -> None:
    recorded = load_fixture("openai/requests/responses.after_function_call_output.request.json")
    output = recorded["input"][0]
    serve_fixture(mocked, URL, "openai/responses.after_function_call_output.json")
    resp = (model().completion_request(Message.tool_result("fc_1", output["output"], call_id=output["call_id"]))
            .tool(WEATHER_TOOL).additional_params({"previous_response_id": recorded["previous_response_id"]}).send())
    sent = check_request(mocked, "responses.after_function_call_output.request.json")
    assert sent["input"] == [output]  # function_call_output, keyed by call_id
    assert "22°C" in resp.text


def test_request_stream_text(mocked: responses.RequestsMock) -> None:
    serve_fixture(mocked, URL, STREAM)
    stream = model().completion_request("Hello, responses!").additional_params({"truncation": "auto"}).stream()
    assert stream.text == "Hello! How can I assist you today?"
    assert sent_json(mocked) == load_fixture("openai/requests/responses.stream.text.request.json")


def test_request_spec_streaming_with_instructions(mocked: responses.RequestsMock) -> None:
    serve_fixture(mocked, URL, STREAM)
    assert model("gpt-5.4").completion_request("Hello!").preamble("You are a helpful assistant.").stream().text
    sent = check_request(mocked, "spec.responses.streaming.request.json")
    assert sent["instructions"] == "You are a helpful assistant." and sent["stream"] is True


@pytest.mark.parametrize(("request_name", "response_name", "prompt", "params"), [
    ("spec.responses.text_input.request.json", "spec.responses.text_input.json",
     "Tell me a three sentence bedtime story about a unicorn.", None),
    ("spec.responses.reasoning.request.json", "spec.responses.reasoning.json",
     "How much wood would a woodchuck chuck?", {"reasoning": {"effort": "high"}}),
    ("spec.responses.web_search.request.json", "spec.responses.web_search.json",
     "What was a positive news story from today?", {"tools": [{"type": "web_search_preview"}]}),
    ("spec.responses.file_search.request.json", "spec.responses.file_search.json",
     "What are the attributes of an ancient brown dragon?",
     {"tools": [{"type": "file_search", "vector_store_ids": ["vs_1234567890"], "max_num_results": 20}]}),
])
def test_request_spec_examples(mocked: responses.RequestsMock, request_name: str, response_name: str,
                               prompt: str, params: dict[str, Any] | None) -> None:
    serve_fixture(mocked, URL, f"openai/{response_name}")
    builder = model(load_fixture(f"openai/requests/{request_name}")["model"]).completion_request(prompt)
    if params:
        builder = builder.additional_params(params)
    assert builder.send().text == expected(load_fixture(f"openai/{response_name}"))["text"]
    check_request(mocked, request_name)


def test_request_spec_functions(mocked: responses.RequestsMock) -> None:
    recorded = load_fixture("openai/requests/spec.responses.functions.request.json")
    tool = recorded["tools"][0]
    serve_fixture(mocked, URL, "openai/spec.responses.functions.json")
    (model("gpt-5.4").completion_request(recorded["input"])
     .tool(ToolDefinition(tool["name"], tool["description"], tool["parameters"])).tool_choice("auto").send())
    sent = check_request(mocked, "spec.responses.functions.request.json")
    assert sent["tools"][0]["type"] == "function" and sent["tool_choice"] == "auto"


def test_request_spec_image_input(mocked: responses.RequestsMock) -> None:
    url = load_fixture("openai/requests/spec.responses.image_input.request.json")["input"][0]["content"][1]["image_url"]
    serve_fixture(mocked, URL, "openai/spec.responses.image_input.json")
    model("gpt-5.4").completion_request(Message.user([Text("what is in this image?"), Image.from_url(url)])).send()
    check_request(mocked, "spec.responses.image_input.request.json")


def test_request_spec_file_input(mocked: responses.RequestsMock) -> None:
    url = "https://www.berkshirehathaway.com/letters/2024ltr.pdf"
    serve_fixture(mocked, URL, "openai/spec.responses.file_input.json")
    doc = DocumentContent(url, is_url=True)
    model("gpt-5.4").completion_request(Message.user([Text("what is in this file?"), doc])).send()
    check_request(mocked, "spec.responses.file_input.request.json")


def test_assistant_history_and_inline_pdf(mocked: responses.RequestsMock) -> None:
    serve_fixture(mocked, URL, "openai/responses.text.json")
    pdf = DocumentContent.from_bytes(b"%PDF-1.4 tiny", filename="a.pdf")
    (model().completion_request(Message.user([Text("And this?"), pdf]))
     .messages([Message.user("Hi"), Message.assistant([Text("Hello"), ToolCall("fc_1", "f", {"x": 1}, "call_1")])])
     .send())
    items = sent_json(mocked)["input"]
    assert items[1] == {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Hello"}]}
    assert items[2] == {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": '{"x":1}'}
    assert items[3]["content"][1]["type"] == "input_file"
    assert items[3]["content"][1]["file_data"].startswith("data:application/pdf;base64,")


# --- end to end against the loopback FakeProvider ---------------------------------------------------


def fake_model(fake: FakeProvider) -> openai.ResponsesModel:
    return openai.Client(fake.api_key, base_url=fake.base_url, timeout=5).responses_model("gpt-4o")


def test_fake_responses_echo_and_stream(fake: FakeProvider) -> None:
    resp = fake_model(fake).completion_request("Hello there").preamble("Be brief").send()
    assert resp.text == "echo: Hello there"
    assert resp.usage.output_tokens > 0
    sent = fake.last_request
    assert sent is not None and sent.path == "/v1/responses" and sent.json["instructions"] == "Be brief"
    stream = fake_model(fake).completion_request("stream me please").stream()
    pieces = list(stream.text_stream())
    assert len(pieces) > 1 and "".join(pieces) == stream.response.text == "echo: stream me please"


def test_fake_responses_tool_call(fake: FakeProvider) -> None:
    add = ToolDefinition("add", "Add", {"type": "object", "properties": {"a": {"type": "integer"},
                                                                          "b": {"type": "integer"}}})
    resp = fake_model(fake).completion_request('call:add {"a": 2, "b": 3}').tool(add).send()
    assert [(c.name, c.arguments) for c in resp.tool_calls] == [("add", {"a": 2, "b": 3})]
    call = resp.tool_calls[0]
    follow = (fake_model(fake).completion_request(Message.tool_result(call.id, "5", call_id=call.call_id))
              .messages([Message.user('call:add {"a": 2, "b": 3}'), resp.message()]).tool(add).send())
    assert "5" in follow.text
