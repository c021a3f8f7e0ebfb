"""DynClientBuilder: providers by name at run time, one cached client per provider, thread-safe."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

import pytest
import responses

from rig_sync.client import CompletionClient, ProviderClient, ProviderValue
from rig_sync.client.builder import ClientFactory, DynClientBuilder, ProviderModelId
from rig_sync.completion import CompletionModel
from rig_sync.embeddings import EmbeddingModel
from rig_sync.errors import (
    ClientBuildError,
    FactoryError,
    InvalidIdString,
    MissingAPIKeyError,
    UnknownProvider,
    UnsupportedFeature,
)
from rig_sync.providers import openai
from rig_sync.providers._openai_chat import ChatCompletionsModel

KEY = "sk-registry-test"
BASE = "http://127.0.0.1:9/v1"


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", BASE)


class CompletionOnlyClient(ProviderClient, CompletionClient):
    provider: ClassVar[str] = "testonly"
    default_base_url: ClassVar[str] = "http://127.0.0.1:9/v1"

    def completion_model(self, model: str) -> ChatCompletionsModel:
        return ChatCompletionsModel(self, model)


def make_testonly_factory() -> ClientFactory:
    return ClientFactory("testonly", lambda: CompletionOnlyClient("k"), CompletionOnlyClient.from_value)


class CountingFactory:
    """A registered factory that counts how often it builds a client."""

    def __init__(self, name: str = "counted") -> None:
        self.builds = 0
        self._lock = threading.Lock()
        self.factory = ClientFactory(name, self.from_env, self.from_value)

    def from_env(self) -> openai.Client:
        with self._lock:
            self.builds += 1
        return openai.Client(KEY, base_url=BASE)

    def from_value(self, value: ProviderValue) -> openai.Client:
        with self._lock:
            self.builds += 1
        return openai.Client.from_value(value)


# --- the registry ---------------------------------------------------------------------------------


def test_every_builtin_provider_is_registered() -> None:
    names = DynClientBuilder().providers()
    assert "openai" in names
    assert names == sorted(names)
    assert all(not n.startswith("_") for n in names)
    assert DynClientBuilder(include_builtins=False).providers() == []


def test_register_adds_a_provider() -> None:
    b = DynClientBuilder()
    assert b.register(make_testonly_factory()) is b
    assert "testonly" in b.providers()
    model = b.completion("testonly", "m1")
    assert isinstance(model, ChatCompletionsModel) and model.model == "m1"
    assert isinstance(model.client, CompletionOnlyClient)


def test_re_registering_replaces_the_cached_client() -> None:
    b = DynClientBuilder()
    first, second = CountingFactory("mine"), CountingFactory("mine")
    b.register(first.factory)
    client = b.build("mine")
    b.register(second.factory)
    assert b.build("mine") is not client
    assert (first.builds, second.builds) == (1, 1)


@pytest.mark.parametrize("name", ["", " x", "a:b"])
def test_a_factory_needs_a_usable_name(name: str) -> None:
    with pytest.raises(ValueError):
        ClientFactory(name, lambda: None, lambda v: None)
    with pytest.raises(TypeError):
        DynClientBuilder().register("openai")  # type: ignore[arg-type]


# --- building clients -----------------------------------------------------------------------------


def test_build_from_the_environment_is_cached() -> None:
    b = DynClientBuilder()
    client = b.build("openai")
    assert isinstance(client, openai.Client)
    assert client.base_url == BASE
    assert b.build("openai") is client


def test_build_without_the_env_key_raises_the_providers_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(MissingAPIKeyError, match="OPENAI_API_KEY"):
        DynClientBuilder().completion("openai", "gpt-4o")


def test_build_from_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    b = DynClientBuilder()
    value = ProviderValue("sk-other", base_url="http://127.0.0.1:10/v1")
    client = b.build_from_value("openai", value)
    assert isinstance(client, openai.Client) and client.base_url == "http://127.0.0.1:10/v1"
    assert b.build_from_value("openai", ProviderValue("sk-other", base_url="http://127.0.0.1:10/v1")) is client
    assert b.build_from_value("openai", "sk-third") is not client
    model = b.completion("openai", "gpt-4o", value)
    assert model.client is client  # type: ignore[attr-defined]


def test_models_from_the_registry_send_through_the_built_client() -> None:
    b = DynClientBuilder()
    with responses.RequestsMock() as mocked:
        mocked.add(responses.POST, f"{BASE}/chat/completions",
                   json={"choices": [{"message": {"content": "hi"}, "finish_reason": "stop"}]})
        assert b.completion("openai", "gpt-4o").completion_request("Hello").send().text == "hi"
        assert mocked.calls[0].request.headers["Authorization"] == f"Bearer {KEY}"


def test_every_capability_accessor() -> None:
    b = DynClientBuilder()
    completion = b.completion("openai", "gpt-4o")
    embeddings = b.embeddings("openai", "text-embedding-3-small")
    transcription = b.transcription("openai", "whisper-1")
    image = b.image_generation("openai", "gpt-image-1")
    audio = b.audio_generation("openai", "tts-1")
    assert isinstance(completion, CompletionModel)
    assert isinstance(embeddings, EmbeddingModel) and embeddings.ndims == 1536
    assert [m.model for m in (completion, embeddings, transcription, image, audio)] == [  # type: ignore[attr-defined]
        "gpt-4o", "text-embedding-3-small", "whisper-1", "gpt-image-1", "tts-1"]
    clients = {id(m.client) for m in (completion, embeddings, transcription, image, audio)}  # type: ignore[attr-defined]
    assert len(clients) == 1  # one client (one connection pool) per provider


def test_agent_is_offered() -> None:
    b = DynClientBuilder()
    assert callable(b.agent)
    if importlib.util.find_spec("rig_sync.agent") is None:
        pytest.skip("rig_sync.agent is not written yet")
    agent_builder = b.agent("openai", "gpt-4o")
    assert type(agent_builder).__name__ == "AgentBuilder"


def test_a_missing_capability_is_unsupported_feature() -> None:
    b = DynClientBuilder().register(make_testonly_factory())
    with pytest.raises(UnsupportedFeature, match=r"testonly.*embeddings") as info:
        b.embeddings("testonly", "e")
    assert "openai" in str(info.value)  # it says who can
    for ask in (b.transcription, b.image_generation, b.audio_generation):
        with pytest.raises(UnsupportedFeature):
            ask("testonly", "m")
    assert isinstance(info.value, ClientBuildError)


def test_unknown_provider_suggests_the_close_name() -> None:
    b = DynClientBuilder()
    with pytest.raises(UnknownProvider, match="Did you mean openai") as info:
        b.completion("opneai", "gpt-4o")
    assert "'opneai'" in str(info.value)
    with pytest.raises(UnknownProvider) as far:
        b.completion("zzzzzz", "m")
    assert "Did you mean" not in str(far.value)
    with pytest.raises(TypeError):
        b.completion(None, "m")  # type: ignore[arg-type]


def test_a_factory_that_crashes_is_a_factory_error() -> None:
    def broken() -> Any:
        raise KeyError("settings.json has no 'region'")

    b = DynClientBuilder().register(ClientFactory("broken", broken, lambda v: broken()))
    with pytest.raises(FactoryError, match=r"'broken'.*KeyError") as info:
        b.completion("broken", "m")
    assert isinstance(info.value.__cause__, KeyError)
    with pytest.raises(FactoryError):
        b.build_from_value("broken", ProviderValue("k"))


def test_a_factorys_own_rig_errors_pass_through() -> None:
    def no_key() -> Any:
        raise MissingAPIKeyError("mine: set MINE_API_KEY")

    b = DynClientBuilder().register(ClientFactory("mine", no_key, lambda v: no_key()))
    with pytest.raises(MissingAPIKeyError, match="MINE_API_KEY"):
        b.build("mine")


# --- ids ------------------------------------------------------------------------------------------


def test_id_parses_provider_and_model() -> None:
    b = DynClientBuilder()
    pid = b.id("openai:gpt-4o")
    assert isinstance(pid, ProviderModelId)
    assert (pid.provider, pid.model) == ("openai", "gpt-4o")
    model = pid.completion()
    assert model.model == "gpt-4o"
    assert pid.embeddings().model == "gpt-4o"


def test_id_keeps_colons_in_the_model_name() -> None:
    b = DynClientBuilder()
    assert b.id("openai:ft:gpt-4o:org:custom").model == "ft:gpt-4o:org:custom"
    assert b.id("openai:ft:gpt-4o:org:custom").completion().model == "ft:gpt-4o:org:custom"
    b.register(ClientFactory("ollama", lambda: openai.Client(KEY, base_url=BASE), openai.Client.from_value))
    assert (b.id("ollama:llama3:8b").provider, b.id("ollama:llama3:8b").model) == ("ollama", "llama3:8b")


@pytest.mark.parametrize("bad", ["", "openai", ":gpt", "openai:", "openai:   ", " :gpt-4o"])
def test_malformed_ids_are_invalid(bad: str) -> None:
    with pytest.raises(InvalidIdString, match="provider:model"):
        DynClientBuilder().id(bad)


def test_a_non_string_id_is_invalid() -> None:
    with pytest.raises(InvalidIdString):
        DynClientBuilder().id(None)  # type: ignore[arg-type]


def test_an_id_with_an_unknown_provider_says_so() -> None:
    with pytest.raises(UnknownProvider, match="openai"):
        DynClientBuilder().id("opneai:gpt-4o")


# --- threads --------------------------------------------------------------------------------------


def test_concurrent_first_use_builds_one_client() -> None:
    counting = CountingFactory()
    b = DynClientBuilder().register(counting.factory)
    start = threading.Barrier(32)

    def grab(_: int) -> Any:
        start.wait(timeout=10)
        return b.completion("counted", "gpt-4o")

    with ThreadPoolExecutor(32) as pool:
        models = list(pool.map(grab, range(32)))
    assert counting.builds == 1
    assert len({id(m.client) for m in models}) == 1


def test_a_slow_build_does_not_hold_up_another_provider() -> None:
    entered, release = threading.Event(), threading.Event()

    def slow() -> openai.Client:
        entered.set()
        assert release.wait(timeout=10), "never released"
        return openai.Client(KEY, base_url=BASE)

    b = DynClientBuilder().register(ClientFactory("slow", slow, lambda v: slow()))
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(b.completion, "slow", "m")
        assert entered.wait(timeout=10)
        try:
            # While "slow" is still being built, another provider builds and answers at once.
            assert b.completion("openai", "m").model == "m"
            assert not pending.done()
        finally:
            release.set()
        assert pending.result(timeout=10).model == "m"


def test_a_factory_returning_none_is_a_factory_error() -> None:
    b = DynClientBuilder().register(ClientFactory("empty", lambda: None, lambda v: None))
    with pytest.raises(FactoryError, match="returned None"):
        b.build("empty")
    with pytest.raises(TypeError):
        b.build_from_value("empty", {"api_key": "k"})  # type: ignore[arg-type]


def test_concurrent_builtin_use_shares_one_client() -> None:
    b = DynClientBuilder()
    start = threading.Barrier(32)

    def grab(_: int) -> Any:
        start.wait(timeout=10)
        return b.completion("openai", "gpt-4o")

    with ThreadPoolExecutor(32) as pool:
        models = list(pool.map(grab, range(32)))
    clients = {id(m.client) for m in models}
    assert len(clients) == 1
    assert models[0].client is b.build("openai")


def test_the_builder_never_imports_a_provider_until_used() -> None:
    code = (
        "import sys\n"
        "from rig_sync.client.builder import DynClientBuilder\n"
        "b = DynClientBuilder()\n"
        "assert 'openai' in b.providers()\n"
        "print(sorted(m for m in sys.modules if m.startswith('rig_sync.providers.')))\n"
        "b.id('openai:gpt-4o')\n"
        "print(sorted(m for m in sys.modules if m.startswith('rig_sync.providers.')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    before, after = out.stdout.splitlines()
    assert before == "[]"  # listing providers imports none of them
    assert after == "[]"  # nor does parsing an id: the client is built on first model


# --- one "provider:model" id wherever a target is; readable reprs ------------------------------------


def test_every_model_accessor_takes_one_id() -> None:
    builder = DynClientBuilder()
    chat, same = builder.completion("openai:gpt-4o"), builder.completion("openai", "gpt-4o")
    assert isinstance(chat, ChatCompletionsModel) and isinstance(same, ChatCompletionsModel)
    assert chat.model == "gpt-4o" and chat.client is same.client  # the same cached client
    assert builder.completion("OpenAI: gpt-4o").model == "gpt-4o"  # case folded, spaces dropped
    assert builder.embeddings("openai:text-embedding-3-small").model == "text-embedding-3-small"
    assert builder.transcription("openai:whisper-1").model == "whisper-1"
    assert builder.image_generation("openai:gpt-image-1").model == "gpt-image-1"
    assert builder.audio_generation("openai:tts-1").model == "tts-1"
    assert builder.agent("openai:gpt-4o").build().model.model == "gpt-4o"
    assert builder.completion("ollama:llama3:8b").model == "llama3:8b"  # a model may hold colons
    value = ProviderValue("sk-value", base_url=BASE)
    from_value = builder.completion("openai:gpt-4o", value=value)
    assert isinstance(from_value, ChatCompletionsModel)
    assert from_value.client is builder.build_from_value("openai", value)


@pytest.mark.parametrize("bad, message", [
    ("openai", "no model given for 'openai'"),
    ("openai:gpt 4o", "spaces"),
    (":gpt-4o", "provider:model"),
])
def test_a_malformed_id_says_what_to_write(bad: str, message: str) -> None:
    with pytest.raises(InvalidIdString, match=message):
        DynClientBuilder().completion(bad)


def test_a_capability_a_builtin_lacks_is_refused_before_its_key_is_needed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(UnsupportedFeature, match=r"does not support embeddings\. Providers that do: .*openai"):
        DynClientBuilder().embeddings("anthropic:claude-3-7-sonnet-latest")
    with pytest.raises(MissingAPIKeyError, match="ANTHROPIC_API_KEY"):  # what it does support needs the key
        DynClientBuilder().completion("anthropic:claude-3-7-sonnet-latest")


def test_a_replaced_builtin_is_asked_instead_of_its_class() -> None:
    builder = DynClientBuilder().register(ClientFactory("anthropic", lambda: openai.Client(KEY, base_url=BASE),
                                                        lambda value: openai.Client(KEY, base_url=BASE)))
    assert builder.embeddings("anthropic:any-embedder").model == "any-embedder"


def test_reprs_name_providers_and_cached_clients_never_keys() -> None:
    builder = DynClientBuilder()
    assert repr(builder).startswith("DynClientBuilder(providers=[anthropic, azure,") and "clients=[]" in repr(builder)
    builder.build("openai")
    builder.build_from_value("openai", ProviderValue("sk-SECRET-in-a-value", base_url=BASE))
    text = repr(builder)
    assert text.endswith("clients=[openai, openai (from a value)])"), text
    assert KEY not in text and "SECRET" not in text
    model_id = builder.id("OpenAI:gpt-4o")
    assert repr(model_id) == "ProviderModelId('openai:gpt-4o')" and str(model_id) == "openai:gpt-4o"
    assert "<" not in repr(DynClientBuilder(include_builtins=False))


def test_the_shared_registry_is_created_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from rig_sync.client import builder as module
    from rig_sync.client.builder import shared_registry

    monkeypatch.setattr(module, "_shared", None)  # this test's own, not kept for later tests
    first = shared_registry()
    assert isinstance(first, DynClientBuilder) and shared_registry() is first and module._shared is first
