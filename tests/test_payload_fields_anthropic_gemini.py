"""Fields of Anthropic and Gemini answers that ride beside the text, through the public API:
Anthropic citations (sent and streamed), the server's message in mid-stream errors (Anthropic and
Gemini), and the safety ratings a Gemini `ContentBlockedError` carries. Payloads are the recordings
in tests/fixtures (sources in its README.md); HTTP is mocked with `responses` on 127.0.0.1, or
served by the loopback FakeProvider.
"""

from __future__ import annotations

import json
import pickle
import re
from typing import Any

import pytest
import responses
from conftest import load_bytes, load_fixture

from rig_sync import errors
from rig_sync.completion import Citation, Document, SafetyResult
from rig_sync.providers import anthropic, gemini
from rig_sync.streaming import TextChunk
from rig_sync.testing import FakeProvider, Fault

BASE = "http://127.0.0.1:9"
KEY = "sk-test-0123456789abcdef"
MESSAGES = f"{BASE}/v1/messages"
GEMINI_STREAM = re.compile(r"http://127\.0\.0\.1:9/v1beta/models/gemini-x:streamGenerateContent.*")
GEMINI_GENERATE = f"{BASE}/v1beta/models/gemini-x:generateContent"
WEB_SEARCH = "anthropic/message.web_search_server_tool.json"


def claude(base: str = BASE, key: str = KEY) -> anthropic.CompletionModel:
    return anthropic.Client(key, base_url=base, max_retries=0).completion_model("claude-haiku-4-5")


def flash(base: str = BASE, key: str = KEY) -> gemini.CompletionModel:
    return gemini.Client(key, base_url=base, max_retries=0).completion_model("gemini-x")


def sse(events: list[tuple[str, dict[str, Any]]]) -> bytes:
    return b"".join(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode() for name, data in events)


def stream_events(message: dict[str, Any], citations_at_start: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The events Anthropic streams for `message`: each text block opens empty (with
    `citations_at_start`), gets its citations as `citations_delta`s, then its text in pieces."""
    head = {k: v for k, v in message.items() if k not in ("content", "stop_reason", "stop_sequence", "usage")}
    usage = message["usage"]
    events: list[tuple[str, dict[str, Any]]] = [("message_start", {"type": "message_start", "message": {
        **head, "content": [], "stop_reason": None, "stop_sequence": None, "usage": {**usage, "output_tokens": 1}}})]
    for index, block in enumerate(message["content"]):
        deltas: list[dict[str, Any]] = []
        if block["type"] == "text":
            start = {"type": "text", "text": "", **citations_at_start}
            deltas += [{"type": "citations_delta", "citation": c} for c in block.get("citations") or ()]
            text = block["text"]
            deltas += [{"type": "text_delta", "text": text[i:i + 25]} for i in range(0, len(text), 25)]
        elif block["type"] == "server_tool_use":
            start = {**block, "input": {}}
            deltas.append({"type": "input_json_delta", "partial_json": json.dumps(block["input"])})
        else:
            start = block
        events.append(("content_block_start", {"type": "content_block_start", "index": index, "content_block": start}))
        events += [("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d}) for d in deltas]
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    events.append(("message_delta", {"type": "message_delta",
                                     "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                                     "usage": {"output_tokens": usage["output_tokens"]}}))
    events.append(("message_stop", {"type": "message_stop"}))
    return events


# --- Anthropic citations ---------------------------------------------------------------------------


def test_anthropic_web_search_citations_are_read(mocked: responses.RequestsMock) -> None:
    data = load_fixture(WEB_SEARCH)
    mocked.add("POST", MESSAGES, json=data)
    resp = claude().completion_request("What is the weather in San Francisco?").send()
    accuweather = "https://www.accuweather.com/en/us/san-francisco/94103/weather-forecast/347629"
    assert [(c.url, c.title, c.document_id) for c in resp.citations] == [
        (accuweather, "San Francisco, CA Weather Forecast | AccuWeather", None)] * 2
    assert resp.citations[0].cited_text is not None
    assert resp.citations[0].cited_text.startswith("San Francisco, CA Weather Today ... showers; breezy")
    # each citation spans, in the answer's text, the claim it backs
    first, second = (resp.text[c.start:c.end] for c in resp.citations)
    assert first == "Today in San Francisco, there are showers with breezy and cool conditions, with a high of 52°F."
    assert second.startswith("Tonight will be cloudy") and resp.text.endswith(second)


@pytest.mark.parametrize("citations_at_start", [{"citations": []}, {}, {"citations": None}],
                         ids=["empty_list", "absent", "null"])
def test_anthropic_citations_streamed_match_the_sent_answer(mocked: responses.RequestsMock,
                                                            citations_at_start: dict[str, Any]) -> None:
    data = load_fixture(WEB_SEARCH)
    mocked.add("POST", MESSAGES, json=data)
    sent = claude().completion_request("weather?").send()
    mocked.add("POST", MESSAGES, body=sse(stream_events(data, citations_at_start)), content_type="text/event-stream")
    stream = claude().completion_request("weather?").stream()
    pieces = [c.text for c in stream if isinstance(c, TextChunk)]
    streamed = stream.response
    assert "".join(pieces) == streamed.text == sent.text
    assert len(streamed.citations) == 2
    assert streamed.citations == sent.citations
    assert streamed.raw_response["content"][2]["citations"] == data["content"][2]["citations"]


def test_anthropic_document_citations(mocked: responses.RequestsMock) -> None:
    # The citation kinds as Anthropic's citations guide shows them (response structure example).
    content = [
        {"type": "text", "text": "According to the document, "},
        {"type": "text", "text": "the grass is green", "citations": [
            {"type": "char_location", "cited_text": "The grass is green.", "document_index": 0,
             "document_title": "doc-7", "start_char_index": 0, "end_char_index": 20}]},
        {"type": "text", "text": ". Page 5 says "},
        {"type": "text", "text": "water is essential", "citations": [
            {"type": "page_location", "cited_text": "Water is essential for life.", "document_index": 1,
             "document_title": "PDF Document", "start_page_number": 5, "end_page_number": 6, "file_id": "file_011"}]},
        {"type": "text", "text": "; the findings", "citations": [
            {"type": "content_block_location", "cited_text": "These are important findings.", "document_index": 2,
             "start_block_index": 0, "end_block_index": 1}]},
        {"type": "text", "text": " per the docs", "citations": [
            {"type": "search_result_location", "source": "https://docs.example.com/api", "title": "API Reference",
             "cited_text": "The API takes JSON.", "search_result_index": 0, "start_block_index": 0,
             "end_block_index": 0},
            {"type": "search_result_location", "source": "kb-article-12", "title": "KB", "cited_text": "Use JSON.",
             "search_result_index": 1, "start_block_index": 0, "end_block_index": 0},
            "not a citation",
            {"type": "char_location", "cited_text": 5, "document_index": -1}]},
    ]
    mocked.add("POST", MESSAGES, json={"id": "msg_1", "type": "message", "role": "assistant", "model": "claude",
                                       "content": content, "stop_reason": "end_turn",
                                       "usage": {"input_tokens": 10, "output_tokens": 20}})
    resp = (claude().completion_request("What does it say?")
            .document(Document("doc-7", "The grass is green.")).send())
    sent = json.loads(mocked.calls[0].request.body or b"{}")
    assert sent["messages"][0]["content"][0]["title"] == "doc-7"  # the document goes out titled by its id
    grass, water, findings, docs, kb, junk = resp.citations
    assert (grass.document_id, grass.title, grass.cited_text) == ("doc-7", "doc-7", "The grass is green.")
    assert resp.text[grass.start:grass.end] == "the grass is green"
    assert (water.document_id, water.title) == ("file_011", "PDF Document")
    assert (findings.document_id, findings.title, findings.url) == ("2", None, None)
    assert (docs.url, docs.document_id, docs.title) == ("https://docs.example.com/api", None, "API Reference")
    assert (kb.url, kb.document_id) == (None, "kb-article-12")
    assert resp.text[docs.start:docs.end] == resp.text[kb.start:kb.end] == " per the docs"
    assert junk == Citation(start=docs.start, end=docs.end)  # fields of the wrong type read as None


# --- mid-stream errors carry the server's message -----------------------------------------------------


def anthropic_text_start() -> bytes:
    """The first events of a recorded Anthropic stream, up to its first text piece."""
    events = load_bytes("anthropic/stream.basic_text.sdk_fixture.sse").replace(b"\r\n", b"\n").split(b"\n\n")
    return b"\n\n".join(events[:4]) + b"\n\n"


def test_anthropic_recorded_overloaded_event_names_type_and_message(mocked: responses.RequestsMock) -> None:
    body = anthropic_text_start() + load_bytes("anthropic/stream.error_event_overloaded.sse")
    mocked.add("POST", MESSAGES, body=body, content_type="text/event-stream")
    seen: list[str] = []
    with pytest.raises(errors.StreamError) as info:
        for chunk in claude().completion_request("Hello").stream():
            if isinstance(chunk, TextChunk):
                seen.append(chunk.text)
    assert seen == ["Hello"]
    assert "overloaded_error" in str(info.value) and "Overloaded" in str(info.value)
    assert info.value.is_retryable()


@pytest.mark.parametrize(("event", "said"), [
    (b'error: {"code": 500, "message": "slot 0 crashed", "type": "server_error"}\n\ndata: [DONE]\n\n',
     ("server_error", "slot 0 crashed")),
    (b'data: {"error": {"message": "upstream timed out", "type": "upstream_error"}}\n\n',
     ("upstream_error", "upstream timed out")),
    (b"event: error\ndata: the backend went away\n\n", ("the backend went away",)),
    (b'event: error\ndata: {"type": "error", "error": {"type": "invalid_request_error", "message": "bad"}}\n\n',
     ("invalid_request_error", "bad")),
], ids=["error_line", "data_error_object", "error_event_text", "error_event"])
def test_anthropic_stream_errors_name_the_server_message(mocked: responses.RequestsMock, event: bytes,
                                                         said: tuple[str, ...]) -> None:
    mocked.add("POST", MESSAGES, body=anthropic_text_start() + event, content_type="text/event-stream")
    seen: list[str] = []
    with pytest.raises(errors.StreamError) as info:
        for chunk in claude().completion_request("Hello").stream():
            if isinstance(chunk, TextChunk):
                seen.append(chunk.text)
    assert seen == ["Hello"]
    assert all(part in str(info.value) for part in said), str(info.value)
    assert not info.value.is_retryable()


def gemini_text_start() -> bytes:
    """The first event of a recorded Gemini stream."""
    return load_bytes("gemini/stream_generate_content.text.sse").split(b"\r\n\r\n")[0] + b"\r\n\r\n"


@pytest.mark.parametrize(("event", "said"), [
    (b'error: {"code": 500, "message": "slot 0 crashed", "type": "server_error"}\n\ndata: [DONE]\n\n',
     "slot 0 crashed (server_error)"),
    (b'error: {"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}\n',
     "The model is overloaded. (UNAVAILABLE)"),
    (b"error: the backend went away\n\n", "the backend went away"),
    (b'data: {"error": {"code": 500, "message": "slot 0 crashed", "type": "server_error"}}\n\n',
     "slot 0 crashed (server_error)"),
], ids=["error_line_then_done", "error_line_google_shape", "error_line_text", "data_error_object_with_type"])
def test_gemini_stream_errors_name_the_server_message(mocked: responses.RequestsMock, event: bytes,
                                                      said: str) -> None:
    mocked.add("POST", GEMINI_STREAM, body=gemini_text_start() + event, content_type="text/event-stream")
    seen: list[str] = []
    with pytest.raises(errors.StreamError) as info:
        for chunk in flash().completion_request("Hello").stream():
            if isinstance(chunk, TextChunk):
                seen.append(chunk.text)
    first = load_fixture("gemini/stream_generate_content.text.sse").splitlines()[0]
    assert seen == [json.loads(first[6:])["candidates"][0]["content"]["parts"][0]["text"]]
    assert f"reported an error mid-stream: {said}" in str(info.value)


def test_error_lines_over_loopback(fake: FakeProvider) -> None:
    line = b'error: {"code": 500, "message": "slot 0 crashed", "type": "server_error"}\n\ndata: [DONE]\n\n'
    fake.inject(Fault.raw(200, anthropic_text_start() + line, "text/event-stream"))
    with pytest.raises(errors.StreamError, match=r"\(server_error\): slot 0 crashed"):
        list(claude(fake.url, fake.api_key).completion_request("Hello").stream())
    fake.inject(Fault.raw(200, gemini_text_start() + line, "text/event-stream"))
    with pytest.raises(errors.StreamError, match=r"slot 0 crashed \(server_error\)"):
        list(flash(fake.url, fake.api_key).completion_request("Hello").stream())


# --- Gemini: a blocked prompt's error carries its safety ratings -------------------------------------------


def test_gemini_blocked_prompt_carries_typed_safety(mocked: responses.RequestsMock) -> None:
    name = "gemini/generate_content.rest_curl.prompt_blocked.json"
    mocked.add("POST", GEMINI_GENERATE, body=load_bytes(name), content_type="application/json")
    with pytest.raises(gemini.ContentBlockedError) as info:
        flash().completion_request("Hello").send()
    err = info.value
    ratings = load_fixture(name)["promptFeedback"]["safetyRatings"]
    assert err.reason == "SAFETY"
    assert err.safety == tuple(SafetyResult(r["category"], False, r["probability"], "prompt") for r in ratings)
    assert "(SAFETY; HARM_CATEGORY_HARASSMENT: MEDIUM)" in str(err)
    assert "HATE_SPEECH" not in str(err)  # a NEGLIGIBLE rating is not why
    copy = pickle.loads(pickle.dumps(err))
    assert (type(copy), copy.safety, copy.reason) == (gemini.ContentBlockedError, err.safety, "SAFETY")


def test_gemini_blocked_prompt_streamed_carries_typed_safety(mocked: responses.RequestsMock) -> None:
    name = "gemini/stream_generate_content.prompt_blocked.sse"
    mocked.add("POST", GEMINI_STREAM, body=load_bytes(name), content_type="text/event-stream")
    stream = flash().completion_request("Hello").stream()
    with pytest.raises(gemini.ContentBlockedError) as info:
        next(iter(stream))
    err = info.value
    assert err.reason == "SAFETY"
    hate = SafetyResult("HARM_CATEGORY_HATE_SPEECH", False, "HIGH", "prompt")
    assert hate in err.safety and len(err.safety) == 4 and {r.target for r in err.safety} == {"prompt"}
    assert "HARM_CATEGORY_HATE_SPEECH: HIGH" in str(err)


def test_gemini_blocked_prompt_names_the_rating_marked_blocked(mocked: responses.RequestsMock) -> None:
    body = {"promptFeedback": {"blockReason": "PROHIBITED_CONTENT", "blockReasonMessage": "not allowed",
                               "safetyRatings": [
                                   {"category": "HARM_CATEGORY_HARASSMENT", "probability": "MEDIUM"},
                                   {"category": "HARM_CATEGORY_SEXUALLY_EXPLICIT", "probability": "HIGH",
                                    "blocked": True}]}}
    mocked.add("POST", GEMINI_GENERATE, json=body)
    with pytest.raises(gemini.ContentBlockedError) as info:
        flash().completion_request("Hello").send()
    err = info.value
    assert err.safety[1] == SafetyResult("HARM_CATEGORY_SEXUALLY_EXPLICIT", True, "HIGH", "prompt", "not allowed")
    assert "(PROHIBITED_CONTENT; HARM_CATEGORY_SEXUALLY_EXPLICIT: HIGH) (not allowed)" in str(err)


def test_gemini_blocked_answer_carries_typed_safety(mocked: responses.RequestsMock) -> None:
    name = "gemini/generate_content.finish_reason_safety.json"
    mocked.add("POST", GEMINI_GENERATE, body=load_bytes(name), content_type="application/json")
    with pytest.raises(gemini.ContentBlockedError) as info:
        flash().completion_request("Hello").send()
    ratings = load_fixture(name)["candidates"][0]["safetyRatings"]
    assert info.value.safety == tuple(SafetyResult(r["category"], False, r["probability"], "answer")
                                      for r in ratings)
