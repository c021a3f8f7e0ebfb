"""Cohere v2 embeddings (`POST /v2/embed`): texts in chunks of 96, and images."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from .. import _wire
from .._checks import whole
from ..completion import Usage
from ..embeddings import BaseEmbeddingModel
from ..errors import InvalidRequestError, ResponseDecodeError, UnsupportedFeature
from ..message import Image
from ._cohere_chat import content_checked
from ._model import ModelView

__all__ = ["EmbeddingModel", "INPUT_TYPES", "KNOWN_NDIMS"]

converter = _wire.make_converter()
# Vectors are the bulk of the body: one comprehension per vector instead of cattrs per float.
converter.register_structure_hook_func(lambda t: t == list[float], lambda value, _: [float(v) for v in value])

# What the texts are for; v3+ models embed a query differently from the documents it searches.
INPUT_TYPES = ("search_document", "search_query", "classification", "clustering")

# Known vector sizes, so `ndims` is right before the first request.
KNOWN_NDIMS = {
    "embed-v4.0": 1536,
    "embed-english-v3.0": 1024,
    "embed-multilingual-v3.0": 1024,
    "embed-english-light-v3.0": 384,
    "embed-multilingual-light-v3.0": 384,
}


@attrs.define
class _EmbedRequest:
    model: str
    input_type: str
    embedding_types: list[str] = attrs.field(factory=lambda: ["float"])
    texts: list[str] | None = None
    images: list[str] | None = None
    output_dimension: int | None = None


@_wire.lenient
@attrs.define
class _BilledUnits:
    input_tokens: _wire.Tokens = 0


@attrs.define
class _Meta:
    billed_units: _BilledUnits | None = None


@attrs.define
class _EmbedResponse:
    embeddings: dict[str, list[list[float]]]
    id: str | None = None
    meta: _Meta | None = None


class EmbeddingModel(ModelView, BaseEmbeddingModel):
    """`POST {base_url}/v2/embed`. `input_type` says what the texts are for (default
    "search_document"; use `with_input_type("search_query")` for the queries you search with)."""

    path = "/v2/embed"
    _max_documents = 96

    def __init__(self, client: Any, model: str, ndims: int | None = None,
                 input_type: str = "search_document") -> None:
        super().__init__(client, model)
        if ndims is not None:
            whole(ndims, "ndims", minimum=1)
        if input_type not in INPUT_TYPES:
            raise ValueError(f"{self.provider}: input_type must be one of {', '.join(INPUT_TYPES)}, "
                             f"not {input_type!r}")
        self.input_type = input_type
        self._requested_ndims = ndims
        self._ndims = ndims or KNOWN_NDIMS.get(model)

    def with_input_type(self, input_type: str) -> EmbeddingModel:
        """The same model embedding for another purpose (e.g. "search_query")."""
        return EmbeddingModel(self.client, self.model, self._requested_ndims, input_type)

    def _embed(self, request: _EmbedRequest, count: int) -> list[list[float]]:
        request.output_dimension = self._requested_ndims
        with content_checked():
            data = self._post(self.path, _wire.encode(converter, request), "embeddings")
        resp = _wire.decode(converter, data, _EmbedResponse, self.provider)
        billed = resp.meta.billed_units if resp.meta is not None else None
        if billed is not None:
            self._report("embeddings", Usage(billed.input_tokens, 0, billed.input_tokens))
        vectors = resp.embeddings.get("float")
        if vectors is None:
            raise ResponseDecodeError(f"{self.provider} answered without float embeddings",
                                      provider=self.provider, field="embeddings.float", body=data)
        if len(vectors) != count:
            raise ResponseDecodeError(f"asked for {count} embeddings, got {len(vectors)}",
                                      provider=self.provider, field="embeddings.float", body=data)
        if vectors and self._ndims is None:
            self._ndims = len(vectors[0])
        return vectors

    def _embed_chunk(self, texts: list[str]) -> list[list[float]]:
        return self._embed(_EmbedRequest(self.model, self.input_type, texts=texts), len(texts))

    def embed_images(self, images: Sequence[Image]) -> list[list[float]]:
        """One vector per image, in order. Cohere takes images inline (`Image.from_bytes`), as
        data URLs; v3 models take one image per request, embed-v4 up to 96."""
        if isinstance(images, Image) or not isinstance(images, Sequence):
            raise TypeError("embed_images takes a list of rig_sync.message.Image")
        if not images:
            raise InvalidRequestError("embed_images needs at least one image")
        urls: list[str] = []
        for i, image in enumerate(images):
            if not isinstance(image, Image):
                raise TypeError(f"images[{i}] is {type(image).__name__}, not rig_sync.message.Image")
            url = image.data_url()
            if not url.startswith("data:"):
                raise UnsupportedFeature(f"{self.provider} embeds inline images only (data URLs); "
                                         f"images[{i}] is a link: pass the bytes with Image.from_bytes")
            urls.append(url)
        size = 1 if "v3" in self.model else self._max_documents
        out: list[list[float]] = []
        for start in range(0, len(urls), size):
            chunk = urls[start:start + size]
            out.extend(self._embed(_EmbedRequest(self.model, "image", images=chunk), len(chunk)))
        return out
