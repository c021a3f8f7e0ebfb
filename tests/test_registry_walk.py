"""Walk the whole registry: every provider module, every capability.

For each capability a provider claims, a request built through `DynClientBuilder` goes out
(answered by `responses` with a canned payload in the provider's own format) and comes back as
the core type. For each capability it does not claim, `as_<capability>()` is None and the
builder refuses with `UnsupportedFeature`. The walk lists the providers from the registry when
it runs; a provider it has no canned answers for fails, naming the entry to add.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import responses

from rig_sync.audio_generation import AudioGenerationRequest
from rig_sync.client import ProviderValue
from rig_sync.client.builder import DynClientBuilder, load_provider
from rig_sync.client.capabilities import TABLE
from rig_sync.completion import CompletionResponse
from rig_sync.errors import UnsupportedFeature
from rig_sync.image_generation import ImageGenerationRequest
from rig_sync.providers._compat import ROWS
from rig_sync.rerank import RerankResult
from rig_sync.streaming import FinalResponse
from rig_sync.transcription import TranscriptionRequest
from tests.conftest import fixture_meta, load_bytes

HOST = "http://127.0.0.1:9"


@dataclass(frozen=True)
class Canned:
    """The answer to one capability's request: method, a regex the URL must match (searched),
    the fixture(s) whose bytes make the body (through `render` when they are not wire bytes)."""

    method: str
    url: str
    fixture: str | tuple[str, ...]
    render: Callable[[list[bytes]], bytes] | None = None
    content_type: str | None = None
    inputs: tuple[str, ...] = ("hello",)  # embeddings: as many texts as the answer has vectors
    model: str = "test-model"
    voice: str = "alloy"

    def body(self) -> bytes:
        names = (self.fixture,) if isinstance(self.fixture, str) else self.fixture
        raw = [load_bytes(name) for name in names]
        return self.render(raw) if self.render else raw[0]

    def kind(self) -> str:
        if self.content_type:
            return self.content_type
        name = self.fixture if isinstance(self.fixture, str) else self.fixture[0]
        return str(fixture_meta(name).get("content_type") or "application/json")


def sse_events(raw: list[bytes]) -> bytes:
    """A stored list of `{event, data}` stream events as SSE bytes."""
    return b"".join(f"event: {e['event']}\ndata: {json.dumps(e['data'])}\n\n".encode() for e in json.loads(raw[0]))


def sse_data(raw: list[bytes]) -> bytes:
    """A stored list of chunk objects as data-only SSE ending with `[DONE]`."""
    return b"".join(f"data: {json.dumps(c)}\n\n".encode() for c in json.loads(raw[0])) + b"data: [DONE]\n\n"


def ndjson(raw: list[bytes]) -> bytes:
    return b"".join(json.dumps(json.loads(r)).encode() + b"\n" for r in raw)


def without_elisions(raw: list[bytes]) -> bytes:
    return raw[0].replace(b'"...",', b"")


def openai_image_b64(raw: list[bytes]) -> str:
    b64: str = json.loads(raw[0])["data"][0]["b64_json"]
    return b64


def speech_delta_b64(raw: list[bytes]) -> str:
    """The base64 audio of the first `speech.audio.delta` event of OpenAI's recorded speech stream."""
    first = raw[0].split(b"data: ", 1)[1].split(b"\n", 1)[0]
    b64: str = json.loads(first)["audio"]
    return b64


def gemini_truncated(raw: list[bytes]) -> bytes:
    from tests.test_gemini import complete_truncated

    return complete_truncated(raw[0].decode()).encode()


# Answers in OpenAI's formats, for openai, azure and every row of the compatible table.
OPENAI: dict[str, Canned] = {
    "completion": Canned("POST", r"/chat/completions(\?|$)", "openai/chat_completion.text.json"),
    "streaming": Canned("POST", r"/chat/completions(\?|$)", "openai/chat_stream.include_usage.sse"),
    "embeddings": Canned("POST", r"/embeddings(\?|$)", "openai/embeddings.single_base64.json"),
    "transcription": Canned("POST", r"/audio/transcriptions(\?|$)", "openai/transcription.json.json"),
    "image_generation": Canned("POST", r"/images/generations(\?|$)", "openai/images.b64_json.json"),
    "audio_generation": Canned("POST", r"/audio/speech(\?|$)", "openai/speech.stream.sse"),
}

# Capabilities a compatible row serves on an endpoint of its own (`CompatProvider.models`).
ROW_OWN: dict[str, dict[str, Canned]] = {
    "hyperbolic": {
        "image_generation": Canned(
            "POST", r"/image/generation$", "openai/images.b64_json.json",
            render=lambda raw: json.dumps({"images": [{"image": openai_image_b64(raw)}]}).encode()),
        "audio_generation": Canned("POST", r"/audio/generation$", "openai/speech.stream.sse", voice="EN-US",
                                   content_type="application/json",
                                   render=lambda raw: json.dumps({"audio": speech_delta_b64(raw)}).encode()),
    },
    "huggingface": {
        "transcription": Canned("POST", r"/hf-inference/models/test-model$", "openai/transcription.json.json"),
        "image_generation": Canned("POST", r"/hf-inference/models/test-model$", "openai/images.b64_json.json",
                                   content_type="image/png",
                                   render=lambda raw: base64.b64decode(openai_image_b64(raw))),
    },
}

# Providers with their own wire formats: capability -> canned answer.
NATIVE: dict[str, dict[str, Canned]] = {
    "anthropic": {
        "completion": Canned("POST", r"/v1/messages$", "anthropic/message.text_end_turn.long.json"),
        "streaming": Canned("POST", r"/v1/messages$", "anthropic/stream.text.sse"),
    },
    "cohere": {
        "completion": Canned("POST", r"/v2/chat$", "cohere/chat.v2.text.json"),
        "streaming": Canned("POST", r"/v2/chat$", "cohere/chat_stream.v2.text.events.json", render=sse_events,
                            content_type="text/event-stream"),
        "embeddings": Canned("POST", r"/v2/embed$", "cohere/embed.v2.texts_float.json", inputs=("hello", "goodbye"),
                             model="embed-english-v3.0"),
        # Voyage's recorded ranking in Cohere's documented shape ({results, meta}).
        "rerank": Canned("POST", r"/v2/rerank$", "voyage/rerank.spec_example.json",
                         inputs=("Sample document 1", "Sample document 2"), model="rerank-v3.5",
                         render=lambda raw: json.dumps({"id": "r", "results": json.loads(raw[0])["data"],
                                                        "meta": {"billed_units": {"search_units": 1}}}).encode()),
    },
    "gemini": {
        "completion": Canned("POST", r"/models/test-model:generateContent$", "gemini/generate_content.text.json"),
        "streaming": Canned("POST", r"/models/test-model:streamGenerateContent\?alt=sse$",
                            "gemini/stream_generate_content.text.sse"),
        "embeddings": Canned("POST", r"/models/test-model:embedContent$", "gemini/embed_content.TRUNCATED.txt",
                             render=gemini_truncated, content_type="application/json"),
        "transcription": Canned("POST", r"/models/test-model:generateContent$", "gemini/generate_content.text.json"),
    },
    "ollama": {
        "completion": Canned("POST", r"/api/chat$", "ollama/api_chat.non_stream.json"),
        "streaming": Canned("POST", r"/api/chat$", ("ollama/api_chat.stream_chunk.json",
                                                    "ollama/api_chat.stream_final.json"),
                            render=ndjson, content_type="application/x-ndjson"),
        "embeddings": Canned("POST", r"/api/embed$", "ollama/api_embed.single.json"),
    },
    "voyageai": {
        "embeddings": Canned("POST", r"/embeddings$", "voyage/embeddings.spec_example.ELIDED.json",
                             render=without_elisions, inputs=("Sample text 1", "Sample text 2"),
                             model="voyage-large-2"),
        "rerank": Canned("POST", r"/rerank$", "voyage/rerank.spec_example.json",
                         inputs=("Sample document 1", "Sample document 2"), model="rerank-lite-1"),
    },
    "azure": OPENAI,
    "vertex": {  # the walk's key makes an express mode client: /v1/publishers/google/models/{model}:…
        "completion": Canned("POST", r"/publishers/google/models/test-model:generateContent$",
                             "vertex/gemini.generate_content.text.json"),
        "streaming": Canned("POST", r"/publishers/google/models/test-model:streamGenerateContent\?alt=sse$",
                            "vertex/gemini.stream_generate_content.text.sse", content_type="text/event-stream"),
        "embeddings": Canned("POST", r"/publishers/google/models/test-model:predict$",
                             "vertex/predict.gemini_embedding_001.json"),
        "transcription": Canned("POST", r"/publishers/google/models/test-model:generateContent$",
                                "vertex/gemini.generate_content.text.json"),
    },
    "bedrock": {  # the walk's key is a Bedrock API key (bearer); model ids go into the path percent-encoded
        "completion": Canned("POST", r"/model/test-model/converse$", "bedrock/converse.text.nova_micro.json"),
        "streaming": Canned("POST", r"/model/test-model/converse-stream$",
                            "bedrock/converse_stream.text.nova_micro.eventstream",
                            content_type="application/vnd.amazon.eventstream"),
        "embeddings": Canned("POST", r"/model/amazon\.titan-embed-text-v2%3A0/invoke$",
                             "bedrock/invoke.titan_embed_text_v2.json", inputs=("Hello, world!",),
                             model="amazon.titan-embed-text-v2:0"),
    },
}

# Settings a provider needs beyond a key and a base URL.
VALUES: dict[str, ProviderValue] = {
    "azure": ProviderValue("test-key", base_url=HOST, options={"api_version": "2024-10-21"}),
}

# Every capability that hands out a model (list_models is walked in tests/test_capabilities.py).
WALKED = ["streaming", *(str(row.capability) for row in TABLE if row.handed_out)]


def value_for(name: str) -> ProviderValue:
    return VALUES.get(name, ProviderValue("test-key", base_url=HOST))


def canned_for(name: str, capability: str) -> Canned:
    if name == "openai" or name in ROWS:
        own = ROWS[name].models if name in ROWS else {}
        if capability in own:
            entry = ROW_OWN.get(name, {}).get(capability)
            assert entry is not None, (f"row {name!r} serves {capability} with {own[capability].__name__}: "
                                       f"add its canned answer to ROW_OWN[{name!r}] in {__file__}")
            return entry
        return OPENAI[capability]
    table = NATIVE.get(name)
    assert table is not None, (f"provider {name!r} has no entry in NATIVE in {__file__}: add one mapping each "
                               "capability it claims to (method, URL regex, fixture)")
    entry = table.get(capability)
    assert entry is not None, f"provider {name!r} claims {capability}: add NATIVE[{name!r}][{capability!r}]"
    return entry


def claims(name: str, capability: str) -> bool:
    cls = load_provider(name)
    if capability == "streaming":
        return "completion" in cls.capabilities() and cls.streams_completions
    return capability in cls.capabilities()


def run(capability: str, model: Any, entry: Canned) -> None:
    """Send one request of `capability` and check it came back as the core type, with content."""
    if capability == "completion":
        resp = model.completion_request("Hello").max_tokens(64).send()
        assert isinstance(resp, CompletionResponse) and resp.choice and (resp.text or resp.tool_calls)
    elif capability == "streaming":
        chunks = list(model.completion_request("Hello").max_tokens(64).stream())
        final = chunks[-1]
        assert isinstance(final, FinalResponse) and sum(isinstance(c, FinalResponse) for c in chunks) == 1
        assert final.response.text or final.response.tool_calls
    elif capability == "embeddings":
        out = model.embed_texts(list(entry.inputs))
        assert [e.document for e in out] == list(entry.inputs)
        assert all(e.vec and all(isinstance(x, float) for x in e.vec) for e in out)
    elif capability == "transcription":
        resp = model.transcription(TranscriptionRequest(data=b"ID3 audio", filename="a.mp3"))
        assert isinstance(resp.text, str) and resp.text.strip()
    elif capability == "image_generation":
        image = model.image_generation(ImageGenerationRequest("a red fox")).image
        assert isinstance(image, bytes) and image
    elif capability == "audio_generation":
        audio = model.audio_generation(AudioGenerationRequest("Hello", voice=entry.voice)).audio
        assert isinstance(audio, bytes) and audio
    elif capability == "rerank":
        out = model.rerank("Sample query", list(entry.inputs))
        assert all(isinstance(r, RerankResult) for r in out)
        assert sorted(r.document for r in out) == sorted(entry.inputs)
        assert [r.relevance_score for r in out] == sorted((r.relevance_score for r in out), reverse=True)
    else:  # pragma: no cover - a new capability needs a runner
        pytest.fail(f"the walk has no runner for capability {capability!r}")


@pytest.mark.parametrize("name", DynClientBuilder().providers())
@pytest.mark.parametrize("capability", WALKED)
def test_walk(name: str, capability: str) -> None:
    builder = DynClientBuilder()
    value = value_for(name)
    client = load_provider(name).from_value(value)
    base = "completion" if capability == "streaming" else capability
    if not claims(name, capability):
        if capability == "streaming":
            if claims(name, "completion"):  # completion without streaming: stream() refuses
                with pytest.raises(UnsupportedFeature):
                    builder.completion(name, "test-model", value).completion_request("Hello").stream()
            return
        assert getattr(client, f"as_{capability}")() is None
        with pytest.raises(UnsupportedFeature, match=capability.replace("_", " ")):
            getattr(builder, capability)(name, "test-model", value)
        return
    assert getattr(client, f"as_{base}")() is client
    entry = canned_for(name, capability)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mocked:
        mocked.add(entry.method, re.compile(re.escape(HOST) + r".*" + entry.url), body=entry.body(),
                   status=200, content_type=entry.kind())
        model = getattr(builder, base)(name, entry.model, value)
        run(capability, model, entry)
        assert len(mocked.calls) == 1
        url = mocked.calls[0].request.url or ""
        assert "test-key" not in url  # the key travels in a header, never in the URL


def test_the_walk_covers_every_provider_module() -> None:
    names = DynClientBuilder().providers()
    assert {"openai", "mistral", *ROWS} <= set(names)
    for name in names:
        for capability in WALKED:
            if claims(name, capability):
                canned_for(name, capability)  # fails naming the missing entry
