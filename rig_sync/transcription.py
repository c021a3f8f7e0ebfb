"""Speech to text: request, builder (with `load_file`), response, model protocol."""

from __future__ import annotations

import os
from typing import Any, Protocol, runtime_checkable

import attrs

from .completion import check_temperature
from .errors import InvalidRequestError

__all__ = ["TranscriptionRequest", "TranscriptionResponse", "TranscriptionModel",
           "BaseTranscriptionModel", "TranscriptionRequestBuilder"]


def _audio_bytes(value: bytes | bytearray | memoryview) -> bytes:
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise TypeError(f"audio data must be bytes, not {type(value).__name__}")
    if not value:
        raise InvalidRequestError("audio data is empty; load a file with audio in it")
    return bytes(value)  # an immutable copy: a frozen request must not change under a caller's bytearray


def _filename(_: Any, __: Any, value: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequestError("filename must be a non-empty string (providers use its extension)")


_optional_str = attrs.validators.optional(attrs.validators.instance_of(str))
_optional_dict = attrs.validators.optional(attrs.validators.instance_of(dict))


@attrs.frozen
class TranscriptionRequest:
    data: bytes = attrs.field(converter=_audio_bytes, repr=lambda b: f"<{len(b)} bytes>")
    filename: str = attrs.field(default="audio.mp3", validator=_filename)
    language: str | None = attrs.field(default=None, validator=_optional_str)
    prompt: str | None = attrs.field(default=None, validator=_optional_str)
    temperature: float | None = attrs.field(default=None, validator=check_temperature)
    additional_params: dict[str, Any] | None = attrs.field(default=None, validator=_optional_dict)


@attrs.frozen
class TranscriptionResponse:
    text: str
    raw_response: Any = attrs.field(default=None, eq=False, repr=False)


@runtime_checkable
class TranscriptionModel(Protocol):
    provider: str
    model: str

    def transcription(self, request: TranscriptionRequest) -> TranscriptionResponse: ...

    def transcription_request(self) -> TranscriptionRequestBuilder: ...


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
        if not isinstance(path, (str, os.PathLike)):  # an int would be taken as an open file descriptor
            raise TypeError(f"load_file takes a path (str or os.PathLike), not {type(path).__name__}")
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
