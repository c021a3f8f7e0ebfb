"""Voyage AI: embeddings (`POST /embeddings`) and reranking (`POST /rerank`).

    from rig_sync.providers import voyageai
    client = voyageai.Client.from_env()                  # VOYAGE_API_KEY, VOYAGEAI_BASE_URL / VOYAGE_BASE_URL
    docs = client.embedding_model("voyage-3")            # input_type "document" by default
    query = docs.with_input_type("query")                # for the text you search with
    client.rerank_model("rerank-2").rerank("query", ["doc a", "doc b"], top_k=1)   # rig_sync.rerank.RerankResult

Batches hold at most 128 texts: the limit the Voyage API spec documents for every model (newer
models accept up to 1000, but also cap the tokens per request, which 128 texts rarely reach).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import attrs

from .. import _wire
from .._checks import whole
from ..client import EmbeddingsClient, ProviderClient, RerankClient
from ..completion import Usage
from ..embeddings import BaseEmbeddingModel
from ..errors import ResponseDecodeError
from ..rerank import RerankResult, checked_input, ranked
from ._model import ModelView

__all__ = ["Client", "ClientBuilder", "EmbeddingModel", "RerankModel", "RerankResult", "INPUT_TYPES", "KNOWN_NDIMS"]

VOYAGE_3 = "voyage-3"
VOYAGE_3_LITE = "voyage-3-lite"
VOYAGE_3_LARGE = "voyage-3-large"
VOYAGE_CODE_3 = "voyage-code-3"
VOYAGE_2 = "voyage-2"
RERANK_2 = "rerank-2"

KNOWN_NDIMS = {
    "voyage-3": 1024,
    "voyage-3-lite": 512,
    "voyage-3-large": 1024,
    "voyage-code-3": 1024,
    "voyage-2": 1024,
}

# None leaves the text as is; "query" and "document" prepend Voyage's retrieval prompts.
INPUT_TYPES = (None, "query", "document")

converter = _wire.make_converter()
# Vectors are the bulk of the body: one comprehension per vector instead of cattrs per float.
converter.register_structure_hook_func(lambda t: t == list[float], lambda value, _: [float(v) for v in value])


@attrs.define
class _EmbeddingsRequest:
    input: list[str]
    model: str
    input_type: str | None = None
    output_dimension: int | None = None


@attrs.define
class _EmbeddingItem:
    embedding: list[float]
    index: int = 0


@_wire.lenient
@attrs.define
class _Usage:
    total_tokens: _wire.Tokens = 0


@attrs.define
class _EmbeddingsResponse:
    data: list[_EmbeddingItem]
    usage: _Usage | None = None


@attrs.define
class _RerankRequest:
    query: str
    documents: list[str]
    model: str
    top_k: int | None = None


@attrs.define
class _RerankItem:
    index: int
    relevance_score: float


@attrs.define
class _RerankResponse:
    data: list[_RerankItem]
    usage: _Usage | None = None


class _VoyageModel(ModelView):
    def _report_tokens(self, capability: str, usage: _Usage | None) -> None:
        """Voyage counts input tokens only (`usage.total_tokens`)."""
        if usage is not None:
            self._report(capability, Usage(usage.total_tokens, 0, usage.total_tokens))


class EmbeddingModel(_VoyageModel, BaseEmbeddingModel):
    """`POST {base_url}/embeddings`, in batches of 128 texts."""

    path = "/embeddings"
    _max_documents = 128

    def __init__(self, client: Any, model: str, ndims: int | None = None,
                 input_type: str | None = "document") -> None:
        super().__init__(client, model)
        if ndims is not None:
            whole(ndims, "ndims", minimum=1)
        if input_type not in INPUT_TYPES:
            raise ValueError(f"{self.provider}: input_type must be 'query', 'document' or None, not {input_type!r}")
        self.input_type = input_type
        self._requested_ndims = ndims
        self._ndims = ndims or KNOWN_NDIMS.get(model)

    def with_input_type(self, input_type: str | None) -> EmbeddingModel:
        """The same model embedding for another purpose ("query", "document" or None)."""
        return EmbeddingModel(self.client, self.model, self._requested_ndims, input_type)

    def _embed_chunk(self, texts: list[str]) -> list[list[float]]:
        request = _EmbeddingsRequest(texts, self.model, self.input_type, self._requested_ndims)
        data = self._post(self.path, _wire.encode(converter, request), "embeddings")
        resp = _wire.decode(converter, data, _EmbeddingsResponse, self.provider)
        self._report_tokens("embeddings", resp.usage)
        items = sorted(resp.data, key=lambda item: item.index)
        if [item.index for item in items] != list(range(len(items))):
            raise ResponseDecodeError(f"{self.provider} answered with embedding indexes that do not match the input",
                                      provider=self.provider, field="data.index", body=data)
        if items and self._ndims is None:
            self._ndims = len(items[0].embedding)
        return [item.embedding for item in items]


class RerankModel(_VoyageModel):
    """`POST {base_url}/rerank`: orders documents by relevance to a query."""

    path = "/rerank"

    def rerank(self, query: str, documents: Sequence[str], *, top_k: int | None = None) -> list[RerankResult]:
        """The documents ordered by relevance to `query`, best first (the `top_k` best, if given)."""
        texts = checked_input(query, documents, top_k)
        body = _wire.encode(converter, _RerankRequest(query, texts, self.model, top_k))
        data = self._post(self.path, body, "rerank")
        resp = _wire.decode(converter, data, _RerankResponse, self.provider)
        self._report_tokens("rerank", resp.usage)
        return ranked(self.provider, texts, ((item.index, item.relevance_score) for item in resp.data),
                      field="data.index", body=data)


class Client(ProviderClient, EmbeddingsClient, RerankClient):
    """A Voyage AI client (`Authorization: Bearer <key>`): embeddings and reranking. Voyage has no
    models endpoint: `list_models()` and `verify()` raise `UnsupportedFeature`."""

    provider: ClassVar[str] = "voyageai"
    default_base_url: ClassVar[str] = "https://api.voyageai.com/v1"
    env_api_key: ClassVar[tuple[str, ...]] = ("VOYAGE_API_KEY",)
    env_base_url: ClassVar[tuple[str, ...]] = ("VOYAGEAI_BASE_URL", "VOYAGE_BASE_URL")

    def embedding_model(self, model: str, ndims: int | None = None, *,
                        input_type: str | None = "document") -> EmbeddingModel:
        """`ndims` asks for shorter vectors where the model offers them (`output_dimension`)."""
        return EmbeddingModel(self, model, ndims, input_type)

    def rerank_model(self, model: str) -> RerankModel:
        """A reranker on `POST {base_url}/rerank` (e.g. "rerank-2")."""
        return RerankModel(self, model)


ClientBuilder = Client.Builder
