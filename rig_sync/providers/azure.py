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

import attrs

from ..auth import Auth, BearerAuth, HeaderAuth, Token, TokenAuth
from ..client import (
    Access,
    AudioGenerationClient,
    CompletionClient,
    EmbeddingsClient,
    ImageGenerationClient,
    ProviderClient,
    ProviderOptions,
    TranscriptionClient,
    checked,
    env_value,
    option,
)
from ..completion import CompletionRequest, CompletionResponse, SafetyResult
from ..errors import ClientBuildError, ContentBlockedError, MissingAPIKeyError
from ..streaming import FinalResponse, StreamChunk, StreamingCompletionResponse
from . import _openai_chat
from ._common import model_in_path
from ._openai_media import AudioGenerationModel, EmbeddingModel, ImageGenerationModel, TranscriptionModel

__all__ = ["Client", "ClientBuilder", "AzureOptions", "ChatCompletionsModel", "ContentFilteredError",
           "DEFAULT_API_VERSION"]

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


@attrs.frozen(kw_only=True)
class AzureOptions(ProviderOptions):
    """`endpoint` (the resource URL; `base_url` is its alias), `api_version`, and an Entra ID
    `token` or `token_provider` in place of the key. `token_provider` (as openai-python's
    `azure_ad_token_provider`) returns a token, or `(token, seconds until it expires)`; it is
    called again before the token expires."""

    endpoint: str | None = option()
    api_version: str = option(DEFAULT_API_VERSION, env=("OPENAI_API_VERSION", "AZURE_API_VERSION"),
                              validator=checked(str.__len__, "a version like '2024-10-21'"))
    token: str | None = option(secret=True)
    token_provider: Callable[[], Token] | None = option(validator=checked(callable, "a function returning a token"))


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
    env_options: ClassVar[tuple[str, ...]] = env_token
    requires_api_key: ClassVar[bool] = False  # a key or a token: checked in resolve_access
    chat_dialect: ClassVar[_openai_chat.ChatDialect] = _openai_chat.OPENAI_DIALECT  # Chat Completions as OpenAI's

    Options = AzureOptions
    options: AzureOptions
    endpoint: str

    @property
    def api_version(self) -> str:
        return self.options.api_version

    def resolve_access(self, api_key: str | None, base_url: str | None, auth: Auth | None) -> Access:
        # What is not passed comes from the environment; an explicit key or token excludes the other's variables.
        endpoint, token, token_provider = self.options.endpoint, self.options.token, self.options.token_provider
        if endpoint is not None and base_url is not None and endpoint != base_url:
            raise ClientBuildError("azure: pass the resource URL as endpoint or base_url, not both")
        api_key = (api_key or "").strip() or None  # blank: not given
        given = [name for name, value in (("an API key", api_key), ("a token", token or None),
                                          ("a token_provider", token_provider), ("auth=", auth)) if value is not None]
        if len(given) > 1:
            raise ClientBuildError(f"azure: pass one of an API key, an Entra ID token, a token_provider or auth=, "
                                   f"not {' and '.join(given)}")
        if token_provider is not None:
            auth = TokenAuth(token_provider)
        elif token:
            auth = BearerAuth(token)
        api_key, root, auth = super().resolve_access(api_key, endpoint or base_url, auth)
        if api_key is None and auth is None and (token := env_value(self.env_token)):
            auth = BearerAuth(token)
        if api_key is None and auth is None:
            raise MissingAPIKeyError(f"azure: no credentials. Pass an API key (or set {' or '.join(self.env_api_key)}) "
                                     f"or an Entra ID token=... (or set {' or '.join(self.env_token)})")
        if not root.strip():
            raise ClientBuildError("azure: no endpoint. Pass endpoint='https://<resource>.openai.azure.com' "
                                   f"or set {' or '.join(self.env_base_url)}")
        root = root.strip().rstrip("/")
        self.endpoint = root[: -len("/openai")] if root.endswith("/openai") else root
        return Access(api_key, f"{self.endpoint}/openai?api-version={quote(self.api_version, safe='')}", auth)

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
