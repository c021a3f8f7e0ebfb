"""The OpenAI-compatible table: each row's client has exactly what the row claims, and each real
deviation (no tools, no stream_options, float embeddings, provider-specific media endpoints,
keyless llama.cpp) shows in what goes over the wire."""

from __future__ import annotations

import base64
import importlib
import json
from typing import Any

import pytest
import responses

from rig_sync.audio_generation import AudioGenerationRequest
from rig_sync.client import CAPABILITIES, ProviderClient
from rig_sync.completion import ToolDefinition
from rig_sync.errors import ResponseDecodeError, UnsupportedFeature
from rig_sync.image_generation import ImageGenerationRequest
from rig_sync.providers._compat import ROWS, CompatProvider
from rig_sync.testing import FakeProvider
from rig_sync.transcription import TranscriptionRequest
from tests.conftest import load_fixture, sent_json, serve_fixture

PNG = base64.b64decode(load_fixture("openai/images.b64_json.json")["data"][0]["b64_json"])  # a real PNG
TOOL = ToolDefinition("add", "Add two numbers", {"type": "object", "properties": {"a": {"type": "number"}}})


def client_of(name: str, **kwargs: Any) -> Any:
    cls: type[ProviderClient] = importlib.import_module(f"rig_sync.providers.{name}").Client
    return cls("test-key", timeout=2, max_retries=0, **kwargs)


# --- the table ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(ROWS))
def test_module_client_is_its_row(name: str) -> None:
    row = ROWS[name]
    module = importlib.import_module(f"rig_sync.providers.{name}")
    cls = module.Client
    assert module.ClientBuilder is cls.Builder and cls.__module__ == module.__name__
    assert (cls.provider, cls.default_base_url) == (name, row.base_url)
    assert set(cls.capabilities()) == set(row.capabilities)
    assert cls.chat_dialect is row.dialect
    assert (cls.supports_tools, cls.streams_completions, cls.requires_api_key) == (
        row.dialect.tools, row.dialect.streaming, row.requires_api_key)
    assert cls.env_api_key == (row.env_api_key or (f"{name.upper()}_API_KEY",))
    assert cls.env_base_url == (row.env_base_url or (f"{name.upper()}_BASE_URL",))
    client = client_of(name)
    for cap, mixin in CAPABILITIES.items():
        view = getattr(client, f"as_{cap}")()
        assert (view is client) == (cap in row.capabilities) == isinstance(client, mixin)


def test_a_row_cannot_name_a_model_for_a_capability_it_lacks() -> None:
    with pytest.raises(ValueError, match="cover its models"):
        CompatProvider("x", "https://x.test/v1", models={"embeddings": object})
    with pytest.raises(ValueError, match="known ones"):
        CompatProvider("x", "https://x.test/v1", frozenset({"completion", "telepathy"}))


# --- chat deviations ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(n for n, row in ROWS.items() if not row.dialect.tools))
def test_tools_are_refused_where_the_provider_has_none(name: str, mocked: responses.RequestsMock) -> None:
    model = client_of(name).completion_model("some-model")
    with pytest.raises(UnsupportedFeature, match="tool calling"):
        model.completion_request("2+2?").tool(TOOL).send()
    with pytest.raises(UnsupportedFeature, match="tool calling"):
        model.completion_request("2+2?").tool(TOOL).stream()
    assert len(mocked.calls) == 0  # refused before anything was sent


@pytest.mark.parametrize("name", sorted(ROWS))
def test_stream_options_only_where_accepted(name: str, mocked: responses.RequestsMock) -> None:
    row = ROWS[name]
    url = f"{row.base_url}/chat/completions"
    serve_fixture(mocked, url, "openai/chat_stream.include_usage.sse")
    chunks = list(client_of(name).completion_model("m").completion_request("hi").stream())
    assert chunks[-1].response.usage.total_tokens > 0
    sent = sent_json(mocked)
    assert sent["stream"] is True
    assert ("stream_options" in sent) == row.dialect.stream_usage


@pytest.mark.parametrize("name", ["perplexity", "mira", "groq"])
def test_plain_completion_on_rows(name: str, mocked: responses.RequestsMock) -> None:
    serve_fixture(mocked, f"{ROWS[name].base_url}/chat/completions", "openai/chat_completion.text.json")
    resp = client_of(name).completion_model("m").completion_request("hi").send()
    expected = load_fixture("openai/chat_completion.text.json")["choices"][0]["message"]["content"]
    assert resp.choice[0].text == expected and resp.usage.input_tokens > 0


# --- groq and together: OpenAI's own endpoints --------------------------------------------------


def test_groq_transcription_is_openai_compatible(mocked: responses.RequestsMock) -> None:
    serve_fixture(mocked, "https://api.groq.com/openai/v1/audio/transcriptions", "openai/transcription.json.json")
    resp = client_of("groq").transcription_model("whisper-large-v3").transcription(
        TranscriptionRequest(data=b"RIFF....", filename="a.wav", language="en"))
    assert resp.text == "Hello, world! This is a test."
    body = mocked.calls[0].request.body
    assert b'name="model"' in body and b"whisper-large-v3" in body and b'filename="a.wav"' in body


def test_together_embeddings_ask_for_floats(mocked: responses.RequestsMock) -> None:
    answer = {"object": "list", "model": "m", "data": [
        {"object": "embedding", "index": 1, "embedding": [0.5, 0.25]},
        {"object": "embedding", "index": 0, "embedding": [1.0, -1.0]}]}
    mocked.add(responses.POST, "https://api.together.xyz/v1/embeddings", json=answer)
    out = client_of("together").embedding_model("BAAI/bge-base-en-v1.5").embed_texts(["x", "y"])
    assert [e.vec for e in out] == [[1.0, -1.0], [0.5, 0.25]]
    assert sent_json(mocked) == {"model": "BAAI/bge-base-en-v1.5", "input": ["x", "y"]}


def test_llamacpp_keeps_base64_and_reads_floats_too(mocked: responses.RequestsMock) -> None:
    serve_fixture(mocked, "http://localhost:8080/v1/embeddings", "openai/embeddings.single_base64.json")
    out = importlib.import_module("rig_sync.providers.llamacpp").Client().embedding_model("local").embed_text("x")
    assert len(out.vec) > 0 and sent_json(mocked)["encoding_format"] == "base64"


# --- llama.cpp: no key ---------------------------------------------------------------------------


def test_llamacpp_needs_no_key(monkeypatch: pytest.MonkeyPatch, mocked: responses.RequestsMock) -> None:
    llamacpp = importlib.import_module("rig_sync.providers.llamacpp")
    for var in ("LLAMACPP_API_KEY", "LLAMACPP_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("LLAMACPP_API_BASE_URL", "http://127.0.0.1:9/v1")
    client = llamacpp.Client.from_env()
    assert client.base_url == "http://127.0.0.1:9/v1"
    serve_fixture(mocked, "http://127.0.0.1:9/v1/chat/completions", "openai/chat_completion.text.json")
    assert client.completion_model("local").completion_request("hi").send().choice
    assert "Authorization" not in mocked.calls[0].request.headers


# --- hyperbolic: its own image and audio endpoints ----------------------------------------------


def test_hyperbolic_image_generation(mocked: responses.RequestsMock) -> None:
    answer = {"images": [{"index": 0, "image": base64.b64encode(PNG).decode(), "random_seed": 7}],
              "inference_time": 1.2}
    mocked.add(responses.POST, "https://api.hyperbolic.xyz/v1/image/generation", json=answer)
    resp = client_of("hyperbolic").image_generation_model("SDXL1.0-base").image_generation(
        ImageGenerationRequest("a red fox", width=512, height=768, additional_params={"steps": 30}))
    assert resp.image == PNG and resp.raw_response == answer
    assert sent_json(mocked) == {"model_name": "SDXL1.0-base", "prompt": "a red fox", "height": 768,
                                 "width": 512, "steps": 30}
    assert mocked.calls[0].request.headers["Authorization"] == "Bearer test-key"


@pytest.mark.parametrize("answer", [{"images": []}, {"images": [{"image": "not base64!"}]}, ["x"]])
def test_hyperbolic_image_answer_without_an_image(answer: Any, mocked: responses.RequestsMock) -> None:
    mocked.add(responses.POST, "https://api.hyperbolic.xyz/v1/image/generation", json=answer)
    with pytest.raises(ResponseDecodeError) as info:
        client_of("hyperbolic").image_generation_model("SDXL1.0-base").image_generation_request().prompt("x").send()
    assert info.value.provider == "hyperbolic"


def test_hyperbolic_audio_generation(mocked: responses.RequestsMock) -> None:
    audio = b"ID3\x03fake-mp3"
    mocked.add(responses.POST, "https://api.hyperbolic.xyz/v1/audio/generation",
               json={"audio": base64.b64encode(audio).decode()})
    resp = client_of("hyperbolic").audio_generation_model("EN").audio_generation(
        AudioGenerationRequest("Hello there", voice="EN-US", speed=1.5))
    assert resp.audio == audio
    assert sent_json(mocked) == {"text": "Hello there", "speed": 1.5, "language": "EN", "speaker": "EN-US"}


def test_hyperbolic_audio_without_a_voice_lets_hyperbolic_choose_its_speaker(mocked: responses.RequestsMock) -> None:
    # The core default voice is OpenAI's "alloy", which names no Hyperbolic speaker.
    mocked.add(responses.POST, "https://api.hyperbolic.xyz/v1/audio/generation",
               json={"audio": base64.b64encode(b"wav").decode()})
    client_of("hyperbolic").audio_generation_model("FR").audio_generation_request().text("Bonjour").send()
    assert sent_json(mocked) == {"text": "Bonjour", "speed": 1.0, "language": "FR"}


def test_hyperbolic_audio_without_audio(mocked: responses.RequestsMock) -> None:
    mocked.add(responses.POST, "https://api.hyperbolic.xyz/v1/audio/generation", json={"detail": "nope"})
    with pytest.raises(ResponseDecodeError, match="no audio"):
        client_of("hyperbolic").audio_generation_model("EN").audio_generation_request().text("hi").send()


# --- huggingface: the router's hf-inference task endpoints --------------------------------------

HF_WHISPER = "https://router.huggingface.co/hf-inference/models/openai/whisper-large-v3"
HF_FLUX = "https://router.huggingface.co/hf-inference/models/black-forest-labs/FLUX.1-dev"


def test_hf_transcription_sends_the_audio_bytes(mocked: responses.RequestsMock) -> None:
    mocked.add(responses.POST, HF_WHISPER, json={"text": " Hello world."})
    resp = client_of("huggingface").transcription_model("openai/whisper-large-v3").transcription(
        TranscriptionRequest(data=b"ID3 mp3 bytes", filename="clip.mp3"))
    assert resp.text == " Hello world."
    request = mocked.calls[0].request
    assert request.body == b"ID3 mp3 bytes"
    assert request.headers["Content-Type"] == "audio/mpeg"
    assert request.headers["Authorization"] == "Bearer test-key"


def test_hf_transcription_options_go_in_parameters(mocked: responses.RequestsMock) -> None:
    mocked.add(responses.POST, HF_WHISPER, json={"text": "hi", "chunks": []})
    client_of("huggingface").transcription_model("openai/whisper-large-v3").transcription(
        TranscriptionRequest(data=b"\x00\x01", filename="a.wav", temperature=0.2,
                             additional_params={"return_timestamps": True}))
    assert sent_json(mocked) == {"inputs": base64.b64encode(b"\x00\x01").decode(), "parameters": {
        "return_timestamps": True, "generation_parameters": {"temperature": 0.2}}}


def test_hf_transcription_refuses_a_language(mocked: responses.RequestsMock) -> None:
    model = client_of("huggingface").transcription_model("openai/whisper-large-v3")
    with pytest.raises(UnsupportedFeature, match="language"):
        model.transcription(TranscriptionRequest(data=b"x", language="fr"))
    assert len(mocked.calls) == 0


def test_hf_image_generation(mocked: responses.RequestsMock) -> None:
    mocked.add(responses.POST, HF_FLUX, body=PNG, content_type="image/png")
    resp = client_of("huggingface").image_generation_model("black-forest-labs/FLUX.1-dev").image_generation(
        ImageGenerationRequest("a lighthouse", width=640, height=480, additional_params={"seed": 3}))
    assert resp.image == PNG
    assert sent_json(mocked) == {"inputs": "a lighthouse", "parameters": {"width": 640, "height": 480, "seed": 3}}


def test_hf_image_answer_that_is_not_an_image(mocked: responses.RequestsMock) -> None:
    mocked.add(responses.POST, HF_FLUX, json={"estimated_time": 20.0})
    with pytest.raises(ResponseDecodeError, match="instead of an image"):
        client_of("huggingface").image_generation_model("black-forest-labs/FLUX.1-dev") \
            .image_generation_request().prompt("x").send()


def test_hf_endpoints_follow_a_custom_base_url(mocked: responses.RequestsMock) -> None:
    mocked.add(responses.POST, "http://127.0.0.1:9/hf-inference/models/openai/whisper-tiny", json={"text": "ok"})
    client = client_of("huggingface", base_url="http://127.0.0.1:9/v1")
    assert client.transcription_model("openai/whisper-tiny").transcription(TranscriptionRequest(data=b"x")).text == "ok"
    assert mocked.calls[0].request.headers["Authorization"] == "Bearer test-key"


# --- every row against the loopback fake --------------------------------------------------------


@pytest.fixture(scope="module")
def fake() -> Any:
    with FakeProvider() as server:
        yield server


@pytest.mark.parametrize("name", sorted(ROWS))
def test_rows_talk_to_the_fake(name: str, fake: FakeProvider) -> None:
    fake.reset()
    client = client_of(name, base_url=fake.base_url)
    model = client.completion_model("fake-model")
    assert "echo me" in model.completion_request("echo me").send().choice[0].text
    final = list(model.completion_request("stream me").stream())[-1]
    assert "stream me" in final.response.choice[0].text
    if "embeddings" in ROWS[name].capabilities:
        vec = client.embedding_model("fake-embed").embed_text("hello").vec
        assert len(vec) > 0
    sent = fake.requests[0]
    assert sent.headers["authorization"] == "Bearer test-key"
    assert json.loads(sent.body)["model"] == "fake-model"

