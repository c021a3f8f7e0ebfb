"""A user's script type-checks under `mypy --strict` with the one-liners, dict messages and a
pydantic extractor; planted misuses are caught; and the same script runs against FakeProvider."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from rig_sync.testing import FakeProvider, Reply

HERE = Path(__file__).resolve().parent
APP = HERE / "typecheck" / "user_app.py"

# Each line is wrong in a way only a type checker sees before run time.
MISUSES = [
    "wrong_field: str = city('x').population",                        # an int field read as str
    "rig_sync.complete(CHAT, 42)",                                     # a number is not a prompt
    "rig_sync.complete(CHAT, 'q', temprature=0.2)",                    # a misspelt keyword
    "one: rig_sync.embeddings.Embedding = rig_sync.embed('openai:e', ['a', 'b'])",  # a list, not one
    "openai.Client().extractor(City, 'm').build().extract('t').populaton",  # a misspelt field
]


def mypy(path: Path) -> list[str]:
    done = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-error-summary", str(path)],
                          capture_output=True, text=True, timeout=600, cwd=HERE.parent)
    assert "Traceback" not in done.stderr, done.stderr
    return [line for line in done.stdout.splitlines() if ": error:" in line]


def test_the_user_script_type_checks_and_misuses_are_caught(tmp_path: Path) -> None:
    assert mypy(APP) == []
    source = APP.read_text(encoding="utf-8")
    planted = tmp_path / "misused.py"
    first = source.count("\n") + 1
    planted.write_text(source + "\n".join(MISUSES) + "\n", encoding="utf-8")
    flagged = {int(line.split(":")[1]) for line in mypy(planted)}
    assert flagged == set(range(first, first + len(MISUSES))), mypy(planted)


@pytest.fixture()
def script(monkeypatch: pytest.MonkeyPatch, fake: FakeProvider) -> ModuleType:
    monkeypatch.setenv("OPENAI_API_KEY", fake.api_key)
    monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
    monkeypatch.syspath_prepend(str(APP.parent))
    return importlib.import_module("user_app")


def test_the_user_script_runs(script: ModuleType, fake: FakeProvider) -> None:
    assert script.ask("Hello") == "echo: Hello"
    assert script.chat([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}], "Again?") \
        == "echo: Again?"
    sent = fake.requests[-1].json["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "user"]
    assert "".join(script.story()) == "echo: Tell me a story"
    assert [len(v) for v in script.vectors(["a", "b"])] == [1536, 1536]
    fake.script(Reply.tool_calls([("submit", {"name": "Paris", "population": -1})]),   # refused by ge=0
                Reply.tool_calls([("submit", {"name": "Paris", "population": 2_100_000})]))
    found = script.city("Paris has about 2.1 million people")
    assert (type(found).__name__, found.name, found.population) == ("City", "Paris", 2_100_000)
