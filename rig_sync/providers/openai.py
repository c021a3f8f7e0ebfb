"""OpenAI: chat completions, the Responses API, embeddings, transcription, images, speech.

    from rig_sync.providers import openai
    client = openai.Client.from_env()            # OPENAI_API_KEY, OPENAI_BASE_URL
    client.completion_model("gpt-4o")            # Chat Completions
    client.responses_model("gpt-4o")             # Responses API
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from ..client import ProviderClient
from ._compat import (
    OpenAIAudioGeneration,
    OpenAICompletion,
    OpenAIEmbeddings,
    OpenAIImageGeneration,
    OpenAITranscription,
)
from ._openai_chat import ChatCompletionsModel
from ._openai_media import AudioGenerationModel, EmbeddingModel, ImageGenerationModel, TranscriptionModel
from ._openai_responses import ResponsesModel

__all__ = ["Client", "ClientBuilder", "ChatCompletionsModel", "ResponsesModel", "EmbeddingModel",
           "TranscriptionModel", "ImageGenerationModel", "AudioGenerationModel"]

# Model names, for convenience and typo-safety.
GPT_4O = "gpt-4o"
GPT_4O_MINI = "gpt-4o-mini"
GPT_4_1 = "gpt-4.1"
O3_MINI = "o3-mini"
TEXT_EMBEDDING_3_SMALL = "text-embedding-3-small"
TEXT_EMBEDDING_3_LARGE = "text-embedding-3-large"
WHISPER_1 = "whisper-1"
GPT_IMAGE_1 = "gpt-image-1"
DALL_E_3 = "dall-e-3"
TTS_1 = "tts-1"


class Client(ProviderClient, OpenAICompletion, OpenAIEmbeddings, OpenAITranscription, OpenAIImageGeneration,
             OpenAIAudioGeneration):
    """An OpenAI client. Options: `organization`, `project` (sent as OpenAI-Organization/-Project)."""

    provider: ClassVar[str] = "openai"
    default_base_url: ClassVar[str] = "https://api.openai.com/v1"

    def _configure(self, options: Mapping[str, Any]) -> None:
        options = dict(options)
        self._org_headers = {
            header: options.pop(name)
            for name, header in (("organization", "OpenAI-Organization"), ("project", "OpenAI-Project"))
            if options.get(name)
        }
        super()._configure(options)

    def extra_headers(self) -> dict[str, str]:
        return dict(self._org_headers)

    def responses_model(self, model: str) -> ResponsesModel:
        """A chat model on the Responses API (`completion_model` uses Chat Completions)."""
        return ResponsesModel(self, model)


ClientBuilder = Client.Builder
