"""Google Vertex AI: Gemini models (Gemini's wire under Vertex's project and location paths) and
Anthropic's Claude models (Anthropic's wire), with Google OAuth tokens refreshed before they expire.

    from rig_sync.providers import vertex
    client = vertex.Client(project="my-project", location="us-central1")  # Application Default Credentials
    client = vertex.Client.from_env()       # GOOGLE_CLOUD_PROJECT, GOOGLE_CLOUD_LOCATION (else us-central1)
    client = vertex.Client(token="ya29…", project="my-project")            # a bearer token you refresh yourself
    client = vertex.Client(credentials=service_account_credentials)          # any google-auth credentials
    client = vertex.Client("<express mode key>")   # Vertex AI express mode: x-goog-api-key, no project (VERTEX_API_KEY)
    client.completion_model("gemini-2.5-flash")                # :generateContent, :streamGenerateContent?alt=sse
    client.completion_model("claude-sonnet-4-5@20250929")      # :rawPredict, :streamRawPredict
    client.embedding_model("gemini-embedding-001", 768, task_type="RETRIEVAL_DOCUMENT")   # :predict

Without a key, a token, credentials or `auth=`, the client uses Application Default Credentials
from google-auth (`pip install 'rig_sync[vertex]'`), scoped to cloud-platform, through a
`TokenAuth` that refreshes the access token before it expires; the project comes from the
option, else GOOGLE_CLOUD_PROJECT, else the credentials. Location "global" is served by
`https://aiplatform.googleapis.com`, any other by `https://{location}-aiplatform.googleapis.com`.

A model whose name starts with "claude" speaks Anthropic's Messages wire: the body has no
`model` (it is in the URL) and carries `"anthropic_version": "vertex-2023-10-16"`; every other
model speaks Gemini's. Errors come in Google's shape (list-wrapped for streams) or, from Claude,
in Anthropic's; 429 RESOURCE_EXHAUSTED is a `RateLimitError`. Express mode serves Gemini only.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar
from urllib.parse import quote

import attrs

from .. import _wire
from ..auth import Auth, BearerAuth, HeaderAuth, TokenAuth
from ..client import (
    Access,
    CompletionClient,
    EmbeddingsClient,
    ProviderClient,
    ProviderOptions,
    TranscriptionClient,
    checked,
    env_value,
    option,
)
from ..completion import BaseCompletionModel, CompletionRequest, CompletionResponse, Usage
from ..errors import ClientBuildError, UnsupportedFeature
from ..http import Conventions, shown_url
from ..streaming import StreamingCompletionResponse
from . import _gemini_chat, _gemini_media
from ._anthropic_stream import stream_messages
from ._anthropic_wire import messages_body, parse_message
from ._common import model_in_path
from ._gemini_chat import CONVENTIONS, ContentBlockedError, GenerationError, ModelPaths
from ._model import ModelView
from ._vertex_auth import GoogleCredentials, default_credentials

__all__ = ["Client", "ClientBuilder", "VertexOptions", "GeminiModel", "ClaudeModel", "EmbeddingModel",
           "TranscriptionModel", "ContentBlockedError", "GenerationError", "ANTHROPIC_VERSION", "DEFAULT_LOCATION"]

ANTHROPIC_VERSION = "vertex-2023-10-16"
DEFAULT_LOCATION = "us-central1"

# Model names, for convenience and typo-safety.
GEMINI_2_5_PRO = "gemini-2.5-pro"
GEMINI_2_5_FLASH = "gemini-2.5-flash"
GEMINI_EMBEDDING_001 = "gemini-embedding-001"
TEXT_EMBEDDING_005 = "text-embedding-005"
CLAUDE_SONNET_4_5 = "claude-sonnet-4-5@20250929"
CLAUDE_OPUS_4_1 = "claude-opus-4-1@20250805"
CLAUDE_3_7_SONNET = "claude-3-7-sonnet@20250219"

_LOCATION = re.compile(r"[a-z][a-z0-9-]{0,40}[a-z0-9]")  # it goes into the host name
_API_VERSION = re.compile(r"v\d+(alpha|beta)?\d*")


def _is_claude(model: str) -> bool:
    return isinstance(model, str) and model.rpartition("/")[2].lower().startswith("claude")


class _OnVertex(ModelPaths):
    """A Gemini model whose methods are at Vertex AI's paths."""

    def method_path(self, method: str) -> str:
        return str(self.client.publisher_path("google", self.model, method))


class GeminiModel(_OnVertex, _gemini_chat.CompletionModel):
    """A Gemini model on Vertex AI: `:generateContent` and `:streamGenerateContent?alt=sse`."""


class TranscriptionModel(_OnVertex, _gemini_media.TranscriptionModel):
    """Speech to text with a Gemini model on Vertex AI (the audio goes inline to `:generateContent`)."""


class ClaudeModel(ModelView, BaseCompletionModel):
    """An Anthropic Claude model on Vertex AI: `:rawPredict` and `:streamRawPredict`, Anthropic's wire."""

    def _body(self, request: CompletionRequest, stream: bool) -> dict[str, Any]:
        return messages_body(self.model, request, self.provider, stream=stream, model_in_body=False,
                             anthropic_version=self.client.anthropic_version)

    def completion(self, request: CompletionRequest) -> CompletionResponse:
        path = self.client.publisher_path("anthropic", self.model, "rawPredict")
        return self._complete(path, self._body(request, False), parse_message)

    def stream(self, request: CompletionRequest) -> StreamingCompletionResponse:
        path = self.client.publisher_path("anthropic", self.model, "streamRawPredict")
        return self._stream(path, self._body(request, True), stream_messages, raw=request.keep_raw_events)


# --- embeddings: `:predict` ----------------------------------------------------------------------

_converter = _wire.make_converter()
# Vector sizes of Vertex's text embedding models (gemini-embedding-001: 3072, the rest 768).
_NDIMS = {"gemini-embedding-001": 3072, "text-embedding-005": 768, "text-embedding-004": 768,
          "text-multilingual-embedding-002": 768}


@_wire.lenient
@attrs.define
class _Statistics:
    token_count: _wire.Tokens = None


@attrs.define
class _Embeddings:
    values: list[float]
    statistics: _Statistics | None = None


@attrs.define
class _Prediction:
    embeddings: _Embeddings


@attrs.define
class _Predictions:
    predictions: list[_Prediction]


class EmbeddingModel(_OnVertex, _gemini_media.EmbeddingModel):
    """Text embeddings on Vertex AI's `:predict`: `{"instances": [{"content", "task_type"}],
    "parameters": {"outputDimensionality"}}`, answered by `predictions[].embeddings.values`.
    gemini-embedding-001 takes one text per request, the others up to 250."""

    def __init__(self, client: Any, model: str, ndims: int | None = None, *, task_type: str | None = None) -> None:
        super().__init__(client, model, ndims, task_type=task_type)
        name = model.rpartition("/")[2]
        self._ndims = ndims or _NDIMS.get(name)
        self._max_documents = 1 if name.startswith("gemini-embedding") else 250

    def _embed_chunk(self, texts: list[str]) -> list[list[float]]:
        task = {"task_type": self.task_type} if self.task_type else {}
        body: dict[str, Any] = {"instances": [{"content": text, **task} for text in texts]}
        if self._requested_ndims:
            body["parameters"] = {"outputDimensionality": self._requested_ndims}
        data = self._post(self.method_path("predict"), body, "embeddings")
        predictions = _wire.decode(_converter, data, _Predictions, self.provider).predictions
        counts = [p.embeddings.statistics.token_count for p in predictions if p.embeddings.statistics]
        if counts and None not in counts:
            tokens = sum(c for c in counts if c is not None)
            self._report("embeddings", Usage(tokens, 0, tokens))
        return [p.embeddings.values for p in predictions]


def _host(location: str) -> str:
    if location == "global":
        return "https://aiplatform.googleapis.com"
    if location in ("us", "eu"):  # multi-region endpoints (as anthropic-sdk-python's Vertex client has them)
        return f"https://aiplatform.{location}.rep.googleapis.com"
    return f"https://{location}-aiplatform.googleapis.com"


@attrs.frozen(kw_only=True)
class VertexOptions(ProviderOptions):
    """The project and location (else GOOGLE_CLOUD_PROJECT / GOOGLE_CLOUD_LOCATION, else the
    credentials' project and us-central1); a static bearer `token` or google-auth `credentials` in
    place of Application Default Credentials; the URL's `api_version`; the `anthropic_version`
    Claude's bodies carry."""

    project: str | None = option(env=("GOOGLE_CLOUD_PROJECT",))
    location: str | None = option(env=("GOOGLE_CLOUD_LOCATION",), validator=checked(
        _LOCATION.fullmatch, "a Google Cloud location (e.g. 'us-central1', 'europe-west4', 'global')"))
    token: str | None = option(secret=True)
    credentials: Any = option(secret=True)
    api_version: str = option("v1", validator=checked(_API_VERSION.fullmatch, "like 'v1' or 'v1beta1'"))
    anthropic_version: str = option(ANTHROPIC_VERSION, validator=checked(str.__len__, "a version, e.g. "
                                                                          f"{ANTHROPIC_VERSION!r}"))


class Client(ProviderClient, CompletionClient, EmbeddingsClient, TranscriptionClient):
    """A Vertex AI client: Google credentials and a project (and location), or an express mode API key.

    Exactly one of `api_key` (express mode), `token` (a static bearer token), `credentials`
    (google-auth credentials, refreshed as needed) and `auth` may be given; with none, an express
    key from VERTEX_API_KEY (unless a project was passed), else Application Default Credentials.
    """

    provider: ClassVar[str] = "vertex"
    default_base_url: ClassVar[str] = _host(DEFAULT_LOCATION)
    requires_api_key: ClassVar[bool] = False  # Google credentials serve as well: checked in resolve_access
    conventions: ClassVar[Conventions] = CONVENTIONS  # Google's error shape, list-wrapped on streams

    Options = VertexOptions
    options: VertexOptions
    express: bool  # an express mode API key: no project, the global endpoint, Gemini only
    project: str | None
    location: str

    @property
    def api_version(self) -> str:
        return self.options.api_version

    @property
    def anthropic_version(self) -> str:
        return self.options.anthropic_version

    def resolve_access(self, api_key: str | None, base_url: str | None, auth: Auth | None) -> Access:
        options = self.options
        given = [name for name, value in (("an API key", api_key), ("token=", options.token or None),
                                          ("credentials=", options.credentials), ("auth=", auth)) if value is not None]
        if len(given) > 1:
            raise ClientBuildError(f"vertex: pass one of an express mode API key, token=, credentials= or auth=, "
                                   f"not {' and '.join(given)}")
        if not given and "project" not in options.given:
            api_key = env_value(self.env_api_key)
        self.express = api_key is not None
        if self.express:
            if {"project", "location"} & options.given:
                raise ClientBuildError("vertex: express mode (an API key) has no project or location; pass "
                                       "credentials (or token=) with a project instead, or leave them out")
            self.project, self.location = None, "global"
        else:
            self.location = options.location or DEFAULT_LOCATION
            project = options.project
            if options.token:
                auth = BearerAuth(options.token)
            elif auth is None:
                credentials, found = ((options.credentials, getattr(options.credentials, "project_id", None))
                                      if options.credentials is not None else default_credentials())
                project = project or (found if isinstance(found, str) else None)
                auth = TokenAuth(GoogleCredentials(credentials))
            if not project:
                raise ClientBuildError("vertex: no project. Pass project='my-project' or set GOOGLE_CLOUD_PROJECT "
                                       "(or an express mode API key)")
            self.project = project
        if base_url is None:
            base_url = env_value(self.env_base_url) or _host(self.location)
        return Access(api_key, base_url, auth)

    def make_auth(self, api_key: str) -> Auth:
        return HeaderAuth("x-goog-api-key", api_key)  # express mode

    def publisher_path(self, publisher: str, model: str, method: str) -> str:
        """`/v1/projects/{project}/locations/{location}/publishers/{publisher}/models/{model}:{method}`
        (express mode: `/v1/publishers/…`). A name with a slash is a resource under the location
        (`endpoints/123`, `publishers/meta/models/…`)."""
        # `@` is allowed in a path segment, and Vertex's versioned model names carry one.
        name = model_in_path(self.provider, model, nested=True).replace("%40", "@")
        resource = name if "/" in model else f"publishers/{publisher}/models/{name}"
        where = "" if self.project is None else f"projects/{quote(self.project, safe='')}/locations/{self.location}/"
        return f"/{self.api_version}/{where}{resource}:{method}"

    def _gemini_only(self, model: str, what: str) -> None:
        if _is_claude(model):
            raise UnsupportedFeature(f"vertex: {model!r} is a Claude model, which has no {what} on Vertex AI")

    def completion_model(self, model: str) -> GeminiModel | ClaudeModel:
        if not _is_claude(model):
            return GeminiModel(self, model)
        if self.express:
            raise UnsupportedFeature(f"vertex: express mode (an API key) serves Gemini models only, not {model!r}; "
                                     "build the client with a project and Google credentials")
        return ClaudeModel(self, model)

    def embedding_model(self, model: str, ndims: int | None = None, *,
                        task_type: str | None = None) -> EmbeddingModel:
        self._gemini_only(model, "embeddings")
        return EmbeddingModel(self, model, ndims, task_type=task_type)

    def transcription_model(self, model: str) -> TranscriptionModel:
        self._gemini_only(model, "transcription here")
        return TranscriptionModel(self, model)

    def __repr__(self) -> str:
        where = "express mode" if self.express else f"project={self.project!r}, location={self.location!r}"
        return f"vertex.Client({where}, base_url={shown_url(self.base_url)!r})"


ClientBuilder = Client.Builder
