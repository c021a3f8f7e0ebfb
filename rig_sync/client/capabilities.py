"""The capability table: one row per thing a provider client can do.

A row names the capability (`Capability`), the mixin a client class inherits to have it, the
client method it brings, its letter in the matrix (`python -m rig_sync providers`, README's
provider table) and the `DynClientBuilder` methods that hand it out. Everything that asks
"which capabilities are there?" reads `TABLE`: `ProviderClient.capabilities()` and `as_*()`,
`DynClientBuilder.<capability>(…)` and its `UnsupportedFeature` messages, `ProviderModelId`, the
OpenAI-compatible rows' checks, the CLI matrix and its legend. A new capability is a mixin and a
row here (plus, for typed call sites, a one-line `as_<name>` / builder method that reads the row).

`batch_jobs` (letter B) is the provider's own batch API behind `rig_sync.batch.submit` (`client.jobs`).
`list_models` is a row too (letter L): a `ModelListingClient` lists its provider's models and
checks a key with `verify()`. Every client answers both methods; where the provider has no models
endpoint they raise `UnsupportedFeature` naming what is missing (`ClientOperations`).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, TypeVar

import attrs

from ..errors import ResponseDecodeError, UnsupportedFeature

if TYPE_CHECKING:
    from ..agent import AgentBuilder
    from ..audio_generation import AudioGenerationModel
    from ..completion import CompletionModel
    from ..embeddings import EmbeddingModel
    from ..extractor import ExtractorBuilder
    from ..http import Transport
    from ..image_generation import ImageGenerationModel
    from ..rerank import RerankModel
    from ..transcription import TranscriptionModel
    from .jobs import JobEntry, JobKind, JobLimits, JobOutcome, RemoteJob

__all__ = [
    "Capability",
    "CapabilityRow",
    "Feature",
    "TABLE",
    "ModelInfo",
    "paged",
    "entries",
    "next_token",
    "ClientOperations",
    "CompletionClient",
    "EmbeddingsClient",
    "TranscriptionClient",
    "ImageGenerationClient",
    "AudioGenerationClient",
    "RerankClient",
    "ModelListingClient",
    "BatchJobsClient",
    "Prepared",
    "row",
    "claimed",
    "handed_out_by",
    "matrix_header",
    "matrix_letters",
    "legend",
]

T = TypeVar("T")  # what an extractor extracts


class Capability(str, enum.Enum):
    """A capability's name; each member is the plain string too (`Capability.COMPLETION == "completion"`)."""

    COMPLETION = "completion"
    EMBEDDINGS = "embeddings"
    TRANSCRIPTION = "transcription"
    IMAGE_GENERATION = "image_generation"
    AUDIO_GENERATION = "audio_generation"
    RERANK = "rerank"
    LIST_MODELS = "list_models"
    BATCH_JOBS = "batch_jobs"

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


# --- what every client answers --------------------------------------------------------------------


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _whole(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _unix_seconds(value: object) -> int | None:
    """Seconds since 1970 from a number or an RFC 3339 time ("2025-02-19T00:00:00Z"); None otherwise."""
    if isinstance(value, str):
        import datetime
        import re

        text = re.sub(r"(\.\d{6})\d+", r"\1", value.strip()).replace("Z", "+00:00")  # 3.10 reads 6 digits
        try:
            moment = datetime.datetime.fromisoformat(text)
        except ValueError:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=datetime.timezone.utc)
        return int(moment.timestamp())
    return _whole(value)


@attrs.frozen
class ModelInfo:
    """One model a provider lists: its id (what `completion_model(...)` and the like take) and
    what else the provider says of it, where it says it. `raw` is the provider's own record."""

    id: str
    name: str | None = None  # a display name
    description: str | None = None
    owned_by: str | None = None
    created: int | None = None  # Unix seconds
    context_length: int | None = None  # tokens a request may hold
    raw: Mapping[str, Any] = attrs.field(factory=dict, eq=False, hash=False, repr=False)

    @classmethod
    def of(cls, raw: Mapping[str, Any], id: str, *, name: object = None, description: object = None,
           owned_by: object = None, created: object = None, context_length: object = None) -> ModelInfo:
        """A record from a provider's entry; a field of the wrong type is left out, not an error.
        `created` may be Unix seconds or an RFC 3339 time."""
        return cls(id, _text(name), _text(description), _text(owned_by), _unix_seconds(created),
                   _whole(context_length), dict(raw))


def entries(data: Any, key: str, provider: str) -> list[Mapping[str, Any]]:
    """The records under `key` of a models answer (those that are objects); `ResponseDecodeError`
    when the answer holds no such list. A missing `key` in an object is an empty page."""
    found = data.get(key, []) if isinstance(data, Mapping) else None
    if not isinstance(found, list):
        raise ResponseDecodeError(f"{provider} answered its models list without a list of {key!r}",
                                  provider=provider, field=key, body=data)
    return [entry for entry in found if isinstance(entry, Mapping)]


def next_token(data: Any, key: str) -> str | None:
    """The next page's token under `key`, if the answer gives one."""
    token = data.get(key) if isinstance(data, Mapping) else None
    return token if isinstance(token, str) and token else None


MAX_PAGES = 100  # a models list is a few pages; a server that keeps answering "more" is cut off here


def paged(fetch: Callable[[str | None], tuple[list[ModelInfo], str | None]]) -> list[ModelInfo]:
    """Every page of a paged models list: `fetch(token)` -> (the page's records, the next page's
    token or None). Stops at the last page, at a token seen before, or after `MAX_PAGES` pages."""
    out: list[ModelInfo] = []
    token: str | None = None
    seen: set[str] = set()
    for _ in range(MAX_PAGES):
        page, token = fetch(token)
        out.extend(page)
        if not token or token in seen:
            break
        seen.add(token)
    return out


class ClientOperations:
    """`list_models()` and `verify()` for every client. Here they raise `UnsupportedFeature`; a
    client whose provider lists its models inherits `ModelListingClient`, which overrides them
    (this class comes after every mixin in a client's method order: both the base client and the
    mixin derive from it)."""

    provider: ClassVar[str]
    transport: Transport

    def list_models(self) -> list[ModelInfo]:
        """The provider's models. Raises `UnsupportedFeature` where the provider has no models endpoint."""
        raise UnsupportedFeature(f"{self.provider} does not support list models: rig_sync knows no endpoint of "
                                 f"{self.provider}'s that lists its models (see `python -m rig_sync providers`, "
                                 "column L)")

    def verify(self) -> None:
        """Check the key with one cheap authenticated call. Raises `UnsupportedFeature` where the
        provider has none rig_sync knows of."""
        raise UnsupportedFeature(f"{self.provider} does not support verify: checking a key takes a cheap "
                                 f"authenticated call, and rig_sync knows no models endpoint of {self.provider}'s")

    def _get_json(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        """GET `path` (relative to the base URL), tagged "list_models" for the observe hooks."""
        return self.transport.request("GET", path, params=params, capability=Capability.LIST_MODELS.value).json()


class Prepared(NamedTuple):
    """One call as a model would send it: POST `path` (relative to the client's base URL) with
    `body`; `parse(answer_body, provider)` reads the provider's answer into the model's result
    (a `CompletionResponse`, or a list of vectors for embeddings). A batch job's item holds the same
    (`rig_sync.client.jobs`)."""

    path: str
    body: Mapping[str, Any]
    parse: Callable[[Any, str], Any]


# --- the mixins ---------------------------------------------------------------------------------


class CompletionClient:
    """A client with chat completion models."""

    def completion_model(self, model: str) -> CompletionModel:
        raise NotImplementedError

    def agent(self, model: str) -> AgentBuilder:
        """An `AgentBuilder` on this client's `model`."""
        from ..agent import AgentBuilder

        return AgentBuilder(self.completion_model(model))

    def extractor(self, cls: type[T], model: str) -> ExtractorBuilder[T]:
        """An `ExtractorBuilder` that extracts instances of `cls` (an attrs class, dataclass or pydantic
        model) with `model`; `.build().extract(text)` returns a `cls`."""
        from ..extractor import ExtractorBuilder

        return ExtractorBuilder(cls, self.completion_model(model))


class EmbeddingsClient:
    """A client with embedding models."""

    def embedding_model(self, model: str, ndims: int | None = None) -> EmbeddingModel:
        raise NotImplementedError

    def embedding_model_with_ndims(self, model: str, ndims: int) -> EmbeddingModel:
        """A model whose vectors have `ndims` dimensions (asked for where the provider can)."""
        return self.embedding_model(model, ndims)


class TranscriptionClient:
    """A client with speech-to-text models."""

    def transcription_model(self, model: str) -> TranscriptionModel:
        raise NotImplementedError


class ImageGenerationClient:
    """A client with text-to-image models."""

    def image_generation_model(self, model: str) -> ImageGenerationModel:
        raise NotImplementedError


class AudioGenerationClient:
    """A client with text-to-speech models."""

    def audio_generation_model(self, model: str) -> AudioGenerationModel:
        raise NotImplementedError


class RerankClient:
    """A client with reranking models (`rig_sync.rerank.RerankModel`)."""

    def rerank_model(self, model: str) -> RerankModel:
        raise NotImplementedError


class ModelListingClient(ClientOperations):
    """A client whose provider lists its models; `verify()` checks the key by listing them (a
    provider whose list comes in pages overrides it to ask for one short page)."""

    def list_models(self) -> list[ModelInfo]:
        raise NotImplementedError

    def verify(self) -> None:
        """Check the key with one cheap authenticated call: None when it works. Raises
        `AuthenticationError` (with the provider's message) when it does not, and the other
        `rig_sync.errors` of a request (`APIConnectionError`, `PermissionDeniedError` …)."""
        self.list_models()


class BatchJobsClient:
    """A client whose provider runs batch jobs (the `batch_jobs` capability, letter B); the types
    its methods take and give are in `rig_sync.client.jobs`."""

    provider: ClassVar[str]
    job_kinds: ClassVar[tuple[JobKind, ...]] = ("completion",)  # what its jobs can hold
    max_job_requests: ClassVar[int] = 0  # the provider's limits on one job (set by each adapter)
    max_job_bytes: ClassVar[int] = 0

    def job_limits(self, kind: JobKind) -> JobLimits:
        """The most one job of `kind` may hold (`submit` splits larger inputs into several jobs)."""
        from .jobs import JobLimits

        self.check_job_kind(kind)
        return JobLimits(max_requests=self.max_job_requests, max_bytes=self.max_job_bytes)

    def create_job(self, kind: JobKind, model: str, entries: Sequence[JobEntry], *, label: str) -> RemoteJob:
        """Create one job of `entries` (all for `model`), uploading its input first where the
        provider takes a file. `label` goes where `find_job(label)` can find it again."""
        raise NotImplementedError

    def job(self, job_id: str) -> RemoteJob:
        """The job as it stands now."""
        raise NotImplementedError

    def job_results(self, job: RemoteJob) -> Iterator[JobOutcome]:
        """Every item's outcome of an ended job, streamed (a results file may be large); items the
        provider left out are the caller's to count as missing."""
        raise NotImplementedError

    def cancel_job(self, job_id: str) -> RemoteJob:
        """Ask the provider to stop the job; answers already made are kept."""
        raise NotImplementedError

    def find_job(self, label: str) -> RemoteJob | None:
        """The job created with `label`, if the provider still lists it (newest first, a few pages)."""
        raise NotImplementedError

    def check_job_kind(self, kind: JobKind) -> None:
        if kind not in self.job_kinds:
            raise UnsupportedFeature(f"{self.provider}'s batch jobs do not take {kind} requests; "
                                     "use rig_sync.batch.map (or embed_texts) for them")



# --- the table ----------------------------------------------------------------------------------


def _never(_: type[Any]) -> bool:
    return False


def _narrows_named_tool(cls: type[Any]) -> bool:
    """A named tool choice goes as "required" with only that tool offered: as its chat dialect says
    (`chat_dialect.named_tool_choice`, OpenAI-compatible clients), or its `named_tool_choice` flag
    (a client without a dialect, e.g. Cohere)."""
    dialect = getattr(cls, "chat_dialect", None)
    forces = dialect.named_tool_choice if dialect is not None else getattr(cls, "named_tool_choice", True)
    return not forces


@attrs.frozen
class Feature:
    """A column of the matrix that qualifies a capability (streaming, tools), read off the client
    class; `partly` marks it with a `*` (explained by `note` in the legend). It follows its row's
    letter, or comes after every row's (`last`)."""

    letter: str
    title: str
    has: Callable[[type[Any]], bool]
    partly: Callable[[type[Any]], bool] = _never
    note: str = ""
    last: bool = False


@attrs.frozen
class CapabilityRow:
    """One capability: its name, the mixin that gives it, the client method it brings, its matrix
    letter, the `DynClientBuilder` methods handing it out (builder method -> client method; the
    first makes the capability's model) and the matrix columns that qualify it."""

    capability: str  # a `Capability`
    mixin: type[Any]
    method: str
    letter: str
    handed_out: Mapping[str, str] = attrs.field(factory=dict, hash=False)
    features: tuple[Feature, ...] = ()

    @property
    def title(self) -> str:
        """How messages name it: "image generation"."""
        return str(self.capability).replace("_", " ")


TABLE: tuple[CapabilityRow, ...] = (
    CapabilityRow(
        Capability.COMPLETION, CompletionClient, "completion_model", "C",
        {"completion": "completion_model", "agent": "agent"},
        (Feature("S", "streaming", lambda cls: bool(getattr(cls, "streams_completions", False))),
         Feature("tools", "tool calling", lambda cls: bool(getattr(cls, "supports_tools", False)),
                 partly=_narrows_named_tool,
                 note="no forcing one named tool; a named choice goes as \"required\" with only that tool "
                      "offered", last=True)),
    ),
    CapabilityRow(Capability.EMBEDDINGS, EmbeddingsClient, "embedding_model", "E",
                  {"embeddings": "embedding_model"}),
    CapabilityRow(Capability.TRANSCRIPTION, TranscriptionClient, "transcription_model", "T",
                  {"transcription": "transcription_model"}),
    CapabilityRow(Capability.IMAGE_GENERATION, ImageGenerationClient, "image_generation_model", "I",
                  {"image_generation": "image_generation_model"}),
    CapabilityRow(Capability.AUDIO_GENERATION, AudioGenerationClient, "audio_generation_model", "A",
                  {"audio_generation": "audio_generation_model"}),
    CapabilityRow(Capability.RERANK, RerankClient, "rerank_model", "R", {"rerank": "rerank_model"}),
    CapabilityRow(Capability.LIST_MODELS, ModelListingClient, "list_models", "L"),
    CapabilityRow(Capability.BATCH_JOBS, BatchJobsClient, "create_job", "B"),  # the provider's own batch API
)


def row(capability: str) -> CapabilityRow:
    """The row of `capability` ("embeddings" or `Capability.EMBEDDINGS`); `ValueError` naming the known ones."""
    for found in TABLE:
        if found.capability == capability:
            return found
    raise ValueError(f"no capability {capability!r}; known: {', '.join(str(r.capability) for r in TABLE)}")


def claimed(cls: type[Any]) -> list[str]:
    """The capabilities a client class has, in table order, as plain strings."""
    return [str(r.capability) for r in TABLE if issubclass(cls, r.mixin)]


def handed_out_by(builder_method: str) -> tuple[CapabilityRow, str]:
    """The row behind a `DynClientBuilder` method ("agent") and the client method it calls."""
    for found in TABLE:
        if builder_method in found.handed_out:
            return found, found.handed_out[builder_method]
    raise ValueError(f"no capability is handed out by {builder_method!r}")


def _cells(cls: type[Any] | None) -> list[tuple[str, str, str]]:
    """(shown letter, title, note) of each matrix column in order (a row's letter, its features',
    the `last` features at the end): every column, or those `cls` has."""
    first: list[tuple[str, str, str]] = []
    last: list[tuple[str, str, str]] = []
    for r in TABLE:
        if cls is not None and not issubclass(cls, r.mixin):
            continue
        first.append((r.letter, r.title, ""))
        for f in r.features:
            if cls is None or f.has(cls):
                star = "*" if cls is not None and f.partly(cls) else ""
                (last if f.last else first).append((f.letter + star, f.title, f.note))
    return first + last


def matrix_header() -> str:
    return f"capabilities ({' '.join(letter for letter, _, _ in _cells(None))})"


def matrix_letters(cls: type[Any]) -> str:
    """A client class's cell of the matrix, e.g. "C S E R L tools*"."""
    return " ".join(letter for letter, _, _ in _cells(cls))


def legend() -> str:
    """What the matrix letters mean, one line."""
    parts = [f"{letter} {title}" + (f" ({letter}*: {note})" if note else "") for letter, title, note in _cells(None)]
    return "Capabilities: " + ", ".join(parts) + "."
