"""Google Gemini (the Generative Language API): chat, streaming, tools, embeddings, transcription.

    from rig_sync.providers import gemini
    client = gemini.Client.from_env()            # GEMINI_API_KEY (or GOOGLE_API_KEY), GEMINI_BASE_URL
    client.completion_model(gemini.GEMINI_2_5_FLASH).completion_request("Hi").send()
    client.embedding_model(gemini.GEMINI_EMBEDDING_001, 768, task_type="RETRIEVAL_DOCUMENT")
    gemini.Client("key", api_version="v1")       # default "v1beta"
    client.list_models()                         # GET /v1beta/models, every page; client.verify() asks for one

The key travels in the `x-goog-api-key` header, never in the URL. Blocked prompts and answers
raise `ContentBlockedError`; answers that stop with nothing in them raise `GenerationError`.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

import attrs

from ..auth import Auth, HeaderAuth
from ..client import (
    CompletionClient,
    EmbeddingsClient,
    ModelInfo,
    ModelListingClient,
    ProviderClient,
    ProviderOptions,
    TranscriptionClient,
    checked,
    option,
)
from ..client.capabilities import entries, next_token, paged
from ..http import Conventions
from ._gemini_batch import GeminiBatchJobs
from ._gemini_chat import CONVENTIONS, CompletionModel, ContentBlockedError, GenerationError
from ._gemini_media import EmbeddingModel, TranscriptionModel

__all__ = ["Client", "ClientBuilder", "GeminiOptions", "CompletionModel", "EmbeddingModel", "TranscriptionModel",
           "ContentBlockedError", "GenerationError"]

# Model names, for convenience and typo-safety.
GEMINI_2_5_PRO = "gemini-2.5-pro"
GEMINI_2_5_FLASH = "gemini-2.5-flash"
GEMINI_2_5_FLASH_LITE = "gemini-2.5-flash-lite"
GEMINI_2_0_FLASH = "gemini-2.0-flash"
GEMINI_EMBEDDING_001 = "gemini-embedding-001"
TEXT_EMBEDDING_004 = "text-embedding-004"

_API_VERSION = re.compile(r"v\d+(alpha|beta)?\d*")


def _models_page(data: Any) -> tuple[list[ModelInfo], str | None]:
    """One page of `GET /{version}/models`: `{models: [{name: "models/…", displayName, description,
    inputTokenLimit}], nextPageToken}`; the id is the name without its `models/`."""
    page = [ModelInfo.of(e, e["name"].removeprefix("models/"), name=e.get("displayName"),
                         description=e.get("description"), context_length=e.get("inputTokenLimit"))
            for e in entries(data, "models", "gemini") if isinstance(e.get("name"), str) and e["name"]]
    return page, next_token(data, "nextPageToken")


@attrs.frozen(kw_only=True)
class GeminiOptions(ProviderOptions):
    """`api_version`: the URL's version segment."""

    api_version: str = option("v1beta", validator=checked(_API_VERSION.fullmatch, "like 'v1beta' or 'v1'"))


class Client(ProviderClient, CompletionClient, EmbeddingsClient, TranscriptionClient, GeminiBatchJobs,
             ModelListingClient):
    """A Gemini client. Option: `api_version` (the URL's version segment, default "v1beta")."""

    provider: ClassVar[str] = "gemini"
    default_base_url: ClassVar[str] = "https://generativelanguage.googleapis.com"
    env_api_key: ClassVar[tuple[str, ...]] = ("GEMINI_API_KEY", "GOOGLE_API_KEY")
    env_base_url: ClassVar[tuple[str, ...]] = ("GEMINI_BASE_URL", "GOOGLE_GEMINI_BASE_URL")  # 2nd: google-genai
    conventions: ClassVar[Conventions] = CONVENTIONS

    Options = GeminiOptions
    options: GeminiOptions

    @property
    def api_version(self) -> str:
        return self.options.api_version

    def make_auth(self, api_key: str) -> Auth:
        return HeaderAuth("x-goog-api-key", api_key)

    def completion_model(self, model: str) -> CompletionModel:
        return CompletionModel(self, model)

    def embedding_model(self, model: str, ndims: int | None = None, *,
                        task_type: str | None = None) -> EmbeddingModel:
        return EmbeddingModel(self, model, ndims, task_type=task_type)

    def transcription_model(self, model: str) -> TranscriptionModel:
        return TranscriptionModel(self, model)

    def list_models(self) -> list[ModelInfo]:
        """Every model (`GET /{api_version}/models`, 1000 a page)."""
        return paged(lambda token: _models_page(self._get_json(
            f"/{self.api_version}/models", {"pageSize": "1000", **({"pageToken": token} if token else {})})))

    def verify(self) -> None:
        """One model's worth of the list: None when the key works, `AuthenticationError` (Gemini's
        API_KEY_INVALID) if not."""
        self._get_json(f"/{self.api_version}/models", {"pageSize": "1"})


ClientBuilder = Client.Builder
