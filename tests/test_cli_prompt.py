"""`rig-sync prompt`: one question from the shell, against the loopback FakeProvider."""

from __future__ import annotations

import io
import sys

import pytest

from rig_sync.cli import main
from rig_sync.client.builder import load_provider
from rig_sync.testing import FakeProvider, Fault, Reply


def ask(fake: FakeProvider, *argv: str, model: str = "openai:gpt-4o-mini") -> int:
    return main(["prompt", *argv, "--model", model, "--base-url", fake.base_url, "--api-key", fake.api_key])


class Terminal(io.StringIO):
    """stdout/stdin that says it is a terminal, and records every write and flush in order."""

    def __init__(self, text: str = "") -> None:
        super().__init__(text)
        self.events: list[str] = []

    def isatty(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.events.append(text)
        return super().write(text)

    def flush(self) -> None:
        self.events.append("<flush>")


def test_streams_each_piece_as_it_arrives(fake: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    out = Terminal()
    monkeypatch.setattr(sys, "stdout", out)
    assert ask(fake, "What is a flurbo?") == 0
    assert out.getvalue() == "echo: What is a flurbo?\n"
    assert fake.last_request is not None and fake.last_request.json["stream"] is True
    pieces = out.events[:out.events.index("\n")]
    assert len(pieces) > 2 and pieces[1::2] == ["<flush>"] * (len(pieces) // 2)  # each piece flushed at once


def test_no_stream_prints_the_whole_answer(fake: FakeProvider, capsys: pytest.CaptureFixture[str]) -> None:
    assert ask(fake, "What is a flurbo?", "--no-stream") == 0
    assert capsys.readouterr().out == "echo: What is a flurbo?\n"
    assert fake.last_request is not None and not fake.last_request.json.get("stream")


def test_options_reach_the_request(fake: FakeProvider, capsys: pytest.CaptureFixture[str]) -> None:
    assert ask(fake, "hi", "--preamble", "Be brief", "--temperature", "0.2", "--max-tokens", "7") == 0
    assert fake.last_request is not None
    body = fake.last_request.json
    assert body["messages"][0] == {"role": "system", "content": "Be brief"}
    assert body["temperature"] == 0.2 and body["max_tokens"] == 7 and body["model"] == "gpt-4o-mini"
    assert ask(fake, "hi", "-s", "Be terse", "--no-stream") == 0  # llm's spelling of the system prompt
    assert fake.last_request.json["messages"][0]["content"] == "Be terse"


@pytest.mark.parametrize("argv", [["-"], []])
def test_prompt_from_stdin(fake: FakeProvider, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                           argv: list[str]) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("a question\nover two lines\n"))
    assert ask(fake, *argv) == 0
    assert capsys.readouterr().out == "echo: a question\nover two lines\n"


def test_no_prompt_at_a_terminal_is_refused(fake: FakeProvider, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", Terminal())
    assert ask(fake) == 2
    assert capsys.readouterr().err == ('rig-sync: error: no prompt: give one (rig-sync prompt "question" …) '
                                       "or pipe it on stdin\n")
    monkeypatch.setattr(sys, "stdin", io.StringIO("  \n"))
    assert ask(fake, "-") == 2 and capsys.readouterr().err == "rig-sync: error: the prompt is empty\n"
    assert fake.request_count == 0


@pytest.mark.parametrize(("provider", "model", "sent"), [
    (None, "OpenAI: gpt-4o-mini", "gpt-4o-mini"),     # normalised by split_model_id and the registry
    ("openai", "gpt-4o-mini", "gpt-4o-mini"),
    ("OpenAI", "openai:gpt-4o-mini", "gpt-4o-mini"),  # the same provider twice is fine
])
def test_model_spellings(fake: FakeProvider, capsys: pytest.CaptureFixture[str],
                         provider: str | None, model: str, sent: str) -> None:
    extra = ["--provider", provider] if provider else []
    assert ask(fake, "hi", "--no-stream", *extra, model=model) == 0
    assert fake.last_request is not None and fake.last_request.json["model"] == sent


def test_a_colon_inside_the_model_name(fake: FakeProvider, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prompt", "hi", "--provider", "ollama", "--model", "llama3:8b", "--base-url", fake.url]) == 0
    assert fake.last_request is not None and fake.last_request.json["model"] == "llama3:8b"
    assert main(["prompt", "hi", "--model", "ollama:llama3:8b", "--base-url", fake.url]) == 0
    assert fake.last_request.json["model"] == "llama3:8b"
    assert ask(fake, "hi", "--provider", "openrouter", model="openai/gpt-4o:free") == 0
    assert fake.last_request.json["model"] == "openai/gpt-4o:free"


@pytest.mark.parametrize(("argv", "message"), [
    (["--model", "gpt-4o"], "--model 'gpt-4o' names no provider: write it as provider:model "
                            "(e.g. openai:gpt-4o) or add --provider"),
    (["--model", "openai:gpt-4o", "--provider", "anthropic"],
     "--provider anthropic conflicts with --model 'openai:gpt-4o'; name the provider once, e.g. --model openai:gpt-4o"),
    (["--model", "opnai:gpt-4o"], "no provider named 'opnai'. Did you mean openai?"),
])
def test_bad_model_ids_are_one_clear_line(fake: FakeProvider, capsys: pytest.CaptureFixture[str],
                                          argv: list[str], message: str) -> None:
    assert main(["prompt", "hi", *argv, "--base-url", fake.base_url, "--api-key", fake.api_key]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"rig-sync: error: {message}") and err.count("\n") == 1
    assert fake.request_count == 0


def test_missing_key_names_the_option_and_the_variable(monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert main(["prompt", "hi", "--model", "openai:gpt-4o-mini"]) == 2
    assert capsys.readouterr().err == "rig-sync: error: no API key for openai: pass --api-key or set OPENAI_API_KEY\n"
    for var in load_provider("huggingface").env_api_key:
        monkeypatch.delenv(var, raising=False)
    assert main(["prompt", "hi", "--model", "huggingface:m", "--base-url", "http://127.0.0.1:9/v1"]) == 2
    either = " or ".join(load_provider("huggingface").env_api_key)  # every variable the provider reads
    assert "HF_TOKEN" in either
    assert capsys.readouterr().err == f"rig-sync: error: no API key for huggingface: pass --api-key or set {either}\n"


def test_a_failed_request_is_one_line_without_the_key(fake: FakeProvider, capsys: pytest.CaptureFixture[str]) -> None:
    fake.inject(Fault.status(401))
    code = main(["prompt", "hi", "--model", "openai:gpt-4o-mini", "--base-url", fake.base_url,
                 "--api-key", "sk-not-the-right-key-123"])
    assert code == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("rig-sync: error: openai HTTP 401") and captured.err.count("\n") == 1
    assert "sk-not-the-right-key-123" not in captured.err


def test_an_empty_answer_is_noted_on_stderr(fake: FakeProvider, capsys: pytest.CaptureFixture[str]) -> None:
    fake.script(Reply.text("", finish_reason="content_filter"))
    assert ask(fake, "hi", "--no-stream") == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "rig-sync: the model returned no text (finish reason: content_filter)\n"
