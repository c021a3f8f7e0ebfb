"""OpenAI-compatible providers as rows of one table.

A provider that speaks OpenAI's wire format is a `CompatProvider` row: its name, default base
URL, environment variables, the capabilities it really has, its chat `dialect` (a `ChatDialect`
value: no tools, no streaming usage, how its streams end, its word for a required tool choice,
whether it can force one named tool, how it spells user parts) and small named deviations of
its other endpoints (float embeddings, extra headers). Where a capability sits on an endpoint of
the provider's own, the row's `models` names the class serving it (see `_compat_media`).
`client_class(row)` turns a row into a real client class with exactly the capability mixins it
claims, its dialect as the class's `chat_dialect`; each `rig_sync.providers.<name>` module is
three lines that pick its row. Adding a compatible provider is adding a row.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

from ..client import (
    AudioGenerationClient,
    Capability,
    CompletionClient,
    EmbeddingsClient,
    ImageGenerationClient,
    ModelInfo,
    ModelListingClient,
    ProviderClient,
    TranscriptionClient,
)
from ..errors import ResponseDecodeError
from ._chat_dialect import OPENAI_DIALECT, ChatDialect, PartDialect

if TYPE_CHECKING:
    from ..audio_generation import AudioGenerationModel as AudioGenerationModelProtocol
    from ..image_generation import ImageGenerationModel as ImageGenerationModelProtocol
    from ..transcription import TranscriptionModel as TranscriptionModelProtocol
    from ._openai_chat import ChatCompletionsModel
    from ._openai_media import EmbeddingModel

# The vector sizes of OpenAI's embedding models, known before any request.
KNOWN_NDIMS = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072, "text-embedding-ada-002": 1536}

_CHAT = "rig_sync.providers._openai_chat:ChatCompletionsModel"
_MEDIA = "rig_sync.providers._openai_media:"
_OWN_MEDIA = "rig_sync.providers._compat_media:"


def lazy_names(module: str, names: Mapping[str, str]) -> Callable[[str], Any]:
    """A module `__getattr__` importing each of `names` (name -> "module:Name") on first use, so
    that a provider module re-exports its model classes without loading them with itself."""
    def __getattr__(name: str) -> Any:
        if name not in names:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        return model_class(names[name])

    return __getattr__


def model_class(spec: Any) -> Any:
    """A model class, or a "module:Class" name of one, imported on first use: a client class
    names the classes serving it without loading their wire code until a model is made."""
    if not isinstance(spec, str):
        return spec
    import importlib

    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)

__all__ = ["CompatProvider", "ROWS", "MIXINS", "client_class", "OpenAIModelListing", "openai_models", "model_class",
           "lazy_names", "KNOWN_NDIMS"]


@attrs.frozen
class CompatProvider:
    """One OpenAI-compatible provider: where it is, what it can do, how it deviates."""

    name: str
    base_url: str
    capabilities: frozenset[str] = frozenset({"completion"})
    dialect: ChatDialect = OPENAI_DIALECT  # how its chat completions deviate from OpenAI's
    requires_api_key: bool = True
    env_api_key: tuple[str, ...] | None = None  # default: <NAME>_API_KEY
    env_base_url: tuple[str, ...] | None = None  # default: <NAME>_BASE_URL
    headers: tuple[tuple[str, str], ...] = ()
    max_documents: int = 2048
    embedding_encoding: str | None = "base64"  # None: float lists, for APIs that do not document base64
    dimensions_field: str = "dimensions"  # the embeddings request's vector-size field
    known_ndims: tuple[tuple[str, int], ...] = ()  # embedding model -> vector size, known before a request
    # capability -> the model class serving it, where the provider's endpoint is not OpenAI's
    models: Mapping[str, type | str] = attrs.field(factory=dict, hash=False)  # a class or "module:Class"
    verify_path: str | None = None  # where `verify()` checks a key, when its models list is public

    def __attrs_post_init__(self) -> None:
        # Known ones: capabilities of the table (`rig_sync.client.capabilities`) with an OpenAI implementation.
        if not set(self.models) <= self.capabilities <= set(MIXINS):
            raise ValueError(f"row {self.name!r}: capabilities {sorted(self.capabilities)} must be known ones "
                             f"({', '.join(MIXINS)}) and cover its models {sorted(self.models)}")


class OpenAICompletion(CompletionClient):
    """Chat models on `/chat/completions`, in the class's `chat_dialect`.

    The tools and streaming every client class declares (`supports_tools`, `streams_completions`:
    the CLI's matrix, `prompt --stream`) follow the dialect; a subclass that sets only those
    flags has them in its dialect too."""

    chat_dialect: ClassVar[ChatDialect] = OPENAI_DIALECT
    supports_tools: ClassVar[bool]  # ProviderClient's, set from the dialect below
    streams_completions: ClassVar[bool]
    completion_model_class: ClassVar[Any] = _CHAT  # a row may name a subclass (a class or "module:Class")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = cls.__dict__
        if "chat_dialect" not in own and ("supports_tools" in own or "streams_completions" in own):
            cls.chat_dialect = attrs.evolve(cls.chat_dialect, tools=cls.supports_tools,
                                            streaming=cls.streams_completions)
        cls.supports_tools, cls.streams_completions = cls.chat_dialect.tools, cls.chat_dialect.streaming

    def completion_model(self, model: str) -> ChatCompletionsModel:
        made: ChatCompletionsModel = model_class(self.completion_model_class)(self, model)
        return made


class OpenAIEmbeddings(EmbeddingsClient):
    """Embedding models on `/embeddings`."""

    max_documents: ClassVar[int] = 2048
    embedding_encoding: ClassVar[str | None] = "base64"
    dimensions_field: ClassVar[str] = "dimensions"
    known_ndims: ClassVar[Mapping[str, int]] = KNOWN_NDIMS
    embeddings_model_class: ClassVar[Any] = _MEDIA + "EmbeddingModel"  # a row may name a subclass

    def embedding_model(self, model: str, ndims: int | None = None) -> EmbeddingModel:
        made: EmbeddingModel = model_class(self.embeddings_model_class)(
            self, model, ndims, max_documents=self.max_documents, encoding_format=self.embedding_encoding,
            dimensions_field=self.dimensions_field, known_ndims=self.known_ndims,
        )
        return made


class OpenAITranscription(TranscriptionClient):
    """Speech-to-text models on `/audio/transcriptions` (or the row's own endpoint)."""

    transcription_model_class: ClassVar[Any] = _MEDIA + "TranscriptionModel"

    def transcription_model(self, model: str) -> TranscriptionModelProtocol:
        made: TranscriptionModelProtocol = model_class(self.transcription_model_class)(self, model)
        return made


class OpenAIImageGeneration(ImageGenerationClient):
    """Image models on `/images/generations` (or the row's own endpoint)."""

    image_generation_model_class: ClassVar[Any] = _MEDIA + "ImageGenerationModel"

    def image_generation_model(self, model: str) -> ImageGenerationModelProtocol:
        made: ImageGenerationModelProtocol = model_class(self.image_generation_model_class)(self, model)
        return made


class OpenAIAudioGeneration(AudioGenerationClient):
    """Speech models on `/audio/speech` (or the row's own endpoint)."""

    audio_generation_model_class: ClassVar[Any] = _MEDIA + "AudioGenerationModel"

    def audio_generation_model(self, model: str) -> AudioGenerationModelProtocol:
        made: AudioGenerationModelProtocol = model_class(self.audio_generation_model_class)(self, model)
        return made


class OpenAIModelListing(ModelListingClient):
    """`GET /models` lists the models (OpenAI's list, which most compatible providers serve);
    `verify()` asks for it too, or for the row's `verify_path` where the list is public."""

    models_path: ClassVar[str] = "/models"
    verify_path: ClassVar[str | None] = None

    def list_models(self) -> list[ModelInfo]:
        return openai_models(self._get_json(self.models_path), self.provider)

    def verify(self) -> None:
        self._get_json(self.verify_path or self.models_path)


def openai_models(data: Any, provider: str) -> list[ModelInfo]:
    """A `GET /models` answer as records: `{"data": [...]}` (OpenAI and most), a bare list
    (Together), `{"models": [...]}`; an entry without a string `id` is skipped."""
    entries = data.get("data", data.get("models")) if isinstance(data, Mapping) else data
    if not isinstance(entries, list):
        raise ResponseDecodeError(f"{provider} answered GET /models without a list of models",
                                  provider=provider, field="data", body=data)
    return [
        ModelInfo.of(entry, entry["id"], name=entry.get("name", entry.get("display_name")),
                     description=entry.get("description"), owned_by=entry.get("owned_by", entry.get("organization")),
                     created=entry.get("created"),
                     context_length=next((entry[k] for k in ("context_length", "max_context_length", "context_window")
                                          if isinstance(entry.get(k), int)), None))
        for entry in entries
        if isinstance(entry, Mapping) and isinstance(entry.get("id"), str) and entry["id"]
    ]


# The OpenAI implementation of each capability, shared by OpenAI itself and every row below.
MIXINS: dict[str, type] = {
    Capability.COMPLETION: OpenAICompletion,
    Capability.EMBEDDINGS: OpenAIEmbeddings,
    Capability.TRANSCRIPTION: OpenAITranscription,
    Capability.IMAGE_GENERATION: OpenAIImageGeneration,
    Capability.AUDIO_GENERATION: OpenAIAudioGeneration,
    Capability.LIST_MODELS: OpenAIModelListing,
}

# "list_models" where the provider documents `GET /models` (Perplexity, Galadriel and Mira do not).
_CL = frozenset({"completion", "list_models"})
_CEL = frozenset({"completion", "embeddings", "list_models"})

ROWS: dict[str, CompatProvider] = {
    row.name: row
    for row in (
        CompatProvider("groq", "https://api.groq.com/openai/v1", _CL | {"transcription"}),
        CompatProvider("deepseek", "https://api.deepseek.com", _CL),
        CompatProvider("xai", "https://api.x.ai/v1", _CL),
        # Together's /embeddings takes {model, input} only: vectors come back as float lists.
        CompatProvider("together", "https://api.together.xyz/v1", _CEL, embedding_encoding=None),
        # OpenRouter's model list is public: a key is checked at GET /key (the key's own limits).
        CompatProvider("openrouter", "https://openrouter.ai/api/v1", _CL, verify_path="/key"),
        # Perplexity sends no `[DONE]`: a stream ends at its finish reason, or (stream_mode "concise")
        # at a `chat.completion.done` chunk; usage rides on its chunks unasked.
        CompatProvider("perplexity", "https://api.perplexity.ai",
                       dialect=ChatDialect(tools=False, stream_usage=False, done_marker=False,
                                           end_object="chat.completion.done")),
        CompatProvider("moonshot", "https://api.moonshot.ai/v1", _CL),
        CompatProvider("galadriel", "https://api.galadriel.com/v1/verified"),
        CompatProvider("mira", "https://api.mira.network/v1", dialect=ChatDialect(tools=False, stream_usage=False)),
        CompatProvider(
            "huggingface", "https://router.huggingface.co/v1",
            _CL | {"transcription", "image_generation"},
            env_api_key=("HF_TOKEN", "HUGGINGFACE_API_KEY"),  # huggingface_hub's name first
            models={"transcription": _OWN_MEDIA + "HFInferenceTranscriptionModel",
                    "image_generation": _OWN_MEDIA + "HFInferenceImageGenerationModel"},
        ),
        CompatProvider(
            "hyperbolic", "https://api.hyperbolic.xyz/v1",
            _CL | {"image_generation", "audio_generation"}, dialect=ChatDialect(tools=False),
            models={"image_generation": _OWN_MEDIA + "HyperbolicImageGenerationModel",
                    "audio_generation": _OWN_MEDIA + "HyperbolicAudioGenerationModel"},
        ),
        # llama-server reports stream usage only when asked (stream_options), and reads tool_choice
        # as a string only: an object is logged as the wrong type and taken for "auto".
        CompatProvider(
            "llamacpp", "http://localhost:8080/v1", _CEL, requires_api_key=False,
            env_base_url=("LLAMACPP_API_BASE_URL", "LLAMACPP_BASE_URL"),
            dialect=ChatDialect(named_tool_choice=False),
        ),
        # Mistral's chat request forbids unknown fields (no stream_options; usage rides on the last
        # chunk anyway), spells "required" as "any", sends audio as a bare base64 string and takes
        # documents by URL only; its embeddings schema documents float vectors only and sizes them
        # with `output_dimension`.
        CompatProvider(
            "mistral", "https://api.mistral.ai/v1", _CEL,
            dialect=ChatDialect(stream_usage=False, required_tool_choice="any",
                                user_parts=PartDialect(bare_audio=True, documents_by_url=True)),
            max_documents=512, embedding_encoding=None, dimensions_field="output_dimension",
            known_ndims=(("mistral-embed", 1024), ("codestral-embed", 1536)),
        ),
    )
}


class _CompatClient(ProviderClient):
    row: ClassVar[CompatProvider]

    def extra_headers(self) -> dict[str, str]:
        return dict(self.row.headers)


def client_class(row: CompatProvider | str, module: str = __name__) -> type[Any]:
    """The client class for `row` (or the row of `ROWS` named so), defined in `module`, with
    exactly the capability mixins it claims and its dialect as `chat_dialect`."""
    if isinstance(row, str):
        row = ROWS[row]
    name = row.name
    mixins = tuple(mixin for cap, mixin in MIXINS.items() if cap in row.capabilities)  # in the table's order
    namespace: dict[str, Any] = {
        "__module__": module,
        "__doc__": f"A {name} client (OpenAI-compatible API at {row.base_url}).",
        "provider": name,
        "default_base_url": row.base_url,
        "row": row,
        "requires_api_key": row.requires_api_key,
        "chat_dialect": row.dialect,
        "max_documents": row.max_documents,
        "embedding_encoding": row.embedding_encoding,
        "dimensions_field": row.dimensions_field,
        "verify_path": row.verify_path,
        **({"known_ndims": dict(row.known_ndims)} if row.known_ndims else {}),
        **{f"{cap}_model_class": model for cap, model in row.models.items()},
    }
    if row.env_api_key is not None:
        namespace["env_api_key"] = row.env_api_key
    if row.env_base_url is not None:
        namespace["env_base_url"] = row.env_base_url
    return type("Client", (_CompatClient, *mixins), namespace)
