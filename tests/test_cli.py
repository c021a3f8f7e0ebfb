"""`python -m rig_sync providers`: the capability matrix, checked row by row against the classes."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest

from rig_sync.cli import main
from rig_sync.client import (
    AudioGenerationClient,
    BatchJobsClient,
    CompletionClient,
    EmbeddingsClient,
    ImageGenerationClient,
    ModelListingClient,
    ProviderClient,
    RerankClient,
    TranscriptionClient,
)
from rig_sync.client.builder import builtin_provider_names, load_provider


def expected_letters(cls: type[ProviderClient]) -> list[str]:
    """The capability letters a provider class should show, worked out from its mixins and flags."""
    chat = issubclass(cls, CompletionClient)
    # OpenAI-compatible clients say it in their chat dialect; a client without one (Cohere) by a flag
    dialect = getattr(cls, "chat_dialect", None)
    forces_named = dialect.named_tool_choice if dialect is not None else getattr(cls, "named_tool_choice", True)
    flags = [
        ("C", chat),
        ("S", chat and cls.streams_completions),
        ("E", issubclass(cls, EmbeddingsClient)),
        ("T", issubclass(cls, TranscriptionClient)),
        ("I", issubclass(cls, ImageGenerationClient)),
        ("A", issubclass(cls, AudioGenerationClient)),
        ("R", issubclass(cls, RerankClient)),
        ("L", issubclass(cls, ModelListingClient)),
        ("B", issubclass(cls, BatchJobsClient)),
        # "tools*": no forcing one named tool (sent as "required" with only that tool)
        ("tools" if forces_named else "tools*", chat and cls.supports_tools),
    ]
    return [letter for letter, has in flags if has]


def test_providers_matrix(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["providers"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("Capabilities: C completion, S streaming, E embeddings,") and "tools*: " in lines[0]
    assert lines[1] == ""
    assert lines[2] == "| provider | env | default base URL | capabilities (C S E T I A R L B tools) |"
    assert lines[3] == "|---|---|---|---|"
    rows = {}
    for line in lines[4:]:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        assert len(cells) == 4, line
        rows[cells[0]] = cells[1:]
    names = builtin_provider_names()
    assert sorted(rows) == names and "mistral" in names
    for name in names:
        cls = load_provider(name)
        env, base_url, caps = rows[name]
        assert env.split(", ") == [*cls.env_api_key, *cls.env_options, *cls.env_base_url], name
        assert base_url == (cls.default_base_url or "-"), name
        assert caps.split() == expected_letters(cls), name


def test_known_rows(capsys: pytest.CaptureFixture[str]) -> None:
    main(["providers"])
    out = capsys.readouterr().out
    assert ("| openai | OPENAI_API_KEY, OPENAI_ORG_ID, OPENAI_PROJECT_ID, OPENAI_BASE_URL | https://api.openai.com/v1 "
            "| C S E T I A L B tools |") in out
    assert "| mistral | MISTRAL_API_KEY, MISTRAL_BASE_URL | https://api.mistral.ai/v1 | C S E L tools |" in out
    assert "| perplexity | PERPLEXITY_API_KEY, PERPLEXITY_BASE_URL | https://api.perplexity.ai | C S |" in out
    assert "| hyperbolic | HYPERBOLIC_API_KEY, HYPERBOLIC_BASE_URL | https://api.hyperbolic.xyz/v1 | C S I A L |" in out
    assert "| voyageai | VOYAGE_API_KEY, VOYAGEAI_BASE_URL, VOYAGE_BASE_URL | https://api.voyageai.com/v1 | E R |" \
        in out


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["nope"])
    assert info.value.code == 2 and "invalid choice" in capsys.readouterr().err


def test_help_lists_every_command_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "usage: rig-sync [-h] [--version] {prompt,batch,providers,demo} ..."
    for command in ("prompt", "batch", "providers", "demo"):
        line = next(line for line in lines if line.startswith(f"    {command} "))
        assert len(line.split(maxsplit=1)[1]) > 20, line  # a description on the same line


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    import rig_sync

    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out == f"rig-sync {rig_sync.__version__}\n"


class ClosedPipe(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_a_reader_gone_early_ends_quietly(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert main(["providers"]) == 0
    assert capsys.readouterr().err == ""


def test_broken_pipe_in_a_real_process() -> None:
    """`rig-sync providers | head -1`: the reader is gone before the command writes (the child waits
    for its stdin to close, so the order is certain): exit 0, nothing on stderr."""
    code = "import sys; sys.stdin.read(); from rig_sync.cli import main; sys.exit(main(['providers']))"
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdin is not None and proc.stderr is not None
    proc.stdout.close()
    proc.stdin.close()
    try:
        assert proc.wait(timeout=60) == 0
        assert proc.stderr.read().decode() == ""  # no BrokenPipeError traceback, no "Exception ignored"
    finally:
        proc.kill()
        proc.stderr.close()


def test_a_rig_error_is_one_line_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prompt", "hi", "--model", "nope:m"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("rig-sync: error: no provider named 'nope'.")
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err
