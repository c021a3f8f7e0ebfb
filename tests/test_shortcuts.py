"""The one-liners `rig_sync.complete`, `rig_sync.stream` and `rig_sync.embed`: one shared, cached
registry, so many calls (from many threads) use one client and its pooled connections."""

from __future__ import annotations

import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import rig_sync
import rig_sync.client.builder as registry_module
from rig_sync.client.builder import DynClientBuilder, shared_registry
from rig_sync.completion import CompletionResponse
from rig_sync.embeddings import Embedding
from rig_sync.errors import InvalidIdString, MissingAPIKeyError, UnknownProvider, UnsupportedFeature
from rig_sync.testing import FakeProvider

CHAT = "openai:gpt-4o-mini"
EMBED = "openai:text-embedding-3-small"


@pytest.fixture
def env(fake: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> FakeProvider:
    monkeypatch.setenv("OPENAI_API_KEY", fake.api_key)
    monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
    return fake


def test_complete_sends_the_settings_and_returns_the_response(env: FakeProvider) -> None:
    resp = rig_sync.complete(CHAT, "Why is the sky blue?", preamble="Be brief", temperature=0.2, max_tokens=64)
    assert isinstance(resp, CompletionResponse) and resp.text == "echo: Why is the sky blue?"
    assert env.last_request is not None
    body = env.last_request.json
    assert body["model"] == "gpt-4o-mini" and body["temperature"] == 0.2 and body["max_tokens"] == 64
    assert body["messages"][0] == {"role": "system", "content": "Be brief"}


def test_two_hundred_calls_use_one_client_and_one_connection(env: FakeProvider) -> None:
    answers = {rig_sync.complete(CHAT, f"q{i}").text for i in range(200)}
    assert answers == {f"echo: q{i}" for i in range(200)}
    assert env.request_count == 200
    assert env.connection_count == 1
    assert shared_registry().build("openai") is shared_registry().build("OpenAI")


def test_threads_share_one_registry_one_client_and_its_pool(env: FakeProvider,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[DynClientBuilder] = []

    class Counted(DynClientBuilder):
        def __init__(self) -> None:
            super().__init__()
            made.append(self)

    monkeypatch.setattr(registry_module, "DynClientBuilder", Counted)
    threads, calls = 8, 25
    start = threading.Barrier(threads)

    def work(n: int) -> list[str]:
        start.wait()  # every thread asks for the (not yet created) registry at once
        return [rig_sync.complete(CHAT, f"t{n}-{i}").text for i in range(calls)]

    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(work, range(threads)))
    assert results == [[f"echo: t{n}-{i}" for i in range(calls)] for n in range(threads)]
    assert len(made) == 1 and shared_registry() is made[0]
    assert "clients=[openai]" in repr(made[0])  # one client, built once
    assert env.connection_count <= threads  # at most one connection per concurrent caller, all reused
    assert env.request_count == threads * calls


def test_stream_is_iterable_a_context_manager_and_has_text_stream(env: FakeProvider) -> None:
    with rig_sync.stream(CHAT, "a story", preamble="Be brief", max_tokens=16) as stream:
        text = "".join(stream.text_stream())
    assert text == "echo: a story" and stream.response.usage.total_tokens > 0
    assert env.last_request is not None and env.last_request.json["stream"] is True
    chunks = list(rig_sync.stream(CHAT, "again"))
    assert chunks  # iterating it directly works too
    assert env.connection_count == 1


def test_embed_keeps_input_order_and_a_single_text_gives_one_embedding(env: FakeProvider) -> None:
    texts = ["a small cat", "a little kitten", "a tax invoice"]
    vectors = rig_sync.embed(EMBED, texts)
    assert [v.document for v in vectors] == texts and len({len(v.vec) for v in vectors}) == 1
    one = rig_sync.embed(EMBED, "a small cat")
    assert isinstance(one, Embedding) and one.document == "a small cat" and one.vec == vectors[0].vec
    assert env.connection_count == 1


def test_explicit_key_and_base_url_need_no_environment(fake: FakeProvider) -> None:
    for _ in range(3):
        resp = rig_sync.complete(CHAT, "hi", api_key=fake.api_key, base_url=fake.base_url)
        assert resp.text == "echo: hi"
    assert fake.connection_count == 1  # the client built from these values is cached, too
    assert fake.last_request is not None and fake.last_request.headers["authorization"] == f"Bearer {fake.api_key}"
    assert rig_sync.embed(EMBED, "x", api_key=fake.api_key, base_url=fake.base_url).document == "x"
    assert fake.api_key not in repr(shared_registry()) and "openai (from a value)" in repr(shared_registry())
    with pytest.raises(MissingAPIKeyError, match="OPENAI_API_KEY"):
        rig_sync.complete(CHAT, "hi", base_url=fake.base_url)  # a base URL alone: the key is still missing


def test_an_override_does_not_replace_the_environment_s_client(env: FakeProvider) -> None:
    with FakeProvider() as other:
        assert rig_sync.complete(CHAT, "one", base_url=other.base_url).text == "echo: one"  # key from env
        assert rig_sync.complete(CHAT, "two").text == "echo: two"
        assert other.request_count == 1 and env.request_count == 1


@pytest.mark.parametrize("model", ["OpenAI:gpt-4o-mini", " openai : gpt-4o-mini ", "OPENAI:gpt-4o-mini"])
def test_ids_are_normalised(env: FakeProvider, model: str) -> None:
    assert rig_sync.complete(model, "hi").text == "echo: hi"
    assert env.last_request is not None and env.last_request.json["model"] == "gpt-4o-mini"


def test_bad_ids_and_unsupported_capabilities_are_clear_errors(env: FakeProvider) -> None:
    with pytest.raises(InvalidIdString, match="spaces"):
        rig_sync.complete("openai:gpt 4o", "hi")
    with pytest.raises(InvalidIdString, match="openai:model-name"):
        rig_sync.complete("openai", "hi")
    with pytest.raises(UnknownProvider, match="Did you mean openai"):
        rig_sync.complete("openia:gpt-4o", "hi")
    with pytest.raises(UnsupportedFeature, match="embeddings"):
        rig_sync.embed("anthropic:claude-3-7-sonnet-latest", "hi")
    assert env.request_count == 0


def test_without_a_key_the_error_names_the_variable() -> None:
    with pytest.raises(MissingAPIKeyError, match="OPENAI_API_KEY"):
        rig_sync.complete(CHAT, "hi")


def test_the_package_lists_its_public_api_only() -> None:
    names = dir(rig_sync)
    assert {"complete", "stream", "embed", "__version__", "completion", "providers", "batch"} <= set(names)
    assert not {"annotations", "importlib", "TYPE_CHECKING", "Any", "_SUBMODULES"} & set(names)
    assert rig_sync.complete is rig_sync._shortcuts.complete
    assert callable(rig_sync.completion.CompletionRequestBuilder)  # `completion` is still the submodule


def test_the_one_liners_type_check_for_users(tmp_path: Path) -> None:
    script = tmp_path / "user.py"
    script.write_text(
        "import rig_sync\n"
        "from rig_sync.embeddings import Embedding\n"
        "text: str = rig_sync.complete('openai:gpt-4o-mini', 'q', temperature=0.1).text\n"
        "one: Embedding = rig_sync.embed('openai:text-embedding-3-small', 'a')\n"
        "many: list[Embedding] = rig_sync.embed('openai:text-embedding-3-small', ['a', 'b'])\n"
        "pieces: list[str] = list(rig_sync.stream('openai:gpt-4o-mini', 'q').text_stream())\n"
        "wrong: Embedding = rig_sync.embed('openai:text-embedding-3-small', ['a'])\n"  # the planted misuse
        "rig_sync.complete('openai:gpt-4o-mini', 'q', temprature=0.1)\n",  # and a misspelt keyword
        encoding="utf-8",
    )
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-error-summary", str(script)],
                          capture_output=True, text=True, timeout=300, cwd=root)
    errors = [line for line in done.stdout.splitlines() if ": error:" in line]
    assert [line.split(":")[1] for line in errors] == ["7", "8"], done.stdout + done.stderr
    assert "temprature" in errors[1]


def test_clear_rebuilds_from_the_environment(env: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    first = shared_registry().build("openai")
    assert rig_sync.complete(CHAT, "one").text == "echo: one"
    with FakeProvider() as other:
        monkeypatch.setenv("OPENAI_BASE_URL", other.base_url)
        assert rig_sync.complete(CHAT, "two").text == "echo: two" and other.request_count == 0  # still cached
        shared_registry().clear()
        assert rig_sync.complete(CHAT, "three").text == "echo: three"
        assert other.request_count == 1 and shared_registry().build("openai") is not first
