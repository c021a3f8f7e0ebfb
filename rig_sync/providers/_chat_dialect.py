"""How an OpenAI-compatible provider's Chat Completions deviate from OpenAI's: `ChatDialect` and
`PartDialect` values, carried by each row of `_compat` and read by `_openai_chat`. Kept apart from
the wire code so that a provider's client class can name its dialect without loading that code."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import attrs

__all__ = ["ChatDialect", "PartDialect", "OPENAI_DIALECT", "OPENAI_PARTS", "dialect_of"]


@attrs.frozen
class PartDialect:
    """How a provider spells audio and document parts of a user message.

    OpenAI (the default): audio as `{"data", "format"}`, documents inline as a `file` part.
    Mistral (`bare_audio`, `documents_by_url`): audio as the base64 string, documents as a
    `document_url` part (it has no inline file part, so bytes are refused before sending)."""

    bare_audio: bool = False
    documents_by_url: bool = False


OPENAI_PARTS = PartDialect()


@attrs.frozen
class ChatDialect:
    """How a provider's Chat Completions deviate from OpenAI's (the defaults are OpenAI's).

    `tools`: it takes tools (False: a request with tools is refused before sending).
    `streaming`: it streams (False: `stream()` is refused).
    `stream_usage`: it accepts `stream_options.include_usage` (False: the field is left out, for
    servers that reject it or send usage unasked).
    `done_marker`: its streams end with `data: [DONE]` (False: a finish reason ends them).
    `end_object`: the `object` of a chunk that ends its streams as `[DONE]` does (Perplexity's
    "chat.completion.done").
    `required_tool_choice`: its word for ToolChoice "required" (Mistral: "any").
    `named_tool_choice`: it can force one named tool (False: tool_choice is a string only, and a
    named tool goes as `required_tool_choice` with only that tool offered).
    `user_parts`: how it spells audio and document parts of a user message."""

    tools: bool = True
    streaming: bool = True
    stream_usage: bool = True
    done_marker: bool = True
    end_object: str | None = None
    required_tool_choice: str = "required"
    named_tool_choice: bool = True
    user_parts: PartDialect = OPENAI_PARTS


OPENAI_DIALECT = ChatDialect()


@runtime_checkable
class _SpeaksDialect(Protocol):
    @property
    def chat_dialect(self) -> ChatDialect: ...


def dialect_of(client: Any) -> ChatDialect:
    """The dialect a client speaks: its class's `chat_dialect`; for a client class of its own that
    names none, OpenAI's, with the tools and streaming every client class declares
    (`supports_tools`, `streams_completions`)."""
    if isinstance(client, _SpeaksDialect):
        return client.chat_dialect
    return attrs.evolve(OPENAI_DIALECT, tools=client.supports_tools, streaming=client.streams_completions)
