"""`make demo` runs the library's main job end to end, offline; so does this test."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest

from rig_sync.demo import CHAT_TARGETS, run


def test_offline_demo_runs_every_step(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    out = io.StringIO()
    assert run(offline=False, out=out) == 0
    text = out.getvalue()
    for title in ("A prompt", "A streamed reply", "Embeddings", "A transcription", "An image", "Speech",
                  "A tool call, answered", "Choosing a provider at run time", "Fan-out across providers",
                  "A retrieval-augmented agent", "Extraction into an attrs class", "A pipeline, batched",
                  "The batch command"):
        assert f"== {title}" in text, title
    for provider, model, _ in CHAT_TARGETS:  # every native format answered through the registry
        assert f"{provider}:{model} -> 'echo: Say hi.', streamed 'echo: Stream a hi.'" in text
    assert "model then said: 'tool result: 5'" in text
    assert "Person(name='Ada Lovelace', age=36)" in text
    assert "300 of 300 answered, in input order: True (exit 0)" in text
    assert "PNG signature: True" in text


def test_module_entry_point_prints_the_matrix() -> None:
    done = subprocess.run([sys.executable, "-m", "rig_sync", "providers"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    assert "| openai |" in done.stdout and "| anthropic |" in done.stdout
