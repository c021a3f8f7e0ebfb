"""Ollama's native API through the public API, against every payload in tests/fixtures/ollama,
then end to end against the loopback FakeProvider speaking Ollama's format."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import pytest
import responses
from conftest import ADD, FIXTURES, load_bytes, load_fixture, sent_json, serve_fixture

from rig_sync import errors, observe
from rig_sync.client import ProviderValue
from rig_sync.client.builder import DynClientBuilder
from rig_sync.completion import CompletionResponse, ToolDefinition
from rig_sync.message import Audio, DocumentContent, Image, Message, Reasoning, Text, ToolCall
from rig_sync.providers import ollama, openai
from rig_sync.providers._common import iter_ndjson
from rig_sync.streaming import FinalResponse, ReasoningChunk, TextChunk, ToolCallChunk
from rig_sync.testing import FakeProvider, Fault, Reply
from rig_sync.testing._openai import embed_text

BASE = "http://127.0.0.1:9"
CHAT = f"{BASE}/api/chat"
EMBED = f"{BASE}/api/embed"
KEY = "ollama-cloud-key-0123456789"

WEATHER = ToolDefinition("get_weather", "Get the weather in a given city", {
    "type": "object",
    "properties": {"city": {"type": "string", "description": "The city to get the weather for"}},
    "required": ["city"],
})


def client(api_key: str | None = None, **options: Any) -> ollama.Client:
    options.setdefault("max_retries", 0)
    return ollama.Client(api_key, base_url=BASE, **options)


def model(name: str = "llama3.2", **options: Any) -> ollama.CompletionModel:
    return client(**options).completion_model(name)


def ndjson(*names: str) -> bytes:
    """Several one-object JSON fixtures as one NDJSON stream body."""
    return b"".join(json.dumps(load_fixture(n)).encode() + b"\n" for n in names)


def serve_json(mocked: responses.RequestsMock, name: str) -> None:
    """Answer the next chat call with a one-object fixture, as Ollama does for "stream": false.

    (index.json files the chat examples under the streaming content type; a single reply is JSON.)
    """
    mocked.add(responses.POST, CHAT, body=load_bytes(name), content_type="application/json")


def serve_stream(mocked: responses.RequestsMock, body: bytes) -> None:
    mocked.add(responses.POST, CHAT, body=body, content_type="application/x-ndjson")


# --- recorded responses ---------------------------------------------------------------------------


def send_fixture(mocked: responses.RequestsMock, name: str, prompt: str = "why is the sky blue?") -> CompletionResponse:
    serve_json(mocked, name)
    return model().completion_request(prompt).send()


def test_non_stream_response(mocked: responses.RequestsMock) -> None:
    data = load_fixture("ollama/api_chat.non_stream.json")
    resp = send_fixture(mocked, "ollama/api_chat.non_stream.json")
    assert resp.text == "Hello! How are you today?"
    assert (resp.usage.input_tokens, resp.usage.output_tokens, resp.usage.total_tokens) == (26, 298, 324)
    assert resp.usage.cached_input_tokens is None  # Ollama does not report cache reads
    assert resp.model == "llama3.2" and resp.id is None
    assert resp.finish_reason is None  # this docs example carries no done_reason
    assert resp.raw_response == data and resp.tool_calls == []


def test_tool_call_response_gets_a_stable_synthesized_id(mocked: responses.RequestsMock) -> None:
    resp = send_fixture(mocked, "ollama/api_chat.with_tools.json", "What is the weather today in Paris?")
    assert resp.tool_calls == [
        ToolCall("get_current_weather_0", "get_current_weather", {"format": "celsius", "location": "Paris, FR"})]
    assert resp.text == "" and resp.finish_reason == "stop"
    assert (resp.usage.input_tokens, resp.usage.output_tokens) == (122, 33)


def test_structured_output_request_and_response(mocked: responses.RequestsMock) -> None:
    recorded = load_fixture("ollama/requests/api_chat.structured_output.request.json")
    serve_json(mocked, "ollama/api_chat.structured_output.json")
    resp = (model("llama3.1").completion_request(recorded["messages"][0]["content"]).temperature(0)
            .additional_params({"format": recorded["format"]}).send())
    assert sent_json(mocked) == recorded
    assert json.loads(resp.text) == {"age": 22, "available": False}
    assert (resp.finish_reason, resp.model, resp.usage.input_tokens, resp.usage.output_tokens) == (
        "stop", "llama3.1", 34, 12)


def test_thinking_becomes_reasoning_and_length_is_kept(mocked: responses.RequestsMock) -> None:
    data = load_fixture("ollama/api_chat.non_stream.json")
    data["message"]["thinking"] = "The user greets me."
    data["done_reason"] = "length"
    mocked.add(responses.POST, CHAT, json=data)
    resp = model().completion_request("Hi").additional_params({"think": True}).send()
    assert resp.reasoning == "The user greets me." and resp.text == "Hello! How are you today?"
    assert isinstance(resp.choice[0], Reasoning) and resp.finish_reason == "length"
    assert sent_json(mocked)["think"] is True


@pytest.mark.parametrize("reason", ["load", "unload"])
def test_load_without_an_answer_raises(mocked: responses.RequestsMock, reason: str) -> None:
    data = {**load_fixture("ollama/api_chat.stream_final.json"), "done_reason": reason}
    mocked.add(responses.POST, CHAT, json=data)
    with pytest.raises(ollama.NoAnswerError) as info:
        model().completion_request("Hi").send()
    assert info.value.reason == reason and info.value.body == data and info.value.provider == "ollama"


def test_response_without_message_is_a_decode_error(mocked: responses.RequestsMock) -> None:
    mocked.add(responses.POST, CHAT, json={"model": "llama3.2", "done": True})
    with pytest.raises(errors.ResponseDecodeError) as info:
        model().completion_request("Hi").send()
    assert info.value.field == "message"


@pytest.mark.parametrize(("arguments", "outcome"), [
    ('{"city": "Oslo"}', {"city": "Oslo"}),  # arguments as JSON text are read too
    (None, {}),
    (["Oslo"], '["Oslo"]'),  # no object: the model's mistake, kept as text on the call
])
def test_tool_call_argument_shapes(mocked: responses.RequestsMock, arguments: Any, outcome: Any) -> None:
    data = load_fixture("ollama/api_chat.with_tools.json")
    data["message"]["tool_calls"][0]["function"]["arguments"] = arguments
    mocked.add(responses.POST, CHAT, json=data)
    call = model().completion_request("Hi").send().tool_calls[0]
    if isinstance(outcome, dict):
        assert (call.arguments, call.invalid_arguments) == (outcome, None)
    else:
        assert (call.arguments, call.invalid_arguments) == ({}, outcome)


# --- recorded streams -----------------------------------------------------------------------------


def test_stream_text_then_done(mocked: responses.RequestsMock) -> None:
    serve_stream(mocked, ndjson("ollama/api_chat.stream_chunk.json", "ollama/api_chat.stream_final.json"))
    stream = model().completion_request("why is the sky blue?").stream()
    chunks = list(stream)
    assert chunks[0] == TextChunk("The") and isinstance(chunks[-1], FinalResponse)
    final = stream.response
    assert final.text == "The" and final.model == "llama3.2"
    assert (final.usage.input_tokens, final.usage.output_tokens, final.usage.total_tokens) == (26, 282, 308)
    assert final.raw_response == load_fixture("ollama/api_chat.stream_final.json")


def test_stream_tool_calls_arrive_whole(mocked: responses.RequestsMock) -> None:
    serve_stream(mocked, ndjson("ollama/api_chat.stream_tools_chunk.json", "ollama/api_chat.stream_tools_final.json"))
    stream = model().completion_request("what is the weather in tokyo?").tool(WEATHER).stream()
    chunks = list(stream)
    want = ToolCall("get_weather_0", "get_weather", {"city": "Tokyo"})
    assert [c.tool_call for c in chunks if isinstance(c, ToolCallChunk)] == [want]
    final = stream.response
    assert final.tool_calls == [want] and final.text == "" and final.finish_reason == "stop"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (169, 15)


def generate_as_chat(name: str) -> list[dict[str, Any]]:
    """The /api/generate NDJSON lines of a fixture, in /api/chat's shape (`response` -> message.content)."""
    out = []
    for line in load_bytes(name).decode().splitlines():
        obj = json.loads(line)
        if "response" in obj:
            obj["message"] = {"role": "assistant", "content": obj.pop("response")}
        out.append(obj)
    return out


def test_ndjson_reader_over_any_chunking() -> None:
    blob = load_bytes("ollama/api_generate.stream.ndjson")
    want = [json.loads(line) for line in blob.splitlines()]
    for size in (1, 3, 7, len(blob)):
        pieces = [blob[i:i + size] for i in range(0, len(blob), size)]
        assert list(iter_ndjson(pieces, "ollama")) == want
    assert "".join(o["response"] for o in want) == "That's a fantastic question!"


def test_full_recorded_stream_reassembles(mocked: responses.RequestsMock) -> None:
    lines = generate_as_chat("ollama/api_generate.stream.ndjson")
    serve_stream(mocked, b"".join(json.dumps(o).encode() + b"\r\n" for o in lines))  # CRLF line ends too
    stream = model("gemma4").completion_request("Hi").stream()
    assert list(stream.text_stream()) == ["That", "'", "s", " a", " fantastic", " question", "!"]
    assert stream.response.text == "That's a fantastic question!" and stream.response.finish_reason == "stop"


def test_error_line_mid_stream_raises(mocked: responses.RequestsMock) -> None:
    lines = generate_as_chat("ollama/api_generate.stream_error_mid_stream.ndjson")
    serve_stream(mocked, b"".join(json.dumps(o).encode() + b"\n" for o in lines))
    stream = model("gemma4").completion_request("Hi").stream()
    seen: list[str] = []
    with pytest.raises(errors.StreamError, match="an error was encountered while running the model") as info:
        for chunk in stream:
            if isinstance(chunk, TextChunk):
                seen.append(chunk.text)
    assert "".join(seen) == " Yes.Ican"
    assert info.value.provider == "ollama"
    assert info.value.body == {"error": "an error was encountered while running the model"}


def test_recorded_error_line_as_is_raises(mocked: responses.RequestsMock) -> None:
    serve_stream(mocked, load_bytes("ollama/api_generate.stream_error_mid_stream.ndjson"))
    with pytest.raises(errors.StreamError, match="an error was encountered"):
        _ = model().completion_request("Hi").stream().response


@pytest.mark.parametrize("cut", ["no_done", "half_line"])
def test_truncated_stream_raises(mocked: responses.RequestsMock, cut: str) -> None:
    body = ndjson("ollama/api_chat.stream_chunk.json", "ollama/api_chat.stream_final.json")
    first, final, _ = body.split(b"\n")
    serve_stream(mocked, first + b"\n" if cut == "no_done" else first + b"\n" + final[: len(final) // 2])
    with pytest.raises(errors.StreamError) as info:
        _ = model().completion_request("Hi").stream().response
    assert info.value.is_retryable() and info.value.provider == "ollama"


def test_stream_reasoning_chunks(mocked: responses.RequestsMock) -> None:
    lines = [{"message": {"role": "assistant", "content": "", "thinking": "Hmm. "}, "done": False},
             {"message": {"role": "assistant", "content": "Hi"}, "done": False},
             {**load_fixture("ollama/api_chat.stream_tools_final.json")}]
    serve_stream(mocked, b"".join(json.dumps(o).encode() + b"\n" for o in lines))
    stream = model().completion_request("Hi").stream()
    assert list(stream)[:2] == [ReasoningChunk("Hmm. "), TextChunk("Hi")]
    assert (stream.response.reasoning, stream.response.text) == ("Hmm. ", "Hi")


# --- recorded errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "cls"), [
    (400, errors.BadRequestError), (404, errors.NotFoundError), (429, errors.RateLimitError),
    (500, errors.InternalServerError), (502, errors.InternalServerError),
])
def test_error_body_maps_to_the_error_tree(mocked: responses.RequestsMock, status: int,
                                           cls: type[errors.APIStatusError]) -> None:
    body = load_fixture("ollama/error.body.json")
    mocked.add(responses.POST, CHAT, json=body, status=status)
    with pytest.raises(errors.APIStatusError) as info:
        model().completion_request("Hi").send()
    err = info.value
    assert type(err) is cls
    assert (err.status_code, err.provider, err.message, err.body) == (
        status, "ollama", "the model failed to generate a response", body)


def test_error_before_a_stream_raises_the_status_error(mocked: responses.RequestsMock) -> None:
    mocked.add(responses.POST, CHAT, json={"error": "model 'nope' not found"}, status=404)
    with pytest.raises(errors.NotFoundError, match="model 'nope' not found"):
        model("nope").completion_request("Hi").stream()


# --- recorded requests ----------------------------------------------------------------------------


def test_request_non_stream(mocked: responses.RequestsMock) -> None:
    serve_json(mocked, "ollama/api_chat.non_stream.json")
    model().completion_request("why is the sky blue?").send()
    assert sent_json(mocked) == load_fixture("ollama/requests/api_chat.non_stream.request.json")


def test_request_non_stream_tools(mocked: responses.RequestsMock) -> None:
    serve_json(mocked, "ollama/api_chat.with_tools.json")
    model().completion_request("what is the weather in tokyo?").tool(WEATHER).send()
    assert sent_json(mocked) == load_fixture("ollama/requests/api_chat.non_stream_tools.request.json")


def test_request_stream_says_stream_true(mocked: responses.RequestsMock) -> None:
    serve_stream(mocked, ndjson("ollama/api_chat.stream_chunk.json", "ollama/api_chat.stream_final.json"))
    _ = model().completion_request("why is the sky blue?").stream().response
    recorded = load_fixture("ollama/requests/api_chat.stream_chunk.request.json")
    assert sent_json(mocked) == {**recorded, "stream": True}  # the docs rely on Ollama's default


def test_request_stream_tools(mocked: responses.RequestsMock) -> None:
    serve_stream(mocked, ndjson("ollama/api_chat.stream_tools_chunk.json", "ollama/api_chat.stream_tools_final.json"))
    _ = model().completion_request("what is the weather in tokyo?").tool(WEATHER).stream().response
    assert sent_json(mocked) == load_fixture("ollama/requests/api_chat.stream_tools_chunk.request.json")


def test_request_with_tools(mocked: responses.RequestsMock) -> None:
    recorded = load_fixture("ollama/requests/api_chat.with_tools.request.json")
    fn = recorded["tools"][0]["function"]
    serve_json(mocked, "ollama/api_chat.with_tools.json")
    model().completion_request("What is the weather today in Paris?").tool(
        ToolDefinition(fn["name"], fn["description"], fn["parameters"])).tool_choice("auto").send()
    assert sent_json(mocked) == recorded


def test_request_options_history_and_tool_results(mocked: responses.RequestsMock) -> None:
    mocked.add(responses.POST, CHAT, json=load_fixture("ollama/api_chat.non_stream.json"))
    call = ToolCall("get_weather_0", "get_weather", {"city": "Tokyo"})
    (model().completion_request(Message.tool_result(call.id, "sunny"))
     .preamble("Be brief")
     .messages([Message.user("weather?"), Message.assistant([Reasoning("look it up"), Text("Checking."), call])])
     .tool(WEATHER).temperature(0.5).max_tokens(64)
     .additional_params({"options": {"num_ctx": 4096}, "keep_alive": "5m"}).send())
    sent = sent_json(mocked)
    assert sent["messages"] == [
        {"role": "system", "content": "Be brief"},
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": "Checking.", "thinking": "look it up",
         "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Tokyo"}}}]},
        {"role": "tool", "content": "sunny", "tool_name": "get_weather"},
    ]
    assert sent["options"] == {"temperature": 0.5, "num_predict": 64, "num_ctx": 4096}
    assert sent["keep_alive"] == "5m" and sent["stream"] is False


def test_tool_result_without_its_call_in_the_history_has_no_tool_name(mocked: responses.RequestsMock) -> None:
    mocked.add(responses.POST, CHAT, json=load_fixture("ollama/api_chat.non_stream.json"))
    model().completion_request(Message.tool_result("unknown", "42")).send()
    assert sent_json(mocked)["messages"] == [{"role": "tool", "content": "42"}]


def test_inline_images_travel_as_base64(mocked: responses.RequestsMock) -> None:
    mocked.add(responses.POST, CHAT, json=load_fixture("ollama/api_chat.non_stream.json"))
    model("llava").completion_request(Message.user(["What is this?", Image.from_bytes(b"\x89PNG")])).send()
    assert sent_json(mocked)["messages"] == [{"role": "user", "content": "What is this?", "images": ["iVBORw=="]}]


@pytest.mark.parametrize("part", [
    Image.from_url("https://example.com/cat.png"),
    Audio.from_bytes(b"RIFF"),
    DocumentContent.from_bytes(b"%PDF"),
])
def test_unsupported_parts_are_refused(part: Any) -> None:
    with pytest.raises(errors.UnsupportedFeature):
        model().completion_request(Message.user(["look", part])).send()


@pytest.mark.parametrize("choice", ["required", "get_weather"])
def test_forced_tool_choice_is_refused(choice: str) -> None:
    with pytest.raises(errors.UnsupportedFeature, match="tool_choice"):
        model().completion_request("Hi").tool(WEATHER).tool_choice(choice).send()


def test_tool_choice_none_sends_no_tools(mocked: responses.RequestsMock) -> None:
    mocked.add(responses.POST, CHAT, json=load_fixture("ollama/api_chat.non_stream.json"))
    model().completion_request("Hi").tool(WEATHER).tool_choice("none").send()
    assert "tools" not in sent_json(mocked)


# --- embeddings -----------------------------------------------------------------------------------


def test_embed_multiple(mocked: responses.RequestsMock) -> None:
    recorded = load_fixture("ollama/requests/api_embed.multiple.request.json")
    data = load_fixture("ollama/api_embed.multiple.json")
    serve_fixture(mocked, EMBED, "ollama/api_embed.multiple.json")
    emb = client().embedding_model("all-minilm")
    out = emb.embed_texts(recorded["input"])
    assert sent_json(mocked) == recorded
    assert [e.document for e in out] == recorded["input"]
    assert [e.vec for e in out] == data["embeddings"]
    assert emb.ndims == 10


def test_embed_single(mocked: responses.RequestsMock) -> None:
    recorded = load_fixture("ollama/requests/api_embed.single.request.json")
    serve_fixture(mocked, EMBED, "ollama/api_embed.single.json")
    e = client().embedding_model("all-minilm", ndims=10).embed_text(recorded["input"])
    assert sent_json(mocked) == {**recorded, "input": [recorded["input"]], "dimensions": 10}
    assert e.vec == load_fixture("ollama/api_embed.single.json")["embeddings"][0]
    assert e.vec[0] == pytest.approx(0.010071029)


def test_embed_count_mismatch_is_an_error(mocked: responses.RequestsMock) -> None:
    serve_fixture(mocked, EMBED, "ollama/api_embed.single.json")
    with pytest.raises(errors.ResponseDecodeError):
        client().embedding_model("all-minilm").embed_texts(["a", "b"])


def test_legacy_embeddings(mocked: responses.RequestsMock) -> None:
    recorded = load_fixture("ollama/requests/api_embeddings.legacy.request.json")
    serve_fixture(mocked, f"{BASE}/api/embeddings", "ollama/api_embeddings.legacy.json")
    emb = client().legacy_embedding_model("all-minilm")
    e = emb.embed_text(recorded["prompt"])
    assert sent_json(mocked) == recorded
    assert e.vec == load_fixture("ollama/api_embeddings.legacy.json")["embedding"]
    assert (emb.max_documents, emb.ndims) == (1, 10)


# --- the OpenAI-compatible /v1 endpoints (served by the openai client) ----------------------------

V1 = f"{BASE}/v1"


def v1_client() -> openai.Client:
    return openai.Client("ollama", base_url=V1, max_retries=0)  # Ollama ignores the key; SDKs need one


def test_openai_compat_chat_request(mocked: responses.RequestsMock) -> None:
    mocked.add(responses.POST, f"{V1}/chat/completions", json=load_fixture("openai/chat_completion.text.json"))
    v1_client().completion_model("gpt-oss:20b").completion_request("Say this is a test").send()
    assert sent_json(mocked) == load_fixture("ollama/requests/openai_compat.v1_chat_completions.0.request.json")


def test_openai_compat_image_request(mocked: responses.RequestsMock) -> None:
    recorded = load_fixture("ollama/requests/openai_compat.v1_chat_completions.2.request.json")
    text, image = recorded["messages"][0]["content"]
    media, _, b64 = image["image_url"].removeprefix("data:").partition(";base64,")
    mocked.add(responses.POST, f"{V1}/chat/completions", json=load_fixture("openai/chat_completion.text.json"))
    v1_client().completion_model("qwen3-vl:8b").completion_request(
        Message.user([text["text"], Image.from_bytes(b64, media)])).send()
    sent = sent_json(mocked)
    assert sent["model"] == recorded["model"]
    # The docs send image_url as a bare string; OpenAI's format (which Ollama also takes) nests it.
    assert sent["messages"][0]["content"] == [text, {"type": "image_url", "image_url": {"url": image["image_url"]}}]


def test_openai_compat_responses_request(mocked: responses.RequestsMock) -> None:
    recorded = load_fixture("ollama/requests/openai_compat.v1_responses.1.request.json")
    mocked.add(responses.POST, f"{V1}/responses", json=load_fixture("openai/responses.text.json"))
    v1_client().responses_model("qwen3:8b").completion_request(recorded["input"]).send()
    sent = sent_json(mocked)
    assert sent["model"] == recorded["model"]
    assert json.dumps(sent["input"]).count(recorded["input"]) == 1


# --- client ---------------------------------------------------------------------------------------


def test_no_key_sends_no_authorization(mocked: responses.RequestsMock) -> None:
    mocked.add(responses.POST, CHAT, json=load_fixture("ollama/api_chat.non_stream.json"))
    model().completion_request("Hi").send()
    assert "Authorization" not in mocked.calls[0].request.headers


def test_cloud_key_is_a_bearer_header_never_shown(mocked: responses.RequestsMock) -> None:
    mocked.add(responses.POST, CHAT, json={"error": f"unauthorized: {KEY}"}, status=401)
    c = client(KEY)
    with pytest.raises(errors.AuthenticationError) as info:
        c.completion_model("gpt-oss:120b").completion_request("Hi").send()
    assert mocked.calls[0].request.headers["Authorization"] == f"Bearer {KEY}"
    assert KEY not in str(info.value) and KEY not in repr(c) and KEY not in repr(c.completion_model("m"))


def test_defaults_and_capabilities() -> None:
    c = ollama.Client()
    assert c.base_url == "http://localhost:11434"
    assert c.capabilities() == ["completion", "embeddings", "list_models"]
    assert c.as_completion() is c and c.as_transcription() is None
    assert ollama.ClientBuilder is ollama.Client.Builder


@pytest.mark.parametrize(("given", "url"), [
    ("localhost:11434", "http://localhost:11434"),
    ("0.0.0.0", "http://0.0.0.0:11434"),
    ("gpu-box:8080/ollama", "http://gpu-box:8080/ollama"),
    ("https://ollama.com", "https://ollama.com"),
])
def test_ollama_host_forms(given: str, url: str) -> None:
    assert ollama.Client(base_url=given).base_url == url


@pytest.mark.parametrize("var", ["OLLAMA_API_BASE_URL", "OLLAMA_BASE_URL", "OLLAMA_HOST"])
def test_from_env(monkeypatch: pytest.MonkeyPatch, var: str) -> None:
    for name in ("OLLAMA_API_BASE_URL", "OLLAMA_BASE_URL", "OLLAMA_HOST", "OLLAMA_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    assert ollama.Client.from_env().base_url == "http://localhost:11434"
    monkeypatch.setenv(var, "127.0.0.1:9")
    assert ollama.Client.from_env().base_url == "http://127.0.0.1:9"


def test_from_env_key_is_sent(mocked: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", BASE)
    monkeypatch.setenv("OLLAMA_API_KEY", KEY)
    mocked.add(responses.POST, CHAT, json=load_fixture("ollama/api_chat.non_stream.json"))
    ollama.Client.from_env().completion_model("m").completion_request("Hi").send()
    assert mocked.calls[0].request.headers["Authorization"] == f"Bearer {KEY}"


def test_registry_builds_without_a_key(mocked: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OLLAMA_API_KEY", raising=False)
    monkeypatch.setenv("OLLAMA_HOST", BASE)
    mocked.add(responses.POST, CHAT, json=load_fixture("ollama/api_chat.non_stream.json"))
    m = DynClientBuilder().completion("ollama", "llama3.2")
    assert m.completion_request("Hi").send().text == "Hello! How are you today?"
    c = ollama.Client.from_value(ProviderValue(None, base_url=BASE))
    assert c.base_url == BASE


def test_client_pickles() -> None:
    c = pickle.loads(pickle.dumps(client()))
    assert c.base_url == BASE and c.completion_model("x").model == "x"


def test_usage_reaches_observe_hooks(mocked: responses.RequestsMock) -> None:
    events: list[observe.Event] = []
    observe.add_hook(events.append)
    try:
        mocked.add(responses.POST, CHAT, json=load_fixture("ollama/api_chat.non_stream.json"))
        model().completion_request("Hi").send()
        serve_stream(mocked, ndjson("ollama/api_chat.stream_chunk.json", "ollama/api_chat.stream_final.json"))
        _ = model().completion_request("Hi").stream().response
        serve_fixture(mocked, EMBED, "ollama/api_embed.single.json")
        client().embedding_model("all-minilm").embed_text("Why is the sky blue?")
    finally:
        observe.remove_hook(events.append)
    usage = [(e.model, e.capability, e.input_tokens, e.output_tokens) for e in events
             if isinstance(e, observe.UsageEvent)]
    assert usage == [("llama3.2", "completion", 26, 298), ("llama3.2", "completion", 26, 282),
                     ("all-minilm", "embeddings", 8, 0)]
    requests = [(e.model, e.capability) for e in events if isinstance(e, observe.RequestEvent)]
    assert requests == [("llama3.2", "completion")] * 2 + [("all-minilm", "embeddings")]


# --- end to end against the loopback FakeProvider ---------------------------------------------------


def fake_client(fake: FakeProvider, api_key: str | None = None, **options: Any) -> ollama.Client:
    options.setdefault("max_retries", 0)
    return ollama.Client(api_key, base_url=fake.url, timeout=5, **options)


def test_fake_completion(fake: FakeProvider) -> None:
    resp = fake_client(fake).completion_model("llama3.2").completion_request("Hello there").preamble("Be brief").send()
    assert resp.text == "echo: Hello there" and resp.finish_reason == "stop"
    assert resp.usage.input_tokens > 0 and resp.usage.output_tokens > 0 and resp.model == "llama3.2"
    sent = fake.last_request
    assert sent is not None and sent.path == "/api/chat" and "authorization" not in sent.headers
    assert sent.json["stream"] is False and sent.json["messages"][0] == {"role": "system", "content": "Be brief"}


def test_fake_streaming_is_chunked_ndjson(fake: FakeProvider) -> None:
    stream = fake_client(fake).completion_model("llama3.2").completion_request("stream these words please").stream()
    pieces = list(stream.text_stream())
    assert len(pieces) > 1 and "".join(pieces) == stream.response.text == "echo: stream these words please"
    assert stream.response.usage.output_tokens == 5 and stream.response.finish_reason == "stop"


def test_fake_scripted_reply_with_finish(fake: FakeProvider) -> None:
    fake.script(Reply.text("cut sho", finish_reason="length"))
    resp = fake_client(fake).completion_model("m").completion_request("x").stream().response
    assert (resp.text, resp.finish_reason) == ("cut sho", "length")


@pytest.mark.parametrize("streamed", [False, True])
def test_fake_tool_round_trip(fake: FakeProvider, streamed: bool) -> None:
    m = fake_client(fake).completion_model("llama3.2")
    ask = m.completion_request('call:add {"a": 2, "b": 3}').tool(ADD)
    first = ask.stream().response if streamed else ask.send()
    assert [(c.id, c.name, c.arguments) for c in first.tool_calls] == [("add_0", "add", {"a": 2, "b": 3})]
    follow = (m.completion_request(Message.tool_result(first.tool_calls[0].id, "5"))
              .messages([Message.user('call:add {"a": 2, "b": 3}'), first.message()]).tool(ADD))
    answer = follow.stream().response if streamed else follow.send()
    assert answer.text == "tool result: 5"
    assert fake.last_request is not None and fake.last_request.json["messages"][-1] == {
        "role": "tool", "content": "5", "tool_name": "add"}


def test_fake_embeddings(fake: FakeProvider) -> None:
    c = fake_client(fake)
    texts = ["the cat sat", "on the mat", "dogs bark"]
    out = c.embedding_model("nomic-embed-text").embed_texts(texts)
    assert [e.vec for e in out] == [embed_text(t, 768) for t in texts]
    assert c.embedding_model("nomic-embed-text", ndims=64).embed_text("hi").vec == embed_text("hi", 64)
    assert c.legacy_embedding_model("nomic-embed-text").embed_text("hi").vec == embed_text("hi", 768)


def test_fake_fault_has_ollamas_error_shape(fake: FakeProvider) -> None:
    fake.inject(Fault.status(429))
    with pytest.raises(errors.RateLimitError) as info:
        fake_client(fake).completion_model("m").completion_request("x").send()
    assert isinstance(info.value.body, dict) and isinstance(info.value.body["error"], str)
    assert info.value.message == info.value.body["error"] and info.value.provider == "ollama"


def test_fake_error_line_mid_stream(fake: FakeProvider) -> None:
    fake.inject(Fault.sse_error(after_events=2, error={"message": "out of memory"}))
    with pytest.raises(errors.StreamError, match="out of memory") as info:
        _ = fake_client(fake).completion_model("m").completion_request("a b c d e f").stream().response
    assert info.value.body == {"error": "out of memory"}


def test_fake_stream_cut_raises(fake: FakeProvider) -> None:
    fake.inject(Fault.stream_cut(after_events=2))
    with pytest.raises(errors.StreamError):
        _ = fake_client(fake).completion_model("m").completion_request("a b c d e f").stream().response


def test_fake_bad_request_has_ollamas_shape(fake: FakeProvider) -> None:
    with pytest.raises(errors.BadRequestError, match="input must be a string"):
        fake_client(fake, headers={"X-Test": "1"}).transport.post_json("/api/embed", {"model": "m", "input": 3})


def test_fake_cloud_key(fake: FakeProvider) -> None:
    fake.require_key = KEY
    with pytest.raises(errors.AuthenticationError):
        fake_client(fake).completion_model("m").completion_request("x").send()
    assert fake_client(fake, KEY).completion_model("m").completion_request("x").send().text == "echo: x"
    assert fake.last_request is not None and fake.last_request.headers["authorization"] == f"Bearer {KEY}"


# --- every fixture is used ------------------------------------------------------------------------


def test_every_ollama_fixture_is_referenced_here() -> None:
    source = Path(__file__).read_text(encoding="utf-8")
    names = sorted(str(p.relative_to(FIXTURES)) for p in (FIXTURES / "ollama").rglob("*") if p.is_file())
    missing = [n for n in names if n != "ollama/openapi.yaml" and n not in source]
    assert names and not missing
