"""Gemini through the public API, against the recorded payloads in tests/fixtures/gemini (HTTP
mocked with `responses`). End-to-end tests against FakeProvider are in test_gemini_fake.py."""

from __future__ import annotations

import base64
import json
import pickle
import re
from pathlib import Path
from typing import Any

import pytest
import responses
from conftest import (
    FIXTURES,
    credentials_sent,
    fixture_meta,
    load_bytes,
    load_fixture,
    sent_json,
    serve_fixture,
    sse_payloads,
)

from rig_sync import errors
from rig_sync.completion import CompletionResponse, Document, ToolDefinition, Usage
from rig_sync.message import Audio, DocumentContent, Image, Message, Reasoning, Text, ToolCall
from rig_sync.providers import gemini
from rig_sync.streaming import FinalResponse, ReasoningChunk, TextChunk, ToolCallChunk
from rig_sync.transcription import TranscriptionRequest

BASE = "https://generativelanguage.googleapis.com"
KEY = "gm-test-key-123456"
MODEL = "gemini-2.0-flash"
GENERATE = f"{BASE}/v1beta/models/{MODEL}:generateContent"
STREAM = f"{BASE}/v1beta/models/{MODEL}:streamGenerateContent"


def client(**kwargs: Any) -> gemini.Client:
    return gemini.Client(KEY, max_retries=0, **kwargs)


def model() -> gemini.CompletionModel:
    return client().completion_model(MODEL)


def send(mocked: responses.RequestsMock, name: str, prompt: str | Message = "Hello") -> CompletionResponse:
    serve_fixture(mocked, GENERATE, f"gemini/{name}")
    return model().completion_request(prompt).send()


def stream_text(mocked: responses.RequestsMock, body: bytes) -> tuple[list[Any], Any]:
    mocked.add("POST", STREAM, body=body, content_type="text/event-stream")
    stream = model().completion_request("Hello").stream()
    return list(stream), stream


def part_texts(payloads: list[Any]) -> str:
    return "".join(p.get("text", "") for d in payloads for c in d.get("candidates", [])
                   for p in c.get("content", {}).get("parts", []))


# --- every fixture is used -------------------------------------------------------------------------


def test_every_gemini_fixture_is_exercised() -> None:
    here = Path(__file__).parent
    source = "".join((here / name).read_text() for name in ("test_gemini.py", "test_gemini_fake.py"))
    missing = [p.name for p in sorted((FIXTURES / "gemini").iterdir()) if p.name not in source]
    assert missing == []


# --- client ----------------------------------------------------------------------------------------


def test_client_capabilities_and_defaults() -> None:
    c = client()
    assert gemini.Client.capabilities() == ["completion", "embeddings", "transcription", "list_models", "batch_jobs"]
    assert c.base_url == BASE and c.api_version == "v1beta"
    assert c.as_completion() is c and c.as_embeddings() is c and c.as_image_generation() is None
    assert KEY not in repr(c) and KEY not in repr(c.completion_model(MODEL))


def test_key_travels_in_header_never_in_url(mocked: responses.RequestsMock) -> None:
    send(mocked, "generate_content.text.json")
    request = mocked.calls[0].request
    assert request.headers["x-goog-api-key"] == KEY
    assert "Authorization" not in request.headers
    assert KEY not in str(request.url) and "key=" not in str(request.url)


def test_from_env_reads_gemini_then_google_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.setenv("GOOGLE_API_KEY", "from-google")
    monkeypatch.setenv("GEMINI_BASE_URL", "http://127.0.0.1:9/")
    c = gemini.Client.from_env()
    assert credentials_sent(c) == {"x-goog-api-key": "from-google"}
    assert c.base_url == "http://127.0.0.1:9"
    monkeypatch.setenv("GEMINI_API_KEY", "from-gemini")
    assert credentials_sent(gemini.Client.from_env()) == {"x-goog-api-key": "from-gemini"}
    monkeypatch.delenv("GEMINI_API_KEY")
    monkeypatch.delenv("GOOGLE_API_KEY")
    with pytest.raises(errors.MissingAPIKeyError, match="GEMINI_API_KEY or GOOGLE_API_KEY"):
        gemini.Client.from_env()


def test_api_version_option_and_model_paths(mocked: responses.RequestsMock) -> None:
    c = gemini.ClientBuilder(KEY).option("api_version", "v1").max_retries(0).build()
    mocked.add("POST", f"{BASE}/v1/tunedModels/my-tune:generateContent",
               json=load_fixture("gemini/generate_content.text.json"))
    assert "Mountain View" in c.completion_model("tunedModels/my-tune").completion_request("Hi").send().text
    with pytest.raises(errors.ClientBuildError, match="api_version"):
        gemini.Client(KEY, api_version="latest/../x")
    with pytest.raises(TypeError, match="unexpected options: organization"):
        gemini.Client(KEY, organization="x")


# --- responses -------------------------------------------------------------------------------------


def test_text_response(mocked: responses.RequestsMock) -> None:
    resp = send(mocked, "generate_content.text.json")
    assert resp.text == ("Google's headquarters, also known as the Googleplex, is located in "
                         "**Mountain View, California**.\n")
    assert resp.choice == (Text(resp.text),)
    assert (resp.usage.input_tokens, resp.usage.output_tokens, resp.usage.total_tokens) == (7, 22, 29)
    assert resp.finish_reason == "STOP" and resp.model == "gemini-2.0-flash"
    assert resp.raw_response == load_fixture("gemini/generate_content.text.json")


@pytest.mark.parametrize(("name", "start", "usage"), [
    ("generate_content.text_long.json", "Making professional-quality coffee", (9, 1612, 1621)),
    ("generate_content.citations.json", "Okay, let's break down quantum mechanics", (15, 1667, 1682)),
    ("generate_content.google_search_grounding.json", "The current weather in London", (8, 60, 68)),
    ("generate_content.rest_curl.text.json", "```python\n# Example list to be sorted", (9, 87, 96)),
])
def test_text_responses(mocked: responses.RequestsMock, name: str, start: str, usage: tuple[int, int, int]) -> None:
    resp = send(mocked, name)
    assert resp.text.startswith(start)
    assert resp.text == load_fixture(f"gemini/{name}")["candidates"][0]["content"]["parts"][0]["text"]
    assert (resp.usage.input_tokens, resp.usage.output_tokens, resp.usage.total_tokens) == usage


def test_cached_content_tokens(mocked: responses.RequestsMock) -> None:
    resp = send(mocked, "generate_content.rest_curl.cached_content.json")
    assert resp.usage.cached_input_tokens == 323383
    assert resp.usage.input_tokens == 323388 and resp.usage.total_tokens == 323785
    assert resp.text.startswith("This is a transcript of the air-to-ground voice transmission")


def test_code_execution_parts_kept_as_text(mocked: responses.RequestsMock) -> None:
    resp = send(mocked, "generate_content.code_execution.json")
    assert "```python\nprime_numbers = [2, 3, 5, 7, 11]" in resp.text
    assert "```output\nsum_of_primes=28\n" in resp.text
    assert resp.text.endswith("2 + 3 + 5 + 7 + 11 = 28")
    # Tool-use prompt tokens are input, thinking tokens output: they add up to Gemini's total.
    assert (resp.usage.input_tokens, resp.usage.output_tokens, resp.usage.total_tokens) == (21 + 160, 96 + 86, 363)


def test_thinking_reply(mocked: responses.RequestsMock) -> None:
    resp = send(mocked, "generate_content.thinking_reply.json")
    assert resp.text == "Mountain View"
    assert resp.reasoning.startswith("**Thinking About Google's Headquarters**")
    assert isinstance(resp.choice[0], Reasoning) and resp.choice[1] == Text("Mountain View")
    assert (resp.usage.output_tokens, resp.usage.total_tokens) == (2 + 24, 40)
    assert resp.id == "2pmHaJqQEoqC-8YP6eStyAY" and resp.model == "gemini-2.5-flash"


def test_thinking_function_call_round_trips_its_signature(mocked: responses.RequestsMock) -> None:
    data = load_fixture("gemini/generate_content.thinking_function_call.json")
    signature = data["candidates"][0]["content"]["parts"][1]["thoughtSignature"]
    resp = send(mocked, "generate_content.thinking_function_call.json", "How many days until New Year's Eve?")
    assert resp.tool_calls == [ToolCall("now", "now", {})]
    assert resp.reasoning.startswith("**Thinking Through the New Year's Eve Calculation**")
    assert resp.choice[1] == Reasoning("", signature)
    assert (resp.usage.input_tokens, resp.usage.output_tokens, resp.usage.total_tokens) == (38, 8 + 501, 547)

    serve_fixture(mocked, GENERATE, "gemini/generate_content.thinking_reply.json")
    (model().completion_request(Message.tool_result("now", "2025-10-26"))
     .messages([Message.user("How many days until New Year's Eve?"), resp.message()]).send())
    sent = sent_json(mocked, 1)["contents"]
    assert [c["role"] for c in sent] == ["user", "model", "user"]
    thought, call = sent[1]["parts"]
    assert thought["thought"] is True and thought["text"].startswith("**Thinking Through")
    assert call == {"functionCall": {"name": "now", "args": {}}, "thoughtSignature": signature}
    assert sent[2]["parts"] == [{"functionResponse": {"name": "now", "response": {"output": "2025-10-26"}}}]


def test_function_call_then_function_response(mocked: responses.RequestsMock) -> None:
    tool = ToolDefinition("find_theaters", "Find theaters showing a movie", {
        "type": "object", "properties": {"location": {"type": "string"}, "movie": {"type": "string"}},
        "required": ["location"]})
    prompt = "Which theaters in Mountain View show the Barbie movie?"
    serve_fixture(mocked, GENERATE, "gemini/generate_content.rest_curl.function_call.json")
    first = model().completion_request(prompt).tool(tool).send()
    assert first.tool_calls == [ToolCall("find_theaters", "find_theaters",
                                         {"movie": "Barbie", "location": "Mountain View, CA"})]

    serve_fixture(mocked, GENERATE, "gemini/generate_content.rest_curl.after_function_response.json")
    result = json.dumps({"theaters": ["AMC Mountain View 16", "Regal Edwards 14"]})
    second = (model().completion_request(Message.tool_result(first.tool_calls[0].id, result))
              .messages([Message.user(prompt), first.message()]).tool(tool).send())
    assert second.text.startswith("OK. I found two theaters in Mountain View")
    body = sent_json(mocked, 1)
    assert body["contents"][1] == {"role": "model", "parts": [
        {"functionCall": {"name": "find_theaters", "args": {"movie": "Barbie", "location": "Mountain View, CA"}}}]}
    assert body["contents"][2] == {"role": "user", "parts": [
        {"functionResponse": {"name": "find_theaters", "response": {"output": result}}}]}
    assert body["tools"][0]["functionDeclarations"][0]["name"] == "find_theaters"


def test_vertex_function_call_with_arguments(mocked: responses.RequestsMock) -> None:
    resp = send(mocked, "vertexai.generate_content.function_call_with_arguments.json")
    assert resp.tool_calls == [ToolCall("sum", "sum", {"y": 5, "x": 4})]
    assert resp.usage == Usage() and resp.text == ""


def test_gemini_ids_are_kept_and_duplicate_names_get_distinct_ids(mocked: responses.RequestsMock) -> None:
    body = {"candidates": [{"content": {"role": "model", "parts": [
        {"functionCall": {"name": "add", "args": {"a": 1}}},
        {"functionCall": {"name": "add", "args": {"a": 2}}},
        {"functionCall": {"name": "mul", "args": {"a": 3}, "id": "fc-77"}},
    ]}, "finishReason": "STOP"}]}
    mocked.add("POST", GENERATE, json=body)
    resp = model().completion_request("go").send()
    assert [(c.id, c.call_id) for c in resp.tool_calls] == [("add", None), ("add_2", None), ("fc-77", "fc-77")]
    mocked.add("POST", GENERATE, json=load_fixture("gemini/generate_content.text.json"))
    (model().completion_request(Message("user", [Message.tool_result(c.id, "r", c.call_id).content[0]
                                                 for c in resp.tool_calls]))
     .messages([Message.user("go"), resp.message()]).send())
    sent = sent_json(mocked, 1)["contents"]
    assert sent[1]["parts"][2] == {"functionCall": {"name": "mul", "args": {"a": 3}, "id": "fc-77"}}
    assert [p["functionResponse"] for p in sent[2]["parts"]] == [
        {"name": "add", "response": {"output": "r"}},
        {"name": "add", "response": {"output": "r"}},
        {"name": "mul", "response": {"output": "r"}, "id": "fc-77"},
    ]


# --- blocked and empty answers ---------------------------------------------------------------------


def test_finish_reason_safety_is_an_error_with_the_partial_text(mocked: responses.RequestsMock) -> None:
    with pytest.raises(gemini.ContentBlockedError, match="SAFETY") as info:
        send(mocked, "generate_content.finish_reason_safety.json")
    err = info.value
    assert err.reason == "SAFETY" and err.provider == "gemini"
    assert err.text == "Safety error incoming in 5, 4, 3, 2..."
    assert err.safety_ratings[0]["category"] == "HARM_CATEGORY_HATE_SPEECH"
    assert err.body == load_fixture("gemini/generate_content.finish_reason_safety.json")
    assert isinstance(err, errors.APIError) and not err.is_retryable()
    copy = pickle.loads(pickle.dumps(err))
    assert (type(copy), copy.reason, copy.text) == (gemini.ContentBlockedError, "SAFETY", err.text)


def test_prompt_blocked_with_reason(mocked: responses.RequestsMock) -> None:
    with pytest.raises(gemini.ContentBlockedError, match="blocked the prompt") as info:
        send(mocked, "generate_content.rest_curl.prompt_blocked.json")
    assert info.value.reason == "SAFETY"
    assert {"category": "HARM_CATEGORY_HARASSMENT", "probability": "MEDIUM"} in info.value.safety_ratings


def test_prompt_blocked_without_candidates(mocked: responses.RequestsMock) -> None:
    with pytest.raises(gemini.ContentBlockedError, match=r"\(Message\)") as info:
        send(mocked, "generate_content.prompt_blocked.json")
    assert info.value.reason is None and info.value.finish_message == "Message"


@pytest.mark.parametrize(("candidate", "match"), [
    ({"finishReason": "MALFORMED_FUNCTION_CALL", "finishMessage": "Malformed function call: add(a=)"},
     "MALFORMED_FUNCTION_CALL and no answer: Malformed function call"),
    ({"content": {"role": "model", "parts": [{"text": "hmm", "thought": True}]}, "finishReason": "MAX_TOKENS"},
     "raise max_tokens"),
])
def test_empty_answers_raise(mocked: responses.RequestsMock, candidate: dict[str, Any], match: str) -> None:
    mocked.add("POST", GENERATE, json={"candidates": [candidate]})
    with pytest.raises(gemini.GenerationError, match=match) as info:
        model().completion_request("go").send()
    assert not isinstance(info.value, gemini.ContentBlockedError)
    assert info.value.reason == candidate["finishReason"]


def test_max_tokens_with_text_is_an_answer(mocked: responses.RequestsMock) -> None:
    mocked.add("POST", GENERATE, json={"candidates": [
        {"content": {"parts": [{"text": "Once upon"}]}, "finishReason": "MAX_TOKENS"}]})
    resp = model().completion_request("story").send()
    assert (resp.text, resp.finish_reason) == ("Once upon", "MAX_TOKENS")


def test_missing_required_field_names_it(mocked: responses.RequestsMock) -> None:
    mocked.add("POST", GENERATE, json={"candidates": [{"content": {"parts": [{"functionCall": {"args": {}}}]}}]})
    with pytest.raises(errors.ResponseDecodeError, match="required field missing") as info:
        model().completion_request("go").send()
    assert info.value.provider == "gemini" and (info.value.field or "").startswith("$.candidates[0]")


def test_image_output_is_refused_not_dropped(mocked: responses.RequestsMock) -> None:
    mocked.add("POST", GENERATE, json={"candidates": [{"content": {"parts": [
        {"text": "Here it is"}, {"inlineData": {"mimeType": "image/png", "data": "AAAA"}}]}, "finishReason": "STOP"}]})
    with pytest.raises(errors.ResponseDecodeError, match="image/png"):
        model().completion_request("draw").send()


# --- errors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "cls", "code", "message"), [
    ("error.400_api_key_invalid.json", errors.AuthenticationError, "INVALID_ARGUMENT", "API key not valid"),
    ("error.403_service_disabled.json", errors.PermissionDeniedError, "PERMISSION_DENIED",
     "Generative Language API has not been used"),
    ("error.404_model_not_found.json", errors.NotFoundError, "NOT_FOUND", "models/gemini-5.0-flash is not found"),
    ("error.429_resource_exhausted.json", errors.RateLimitError, "RESOURCE_EXHAUSTED", "Quota exceeded"),
])
def test_error_fixtures(mocked: responses.RequestsMock, name: str, cls: type[errors.APIStatusError], code: str,
                        message: str) -> None:
    with pytest.raises(cls) as info:
        send(mocked, name)
    err = info.value
    assert type(err) is cls
    assert err.provider == "gemini" and err.status_code == fixture_meta(f"gemini/{name}")["http_status"]
    assert err.code == code and err.message.startswith(message)
    assert err.body == load_fixture(f"gemini/{name}")
    assert err.is_retryable() == (err.status_code == 429)


# --- requests --------------------------------------------------------------------------------------


def test_request_body_fields(mocked: responses.RequestsMock) -> None:
    mocked.add("POST", GENERATE, json=load_fixture("gemini/generate_content.text.json"))
    (model().completion_request("Where is Google?").preamble("Be brief").temperature(0.2).max_tokens(64)
     .messages([Message.user("Hi"), Message.assistant("Hello!")])
     .additional_params({"generationConfig": {"topK": 3}, "safetySettings": []}).send())
    assert sent_json(mocked) == {
        "contents": [
            {"role": "user", "parts": [{"text": "Hi"}]},
            {"role": "model", "parts": [{"text": "Hello!"}]},
            {"role": "user", "parts": [{"text": "Where is Google?"}]},
        ],
        "systemInstruction": {"parts": [{"text": "Be brief"}]},
        "generationConfig": {"temperature": 0.2, "maxOutputTokens": 64, "topK": 3},
        "safetySettings": [],
    }


def test_documents_and_prompt_share_one_user_turn(mocked: responses.RequestsMock) -> None:
    mocked.add("POST", GENERATE, json=load_fixture("gemini/generate_content.text.json"))
    model().completion_request("Summarise").document(Document("d1", "Cats purr.")).send()
    (turn,) = sent_json(mocked)["contents"]
    assert turn["role"] == "user"
    assert [p["text"] for p in turn["parts"]] == ["<file id: d1>\nCats purr.\n</file>", "Summarise"]


def test_media_parts(mocked: responses.RequestsMock) -> None:
    mocked.add("POST", GENERATE, json=load_fixture("gemini/generate_content.text.json"))
    prompt = Message.user([
        Text("Describe these"),
        Image.from_bytes(b"\x89PNG", "image/png"),
        Image.from_url("gs://bucket/cat.jpg"),
        Audio.from_bytes(b"ID3", "mp3"),
        DocumentContent.from_bytes(b"%PDF", "application/pdf"),
    ])
    model().completion_request(prompt).send()
    assert sent_json(mocked)["contents"][0]["parts"] == [
        {"text": "Describe these"},
        {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(b"\x89PNG").decode()}},
        {"fileData": {"fileUri": "gs://bucket/cat.jpg"}},
        {"inlineData": {"mimeType": "audio/mp3", "data": base64.b64encode(b"ID3").decode()}},
        {"inlineData": {"mimeType": "application/pdf", "data": base64.b64encode(b"%PDF").decode()}},
    ]


def test_unsendable_requests_are_refused_before_sending() -> None:
    m = model()
    with pytest.raises(errors.UnsupportedFeature, match="audio format 'opus'"):
        m.completion_request(Message.user([Audio.from_bytes(b"x", "opus")])).send()
    with pytest.raises(errors.InvalidRequestError, match="answers no tool call"):
        m.completion_request(Message.tool_result("nobody", "5")).send()


@pytest.mark.parametrize(("choice", "config"), [
    ("auto", {"mode": "AUTO"}),
    ("none", {"mode": "NONE"}),
    ("required", {"mode": "ANY"}),
    ("add", {"mode": "ANY", "allowedFunctionNames": ["add"]}),
])
def test_tool_choice(mocked: responses.RequestsMock, choice: str, config: dict[str, Any]) -> None:
    mocked.add("POST", GENERATE, json=load_fixture("gemini/generate_content.text.json"))
    model().completion_request("2+3?").tool(ToolDefinition("add", "Add")).tool_choice(choice).send()
    body = sent_json(mocked)
    assert body["toolConfig"] == {"functionCallingConfig": config}
    # A tool without arguments declares no parameters: Gemini refuses an OBJECT without properties.
    assert body["tools"] == [{"functionDeclarations": [{"name": "add", "description": "Add"}]}]


def declared(mocked: responses.RequestsMock, parameters: dict[str, Any]) -> dict[str, Any]:
    mocked.add("POST", GENERATE, json=load_fixture("gemini/generate_content.text.json"))
    model().completion_request("go").tool(ToolDefinition("f", "F", parameters)).send()
    result: dict[str, Any] = sent_json(mocked)["tools"][0]["functionDeclarations"][0]["parameters"]
    return result


def test_tool_schema_rewritten_for_gemini(mocked: responses.RequestsMock) -> None:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "city": {"type": ["string", "null"], "description": "City", "default": None},
            "unit": {"enum": ["c", "f", None]},
            "point": {"$ref": "#/$defs/Point"},
            "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
            "pair": {"type": "array", "prefixItems": [{"type": "number"}, {"type": "number"}], "items": False},
            "kind": {"const": "x"},
            "either": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
        },
        "required": ["point"],
        "additionalProperties": False,
        "$defs": {"Point": {"type": "object", "properties": {"x": {"type": "number"}}, "required": ["x"],
                            "additionalProperties": False}},
    }
    assert declared(mocked, schema) == {
        "type": "object",
        "properties": {
            "city": {"type": "string", "nullable": True, "description": "City"},
            "unit": {"type": "string", "enum": ["c", "f"], "nullable": True},
            "point": {"type": "object", "properties": {"x": {"type": "number"}}, "required": ["x"]},
            "tags": {"type": "array", "items": {"type": "string"}},
            "pair": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2},
            "kind": {"type": "string", "enum": ["x"]},
            "either": {"type": "integer", "nullable": True},
        },
        "required": ["point"],
    }


@pytest.mark.parametrize(("schema", "match"), [
    ({"type": "object", "properties": {"node": {"$ref": "#/$defs/Node"}},
      "$defs": {"Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}}}}, "recursive"),
    ({"type": "object", "properties": {"n": {"enum": [1, 2]}}}, "strings only"),
    ({"type": "object", "properties": {"n": {"type": "string", "not": {"const": "x"}}}}, "'not'"),
    ({"type": "object", "properties": {
        "t": {"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}]}}}, "mixed item types"),
    ({"type": "object", "properties": {"r": {"$ref": "https://example.com/s.json"}}}, "cannot resolve"),
])
def test_tool_schemas_gemini_cannot_express_are_refused(schema: dict[str, Any], match: str) -> None:
    with pytest.raises(errors.UnsupportedFeature, match=match):
        model().completion_request("go").tool(ToolDefinition("f", "F", schema)).send()


# --- streaming -------------------------------------------------------------------------------------


def test_stream_text(mocked: responses.RequestsMock) -> None:
    serve_fixture(mocked, STREAM + "?alt=sse", "gemini/stream_generate_content.text.sse")
    stream = model().completion_request("What is the capital of Wyoming?").stream()
    chunks = list(stream)
    assert [c.text for c in chunks if isinstance(c, TextChunk)] == ["The", " capital of Wyoming", " is **Cheyenne**.\n"]
    assert isinstance(chunks[-1], FinalResponse)
    resp = stream.response
    assert resp.text == "The capital of Wyoming is **Cheyenne**.\n" and resp.finish_reason == "STOP"
    assert (resp.usage.input_tokens, resp.usage.output_tokens, resp.usage.total_tokens) == (7, 10, 17)
    assert mocked.calls[0].request.params == {"alt": "sse"}
    assert sent_json(mocked)["contents"] == [{"role": "user", "parts": [{"text": "What is the capital of Wyoming?"}]}]


@pytest.mark.parametrize("name", ["stream_generate_content.text_long.sse",
                                  "stream_generate_content.no_content_parts.sse"])
def test_stream_reassembles(mocked: responses.RequestsMock, name: str) -> None:
    payloads = sse_payloads(f"gemini/{name}")
    chunks, stream = stream_text(mocked, load_bytes(f"gemini/{name}"))
    assert stream.response.text == part_texts(payloads) != ""
    assert "".join(c.text for c in chunks if isinstance(c, TextChunk)) == stream.response.text
    last = payloads[-1]["usageMetadata"]
    assert stream.response.usage.output_tokens == last["candidatesTokenCount"]
    assert stream.response.usage.total_tokens == last["totalTokenCount"]


def test_stream_code_execution(mocked: responses.RequestsMock) -> None:
    _, stream = stream_text(mocked, load_bytes("gemini/stream_generate_content.code_execution.sse"))
    text = stream.response.text
    assert text.startswith("To find the sum of the first 5 prime numbers")
    assert "```python\nprime_numbers = [2, 3, 5, 7, 11]" in text and "first 5 prime numbers is: 28\n" in text
    assert text.endswith("The sum of the first 5 prime numbers is 28.")
    usage = stream.response.usage
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (21 + 243, 126 + 95, 485)
    assert stream.response.id == "RUy4aObyJcTujrEPqtKYKQ"


def test_stream_prompt_blocked(mocked: responses.RequestsMock) -> None:
    with pytest.raises(gemini.ContentBlockedError) as info:
        stream_text(mocked, load_bytes("gemini/stream_generate_content.prompt_blocked.sse"))
    assert info.value.reason == "SAFETY"
    assert {"category": "HARM_CATEGORY_HATE_SPEECH", "probability": "HIGH"} in info.value.safety_ratings


def test_stream_error_appended_mid_stream(mocked: responses.RequestsMock) -> None:
    mocked.add("POST", STREAM, body=load_bytes("gemini/vertexai.stream.error_mid_stream.sse"),
               content_type="text/event-stream")
    seen: list[str] = []
    with pytest.raises(errors.StreamError, match="The operation was cancelled") as info:
        for chunk in model().completion_request("Hello").stream():
            if isinstance(chunk, TextChunk):
                seen.append(chunk.text)
    assert seen == ["First ", "Second "]
    assert info.value.body["error"]["status"] == "CANCELLED"


@pytest.mark.parametrize("event", [
    b'data: {"error": {"code": 500, "message": "Internal error", "status": "INTERNAL"}}\r\n\r\n',
    b'data: [{"error": {"code": 500, "message": "Internal error", "status": "INTERNAL"}}]\r\n\r\n',
])
def test_stream_error_events(mocked: responses.RequestsMock, event: bytes) -> None:
    first = load_bytes("gemini/stream_generate_content.text.sse").split(b"\r\n\r\n")[0] + b"\r\n\r\n"
    with pytest.raises(errors.StreamError, match=r"Internal error \(INTERNAL\)"):
        stream_text(mocked, first + event)


@pytest.mark.parametrize("cut", ["two_events", "mid_line"])
def test_truncated_stream_raises(mocked: responses.RequestsMock, cut: str) -> None:
    body = load_bytes("gemini/stream_generate_content.text.sse")
    events = body.split(b"\r\n\r\n")
    body = b"\r\n\r\n".join(events[:2]) + b"\r\n\r\n" if cut == "two_events" else body[: len(body) - 40]
    with pytest.raises(errors.StreamError) as info:
        stream_text(mocked, body)
    assert info.value.is_retryable()


def test_stream_function_call(mocked: responses.RequestsMock) -> None:
    body = (b'data: {"candidates": [{"content": {"parts": [{"text": "thinking", "thought": true}]}}]}\n\n'
            b'data: {"candidates": [{"content": {"parts": [{"functionCall": {"name": "add", "args": {"a": 2, "b": 3}}, '
            b'"thoughtSignature": "c2ln"}], "role": "model"}, "finishReason": "STOP"}], '
            b'"usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 4, "totalTokenCount": 12, '
            b'"thoughtsTokenCount": 3}}\n\n')
    chunks, stream = stream_text(mocked, body)
    assert chunks[0] == ReasoningChunk("thinking")
    assert chunks[1] == ToolCallChunk(ToolCall("add", "add", {"a": 2, "b": 3}))
    assert stream.response.choice == (Reasoning("thinking"), Reasoning("", "c2ln"),
                                      ToolCall("add", "add", {"a": 2, "b": 3}))
    assert stream.response.usage.output_tokens == 7 and stream.response.usage.total_tokens == 12


def test_stream_safety_finish_raises_after_the_text(mocked: responses.RequestsMock) -> None:
    body = (b'data: {"candidates": [{"content": {"parts": [{"text": "Some "}]}}]}\n\n'
            b'data: {"candidates": [{"content": {"parts": [{"text": "words"}]}, "finishReason": "RECITATION"}]}\n\n')
    with pytest.raises(gemini.ContentBlockedError, match="RECITATION") as info:
        stream_text(mocked, body)
    assert info.value.text == "Some words"


# --- embeddings ------------------------------------------------------------------------------------


def complete_truncated(text: str) -> str:
    """A TRUNCATED shape reference made valid: elision lines ("--") dropped, open brackets closed."""
    body = "\n".join(line for line in text.splitlines() if line.strip() != "--").rstrip().rstrip(",")
    closers = {"[": "]", "{": "}"}
    still_open: list[str] = []
    for ch in re.sub(r'"[^"]*"', "", body):
        if ch in closers:
            still_open.append(closers[ch])
        elif ch in "]}":
            still_open.pop()
    assert still_open  # the reference was truncated, so something is open
    return body + "".join(reversed(still_open))


def test_embed_content_shape(mocked: responses.RequestsMock) -> None:
    body = complete_truncated(load_fixture("gemini/embed_content.TRUNCATED.txt"))
    mocked.add("POST", f"{BASE}/v1beta/models/gemini-embedding-001:embedContent", body=body)
    emb = client().embedding_model("gemini-embedding-001")
    assert emb.ndims == 3072 and emb.max_documents == 100
    e = emb.embed_text("Hello world")
    assert e.document == "Hello world"
    assert e.vec == [-0.02342152, 0.01676572, 0.009261323, -0.06383, -0.0026262768, 0.0010187156, -0.01125684]
    # The cookbook's request, minus the key it put in the URL.
    assert sent_json(mocked) == {"model": "models/gemini-embedding-001",
                                 "content": {"parts": [{"text": "Hello world"}]}}
    assert "key=" not in str(mocked.calls[0].request.url)


def test_batch_embed_contents_shape(mocked: responses.RequestsMock) -> None:
    data = json.loads(complete_truncated(load_fixture("gemini/batch_embed_contents.TRUNCATED.txt")))
    # The reference kept a few values of each vector: pad them to one length (in the middle, so the
    # recorded ends stay), as a real answer's vectors are (vectors of mixed sizes are refused).
    size = max(len(e["values"]) for e in data["embeddings"])
    for e in data["embeddings"]:
        e["values"][2:2] = [0.0] * (size - len(e["values"]))
    mocked.add("POST", f"{BASE}/v1beta/models/gemini-embedding-001:batchEmbedContents", json=data)
    texts = ["What is the meaning of life?", "How much wood would a woodchuck chuck?", "How does the brain work?"]
    out = client().embedding_model("gemini-embedding-001", task_type="RETRIEVAL_DOCUMENT").embed_texts(texts)
    assert [e.document for e in out] == texts
    assert out[0].vec[:2] == [-0.022374554, -0.004560777] and out[0].vec[-2:] == [0.018649898, 0.01224912]
    assert out[1].vec[-1] == -0.0049570287 and out[2].vec[0] == -0.0047850125
    assert sent_json(mocked) == {"requests": [
        {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": t}]}, "taskType": "RETRIEVAL_DOCUMENT"}
        for t in texts]}


def test_embeddings_chunked_by_100_in_order(mocked: responses.RequestsMock) -> None:
    def reply(request: Any) -> tuple[int, dict[str, str], str]:
        reqs = json.loads(request.body)["requests"]
        assert all(r["outputDimensionality"] == 2 for r in reqs)
        return 200, {}, json.dumps({"embeddings": [{"values": [float(r["content"]["parts"][0]["text"]), 0.5]}
                                                   for r in reqs]})

    mocked.add_callback("POST", f"{BASE}/v1beta/models/text-embedding-004:batchEmbedContents", callback=reply)
    mocked.add_callback("POST", f"{BASE}/v1beta/models/text-embedding-004:batchEmbedContents", callback=reply)
    mocked.add_callback("POST", f"{BASE}/v1beta/models/text-embedding-004:batchEmbedContents", callback=reply)
    emb = client().embedding_model_with_ndims("text-embedding-004", 2)
    out = emb.embed_texts([str(i) for i in range(250)])
    assert [e.vec[0] for e in out] == [float(i) for i in range(250)]
    assert [len(json.loads(c.request.body)["requests"]) for c in mocked.calls] == [100, 100, 50]
    assert emb.ndims == 2


def test_embedding_arguments_checked() -> None:
    with pytest.raises(errors.InvalidRequestError, match="ndims"):
        client().embedding_model("text-embedding-004", 0)
    with pytest.raises(errors.InvalidRequestError, match="empty"):
        client().embedding_model("text-embedding-004").embed_texts(["a", ""])


# --- transcription ---------------------------------------------------------------------------------


def test_transcription_sends_audio_inline(mocked: responses.RequestsMock) -> None:
    mocked.add("POST", f"{BASE}/v1beta/models/gemini-2.5-flash:generateContent", json={
        "candidates": [{"content": {"parts": [{"text": "Hello from the recording."}]}, "finishReason": "STOP"}]})
    t = client().transcription_model("gemini-2.5-flash").transcription(
        TranscriptionRequest(data=b"RIFFdata", filename="clip.WAV", language="en", prompt="Speakers: Ada",
                             temperature=0.0))
    assert t.text == "Hello from the recording."
    body = sent_json(mocked)
    instruction, audio = body["contents"][0]["parts"]
    assert instruction["text"].startswith("Generate a transcript of the speech.")
    assert "en" in instruction["text"] and "Speakers: Ada" in instruction["text"]
    assert audio == {"inlineData": {"mimeType": "audio/wav", "data": base64.b64encode(b"RIFFdata").decode()}}
    assert body["generationConfig"] == {"temperature": 0.0}


def test_transcription_refuses_unknown_formats_and_reports_blocks(mocked: responses.RequestsMock) -> None:
    model_ = client().transcription_model("gemini-2.5-flash")
    with pytest.raises(errors.UnsupportedFeature, match="extensions"):
        model_.transcription(TranscriptionRequest(data=b"x", filename="clip.opus"))
    serve_fixture(mocked, f"{BASE}/v1beta/models/gemini-2.5-flash:generateContent",
                  "gemini/generate_content.rest_curl.prompt_blocked.json")
    with pytest.raises(gemini.ContentBlockedError):
        model_.transcription(TranscriptionRequest(data=b"x", filename="clip.mp3"))
