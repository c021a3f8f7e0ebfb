"""OpenAI's non-chat endpoints: embeddings, transcriptions, image generation and speech.

Shared by OpenAI, Azure OpenAI and the compatible providers that offer these endpoints.
"""

from __future__ import annotations

import base64
import binascii
import sys
from array import array
from collections.abc import Mapping
from typing import Any

import attrs

from .. import _json, _wire
from .._checks import whole
from ..audio_generation import AudioGenerationRequest, AudioGenerationResponse, BaseAudioGenerationModel
from ..client.capabilities import Prepared
from ..completion import Usage, deep_merge
from ..embeddings import BaseEmbeddingModel
from ..errors import ResponseDecodeError, StreamError
from ..http import Response
from ..image_generation import BaseImageGenerationModel, ImageGenerationRequest, ImageGenerationResponse
from ..sse import iter_sse
from ..transcription import BaseTranscriptionModel, TranscriptionRequest, TranscriptionResponse
from ._compat import KNOWN_NDIMS
from ._model import ModelView

__all__ = ["EmbeddingModel", "TranscriptionModel", "ImageGenerationModel", "AudioGenerationModel",
           "decode_vector", "decode_b64"]

converter = _wire.make_converter()

def decode_vector(value: Any) -> list[float]:
    """A vector from base64 little-endian float32 (what we ask for) or a JSON list of numbers."""
    if isinstance(value, str):
        raw = base64.b64decode(value)
        if len(raw) % 4:
            raise ValueError(f"base64 embedding has {len(raw)} bytes, not a multiple of 4")
        floats = array("f")
        floats.frombytes(raw)
        if sys.byteorder == "big":  # pragma: no cover - the wire format is little-endian
            floats.byteswap()
        return floats.tolist()
    if isinstance(value, list):
        return [float(v) for v in value]
    raise ValueError(f"embedding is {type(value).__name__}, expected base64 text or a list of numbers")


def decode_b64(value: str, provider: str, field: str, body: Any = None) -> bytes:
    """Media bytes from a base64 answer field; anything else is a `ResponseDecodeError` naming the field."""
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if not raw:
        raise ResponseDecodeError(f"{provider} {field} is not base64 data: {value[:40]!r}", provider=provider,
                                  field=field, body=body)
    return raw


def _sse_body(resp: Response) -> list[dict[str, Any]] | None:
    """The JSON events of a body sent as SSE (speech with `stream_format=sse`, transcription with
    `stream=true`), read whole; None for any other body."""
    if not resp.headers.get("content-type", "").startswith("text/event-stream"):
        return None
    events: list[dict[str, Any]] = []
    for event in iter_sse([resp.content]):
        if event.data == "[DONE]":
            break
        try:
            data = _json.loads(event.data)
        except _json.JSONDecodeError:
            raise StreamError(f"{resp.provider} sent a stream event that is not JSON: {event.data[:200]!r}",
                              provider=resp.provider) from None
        if not isinstance(data, dict) or "error" in data:
            raise StreamError(f"{resp.provider} reported an error mid-stream: {str(data)[:300]}",
                              provider=resp.provider, body=data)
        events.append(data)
    return events


def _final_event(events: list[dict[str, Any]], kind: str, provider: str) -> dict[str, Any]:
    """The stream's closing `kind` event; a stream without one was cut short."""
    for event in events:
        if event.get("type") == kind:
            return event
    raise StreamError(f"{provider} stream ended before {kind}: the answer is incomplete", provider=provider,
                      retryable=True)


@attrs.frozen
class _EmbeddingItem:
    embedding: list[float]
    index: int = 0


@_wire.lenient
@attrs.frozen
class _EmbeddingUsage:
    prompt_tokens: _wire.Tokens = 0
    total_tokens: _wire.Tokens = 0


@attrs.frozen
class _EmbeddingResponse:
    data: list[_EmbeddingItem]
    usage: _EmbeddingUsage | None = None


converter.register_structure_hook_func(
    lambda t: t == list[float], lambda value, _: decode_vector(value)
)


class EmbeddingModel(ModelView, BaseEmbeddingModel):
    """`POST {base_url}/embeddings`, asking for base64 vectors (2.5x faster than float JSON).

    Compatible providers differ in small ways, passed in by their client: `encoding_format=None`
    asks for the default float lists (for APIs that do not document base64), `dimensions_field`
    names the size parameter (Mistral: `output_dimension`), `known_ndims` maps model names to sizes.
    """

    path = "/embeddings"

    def __init__(self, client: Any, model: str, ndims: int | None = None, max_documents: int = 2048, *,
                 encoding_format: str | None = "base64", dimensions_field: str = "dimensions",
                 known_ndims: Mapping[str, int] = KNOWN_NDIMS) -> None:
        super().__init__(client, model)
        if ndims is not None:
            whole(ndims, "ndims", minimum=1)
        self._requested_ndims = ndims
        self._ndims = ndims or known_ndims.get(model)
        self._max_documents = max_documents
        self.encoding_format = encoding_format
        self.dimensions_field = dimensions_field

    def prepare_embeddings(self, texts: list[str]) -> Prepared:
        """The call that embeds `texts` (a batch job's line holds the same); its `parse` gives the vectors."""
        body: dict[str, Any] = {"model": self.model, "input": texts}
        if self.encoding_format:
            body["encoding_format"] = self.encoding_format
        if self._requested_ndims:
            body[self.dimensions_field] = self._requested_ndims
        return Prepared(self.path, body, self._vectors)

    def _embed_chunk(self, texts: list[str]) -> list[list[float]]:
        call = self.prepare_embeddings(texts)
        return self._vectors(self._post(call.path, call.body, "embeddings"), self.provider)

    def _vectors(self, data: Any, provider: str) -> list[list[float]]:
        resp = _wire.decode(converter, data, _EmbeddingResponse, provider)
        if resp.usage is not None:
            self._report("embeddings", Usage(resp.usage.prompt_tokens, 0,
                                             resp.usage.total_tokens or resp.usage.prompt_tokens))
        items = sorted(resp.data, key=lambda item: item.index)
        if items and self._ndims is None:
            self._ndims = len(items[0].embedding)
        return [item.embedding for item in items]


class TranscriptionModel(ModelView, BaseTranscriptionModel):
    """`POST {base_url}/audio/transcriptions` (multipart upload)."""

    path = "/audio/transcriptions"

    def transcription(self, request: TranscriptionRequest) -> TranscriptionResponse:
        request = self._expect(request, TranscriptionRequest)
        fields: dict[str, Any] = {"model": self.model}
        for name in ("language", "prompt", "temperature"):
            value = getattr(request, name)
            if value is not None:
                fields[name] = str(value)
        fields.update({k: str(v) for k, v in (request.additional_params or {}).items()})
        files = {"file": (request.filename, request.data)}
        resp = self._send("POST", self.path, "transcription", data=fields, files=files)
        events = _sse_body(resp)
        if events is not None:
            done = _final_event(events, "transcript.text.done", self.provider)
            if isinstance(done.get("text"), str):
                return TranscriptionResponse(done["text"], events)
            raise ResponseDecodeError(f"{self.provider} transcript.text.done has no text", provider=self.provider,
                                      field="text", body=done)
        if fields.get("response_format") in ("text", "srt", "vtt"):
            text = resp.content.decode("utf-8", "replace")
            return TranscriptionResponse(text, text)
        data = resp.json()
        if not isinstance(data, dict) or not isinstance(data.get("text"), str):
            raise ResponseDecodeError(f"{self.provider} transcription has no text", provider=self.provider,
                                      field="text", body=data)
        return TranscriptionResponse(data["text"], data)


@attrs.frozen
class _ImageItem:
    b64_json: str | None = None
    url: str | None = None
    revised_prompt: str | None = None


@attrs.frozen
class _ImageResponse:
    data: list[_ImageItem]


class ImageGenerationModel(ModelView, BaseImageGenerationModel):
    """`POST {base_url}/images/generations`, returning the image bytes."""

    path = "/images/generations"

    def image_generation(self, request: ImageGenerationRequest) -> ImageGenerationResponse:
        request = self._expect(request, ImageGenerationRequest)
        body: dict[str, Any] = {"model": self.model, "prompt": request.prompt,
                                "size": f"{request.width}x{request.height}"}
        if self.model.startswith("dall-e"):  # gpt-image models always answer in base64 and reject the field
            body["response_format"] = "b64_json"
        body = deep_merge(body, request.additional_params)
        data = self._post(self.path, body, "image_generation")
        resp = _wire.decode(converter, data, _ImageResponse, self.provider)
        if not resp.data:
            raise ResponseDecodeError(f"{self.provider} returned no image", provider=self.provider,
                                      field="data", body=data)
        item = resp.data[0]
        if item.b64_json:
            return ImageGenerationResponse(decode_b64(item.b64_json, self.provider, "data[0].b64_json", data), data)
        if item.url:  # fetched without our credentials: it is another host
            image = self._send("GET", item.url, "image_generation")
            return ImageGenerationResponse(image.content, data)
        raise ResponseDecodeError(f"{self.provider} image has neither b64_json nor url", provider=self.provider,
                                  field="data[0].b64_json", body=data)


class AudioGenerationModel(ModelView, BaseAudioGenerationModel):
    """`POST {base_url}/audio/speech`, returning the audio bytes."""

    path = "/audio/speech"

    def audio_generation(self, request: AudioGenerationRequest) -> AudioGenerationResponse:
        request = self._expect(request, AudioGenerationRequest)
        body = deep_merge({"model": self.model, "input": request.text, "voice": request.voice,
                           "speed": request.speed}, request.additional_params)
        resp = self._send("POST", self.path, "audio_generation", json=body)
        events = _sse_body(resp)
        if events is not None:  # stream_format=sse: base64 audio deltas, then speech.audio.done
            done = _final_event(events, "speech.audio.done", self.provider)
            try:
                audio = b"".join(base64.b64decode(e.get("audio") or "", validate=True)
                                 for e in events if e.get("type") == "speech.audio.delta")
            except binascii.Error:
                raise ResponseDecodeError(f"{self.provider} sent audio that is not base64", provider=self.provider,
                                          field="audio") from None
            if not audio:
                raise ResponseDecodeError(f"{self.provider} streamed no audio", provider=self.provider, field="audio",
                                          body=done)
            return AudioGenerationResponse(audio, done, None)
        if not resp.content:
            raise ResponseDecodeError(f"{self.provider} returned empty audio", provider=self.provider, field="body")
        return AudioGenerationResponse(resp.content, None, resp.headers.get("content-type"))
