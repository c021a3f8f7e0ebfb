"""One-liners on the shared registry: `rig_sync.complete`, `rig_sync.stream`, `rig_sync.embed`.

    import rig_sync
    print(rig_sync.complete("openai:gpt-4o-mini", "Why is the sky blue?").text)

Every call goes through `rig_sync.client.builder.shared_registry()`: each provider's client is
built once (from its environment variables, or per distinct `api_key`/`base_url` override) and
its pooled connections are reused, so a loop of 200 calls opens one connection, not 200.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, overload

if TYPE_CHECKING:
    from .client import ProviderValue
    from .completion import CompletionModel, CompletionRequestBuilder, CompletionResponse, Prompt
    from .embeddings import Embedding
    from .streaming import StreamingCompletionResponse

__all__ = ["complete", "stream", "embed"]


def _value(api_key: str | None, base_url: str | None) -> ProviderValue | None:
    """The override to build (and cache) a client from; None: the client from the environment."""
    if api_key is None and base_url is None:
        return None
    from .client import ProviderValue

    return ProviderValue(api_key, base_url)


def _request(model: str, prompt: Prompt, preamble: str | None, temperature: float | None,
             max_tokens: int | None, api_key: str | None, base_url: str | None) -> CompletionRequestBuilder:
    from .client.builder import shared_registry

    chat: CompletionModel = shared_registry().completion(model, value=_value(api_key, base_url))
    request = chat.completion_request(prompt)
    if preamble is not None:
        request = request.preamble(preamble)
    if temperature is not None:
        request = request.temperature(temperature)
    if max_tokens is not None:
        request = request.max_tokens(max_tokens)
    return request


def complete(model: str, prompt: Prompt, *, preamble: str | None = None, temperature: float | None = None,
             max_tokens: int | None = None, api_key: str | None = None,
             base_url: str | None = None) -> CompletionResponse:
    """Ask `model` (a `"provider:model"` id) once; returns the `CompletionResponse` (`.text`,
    `.usage`, `.tool_calls`, `.raw_response`).

    `api_key`/`base_url` override the provider's environment variables (one cached client per
    distinct pair). Raises `InvalidIdString` for a malformed id, `UnknownProvider`,
    `UnsupportedFeature`, `MissingAPIKeyError` when no key is passed or set, and the HTTP errors of
    `rig_sync.errors` (`RateLimitError`, `AuthenticationError`, …) once retries are spent."""
    return _request(model, prompt, preamble, temperature, max_tokens, api_key, base_url).send()


def stream(model: str, prompt: Prompt, *, preamble: str | None = None, temperature: float | None = None,
           max_tokens: int | None = None, api_key: str | None = None,
           base_url: str | None = None) -> StreamingCompletionResponse:
    """Like `complete`, streamed: returns the `StreamingCompletionResponse`, which yields chunks,
    has `text_stream()` (just the text pieces) and `.response` once done, and closes its
    connection when used as a context manager (`with rig_sync.stream(...) as s:`)."""
    return _request(model, prompt, preamble, temperature, max_tokens, api_key, base_url).stream()


@overload
def embed(model: str, texts: str, *, api_key: str | None = ...,  # type: ignore[overload-overlap]  # a str first
          base_url: str | None = ...) -> Embedding: ...


@overload
def embed(model: str, texts: Sequence[str], *, api_key: str | None = ...,
          base_url: str | None = ...) -> list[Embedding]: ...


def embed(model: str, texts: str | Sequence[str], *, api_key: str | None = None,
          base_url: str | None = None) -> Embedding | list[Embedding]:
    """Embeddings of `texts` with `model` (a `"provider:model"` id), in input order (chunked by the
    model's `max_documents`); a single string gives a single `Embedding` (`.vec`, `.document`).

    Raises like `complete`, and `InvalidRequestError`/`TypeError` for empty or non-string texts."""
    from .client.builder import shared_registry

    embedder = shared_registry().embeddings(model, value=_value(api_key, base_url))
    return embedder.embed_text(texts) if isinstance(texts, str) else embedder.embed_texts(texts)
