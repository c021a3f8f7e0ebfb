"""Azure OpenAI: OpenAI's wire formats on per-deployment URLs.

    from rig_sync.providers import azure
    client = azure.Client("<key>", endpoint="https://myres.openai.azure.com")   # api-key header
    client = azure.Client(token="<entra id token>", endpoint="https://…")      # Authorization: Bearer
    client = azure.Client(token_provider=get_token, endpoint="https://…")      # fetched again before it expires
    client = azure.Client.from_env()    # AZURE_API_KEY or AZURE_TOKEN, AZURE_ENDPOINT, AZURE_API_VERSION
    client.completion_model("my-gpt-4o-deployment")     # the model name is the deployment name

Every request goes to `{endpoint}/openai/deployments/{deployment}/<operation>?api-version=<v>`:
the api-version rides on the client's base URL (`{endpoint}/openai?api-version=<v>`, which the
transport keeps on every joined path) and each model gets its deployment's path, so the OpenAI
models serve Azure unchanged.

Azure's content filter: a prompt it blocks is refused with HTTP 400 and code "content_filter"
(`BadRequestError`, `.code == "content_filter"`); an answer it blocks entirely (finish reason
"content_filter", no text, no tool calls) raises `ContentFilteredError`, whose `.safety` (and
message) say which filter withheld it. An answer it cut short keeps its text, with
`finish_reason == "content_filter"`. Either way the filters' results are `SafetyResult`s in
`response.safety`: the prompt's (`prompt_filter_results`) and the answer's (`content_filter_results`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, ClassVar, Protocol, TypeVar
from urllib.parse import quote

from ..auth import Auth, BearerAuth, HeaderAuth, Token, TokenAuth
from ..client import (
    AudioGenerationClient,
    CompletionClient,
    EmbeddingsClient,
    ImageGenerationClient,
    ProviderClient,
    TranscriptionClient,
    _first_env,
)
from ..completion import CompletionRequest, CompletionResponse, SafetyResult
from ..errors import ClientBuildError, ContentBlockedError, MissingAPIKeyError
from ..streaming import FinalResponse, StreamChunk, StreamingCompletionResponse
from . import _openai_chat
from ._common import model_in_path
from ._openai_media import AudioGenerationModel, EmbeddingModel, ImageGenerationModel, TranscriptionModel

__all__ = ["Client", "ClientBuilder", "ChatCompletionsModel", "ContentFilteredError", "DEFAULT_API_VERSION"]

DEFAULT_API_VERSION = "2024-10-21"


class ContentFilteredError(ContentBlockedError):
    """Azure's content filter withheld the whole answer (finish reason "content_filter").
    `body` is the raw response (None for a stream), `reason` the finish reason, `safety` the
    filters' results on the prompt and the answer as `SafetyResult`s, as `response.safety` holds
    them (the filter that withheld the answer is `blocked`)."""

    def __init__(self, message: str, *, provider: str | None = None, body: Any = None,
                 reason: str = "content_filter", safety: Iterable[SafetyResult] = ()) -> None:
        super().__init__(message, provider=provider, body=body, reason=reason, safety=safety)


def _checked(response: CompletionResponse, provider: str) -> CompletionResponse:
    if response.finish_reason == "content_filter" and not response.text and not response.tool_calls:
        blocked = ", ".join(f"{r.category}: {r.level or 'filtered'}" for r in response.safety
                            if r.blocked and r.target == "answer")
        raise ContentFilteredError(f"{provider}: the content filter withheld the answer (finish_reason "
                                   f"content_filter{'; ' + blocked if blocked else ''})", provider=provider,
                                   body=response.raw_response, safety=response.safety)
    return response


class ChatCompletionsModel(_openai_chat.ChatCompletionsModel):
    """OpenAI Chat Completions on a deployment, with Azure's content filter made visible."""

    def completion(self, request: CompletionRequest) -> CompletionResponse:
        return _checked(super().completion(request), self.provider)

    def stream(self, request: CompletionRequest) -> StreamingCompletionResponse:
        inner = super().stream(request)

        def chunks() -> Iterator[StreamChunk]:
            with inner:  # closing this stream closes the connection too
                for chunk in inner:
                    if isinstance(chunk, FinalResponse):
                        _checked(chunk.response, self.provider)
                    yield chunk

        return StreamingCompletionResponse(chunks(), self.provider, abort=inner.abort, model=inner.model,
                                           raw_events=inner.raw_events)


class _Deployable(Protocol):
    path: str
    model: str


M = TypeVar("M", bound=_Deployable)


def _on_deployment(model: M) -> M:
    """`model` sending to its deployment's path: `/deployments/{name}` + the operation's path."""
    model.path = f"/deployments/{model_in_path('azure', model.model)}{model.path}"
    return model


class Client(ProviderClient, CompletionClient, EmbeddingsClient, TranscriptionClient, ImageGenerationClient,
             AudioGenerationClient):
    """An Azure OpenAI client: an API key (`api-key` header) or an Entra ID `token`, exactly one.

    `endpoint` is the resource URL (`base_url` is accepted as its alias, e.g. from a
    `ProviderValue`); `api_version` defaults to `DEFAULT_API_VERSION`.
    """

    provider: ClassVar[str] = "azure"
    default_base_url: ClassVar[str] = ""  # none: every resource has its own endpoint
    # openai-python's AzureOpenAI names first, then the shorter ones rig_sync read before.
    env_api_key: ClassVar[tuple[str, ...]] = ("AZURE_OPENAI_API_KEY", "AZURE_API_KEY")
    env_base_url: ClassVar[tuple[str, ...]] = ("AZURE_OPENAI_ENDPOINT", "AZURE_ENDPOINT")
    env_token: ClassVar[tuple[str, ...]] = ("AZURE_OPENAI_AD_TOKEN", "AZURE_TOKEN")
    env_api_version: ClassVar[tuple[str, ...]] = ("OPENAI_API_VERSION", "AZURE_API_VERSION")
    env_options: ClassVar[tuple[str, ...]] = (*env_token, *env_api_version)
    requires_api_key: ClassVar[bool] = False  # a key or a token: checked in __init__
    chat_dialect: ClassVar[_openai_chat.ChatDialect] = _openai_chat.OPENAI_DIALECT  # Chat Completions as OpenAI's

    def __init__(self, api_key: str | None = None, *, endpoint: str | None = None, base_url: str | None = None,
                 api_version: str | None = None, token: str | None = None,
                 token_provider: Callable[[], Token] | None = None, **kwargs: Any) -> None:
        """`token_provider` (as openai-python's `azure_ad_token_provider`) returns an Entra ID token,
        or `(token, seconds until it expires)`; it is called again before the token expires."""
        # What is not passed comes from the environment; an explicit key or token excludes the other's variables.
        if endpoint is None and base_url is None:
            endpoint = _first_env(self.env_base_url)
        if token_provider is not None:
            if api_key is not None or token is not None or kwargs.get("auth") is not None:
                raise ClientBuildError("azure: pass one of an API key, a token, a token_provider or auth=, not both")
            kwargs["auth"] = TokenAuth(token_provider)
        elif api_key is None and token is None and kwargs.get("auth") is None:
            api_key = _first_env(self.env_api_key)
            token = None if api_key else _first_env(self.env_token)
        if api_version is None:
            api_version = _first_env(self.env_api_version)
        if endpoint is not None and base_url is not None and endpoint != base_url:
            raise ClientBuildError("azure: pass the resource URL as endpoint or base_url, not both")
        endpoint = endpoint if endpoint is not None else base_url
        if not isinstance(endpoint, str) or not endpoint.strip():
            raise ClientBuildError("azure: no endpoint. Pass endpoint='https://<resource>.openai.azure.com' "
                                   f"or set {' or '.join(self.env_base_url)}")
        for name, value in (("api_key", api_key), ("token", token), ("api_version", api_version)):
            if value is not None and not isinstance(value, str):
                raise TypeError(f"azure: {name} must be a string, not {type(value).__name__}")
        has_key, has_token = bool(api_key and api_key.strip()), bool(token and token.strip())
        if has_key + has_token + (kwargs.get("auth") is not None) > 1:
            raise ClientBuildError("azure: pass one of an API key, an Entra ID token, a token_provider "
                                   "or auth=, not both")
        if not (has_key or has_token or kwargs.get("auth") is not None):
            raise MissingAPIKeyError(f"azure: no credentials. Pass an API key (or set {' or '.join(self.env_api_key)}) "
                                     f"or an Entra ID token=... (or set {' or '.join(self.env_token)})")
        version = (api_version or DEFAULT_API_VERSION).strip()
        if not version:
            raise ClientBuildError("azure: api_version must not be blank")
        self.api_version = version
        root = endpoint.strip().rstrip("/")
        root = root[: -len("/openai")] if root.endswith("/openai") else root
        self.endpoint = root
        if has_token:
            kwargs["auth"] = BearerAuth(str(token).strip())
        super().__init__(api_key if has_key else None,
                         base_url=f"{root}/openai?api-version={quote(version, safe='')}", **kwargs)

    def make_auth(self, api_key: str) -> Auth:
        return HeaderAuth("api-key", api_key)

    # The model name is the deployment name; each model sends to its deployment's path.

    def completion_model(self, model: str) -> ChatCompletionsModel:
        return _on_deployment(ChatCompletionsModel(self, model))

    def embedding_model(self, model: str, ndims: int | None = None) -> EmbeddingModel:
        return _on_deployment(EmbeddingModel(self, model, ndims))

    def transcription_model(self, model: str) -> TranscriptionModel:
        return _on_deployment(TranscriptionModel(self, model))

    def image_generation_model(self, model: str) -> ImageGenerationModel:
        return _on_deployment(ImageGenerationModel(self, model))

    def audio_generation_model(self, model: str) -> AudioGenerationModel:
        return _on_deployment(AudioGenerationModel(self, model))

    def __repr__(self) -> str:
        return f"azure.Client(endpoint={self.endpoint!r}, api_version={self.api_version!r})"


ClientBuilder = Client.Builder
