"""The README's examples run as written, against the loopback fake provider."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path
from typing import Any

import pytest

from rig_sync.testing import FakeProvider

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


@pytest.fixture()
def readme_env(monkeypatch: pytest.MonkeyPatch) -> Any:
    with FakeProvider() as fake:
        monkeypatch.setenv("OPENAI_API_KEY", fake.api_key)
        monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
        yield fake


def test_readme_has_the_two_commands() -> None:
    text = README.read_text(encoding="utf-8")
    assert "make test" in text and "make demo" in text


def test_every_python_block_runs(readme_env: FakeProvider) -> None:
    blocks = python_blocks()
    assert len(blocks) >= 8
    namespace: dict[str, Any] = {}
    outputs = []
    for block in blocks:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(block, str(README), "exec"), namespace)
        outputs.append(out.getvalue())
    assert all(outputs), "every example prints what it did"
    assert namespace["resp"].text == "echo: Hello"
    assert namespace["call"].name == "add" and namespace["call"].arguments == {"a": 2, "b": 3}
    assert namespace["answer"].text == "tool result: 5"
    assert namespace["emb"].ndims == 1536
    assert namespace["png"].startswith(b"\x89PNG")
    assert "scripted answer" in outputs[-1]
    assert namespace["details"].output == "tool result: 5"
    assert [doc_id for _, doc_id, _ in namespace["index"].top_n("what is a flurbo worth?", 1)] == ["flurbo"]
    assert namespace["person"].name == "Ada Lovelace" and namespace["person"].age == 36
    assert len(namespace["answers"]) == 50 and namespace["summary"].total >= 50
    assert len(namespace["vectors"]) == 5000
    assert readme_env.request_count >= 8  # prompt, stream, 2 tool turns, embeddings, stt, image, speech


def test_readme_provider_table_is_the_registry_s(capsys: pytest.CaptureFixture[str]) -> None:
    from rig_sync.cli import main

    assert main(["providers"]) == 0
    table = capsys.readouterr().out.strip()
    assert table.count("\n") >= 20
    assert table in README.read_text(encoding="utf-8"), "README's table is stale: paste `python -m rig_sync providers`"
