"""Gemini embeddings (`embedContent`, `batchEmbedContents`) and transcription (audio sent inline
to `generateContent` with an instruction to transcribe it)."""

from __future__ import annotations

import base64
from typing import Any

import attrs

from .. import _wire
from .._checks import whole
from ..completion import deep_merge
from ..embeddings import BaseEmbeddingModel
from ..errors import InvalidRequestError, UnsupportedFeature
from ..transcription import BaseTranscriptionModel, TranscriptionRequest, TranscriptionResponse
from ._gemini_chat import (
    AUDIO_MIME_TYPES,
    ModelPaths,
    WireBlob,
    WireContent,
    WirePart,
    converter,
    parse_response,
)

__all__ = ["EmbeddingModel", "TranscriptionModel", "KNOWN_NDIMS"]

# Known vector sizes, so `ndims` is right before the first request.
KNOWN_NDIMS = {"gemini-embedding-001": 3072, "text-embedding-004": 768, "embedding-001": 768}
# Inline data rides in the JSON body, which Gemini caps at 20 MB; larger audio needs the Files API.
_MAX_INLINE_BYTES = 20 * 1024 * 1024


@attrs.define
class _EmbedRequest:
    model: str
    content: WireContent
    outputDimensionality: int | None = None
    taskType: str | None = None


@attrs.define
class _Values:
    values: list[float]


@attrs.define
class _EmbedResponse:
    embedding: _Values


@attrs.define
class _BatchResponse:
    embeddings: list[_Values]


class EmbeddingModel(ModelPaths, BaseEmbeddingModel):
    """Gemini embeddings. `ndims` asks for shorter vectors (`outputDimensionality`); `task_type`
    (e.g. "RETRIEVAL_DOCUMENT", "RETRIEVAL_QUERY") tunes them for a use."""

    _max_documents = 100  # the documented most requests per batchEmbedContents call

    def __init__(self, client: Any, model: str, ndims: int | None = None, *, task_type: str | None = None) -> None:
        super().__init__(client, model)
        if ndims is not None:
            whole(ndims, "ndims", minimum=1)
        if task_type is not None and not (isinstance(task_type, str) and task_type):
            raise InvalidRequestError(f"task_type must be a non-empty string, not {task_type!r}")
        self._requested_ndims = ndims
        self._ndims = ndims or KNOWN_NDIMS.get(model.rpartition("/")[2])
        self.task_type = task_type

    def _request(self, text: str) -> _EmbedRequest:
        resource = self.model if "/" in self.model else f"models/{self.model}"
        return _EmbedRequest(resource, WireContent([WirePart(text=text)]), self._requested_ndims, self.task_type)

    def _embed_chunk(self, texts: list[str]) -> list[list[float]]:
        if len(texts) == 1:
            body = _wire.encode(converter, self._request(texts[0]))
            data = self._post(self.method_path("embedContent"), body, "embeddings")
            vectors = [_wire.decode(converter, data, _EmbedResponse, self.provider).embedding.values]
        else:
            body = {"requests": [_wire.encode(converter, self._request(t)) for t in texts]}
            data = self._post(self.method_path("batchEmbedContents"), body, "embeddings")
            vectors = [e.values for e in _wire.decode(converter, data, _BatchResponse, self.provider).embeddings]
        if self._ndims is None and vectors:
            self._ndims = len(vectors[0])
        return vectors


def _instruction(request: TranscriptionRequest) -> str:
    text = "Generate a transcript of the speech."
    if request.language:
        text += f" The speech is in {request.language}; write the transcript in that language."
    if request.prompt:
        text += f"\n\nContext that may help with names and spelling: {request.prompt}"
    return text


class TranscriptionModel(ModelPaths, BaseTranscriptionModel):
    """Speech to text with a Gemini model: the audio goes inline to `generateContent`."""

    def transcription(self, request: TranscriptionRequest) -> TranscriptionResponse:
        request = self._expect(request, TranscriptionRequest)
        extension = request.filename.rpartition(".")[2].lower() if "." in request.filename else ""
        mime = AUDIO_MIME_TYPES.get(extension)
        if mime is None:
            raise UnsupportedFeature(f"{self.provider}: cannot send {request.filename!r} as audio; name it with one "
                                     f"of the extensions {', '.join(sorted(AUDIO_MIME_TYPES))}")
        if len(request.data) > _MAX_INLINE_BYTES:
            raise InvalidRequestError(f"{self.provider}: audio of {len(request.data)} bytes is over the 20 MB inline "
                                      "limit; upload it with the Gemini Files API instead")
        audio = WireBlob(mime, base64.b64encode(request.data).decode("ascii"))
        parts = [WirePart(text=_instruction(request)), WirePart(inlineData=audio)]
        body: dict[str, Any] = {"contents": [_wire.encode(converter, WireContent(parts, "user"))]}
        if request.temperature is not None:
            body["generationConfig"] = {"temperature": request.temperature}
        body = deep_merge(body, request.additional_params)
        data = self._post(self.method_path("generateContent"), body, "transcription")
        response = parse_response(data, self.provider)
        self._report("transcription", response.usage)
        return TranscriptionResponse(response.text, data)
