"""One capability table (`rig_sync.client.capabilities.TABLE`) drives the mixins, `capabilities()`,
`as_*()`, `DynClientBuilder`'s methods and the CLI matrix; reranking (Voyage AI, Cohere) on one
protocol; `list_models()` / `verify()` where a provider has a models endpoint, `UnsupportedFeature`
where it has none. Every request goes to 127.0.0.1 (a FakeProvider, or `responses` mocks)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

import rig_sync.client
from rig_sync.agent import AgentBuilder
from rig_sync.cli import main
from rig_sync.client import (
    CAPABILITIES,
    Capability,
    CompletionClient,
    ModelInfo,
    ProviderClient,
    ProviderValue,
    capabilities,
)
from rig_sync.client.builder import (
    ClientFactory,
    DynClientBuilder,
    ProviderModelId,
    builtin_provider_names,
    load_provider,
)
from rig_sync.client.capabilities import TABLE, CapabilityRow
from rig_sync.errors import AuthenticationError, InvalidRequestError, ResponseDecodeError, UnsupportedFeature
from rig_sync.providers import anthropic, cohere, gemini, ollama, openai, openrouter, perplexity, together, voyageai
from rig_sync.providers._openai_chat import ChatCompletionsModel
from rig_sync.rerank import RerankModel, RerankResult
from rig_sync.testing import FakeProvider
from tests.conftest import load_fixture, serve_fixture

HOST = "http://127.0.0.1:9"
VALUES = {"azure": ProviderValue("test-key", base_url=HOST, options={"api_version": "2024-10-21"})}
DOCS = ["stock prices fell", "a small cat sat on the mat", "cats sleep a lot"]


def value_for(name: str) -> ProviderValue:
    return VALUES.get(name, ProviderValue("test-key", base_url=HOST))


# --- the table drives everything ----------------------------------------------------------------


def test_every_row_agrees_with_what_reads_it() -> None:
    assert [str(row.capability) for row in TABLE] == [c.value for c in Capability]  # one row per name, in order
    assert CAPABILITIES == {str(row.capability): row.mixin for row in TABLE}
    letters = [row.letter for row in TABLE] + [f.letter for row in TABLE for f in row.features]
    assert len(letters) == len(set(letters))
    header = capabilities.matrix_header()
    for row in TABLE:
        assert callable(getattr(row.mixin, row.method)), row
        assert getattr(rig_sync.client, row.mixin.__name__) is row.mixin  # public where the mixins always were
        assert callable(getattr(ProviderClient, f"as_{row.capability}")), row
        assert f" {row.letter}" in header or f"({row.letter}" in header
        assert f"{row.letter} {row.title}" in capabilities.legend()
        for builder_method, client_method in row.handed_out.items():
            assert callable(getattr(DynClientBuilder, builder_method)), builder_method
            assert callable(getattr(ProviderModelId, builder_method)), builder_method
            assert callable(getattr(row.mixin, client_method)), client_method
            assert capabilities.handed_out_by(builder_method) == (row, client_method)
    assert capabilities.row("rerank") is capabilities.row(Capability.RERANK)
    with pytest.raises(ValueError, match="known: completion"):
        capabilities.row("telepathy")


def test_capability_names_are_plain_strings() -> None:
    assert Capability.IMAGE_GENERATION == "image_generation"
    assert f"{Capability.RERANK}" == str(Capability.RERANK) == "rerank"
    assert {"rerank": 1}[Capability.RERANK] == 1
    assert all(type(name) is str for name in openai.Client.capabilities())


@pytest.mark.parametrize("name", builtin_provider_names())
def test_each_claimed_capability_round_trips_through_the_builder(name: str) -> None:
    builder = DynClientBuilder()
    value = value_for(name)
    client = builder.build_from_value(name, value)
    cls = load_provider(name)
    assert cls.capabilities() == [str(row.capability) for row in TABLE if isinstance(client, row.mixin)]
    for row in TABLE:
        if row.capability not in cls.capabilities():
            assert client.as_capability(row.capability) is None
            for method in row.handed_out:
                with pytest.raises(UnsupportedFeature, match=f"does not support {row.title}"):
                    getattr(builder, method)(name, "m", value)
            continue
        assert client.as_capability(row.capability) is client
        assert getattr(client, f"as_{row.capability}")() is client
        for method in row.handed_out:
            made = getattr(builder, method)(name, "m", value)
            if isinstance(made, AgentBuilder):
                continue
            assert made.model == "m" and made.client is client  # the one cached client, not another
        if row.handed_out:
            generic = builder.model(row.capability, f"{name}:m", value=value)
            assert type(generic) is type(getattr(client, row.method)("m"))


def test_as_rerank_is_none_without_a_reranker() -> None:
    for client in (openai.Client("k"), anthropic.Client("k"), gemini.Client("k"), ollama.Client()):
        assert client.as_rerank() is None
    assert voyageai.Client("k").as_rerank() is not None and cohere.Client("k").as_rerank() is not None
    with pytest.raises(UnsupportedFeature, match=r"'openai' does not support rerank\. Providers that do: "
                                                 r"cohere, voyageai"):
        DynClientBuilder().rerank("openai:rerank-2")
    with pytest.raises(ValueError, match="hands out no model"):
        DynClientBuilder().model("list_models", "openai:x")


class TelepathyClient:
    """A capability the table does not have yet."""

    def telepathy_model(self, model: str) -> str:
        raise NotImplementedError


class MindReader(ProviderClient, CompletionClient, TelepathyClient):
    provider: ClassVar[str] = "mindreader"
    default_base_url: ClassVar[str] = HOST

    def completion_model(self, model: str) -> ChatCompletionsModel:
        return ChatCompletionsModel(self, model)

    def telepathy_model(self, model: str) -> str:
        return f"thinking of {model}"


def test_a_new_row_shows_up_everywhere(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    row = CapabilityRow("telepathy", TelepathyClient, "telepathy_model", "P", {"telepathy": "telepathy_model"})
    before = MindReader.capabilities()
    assert "telepathy" not in before
    monkeypatch.setattr(capabilities, "TABLE", (*TABLE, row))
    assert MindReader.capabilities() == [*before, "telepathy"]
    client = MindReader("k")
    assert client.as_capability("telepathy") is client and openai.Client("k").as_capability("telepathy") is None
    builder = DynClientBuilder().register(ClientFactory("mindreader", lambda: MindReader("k"), MindReader.from_value))
    assert builder.model("telepathy", "mindreader:number") == "thinking of number"
    assert builder.id("mindreader:tea").for_capability("telepathy") == "thinking of tea"
    with pytest.raises(UnsupportedFeature, match="'openai' does not support telepathy"):
        builder.model("telepathy", "openai:x")
    assert capabilities.matrix_letters(MindReader) == "C S P tools"
    assert main(["providers"]) == 0
    legend, blank, header, *rest = capsys.readouterr().out.splitlines()
    assert "P telepathy" in legend and blank == "" and header.endswith("(C S E T I A R L B P tools) |")
    assert rest[0] == "|---|---|---|---|"
    assert all("P" not in line.rsplit("|", 2)[1].split() for line in rest[1:])  # no built-in provider claims it


def test_each_client_class_builds_itself_and_says_so_to_a_type_checker(tmp_path: Path) -> None:
    assert type(openai.ClientBuilder("k").base_url(HOST).build()) is openai.Client
    assert openai.ClientBuilder is openai.Client.Builder and openai.Client.builder("k").client_class is openai.Client
    assert type(MindReader.Builder("k").build()) is MindReader  # a subclass gets a builder of its own
    script = tmp_path / "typed.py"
    script.write_text(
        "from rig_sync.providers import openai, voyageai\n"
        "reveal_type(openai.ClientBuilder('k').base_url('u').timeout(3).build())\n"
        "reveal_type(voyageai.Client.builder('k').build())\n"
        "openai.ClientBuilder('k').build().rerank_model('r')\n", encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-error-summary", str(script)],
                          capture_output=True, text=True, timeout=600, cwd=Path(__file__).resolve().parents[1])
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stdout.splitlines()
    assert any(':2: note: Revealed type is "rig_sync.providers.openai.Client"' in line for line in lines), lines
    assert any(':3: note: Revealed type is "rig_sync.providers.voyageai.Client"' in line for line in lines), lines
    assert any(':4: error:' in line and "rerank_model" in line for line in lines), lines  # OpenAI has no reranker


# --- rerank -------------------------------------------------------------------------------------------


def test_voyage_and_cohere_rerank_alike_through_the_builder(fake: FakeProvider) -> None:
    builder = DynClientBuilder()
    voyage = builder.rerank("voyageai", "rerank-2", ProviderValue(fake.api_key, base_url=fake.base_url))
    co = builder.rerank("cohere:rerank-v3.5", value=ProviderValue(fake.api_key, base_url=fake.url))
    assert isinstance(voyage, RerankModel) and isinstance(co, RerankModel)
    by_voyage = voyage.rerank("a small cat", DOCS)
    by_cohere = co.rerank("a small cat", DOCS)
    assert by_voyage == by_cohere  # the fake scores both alike: the same results, decoded alike
    assert all(isinstance(r, RerankResult) and r.document == DOCS[r.index] for r in by_cohere)
    assert by_cohere[0].document == "a small cat sat on the mat"
    assert [r.relevance_score for r in by_cohere] == sorted((r.relevance_score for r in by_cohere), reverse=True)
    top = co.rerank("a small cat", DOCS, top_k=1)
    assert top == by_cohere[:1]
    sent = fake.requests[-1]
    assert sent.path == "/v2/rerank"
    assert sent.json == {"model": "rerank-v3.5", "query": "a small cat", "documents": DOCS, "top_n": 1}


def test_cohere_rerank_refuses_bad_input_and_bad_answers(mocked: responses.RequestsMock) -> None:
    reranker = cohere.Client("k", base_url=HOST, max_retries=0).rerank_model("rerank-v3.5")
    with pytest.raises(InvalidRequestError):
        reranker.rerank(" ", ["a"])
    with pytest.raises(TypeError):
        reranker.rerank("q", "a")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="top_k"):
        reranker.rerank("q", ["a"], top_k=0)
    assert len(mocked.calls) == 0  # refused before anything was sent
    mocked.add("POST", f"{HOST}/v2/rerank", json={"id": "r", "results": [{"index": 5, "relevance_score": 0.9}]})
    with pytest.raises(ResponseDecodeError, match=r"index \(5\)"):
        reranker.rerank("q", ["a"])
    mocked.add("POST", f"{HOST}/v2/rerank", json={"id": "r", "ranking": []})
    with pytest.raises(ResponseDecodeError, match="relevance_score"):
        reranker.rerank("q", ["a"])


def test_a_bad_key_for_a_reranker_is_an_authentication_error() -> None:
    with FakeProvider(require_key="right") as fake:
        reranker = cohere.Client("wrong", base_url=fake.url, max_retries=0).rerank_model("rerank-v3.5")
        with pytest.raises(AuthenticationError, match="API key") as info:
            reranker.rerank("q", ["a"])
        assert info.value.status_code == 401 and "wrong" not in str(info.value)


# --- list_models and verify ------------------------------------------------------------------------


def test_openai_lists_the_fakes_models_and_verifies_its_key() -> None:
    with FakeProvider(require_key="right", models=["gpt-4o-mini", "text-embedding-3-small"]) as fake:
        client = openai.Client("right", base_url=fake.base_url, max_retries=0)
        models = client.list_models()
        assert [m.id for m in models] == ["gpt-4o-mini", "text-embedding-3-small"]
        assert all(isinstance(m, ModelInfo) and m.owned_by == "rig-sync-fake" and m.created == 0 for m in models)
        assert client.verify() is None
        assert fake.requests[-1].method == "GET" and fake.requests[-1].path == "/v1/models"
        bad = openai.Client("wrong", base_url=fake.base_url, max_retries=0)
        with pytest.raises(AuthenticationError, match="Incorrect API key provided"):
            bad.verify()
        with pytest.raises(AuthenticationError):
            bad.list_models()


def test_ollama_lists_its_tags_from_the_fake() -> None:
    with FakeProvider(models=["qwen3:latest", "llama3.2:latest"]) as fake:
        client = ollama.Client(base_url=fake.url)
        assert [m.id for m in client.list_models()] == ["llama3.2:latest", "qwen3:latest"]
        assert client.list_models()[0].created == 1735689600  # modified_at 2025-01-01T00:00:00.000000Z
        assert client.verify() is None
        assert fake.requests[-1].path == "/api/tags"


def query_of(call: Any) -> dict[str, list[str]]:
    return parse_qs(urlsplit(call.request.url).query)


def test_anthropic_follows_pages_and_verifies_with_one_model(mocked: responses.RequestsMock) -> None:
    url = f"{HOST}/v1/models"
    mocked.add("GET", url, json={"data": [{"type": "model", "id": "claude-sonnet-4-5",
                                           "display_name": "Claude Sonnet 4.5", "created_at": "2025-09-29T00:00:00Z"}],
                                 "has_more": True, "first_id": "claude-sonnet-4-5", "last_id": "claude-sonnet-4-5"})
    mocked.add("GET", url, json={"data": [{"type": "model", "id": "claude-3-5-haiku-20241022",
                                           "display_name": "Claude Haiku 3.5", "created_at": "2024-10-22T00:00:00Z"}],
                                 "has_more": False, "first_id": None, "last_id": None})
    client = anthropic.Client("k", base_url=HOST, max_retries=0)
    models = client.list_models()
    assert [(m.id, m.name) for m in models] == [("claude-sonnet-4-5", "Claude Sonnet 4.5"),
                                                ("claude-3-5-haiku-20241022", "Claude Haiku 3.5")]
    assert models[0].created == 1759104000
    assert query_of(mocked.calls[0]) == {"limit": ["1000"]}
    assert query_of(mocked.calls[1]) == {"limit": ["1000"], "after_id": ["claude-sonnet-4-5"]}
    assert mocked.calls[0].request.headers["x-api-key"] == "k"
    mocked.add("GET", url, json={"data": [], "has_more": True, "last_id": "x"})
    assert client.verify() is None
    assert query_of(mocked.calls[-1]) == {"limit": ["1"]}


def test_gemini_follows_page_tokens_and_stops_at_a_repeated_one(mocked: responses.RequestsMock) -> None:
    url = f"{HOST}/v1beta/models"
    mocked.add("GET", url, json={"models": [{"name": "models/gemini-2.5-flash", "displayName": "Gemini 2.5 Flash",
                                             "inputTokenLimit": 1048576}], "nextPageToken": "p2"})
    mocked.add("GET", url, json={"models": [{"name": "models/text-embedding-004"}], "nextPageToken": "p2"})
    client = gemini.Client("secret-key", base_url=HOST, max_retries=0)
    models = client.list_models()
    assert [m.id for m in models] == ["gemini-2.5-flash", "text-embedding-004"]
    assert (models[0].name, models[0].context_length) == ("Gemini 2.5 Flash", 1048576)
    assert len(mocked.calls) == 2  # the repeated token ended it
    assert query_of(mocked.calls[1]) == {"pageSize": ["1000"], "pageToken": ["p2"]}
    assert "secret-key" not in (mocked.calls[0].request.url or "")  # the key travels in a header


def test_cohere_follows_page_tokens(mocked: responses.RequestsMock) -> None:
    url = f"{HOST}/v1/models"
    mocked.add("GET", url, json={"models": [{"name": "command-a-03-2025", "context_length": 256000}],
                                 "next_page_token": "t"})
    mocked.add("GET", url, json={"models": [{"name": "rerank-v3.5", "context_length": 4096}]})
    models = cohere.Client("k", base_url=HOST, max_retries=0).list_models()
    assert [(m.id, m.context_length) for m in models] == [("command-a-03-2025", 256000), ("rerank-v3.5", 4096)]
    assert query_of(mocked.calls[1]) == {"page_size": ["1000"], "page_token": ["t"]}


def test_compatible_shapes_and_openrouters_key_check(mocked: responses.RequestsMock) -> None:
    mocked.add("GET", f"{HOST}/models", json=[{"id": "meta-llama/Llama-3.3-70B", "display_name": "Llama 3.3 70B",
                                               "organization": "Meta", "context_length": 131072}, {"no": "id"}])
    (llama,) = together.Client("k", base_url=HOST).list_models()  # Together answers a bare list
    assert (llama.id, llama.name, llama.owned_by, llama.context_length) == (
        "meta-llama/Llama-3.3-70B", "Llama 3.3 70B", "Meta", 131072)
    mocked.add("GET", f"{HOST}/key", json={"data": {"label": "sk-or-...", "limit": None}})
    assert openrouter.Client("k", base_url=HOST).verify() is None  # its model list is public: /key checks keys
    mocked.add("GET", f"{HOST}/models", json={"object": "list"})
    with pytest.raises(ResponseDecodeError, match="without a list of models"):
        openai.Client("k", base_url=HOST).list_models()


@pytest.mark.parametrize("make, url, fixture, status, message", [
    (lambda: openai.Client("k", base_url=HOST, max_retries=0), f"{HOST}/models",
     "openai/error.401_invalid_api_key.json", 401, "Incorrect API key provided"),
    (lambda: anthropic.Client("k", base_url=HOST, max_retries=0), f"{HOST}/v1/models",
     "anthropic/error.401_authentication_error.json", 401, "invalid x-api-key"),
    (lambda: gemini.Client("k", base_url=HOST, max_retries=0), f"{HOST}/v1beta/models",
     "gemini/error.400_api_key_invalid.json", 400, "API key not valid"),
    (lambda: cohere.Client("k", base_url=HOST, max_retries=0), f"{HOST}/v1/models",
     "cohere/error.401_invalid_api_token.json", 401, "invalid api token"),
])
def test_verify_raises_authentication_error_with_the_providers_message(
        mocked: responses.RequestsMock, make: Any, url: str, fixture: str, status: int, message: str) -> None:
    serve_fixture(mocked, url, fixture, method="GET")
    with pytest.raises(AuthenticationError, match=message) as info:
        make().verify()
    assert info.value.status_code == status
    assert load_fixture(fixture)  # the recorded body, as the provider sent it


@pytest.mark.parametrize("client", [voyageai.Client("k", base_url=HOST), perplexity.Client("k", base_url=HOST)],
                         ids=["voyageai", "perplexity"])
def test_without_a_models_endpoint_both_are_unsupported(client: ProviderClient,
                                                        mocked: responses.RequestsMock) -> None:
    assert client.as_list_models() is None and "list_models" not in client.capabilities()
    with pytest.raises(UnsupportedFeature, match=f"{client.provider} does not support list models"):
        client.list_models()
    with pytest.raises(UnsupportedFeature, match=f"{client.provider} does not support verify"):
        client.verify()
    assert len(mocked.calls) == 0
