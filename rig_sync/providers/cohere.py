"""Cohere (API v2): chat with tools, native documents and streaming; text and image embeddings.

    from rig_sync.providers import cohere
    client = cohere.Client.from_env()                  # COHERE_API_KEY (or CO_API_KEY), COHERE_BASE_URL
    client.completion_model("command-a-03-2025")       # POST /v2/chat
    client.embedding_model("embed-english-v3.0")       # POST /v2/embed, input_type "search_document"
    client.embedding_model("embed-english-v3.0", input_type="search_query")
    client.rerank_model("rerank-v3.5").rerank("query", ["doc a", "doc b"], top_k=1)   # POST /v2/rerank
    client.list_models()                               # GET /v1/models, every page; client.verify() asks for one

A finish_reason of ERROR or TIMEOUT raises `cohere.GenerationError`; HTTP 498 (deny-listed
content) raises `cohere.ContentBlockedError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from ..client import CompletionClient, EmbeddingsClient, ModelInfo, ModelListingClient, ProviderClient, RerankClient
from ..client.capabilities import entries, next_token, paged
from ..errors import ResponseDecodeError
from ..rerank import RerankResult, checked_input, ranked
from ._cohere_chat import CompletionModel, ContentBlockedError, GenerationError
from ._cohere_embed import INPUT_TYPES, KNOWN_NDIMS, EmbeddingModel
from ._model import ModelView

__all__ = ["Client", "ClientBuilder", "CompletionModel", "EmbeddingModel", "RerankModel", "GenerationError",
           "ContentBlockedError", "INPUT_TYPES", "KNOWN_NDIMS"]

# Model names, for convenience and typo-safety.
COMMAND_A = "command-a-03-2025"
COMMAND_R_PLUS = "command-r-plus-08-2024"
COMMAND_R = "command-r-08-2024"
COMMAND_R7B = "command-r7b-12-2024"
EMBED_V4 = "embed-v4.0"
EMBED_ENGLISH_V3 = "embed-english-v3.0"
EMBED_MULTILINGUAL_V3 = "embed-multilingual-v3.0"
EMBED_ENGLISH_LIGHT_V3 = "embed-english-light-v3.0"
EMBED_MULTILINGUAL_LIGHT_V3 = "embed-multilingual-light-v3.0"
RERANK_V3_5 = "rerank-v3.5"


class RerankModel(ModelView):
    """`POST {base_url}/v2/rerank`: `{model, query, documents, top_n}` -> `{results: [{index,
    relevance_score}], meta: {billed_units: {search_units}}}` (search units are not tokens: no
    usage is reported)."""

    path = "/v2/rerank"

    def rerank(self, query: str, documents: Sequence[str], *, top_k: int | None = None) -> list[RerankResult]:
        """The documents ordered by relevance to `query`, best first (the `top_k` best, if given)."""
        texts = checked_input(query, documents, top_k)
        body: dict[str, Any] = {"model": self.model, "query": query, "documents": texts}
        if top_k is not None:
            body["top_n"] = top_k
        data = self._post(self.path, body, "rerank")
        results = data.get("results") if isinstance(data, dict) else None
        if not isinstance(results, list) or not all(
                isinstance(r, dict) and isinstance(r.get("index"), int) and isinstance(r.get("relevance_score"),
                                                                                     (int, float))
                for r in results):
            raise ResponseDecodeError(f"{self.provider} answered a rerank without results of index and "
                                      "relevance_score", provider=self.provider, field="results", body=data)
        return ranked(self.provider, texts, ((r["index"], r["relevance_score"]) for r in results),
                      field="results.index", body=data)


def _models_page(data: Any) -> tuple[list[ModelInfo], str | None]:
    """One page of `GET /v1/models`: `{models: [{name, context_length, endpoints}], next_page_token}`."""
    page = [ModelInfo.of(e, e["name"], context_length=e.get("context_length"))
            for e in entries(data, "models", "cohere") if isinstance(e.get("name"), str) and e["name"]]
    return page, next_token(data, "next_page_token")


class Client(ProviderClient, CompletionClient, EmbeddingsClient, RerankClient, ModelListingClient):
    """A Cohere client (`Authorization: Bearer <key>`)."""

    provider: ClassVar[str] = "cohere"
    default_base_url: ClassVar[str] = "https://api.cohere.com"
    env_api_key: ClassVar[tuple[str, ...]] = ("COHERE_API_KEY", "CO_API_KEY")  # CO_*: the SDK's names
    env_base_url: ClassVar[tuple[str, ...]] = ("CO_API_URL", "COHERE_BASE_URL")
    named_tool_choice: ClassVar[bool] = False  # a named tool goes as REQUIRED with only that tool

    def completion_model(self, model: str) -> CompletionModel:
        return CompletionModel(self, model)

    def embedding_model(self, model: str, ndims: int | None = None, *,
                        input_type: str = "search_document") -> EmbeddingModel:
        """`ndims` asks for shorter vectors (embed-v4: 256, 512, 1024 or 1536); `input_type` is
        one of `INPUT_TYPES`: what the texts will be used for."""
        return EmbeddingModel(self, model, ndims, input_type)

    def rerank_model(self, model: str) -> RerankModel:
        """A reranker on `POST {base_url}/v2/rerank` (e.g. "rerank-v3.5")."""
        return RerankModel(self, model)

    def list_models(self) -> list[ModelInfo]:
        """Every model (`GET /v1/models`, 1000 a page)."""
        return paged(lambda token: _models_page(self._get_json(
            "/v1/models", {"page_size": "1000", **({"page_token": token} if token else {})})))

    def verify(self) -> None:
        """One model's worth of `GET /v1/models`: None when the key works, `AuthenticationError` if not."""
        self._get_json("/v1/models", {"page_size": "1"})


ClientBuilder = Client.Builder
