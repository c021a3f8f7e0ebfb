"""OpenAI: chat completions, the Responses API, embeddings, transcription, images, speech.

    from rig_sync.providers import openai
    client = openai.Client.from_env()            # OPENAI_API_KEY, OPENAI_BASE_URL
    client.completion_model("gpt-4o")            # Chat Completions
    client.responses_model("gpt-4o")             # Responses API
    client.list_models()                         # GET /models; client.verify() checks the key with it
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import attrs

from ..client import ProviderClient, ProviderOptions, option
from ._chat_dialect import OPENAI_DIALECT, ChatDialect
from ._compat import (
    OpenAIAudioGeneration,
    OpenAICompletion,
    OpenAIEmbeddings,
    OpenAIImageGeneration,
    OpenAIModelListing,
    OpenAITranscription,
    lazy_names,
)
from ._openai_batch import OpenAIBatchJobs

if TYPE_CHECKING:
    from ._openai_chat import ChatCompletionsModel
    from ._openai_media import AudioGenerationModel, EmbeddingModel, ImageGenerationModel, TranscriptionModel
    from ._openai_responses import ResponsesModel

# The model classes load with the first model made (or named here), not with this module.
__getattr__ = lazy_names(__name__, {
    "ChatCompletionsModel": "rig_sync.providers._openai_chat:ChatCompletionsModel",
    "ResponsesModel": "rig_sync.providers._openai_responses:ResponsesModel",
    **{name: f"rig_sync.providers._openai_media:{name}"
       for name in ("EmbeddingModel", "TranscriptionModel", "ImageGenerationModel", "AudioGenerationModel")},
})

__all__ = ["Client", "ClientBuilder", "OpenAIOptions", "ChatCompletionsModel", "ResponsesModel", "EmbeddingModel",
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


@attrs.frozen(kw_only=True)
class OpenAIOptions(ProviderOptions):
    """`organization` and `project`, sent as OpenAI-Organization / OpenAI-Project."""

    organization: str | None = option(env=("OPENAI_ORG_ID",))
    project: str | None = option(env=("OPENAI_PROJECT_ID",))


class Client(ProviderClient, OpenAICompletion, OpenAIEmbeddings, OpenAITranscription, OpenAIImageGeneration,
             OpenAIAudioGeneration, OpenAIModelListing, OpenAIBatchJobs):
    """An OpenAI client. Options: `organization`, `project` (sent as OpenAI-Organization/-Project;
    read from OPENAI_ORG_ID and OPENAI_PROJECT_ID when not given, as openai-python does)."""

    provider: ClassVar[str] = "openai"
    default_base_url: ClassVar[str] = "https://api.openai.com/v1"
    chat_dialect: ClassVar[ChatDialect] = OPENAI_DIALECT

    Options = OpenAIOptions
    options: OpenAIOptions

    def extra_headers(self) -> dict[str, str]:
        headers = {"OpenAI-Organization": self.options.organization, "OpenAI-Project": self.options.project}
        return {name: value for name, value in headers.items() if value}

    def responses_model(self, model: str, *, store: bool | None = None) -> ResponsesModel:
        """A chat model on the Responses API (`completion_model` uses Chat Completions).
        `store=False`: nothing kept on the server, reasoning carried in the conversation
        (see `ResponsesModel`)."""
        from ._openai_responses import ResponsesModel

        return ResponsesModel(self, model, store=store)


ClientBuilder = Client.Builder
