"""Cohere v2 through the public API: every payload in tests/fixtures/cohere with `responses`,
then end to end against the loopback FakeProvider speaking Cohere's wire format."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest
import responses
from conftest import ADD, FIXTURES, load_fixture, sent_json, serve_fixture

from rig_sync import errors, observe
from rig_sync.client.builder import DynClientBuilder
from rig_sync.completion import CompletionResponse, Document, ToolChoice, ToolDefinition
from rig_sync.message import Audio, DocumentContent, Image, Message, Reasoning, Text, ToolCall
from rig_sync.providers import cohere
from rig_sync.streaming import FinalResponse, ReasoningChunk, StreamingCompletionResponse, TextChunk, ToolCallChunk
from rig_sync.testing import FakeProvider, Fault, Reply

BASE = "http://api.test"
CHAT = f"{BASE}/v2/chat"
EMBED = f"{BASE}/v2/embed"
KEY = "co-test-0123456789abcdef"


def client(**options: Any) -> cohere.Client:
    options.setdefault("max_retries", 0)
    return cohere.Client(KEY, base_url=BASE, **options)


def model(name: str = "command-a-plus-05-2026") -> cohere.CompletionModel:
    return client().completion_model(name)


def sse(events: list[dict[str, Any]], *, done: bool = False) -> bytes:
    """Events as they travel on the wire: `event: <type>` and `data: <json>` lines."""
    out = b"".join(f"event: {e['event']}\ndata: {json.dumps(e['data'])}\n\n".encode() for e in events)
    return out + (b"data: [DONE]\n\n" if done else b"")


def events_of(name: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = load_fixture(f"cohere/chat_stream.v2.{name}.events.json")
    return events


def serve_stream(mocked: responses.RequestsMock, body: bytes) -> None:
    mocked.add("POST", CHAT, body=body, status=200, content_type="text/event-stream")


def chat_response(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "r1",
        "finish_reason": "COMPLETE",
        "message": {"role": "assistant", "content": [{"type": "text", "text": "hi"}]},
        "usage": {"billed_units": {"input_tokens": 1, "output_tokens": 1},
                  "tokens": {"input_tokens": 3, "output_tokens": 1}},
    }
    body.update(fields)
    return body


# --- client -----------------------------------------------------------------------------------------


def test_client_settings_and_capabilities() -> None:
    c = client()
    assert cohere.Client.default_base_url == "https://api.cohere.com"
    assert c.capabilities() == ["completion", "embeddings", "rerank", "list_models"]
    assert c.as_completion() is c and c.as_embeddings() is c and c.as_transcription() is None
    assert KEY not in repr(c) and KEY not in repr(c.completion_model("command-r"))


@pytest.mark.parametrize("variable", ["COHERE_API_KEY", "CO_API_KEY"])
def test_from_env_reads_either_key_name(monkeypatch: pytest.MonkeyPatch, mocked: responses.RequestsMock,
                                        variable: str) -> None:
    for name in ("COHERE_API_KEY", "CO_API_KEY", "COHERE_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(variable, KEY)
    monkeypatch.setenv("COHERE_BASE_URL", BASE)
    mocked.add("POST", CHAT, json=chat_response())
    assert cohere.Client.from_env().completion_model("command-r").completion_request("Hi").send().text == "hi"
    request = mocked.calls[0].request
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert KEY not in str(request.url)


def test_from_env_without_key_names_both_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("COHERE_API_KEY", "CO_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(errors.MissingAPIKeyError, match="COHERE_API_KEY or CO_API_KEY"):
        cohere.Client.from_env()


def test_registry_builds_cohere_models(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COHERE_API_KEY", KEY)
    emb = DynClientBuilder().embeddings("cohere", "embed-english-v3.0")
    assert isinstance(emb, cohere.EmbeddingModel) and emb.ndims == 1024 and emb.max_documents == 96


# --- recorded responses -------------------------------------------------------------------------------

CHAT_RESPONSES = ["cohere/chat.v2.text.json", "cohere/chat.v2.image_input.json",
                  "cohere/chat.v2.documents_citations.json"]


@pytest.mark.parametrize("name", CHAT_RESPONSES)
def test_every_recorded_chat_response_parses(mocked: responses.RequestsMock, name: str) -> None:
    data = load_fixture(name)
    serve_fixture(mocked, CHAT, name)
    resp = model().completion_request("Hello").send()
    assert resp.text == "".join(c["text"] for c in data["message"]["content"]) != ""
    assert resp.finish_reason == "stop" and resp.id == data["id"]
    tokens = data["usage"]["tokens"]
    assert (resp.usage.input_tokens, resp.usage.output_tokens) == (tokens["input_tokens"], tokens["output_tokens"])
    assert resp.usage.total_tokens == tokens["input_tokens"] + tokens["output_tokens"]
    assert resp.tool_calls == [] and resp.raw_response == data


def test_recorded_values_spot_checks(mocked: responses.RequestsMock) -> None:
    serve_fixture(mocked, CHAT, "cohere/chat.v2.text.json")
    resp = model().completion_request("Tell me about LLMs").send()
    assert resp.text.startswith("LLMs stand for Large Language Models")
    assert (resp.usage.input_tokens, resp.usage.output_tokens, resp.usage.total_tokens) == (71, 418, 489)
    serve_fixture(mocked, CHAT, "cohere/chat.v2.documents_citations.json")
    cited = model().completion_request("Who is more popular?").send()
    assert cited.raw_response["message"]["citations"][0]["text"] == "extremely popular at the turn of the millennium."


def test_usage_falls_back_to_billed_units_and_reads_cache(mocked: responses.RequestsMock) -> None:
    usage = {"billed_units": {"input_tokens": 18.0, "output_tokens": 6.0}, "cached_tokens": 4}
    mocked.add("POST", CHAT, json=chat_response(usage=usage))
    resp = model().completion_request("Hi").send()
    assert (resp.usage.input_tokens, resp.usage.output_tokens, resp.usage.total_tokens) == (18, 6, 24)
    assert resp.usage.cached_input_tokens == 4


@pytest.mark.parametrize(("reason", "ours"), [("COMPLETE", "stop"), ("STOP_SEQUENCE", "stop_sequence"),
                                               ("MAX_TOKENS", "length"), ("TOOL_CALL", "tool_calls")])
def test_finish_reasons_map(mocked: responses.RequestsMock, reason: str, ours: str) -> None:
    mocked.add("POST", CHAT, json=chat_response(finish_reason=reason))
    assert model().completion_request("Hi").send().finish_reason == ours


@pytest.mark.parametrize("reason", ["ERROR", "TIMEOUT"])
def test_failed_generation_raises_instead_of_answering(mocked: responses.RequestsMock, reason: str) -> None:
    body = chat_response(finish_reason=reason,
                         message={"role": "assistant", "content": [{"type": "text", "text": "half an"}]})
    mocked.add("POST", CHAT, json=body)
    with pytest.raises(cohere.GenerationError) as info:
        model().completion_request("Hi").send()
    err = info.value
    assert (err.reason, err.partial_text, err.provider, err.body) == (reason, "half an", "cohere", body)
    assert reason in str(err) and err.is_retryable()


def test_tool_calls_and_plan_parse(mocked: responses.RequestsMock) -> None:
    message = {"role": "assistant", "tool_plan": "I will look it up.",
               "tool_calls": [{"id": "get_1", "type": "function",
                               "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]}
    mocked.add("POST", CHAT, json=chat_response(finish_reason="TOOL_CALL", message=message))
    resp = model().completion_request("Weather?").send()
    assert resp.tool_calls == [ToolCall("get_1", "get_weather", {"city": "Paris"})]
    assert resp.reasoning == "I will look it up." and resp.text == "" and resp.finish_reason == "tool_calls"


def test_thinking_content_becomes_reasoning(mocked: responses.RequestsMock) -> None:
    content = [{"type": "thinking", "thinking": "Let me see."}, {"type": "text", "text": "42"}]
    mocked.add("POST", CHAT, json=chat_response(message={"role": "assistant", "content": content}))
    resp = model().completion_request("Answer?").send()
    assert (resp.reasoning, resp.text) == ("Let me see.", "42")


def test_missing_message_is_a_decode_error_naming_the_field(mocked: responses.RequestsMock) -> None:
    mocked.add("POST", CHAT, json={"id": "x", "finish_reason": "COMPLETE"})
    with pytest.raises(errors.ResponseDecodeError) as info:
        model().completion_request("Hi").send()
    assert info.value.provider == "cohere" and "message" in str(info.value)


# --- recorded requests --------------------------------------------------------------------------------


def request_fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = load_fixture(f"cohere/requests/{name}.request.json")
    return data


def send(mocked: responses.RequestsMock, builder: Any, stream: bool) -> dict[str, Any]:
    if stream:
        serve_stream(mocked, sse(events_of("text")))
        list(builder.stream())
    else:
        mocked.add("POST", CHAT, json=chat_response())
        builder.send()
    body: dict[str, Any] = sent_json(mocked)
    return body


@pytest.mark.parametrize(("name", "stream"), [("chat.v2.text", False), ("chat_stream.v2.text", True)])
def test_text_request_matches_recorded(mocked: responses.RequestsMock, name: str, stream: bool) -> None:
    want = request_fixture(name)
    prompt = want["messages"][0]["content"]
    assert send(mocked, model(want["model"]).completion_request(prompt), stream) == want


@pytest.mark.parametrize(("name", "stream"), [("chat.v2.image_input", False), ("chat_stream.v2.image_input", True)])
def test_image_request_matches_recorded(mocked: responses.RequestsMock, name: str, stream: bool) -> None:
    want = request_fixture(name)
    text, image = want["messages"][0]["content"]
    prompt = Message.user([Text(text["text"]), Image.from_url(image["image_url"]["url"], image["image_url"]["detail"])])
    assert send(mocked, model(want["model"]).completion_request(prompt), stream) == want


@pytest.mark.parametrize(("name", "stream"), [("chat.v2.tool_calls", False), ("chat_stream.v2.tool_calls", True)])
def test_tools_request_matches_recorded(mocked: responses.RequestsMock, name: str, stream: bool) -> None:
    want = request_fixture(name)
    tools = [ToolDefinition(t["function"]["name"], t["function"]["description"], t["function"]["parameters"])
             for t in want["tools"]]
    builder = model(want["model"]).completion_request(want["messages"][0]["content"]).tools(tools)
    assert send(mocked, builder, stream) == want


@pytest.mark.parametrize(("name", "stream"), [("chat.v2.documents_citations", False),
                                              ("chat_stream.v2.documents_citations", True)])
def test_documents_travel_natively(mocked: responses.RequestsMock, name: str, stream: bool) -> None:
    want = request_fixture(name)
    docs = [Document(f"doc:{i}", d["data"]["snippet"], {"content": d["data"]["content"]})
            for i, d in enumerate(want["documents"])]
    sent = send(mocked, model(want["model"]).completion_request(want["messages"][0]["content"]).documents(docs),
                stream)
    # Same documents, with rig's text under "text" and its id for citations; the prompt untouched.
    assert sent["documents"] == [{"id": f"doc:{i}", "data": {"content": d["data"]["content"],
                                                             "text": d["data"]["snippet"]}}
                                 for i, d in enumerate(want["documents"])]
    assert {k: v for k, v in sent.items() if k != "documents"} == {k: v for k, v in want.items() if k != "documents"}


def test_history_options_and_tool_results_on_the_wire(mocked: responses.RequestsMock) -> None:
    mocked.add("POST", CHAT, json=chat_response())
    call = ToolCall("c1", "add", {"a": 1})
    history = [Message.user("add 1"), Message.assistant([Reasoning("I will add."), call]),
               Message.tool_result("c1", "1"), Message.assistant("It is 1."),
               Message.assistant([Reasoning("Hmm."), Text("Sure.")])]
    (model().completion_request("And 2?").preamble("Be brief").messages(history)
     .temperature(0.3).max_tokens(50).additional_params({"k": 5}).send())
    sent = sent_json(mocked)
    assert sent["messages"] == [
        {"role": "system", "content": "Be brief"},
        {"role": "user", "content": "add 1"},
        {"role": "assistant", "tool_plan": "I will add.",
         "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "add", "arguments": '{"a":1}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "1"},
        {"role": "assistant", "content": "It is 1."},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "Hmm."}, {"type": "text", "text": "Sure."}]},
        {"role": "user", "content": "And 2?"},
    ]
    assert (sent["temperature"], sent["max_tokens"], sent["k"], sent["stream"]) == (0.3, 50, 5, False)
    assert "tools" not in sent and "documents" not in sent


@pytest.mark.parametrize(("choice", "wire"), [("required", "REQUIRED"), ("none", "NONE"), ("auto", None)])
def test_tool_choice_maps(mocked: responses.RequestsMock, choice: str, wire: str | None) -> None:
    mocked.add("POST", CHAT, json=chat_response())
    model().completion_request("Hi").tool(ToolDefinition("add")).tool_choice(choice).send()
    assert sent_json(mocked).get("tool_choice") == wire


def test_named_tool_choice_is_sent_as_required_with_only_that_tool(mocked: responses.RequestsMock) -> None:
    # Cohere v2 has no named tool choice: REQUIRED with only the named tool offered forces it.
    mocked.add("POST", CHAT, json=chat_response())
    model().completion_request("Hi").tools([ToolDefinition("sub"), ToolDefinition("add")]) \
        .tool_choice(ToolChoice.tool("add")).send()
    sent = sent_json(mocked)
    assert sent["tool_choice"] == "REQUIRED" and [t["function"]["name"] for t in sent["tools"]] == ["add"]


def test_named_tool_choice_of_a_tool_not_offered_is_refused_before_sending() -> None:
    builder = model().completion_request("Hi").tool(ToolDefinition("add")).tool_choice(ToolChoice.tool("sub"))
    with pytest.raises(errors.InvalidRequestError, match="'sub'"):
        builder.send()


@pytest.mark.parametrize("part", [Audio("AAAA"), DocumentContent("AAAA")])
def test_unsupported_parts_are_refused(part: Any) -> None:
    with pytest.raises(errors.UnsupportedFeature, match=type(part).__name__):
        model().completion_request(Message.user([Text("look"), part])).send()


# --- recorded streams ---------------------------------------------------------------------------------

STREAMS = ["text", "tool_calls", "documents_citations", "image_input"]


def expected(name: str) -> dict[str, Any]:
    text, plan, calls, usage, finish = "", "", {}, None, None
    for e in events_of(name):
        message = e["data"].get("delta", {}).get("message", {})
        if e["event"] == "content-delta":
            text += message["content"]["text"]
        elif e["event"] == "tool-plan-delta":
            plan += message["tool_plan"]
        elif e["event"] in ("tool-call-start", "tool-call-delta"):
            call = calls.setdefault(e["data"]["index"], {"args": ""})
            call.update({k: message["tool_calls"][k] for k in ("id",) if k in message["tool_calls"]})
            call.setdefault("name", message["tool_calls"]["function"].get("name"))
            call["args"] += message["tool_calls"]["function"]["arguments"]
        elif e["event"] == "message-end":
            usage, finish = e["data"]["delta"]["usage"]["tokens"], e["data"]["delta"]["finish_reason"]
    tool_calls = [ToolCall(c["id"], c["name"], json.loads(c["args"])) for c in calls.values()]
    return {"text": text, "plan": plan, "calls": tool_calls, "usage": usage, "finish": finish}


@pytest.mark.parametrize("done", [False, True], ids=["no-terminator", "DONE-terminator"])
@pytest.mark.parametrize("name", STREAMS)
def test_every_recorded_stream_reassembles(mocked: responses.RequestsMock, name: str, done: bool) -> None:
    want = expected(name)
    serve_stream(mocked, sse(events_of(name), done=done))
    stream = model().completion_request("Hello").stream()
    chunks = list(stream)
    assert "".join(c.text for c in chunks if isinstance(c, TextChunk)) == want["text"]
    assert "".join(c.text for c in chunks if isinstance(c, ReasoningChunk)) == want["plan"]
    assert [c.tool_call for c in chunks if isinstance(c, ToolCallChunk)] == want["calls"]
    assert isinstance(chunks[-1], FinalResponse) and stream.response is chunks[-1].response
    final = stream.response
    assert (final.text, final.reasoning, final.tool_calls) == (want["text"], want["plan"], want["calls"])
    assert (final.usage.input_tokens, final.usage.output_tokens) == (round(want["usage"]["input_tokens"]),
                                                                     round(want["usage"]["output_tokens"]))
    assert final.id == events_of(name)[0]["data"]["id"]
    assert final.finish_reason == {"COMPLETE": "stop", "TOOL_CALL": "tool_calls"}[want["finish"]]


def test_recorded_tool_stream_values(mocked: responses.RequestsMock) -> None:
    serve_stream(mocked, sse(events_of("tool_calls")))
    final = model().completion_request("Sales?").stream().response
    assert [(c.name, c.arguments) for c in final.tool_calls] == [
        ("query_daily_sales_report", {"day": "2023-09-29"}), ("query_product_catalog", {"category": "Electronics"})]
    assert final.reasoning.startswith("I will use the query_daily_sales_report")
    assert (final.usage.input_tokens, final.usage.output_tokens) == (1589, 135)


@pytest.mark.parametrize("name", STREAMS)
def test_stream_without_message_end_raises(mocked: responses.RequestsMock, name: str) -> None:
    serve_stream(mocked, sse(events_of(name)[:-1], done=True))
    stream = model().completion_request("Hello").stream()
    with pytest.raises(errors.StreamError, match="message-end") as info:
        list(stream)
    assert info.value.is_retryable()


def test_stream_cut_mid_event_raises(mocked: responses.RequestsMock) -> None:
    raw = sse(events_of("text"))
    serve_stream(mocked, raw[: raw.rindex(b"event: message-end") + 30])
    with pytest.raises(errors.StreamError):
        list(model().completion_request("Hello").stream())


def test_stream_ending_in_error_raises_with_partial_text(mocked: responses.RequestsMock) -> None:
    events = events_of("text")[:5]
    events.append({"event": "message-end", "data": {"type": "message-end",
                                                    "delta": {"finish_reason": "ERROR", "error": "model crashed"}}})
    serve_stream(mocked, sse(events))
    stream = model().completion_request("Hello").stream()
    with pytest.raises(errors.NoAnswerError, match="model crashed") as info:  # as every provider's
        list(stream)
    err = info.value
    assert isinstance(err, cohere.GenerationError) and err.is_retryable()
    assert err.reason == "ERROR" and err.text == err.partial_text == "".join(
        e["data"]["delta"]["message"]["content"]["text"] for e in events if e["event"] == "content-delta")


def test_error_object_mid_stream_raises(mocked: responses.RequestsMock) -> None:
    serve_stream(mocked, sse(events_of("text")[:3]) + b'data: {"message": "internal server error"}\n\n')
    with pytest.raises(errors.StreamError, match="internal server error"):
        list(model().completion_request("Hello").stream())


def test_non_json_event_raises(mocked: responses.RequestsMock) -> None:
    serve_stream(mocked, sse(events_of("text")[:2]) + b"event: content-delta\ndata: {oops\n\n")
    with pytest.raises(errors.StreamError, match="not JSON"):
        list(model().completion_request("Hello").stream())


# --- errors -------------------------------------------------------------------------------------------


def test_recorded_401_maps_to_authentication_error(mocked: responses.RequestsMock) -> None:
    serve_fixture(mocked, CHAT, "cohere/error.401_invalid_api_token.json")
    with pytest.raises(errors.AuthenticationError) as info:
        model().completion_request("Hi").send()
    err = info.value
    assert (err.provider, err.status_code, err.message) == ("cohere", 401, "invalid api token")
    assert err.body == load_fixture("cohere/error.401_invalid_api_token.json")
    assert KEY not in str(err) and KEY not in repr(err)


def test_recorded_401_on_a_stream(mocked: responses.RequestsMock) -> None:
    serve_fixture(mocked, CHAT, "cohere/error.401_invalid_api_token.json")
    with pytest.raises(errors.AuthenticationError, match="invalid api token"):
        model().completion_request("Hi").stream()


@pytest.mark.parametrize("stream", [False, True])
def test_498_is_content_blocked(mocked: responses.RequestsMock, stream: bool) -> None:
    mocked.add("POST", CHAT, status=498, json={"message": "blocked output: please adjust your prompt"})
    builder = model().completion_request("Hi")
    with pytest.raises(cohere.ContentBlockedError) as info:
        builder.stream() if stream else builder.send()
    assert (info.value.status_code, info.value.message) == (498, "blocked output: please adjust your prompt")
    assert isinstance(info.value, errors.APIStatusError)


def test_429_is_rate_limited_with_retry_after(mocked: responses.RequestsMock) -> None:
    mocked.add("POST", CHAT, status=429, json={"message": "too many requests"}, headers={"Retry-After": "3"})
    with pytest.raises(errors.RateLimitError) as info:
        model().completion_request("Hi").send()
    assert info.value.message == "too many requests" and info.value.retry_after == 3


# --- embeddings ---------------------------------------------------------------------------------------


def test_recorded_text_embed_request_and_response(mocked: responses.RequestsMock) -> None:
    want = request_fixture("embed.v2.texts_float")
    data = load_fixture("cohere/embed.v2.texts_float.json")
    serve_fixture(mocked, EMBED, "cohere/embed.v2.texts_float.json")
    emb = client().embedding_model(want["model"], input_type=want["input_type"])
    out = emb.embed_texts(want["texts"])
    assert sent_json(mocked) == want
    assert [e.document for e in out] == ["hello", "goodbye"]
    assert [e.vec for e in out] == data["embeddings"]["float"] and len(out[0].vec) == 1024


def test_recorded_image_embed_request_and_response(mocked: responses.RequestsMock) -> None:
    want = request_fixture("embed.v2.images_float")
    header, _, payload = want["images"][0].partition(",")
    image = Image.from_bytes(base64.b64decode(payload), header[len("data:"):].split(";")[0])
    serve_fixture(mocked, EMBED, "cohere/embed.v2.images_float.json")
    vectors = client().embedding_model(want["model"]).embed_images([image])
    assert sent_json(mocked) == want
    assert vectors == load_fixture("cohere/embed.v2.images_float.json")["embeddings"]["float"]


def test_image_by_link_and_non_images_are_refused() -> None:
    emb = client().embedding_model("embed-v4.0")
    with pytest.raises(errors.UnsupportedFeature, match="inline"):
        emb.embed_images([Image.from_url("https://example.com/cat.png")])
    with pytest.raises(TypeError, match="Image"):
        emb.embed_images(["data:image/png;base64,AAAA"])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="str"):
        emb.embed_texts([Image.from_bytes(b"png")])  # type: ignore[list-item]


def test_v3_models_take_one_image_per_request(mocked: responses.RequestsMock) -> None:
    for value in (0.1, 0.2):
        mocked.add("POST", EMBED, json={"embeddings": {"float": [[value, value]]}})
    images = [Image.from_bytes(b"a"), Image.from_bytes(b"b")]
    assert client().embedding_model("embed-english-v3.0").embed_images(images) == [[0.1, 0.1], [0.2, 0.2]]
    assert [len(sent_json(mocked, i)["images"]) for i in range(2)] == [1, 1]


def test_texts_go_in_batches_of_96_in_order(mocked: responses.RequestsMock) -> None:
    texts = [f"text {i}" for i in range(200)]
    for size in (96, 96, 8):
        mocked.add("POST", EMBED, json={"embeddings": {"float": [[float(len(texts))] for _ in range(size)]}})
    emb = client().embedding_model("embed-english-v3.0")
    out = emb.embed_texts(texts)
    assert emb.max_documents == 96
    assert [len(sent_json(mocked, i)["texts"]) for i in range(3)] == [96, 96, 8]
    assert [e.document for e in out] == texts
    assert sent_json(mocked, 2)["texts"] == texts[192:]


def test_input_type_and_dimensions(mocked: responses.RequestsMock) -> None:
    mocked.add("POST", EMBED, json={"embeddings": {"float": [[0.5] * 256]}})
    emb = client().embedding_model("embed-v4.0", 256).with_input_type("search_query")
    assert emb.ndims == 256 and emb.input_type == "search_query"
    assert len(emb.embed_text("query").vec) == 256
    assert sent_json(mocked) == {"model": "embed-v4.0", "input_type": "search_query",
                                 "embedding_types": ["float"], "texts": ["query"], "output_dimension": 256}


@pytest.mark.parametrize(("name", "ndims"), [("embed-english-v3.0", 1024), ("embed-multilingual-v3.0", 1024),
                                             ("embed-english-light-v3.0", 384), ("embed-v4.0", 1536),
                                             ("embed-future", None)])
def test_known_ndims(name: str, ndims: int | None) -> None:
    assert client().embedding_model(name).ndims == ndims


def test_bad_embedding_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="input_type"):
        client().embedding_model("embed-v4.0", input_type="query")
    with pytest.raises(ValueError, match="ndims"):
        client().embedding_model("embed-v4.0", 0)


@pytest.mark.parametrize("body", [{"embeddings": {"int8": [[1]]}}, {"embeddings": {"float": [[0.1], [0.2]]}},
                                  {"embeddings": {"float": [["..."]]}}])
def test_bad_embed_bodies_are_decode_errors(mocked: responses.RequestsMock, body: dict[str, Any]) -> None:
    mocked.add("POST", EMBED, json=body)
    with pytest.raises(errors.ResponseDecodeError) as info:
        client().embedding_model("embed-v4.0").embed_text("one")
    assert info.value.provider == "cohere"


# --- every fixture is exercised -----------------------------------------------------------------------


def test_every_cohere_fixture_is_exercised() -> None:
    source = Path(__file__).read_text()
    folder = FIXTURES / "cohere"
    names = sorted(p.name for p in [*folder.iterdir(), *(folder / "requests").iterdir()]
                   if p.is_file() and p.name != "cohere-openapi.yaml")
    assert len(names) == 20
    # Request fixtures are named in the tests by stem (see `request_fixture`), streams by STREAMS.
    used = {f"{stem}.request.json" for stem in re.findall(r'"([a-z_]+\.v2\.[a-z_]+)"', source)}
    used |= {f"chat_stream.v2.{n}.events.json" for n in STREAMS}
    missing = [n for n in names if n not in source and n not in used]
    assert missing == []


# --- end to end against the loopback FakeProvider -------------------------------------------------------


def fake_client(fake: FakeProvider) -> cohere.Client:
    return cohere.Client(fake.api_key, base_url=fake.url, timeout=5, max_retries=0)


def test_fake_completion(fake: FakeProvider) -> None:
    resp = fake_client(fake).completion_model("command-r").completion_request("Hello there").preamble("Be brief").send()
    assert (resp.text, resp.finish_reason) == ("echo: Hello there", "stop")
    assert resp.usage.input_tokens > 0 and resp.usage.output_tokens == 3
    sent = fake.last_request
    assert sent is not None and sent.path == "/v2/chat"
    assert sent.headers["authorization"] == f"Bearer {fake.api_key}"
    assert sent.json["messages"][0] == {"role": "system", "content": "Be brief"}


def test_fake_streaming(fake: FakeProvider) -> None:
    stream = fake_client(fake).completion_model("command-r").completion_request("stream these words").stream()
    pieces = list(stream.text_stream())
    assert len(pieces) > 1 and "".join(pieces) == stream.response.text == "echo: stream these words"
    assert stream.response.finish_reason == "stop" and stream.response.usage.output_tokens == 4


@pytest.mark.parametrize("stream", [False, True])
def test_fake_tool_round_trip(fake: FakeProvider, stream: bool) -> None:
    chat = fake_client(fake).completion_model("command-r")

    def ask(builder: Any) -> CompletionResponse:
        if not stream:
            return builder.send()  # type: ignore[no-any-return]
        streamed: StreamingCompletionResponse = builder.stream()
        return streamed.response

    asked = ask(chat.completion_request('call:add {"a": 2, "b": 3}').tool(ADD))
    assert [(c.name, c.arguments) for c in asked.tool_calls] == [("add", {"a": 2, "b": 3})]
    assert (asked.finish_reason, asked.reasoning) == ("tool_calls", "I will call add.")
    answered = ask(chat.completion_request(Message.tool_result(asked.tool_calls[0].id, "5"))
                   .messages([Message.user('call:add {"a": 2, "b": 3}'), asked.message()]).tool(ADD))
    assert answered.text == "tool result: 5"
    sent = fake.last_request
    assert sent is not None and sent.json["messages"][1]["tool_plan"] == "I will call add."
    assert sent.json["messages"][2] == {"role": "tool", "tool_call_id": asked.tool_calls[0].id, "content": "5"}


def test_fake_scripted_reply_and_error_finish(fake: FakeProvider) -> None:
    chat = fake_client(fake).completion_model("command-r")
    fake.script(Reply.text("scripted"), Reply.text("cut sho", finish_reason="ERROR"))
    assert chat.completion_request("Hi").send().text == "scripted"
    with pytest.raises(cohere.GenerationError) as info:
        chat.completion_request("Hi").send()
    assert info.value.partial_text == "cut sho"


def test_fake_embeddings(fake: FakeProvider) -> None:
    emb = fake_client(fake).embedding_model("embed-english-v3.0")
    cat, cat2, physics = emb.embed_texts(["the cat sat on the mat", "a cat sat on a mat", "quantum chromodynamics"])

    def dot(a: list[float], b: list[float]) -> float:
        return sum(x * y for x, y in zip(a, b, strict=True))

    assert len(cat.vec) == 1024 == emb.ndims
    assert dot(cat.vec, cat2.vec) > dot(cat.vec, physics.vec)
    assert fake.last_request is not None and fake.last_request.json["input_type"] == "search_document"
    small = fake_client(fake).embedding_model("embed-v4.0", 256).embed_images([Image.from_bytes(b"png")])
    assert len(small[0]) == 256


def test_fake_faults_use_cohere_error_shape(fake: FakeProvider) -> None:
    chat = fake_client(fake).completion_model("command-r")
    fake.inject(Fault.status(429, retry_after=2))
    with pytest.raises(errors.RateLimitError) as info:
        chat.completion_request("Hi").send()
    assert info.value.provider == "cohere" and info.value.retry_after == 2
    assert info.value.body == {"message": info.value.message} and "rate limit" in info.value.message
    fake.inject(Fault.status(498))
    with pytest.raises(cohere.ContentBlockedError):
        chat.completion_request("Hi").send()


def test_fake_bad_key_is_an_authentication_error(fake: FakeProvider) -> None:
    with FakeProvider(require_key="right-key") as strict:
        chat = cohere.Client("wrong-key-123", base_url=strict.url, timeout=5).completion_model("command-r")
        with pytest.raises(errors.AuthenticationError) as info:
            chat.completion_request("Hi").send()
    assert "wrong-key-123" not in str(info.value)


def test_fake_stream_faults(fake: FakeProvider) -> None:
    chat = fake_client(fake).completion_model("command-r")
    fake.inject(Fault.sse_error(after_events=3, error={"message": "overloaded mid-answer"}))
    with pytest.raises(cohere.GenerationError, match="overloaded mid-answer"):
        list(chat.completion_request("several words to stream").stream())
    fake.inject(Fault.stream_cut(after_events=3))
    with pytest.raises(errors.StreamError):
        list(chat.completion_request("several words to stream").stream())


def test_fake_agent_runs_the_tool_loop(fake: FakeProvider) -> None:
    from rig_sync.tool import tool

    @tool
    def add(a: int, b: int) -> int:
        """Add two integers.

        Args:
            a: the first addend
            b: the second addend
        """
        return a + b

    agent = fake_client(fake).agent("command-r").preamble("Be helpful").tool(add).build()
    assert agent.prompt('call:add {"a": 2, "b": 3}') == "tool result: 5"
    assert [r.path for r in fake.requests] == ["/v2/chat", "/v2/chat"]


def test_embedding_tokens_reach_the_observe_hooks(mocked: responses.RequestsMock) -> None:
    want = request_fixture("embed.v2.texts_float")
    data = load_fixture("cohere/embed.v2.texts_float.json")
    serve_fixture(mocked, EMBED, "cohere/embed.v2.texts_float.json")
    with observe.collect() as metrics:
        client().embedding_model(want["model"], input_type=want["input_type"]).embed_texts(want["texts"])
    summary = metrics.by("provider")["cohere"]
    assert (summary.input_tokens, summary.output_tokens) == (data["meta"]["billed_units"]["input_tokens"], 0)
