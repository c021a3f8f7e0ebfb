"""Payload fields of the OpenAI family, read from recordings through the public API (issue 13):
the `url_citation` annotations of OpenAI's search models, DeepSeek's cache and reasoning counts,
Azure's content filter results on a whole answer (and on one it withheld), and the errors the
Responses API and Cohere send mid-stream. Sources of every fixture: tests/fixtures/README.md."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest
import responses
from conftest import load_bytes, load_fixture

from rig_sync import errors
from rig_sync.completion import Citation, SafetyResult, Usage
from rig_sync.providers import azure, cohere, deepseek, openai
from rig_sync.streaming import TextChunk, ToolCallChunk
from rig_sync.testing import FakeProvider, Fault

BASE = "http://127.0.0.1:9"
KEY = "sk-test-0123456789abcdef"
ANY = re.compile(r"http://127\.0\.0\.1:9/.*")


def sse(payloads: list[str]) -> bytes:
    return b"".join(b"data: " + p.encode() + b"\n\n" for p in payloads)


# --- OpenAI search models: url_citation annotations -----------------------------------------------

SEARCH = "openai/chat_completion.url_citation.json"


def search_model() -> Any:
    return openai.Client(KEY, base_url=f"{BASE}/v1", max_retries=0).completion_model("gpt-4o-search-preview")


def test_url_citations_of_a_search_answer(mocked: responses.RequestsMock) -> None:
    data = load_fixture(SEARCH)
    mocked.add("POST", ANY, body=load_bytes(SEARCH), content_type="application/json")
    resp = search_model().completion_request("What are the latest news in Iceland?").send()
    message = data["choices"][0]["message"]
    cited = [a["url_citation"] for a in message["annotations"]]
    assert len(cited) == 7
    assert list(resp.citations) == [
        Citation(url=c["url"], title=c["title"], start=c["start_index"], end=c["end_index"]) for c in cited]
    assert resp.text == message["content"]
    # Each span is the answer's own link to its source: the offsets count into `resp.text`.
    assert all(c.url and c.url in resp.text[c.start:c.end] for c in resp.citations)
    assert resp.usage == Usage(14, 603, 617, 0, 0)


def test_url_citations_streamed_in_the_last_delta(mocked: responses.RequestsMock) -> None:
    # The live chunk (a gpt-4o-mini-search-preview stream): the annotations ride in the last
    # chunk's delta, beside the finish reason.
    live = load_bytes("openai/chat_stream.url_citation.last_chunk.json").decode().strip()
    last = json.loads(live)
    frame = {k: v for k, v in last.items() if k != "choices"}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        return json.dumps({**frame, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})

    mocked.add("POST", ANY, body=sse([chunk({"role": "assistant", "content": ""}), chunk({"content": "上海乐高乐园"}),
                                      live, "[DONE]"]), content_type="text/event-stream")
    streamed = search_model().completion_request("Hi").stream().response
    cited = last["choices"][0]["delta"]["annotations"][0]["url_citation"]
    assert list(streamed.citations) == [Citation(url=cited["url"], title="上海乐高乐园", start=75, end=199)]
    assert streamed.finish_reason == "stop" and streamed.text == "上海乐高乐园"

    # The recorded answer streamed so: its text in pieces, its annotations in the last delta.
    # Read either way, the answer has the same citations.
    message = load_fixture(SEARCH)["choices"][0]["message"]
    text = message["content"]
    pieces = [chunk({"content": text[i:i + 40]}) for i in range(0, len(text), 40)]
    mocked.add("POST", ANY, body=sse([chunk({"role": "assistant", "content": ""}), *pieces,
                                      chunk({"annotations": message["annotations"]}, "stop"), "[DONE]"]),
               content_type="text/event-stream")
    mocked.add("POST", ANY, body=load_bytes(SEARCH), content_type="application/json")
    streamed = search_model().completion_request("Hi").stream().response
    sent = search_model().completion_request("Hi").send()
    assert streamed.text == sent.text and len(sent.citations) == 7
    assert streamed.citations == sent.citations


# --- DeepSeek: cache hits and reasoning tokens ----------------------------------------------------

DEEPSEEK = "deepseek/chat_completion.reasoner_tool_call_cache_hit.json"
DEEPSEEK_STREAM = "deepseek/chat_stream.reasoner_tool_call_cache_hit.chunks.txt"


def deepseek_model() -> Any:
    return deepseek.Client(KEY, base_url=BASE, max_retries=0).completion_model("deepseek-reasoner")


def test_deepseek_cache_hits_and_reasoning(mocked: responses.RequestsMock) -> None:
    data = load_fixture(DEEPSEEK)
    usage = data["usage"]
    # DeepSeek says its cache hits twice, in its own field and in OpenAI's: one count.
    assert usage["prompt_cache_hit_tokens"] == usage["prompt_tokens_details"]["cached_tokens"] == 320
    assert usage["prompt_cache_hit_tokens"] + usage["prompt_cache_miss_tokens"] == usage["prompt_tokens"]
    mocked.add("POST", ANY, json=data)
    resp = deepseek_model().completion_request("What is the weather in San Francisco?").send()
    assert resp.usage == Usage(339, 92, 431, cached_input_tokens=320, reasoning_tokens=48)
    assert resp.tool_calls[0].name == "weather" and resp.tool_calls[0].arguments == {"location": "San Francisco"}
    assert resp.reasoning == data["choices"][0]["message"]["reasoning_content"]

    # Its own field alone (its answers before it added prompt_tokens_details) counts the same.
    own = copy.deepcopy(data)
    del own["usage"]["prompt_tokens_details"]
    mocked.add("POST", ANY, json=own)
    assert deepseek_model().completion_request("Hi").send().usage.cached_input_tokens == 320


def test_deepseek_cache_hits_and_reasoning_streamed(mocked: responses.RequestsMock) -> None:
    lines = load_fixture(DEEPSEEK_STREAM).splitlines()
    chunks = [json.loads(line) for line in lines]
    assert chunks[-1]["usage"]["prompt_cache_hit_tokens"] == 320
    mocked.add("POST", ANY, body=sse([*lines, "[DONE]"]), content_type="text/event-stream")
    stream = deepseek_model().completion_request("What is the weather in San Francisco?").stream()
    calls = [c.tool_call for c in stream if isinstance(c, ToolCallChunk)]
    resp = stream.response
    assert resp.usage == Usage(339, 83, 422, cached_input_tokens=320, reasoning_tokens=39)
    assert [(c.name, c.arguments) for c in calls] == [("weather", {"location": "San Francisco"})]
    assert resp.reasoning == "".join(c["choices"][0]["delta"].get("reasoning_content") or "" for c in chunks)
    assert resp.finish_reason == "tool_calls"


# --- Azure OpenAI: content filter results on a whole answer ---------------------------------------


def azure_model() -> Any:
    return azure.Client(KEY, endpoint=BASE, max_retries=0).completion_model("gpt-4o")


def test_azure_content_filter_results_of_an_answer(mocked: responses.RequestsMock) -> None:
    data = load_fixture("azure/chat_completion.content_filter_results.json")
    mocked.add("POST", ANY, json=data)
    resp = azure_model().completion_request("What is the capital of France?").send()
    assert resp.text == "The capital of France is **Paris**."
    prompt = {r.category: r for r in resp.safety if r.target == "prompt"}
    answer = {r.category: r for r in resp.safety if r.target == "answer"}
    assert set(prompt) == set(data["prompt_filter_results"][0]["content_filter_results"])
    assert set(answer) == set(data["choices"][0]["content_filter_results"])
    assert prompt["jailbreak"] == SafetyResult("jailbreak", False, "not detected", "prompt")
    assert answer["protected_material_code"] == SafetyResult("protected_material_code", False, "not detected")
    assert answer["violence"] == SafetyResult("violence", False, "safe", "answer")
    assert not any(r.blocked for r in resp.safety)
    assert resp.usage == Usage(14, 9, 23, 0, 0)


FILTERED = "azure/chat_completion.finish_content_filter.json"


def test_azure_withheld_answer_raises_and_says_which_filter(mocked: responses.RequestsMock) -> None:
    data = load_fixture(FILTERED)
    assert data["choices"][0]["message"]["content"] is None
    mocked.add("POST", ANY, json=data)
    with pytest.raises(azure.ContentFilteredError, match=r"content_filter; violence: medium\)") as info:
        azure_model().completion_request("Hi").send()
    err = info.value
    assert err.body == data and err.reason == "content_filter"
    assert [r for r in err.safety if r.blocked] == [SafetyResult("violence", True, "medium", "answer")]
    assert {r.category: r.level for r in err.safety if r.target == "answer"} == {
        "hate": "safe", "self_harm": "low", "sexual": "safe", "violence": "medium"}
    assert len([r for r in err.safety if r.target == "prompt"]) == 4

    # Streamed, Azure sends the prompt's results in a first chunk of their own and the answer's
    # beside the finish reason: the error says the same.
    frame = {k: v for k, v in data.items() if k not in ("choices", "usage", "prompt_filter_results")}
    choice = data["choices"][0]
    chunks = [{**frame, "choices": [], "prompt_filter_results": data["prompt_filter_results"]},
              {**frame, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]},
              {**frame, "choices": [{"index": 0, "delta": {}, "finish_reason": "content_filter",
                                     "content_filter_results": choice["content_filter_results"]}]}]
    mocked.add("POST", ANY, body=sse([*map(json.dumps, chunks), "[DONE]"]), content_type="text/event-stream")
    with pytest.raises(azure.ContentFilteredError, match="violence: medium") as streamed:
        _ = azure_model().completion_request("Hi").stream().response
    assert streamed.value.body is None and set(streamed.value.safety) == set(err.safety)


def test_azure_cut_answer_shows_what_filtered_it(mocked: responses.RequestsMock) -> None:
    # Azure: "In rare cases with longer responses, a partial result can be returned" (finish
    # reason content_filter, with text): the recorded filter results on such an answer.
    data = copy.deepcopy(load_fixture(FILTERED))
    data["choices"][0]["message"]["content"] = "Once upon"
    mocked.add("POST", ANY, json=data)
    resp = azure_model().completion_request("Hi").send()
    assert (resp.text, resp.finish_reason) == ("Once upon", "content_filter")
    assert [r for r in resp.safety if r.blocked] == [SafetyResult("violence", True, "medium", "answer")]
    answer = {r.category: r.level for r in resp.safety if r.target == "answer"}
    assert answer == {"hate": "safe", "self_harm": "low", "sexual": "safe", "violence": "medium"}
    assert {r.category for r in resp.safety if r.target == "prompt"} == {"hate", "self_harm", "sexual", "violence"}


def test_azure_stream_reads_the_answers_choice_only(mocked: responses.RequestsMock) -> None:
    # With n > 1 a chunk may carry another choice alone: its filter results are not the answer's.
    lines = load_fixture("azure/chat_stream.content_filter.chunks.txt").splitlines()
    at = next(i for i, line in enumerate(lines) if '"content":"Capital' in line)
    other = json.loads(lines[at])
    other["choices"][0]["index"] = 1
    other["choices"][0]["content_filter_results"]["violence"] = {"filtered": True, "severity": "high"}
    lines.insert(at + 1, json.dumps(other))
    mocked.add("POST", ANY, body=sse([*lines, "[DONE]"]), content_type="text/event-stream")
    resp = azure.Client(KEY, endpoint=BASE, max_retries=0).completion_model("gpt-5-nano").completion_request(
        "Hi").stream().response
    assert resp.text == "Capital of Denmark."
    assert not any(r.blocked for r in resp.safety)
    assert {r.category: r.level for r in resp.safety if r.target == "answer"}["violence"] == "safe"


# --- errors sent mid-stream: the Responses API ----------------------------------------------------

RESPONSES_ERROR = "openai/responses.stream.error_insufficient_quota.chunks.txt"


def responses_events() -> list[str]:
    lines = load_fixture(RESPONSES_ERROR).splitlines()
    assert [json.loads(line)["type"] for line in lines] == [
        "response.created", "response.in_progress", "error", "response.failed"]
    return lines


def framed(line: str) -> bytes:
    """One event as the API frames it: `event: <type>` then its data."""
    return f"event: {json.loads(line)['type']}\ndata: {line}\n\n".encode()


QUOTA = json.loads(responses_events()[2])["error"]
FLAT = json.dumps({"type": "error", "code": QUOTA["code"], "message": QUOTA["message"], "param": None,
                   "sequence_number": 2})

# The recorded stream, and the other ways a server says the same mid-stream.
RESPONSES_TAILS = {
    "recorded error event (error nested)": lambda lines: b"".join(framed(line) for line in lines[2:]),
    "documented error event (flat)": lambda lines: framed(FLAT),
    "response.failed alone": lambda lines: framed(lines[3]),
    "bare error object": lambda lines: b"data: " + json.dumps({"error": QUOTA}).encode() + b"\n\n",
    "llama.cpp error line": lambda lines: b"error: " + json.dumps({"error": QUOTA}).encode() + b"\n\n",
}


@pytest.mark.parametrize("tail", RESPONSES_TAILS.values(), ids=RESPONSES_TAILS.keys())
def test_responses_stream_error_says_what_the_server_said(fake: FakeProvider, tail: Any) -> None:
    lines = responses_events()
    body = b"".join(framed(line) for line in lines[:2]) + tail(lines)
    fake.inject(Fault.raw(200, body, "text/event-stream"))
    model = openai.Client(fake.api_key, base_url=fake.base_url, max_retries=0).responses_model("gpt-5-nano")
    with pytest.raises(errors.StreamError) as info:
        _ = model.completion_request("Hi").stream().response
    assert QUOTA["message"] in str(info.value) and "(insufficient_quota)" in str(info.value)
    assert info.value.body is not None and not info.value.is_retryable()


# --- errors sent mid-stream: Cohere v2 ------------------------------------------------------------

SAID = load_fixture("cohere/error.401_invalid_api_token.json")  # Cohere's error body: {"message": …}

COHERE_TAILS = {
    "error body in place of an event": b"data: " + json.dumps(SAID).encode() + b"\n\n",
    "event: error": b"event: error\ndata: " + json.dumps(SAID).encode() + b"\n\n",
    "error object": b"data: " + json.dumps({"error": SAID["message"]}).encode() + b"\n\n",
    "nested error object": b"data: " + json.dumps({"error": SAID}).encode() + b"\n\n",
    "llama.cpp error line": b"error: " + json.dumps({"code": 500, **SAID, "type": "server_error"}).encode()
                            + b"\n\ndata: [DONE]\n\n",
    "event: error, plain text": b"event: error\ndata: " + SAID["message"].encode() + b"\n\n",
}


@pytest.mark.parametrize("tail", COHERE_TAILS.values(), ids=COHERE_TAILS.keys())
def test_cohere_stream_error_says_what_the_server_said(mocked: responses.RequestsMock, tail: bytes) -> None:
    events = load_fixture("cohere/chat_stream.v2.text.events.json")[:4]
    head = b"".join(f"event: {e['event']}\ndata: {json.dumps(e['data'])}\n\n".encode() for e in events)
    mocked.add("POST", ANY, body=head + tail, content_type="text/event-stream")
    stream = cohere.Client(KEY, base_url=BASE, max_retries=0).completion_model("command-a").completion_request(
        "Hi").stream()
    seen: list[str] = []
    with pytest.raises(errors.StreamError) as info:
        for c in stream:
            if isinstance(c, TextChunk):
                seen.append(c.text)
    assert "reported an error mid-stream" in str(info.value) and SAID["message"] in str(info.value)
    assert info.value.provider == "cohere" and not isinstance(info.value, cohere.GenerationError)
    assert seen and "".join(seen) == "".join(e["data"]["delta"]["message"]["content"]["text"]
                                    for e in events if e["event"] == "content-delta")
