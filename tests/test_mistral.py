"""Mistral: a row of the OpenAI-compatible table with named deviations, tested against Mistral's
own payloads (tests/fixtures/mistral) and end to end against the loopback FakeProvider."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import responses

from rig_sync.client import ProviderValue
from rig_sync.client.builder import DynClientBuilder
from rig_sync.completion import ToolChoice, ToolDefinition
from rig_sync.errors import (
    APIError,
    AuthenticationError,
    RateLimitError,
    ResponseDecodeError,
    StreamError,
    UnsupportedFeature,
)
from rig_sync.message import Audio, DocumentContent, Message, Reasoning, Text, ToolCall
from rig_sync.providers import mistral
from rig_sync.streaming import FinalResponse, ReasoningChunk, TextChunk, ToolCallChunk
from rig_sync.testing import FakeProvider, Fault, Reply
from tests.conftest import FIXTURES, fixture_meta, load_fixture, sent_json, serve_fixture

BASE = "https://api.mistral.ai/v1"
CHAT = f"{BASE}/chat/completions"
EMBED = f"{BASE}/embeddings"

WEATHER = ToolDefinition("get_weather", "The weather in a city",
                         {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})

REFERENCED = [
    "mistral/chat_completion.text.json",
    "mistral/requests/chat_completion.text.request.json",
    "mistral/chat_completion.multi_turn.json",
    "mistral/requests/chat_completion.multi_turn.request.json",
    "mistral/chat_stream.chunks.docs.json",
    "mistral/embeddings.spec_example.json",
    "mistral/error.401_unauthorized.json",
]


def client(**kwargs: Any) -> Any:
    return mistral.Client("test-key", timeout=2, max_retries=0, **kwargs)


def sse(events: list[Any], *, done: bool = True) -> bytes:
    """Stream events as Mistral puts them on the wire: `data: {json}` lines, then `data: [DONE]`."""
    lines = [f"data: {json.dumps(event)}\n\n" for event in events]
    if done:
        lines.append("data: [DONE]\n\n")
    return "".join(lines).encode()


def serve_stream(mocked: responses.RequestsMock, body: bytes) -> None:
    mocked.add(responses.POST, CHAT, body=body, status=200, content_type="text/event-stream")


def chat_answer(message: dict[str, Any], finish: str = "stop") -> dict[str, Any]:
    """A chat.completion in the shape of Mistral's spec (ChatCompletionResponse)."""
    return {"id": "cmpl-1", "object": "chat.completion", "model": "mistral-large-latest", "created": 1,
            "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
            "choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish}]}


# --- the client ---------------------------------------------------------------------------------


def test_client_settings_come_from_the_row() -> None:
    assert mistral.Client.provider == "mistral"
    assert mistral.Client.default_base_url == BASE
    assert mistral.Client.env_api_key == ("MISTRAL_API_KEY",)
    assert mistral.Client.env_base_url == ("MISTRAL_BASE_URL",)
    assert mistral.Client.capabilities() == ["completion", "embeddings", "list_models"]
    assert mistral.Client.streams_completions and mistral.Client.supports_tools
    c = client()
    assert c.as_transcription() is None and c.as_image_generation() is None and c.as_audio_generation() is None
    assert "test-key" not in repr(c)


def test_from_env(monkeypatch: pytest.MonkeyPatch, mocked: responses.RequestsMock) -> None:
    monkeypatch.setenv("MISTRAL_API_KEY", "env-key")
    monkeypatch.setenv("MISTRAL_BASE_URL", "http://127.0.0.1:9/v1")
    c = mistral.Client.from_env()
    assert c.base_url == "http://127.0.0.1:9/v1"
    mocked.add(responses.POST, "http://127.0.0.1:9/v1/chat/completions", json=chat_answer({"content": "hi"}))
    c.completion_model("mistral-small-latest").completion_request("hi").send()
    assert mocked.calls[0].request.headers["Authorization"] == "Bearer env-key"


# --- chat ---------------------------------------------------------------------------------------


def test_text_completion_matches_the_recorded_request(mocked: responses.RequestsMock) -> None:
    recorded = load_fixture("mistral/requests/chat_completion.text.request.json")
    serve_fixture(mocked, CHAT, "mistral/chat_completion.text.json")
    resp = client().completion_model(recorded["model"]).completion_request(
        recorded["messages"][0]["content"]).send()
    assert sent_json(mocked) == recorded  # nothing more: Mistral rejects unknown fields
    assert mocked.calls[0].request.headers["Authorization"] == "Bearer test-key"
    assert resp.choice[0].text.startswith("The distance between the **Earth and the Moon** varies")
    assert "384,400 km" in resp.choice[0].text
    assert (resp.usage.input_tokens, resp.usage.output_tokens, resp.usage.total_tokens) == (11, 268, 279)
    assert resp.finish_reason == "stop"
    assert resp.id == "bed9481e857e40fab7c7eea4232f294a" and resp.model == "mistral-large-latest"


def test_multi_turn_matches_the_recorded_request(mocked: responses.RequestsMock) -> None:
    recorded = load_fixture("mistral/requests/chat_completion.multi_turn.request.json")
    serve_fixture(mocked, CHAT, "mistral/chat_completion.multi_turn.json")
    first, answer, prompt = recorded["messages"]
    resp = (client().completion_model(recorded["model"]).completion_request(prompt["content"])
            .messages([Message.user(first["content"]), Message.assistant(answer["content"])]).send())
    assert sent_json(mocked) == recorded
    assert resp.choice == (Text("La capitale de la France est **Paris**."),)
    assert (resp.usage.input_tokens, resp.usage.output_tokens, resp.usage.total_tokens) == (26, 10, 36)


def test_required_tool_choice_is_sent_as_any(mocked: responses.RequestsMock) -> None:
    mocked.add(responses.POST, CHAT, json=chat_answer({"content": None, "tool_calls": [
        {"id": "D681PevKs", "type": "function", "index": 0,
         "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]}, "tool_calls"))
    resp = (client().completion_model("mistral-large-latest").completion_request("Weather in Paris?")
            .tool(WEATHER).tool_choice(ToolChoice("required")).max_tokens(64).send())
    sent = sent_json(mocked)
    assert sent["tool_choice"] == "any"
    assert sent["max_tokens"] == 64
    assert sent["tools"] == [{"type": "function", "function": {
        "name": "get_weather", "description": "The weather in a city", "parameters": WEATHER.parameters}}]
    assert resp.choice == (ToolCall("D681PevKs", "get_weather", {"city": "Paris"}),)
    assert resp.finish_reason == "tool_calls"


def test_named_and_auto_tool_choices_pass_through(mocked: responses.RequestsMock) -> None:
    for _ in range(2):
        mocked.add(responses.POST, CHAT, json=chat_answer({"content": "ok"}))
    model = client().completion_model("mistral-small-latest")
    model.completion_request("hi").tool(WEATHER).tool_choice(ToolChoice.tool("get_weather")).send()
    model.completion_request("hi").tool(WEATHER).tool_choice(ToolChoice("auto")).send()
    assert sent_json(mocked, 0)["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert sent_json(mocked, 1)["tool_choice"] == "auto"


def test_tool_call_arguments_sent_as_an_object_are_accepted(mocked: responses.RequestsMock) -> None:
    # The spec types FunctionCall.arguments as an object or a string.
    mocked.add(responses.POST, CHAT, json=chat_answer({"content": "", "tool_calls": [
        {"id": "a1b2c3d4e", "function": {"name": "get_weather", "arguments": {"city": "Lyon"}}}]}, "tool_calls"))
    resp = client().completion_model("mistral-large-latest").completion_request("w?").tool(WEATHER).send()
    assert resp.choice == (ToolCall("a1b2c3d4e", "get_weather", {"city": "Lyon"}),)


def test_thinking_chunks_become_reasoning(mocked: responses.RequestsMock) -> None:
    # Magistral answers with typed content chunks: thinking, then text.
    mocked.add(responses.POST, CHAT, json=chat_answer({"content": [
        {"type": "thinking", "thinking": [{"type": "text", "text": "2+2 is basic."}]},
        {"type": "text", "text": "4"}]}))
    resp = client().completion_model("magistral-medium-latest").completion_request("2+2?").send()
    assert resp.choice == (Reasoning("2+2 is basic."), Text("4"))


def test_finish_reason_error_is_an_error_not_an_answer(mocked: responses.RequestsMock) -> None:
    mocked.add(responses.POST, CHAT, json=chat_answer({"content": "partial"}, "error"))
    with pytest.raises(APIError, match="finish_reason 'error'") as info:
        client().completion_model("mistral-large-latest").completion_request("hi").send()
    assert info.value.provider == "mistral"


def test_unauthorized(mocked: responses.RequestsMock) -> None:
    name = "mistral/error.401_unauthorized.json"
    assert fixture_meta(name)["http_status"] == 401
    serve_fixture(mocked, CHAT, name)
    with pytest.raises(AuthenticationError) as info:
        client().completion_model("mistral-large-latest").completion_request("hi").send()
    err = info.value
    assert (err.provider, err.status_code, err.message) == ("mistral", 401, "Unauthorized")
    assert err.request_id == "933f233947ff6d346065bb297e4a4d56"
    assert "test-key" not in str(err)


# --- streaming ----------------------------------------------------------------------------------


def test_stream_of_the_documented_chunks(mocked: responses.RequestsMock) -> None:
    events = load_fixture("mistral/chat_stream.chunks.docs.json")
    serve_stream(mocked, sse(events))
    chunks = list(client().completion_model("mistral-large-latest").completion_request(
        "How far is the moon?").stream())
    assert [c.text for c in chunks if isinstance(c, TextChunk)] == ["3", "84", "4", "00"]
    final = chunks[-1]
    assert isinstance(final, FinalResponse)
    resp = final.response
    assert resp.choice == (Text("384400"),) and resp.finish_reason == "stop"
    assert (resp.usage.input_tokens, resp.usage.output_tokens, resp.usage.total_tokens) == (19, 7, 26)
    assert resp.id == "59060ef9339a4112b2c9e57e3ee6199d"
    sent = sent_json(mocked)
    assert sent["stream"] is True and "stream_options" not in sent  # Mistral rejects stream_options


def test_stream_cut_before_done_is_an_error(mocked: responses.RequestsMock) -> None:
    events = load_fixture("mistral/chat_stream.chunks.docs.json")
    serve_stream(mocked, sse(events[:3], done=False))
    stream = client().completion_model("mistral-large-latest").completion_request("hi").stream()
    with pytest.raises(StreamError, match=r"\[DONE\]"):
        list(stream)


def test_stream_error_event(mocked: responses.RequestsMock) -> None:
    events = load_fixture("mistral/chat_stream.chunks.docs.json")
    serve_stream(mocked, sse([events[0], {"error": {"message": "Service unavailable"}}]))
    with pytest.raises(StreamError, match="Service unavailable"):
        list(client().completion_model("mistral-large-latest").completion_request("hi").stream())


def test_stream_finish_reason_error(mocked: responses.RequestsMock) -> None:
    events = load_fixture("mistral/chat_stream.chunks.docs.json")
    last = {**events[-1], "choices": [{**events[-1]["choices"][0], "finish_reason": "error"}]}
    serve_stream(mocked, sse([*events[:-1], last]))
    with pytest.raises(StreamError, match="finish_reason 'error'"):
        list(client().completion_model("mistral-large-latest").completion_request("hi").stream())


def test_streamed_parallel_tool_calls_arrive_whole_at_index_zero(mocked: responses.RequestsMock) -> None:
    # Mistral streams each tool call whole, in one delta; parallel calls share index 0.
    head = load_fixture("mistral/chat_stream.chunks.docs.json")[0]
    calls = {**head, "choices": [{"index": 0, "finish_reason": "tool_calls", "delta": {"content": "", "tool_calls": [
        {"id": "call00001", "index": 0, "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
        {"id": "call00002", "index": 0, "function": {"name": "get_weather", "arguments": {"city": "Rome"}}},
    ]}}], "usage": {"prompt_tokens": 30, "completion_tokens": 20, "total_tokens": 50}}
    serve_stream(mocked, sse([head, calls]))
    chunks = list(client().completion_model("mistral-large-latest").completion_request("w?").tool(WEATHER).stream())
    made = [c.tool_call for c in chunks if isinstance(c, ToolCallChunk)]
    assert made == [ToolCall("call00001", "get_weather", {"city": "Paris"}),
                    ToolCall("call00002", "get_weather", {"city": "Rome"})]
    final = chunks[-1]
    assert isinstance(final, FinalResponse) and final.response.finish_reason == "tool_calls"
    assert final.response.usage.total_tokens == 50


def test_streamed_thinking_chunks(mocked: responses.RequestsMock) -> None:
    head = load_fixture("mistral/chat_stream.chunks.docs.json")[0]
    think = {**head, "choices": [{"index": 0, "finish_reason": None, "delta": {"content": [
        {"type": "thinking", "thinking": [{"type": "text", "text": "hmm"}]}]}}]}
    text = {**head, "choices": [{"index": 0, "finish_reason": "stop", "delta": {"content": [
        {"type": "text", "text": "done"}]}}]}
    serve_stream(mocked, sse([head, think, text]))
    chunks = list(client().completion_model("magistral-small-latest").completion_request("x").stream())
    assert [c.text for c in chunks if isinstance(c, ReasoningChunk)] == ["hmm"]
    final = chunks[-1]
    assert isinstance(final, FinalResponse) and final.response.choice == (Reasoning("hmm"), Text("done"))


# --- embeddings ---------------------------------------------------------------------------------


def test_embeddings_spec_example(mocked: responses.RequestsMock) -> None:
    serve_fixture(mocked, EMBED, "mistral/embeddings.spec_example.json")
    emb = client().embedding_model("mistral-embed")
    assert emb.ndims == 1024 and emb.max_documents == 512  # known before any request
    texts = ["Embed this sentence.", "As well as this one."]
    out = emb.embed_texts(texts)
    assert sent_json(mocked) == {"model": "mistral-embed", "input": texts}  # float vectors: no encoding_format
    assert [e.document for e in out] == texts
    assert out[0].vec[:2] == [-0.016632080078125, 0.0701904296875]
    assert out[1].vec[-1] == 0.034271240234375
    assert all(len(e.vec) == 5 for e in out)


def test_embedding_size_is_sent_as_output_dimension(mocked: responses.RequestsMock) -> None:
    serve_fixture(mocked, EMBED, "mistral/embeddings.spec_example.json")
    assert client().embedding_model("codestral-embed").ndims == 1536
    emb = client().embedding_model_with_ndims("codestral-embed", 256)
    with pytest.raises(ResponseDecodeError, match=r"256 dimensions.*got 5"):  # the spec example's vectors
        emb.embed_texts(["a", "b"])
    sent = sent_json(mocked)
    assert sent["output_dimension"] == 256 and "dimensions" not in sent


def test_registry_builds_mistral_models() -> None:
    value = ProviderValue("test-key", base_url="http://127.0.0.1:9/v1")
    builder = DynClientBuilder()
    assert "mistral" in builder.providers()
    model = builder.completion("mistral", "mistral-small-latest", value)
    assert model.provider == "mistral" and model.client.base_url == "http://127.0.0.1:9/v1"
    assert builder.embeddings("mistral", "mistral-embed", value).ndims == 1024


# --- end to end against the loopback fake -------------------------------------------------------


@pytest.fixture(scope="module")
def fake() -> Any:
    with FakeProvider() as server:
        yield server


@pytest.fixture
def live(fake: FakeProvider) -> Any:
    fake.reset()
    return mistral.Client(fake.api_key, base_url=fake.base_url, timeout=5, max_retries=0)


def test_fake_completion_and_stream(fake: FakeProvider, live: Any) -> None:
    model = live.completion_model("mistral-small-latest")
    assert "ping" in model.completion_request("ping").send().choice[0].text
    chunks = list(model.completion_request("stream me").stream())
    final = chunks[-1]
    assert isinstance(final, FinalResponse) and "stream me" in final.response.choice[0].text
    assert fake.last_request is not None and "stream_options" not in fake.last_request.json


def test_fake_tool_round_trip(fake: FakeProvider, live: Any) -> None:
    fake.script(Reply.tool_calls([("get_weather", {"city": "Paris"})]), Reply.text("Sunny in Paris"))
    model = live.completion_model("mistral-large-latest")
    first = model.completion_request("weather?").tool(WEATHER).tool_choice(ToolChoice("required")).send()
    (call,) = [p for p in first.choice if isinstance(p, ToolCall)]
    assert call.name == "get_weather" and call.arguments == {"city": "Paris"}
    assert fake.requests[-1].json["tool_choice"] == "any"
    history = [Message.user("weather?"), Message.assistant([call])]
    second = (model.completion_request(Message.tool_result(call.id, "sunny")).messages(history)
              .tool(WEATHER).send())
    assert second.choice[0].text == "Sunny in Paris"
    sent = fake.requests[-1].json["messages"]
    assert sent[-1] == {"role": "tool", "content": "sunny", "tool_call_id": call.id}


def test_fake_embeddings_chunk_by_512(fake: FakeProvider, live: Any) -> None:
    texts = [f"doc {i}" for i in range(513)]
    out = live.embedding_model("mistral-embed").embed_texts(texts)
    assert [e.document for e in out] == texts and all(e.vec for e in out)
    batches = [r.json["input"] for r in fake.requests if r.path.endswith("/embeddings")]
    assert [len(b) for b in batches] == [512, 1]
    assert all("encoding_format" not in r.json for r in fake.requests)


def test_fake_fault_maps_to_rate_limit(fake: FakeProvider, live: Any) -> None:
    fake.inject(Fault.status(429, retry_after=3))
    with pytest.raises(RateLimitError) as info:
        live.completion_model("mistral-small-latest").completion_request("hi").send()
    assert info.value.provider == "mistral" and info.value.retry_after == 3


# --- coverage of the fixtures -------------------------------------------------------------------


def test_every_mistral_fixture_is_referenced() -> None:
    here = FIXTURES / "mistral"
    present = {str(p.relative_to(FIXTURES)) for p in Path(here).rglob("*") if p.is_file()}
    present -= {"mistral/openapi.yaml"}
    assert present - set(REFERENCED) == set(), "fixtures no test reads"
    source = Path(__file__).read_text(encoding="utf-8")
    for name in REFERENCED:
        assert source.count(f"\"{name}\"") >= 2, f"{name} is listed but never used"


# --- audio and document parts, in Mistral's spelling ----------------------------------------------


def test_audio_goes_as_mistrals_bare_base64_chunk(mocked: responses.RequestsMock) -> None:
    serve_fixture(mocked, CHAT, "mistral/chat_completion.text.json")
    message = Message.user(["What is said here?", Audio.from_bytes(b"RIFF-wav-bytes", "wav")])
    client().completion_model("voxtral-small-latest").completion_request(message).send()
    parts = sent_json(mocked)["messages"][-1]["content"]
    assert parts[1] == {"type": "input_audio", "input_audio": Audio.from_bytes(b"RIFF-wav-bytes").data}


def test_a_document_by_url_goes_as_a_document_url_chunk(mocked: responses.RequestsMock) -> None:
    serve_fixture(mocked, CHAT, "mistral/chat_completion.text.json")
    doc = DocumentContent("https://example.test/report.pdf", filename="report.pdf", is_url=True)
    client().completion_model("mistral-small-latest").completion_request(Message.user(["Sum up", doc])).send()
    parts = sent_json(mocked)["messages"][-1]["content"]
    assert parts[1] == {"type": "document_url", "document_url": "https://example.test/report.pdf",
                        "document_name": "report.pdf"}


def test_inline_document_bytes_are_refused_before_sending(mocked: responses.RequestsMock) -> None:
    doc = DocumentContent.from_bytes(b"%PDF-1.7", filename="report.pdf")
    with pytest.raises(UnsupportedFeature, match="by URL"):
        client().completion_model("mistral-small-latest").completion_request(Message.user(["Sum up", doc])).send()
    assert len(mocked.calls) == 0


def test_other_compatible_providers_keep_openais_spelling(mocked: responses.RequestsMock) -> None:
    from rig_sync.providers import groq

    mocked.add(responses.POST, "https://api.groq.com/openai/v1/chat/completions",
               json=chat_answer({"role": "assistant", "content": "ok"}))
    message = Message.user(["Hear this", Audio.from_bytes(b"wav", "wav")])
    groq.Client("k", max_retries=0).completion_model("m").completion_request(message).send()
    audio = sent_json(mocked)["messages"][-1]["content"][1]
    assert audio == {"type": "input_audio", "input_audio": {"data": Audio.from_bytes(b"wav").data, "format": "wav"}}
