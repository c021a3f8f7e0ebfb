"""Cohere (API v2): chat with tools, native documents and streaming; text and image embeddings.

    from rig_sync.providers import cohere
    client = cohere.Client.from_env()                  # COHERE_API_KEY (or CO_API_KEY), COHERE_BASE_URL
    client.completion_model("command-a-03-2025")       # POST /v2/chat
    client.embedding_model("embed-english-v3.0")       # POST /v2/embed, input_type "search_document"
    client.embedding_model("embed-english-v3.0", input_type="search_query")

A finish_reason of ERROR or TIMEOUT raises `cohere.GenerationError`; HTTP 498 (deny-listed
content) raises `cohere.ContentBlockedError`.
"""

from __future__ import annotations

from typing import ClassVar

from ..client import CompletionClient, EmbeddingsClient, ProviderClient
from ._cohere_chat import CompletionModel, ContentBlockedError, GenerationError
from ._cohere_embed import INPUT_TYPES, KNOWN_NDIMS, EmbeddingModel

__all__ = ["Client", "ClientBuilder", "CompletionModel", "EmbeddingModel", "GenerationError",
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


class Client(ProviderClient, CompletionClient, EmbeddingsClient):
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


ClientBuilder = Client.Builder
