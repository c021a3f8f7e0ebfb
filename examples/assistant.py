"""The rig_sync half of the example web apps: what the Flask and the Django views call.

Build one `Assistant` per process (the apps do), never one per request: the clients inside own
the connection pools that every request and thread of the process shares. Settings come from
the environment:

    OPENAI_API_KEY, OPENAI_BASE_URL, ANTHROPIC_API_KEY, ANTHROPIC_BASE_URL, ...
                 read by each provider's `Client.from_env()`; any provider rig_sync knows works
    RIG_AGENT    provider:model the chat views talk to        (default: openai:gpt-4o-mini)
    RIG_FAN_OUT  comma-separated provider:model targets of the fan-out view
                 (default: openai:gpt-4o-mini,anthropic:claude-3-5-haiku-latest)
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping

import attrs

from rig_sync import batch
from rig_sync.agent import Agent, AgentStream
from rig_sync.client.builder import DynClientBuilder

__all__ = ["Assistant", "BadPrompt", "ReplyStream", "clean_prompt"]

DEFAULT_AGENT = "openai:gpt-4o-mini"
DEFAULT_FAN_OUT = "openai:gpt-4o-mini,anthropic:claude-3-5-haiku-latest"
PREAMBLE = "You are a helpful assistant. Answer briefly."
MAX_PROMPT_CHARS = 8000
# For streamed replies: no caching, and no buffering by a proxy (nginx) in front of the app.
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class BadPrompt(ValueError):
    """The request carried no usable prompt (the views answer 400)."""


def clean_prompt(value: object) -> str:
    """The prompt a client sent, or `BadPrompt` saying what is wrong with it."""
    if not isinstance(value, str) or not value.strip():
        raise BadPrompt("send a non-empty 'prompt' (query parameter or JSON body field)")
    if len(value) > MAX_PROMPT_CHARS:
        raise BadPrompt(f"the prompt is {len(value)} characters long; the limit is {MAX_PROMPT_CHARS}")
    return value.strip()


class ReplyStream:
    """An agent's streamed reply as text pieces, ready to be a streaming HTTP response body.

    The provider is called, and the first piece read, when this is created: a provider that fails
    makes the view fail while it can still answer with an error status, not after a 200 went out.
    WSGI servers call `close()` when the response ends or the client goes away; that closes the
    provider stream and releases its connection, however much of it was read.
    """

    def __init__(self, stream: AgentStream) -> None:
        self._stream = stream
        self._pieces = stream.text_stream()
        try:
            self._head = [next(self._pieces)]
        except StopIteration:
            self._head = []
        except BaseException:
            self.close()
            raise

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        if self._head:
            return self._head.pop()
        return next(self._pieces)

    def close(self) -> None:
        # Closing the agent's stream closes the provider stream under it (and so the pieces).
        self._stream.close()


@attrs.frozen
class Assistant:
    """An agent for the chat views and the targets of the fan-out view, on one shared registry."""

    agent: Agent
    targets: tuple[tuple[str, str], ...]
    builder: DynClientBuilder = attrs.field(repr=False)

    @classmethod
    def from_env(cls, builder: DynClientBuilder | None = None, environ: Mapping[str, str] | None = None) -> Assistant:
        """Built from `RIG_AGENT` / `RIG_FAN_OUT` and the providers' own variables. Every client is
        built now, so a missing key fails at start-up rather than at some user's first request."""
        env = os.environ if environ is None else environ
        builder = DynClientBuilder() if builder is None else builder
        agent = builder.id(env.get("RIG_AGENT") or DEFAULT_AGENT).agent().preamble(PREAMBLE).build()
        ids = [builder.id(spec.strip()) for spec in (env.get("RIG_FAN_OUT") or DEFAULT_FAN_OUT).split(",")
               if spec.strip()]
        targets = tuple(dict.fromkeys((i.provider, i.model) for i in ids))  # distinct, in order
        for target in targets:
            builder.completion(*target)
        return cls(agent, targets, builder)

    def ask(self, prompt: str) -> str:
        """The agent's answer."""
        return self.agent.prompt(prompt)

    def stream(self, prompt: str) -> ReplyStream:
        """The agent's answer, piece by piece."""
        return ReplyStream(self.agent.stream_prompt(prompt))

    def fan_out(self, prompt: str) -> dict[str, dict[str, str]]:
        """Every target's answer, in parallel: `{"answers": {id: text}, "errors": {id: message}}`."""
        results = batch.fan_out(prompt, self.targets, builder=self.builder, preamble=PREAMBLE)
        assert isinstance(results, dict)  # mode="all"
        out: dict[str, dict[str, str]] = {"answers": {}, "errors": {}}
        for (provider, model), result in results.items():
            if isinstance(result, str):
                out["answers"][f"{provider}:{model}"] = result
            else:
                out["errors"][f"{provider}:{model}"] = f"{type(result).__name__}: {result}"
        return out
