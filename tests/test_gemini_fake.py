"""Gemini end to end: the real client against FakeProvider's Gemini routes on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from rig_sync import errors
from rig_sync.completion import ToolDefinition
from rig_sync.message import Message
from rig_sync.providers import gemini
from rig_sync.streaming import FinalResponse, TextChunk, ToolCallChunk
from rig_sync.testing import FakeProvider, Fault, Reply
from rig_sync.testing._openai import embed_text
from rig_sync.tool import tool
from rig_sync.transcription import TranscriptionRequest

MODEL = "gemini-2.0-flash"
ADD = ToolDefinition("add", "Add two numbers", {
    "type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}, "required": ["a", "b"],
    "additionalProperties": False})


@pytest.fixture(scope="module")
def server() -> Iterator[FakeProvider]:
    with FakeProvider() as fake:
        yield fake


@pytest.fixture
def fake(server: FakeProvider) -> FakeProvider:
    server.reset()
    server.require_key = None
    return server


@pytest.fixture
def client(fake: FakeProvider) -> gemini.Client:
    return gemini.Client(fake.api_key, base_url=fake.url, timeout=5, max_retries=0)


def test_completion_echo(fake: FakeProvider, client: gemini.Client) -> None:
    resp = client.completion_model(MODEL).completion_request("hello gemini").preamble("Be brief").send()
    assert resp.text == "echo: hello gemini" and resp.finish_reason == "STOP"
    assert resp.usage.input_tokens == 4 and resp.usage.output_tokens == 3 and resp.usage.total_tokens == 7
    assert resp.model == MODEL
    req = fake.last_request
    assert req is not None and req.path == f"/v1beta/models/{MODEL}:generateContent"
    assert req.headers["x-goog-api-key"] == fake.api_key and req.query == {}
    assert req.json["systemInstruction"] == {"parts": [{"text": "Be brief"}]}


def test_streaming(fake: FakeProvider, client: gemini.Client) -> None:
    stream = client.completion_model(MODEL).completion_request("one two three four").stream()
    chunks = list(stream)
    pieces = [c.text for c in chunks if isinstance(c, TextChunk)]
    assert len(pieces) > 1 and "".join(pieces) == "echo: one two three four"
    assert isinstance(chunks[-1], FinalResponse) and stream.response.finish_reason == "STOP"
    assert stream.response.usage.output_tokens == 5
    assert fake.last_request is not None and fake.last_request.query == {"alt": "sse"}


def test_tool_call_round_trip(fake: FakeProvider, client: gemini.Client) -> None:
    model = client.completion_model(MODEL)
    prompt = 'call:add {"a": 2, "b": 3}'
    first = model.completion_request(prompt).tool(ADD).send()
    assert [(c.id, c.name, c.arguments) for c in first.tool_calls] == [("add", "add", {"a": 2, "b": 3})]
    second = (model.completion_request(Message.tool_result(first.tool_calls[0].id, "5"))
              .messages([Message.user(prompt), first.message()]).tool(ADD).send())
    assert second.text == "tool result: 5"
    sent = fake.last_request
    assert sent is not None
    assert sent.json["contents"][2]["parts"] == [{"functionResponse": {"name": "add", "response": {"output": "5"}}}]
    assert "additionalProperties" not in json.dumps(sent.json["tools"])


def test_streamed_tool_call(client: gemini.Client) -> None:
    chunks = list(client.completion_model(MODEL).completion_request('call:add {"a": 1, "b": 1}').tool(ADD).stream())
    calls = [c.tool_call for c in chunks if isinstance(c, ToolCallChunk)]
    assert [(c.name, c.arguments) for c in calls] == [("add", {"a": 1, "b": 1})]


def test_agent_runs_the_tool_loop(client: gemini.Client) -> None:
    @tool
    def add(a: int, b: int) -> int:
        """Add two numbers.

        Args:
            a: The first number.
            b: The second number.
        """
        return a + b

    agent = client.agent(MODEL).tool(add).build()
    assert agent.prompt('call:add {"a": 20, "b": 22}') == "tool result: 42"


def test_scripted_replies_render_in_gemini_format(fake: FakeProvider, client: gemini.Client) -> None:
    fake.script(Reply.tool_calls([("add", {"a": 1, "b": 2}, "fc-1")]),
                Reply.text("filtered", finish_reason="content_filter"))
    model = client.completion_model(MODEL)
    call = model.completion_request("x").tool(ADD).send().tool_calls[0]
    assert (call.id, call.call_id, call.arguments) == ("fc-1", "fc-1", {"a": 1, "b": 2})
    with pytest.raises(gemini.ContentBlockedError, match="SAFETY") as info:
        model.completion_request("y").send()
    assert info.value.text == "filtered"


def test_embeddings(fake: FakeProvider, client: gemini.Client) -> None:
    emb = client.embedding_model("text-embedding-004")
    one = emb.embed_text("the cat sat")
    assert one.vec == embed_text("the cat sat", 768) and emb.ndims == 768
    many = emb.embed_texts(["a cat", "a dog", "a car"])
    assert [e.vec for e in many] == [embed_text(t, 768) for t in ("a cat", "a dog", "a car")]
    assert [r.path.rpartition(":")[2] for r in fake.requests] == ["embedContent", "batchEmbedContents"]
    short = client.embedding_model("gemini-embedding-001", 64).embed_texts(["x", "y"])
    assert [len(e.vec) for e in short] == [64, 64]


def test_transcription_plumbing(fake: FakeProvider, client: gemini.Client) -> None:
    t = client.transcription_model(MODEL).transcription(TranscriptionRequest(data=b"ID3...", filename="a.mp3"))
    assert t.text == "echo: Generate a transcript of the speech."
    req = fake.last_request
    assert req is not None and req.json["contents"][0]["parts"][1]["inlineData"]["mimeType"] == "audio/mp3"


def test_fault_maps_to_error_with_gemini_shape(fake: FakeProvider, client: gemini.Client) -> None:
    fake.inject(Fault.status(429, retry_after=1))
    with pytest.raises(errors.RateLimitError) as info:
        client.completion_model(MODEL).completion_request("x").send()
    err = info.value
    assert err.provider == "gemini" and err.code == "RESOURCE_EXHAUSTED" and err.retry_after == 1.0
    assert err.body["error"]["code"] == 429


def test_wrong_key(fake: FakeProvider) -> None:
    fake.require_key = "the-right-key"
    bad = gemini.Client("the-wrong-key", base_url=fake.url, max_retries=0)
    with pytest.raises(errors.AuthenticationError, match="API key not valid") as info:
        bad.completion_model(MODEL).completion_request("x").send()
    assert info.value.body["error"]["details"][0]["reason"] == "API_KEY_INVALID"
    assert "the-wrong-key" not in str(info.value) and "the-wrong-key" not in repr(bad)


def test_mid_stream_error_and_cut_stream(fake: FakeProvider, client: gemini.Client) -> None:
    model = client.completion_model(MODEL)
    fake.inject(Fault.sse_error(after_events=1, error={"message": "backend exploded"}))
    with pytest.raises(errors.StreamError, match="backend exploded"):
        list(model.completion_request("one two three").stream())
    fake.inject(Fault.stream_cut(after_events=2))
    with pytest.raises(errors.StreamError) as info:
        list(model.completion_request("one two three four").stream())
    assert info.value.is_retryable()


def test_api_version_v1(fake: FakeProvider) -> None:
    c = gemini.Client(fake.api_key, base_url=fake.url, api_version="v1", max_retries=0)
    assert c.completion_model(MODEL).completion_request("hi").send().text == "echo: hi"
    assert fake.last_request is not None and fake.last_request.path.startswith("/v1/models/")
