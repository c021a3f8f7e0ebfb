"""Voyage AI through the public API: every payload in tests/fixtures/voyage with `responses`,
then end to end against the loopback FakeProvider (its OpenAI embeddings route speaks Voyage's
request and response shape; `/v1/rerank` is Voyage's own)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
from conftest import FIXTURES, load_bytes, load_fixture, sent_json, serve_fixture

from rig_sync import errors, observe
from rig_sync.client.builder import DynClientBuilder
from rig_sync.providers import voyageai
from rig_sync.testing import FakeProvider, Fault

BASE = "http://api.test/v1"
EMBEDDINGS = f"{BASE}/embeddings"
RERANK = f"{BASE}/rerank"
KEY = "pa-test-0123456789abcdef"
ELIDED = "voyage/embeddings.spec_example.ELIDED.json"


def client() -> voyageai.Client:
    return voyageai.Client(KEY, base_url=BASE, max_retries=0)


def embeddings_body(vectors: list[list[float]], *, order: list[int] | None = None) -> dict[str, Any]:
    indexes = order or list(range(len(vectors)))
    return {"object": "list", "model": "voyage-3", "usage": {"total_tokens": 3},
            "data": [{"object": "embedding", "embedding": vectors[i], "index": i} for i in indexes]}


# --- client -----------------------------------------------------------------------------------------


def test_client_is_embeddings_and_rerank_only() -> None:
    c = client()
    assert voyageai.Client.default_base_url == "https://api.voyageai.com/v1"
    assert c.capabilities() == ["embeddings", "rerank"]
    assert c.as_embeddings() is c and c.as_rerank() is c and c.as_completion() is None
    assert not hasattr(c, "completion_model")
    assert KEY not in repr(c)


@pytest.mark.parametrize("base_variable", ["VOYAGEAI_BASE_URL", "VOYAGE_BASE_URL"])
def test_from_env(monkeypatch: pytest.MonkeyPatch, mocked: responses.RequestsMock, base_variable: str) -> None:
    for name in ("VOYAGEAI_BASE_URL", "VOYAGE_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("VOYAGE_API_KEY", KEY)
    monkeypatch.setenv(base_variable, BASE)
    mocked.add("POST", EMBEDDINGS, json=embeddings_body([[0.5, 0.5]]))
    assert voyageai.Client.from_env().embedding_model("voyage-3").embed_text("hi").vec == [0.5, 0.5]
    request = mocked.calls[0].request
    assert request.headers["Authorization"] == f"Bearer {KEY}" and KEY not in str(request.url)


def test_from_env_without_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VOYAGE_API_KEY", raising=False)
    with pytest.raises(errors.MissingAPIKeyError, match="VOYAGE_API_KEY"):
        voyageai.Client.from_env()


def test_registry_knows_voyageai(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOYAGE_API_KEY", KEY)
    builder = DynClientBuilder()
    emb = builder.embeddings("voyageai", "voyage-3-lite")
    assert isinstance(emb, voyageai.EmbeddingModel) and emb.ndims == 512 and emb.max_documents == 128
    with pytest.raises(errors.UnsupportedFeature):
        builder.completion("voyageai", "voyage-3")


# --- recorded payloads ------------------------------------------------------------------------------


def test_recorded_request_body(mocked: responses.RequestsMock) -> None:
    want = load_fixture("voyage/requests/embeddings.spec_example.request.json")
    mocked.add("POST", EMBEDDINGS, json=embeddings_body([[0.1], [0.2]]))
    client().embedding_model(want["model"], input_type=None).embed_texts(want["input"])
    assert sent_json(mocked) == want


def test_recorded_response_with_elided_vectors_is_a_clear_decode_error(mocked: responses.RequestsMock) -> None:
    serve_fixture(mocked, EMBEDDINGS, ELIDED)
    with pytest.raises(errors.ResponseDecodeError) as info:
        client().embedding_model("voyage-large-2").embed_texts(["Sample text 1", "Sample text 2"])
    assert info.value.provider == "voyageai" and "embedding" in (info.value.field or "")


def test_recorded_response_shape_parses(mocked: responses.RequestsMock) -> None:
    # The spec example with its "..." placeholders dropped: otherwise exactly the recorded shape.
    data = json.loads(load_bytes(ELIDED).replace(b'"...",', b""))
    serve_fixture(mocked, EMBEDDINGS, ELIDED, body=json.dumps(data).encode())
    emb = client().embedding_model("voyage-large-2")
    out = emb.embed_texts(["Sample text 1", "Sample text 2"])
    assert [e.vec for e in out] == [item["embedding"] for item in data["data"]]
    assert out[0].vec == [0.0038915484, 0.010964915, -0.035594109, 0.011034692]
    assert [e.document for e in out] == ["Sample text 1", "Sample text 2"] and emb.ndims == 4


def test_recorded_rerank(mocked: responses.RequestsMock) -> None:
    serve_fixture(mocked, RERANK, "voyage/rerank.spec_example.json")
    docs = ["Sample document 1", "Sample document 2"]
    out = client().rerank_model("rerank-lite-1").rerank("Sample query", docs, top_k=2)
    assert [(r.index, r.relevance_score, r.document) for r in out] == [
        (0, 0.4375, "Sample document 1"), (1, 0.421875, "Sample document 2")]
    assert sent_json(mocked) == {"query": "Sample query", "documents": docs, "model": "rerank-lite-1", "top_k": 2}


def test_rerank_refuses_bad_input_and_foreign_indexes(mocked: responses.RequestsMock) -> None:
    reranker = client().rerank_model("rerank-2")
    with pytest.raises(errors.InvalidRequestError):
        reranker.rerank(" ", ["a"])
    with pytest.raises(TypeError):
        reranker.rerank("q", "a")  # type: ignore[arg-type]
    with pytest.raises(errors.InvalidRequestError):
        reranker.rerank("q", ["a", ""])
    with pytest.raises(ValueError, match="top_k"):
        reranker.rerank("q", ["a"], top_k=0)
    mocked.add("POST", RERANK, json={"data": [{"index": 3, "relevance_score": 0.9}]})
    with pytest.raises(errors.ResponseDecodeError, match="index"):
        reranker.rerank("q", ["a"])


# --- behaviour ----------------------------------------------------------------------------------------


def test_input_type_and_dimensions_on_the_wire(mocked: responses.RequestsMock) -> None:
    mocked.add("POST", EMBEDDINGS, json=embeddings_body([[0.1] * 256]))
    mocked.add("POST", EMBEDDINGS, json=embeddings_body([[0.1] * 256]))
    docs = client().embedding_model("voyage-3-large", 256)
    docs.embed_text("a document")
    docs.with_input_type("query").embed_text("a query")
    assert sent_json(mocked, 0) == {"input": ["a document"], "model": "voyage-3-large", "input_type": "document",
                                    "output_dimension": 256}
    assert sent_json(mocked, 1)["input_type"] == "query" and docs.ndims == 256


def test_batches_of_128_in_order_even_when_answered_out_of_order(mocked: responses.RequestsMock) -> None:
    texts = [f"text {i}" for i in range(300)]
    for size in (128, 128, 44):
        vectors = [[float(i)] for i in range(size)]
        mocked.add("POST", EMBEDDINGS, json=embeddings_body(vectors, order=list(reversed(range(size)))))
    out = client().embedding_model("voyage-3").embed_texts(texts)
    assert [len(sent_json(mocked, i)["input"]) for i in range(3)] == [128, 128, 44]
    assert [e.document for e in out] == texts
    assert [e.vec[0] for e in out[:3]] == [0.0, 1.0, 2.0] and out[-1].vec == [43.0]


def test_missing_or_duplicate_indexes_are_decode_errors(mocked: responses.RequestsMock) -> None:
    mocked.add("POST", EMBEDDINGS, json=embeddings_body([[0.1], [0.2]], order=[0, 0]))
    with pytest.raises(errors.ResponseDecodeError):
        client().embedding_model("voyage-3").embed_texts(["a", "b"])


@pytest.mark.parametrize(("name", "ndims"), [("voyage-3", 1024), ("voyage-3-lite", 512), ("voyage-3-large", 1024),
                                             ("voyage-code-3", 1024), ("voyage-2", 1024), ("voyage-new", None)])
def test_known_ndims(name: str, ndims: int | None) -> None:
    assert client().embedding_model(name).ndims == ndims


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="input_type"):
        client().embedding_model("voyage-3", input_type="search_query")
    with pytest.raises(ValueError, match="ndims"):
        client().embedding_model("voyage-3", -1)
    with pytest.raises(errors.InvalidRequestError):
        client().embedding_model("voyage-3").embed_texts([])


def test_detail_error_bodies_map_to_the_error_tree(mocked: responses.RequestsMock) -> None:
    mocked.add("POST", EMBEDDINGS, status=400, json={"detail": "Input texts exceed the context length"})
    with pytest.raises(errors.BadRequestError) as info:
        client().embedding_model("voyage-3").embed_text("x")
    assert (info.value.provider, info.value.status_code) == ("voyageai", 400)
    assert info.value.message == "Input texts exceed the context length"
    assert KEY not in str(info.value)


# --- every fixture is exercised -------------------------------------------------------------------------


def test_every_voyage_fixture_is_exercised() -> None:
    source = Path(__file__).read_text()
    folder = FIXTURES / "voyage"
    names = sorted(p.name for p in [*folder.iterdir(), *(folder / "requests").iterdir()]
                   if p.is_file() and p.name != "openapi.yml")
    assert len(names) == 3
    assert [n for n in names if n not in source] == []


# --- end to end against the loopback FakeProvider -------------------------------------------------------


def fake_client(fake: FakeProvider) -> voyageai.Client:
    return voyageai.Client(fake.api_key, base_url=fake.base_url, timeout=5, max_retries=0)


def dot(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_fake_embeddings(fake: FakeProvider) -> None:
    # A model without a known size: the fake's vectors are 1536 long whatever the model.
    emb = fake_client(fake).embedding_model("voyage-large-2")
    cat, cat2, physics = emb.embed_texts(["the cat sat on the mat", "a cat sat on a mat", "quantum chromodynamics"])
    assert dot(cat.vec, cat2.vec) > dot(cat.vec, physics.vec)
    assert emb.ndims == len(cat.vec)
    sent = fake.last_request
    assert sent is not None and sent.path == "/v1/embeddings"
    assert sent.json == {"input": ["the cat sat on the mat", "a cat sat on a mat", "quantum chromodynamics"],
                         "model": "voyage-large-2", "input_type": "document"}
    assert sent.headers["authorization"] == f"Bearer {fake.api_key}"


def test_fake_rerank(fake: FakeProvider) -> None:
    docs = ["quantum chromodynamics", "the cat sat on the mat", "stock prices fell"]
    out = fake_client(fake).rerank_model("rerank-2").rerank("where did the cat sit", docs, top_k=2)
    assert len(out) == 2 and out[0].document == "the cat sat on the mat" and out[0].index == 1
    assert out[0].relevance_score >= out[1].relevance_score


def test_fake_faults_with_voyage_error_shape(fake: FakeProvider) -> None:
    emb = fake_client(fake).embedding_model("voyage-3")
    fake.inject(Fault.status(429, body={"detail": "You have exceeded the rate limit."}, retry_after=1))
    with pytest.raises(errors.RateLimitError) as info:
        emb.embed_text("hi")
    assert info.value.message == "You have exceeded the rate limit." and info.value.retry_after == 1
    fake.inject(Fault.status(500))
    with pytest.raises(errors.InternalServerError) as err:
        fake_client(fake).rerank_model("rerank-2").rerank("q", ["a"])
    assert err.value.body == {"detail": "Internal server error"}


def test_embedding_tokens_reach_the_observe_hooks(mocked: responses.RequestsMock) -> None:
    data = json.loads(load_bytes(ELIDED).replace(b'"...",', b""))
    serve_fixture(mocked, EMBEDDINGS, ELIDED, body=json.dumps(data).encode())
    with observe.collect() as metrics:
        client().embedding_model("voyage-large-2").embed_texts(["Sample text 1", "Sample text 2"])
    summary = metrics.by("provider")["voyageai"]
    assert (summary.input_tokens, summary.output_tokens) == (data["usage"]["total_tokens"], 0)
    assert metrics.by("capability")["embeddings"].total == 1


def test_rerank_tokens_reach_the_observe_hooks(mocked: responses.RequestsMock) -> None:
    serve_fixture(mocked, RERANK, "voyage/rerank.spec_example.json")
    data = load_fixture("voyage/rerank.spec_example.json")
    with observe.collect() as metrics:
        client().rerank_model("rerank-lite-1").rerank("Sample query", ["a", "b", "c"], top_k=2)
    summary = metrics.by("capability")["rerank"]
    assert (summary.input_tokens, summary.total) == (data["usage"]["total_tokens"], 1)


@pytest.mark.parametrize("body", [
    {"documents": ["a"]},                                   # no query
    {"query": "q", "documents": []},                        # no documents
    {"query": "q", "documents": ["a", 3]},                  # a document that is not text
    {"query": "q", "documents": ["a"], "top_k": 0},         # a top_k below 1
])
def test_the_fake_rerank_refuses_what_voyage_refuses(fake: FakeProvider, body: dict[str, Any]) -> None:
    answer = requests.post(f"{fake.url}/v1/rerank", json=body, timeout=5,
                           headers={"Authorization": f"Bearer {fake.api_key}"})
    assert answer.status_code == 400 and set(answer.json()) == {"detail"}


def test_the_fake_rerank_speaks_voyages_rate_limit_and_failure_shapes(fake: FakeProvider) -> None:
    reranker = fake_client(fake).rerank_model("rerank-2")
    fake.inject(Fault.status(429))
    with pytest.raises(errors.RateLimitError, match="rate limit"):
        reranker.rerank("q", ["a"])
    fake.inject(Fault.status(403))
    with pytest.raises(errors.PermissionDeniedError) as info:
        reranker.rerank("q", ["a"])
    assert info.value.body == {"detail": "Request failed"}
    assert reranker.rerank("q", ["a"])[0].document == "a"  # and it answers again after
