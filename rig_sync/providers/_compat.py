"""OpenAI-compatible providers as rows of one table.

A provider that speaks OpenAI's wire format is a `CompatProvider` row: its name, default base
URL, environment variables, the capabilities it really has, and small named deviations (no
tools, no streaming usage, extra headers). `client_class(row)` turns a row into a real client
class with exactly the capability mixins it claims; each `rig_sync.providers.<name>` module is
three lines that pick its row. Adding a compatible provider is adding a row.
"""

from __future__ import annotations

from typing import Any, ClassVar

import attrs

from ..client import (
    AudioGenerationClient,
    CompletionClient,
    EmbeddingsClient,
    ImageGenerationClient,
    ProviderClient,
    TranscriptionClient,
)
from ._openai_chat import ChatCompletionsModel
from ._openai_media import AudioGenerationModel, EmbeddingModel, ImageGenerationModel, TranscriptionModel

__all__ = ["CompatProvider", "ROWS", "MIXINS", "client_class"]


@attrs.frozen
class CompatProvider:
    name: str
    base_url: str
    capabilities: frozenset[str] = frozenset({"completion"})
    tools: bool = True
    streaming: bool = True
    stream_usage: bool = True  # accepts stream_options.include_usage
    done_marker: bool = True  # ends streams with `data: [DONE]`
    requires_api_key: bool = True
    env_api_key: tuple[str, ...] | None = None  # default: <NAME>_API_KEY
    env_base_url: tuple[str, ...] | None = None  # default: <NAME>_BASE_URL
    headers: tuple[tuple[str, str], ...] = ()
    max_documents: int = 2048


_C = frozenset({"completion"})
_CE = frozenset({"completion", "embeddings"})

ROWS: dict[str, CompatProvider] = {
    row.name: row
    for row in (
        CompatProvider("groq", "https://api.groq.com/openai/v1", frozenset({"completion", "transcription"})),
        CompatProvider("deepseek", "https://api.deepseek.com"),
        CompatProvider("xai", "https://api.x.ai/v1"),
        CompatProvider("together", "https://api.together.xyz/v1", _CE),
        CompatProvider("openrouter", "https://openrouter.ai/api/v1"),
        CompatProvider("perplexity", "https://api.perplexity.ai", tools=False, stream_usage=False),
        CompatProvider("moonshot", "https://api.moonshot.ai/v1"),
        CompatProvider("galadriel", "https://api.galadriel.com/v1/verified"),
        CompatProvider("mira", "https://api.mira.network/v1", tools=False, stream_usage=False),
        CompatProvider(
            "huggingface", "https://router.huggingface.co/v1",
            frozenset({"completion", "transcription", "image_generation"}),
        ),
        CompatProvider(
            "hyperbolic", "https://api.hyperbolic.xyz/v1",
            frozenset({"completion", "image_generation", "audio_generation"}), tools=False,
        ),
        CompatProvider(
            "llamacpp", "http://localhost:8080/v1", _CE, requires_api_key=False,
            env_base_url=("LLAMACPP_API_BASE_URL", "LLAMACPP_BASE_URL"), stream_usage=False,
        ),
    )
}


class OpenAICompletion(CompletionClient):
    """Chat models on `/chat/completions`."""

    stream_usage: ClassVar[bool] = True

    def completion_model(self, model: str) -> ChatCompletionsModel:
        return ChatCompletionsModel(self, model)


class OpenAIEmbeddings(EmbeddingsClient):
    """Embedding models on `/embeddings`."""

    max_documents: ClassVar[int] = 2048

    def embedding_model(self, model: str, ndims: int | None = None) -> EmbeddingModel:
        return EmbeddingModel(self, model, ndims, max_documents=self.max_documents)


class OpenAITranscription(TranscriptionClient):
    """Speech-to-text models on `/audio/transcriptions`."""

    def transcription_model(self, model: str) -> TranscriptionModel:
        return TranscriptionModel(self, model)


class OpenAIImageGeneration(ImageGenerationClient):
    """Image models on `/images/generations`."""

    def image_generation_model(self, model: str) -> ImageGenerationModel:
        return ImageGenerationModel(self, model)


class OpenAIAudioGeneration(AudioGenerationClient):
    """Speech models on `/audio/speech`."""

    def audio_generation_model(self, model: str) -> AudioGenerationModel:
        return AudioGenerationModel(self, model)


# The OpenAI implementation of each capability, shared by OpenAI itself and every row below.
MIXINS: dict[str, type] = {
    "completion": OpenAICompletion,
    "embeddings": OpenAIEmbeddings,
    "transcription": OpenAITranscription,
    "image_generation": OpenAIImageGeneration,
    "audio_generation": OpenAIAudioGeneration,
}


class _CompatClient(ProviderClient):
    row: ClassVar[CompatProvider]

    def extra_headers(self) -> dict[str, str]:
        return dict(self.row.headers)


def client_class(name: str, module: str) -> type[Any]:
    """The client class for the row `name`, with exactly the capability mixins it claims."""
    row = ROWS[name]
    mixins = tuple(mixin for cap, mixin in MIXINS.items() if cap in row.capabilities)
    namespace: dict[str, Any] = {
        "__module__": module,
        "__doc__": f"A {name} client (OpenAI-compatible API at {row.base_url}).",
        "provider": name,
        "default_base_url": row.base_url,
        "row": row,
        "requires_api_key": row.requires_api_key,
        "streams_completions": row.streaming,
        "supports_tools": row.tools,
        "stream_usage": row.stream_usage,
        "stream_done_marker": row.done_marker,
        "max_documents": row.max_documents,
    }
    if row.env_api_key is not None:
        namespace["env_api_key"] = row.env_api_key
    if row.env_base_url is not None:
        namespace["env_base_url"] = row.env_base_url
    return type("Client", (_CompatClient, *mixins), namespace)
