"""Anthropic: Claude on the Messages API (`POST /v1/messages`), plain and streamed, with tools.

    from rig_sync.providers import anthropic
    client = anthropic.Client.from_env()          # ANTHROPIC_API_KEY, ANTHROPIC_BASE_URL
    claude = client.completion_model(anthropic.CLAUDE_SONNET_4_5)
    claude.completion_request("Hello").max_tokens(256).send().text
    client.list_models()                          # GET /v1/models, every page; client.verify() asks for one

Options: `anthropic_version` (the `anthropic-version` header, default "2023-06-01") and
`betas` (names sent in `anthropic-beta`). Provider-specific body fields (`thinking`,
`output_config`, `metadata`, server tools …) go in `additional_params`. How core types map to
the wire (documents, reasoning, usage, finish reasons, refusals) is described in
`_anthropic_wire`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import attrs

from ..auth import Auth, HeaderAuth
from ..client import CompletionClient, ModelInfo, ModelListingClient, ProviderClient, ProviderOptions, checked, option
from ..client.capabilities import Prepared, entries, paged
from ..completion import BaseCompletionModel, CompletionRequest, CompletionResponse
from ..streaming import StreamingCompletionResponse
from ._anthropic_batch import AnthropicBatchJobs
from ._anthropic_stream import stream_messages
from ._anthropic_wire import (
    REDACTED_THINKING,
    IncompleteToolCallError,
    RefusalError,
    default_max_tokens,
    messages_body,
    parse_message,
)
from ._model import ModelView

__all__ = ["Client", "ClientBuilder", "AnthropicOptions", "CompletionModel", "RefusalError", "IncompleteToolCallError",
           "REDACTED_THINKING", "default_max_tokens", "ANTHROPIC_VERSION"]

ANTHROPIC_VERSION = "2023-06-01"

# Model names, for convenience and typo-safety.
CLAUDE_OPUS_4_5 = "claude-opus-4-5"
CLAUDE_SONNET_4_5 = "claude-sonnet-4-5"
CLAUDE_HAIKU_4_5 = "claude-haiku-4-5"
CLAUDE_4_OPUS = "claude-opus-4-0"
CLAUDE_4_SONNET = "claude-sonnet-4-0"
CLAUDE_3_7_SONNET = "claude-3-7-sonnet-latest"
CLAUDE_3_5_SONNET = "claude-3-5-sonnet-latest"
CLAUDE_3_5_HAIKU = "claude-3-5-haiku-latest"


class CompletionModel(ModelView, BaseCompletionModel):
    """A Claude model on `POST {base_url}/v1/messages`."""

    path = "/v1/messages"

    def prepare(self, request: CompletionRequest) -> Prepared:
        """The call `completion(request)` sends (a batch job's item holds the same)."""
        return Prepared(self.path, messages_body(self.model, request, self.provider, stream=False), parse_message)

    def completion(self, request: CompletionRequest) -> CompletionResponse:
        return self._complete_prepared(self.prepare(request))

    def stream(self, request: CompletionRequest) -> StreamingCompletionResponse:
        body = messages_body(self.model, request, self.provider, stream=True)
        return self._stream(self.path, body, stream_messages, raw=request.keep_raw_events)


def _models_page(data: Any) -> tuple[list[ModelInfo], str | None]:
    """One page of `GET /v1/models`: `{data: [{id, display_name, created_at}], has_more, last_id}`."""
    page = [ModelInfo.of(e, e["id"], name=e.get("display_name"), created=e.get("created_at"))
            for e in entries(data, "data", "anthropic") if isinstance(e.get("id"), str) and e["id"]]
    last = data.get("last_id")
    return page, last if data.get("has_more") is True and isinstance(last, str) and last else None


@attrs.frozen(kw_only=True)
class AnthropicOptions(ProviderOptions):
    """The `anthropic-version` header, and the beta names sent in `anthropic-beta`."""

    anthropic_version: str = option(ANTHROPIC_VERSION, validator=checked(str.__len__, "a version like '2023-06-01'"))
    betas: tuple[str, ...] = option(())


class Client(ProviderClient, CompletionClient, AnthropicBatchJobs, ModelListingClient):
    """An Anthropic client: the key goes in `x-api-key`, the API version in `anthropic-version`."""

    provider: ClassVar[str] = "anthropic"
    default_base_url: ClassVar[str] = "https://api.anthropic.com"

    Options = AnthropicOptions
    options: AnthropicOptions

    def make_auth(self, api_key: str) -> Auth:
        return HeaderAuth("x-api-key", api_key)

    def extra_headers(self) -> dict[str, str]:
        headers = {"anthropic-version": self.options.anthropic_version}
        if self.options.betas:
            headers["anthropic-beta"] = ",".join(self.options.betas)
        return headers

    def completion_model(self, model: str) -> CompletionModel:
        return CompletionModel(self, model)

    def list_models(self) -> list[ModelInfo]:
        """Every model (`GET /v1/models`, newest first, 1000 a page)."""
        return paged(lambda after: _models_page(self._get_json(
            "/v1/models", {"limit": "1000", **({"after_id": after} if after else {})})))

    def verify(self) -> None:
        """One model's worth of `GET /v1/models`: None when the key works, `AuthenticationError` if not."""
        self._get_json("/v1/models", {"limit": "1"})


ClientBuilder = Client.Builder
