"""The raw provider payload on streams (issue 13): opt-in with `.stream(raw=True)`, every event's
JSON value as received, in order, on `stream.raw_events` and as the final `raw_response`. The
expected values are read from the recorded fixtures independently of rig_sync's SSE reader."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
import responses
from conftest import load_fixture

from rig_sync.completion import CompletionModel, CompletionRequest
from rig_sync.message import Message
from rig_sync.providers import anthropic, azure, gemini, ollama, openai
from rig_sync.streaming import FinalResponse

BASE = "http://127.0.0.1:9"
KEY = "sk-test-0123456789abcdef"
ANY = re.compile(r"http://127\.0\.0\.1:9/.*")


def data_values(sse_text: str) -> list[Any]:
    """The JSON value of every `data:` line of a recorded SSE stream (`[DONE]` carries none)."""
    lines = [line[5:].strip() for line in sse_text.splitlines() if line.startswith("data:")]
    return [json.loads(line) for line in lines if line != "[DONE]"]


MODELS: dict[str, Callable[[], CompletionModel]] = {
    "openai": lambda: openai.Client(KEY, base_url=f"{BASE}/v1", max_retries=0).completion_model("gpt-4o-mini"),
    "responses": lambda: openai.Client(KEY, base_url=f"{BASE}/v1", max_retries=0).responses_model("gpt-4o"),
    "anthropic": lambda: anthropic.Client(KEY, base_url=BASE, max_retries=0).completion_model("claude-x"),
    "gemini": lambda: gemini.Client(KEY, base_url=BASE, max_retries=0).completion_model("gemini-x"),
}

RECORDED = [
    ("openai", "openai/chat_stream.include_usage.sse"),
    ("openai", "openai/chat_stream.tool_call_single.sse"),
    ("responses", "openai/responses.stream.text.sse"),
    ("anthropic", "anthropic/stream.tool_use.sse"),
    ("anthropic", "anthropic/stream.text.sse"),
    ("gemini", "gemini/stream_generate_content.text.sse"),
]


@pytest.mark.parametrize(("provider", "fixture"), RECORDED)
def test_raw_events_are_the_recorded_events_in_order(mocked: responses.RequestsMock, provider: str,
                                                     fixture: str) -> None:
    recorded = load_fixture(fixture)
    mocked.add("POST", ANY, body=recorded, content_type="text/event-stream")
    stream = MODELS[provider]().completion_request("Hi").stream(raw=True)
    assert stream.raw_events == []  # nothing read yet
    chunks = list(stream)
    expected = data_values(recorded)
    assert len(expected) > 2
    assert stream.raw_events == expected
    final = chunks[-1]
    assert isinstance(final, FinalResponse)
    assert final.response.raw_response is stream.raw_events
    assert stream.response.raw_response == expected


@pytest.mark.parametrize(("provider", "fixture"), RECORDED[::2])
def test_raw_events_are_off_by_default(mocked: responses.RequestsMock, provider: str, fixture: str) -> None:
    mocked.add("POST", ANY, body=load_fixture(fixture), content_type="text/event-stream")
    stream = MODELS[provider]().completion_request("Hi").stream()
    assert stream.response.text
    assert stream.raw_events is None
    assert not isinstance(stream.response.raw_response, list)


def test_raw_events_fill_as_the_stream_is_read(mocked: responses.RequestsMock) -> None:
    recorded = load_fixture("anthropic/stream.text.sse")
    mocked.add("POST", ANY, body=recorded, content_type="text/event-stream")
    with MODELS["anthropic"]().completion_request("Hi").stream(raw=True) as stream:
        next(iter(stream))
        kept = list(stream.raw_events or ())
    expected = data_values(recorded)
    assert kept and kept == expected[:len(kept)] and len(kept) < len(expected)


def test_a_request_asks_for_raw_events_itself(mocked: responses.RequestsMock) -> None:
    recorded = load_fixture("gemini/stream_generate_content.text.sse")
    mocked.add("POST", ANY, body=recorded, content_type="text/event-stream")
    request = CompletionRequest([Message.user("Hi")], keep_raw_events=True)
    stream = MODELS["gemini"]().stream(request)
    assert stream.response.raw_response == data_values(recorded)
    body = json.loads(mocked.calls[0].request.body)
    assert "keep_raw_events" not in json.dumps(body)  # an option of ours, never sent


def test_azure_stream_keeps_raw_events(mocked: responses.RequestsMock) -> None:
    lines = load_fixture("azure/chat_stream.content_filter.chunks.txt").splitlines()
    mocked.add("POST", ANY, body="".join(f"data: {line}\n\n" for line in [*lines, "[DONE]"]),
               content_type="text/event-stream")
    model = azure.Client(KEY, endpoint=BASE, max_retries=0).completion_model("gpt-4o")
    stream = model.completion_request("Hi").stream(raw=True)
    assert stream.response.raw_response == [json.loads(line) for line in lines]
    assert stream.raw_events is stream.response.raw_response


def test_ollama_ndjson_stream_keeps_raw_events(mocked: responses.RequestsMock) -> None:
    values = [load_fixture("ollama/api_chat.stream_chunk.json"), load_fixture("ollama/api_chat.stream_final.json")]
    mocked.add("POST", ANY, body="".join(json.dumps(v) + "\n" for v in values), content_type="application/x-ndjson")
    model = ollama.Client(base_url=BASE, max_retries=0).completion_model("llama3.2")
    stream = model.completion_request("Hi").stream(raw=True)
    assert stream.response.text == "The"
    assert stream.raw_events == values
