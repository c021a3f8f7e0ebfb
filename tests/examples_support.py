"""What the Flask and the Django example tests share (imported by them; not a test module).

`examples/` is not installed with the package: it is imported from the checkout, however pytest
was started (`python -m pytest` puts the repository on the path, a bare `pytest` does not).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import attrs
import pytest

from rig_sync.client.builder import ClientFactory, DynClientBuilder
from rig_sync.providers import openai
from rig_sync.testing import FakeProvider

ROOT = str(Path(__file__).resolve().parents[1])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from examples.assistant import Assistant, ReplyStream  # noqa: E402 - needs the path above

T = TypeVar("T")

AGENT = ("openai", "gpt-4o-mini")
FAN_OUT = {"openai:gpt-4o-mini": "/v1/chat/completions", "anthropic:claude-3-5-haiku-latest": "/v1/messages"}
BOUND = 10.0  # seconds: a generous bound for anything that should take milliseconds


def point_env_at(fake: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    """The apps' environment: both providers on the fake, default agent and fan-out targets."""
    monkeypatch.setenv("OPENAI_API_KEY", fake.api_key)
    monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", fake.api_key)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.url)
    monkeypatch.delenv("RIG_AGENT", raising=False)
    monkeypatch.delenv("RIG_FAN_OUT", raising=False)


@attrs.frozen
class RecordingAssistant(Assistant):
    """Keeps every stream it hands out, so garbage collection cannot close one behind a test's back."""

    streams: list[ReplyStream] = attrs.field(factory=list)

    def stream(self, prompt: str) -> ReplyStream:
        reply = super().stream(prompt)
        self.streams.append(reply)
        return reply


def single_connection_assistant(fake: FakeProvider) -> RecordingAssistant:
    """An assistant whose OpenAI client has a pool of ONE connection: a stream left open would
    block every later request of the process, so serving one proves the stream was released."""

    def build() -> openai.Client:
        client: openai.Client = (
            openai.Client.builder(fake.api_key).base_url(fake.base_url).pool_size(1).timeout(5).max_retries(0).build()
        )
        return client

    builder = DynClientBuilder().register(ClientFactory("openai", build, openai.Client.from_value))
    assistant = RecordingAssistant.from_env(builder, {"RIG_AGENT": ":".join(AGENT), "RIG_FAN_OUT": ":".join(AGENT)})
    assert isinstance(assistant, RecordingAssistant)
    return assistant


def finishes_within(fn: Callable[[], T], seconds: float = BOUND) -> T:
    """`fn()` run on a daemon thread; fails the test if it is still blocked after `seconds`
    (a daemon thread, so a test that fails this way cannot hang the whole run)."""
    box: list[T] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            box.append(fn())
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"still blocked after {seconds} s: the connection was never released")
    if errors:
        raise errors[0]
    return box[0]


def assert_streamed_in_order(chunks: list[bytes], expected: str) -> None:
    """Several chunks that, in the order received, spell `expected`."""
    assert len(chunks) >= 3, chunks
    text = ""
    for chunk in chunks:
        assert chunk, "an empty chunk was sent"
        text += chunk.decode()
        assert expected.startswith(text), (text, expected)
    assert text == expected
