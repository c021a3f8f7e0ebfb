"""Ollama's native API: chat (`/api/chat`, NDJSON streaming) and embeddings (`/api/embed`).

    from rig_sync.providers import ollama
    client = ollama.Client()                        # http://localhost:11434, no key
    client = ollama.Client.from_env()               # OLLAMA_API_BASE_URL / OLLAMA_BASE_URL / OLLAMA_HOST,
                                                    # OLLAMA_API_KEY (Ollama cloud; sent as Bearer)
    client.completion_model("llama3.2").completion_request("Hi").send()
    client.embedding_model("all-minilm").embed_text("Hi")
    client.list_models()                            # GET /api/tags: the models pulled

A base URL may be given as Ollama's own tools take `OLLAMA_HOST`: `localhost:11434`, or a bare
host (the default port 11434 is added). Ollama's OpenAI-compatible `/v1` endpoints are served by
`openai.Client(base_url="http://localhost:11434/v1")`; this module speaks the native API.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

import attrs

from .. import _wire
from .._checks import whole
from ..auth import Auth
from ..client import Access, CompletionClient, EmbeddingsClient, ModelInfo, ModelListingClient, ProviderClient
from ..client.capabilities import entries
from ..completion import Usage
from ..embeddings import BaseEmbeddingModel
from ._model import ModelView
from ._ollama_chat import CompletionModel, NoAnswerError

__all__ = ["Client", "ClientBuilder", "CompletionModel", "EmbeddingModel", "LegacyEmbeddingModel",
           "NoAnswerError"]

DEFAULT_PORT = 11434

# Model names, for convenience and typo-safety.
LLAMA3_2 = "llama3.2"
QWEN3 = "qwen3"
NOMIC_EMBED_TEXT = "nomic-embed-text"
ALL_MINILM = "all-minilm"

converter = _wire.make_converter()


def _host_url(value: str) -> str:
    """`localhost:11434` or `example.com` as a URL (Ollama's OLLAMA_HOST form); URLs unchanged."""
    if "://" in value or not value.strip():
        return value
    host, slash, rest = value.strip().partition("/")
    if not re.search(r":\d+$", host):
        host = f"{host}:{DEFAULT_PORT}"
    return f"http://{host}{slash}{rest}"


@attrs.frozen
class _EmbedResponse:
    embeddings: list[list[float]]
    prompt_eval_count: _wire.Tokens | None = None


@attrs.frozen
class _LegacyEmbeddingResponse:
    embedding: list[float]


class _Embeddings(ModelView, BaseEmbeddingModel):
    path: str

    def __init__(self, client: Any, model: str, ndims: int | None = None) -> None:
        super().__init__(client, model)
        if ndims is not None:
            whole(ndims, "ndims", minimum=1)
        self._requested_ndims = ndims
        self._ndims = ndims

    def _learn_ndims(self, vectors: list[list[float]]) -> list[list[float]]:
        if vectors and self._ndims is None:
            self._ndims = len(vectors[0])
        return vectors


class EmbeddingModel(_Embeddings):
    """`POST {base_url}/api/embed` with a list of texts; `ndims` is sent as `dimensions`."""

    path = "/api/embed"
    _max_documents = 512

    def _embed_chunk(self, texts: list[str]) -> list[list[float]]:
        body: dict[str, Any] = {"model": self.model, "input": texts}
        if self._requested_ndims:
            body["dimensions"] = self._requested_ndims
        resp = _wire.decode(converter, self._post(self.path, body, "embeddings"), _EmbedResponse, self.provider)
        if resp.prompt_eval_count:
            self._report("embeddings", Usage(resp.prompt_eval_count, 0, resp.prompt_eval_count))
        return self._learn_ndims(resp.embeddings)


class LegacyEmbeddingModel(_Embeddings):
    """The deprecated `POST {base_url}/api/embeddings` (`{prompt}` -> `{embedding}`), one text per
    request, for Ollama servers older than `/api/embed` (before 0.3)."""

    path = "/api/embeddings"
    _max_documents = 1

    def _embed_chunk(self, texts: list[str]) -> list[list[float]]:
        data = self._post(self.path, {"model": self.model, "prompt": texts[0]}, "embeddings")
        return self._learn_ndims([_wire.decode(converter, data, _LegacyEmbeddingResponse, self.provider).embedding])


class Client(ProviderClient, CompletionClient, EmbeddingsClient, ModelListingClient):
    """An Ollama client. No key locally; with a key (Ollama cloud) it is sent as `Authorization: Bearer`."""

    provider: ClassVar[str] = "ollama"
    default_base_url: ClassVar[str] = f"http://localhost:{DEFAULT_PORT}"
    env_api_key: ClassVar[tuple[str, ...]] = ("OLLAMA_API_KEY",)
    env_base_url: ClassVar[tuple[str, ...]] = ("OLLAMA_API_BASE_URL", "OLLAMA_BASE_URL", "OLLAMA_HOST")
    requires_api_key: ClassVar[bool] = False

    def resolve_access(self, api_key: str | None, base_url: str | None, auth: Auth | None) -> Access:
        api_key, base_url, auth = super().resolve_access(api_key, base_url, auth)
        return Access(api_key, _host_url(base_url), auth)  # OLLAMA_HOST may be a bare host:port

    def completion_model(self, model: str) -> CompletionModel:
        return CompletionModel(self, model)

    def embedding_model(self, model: str, ndims: int | None = None) -> EmbeddingModel:
        return EmbeddingModel(self, model, ndims)

    def list_models(self) -> list[ModelInfo]:
        """The models the server has pulled (`GET /api/tags`); `verify()` asks for them too, which
        checks that the server answers (and, on Ollama cloud, the key)."""
        found = entries(self._get_json("/api/tags"), "models", self.provider)
        return [ModelInfo.of(e, e["name"], created=e.get("modified_at"))
                for e in found if isinstance(e.get("name"), str) and e["name"]]

    def legacy_embedding_model(self, model: str) -> LegacyEmbeddingModel:
        """An embedding model on the deprecated `/api/embeddings` endpoint (one text per request)."""
        return LegacyEmbeddingModel(self, model)


ClientBuilder = Client.Builder
