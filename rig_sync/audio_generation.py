"""Text to speech: request, builder, response, model protocol."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import attrs

from ._checks import number
from .errors import InvalidRequestError

__all__ = ["AudioGenerationRequest", "AudioGenerationResponse", "AudioGenerationModel", "DEFAULT_VOICE",
           "BaseAudioGenerationModel", "AudioGenerationRequestBuilder"]


def _text(_: Any, __: Any, value: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequestError("text to speak is empty")


def _speed(_: Any, __: Any, value: float) -> None:
    number(value, "speed", above=0)


def _voice(_: Any, __: Any, value: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequestError(f"voice must be a non-empty string (e.g. 'alloy'), not {value!r}")


# The voice a request gets when none is given (OpenAI's); providers with other voices replace it.
DEFAULT_VOICE = "alloy"


@attrs.frozen
class AudioGenerationRequest:
    text: str = attrs.field(validator=_text)
    voice: str = attrs.field(default=DEFAULT_VOICE, validator=_voice)
    speed: float = attrs.field(default=1.0, validator=_speed)
    additional_params: dict[str, Any] | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.instance_of(dict))
    )


@attrs.frozen
class AudioGenerationResponse:
    audio: bytes = attrs.field(repr=lambda b: f"<{len(b)} bytes>")
    raw_response: Any = attrs.field(default=None, eq=False, repr=False)
    content_type: str | None = None


@runtime_checkable
class AudioGenerationModel(Protocol):
    provider: str
    model: str

    def audio_generation(self, request: AudioGenerationRequest) -> AudioGenerationResponse: ...

    def audio_generation_request(self) -> AudioGenerationRequestBuilder: ...


class BaseAudioGenerationModel:
    provider: str
    model: str

    def audio_generation(self, request: AudioGenerationRequest) -> AudioGenerationResponse:
        raise NotImplementedError

    def audio_generation_request(self) -> AudioGenerationRequestBuilder:
        return AudioGenerationRequestBuilder(self)


class AudioGenerationRequestBuilder:
    """`model.audio_generation_request().text("Hello").voice("alloy").send()`."""

    def __init__(self, model: AudioGenerationModel) -> None:
        self._model = model
        self._fields: dict[str, Any] = {}

    def text(self, text: str) -> AudioGenerationRequestBuilder:
        self._fields["text"] = text
        return self

    def voice(self, voice: str) -> AudioGenerationRequestBuilder:
        self._fields["voice"] = voice
        return self

    def speed(self, speed: float) -> AudioGenerationRequestBuilder:
        self._fields["speed"] = speed
        return self

    def additional_params(self, params: dict[str, Any]) -> AudioGenerationRequestBuilder:
        self._fields["additional_params"] = params
        return self

    def build(self) -> AudioGenerationRequest:
        if "text" not in self._fields:
            raise InvalidRequestError("no text: call .text(words) first")
        return AudioGenerationRequest(**self._fields)

    def send(self) -> AudioGenerationResponse:
        return self._model.audio_generation(self.build())
