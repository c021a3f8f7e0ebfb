"""OpenAI embeddings, transcription, image generation and speech through the public API, against
every recorded payload (tests/fixtures/openai), then end to end against the loopback FakeProvider.
Also checks that every OpenAI fixture file is exercised by one of the test_openai_* modules."""

from __future__ import annotations

import base64
import email
import email.policy
import json
import math
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
from conftest import FIXTURES, fixture_meta, load_bytes, load_fixture, sent_json, serve_fixture, sse_payloads

from rig_sync import errors
from rig_sync.audio_generation import AudioGenerationRequest
from rig_sync.image_generation import ImageGenerationRequest
from rig_sync.providers import openai
from rig_sync.testing import FakeProvider
from rig_sync.transcription import TranscriptionRequest

BASE = "http://127.0.0.1:9/v1"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def client(key: str = "sk-test") -> openai.Client:
    return openai.Client(key, base_url=BASE, max_retries=0)


def floats(b64: str) -> list[float]:
    """A base64 embedding decoded independently: little-endian float32."""
    raw = base64.b64decode(b64)
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))


# --- embeddings -------------------------------------------------------------------------------------

EMBED = f"{BASE}/embeddings"


def test_single_base64_embedding(mocked: responses.RequestsMock) -> None:
    recorded = load_fixture("openai/requests/embeddings.single_base64.request.json")
    want = floats(load_fixture("openai/embeddings.single_base64.json")["data"][0]["embedding"])
    serve_fixture(mocked, EMBED, "openai/embeddings.single_base64.json")
    emb = client().embedding_model("text-embedding-3-small")
    e = emb.embed_text("Hello, world!")
    assert e.document == "Hello, world!"
    assert len(e.vec) == len(want) == 1536 == emb.ndims
    assert e.vec[0] == want[0] and e.vec == want
    assert sent_json(mocked) == {**recorded, "input": [recorded["input"]]}  # one text, sent as a list


def test_several_inputs_with_dimensions(mocked: responses.RequestsMock) -> None:
    data = load_fixture("openai/embeddings.multiple_dimensions_base64.json")
    recorded = load_fixture("openai/requests/embeddings.multiple_dimensions_base64.request.json")
    serve_fixture(mocked, EMBED, "openai/embeddings.multiple_dimensions_base64.json")
    emb = client().embedding_model("text-embedding-3-small", ndims=456)
    out = emb.embed_texts(recorded["input"])
    assert sent_json(mocked) == recorded
    assert [e.document for e in out] == recorded["input"]
    by_index = {item["index"]: floats(item["embedding"]) for item in data["data"]}
    for i, e in enumerate(out):
        assert len(e.vec) == 456 and e.vec == by_index[i]
    assert out[0].vec[0] == struct.unpack("<f", base64.b64decode(data["data"][0]["embedding"])[:4])[0]


def test_float_embeddings_decode_too(mocked: responses.RequestsMock) -> None:
    # Compatible servers may ignore encoding_format and answer with numbers: the recorded vector as floats.
    data = load_fixture("openai/embeddings.single_base64.json")
    want = floats(data["data"][0]["embedding"])
    data["data"][0]["embedding"] = want
    mocked.add(responses.POST, EMBED, json=data)
    recorded = load_fixture("openai/requests/spec.embeddings.default.request.json")
    e = client().embedding_model(recorded["model"]).embed_text(recorded["input"])
    assert e.vec == want
    sent = sent_json(mocked)
    assert (sent["model"], sent["input"]) == (recorded["model"], [recorded["input"]])
    assert sent["encoding_format"] == "base64"  # we always ask for the compact form


def test_embed_texts_chunks_by_max_documents_and_keeps_order(mocked: responses.RequestsMock) -> None:
    texts = [f"text number {i}" for i in range(5)]

    def answer(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        inputs = json.loads(request.body or b"")["input"]
        # Items in reverse order: the model must order them by `index`.
        items = [{"index": i, "embedding": [float(texts.index(t)), 0.5]} for i, t in enumerate(inputs)][::-1]
        return 200, {}, json.dumps({"data": items})

    mocked.add_callback(responses.POST, EMBED, callback=answer, content_type="application/json")
    emb = openai.EmbeddingModel(client(), "text-embedding-3-small", max_documents=2)
    out = emb.embed_texts(texts)
    assert [json.loads(c.request.body or b"")["input"] for c in mocked.calls] == [texts[0:2], texts[2:4], texts[4:]]
    assert [e.document for e in out] == texts
    assert [e.vec[0] for e in out] == [0.0, 1.0, 2.0, 3.0, 4.0]


def test_embeddings_bad_dimensions(mocked: responses.RequestsMock) -> None:
    recorded = load_fixture("openai/requests/error.400_embeddings_bad_dimensions.request.json")
    with pytest.raises(ValueError, match="-42"):
        client().embedding_model(recorded["model"], ndims=recorded["dimensions"])  # refused before sending
    serve_fixture(mocked, EMBED, "openai/error.400_embeddings_bad_dimensions.json")
    with pytest.raises(errors.BadRequestError) as info:
        client().embedding_model(recorded["model"]).embed_text(recorded["input"])
    assert type(info.value) is errors.BadRequestError
    assert info.value.message == "-42 is less than the minimum of 1 - 'dimensions'"
    assert (info.value.status_code, info.value.provider) == (400, "openai")
    sent = sent_json(mocked)
    assert {k: sent[k] for k in ("model", "encoding_format")} == {k: recorded[k] for k in ("model", "encoding_format")}


# --- transcription ----------------------------------------------------------------------------------

TRANSCRIBE = f"{BASE}/audio/transcriptions"
AUDIO = b"ID3\x03\x00fake mp3 bytes"


def multipart(request: requests.PreparedRequest) -> tuple[dict[str, str], dict[str, tuple[str, bytes]]]:
    """Form fields and files of a multipart/form-data body, parsed with the standard library."""
    body = request.body if isinstance(request.body, bytes) else str(request.body).encode()
    head = f"Content-Type: {request.headers['Content-Type']}\r\n\r\n".encode()
    msg = email.message_from_bytes(head + body, policy=email.policy.HTTP)
    fields: dict[str, str] = {}
    files: dict[str, tuple[str, bytes]] = {}
    for part in msg.iter_parts():
        name = str(part.get_param("name", header="content-disposition"))
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        filename = part.get_filename()
        if filename:
            files[name] = (filename, payload)
        else:
            fields[name] = payload.decode()
    return fields, files


def recorded_form(name: str) -> dict[str, str]:
    """The multipart fields the SDK recorder sent (kept in index.json's notes, audio omitted)."""
    notes = fixture_meta(name)["notes"]
    return dict(json.loads(notes[notes.index("[["):]))


def transcribe_like(name: str) -> TranscriptionRequest:
    """A TranscriptionRequest that sends the recorded fields: builder fields, the rest as additional_params."""
    fields = recorded_form(name)
    fields.pop("model")
    temperature = fields.pop("temperature", None)
    language = fields.pop("language", None)
    return TranscriptionRequest(data=AUDIO, filename="audio.mp3", language=language,
                                temperature=float(temperature) if temperature else None,
                                additional_params=fields or None)


TRANSCRIPTIONS = [
    "openai/transcription.diarized_json.json",
    "openai/transcription.json.json",
    "openai/transcription.json_logprobs.json",
    "openai/transcription.json_token_usage.json",
    "openai/transcription.verbose_json.json",
    "openai/transcription.verbose_json_words.json",
    "openai/transcription.srt.txt",
    "openai/transcription.text.txt",
    "openai/transcription.vtt.txt",
    "openai/transcription.stream.sse",
]


@pytest.mark.parametrize("name", TRANSCRIPTIONS)
def test_recorded_transcriptions(mocked: responses.RequestsMock, name: str) -> None:
    serve_fixture(mocked, TRANSCRIBE, name)
    form = recorded_form(name)
    resp = client().transcription_model(form["model"]).transcription(transcribe_like(name))
    if name.endswith(".json"):
        want = load_fixture(name)["text"]
        assert resp.raw_response == load_fixture(name)
    elif name.endswith(".sse"):
        events = sse_payloads(name)
        want = events[-1]["text"]
        assert want == "".join(e.get("delta", "") for e in events[:-1])
    else:
        want = load_fixture(name)
    assert resp.text == want
    fields, files = multipart(mocked.calls[0].request)
    assert fields == form
    assert files == {"file": ("audio.mp3", AUDIO)}


@pytest.mark.parametrize("name", [
    "openai/spec.transcription.default.json",
    "openai/spec.transcription.diarization.json",
    "openai/spec.transcription.logprobs.json",
])
def test_spec_transcription_examples(mocked: responses.RequestsMock, name: str) -> None:
    serve_fixture(mocked, TRANSCRIBE, name)
    req = TranscriptionRequest(data=AUDIO, filename="talk.wav", language="en", prompt="OpenAI")
    resp = client().transcription_model("gpt-4o-transcribe").transcription(req)
    assert resp.text == load_fixture(name)["text"]
    fields, files = multipart(mocked.calls[0].request)
    assert fields == {"model": "gpt-4o-transcribe", "language": "en", "prompt": "OpenAI"}
    assert files["file"] == ("talk.wav", AUDIO)


def test_transcription_stream_cut_short(mocked: responses.RequestsMock) -> None:
    name = "openai/transcription.stream.sse"
    body = b"\n\n".join(load_bytes(name).replace(b"\r\n", b"\n").split(b"\n\n")[:4]) + b"\n\n"
    serve_fixture(mocked, TRANSCRIBE, name, body=body)
    with pytest.raises(errors.StreamError):
        client().transcription_model("gpt-4o-mini-transcribe").transcription(transcribe_like(name))


def test_transcription_bad_language(mocked: responses.RequestsMock) -> None:
    name = "openai/error.400_transcription_bad_language.json"
    serve_fixture(mocked, TRANSCRIBE, name)
    form = recorded_form(name)
    with pytest.raises(errors.BadRequestError) as info:
        client().transcription_model(form["model"]).transcription(transcribe_like(name))
    assert info.value.message == load_fixture(name)["error"]["message"]
    assert info.value.body["error"]["code"] == "invalid_language_format"
    assert multipart(mocked.calls[0].request)[0] == form


# --- images -----------------------------------------------------------------------------------------

IMAGES = f"{BASE}/images/generations"


def test_b64_image(mocked: responses.RequestsMock) -> None:
    recorded = load_fixture("openai/requests/images.b64_json.request.json")
    data = load_fixture("openai/images.b64_json.json")
    serve_fixture(mocked, IMAGES, "openai/images.b64_json.json")
    images = client().image_generation_model(recorded["model"])
    resp = images.image_generation(ImageGenerationRequest(recorded["prompt"]))
    assert resp.image == base64.b64decode(data["data"][0]["b64_json"])
    assert resp.image.startswith(PNG_SIGNATURE)
    sent = sent_json(mocked)
    assert {k: sent[k] for k in recorded} == recorded
    assert sent["size"] == "1024x1024" and "response_format" not in sent  # gpt-image rejects response_format


def test_b64_image_with_options(mocked: responses.RequestsMock) -> None:
    recorded = load_fixture("openai/requests/images.b64_json_options.request.json")
    serve_fixture(mocked, IMAGES, "openai/images.b64_json_options.json")
    extra = {k: recorded[k] for k in ("n", "output_format", "output_compression", "moderation", "background")}
    req = ImageGenerationRequest(recorded["prompt"], width=1024, height=1536, additional_params=extra)
    resp = client().image_generation_model(recorded["model"]).image_generation(req)
    assert sent_json(mocked) == recorded
    assert resp.image.startswith(PNG_SIGNATURE)
    assert len(resp.raw_response["data"]) == 2


@pytest.mark.parametrize(("name", "request_name", "width", "extra"), [
    ("images.url_dalle2_n2.json", "images.url_dalle2_n2.request.json", 256, {"n": 2, "response_format": "url"}),
    ("images.url_dalle3.json", "images.url_dalle3.request.json", 1024, None),
])
def test_url_images_are_fetched_without_credentials(mocked: responses.RequestsMock, name: str, request_name: str,
                                                     width: int, extra: dict[str, Any] | None) -> None:
    recorded = load_fixture(f"openai/requests/{request_name}")
    url = load_fixture(f"openai/{name}")["data"][0]["url"]
    png = PNG_SIGNATURE + b"stand-in image"
    serve_fixture(mocked, IMAGES, f"openai/{name}")
    mocked.add(responses.GET, url, body=png, content_type="image/png")
    req = ImageGenerationRequest(recorded["prompt"], width=width, height=width, additional_params=extra)
    resp = client().image_generation_model(recorded["model"]).image_generation(req)
    assert resp.image == png
    sent = sent_json(mocked)
    assert {k: sent[k] for k in recorded} == recorded
    fetch = mocked.calls[1].request
    assert fetch.url == url and "Authorization" not in fetch.headers


def test_spec_image_example_with_elided_bytes(mocked: responses.RequestsMock) -> None:
    recorded = load_fixture("openai/requests/spec.images.generate_image.request.json")
    serve_fixture(mocked, IMAGES, "openai/spec.images.generate_image.json")
    req = ImageGenerationRequest(recorded["prompt"], additional_params={"n": 1})
    with pytest.raises(errors.ResponseDecodeError) as info:  # its b64_json is the placeholder "..."
        client().image_generation_model(recorded["model"]).image_generation(req)
    assert info.value.field == "data[0].b64_json"
    assert sent_json(mocked) == recorded


def test_spec_image_streaming_request_body(mocked: responses.RequestsMock) -> None:
    # No image stream was captured; the body is what this test checks.
    recorded = load_fixture("openai/requests/spec.images.streaming.request.json")
    serve_fixture(mocked, IMAGES, "openai/images.b64_json.json")
    req = ImageGenerationRequest(recorded["prompt"], additional_params={"n": 1, "stream": True})
    client().image_generation_model(recorded["model"]).image_generation(req)
    assert sent_json(mocked) == recorded


def test_images_invalid_key_is_redacted(mocked: responses.RequestsMock) -> None:
    # The recorded 401 echoes the key it was sent ("fake_key"): it must not reach our message.
    recorded = load_fixture("openai/requests/error.401_images_invalid_api_key.request.json")
    serve_fixture(mocked, IMAGES, "openai/error.401_images_invalid_api_key.json")
    with pytest.raises(errors.AuthenticationError) as info:
        client("fake_key").image_generation_model(recorded["model"]).image_generation(
            ImageGenerationRequest(recorded["prompt"]))
    err = info.value
    assert (err.status_code, err.provider) == (401, "openai")
    assert err.message.startswith("Incorrect API key provided: ")
    assert "fake_key" not in str(err) and "fake_key" not in err.message
    sent = sent_json(mocked)
    assert {k: sent[k] for k in recorded} == recorded


# --- speech -----------------------------------------------------------------------------------------

SPEECH = f"{BASE}/audio/speech"


@pytest.mark.parametrize("request_name", ["speech.mp3.request.json", "spec.speech.default.request.json"])
def test_speech_returns_bytes(mocked: responses.RequestsMock, request_name: str) -> None:
    recorded = load_fixture(f"openai/requests/{request_name}")
    mp3 = b"\xff\xf3\xc4\x00 stand-in mp3"  # the recorded answer (binary audio/mpeg) was not stored
    mocked.add(responses.POST, SPEECH, body=mp3, content_type="audio/mpeg")
    req = AudioGenerationRequest(recorded["input"], voice=recorded["voice"])
    resp = client().audio_generation_model(recorded["model"]).audio_generation(req)
    assert (resp.audio, resp.content_type) == (mp3, "audio/mpeg")
    sent = sent_json(mocked)
    assert {k: sent[k] for k in recorded} == recorded


@pytest.mark.parametrize("request_name", ["speech.stream.request.json", "spec.speech.sse_stream_format.request.json"])
def test_speech_sse_stream_is_decoded(mocked: responses.RequestsMock, request_name: str) -> None:
    recorded = load_fixture(f"openai/requests/{request_name}")
    events = sse_payloads("openai/speech.stream.sse")
    want = b"".join(base64.b64decode(e["audio"]) for e in events if e["type"] == "speech.audio.delta")
    serve_fixture(mocked, SPEECH, "openai/speech.stream.sse")
    req = AudioGenerationRequest(recorded["input"], voice=recorded["voice"], additional_params={"stream_format": "sse"})
    resp = client().audio_generation_model(recorded["model"]).audio_generation(req)
    assert resp.audio == want and resp.audio.startswith(b"\xff\xf3")  # an MP3 frame, not SSE text
    assert resp.raw_response["usage"] == events[-1]["usage"]
    sent = sent_json(mocked)
    assert {k: sent[k] for k in recorded} == recorded


def test_speech_stream_without_done_event_raises(mocked: responses.RequestsMock) -> None:
    name = "openai/speech.stream.sse"
    events = [e for e in load_bytes(name).split(b"\n\n") if e.strip()]
    serve_fixture(mocked, SPEECH, name, body=b"\n\n".join(events[:-2]) + b"\n\n")
    req = AudioGenerationRequest("Hello", additional_params={"stream_format": "sse"})
    with pytest.raises(errors.StreamError):
        client().audio_generation_model("gpt-4o-mini-tts").audio_generation(req)


# --- every fixture is exercised ----------------------------------------------------------------------


def test_every_openai_fixture_is_exercised() -> None:
    here = Path(__file__).parent
    source = "".join(path.read_text() for path in here.glob("test_*.py"))  # whichever test reads it
    folder = FIXTURES / "openai"
    names = sorted(p.name for p in [*folder.iterdir(), *(folder / "requests").iterdir()]
                   if p.is_file() and p.name != "openapi.yaml")
    assert len(names) > 90
    missing = [n for n in names if n not in source]
    assert missing == []


# --- end to end against the loopback FakeProvider ---------------------------------------------------


@pytest.fixture
def fake_client() -> Iterator[openai.Client]:
    with FakeProvider() as fake:
        yield openai.Client(fake.api_key, base_url=fake.base_url, timeout=5)


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def test_fake_embeddings(fake_client: openai.Client) -> None:
    emb = fake_client.embedding_model("text-embedding-3-small")
    cat, cat2, physics = emb.embed_texts(["the cat sat on the mat", "a cat sat on a mat", "quantum chromodynamics"])
    assert len(cat.vec) == 1536 == emb.ndims
    assert cosine(cat.vec, cat2.vec) > cosine(cat.vec, physics.vec)
    assert emb.embed_text("the cat sat on the mat").vec == cat.vec


def test_fake_transcription(fake_client: openai.Client) -> None:
    req = TranscriptionRequest(data=b"0123456789", filename="a.mp3", language="en")
    assert fake_client.transcription_model("whisper-1").transcription(req).text == "transcribed 10 bytes from a.mp3"


def test_fake_image(fake_client: openai.Client) -> None:
    resp = fake_client.image_generation_model("gpt-image-1").image_generation(ImageGenerationRequest("a red cube"))
    assert resp.image.startswith(PNG_SIGNATURE)


def test_fake_speech(fake_client: openai.Client) -> None:
    resp = fake_client.audio_generation_model("tts-1").audio_generation(AudioGenerationRequest("Hello"))
    assert resp.audio.startswith(b"FAKEAUDIO") and resp.content_type == "audio/mpeg"
    wav = fake_client.audio_generation_model("tts-1").audio_generation(
        AudioGenerationRequest("Hello", additional_params={"response_format": "wav"}))
    assert wav.audio[:4] == b"RIFF" and wav.content_type == "audio/wav"
