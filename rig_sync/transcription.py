"""Speech to text: request, builder (with `load_file`), response, model protocol."""

from __future__ import annotations

import os
from typing import Any, Protocol, runtime_checkable

import attrs

from .errors import InvalidRequestError

__all__ = ["TranscriptionRequest", "TranscriptionResponse", "TranscriptionModel",
           "BaseTranscriptionModel", "TranscriptionRequestBuilder"]


def _audio_bytes(_: Any, __: Any, value: bytes) -> None:
    if not isinstance(value, (bytes, bytearray)):
        raise TypeError(f"audio data must be bytes, not {type(value).__name__}")
    if not value:
        raise InvalidRequestError("audio data is empty; load a file with audio in it")


def _filename(_: Any, __: Any, value: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequestError("filename must be a non-empty string (providers use its extension)")


@attrs.frozen
class TranscriptionRequest:
    data: bytes = attrs.field(validator=_audio_bytes, repr=lambda b: f"<{len(b)} bytes>")
    filename: str = attrs.field(default="audio.mp3", validator=_filename)
    language: str | None = None
    prompt: str | None = None
    temperature: float | None = None
    additional_params: dict[str, Any] | None = None


@attrs.frozen
class TranscriptionResponse:
    text: str
    raw_response: Any = attrs.field(default=None, eq=False, repr=False)


@runtime_checkable
class TranscriptionModel(Protocol):
    provider: str
    model: str

    def transcription(self, request: TranscriptionRequest) -> TranscriptionResponse: ...


class BaseTranscriptionModel:
    provider: str
    model: str

    def transcription(self, request: TranscriptionRequest) -> TranscriptionResponse:
        raise NotImplementedError

    def transcription_request(self) -> TranscriptionRequestBuilder:
        return TranscriptionRequestBuilder(self)


class TranscriptionRequestBuilder:
    """`model.transcription_request().load_file("a.mp3").language("en").send()`."""

    def __init__(self, model: TranscriptionModel) -> None:
        self._model = model
        self._fields: dict[str, Any] = {}

    def data(self, data: bytes) -> TranscriptionRequestBuilder:
        self._fields["data"] = data
        return self

    def filename(self, filename: str) -> TranscriptionRequestBuilder:
        self._fields["filename"] = filename
        return self

    def load_file(self, path: str | os.PathLike[str]) -> TranscriptionRequestBuilder:
        """Read the audio from `path`; its base name becomes the filename."""
        try:
            with open(path, "rb") as fh:
                self._fields["data"] = fh.read()
        except OSError as exc:
            raise InvalidRequestError(f"cannot read audio file {os.fspath(path)!r}: {exc.strerror}") from None
        self._fields["filename"] = os.path.basename(os.fspath(path))
        return self

    def language(self, language: str) -> TranscriptionRequestBuilder:
        self._fields["language"] = language
        return self

    def prompt(self, prompt: str) -> TranscriptionRequestBuilder:
        self._fields["prompt"] = prompt
        return self

    def temperature(self, temperature: float) -> TranscriptionRequestBuilder:
        self._fields["temperature"] = temperature
        return self

    def additional_params(self, params: dict[str, Any]) -> TranscriptionRequestBuilder:
        self._fields["additional_params"] = params
        return self

    def build(self) -> TranscriptionRequest:
        if "data" not in self._fields:
            raise InvalidRequestError("no audio: call .data(bytes) or .load_file(path) first")
        return TranscriptionRequest(**self._fields)

    def send(self) -> TranscriptionResponse:
        return self._model.transcription(self.build())
