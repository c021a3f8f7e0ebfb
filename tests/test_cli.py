"""`python -m rig_sync providers`: the capability matrix, checked row by row against the classes."""

from __future__ import annotations

import pytest

from rig_sync.cli import main
from rig_sync.client import (
    AudioGenerationClient,
    CompletionClient,
    EmbeddingsClient,
    ImageGenerationClient,
    ProviderClient,
    TranscriptionClient,
)
from rig_sync.client.builder import builtin_provider_names, load_provider


def expected_letters(cls: type[ProviderClient]) -> list[str]:
    """The capability letters a provider class should show, worked out from its mixins and flags."""
    chat = issubclass(cls, CompletionClient)
    flags = [
        ("C", chat),
        ("S", chat and cls.streams_completions),
        ("E", issubclass(cls, EmbeddingsClient)),
        ("T", issubclass(cls, TranscriptionClient)),
        ("I", issubclass(cls, ImageGenerationClient)),
        ("A", issubclass(cls, AudioGenerationClient)),
        ("tools", chat and cls.supports_tools),
    ]
    return [letter for letter, has in flags if has]


def test_providers_matrix(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["providers"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "| provider | env | default base URL | capabilities (C S E T I A tools) |"
    assert lines[1] == "|---|---|---|---|"
    rows = {}
    for line in lines[2:]:
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
    assert "| openai | OPENAI_API_KEY, OPENAI_BASE_URL | https://api.openai.com/v1 | C S E T I A tools |" in out
    assert "| mistral | MISTRAL_API_KEY, MISTRAL_BASE_URL | https://api.mistral.ai/v1 | C S E tools |" in out
    assert "| perplexity | PERPLEXITY_API_KEY, PERPLEXITY_BASE_URL | https://api.perplexity.ai | C S |" in out
    assert "| hyperbolic | HYPERBOLIC_API_KEY, HYPERBOLIC_BASE_URL | https://api.hyperbolic.xyz/v1 | C S I A |" in out


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["nope"])
    assert info.value.code == 2 and "invalid choice" in capsys.readouterr().err
