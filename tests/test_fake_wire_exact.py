"""FakeProvider read by the providers' official SDKs (the `sdk-check` extra), so its wire cannot drift.

Each test points an SDK at the fake and checks two things: the SDK's own call parses and carries the
expected values, and every answer's bytes validate strictly against the SDK's published types. The
second check matters because the Stainless and Fern SDKs (openai, anthropic, cohere) build their
objects without validation, so a missing required field reads as absent instead of failing. Bytes are
kept by an httpx response hook; JSON-mode strict validation (`model_validate_json(..., strict=True)`)
rejects a missing field or a wrong type, and takes enums and dates as the wire spells them.
A test is skipped when its SDK is not installed.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Annotated, Any, get_args, get_origin

import pytest

from rig_sync.testing import FakeProvider
from rig_sync.testing._openai import embed_text, tiny_png


class Wire:
    """Keeps the bytes of every answer received by the httpx clients it makes."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.hooks = {"response": [self._keep]}
        self._clients: list[Any] = []

    def client(self, package: str = "httpx") -> Any:
        """A client of `package` (httpx, or httpx2 for the SDKs built on it)."""
        client = pytest.importorskip(package).Client(event_hooks=self.hooks)
        self._clients.append(client)
        return client

    def close(self) -> None:
        for client in self._clients:
            client.close()

    def _keep(self, response: Any) -> None:
        response.read()  # the SDK then reads the buffered body, streamed or not
        self.bodies.append(response.content)

    @property
    def last(self) -> bytes:
        return self.bodies[-1]

    def sse(self) -> list[bytes]:
        """The data payloads of the last answer, an SSE stream ([DONE] left out)."""
        lines = self.last.replace(b"\r\n", b"\n").split(b"\n")
        return [line[6:] for line in lines if line.startswith(b"data: ") and line != b"data: [DONE]"]

    def ndjson(self) -> list[bytes]:
        return [line for line in self.last.split(b"\n") if line]


@pytest.fixture
def wire() -> Iterator[Wire]:
    w = Wire()
    yield w
    w.close()


def _httpx_of(sdk: Any) -> str:
    """The httpx package a Stainless SDK is built on (newer releases moved to httpx2)."""
    return "httpx2" if hasattr(sdk._base_client, "httpx2") else "httpx"


def strict(cls: Any, raw: bytes) -> Any:
    """`raw` validated strictly as `cls` (a pydantic model)."""
    return cls.model_validate_json(raw, strict=True)


def by_type(union: Any) -> dict[str, Any]:
    """The event classes of a discriminated union, by the literal of their `type` field."""
    members = get_args(get_args(union)[0] if get_origin(union) is Annotated else union)
    return {get_args(cls.model_fields["type"].annotation)[0]: cls for cls in members}


def strict_events(union: Any, payloads: list[bytes]) -> list[Any]:
    classes = by_type(union)
    return [strict(classes[json.loads(p)["type"]], p) for p in payloads]


ADD = {"type": "function", "function": {"name": "add", "parameters": {"type": "object"}}}


# --------------------------------------------------------------------------- #
# OpenAI (openai-python)
# --------------------------------------------------------------------------- #


@pytest.fixture
def oai(fake: FakeProvider, wire: Wire) -> Any:
    openai = pytest.importorskip("openai")
    return openai.OpenAI(base_url=fake.base_url, api_key=fake.api_key, http_client=wire.client(_httpx_of(openai)),
                         max_retries=0)


def test_openai_chat_completions_plain_tools_and_stream(oai: Any, wire: Wire) -> None:
    from openai.types.chat import ChatCompletion, ChatCompletionChunk

    plain = oai.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi there"}])
    assert plain.choices[0].message.content == "echo: hi there" and plain.choices[0].finish_reason == "stop"
    assert strict(ChatCompletion, wire.last).usage.prompt_tokens == plain.usage.prompt_tokens == 2

    tools = oai.chat.completions.create(model="gpt-4o-mini", tools=[ADD],
                                        messages=[{"role": "user", "content": 'call:add {"a": 2}'}])
    (call,) = strict(ChatCompletion, wire.last).choices[0].message.tool_calls
    assert tools.choices[0].message.tool_calls[0].function.name == call.function.name == "add"
    assert json.loads(call.function.arguments) == {"a": 2} and tools.choices[0].finish_reason == "tool_calls"

    chunks = list(oai.chat.completions.create(model="gpt-4o-mini", stream=True, stream_options={"include_usage": True},
                                              messages=[{"role": "user", "content": "a b c"}]))
    raw = [strict(ChatCompletionChunk, p) for p in wire.sse()]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "echo: a b c"
    assert raw[-1].choices == [] and raw[-1].usage.completion_tokens == chunks[-1].usage.completion_tokens == 4


def test_openai_embeddings_float_and_base64(oai: Any, wire: Wire) -> None:
    from openai.types import CreateEmbeddingResponse

    floats = oai.embeddings.create(model="text-embedding-3-small", input=["a small cat"], encoding_format="float")
    assert strict(CreateEmbeddingResponse, wire.last).data[0].embedding == embed_text("a small cat")
    assert floats.usage.prompt_tokens == 3
    b64 = oai.embeddings.create(model="text-embedding-3-large", input=["a small cat", "dog"])  # the SDK's default
    assert [d.index for d in b64.data] == [0, 1] and b64.data[0].embedding == embed_text("a small cat", 3072)


def test_openai_responses_plain_tools_and_stream(oai: Any, wire: Wire) -> None:
    from openai.types.responses import Response, ResponseStreamEvent

    plain = oai.responses.create(model="gpt-4o-mini", input="hello there")
    checked = strict(Response, wire.last)
    assert plain.output_text == checked.output_text == "echo: hello there"
    assert checked.usage.input_tokens_details.cache_write_tokens == 0 and checked.usage.input_tokens == 2

    tools = oai.responses.create(model="gpt-4o-mini", input='call:add {"a": 1}',
                                 tools=[{"type": "function", "name": "add", "parameters": {"type": "object"}}])
    (item,) = strict(Response, wire.last).output
    assert item.type == tools.output[0].type == "function_call" and json.loads(item.arguments) == {"a": 1}

    events = list(oai.responses.create(model="gpt-4o-mini", input="one two", stream=True))
    raw = strict_events(ResponseStreamEvent, wire.sse())
    assert [e.type for e in raw] == [e.type for e in events]
    assert "".join(e.delta for e in raw if e.type == "response.output_text.delta") == "echo: one two"
    done = next(e for e in raw if e.type == "response.output_text.done")
    assert done.text == "echo: one two" and done.logprobs == []
    assert events[-1].response.usage.output_tokens == raw[-1].response.usage.output_tokens == 3


def test_openai_images_audio_and_models(oai: Any, wire: Wire) -> None:
    from openai.types import ImagesResponse
    from openai.types.audio import Transcription

    images = oai.images.generate(model="dall-e-3", prompt="a red square", n=2)
    checked = strict(ImagesResponse, wire.last)
    assert base64.b64decode(images.data[0].b64_json) == tiny_png("a red square") and len(checked.data) == 2
    text = oai.audio.transcriptions.create(model="whisper-1", file=("a.wav", b"RIFF1234"))
    assert text.text == strict(Transcription, wire.last).text == "transcribed 8 bytes from a.wav"
    speech = oai.audio.speech.create(model="tts-1", voice="alloy", input="hi", response_format="wav")
    assert speech.read()[:4] == b"RIFF"
    assert "gpt-4o-mini" in [m.id for m in oai.models.list()]


def test_openai_unserved_path_is_a_not_found_error(oai: Any) -> None:
    import openai

    with pytest.raises(openai.NotFoundError) as info:
        oai.files.list()
    assert info.value.body["code"] == "not_found"


# --------------------------------------------------------------------------- #
# Anthropic (anthropic-sdk-python)
# --------------------------------------------------------------------------- #


@pytest.fixture
def claude(fake: FakeProvider, wire: Wire) -> Any:
    anthropic = pytest.importorskip("anthropic")
    return anthropic.Anthropic(base_url=fake.url, api_key=fake.api_key, http_client=wire.client(_httpx_of(anthropic)),
                               max_retries=0)


def test_anthropic_messages_plain_tools_and_stream(claude: Any, wire: Wire) -> None:
    from anthropic.types import Message, RawMessageStreamEvent

    ask = [{"role": "user", "content": "hi there"}]
    plain = claude.messages.create(model="claude-3-5-haiku-latest", max_tokens=64, messages=ask)
    checked = strict(Message, wire.last)
    assert plain.content[0].text == checked.content[0].text == "echo: hi there"
    assert checked.stop_reason == "end_turn" and checked.usage.input_tokens == 2

    tools = claude.messages.create(model="claude-3-5-haiku-latest", max_tokens=64,
                                   tools=[{"name": "add", "input_schema": {"type": "object"}}],
                                   messages=[{"role": "user", "content": 'call:add {"a": 2}'}])
    (use,) = strict(Message, wire.last).content
    assert use.type == "tool_use" and use.input == tools.content[0].input == {"a": 2}

    events = list(claude.messages.create(model="claude-3-5-haiku-latest", max_tokens=64, messages=ask, stream=True))
    raw = strict_events(RawMessageStreamEvent, [p for p in wire.sse() if json.loads(p)["type"] != "ping"])
    assert [e.type for e in raw] == [e.type for e in events if e.type != "ping"]
    assert "".join(e.delta.text for e in raw if e.type == "content_block_delta") == "echo: hi there"
    with claude.messages.stream(model="claude-3-5-haiku-latest", max_tokens=64, messages=ask) as stream:
        assert stream.get_final_message().content[0].text == "echo: hi there"


def test_anthropic_count_tokens_and_unserved_paths(claude: Any, wire: Wire) -> None:
    import anthropic
    from anthropic.types import MessageTokensCount

    ask = {"model": "claude-3-5-haiku-latest", "system": "be brief", "messages": [{"role": "user", "content": "a b c"}]}
    counted = claude.messages.count_tokens(**ask)
    assert counted.input_tokens == strict(MessageTokensCount, wire.last).input_tokens == 5
    assert claude.messages.create(max_tokens=8, **ask).usage.input_tokens == 5
    with pytest.raises(anthropic.NotFoundError) as info:
        claude.messages.batches.retrieve("batch_1")
    assert info.value.body["error"]["type"] == "not_found_error"


# --------------------------------------------------------------------------- #
# Cohere (cohere-python, ClientV2)
# --------------------------------------------------------------------------- #


@pytest.fixture
def co(fake: FakeProvider, wire: Wire) -> Any:
    cohere = pytest.importorskip("cohere")
    return cohere.ClientV2(api_key=fake.api_key, base_url=fake.url, httpx_client=wire.client())


def test_cohere_chat_plain_stream_and_document_tool_results(co: Any, wire: Wire) -> None:
    from cohere import StreamedChatResponseV2, V2ChatResponse

    plain = co.chat(model="command-r", messages=[{"role": "user", "content": "hi there"}])
    checked = strict(V2ChatResponse, wire.last)
    assert plain.message.content[0].text == checked.message.content[0].text == "echo: hi there"
    assert checked.finish_reason == "COMPLETE"

    events = list(co.chat_stream(model="command-r", messages=[{"role": "user", "content": "a b"}]))
    raw = strict_events(StreamedChatResponseV2, wire.sse())
    assert [e.type for e in raw] == [e.type for e in events]
    assert "".join(e.delta.message.content.text for e in raw if e.type == "content-delta") == "echo: a b"

    call = {"id": "c1", "type": "function", "function": {"name": "add", "arguments": "{}"}}
    answered = co.chat(model="command-r", tools=[ADD], messages=[
        {"role": "user", "content": "add"},
        {"role": "assistant", "tool_plan": "I will add.", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": [{"type": "document", "document": {"data": {"sum": "3"}}}]},
    ])
    assert answered.message.content[0].text == "tool result: 3"


def test_cohere_embed_and_rerank(co: Any, wire: Wire) -> None:
    from cohere import EmbedByTypeResponse
    from cohere.v2 import V2RerankResponse

    emb = co.embed(model="embed-english-v3.0", texts=["a small cat"], input_type="search_document",
                   embedding_types=["float"])
    assert strict(EmbedByTypeResponse, wire.last).embeddings.float_[0] == embed_text("a small cat", 1024)
    assert emb.embeddings.float_[0] == embed_text("a small cat", 1024)
    ranked = co.rerank(model="rerank-v3.5", query="a small cat", documents=["stock prices", "a small cat sat"], top_n=1)
    checked = strict(V2RerankResponse, wire.last)
    assert [r.index for r in ranked.results] == [r.index for r in checked.results] == [1]


# --------------------------------------------------------------------------- #
# Ollama (ollama-python)
# --------------------------------------------------------------------------- #


@pytest.fixture
def llama(fake: FakeProvider, wire: Wire) -> Any:
    ollama = pytest.importorskip("ollama")
    client = ollama.Client(host=fake.url, event_hooks=wire.hooks)
    yield client
    client.close()


def test_ollama_chat_generate_embed_and_list(llama: Any, wire: Wire) -> None:
    import ollama
    from ollama import ChatResponse, EmbedResponse, GenerateResponse, ListResponse

    chat = llama.chat(model="llama3.2", messages=[{"role": "user", "content": "hi there"}])
    assert chat.message.content == strict(ChatResponse, wire.last).message.content == "echo: hi there"
    parts = list(llama.chat(model="llama3.2", messages=[{"role": "user", "content": "a b"}], stream=True))
    assert "".join(p.message.content for p in parts) == "echo: a b" and parts[-1].done_reason == "stop"
    assert [strict(ChatResponse, line).done for line in wire.ndjson()] == [p.done for p in parts]

    gen = llama.generate(model="llama3.2", prompt="why blue")
    assert gen.response == strict(GenerateResponse, wire.last).response == "echo: why blue"
    assert gen.prompt_eval_count == 2 and gen.eval_count == 3
    pieces = list(llama.generate(model="llama3.2", prompt="why blue", stream=True))
    assert "".join(p.response for p in pieces) == "echo: why blue"
    assert [strict(GenerateResponse, line).done for line in wire.ndjson()] == [p.done for p in pieces]

    emb = llama.embed(model="nomic-embed-text", input=["a small cat"])
    assert strict(EmbedResponse, wire.last).embeddings[0] == emb.embeddings[0] == embed_text("a small cat", 768)
    listed = llama.list()
    assert [m.model for m in strict(ListResponse, wire.last).models] == [m.model for m in listed.models]
    assert "llama3.2:latest" in [m.model for m in listed.models]
    with pytest.raises(ollama.ResponseError) as info:
        llama.show("llama3.2")  # not served: refused in Ollama's own shape, which the SDK reads
    assert info.value.status_code == 404 and info.value.error == "Invalid URL (POST /api/show)"


# --------------------------------------------------------------------------- #
# Gemini (google-genai)
# --------------------------------------------------------------------------- #


@pytest.fixture
def gem(fake: FakeProvider, wire: Wire) -> Any:
    pytest.importorskip("google.genai")
    from google import genai
    from google.genai import types

    return genai.Client(api_key=fake.api_key,
                        http_options=types.HttpOptions(base_url=fake.url, httpx_client=wire.client()))


def test_gemini_generate_stream_count_and_embed(gem: Any, wire: Wire) -> None:
    from google.genai import types

    plain = gem.models.generate_content(model="gemini-2.0-flash", contents="hi there")
    checked = strict(types.GenerateContentResponse, wire.last)
    assert plain.text == checked.text == "echo: hi there"
    assert checked.usage_metadata.prompt_token_count == 2
    pieces = [c.text for c in gem.models.generate_content_stream(model="gemini-2.0-flash", contents="a b")]
    assert "".join(pieces) == "echo: a b"
    assert [strict(types.GenerateContentResponse, p).text for p in wire.sse()] == pieces
    counted = gem.models.count_tokens(model="gemini-2.0-flash", contents="how many words")
    assert counted.total_tokens == 3
    # The SDK's type keeps only the total; the API also sends promptTokensDetails (ModalityTokenCount).
    raw = json.loads(wire.last)
    assert raw["totalTokens"] == 3 and set(raw) == {"totalTokens", "promptTokensDetails"}
    (detail,) = (types.ModalityTokenCount.model_validate_json(json.dumps(d), strict=True)
                 for d in raw["promptTokensDetails"])
    assert detail.modality == types.MediaModality.TEXT and detail.token_count == 3
    emb = gem.models.embed_content(model="text-embedding-004", contents=["a small cat"])
    assert emb.embeddings[0].values == embed_text("a small cat", 768)


# --------------------------------------------------------------------------- #
# Mistral (mistralai) and Voyage AI (voyageai)
# --------------------------------------------------------------------------- #


def test_mistral_chat_and_embeddings(fake: FakeProvider, wire: Wire) -> None:
    pytest.importorskip("mistralai")
    from mistralai.client import Mistral, models

    client = Mistral(api_key=fake.api_key, server_url=fake.url, client=wire.client())
    chat = client.chat.complete(model="mistral-small-latest", messages=[{"role": "user", "content": "hi there"}])
    assert chat.choices[0].message.content == "echo: hi there"
    assert strict(models.ChatCompletionResponse, wire.last).usage.prompt_tokens == 2
    emb = client.embeddings.create(model="mistral-embed", inputs=["a small cat"])  # the SDK validates: needs `id`
    assert emb.data[0].embedding == embed_text("a small cat", 1024) and emb.id


def test_voyage_embed_honours_output_dimension(fake: FakeProvider) -> None:
    voyageai = pytest.importorskip("voyageai")
    client = voyageai.Client(api_key=fake.api_key, base_url=fake.base_url, max_retries=0)
    sized = client.embed(["a small cat"], model="voyage-3", input_type="document", output_dimension=256)
    assert sized.embeddings[0] == embed_text("a small cat", 256) and sized.total_tokens == 3
    assert len(client.embed(["a small cat"], model="voyage-3").embeddings[0]) == 1024  # sent as null: the default
