"""`make demo`: the offline tour whatever the environment holds; `--live` only when asked, saying
first what it will call, and coping with whatever the "real" provider (a second fake) answers."""

from __future__ import annotations

import io
import subprocess
import sys
from typing import Any

import pytest

from rig_sync.cli import main
from rig_sync.client.builder import builtin_provider_names, load_provider
from rig_sync.demo import CHAT_TARGETS
from rig_sync.testing import FakeProvider, Fault, Reply

MEDIA_PATHS = ("/v1/audio/transcriptions", "/v1/images/generations", "/v1/audio/speech")


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """An environment without any provider's variables (the developer's own keys included)."""
    for name in builtin_provider_names():
        cls = load_provider(name)
        for var in (*cls.env_api_key, *cls.env_base_url, *cls.env_options):
            monkeypatch.delenv(var, raising=False)
    return monkeypatch


def point_at(env: pytest.MonkeyPatch, real: FakeProvider, *providers: str) -> None:
    """Keys and base URLs that make `real` stand in for the real OpenAI / Anthropic."""
    urls = {"openai": real.base_url, "anthropic": real.url}
    for provider in providers:
        env.setenv(f"{provider.upper()}_API_KEY", real.api_key)
        env.setenv(f"{provider.upper()}_BASE_URL", urls[provider])


class Recorder(io.StringIO):
    """stdout that notes how many requests `real` had received when each line was written."""

    def __init__(self, real: FakeProvider) -> None:
        super().__init__()
        self.real = real
        self.seen: list[tuple[str, int]] = []

    def write(self, text: str) -> int:
        self.seen.append((text, self.real.request_count))
        return super().write(text)


def test_default_is_the_offline_tour_even_with_real_keys_set(
        env: pytest.MonkeyPatch, fake: FakeProvider, capsys: pytest.CaptureFixture[str]) -> None:
    point_at(env, fake, "openai", "anthropic")  # `fake` plays the real, paid providers here
    assert main(["demo"]) == 0
    assert fake.request_count == 0
    text = capsys.readouterr().out
    assert text.startswith("Offline tour: every request goes to rig_sync.testing.FakeProvider at http://127.0.0.1:")
    assert "(OPENAI_API_KEY, ANTHROPIC_API_KEY set but not used: `demo --live` calls the real providers.)" in text
    for title in ("A prompt", "A streamed reply", "Embeddings", "A transcription", "An image", "Speech",
                  "A tool call, answered", "Choosing a provider at run time", "Fan-out across providers",
                  "A retrieval-augmented agent", "Extraction into an attrs class", "A pipeline, batched",
                  "The batch command"):
        assert f"== {title}" in text, title
    for provider, model, _ in CHAT_TARGETS:  # every native format answered through the registry
        assert f"{provider}:{model} -> 'echo: Say hi.', streamed 'echo: Stream a hi.'" in text
    assert "model called add({'a': 2, 'b': 3}) -> 5; model then said: 'tool result: 5'" in text
    assert "Person(name='Ada Lovelace', age=36)" in text
    assert "300 of 300 answered, in input order: True (exit 0)" in text
    assert "== A provider batch job (batch.submit" in text  # a child killed while waiting; the rerun reattaches
    assert "the command was killed while waiting (exit -9)" in text
    assert "run again: reattached, 1 job created in all; 198 of 200 answered, failed ['q7', 'q70'], in input order: " \
           "True (exit 1)" in text
    assert "PNG signature: True" in text
    assert "indexed 3 documents into a SQLite vector store (" in text  # the RAG step reads its context from SQLite
    assert "retrieved for the question: ['flurbo', 'glarb']\nanswer after 4 messages: 'tool result: 5'" in text
    assert "14 of 14 steps worked" in text


def test_without_the_sqlite_extra_the_rag_step_runs_in_memory(
        env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    env.setitem(sys.modules, "sqlite_vec", None)  # as if `pip install 'rig-sync[sqlite]'` had not been run
    assert main(["demo"]) == 0
    text = capsys.readouterr().out
    assert "no SQLite store here (SQLiteVectorStore needs the 'sqlite_vec' package" in text
    assert "pip install 'rig-sync[sqlite]'); in memory instead:\n" \
           "retrieved for the question: ['flurbo', 'glarb']" in text
    assert "14 of 14 steps worked" in text


def test_offline_flag_is_still_accepted_and_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr("rig_sync.demo.run", lambda **kw: calls.append(kw) or 0)
    assert main(["demo", "--offline"]) == 0 and main(["demo"]) == 0
    assert calls == [{"live": False, "media": False}] * 2
    with pytest.raises(SystemExit) as info:
        main(["demo", "--live", "--offline"])
    assert info.value.code == 2


def test_live_prints_its_plan_before_calling_and_runs_cheap_text_steps_only(
        env: pytest.MonkeyPatch, fake: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    point_at(env, fake, "openai", "anthropic")
    out = Recorder(fake)
    monkeypatch.setattr(sys, "stdout", out)
    assert main(["demo", "--live"]) == 0
    text = out.getvalue()
    plan = text[:text.index("\n== ")]
    assert plan.splitlines() == [
        "Live run: real requests to real providers, billed to your keys. It will call:",
        "  A prompt: openai:gpt-4o-mini",
        "  A streamed reply: openai:gpt-4o-mini",
        "  Embeddings: openai:text-embedding-3-small (3 short texts)",
        "  A tool call, answered: openai:gpt-4o-mini (2 requests)",
        "  Choosing a provider at run time (DynClientBuilder): "
        "openai:gpt-4o-mini, anthropic:claude-3-7-sonnet-latest (2 short requests each)",
        f"  (openai at {fake.base_url}, key from OPENAI_API_KEY)",
        f"  (anthropic at {fake.url}, key from ANTHROPIC_API_KEY)",
        "Left out: the paid media steps (transcription, image, speech); add --media to run them.",
    ]
    before = out.seen[:next(i for i, (written, _) in enumerate(out.seen) if written.startswith("\n== "))]
    assert "".join(written for written, _ in before) == plan
    assert all(sent == 0 for _, sent in before)  # the whole plan printed before the first request
    # A real model asked to use the tool may answer in plain text (as this one does): reported, no crash.
    assert "the model answered without calling the tool: 'echo: What is 2 + 3? Use the add tool.'" in text
    assert "anthropic:claude-3-7-sonnet-latest -> 'echo: Say hi.'" in text
    assert {r.path for r in fake.requests} == {"/v1/chat/completions", "/v1/embeddings", "/v1/messages"}
    assert all(r.json.get("max_tokens") or r.path == "/v1/embeddings" for r in fake.requests)  # bounded answers
    assert "5 of 5 steps worked" in text


def test_live_media_only_when_asked(env: pytest.MonkeyPatch, fake: FakeProvider,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    point_at(env, fake, "openai")
    assert main(["demo", "--live", "--media"]) == 0
    text = capsys.readouterr().out
    assert "  An image: openai:gpt-image-1 (one 1024x1024 image, low quality)" in text
    assert {r.path for r in fake.requests} >= set(MEDIA_PATHS)
    assert "8 of 8 steps worked" in text


def test_live_media_needs_the_openai_key(env: pytest.MonkeyPatch, fake: FakeProvider,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    point_at(env, fake, "anthropic")
    assert main(["demo", "--live", "--media"]) == 0
    text = capsys.readouterr().out
    assert "Left out: the media steps, which need OPENAI_API_KEY." in text
    assert "== Embeddings" not in text  # Anthropic has none
    assert {r.path for r in fake.requests} == {"/v1/messages"}


def test_live_with_a_keyless_provider_named_by_its_base_url(env: pytest.MonkeyPatch, fake: FakeProvider,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    env.setenv("OLLAMA_BASE_URL", fake.url)  # a local Ollama needs no key
    assert main(["demo", "--live"]) == 0
    text = capsys.readouterr().out
    assert f"  (ollama at {fake.url}, no key)" in text and "  A prompt: ollama:llama3.2" in text
    assert "ollama:llama3.2 -> 'echo: Say hi.'" in text and "4 of 4 steps worked" in text


def test_live_copes_with_odd_answers(env: pytest.MonkeyPatch, fake: FakeProvider,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    point_at(env, fake, "openai")
    fake.script(Reply.text(""), Reply.text(""),  # the prompt and the stream: no text at all
                Reply.tool_calls([("add", {"a": 2, "b": "three"})]), path="/v1/chat/completions")
    assert main(["demo", "--live"]) == 0
    text = capsys.readouterr().out
    assert "the model said: no text (finish reason: stop)" in text
    assert "0 pieces: \nusage:" in text
    # Arguments that do not fit the tool go back to the model as an error, as an agent would send them.
    assert "model called add({'a': 2, 'b': 'three'}) -> error: " in text
    tool_turn = [r for r in fake.requests if any(m["role"] == "tool" for m in r.json.get("messages", []))]
    assert len(tool_turn) == 1 and tool_turn[0].json["messages"][-1]["content"].startswith("error: ")


def test_live_goes_on_when_a_provider_fails(env: pytest.MonkeyPatch, fake: FakeProvider,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    point_at(env, fake, "openai", "anthropic")
    fake.inject(Fault.status(401), times=100, path="/v1/messages")
    assert main(["demo", "--live"]) == 0
    text = capsys.readouterr().out
    assert "anthropic:claude-3-7-sonnet-latest failed: AuthenticationError" in text
    assert "openai:gpt-4o-mini -> 'echo: Say hi.'" in text and "5 of 5 steps worked" in text


def test_live_fails_only_when_nothing_worked(env: pytest.MonkeyPatch, fake: FakeProvider,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    point_at(env, fake, "openai")
    fake.inject(Fault.status(401), times=100)
    assert main(["demo", "--live"]) == 1
    captured = capsys.readouterr()
    assert captured.out.count("failed: AuthenticationError") == 5 and "0 of 5 steps worked" in captured.out
    assert fake.api_key not in captured.out + captured.err and "Traceback" not in captured.err


def test_live_without_any_key_says_which_to_set(env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--live"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("rig-sync: error: demo --live found no provider key: set one of OPENAI_API_KEY, ")
    assert "(or run the demo without --live: offline, free)" in captured.err and captured.err.count("\n") == 1


def test_module_entry_point_prints_the_matrix() -> None:
    done = subprocess.run([sys.executable, "-m", "rig_sync", "providers"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    assert "| openai |" in done.stdout and "| anthropic |" in done.stdout
