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
    """Each block, padded with blank lines so that a traceback names its line in README.md."""
    text = README.read_text(encoding="utf-8")
    found = re.finditer(r"```python\n(.*?)```", text, re.S)
    return ["\n" * text.count("\n", 0, m.start(1)) + m.group(1) for m in found]


@pytest.fixture()
def readme_env(monkeypatch: pytest.MonkeyPatch) -> Any:
    with FakeProvider() as fake:
        monkeypatch.setenv("OPENAI_API_KEY", fake.api_key)
        monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
        yield fake


def test_readme_has_the_two_commands() -> None:
    text = README.read_text(encoding="utf-8")
    assert "make test" in text and "make demo" in text


def run_alone(block: str) -> tuple[dict[str, Any], str]:
    """One README block in a namespace of its own: what it defined, and what it printed."""
    namespace: dict[str, Any] = {}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block, str(README), "exec"), namespace)
    return namespace, out.getvalue()


def test_every_python_block_runs_alone(readme_env: FakeProvider) -> None:
    blocks = python_blocks()
    assert len(blocks) >= 14
    ran = []
    for text in blocks:
        before = readme_env.request_count
        ran.append((text, *run_alone(text), [r.json for r in readme_env.requests[before:]]))
    assert all(printed for _, _, printed, _ in ran), "every example prints what it did"
    sent: list[Any] = []

    def block(marker: str) -> tuple[dict[str, Any], str]:
        (found,) = [(ns, printed, bodies) for text, ns, printed, bodies in ran if marker in text]
        sent[:] = found[2]  # the JSON bodies this block sent
        return found[0], found[1]

    ns, printed = block("rig_sync.complete(")
    assert ns["resp"].text == "echo: Hello" and ns["cat"].document == "a small cat" and len(ns["cat"].vec) == 1536
    assert "echo: Tell me a story" in printed
    ns, printed = block("openai.Client()                          # or")
    assert ns["resp"].text == "echo: Hello"
    assert "not sent: call .send() or .stream()" in printed
    ns, _ = block('{"role": "system", "content": "Be brief"}')
    assert [m["role"] for m in sent[-1]["messages"]] == ["system", "user", "assistant", "user"]
    assert sent[-1]["messages"][-1]["content"] == "And what colour is it?"
    assert sent[-1]["messages"][0]["content"] == "Be brief"
    ns, printed = block("with model.completion_request(\"Tell me a story\").stream() as stream:")
    assert "state='finished'" in printed
    ns, _ = block('ToolDefinition("add"')
    assert ns["call"].name == "add" and ns["call"].arguments == {"a": 2, "b": 3}
    assert ns["answer"].text == "tool result: 5"
    assert [m["role"] for m in sent[-1]["messages"]] == ["user", "assistant", "tool"]
    ns, _ = block("emb.embed_texts(")
    assert ns["emb"].ndims == 1536
    ns, _ = block("image_generation_model(")
    assert ns["png"].startswith(b"\x89PNG")
    ns, printed = block("openai.ClientBuilder(")
    assert "base_url='http://127.0.0.1:8080/v1'" in printed
    ns, printed = block("DynClientBuilder()")
    assert printed.startswith("True")
    ns, printed = block("except errors.MissingAPIKeyError")
    assert "OPENAI_API_KEY" in printed and "127.0.0.1:9" in printed
    ns, _ = block("@tool")
    assert ns["details"].output == "tool result: 5"
    ns, _ = block("InMemoryVectorStore()")
    assert [doc_id for _, doc_id, _ in ns["index"].top_n("what is a flurbo worth?", 1)] == ["flurbo"]
    for ns, _ in [block("class Person")]:
        assert ns["person"].name == "Ada Lovelace" and ns["person"].age == 36
    ns, _ = block("class Author(BaseModel)")
    assert ns["author"].name == "Ada Lovelace" and type(ns["author"]).__name__ == "Author"
    # (the first scripted answer fails the validator: "Ada Lovelace" can only come from the retry)
    ns, _ = block("pipeline.new()")
    assert ns["op"] is not None
    ns, printed = block("batch.map(")
    assert len(ns["answers"]) == 50 and ns["summary"].total >= 50 and len(ns["vectors"]) == 5000
    ns, printed = block("Fault.status(429")
    assert "scripted answer" in printed
    ns, printed = block("gpt-4o-mnii")
    assert "gpt-4o-mnii" in printed and printed.strip().endswith("1536 1536 1536")
    assert readme_env.request_count >= 20


def test_readme_provider_table_is_the_registry_s(capsys: pytest.CaptureFixture[str]) -> None:
    from rig_sync.cli import main

    assert main(["providers"]) == 0
    table = capsys.readouterr().out.strip()
    assert table.count("\n") >= 20
    assert table in README.read_text(encoding="utf-8"), "README's table is stale: paste `python -m rig_sync providers`"
