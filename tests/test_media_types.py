"""Transcription, image generation and audio generation: request types and their builders.

The builders are driven through OpenAI's models (the public API); every refused input is
refused before a request: `responses` has nothing registered, so a sent request would fail.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import responses

from rig_sync.audio_generation import AudioGenerationModel, AudioGenerationRequest, AudioGenerationResponse
from rig_sync.errors import InvalidRequestError, RigError
from rig_sync.image_generation import ImageGenerationModel, ImageGenerationRequest, ImageGenerationResponse
from rig_sync.providers import openai
from rig_sync.testing import FakeProvider
from rig_sync.transcription import TranscriptionModel, TranscriptionRequest

BASE = "http://127.0.0.1:9/v1"


@pytest.fixture
def no_network() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


def client(base_url: str = BASE, key: str = "sk-test") -> openai.Client:
    return openai.Client(key, base_url=base_url, max_retries=0)


def assert_refused(no_network: responses.RequestsMock, error: type[Exception], make: Callable[[], Any]) -> Exception:
    with pytest.raises(error) as info:
        make()
    assert len(no_network.calls) == 0, "the bad request reached the network"
    if isinstance(info.value, InvalidRequestError):
        assert isinstance(info.value, RigError) and isinstance(info.value, ValueError)
    return info.value


# --- transcription --------------------------------------------------------------------------------


def test_load_file_reads_bytes_and_sets_the_filename(tmp_path: Path, no_network: responses.RequestsMock) -> None:
    audio = tmp_path / "meeting.wav"
    audio.write_bytes(b"RIFF\x00\x00WAVEfmt ")
    no_network.add(responses.POST, f"{BASE}/audio/transcriptions", json={"text": "hello there"})
    model = client().transcription_model("whisper-1")
    builder = model.transcription_request().load_file(audio).language("en").prompt("names: Ada").temperature(0)
    req = builder.build()
    assert (req.data, req.filename, req.language, req.prompt, req.temperature) == (
        b"RIFF\x00\x00WAVEfmt ", "meeting.wav", "en", "names: Ada", 0)
    assert builder.send().text == "hello there"
    sent = no_network.calls[0].request.body
    assert isinstance(sent, bytes)
    assert b'filename="meeting.wav"' in sent and b"RIFF\x00\x00WAVEfmt " in sent


def test_load_file_accepts_a_str_path(tmp_path: Path) -> None:
    audio = tmp_path / "a.mp3"
    audio.write_bytes(b"ID3")
    req = client().transcription_model("whisper-1").transcription_request().load_file(str(audio)).build()
    assert (req.data, req.filename) == (b"ID3", "a.mp3")


def test_transcription_end_to_end_against_the_fake_provider(tmp_path: Path) -> None:
    audio = tmp_path / "clip.mp3"
    audio.write_bytes(b"ID3" + bytes(64))
    with FakeProvider() as fake:
        model = client(fake.base_url, fake.api_key).transcription_model("whisper-1")
        text = model.transcription_request().load_file(audio).language("en").send().text
        assert isinstance(text, str) and text
        recorded = fake.last_request
        assert recorded is not None and recorded.path.endswith("/audio/transcriptions")
        assert recorded.files["file"] == ("clip.mp3", b"ID3" + bytes(64))
        assert recorded.form["language"] == "en"


def test_unreadable_files_are_refused(tmp_path: Path, no_network: responses.RequestsMock) -> None:
    builder = client().transcription_model("whisper-1").transcription_request()
    missing = assert_refused(no_network, InvalidRequestError, lambda: builder.load_file(tmp_path / "missing.mp3"))
    assert "missing.mp3" in str(missing)
    assert_refused(no_network, InvalidRequestError, lambda: builder.load_file(tmp_path))  # a directory
    if hasattr(os, "geteuid") and os.geteuid() != 0:  # root reads anything
        locked = tmp_path / "locked.mp3"
        locked.write_bytes(b"x")
        locked.chmod(0)
        assert_refused(no_network, InvalidRequestError, lambda: builder.load_file(locked))


def test_load_file_refuses_a_file_descriptor(no_network: responses.RequestsMock) -> None:
    # open(0) would read stdin and then close it: a path is required.
    builder = client().transcription_model("whisper-1").transcription_request()
    assert_refused(no_network, TypeError, lambda: builder.load_file(0))  # type: ignore[arg-type]


def test_an_empty_audio_file_is_refused(tmp_path: Path, no_network: responses.RequestsMock) -> None:
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    model = client().transcription_model("whisper-1")
    err = assert_refused(no_network, InvalidRequestError, lambda: model.transcription_request().load_file(empty).send())
    assert "empty" in str(err)
    assert_refused(no_network, InvalidRequestError, lambda: model.transcription(TranscriptionRequest(b"")))


def test_a_builder_without_audio_raises(no_network: responses.RequestsMock) -> None:
    model = client().transcription_model("whisper-1")
    err = assert_refused(no_network, InvalidRequestError, lambda: model.transcription_request().language("en").send())
    assert "load_file" in str(err)


@pytest.mark.parametrize(
    ("make", "error"),
    [
        (lambda: TranscriptionRequest("text, not bytes"), TypeError),  # type: ignore[arg-type]
        (lambda: TranscriptionRequest(b"x", filename=""), InvalidRequestError),
        (lambda: TranscriptionRequest(b"x", temperature=math.nan), InvalidRequestError),
        (lambda: TranscriptionRequest(b"x", temperature=-1), InvalidRequestError),
        (lambda: TranscriptionRequest(b"x", language=5), TypeError),  # type: ignore[arg-type]
        (lambda: TranscriptionRequest(b"x", additional_params=[1]), TypeError),  # type: ignore[arg-type]
    ],
    ids=["str-data", "empty-filename", "nan-temperature", "negative-temperature", "int-language", "list-params"],
)
def test_bad_transcription_requests(make: Callable[[], Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        make()


def test_transcription_request_copies_a_bytearray_and_hides_bytes_in_repr() -> None:
    buf = bytearray(b"abc")
    req = TranscriptionRequest(buf)
    buf[:] = b"xyz"
    assert req.data == b"abc" and isinstance(req.data, bytes)
    assert "<3 bytes>" in repr(req) and "abc" not in repr(req)


# --- image generation -----------------------------------------------------------------------------


def test_image_builder_sets_prompt_and_size(no_network: responses.RequestsMock) -> None:
    no_network.add(responses.POST, f"{BASE}/images/generations", json={"data": [{"b64_json": "iVBORw=="}]})
    model = client().image_generation_model("gpt-image-1")
    builder = model.image_generation_request().prompt("a lighthouse").width(512).height(256)
    assert builder.build() == ImageGenerationRequest("a lighthouse", 512, 256)
    resp = builder.send()
    assert isinstance(resp, ImageGenerationResponse) and resp.image == b"\x89PNG"
    assert b'"size":"512x256"' in no_network.calls[0].request.body


@pytest.mark.parametrize("size", [0, -1, 1.5, True, "512"], ids=["zero", "negative", "float", "bool", "str"])
def test_image_size_must_be_a_positive_integer(size: Any, no_network: responses.RequestsMock) -> None:
    model = client().image_generation_model("gpt-image-1")
    err = assert_refused(no_network, InvalidRequestError,
                  lambda: model.image_generation_request().prompt("a cat").width(size).send())
    assert "width" in str(err)
    assert_refused(no_network, InvalidRequestError,
            lambda: model.image_generation_request().prompt("a cat").height(size).send())


@pytest.mark.parametrize("prompt", ["", "   "])
def test_image_prompt_must_not_be_empty(prompt: str, no_network: responses.RequestsMock) -> None:
    model = client().image_generation_model("gpt-image-1")
    assert_refused(no_network, InvalidRequestError, lambda: model.image_generation_request().prompt(prompt).send())


def test_image_builder_without_prompt_raises(no_network: responses.RequestsMock) -> None:
    model = client().image_generation_model("gpt-image-1")
    assert_refused(no_network, InvalidRequestError, lambda: model.image_generation_request().width(256).send())


# --- audio generation -----------------------------------------------------------------------------


def test_audio_builder_sets_text_voice_speed(no_network: responses.RequestsMock) -> None:
    no_network.add(responses.POST, f"{BASE}/audio/speech", body=b"ID3audio", content_type="audio/mpeg")
    model = client().audio_generation_model("tts-1")
    builder = model.audio_generation_request().text("Hello").voice("nova").speed(1.25)
    assert builder.build() == AudioGenerationRequest("Hello", "nova", 1.25)
    resp = builder.send()
    assert isinstance(resp, AudioGenerationResponse)
    assert (resp.audio, resp.content_type) == (b"ID3audio", "audio/mpeg")
    assert "<8 bytes>" in repr(resp)


@pytest.mark.parametrize("text", ["", " \n"])
def test_empty_text_to_speak_is_refused(text: str, no_network: responses.RequestsMock) -> None:
    model = client().audio_generation_model("tts-1")
    err = assert_refused(no_network, InvalidRequestError, lambda: model.audio_generation_request().text(text).send())
    assert "empty" in str(err)


@pytest.mark.parametrize("speed", [0, -1.0, math.nan, math.inf, True, "fast"],
                         ids=["zero", "negative", "nan", "inf", "bool", "str"])
def test_speed_must_be_a_positive_finite_number(speed: Any, no_network: responses.RequestsMock) -> None:
    model = client().audio_generation_model("tts-1")
    err = assert_refused(no_network, InvalidRequestError,
                  lambda: model.audio_generation_request().text("hi").speed(speed).send())
    assert "speed" in str(err)


def test_audio_builder_without_text_or_with_empty_voice_raises(no_network: responses.RequestsMock) -> None:
    model = client().audio_generation_model("tts-1")
    assert_refused(no_network, InvalidRequestError, lambda: model.audio_generation_request().voice("alloy").send())
    assert_refused(no_network, InvalidRequestError,
                   lambda: model.audio_generation_request().text("hi").voice(" ").send())


def test_media_requests_are_frozen_and_models_satisfy_their_protocols() -> None:
    req = AudioGenerationRequest("hi")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        req.text = "other"  # type: ignore[misc]
    c = client()
    assert isinstance(c.transcription_model("whisper-1"), TranscriptionModel)
    assert isinstance(c.image_generation_model("gpt-image-1"), ImageGenerationModel)
    assert isinstance(c.audio_generation_model("tts-1"), AudioGenerationModel)
