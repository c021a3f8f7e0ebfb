"""Anthropic: Claude on the Messages API (`POST /v1/messages`), plain and streamed, with tools.

    from rig_sync.providers import anthropic
    client = anthropic.Client.from_env()          # ANTHROPIC_API_KEY, ANTHROPIC_BASE_URL
    claude = client.completion_model(anthropic.CLAUDE_SONNET_4_5)
    claude.completion_request("Hello").max_tokens(256).send().text

Options: `anthropic_version` (the `anthropic-version` header, default "2023-06-01") and
`betas` (names sent in `anthropic-beta`). Provider-specific body fields (`thinking`,
`output_config`, `metadata`, server tools …) go in `additional_params`. How core types map to
the wire (documents, reasoning, usage, finish reasons, refusals) is described in
`_anthropic_wire`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from .._model import ModelView
from ..auth import Auth, HeaderAuth
from ..client import CompletionClient, ProviderClient
from ..completion import BaseCompletionModel, CompletionRequest, CompletionResponse
from ..streaming import StreamingCompletionResponse
from ._anthropic_stream import stream_messages
from ._anthropic_wire import (
    REDACTED_THINKING,
    IncompleteToolCallError,
    RefusalError,
    default_max_tokens,
    messages_body,
    parse_message,
)

__all__ = ["Client", "ClientBuilder", "CompletionModel", "RefusalError", "IncompleteToolCallError",
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

    def completion(self, request: CompletionRequest) -> CompletionResponse:
        body = messages_body(self.model, request, self.provider, stream=False)
        return self._complete(self.path, body, parse_message)

    def stream(self, request: CompletionRequest) -> StreamingCompletionResponse:
        body = messages_body(self.model, request, self.provider, stream=True)
        return self._stream(self.path, body, stream_messages, raw=request.keep_raw_events)


class Client(ProviderClient, CompletionClient):
    """An Anthropic client: the key goes in `x-api-key`, the API version in `anthropic-version`."""

    provider: ClassVar[str] = "anthropic"
    default_base_url: ClassVar[str] = "https://api.anthropic.com"

    def _configure(self, options: Mapping[str, Any]) -> None:
        options = dict(options)
        version = options.pop("anthropic_version", ANTHROPIC_VERSION)
        if not isinstance(version, str) or not version.strip():
            raise TypeError(f"anthropic: anthropic_version must be a non-empty string, not {version!r}")
        betas = options.pop("betas", ())
        if isinstance(betas, str):
            betas = (betas,)
        if not isinstance(betas, Iterable) or not all(isinstance(b, str) and b.strip() for b in betas):
            raise TypeError("anthropic: betas must be a list of beta names (strings)")
        self._version = version.strip()
        self._betas = tuple(b.strip() for b in betas)
        super()._configure(options)

    def make_auth(self, api_key: str) -> Auth:
        return HeaderAuth("x-api-key", api_key)

    def extra_headers(self) -> dict[str, str]:
        headers = {"anthropic-version": self._version}
        if self._betas:
            headers["anthropic-beta"] = ",".join(self._betas)
        return headers

    def completion_model(self, model: str) -> CompletionModel:
        return CompletionModel(self, model)


ClientBuilder = Client.Builder
