"""The vector store contract: every store in tests/vector_store_factories.py, the in-memory store
included, gives the in-memory store's answers item by item on the same corpus (ids, documents,
scores within 1e-5), with the same filters, thresholds, deletes, replacements and errors; and a
property test compares each store's ranking with a brute-force numpy scan.

Scores may differ in the last float32 digits (the database stores keep float32 vectors), so where
the reference's scores tie within the tolerance the tied documents may come in either order.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from vector_store_factories import FACTORIES

from rig_sync import batch
from rig_sync.agent import AgentBuilder
from rig_sync.completion import BaseCompletionModel, CompletionRequest, CompletionResponse, Document, Usage
from rig_sync.embeddings import Embedding, EmbeddingsBuilder
from rig_sync.errors import InvalidRequestError, InvalidTypeError, RigError
from rig_sync.message import Text
from rig_sync.streaming import StreamingCompletionResponse
from rig_sync.vector_store import (
    DimensionMismatchError,
    Filter,
    FilterError,
    InMemoryVectorStore,
    InvalidVectorError,
    StoreClosedError,
    VectorSearchRequest,
    VectorStoreError,
    VectorStoreIndex,
)

TOL = 1e-5
DIMS = 8
DATABASE_STORES = sorted(name for name in FACTORIES if name != "memory")

Hit = tuple[float, str, Any]


@pytest.fixture(params=sorted(FACTORIES))
def store_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store(store_name: str, tmp_path: Path) -> Iterator[Any]:
    with FACTORIES[store_name](tmp_path) as made:
        yield made


# --- the corpus ---------------------------------------------------------------------------------

ODD_KEYS = ('it\'s "quoted"', "$.lang", "a.b", "lang'); DROP TABLE documents; --", "$", "ключ")


def _vector(rng: random.Random, dims: int = DIMS) -> list[float]:
    return [rng.gauss(0.0, 1.0) for _ in range(dims)]


def _metadata(i: int) -> dict[str, Any] | None:
    """Every kind a filter meets: str / int / float / bool / None values, values of another kind
    than the filter's, lists and dicts, missing keys, keys that look like SQL or JSON paths."""
    variant = i % 9
    if variant == 0:
        return {"lang": "en", "year": 2018 + i % 7, "score": i / 10, "flag": True, "none": None}
    if variant == 1:
        return {"lang": "fr", "year": 2019.5 + i % 3, "score": -i / 7, "flag": False}
    if variant == 2:
        return {"lang": "en", "year": str(2020 + i % 4), "count": 1}  # a year as a string
    if variant == 3:
        return {"flag": 1, "count": True, "lang": "de"}  # 1 is not True, True is not 1
    if variant == 4:
        return None  # the dict document below is its own metadata
    if variant == 5:
        return None  # a string document: no fields at all
    if variant == 6:
        return {"tags": ["en"], "lang": None, "nested": {"lang": "en"}, "year": 2021}
    if variant == 7:
        return {key: f"odd {n}" for n, key in enumerate(ODD_KEYS)} | {"year": 2 ** 70}
    return {}


def _document(i: int) -> Any:
    if i % 9 == 4:
        return {"title": f"dict {i}", "lang": "de", "year": 2022, ODD_KEYS[0]: "odd 0", "a.b": i}
    if i % 9 == 5:
        return f"text document {i} — ünïcödé"
    return {"title": f"doc {i}", "body": ["nested", {"n": i}], "x": i * 1.5}


def corpus(count: int = 54, seed: int = 15) -> list[tuple[Any, ...]]:
    """(id, document, vectors[, metadata]) rows; every fifth document has three vectors."""
    rng = random.Random(seed)
    rows: list[tuple[Any, ...]] = []
    for i in range(count):
        vectors: Any = [_vector(rng) for _ in range(3)] if i % 5 == 0 else _vector(rng)
        if i % 7 == 3:
            vectors = Embedding(f"text {i}", _vector(rng))
        metadata = _metadata(i)
        doc_id: Any = i if i % 11 == 0 else f"d{i}"  # some int ids: stored as their str
        row = (doc_id, _document(i), vectors) if metadata is None else (doc_id, _document(i), vectors, metadata)
        rows.append(row)
    return rows


def reference(rows: Sequence[Sequence[Any]]) -> InMemoryVectorStore[Any]:
    ref: InMemoryVectorStore[Any] = InMemoryVectorStore()
    ref.insert_documents(rows)
    return ref


QUERIES = [_vector(random.Random(seed)) for seed in range(100, 106)]


# --- comparison ---------------------------------------------------------------------------------


def assert_same(got: Sequence[Hit], want: Sequence[Hit], pool: Sequence[Hit]) -> None:
    """`got` is `want` item by item: scores within TOL, the same documents, the same ids except
    among documents whose reference scores tie within TOL (`pool`: the reference's full ranking)."""
    assert len(got) == len(want), (got, want)
    documents = {doc_id: document for _, doc_id, document in pool}
    assert len({doc_id for _, doc_id, _ in got}) == len(got), "an id came back twice"
    for (score, doc_id, document), (want_score, want_id, _) in zip(got, want, strict=True):
        assert isinstance(score, float)
        assert abs(score - want_score) <= TOL, (doc_id, score, want_id, want_score)
        if doc_id != want_id:
            tied = {tie_id for tie_score, tie_id, _ in pool if abs(tie_score - want_score) <= 2 * TOL}
            assert doc_id in tied and want_id in tied, (got, want)
        assert document == documents[doc_id]


def compare(store: Any, ref: InMemoryVectorStore[Any], query: Sequence[float], n: int, **options: Any) -> list[Hit]:
    want = ref.search_vector(query, n, **options)
    pool = ref.search_vector(query, max(len(ref), 1), **options)
    got = store.search_vector(query, n, **options)
    assert_same(got, want, pool)
    return got


# --- ranking ------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 5, 54, 1000])
def test_top_n_matches_the_in_memory_store(store: Any, n: int) -> None:
    rows = corpus()
    store.insert_documents(rows)
    ref = reference(rows)
    assert len(store) == len(ref) == 54
    assert store.ndims == DIMS
    for query in QUERIES:
        got = compare(store, ref, query, n)
        assert len(got) == min(n, 54)
        assert [hit[0] for hit in got] == sorted((hit[0] for hit in got), reverse=True)


def test_a_document_scores_its_best_vector(store: Any) -> None:
    first, second = [1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]
    store.insert_documents([("two", "two vectors", [first, second]), ("one", "one vector", [0.6, 0.8, 0.0, 0.0])])
    hits = store.search_vector(second, 5)
    assert [doc_id for _, doc_id, _ in hits] == ["two", "one"]
    assert hits[0][0] == pytest.approx(1.0, abs=TOL) and hits[1][0] == pytest.approx(0.8, abs=TOL)
    assert store.search_vector(first, 1)[0][1] == "two"


def test_many_vectors_per_document_still_give_n_documents(store: Any) -> None:
    rng = random.Random(3)
    rows = [(f"m{i}", f"doc {i}", [_vector(rng) for _ in range(12)]) for i in range(30)]
    store.insert_documents(rows)
    ref = reference(rows)
    for query in QUERIES:
        assert len(compare(store, ref, query, 10)) == 10


def test_empty_store(store: Any) -> None:
    assert len(store) == 0
    assert store.ndims is None
    assert store.search_vector([1.0, 2.0], 3) == []
    assert store.delete(["nothing"]) == 0
    assert store.get_document("nothing") is None and "nothing" not in store
    assert store.index(KeywordModel()).top_n("cat", 3) == []


def test_n_larger_than_the_store_returns_everything(store: Any) -> None:
    rows = corpus(7)
    store.insert_documents(rows)
    assert len(compare(store, reference(rows), QUERIES[0], 10 ** 6)) == 7


def test_equal_scores_keep_insertion_order(store: Any) -> None:
    same = [0.5, 0.5, 0.5, 0.5]
    store.insert_documents([(name, name, same) for name in ("c", "a", "b", "d")])
    assert [doc_id for _, doc_id, _ in store.search_vector(same, 4)] == ["c", "a", "b", "d"]


# --- filters ------------------------------------------------------------------------------------

def _chained(terms: int) -> Filter:
    """`a | b | c | ...` joined one term at a time: a tree as deep as it is long."""
    chain = Filter.eq("year", 2021)
    for i in range(terms):
        chain = Filter.eq("year", 1000 + i) | chain
    return chain


FILTERS: list[tuple[str, Filter, bool]] = [
    ("eq str", Filter.eq("lang", "en"), True),
    ("eq other str", Filter.eq("lang", "fr"), True),
    ("eq int", Filter.eq("year", 2021), True),
    ("eq float equal to an int", Filter.eq("year", 2021.0), True),
    ("eq float", Filter.eq("year", 2020.5), True),
    ("eq str does not match a number", Filter.eq("year", "2021"), True),
    ("eq True", Filter.eq("flag", True), True),
    ("eq False", Filter.eq("flag", False), True),
    ("eq 1 does not match True", Filter.eq("flag", 1), True),
    ("eq True does not match 1", Filter.eq("count", True), True),
    ("eq 1 does not match True (count)", Filter.eq("count", 1), True),
    ("eq None", Filter.eq("none", None), True),
    ("eq None on a null lang", Filter.eq("lang", None), True),
    ("gt int", Filter.gt("year", 2020), True),
    ("lt int", Filter.lt("year", 2021), True),
    ("gt str", Filter.gt("lang", "e"), True),
    ("lt str", Filter.lt("lang", "en"), True),
    ("gt float", Filter.gt("score", 1.5), True),
    ("lt negative", Filter.lt("score", -1), True),
    ("gt on strings never matches numbers", Filter.gt("year", "2"), True),
    ("a key some documents lack", Filter.eq("none", None), True),
    ("big int", Filter.eq("year", 2 ** 70), True),
    ("beyond every year", Filter.gt("year", 10 ** 30), False),
    ("below huge", Filter.lt("year", 10 ** 30), True),
    ("and", Filter.eq("lang", "en") & Filter.gt("year", 2019), True),
    ("or", Filter.eq("lang", "fr") | Filter.eq("flag", True), True),
    ("nested", Filter.or_(Filter.eq("lang", "de") & Filter.eq("count", True),
                          Filter.and_(Filter.lt("year", 2020), Filter.gt("score", 0))), True),
    ("and of nothing common", Filter.eq("lang", "en") & Filter.eq("lang", "fr"), False),
    ("a long or chain", Filter.or_(*(Filter.eq("a.b", i) for i in range(0, 60, 2))), True),
    ("400 terms chained with |", _chained(400), True),
    ("an or of 3000 terms", Filter.or_(*(Filter.eq("year", 3000 - i) for i in range(3000))), True),
] + [(f"odd key {key!r}", Filter.eq(key, f"odd {n}"), True) for n, key in enumerate(ODD_KEYS)]


@pytest.mark.parametrize(("name", "condition", "matches_some"), FILTERS, ids=[case[0] for case in FILTERS])
def test_filters_match_as_the_in_memory_store(store: Any, name: str, condition: Filter, matches_some: bool) -> None:
    rows = corpus()
    store.insert_documents(rows)
    ref = reference(rows)
    for query in QUERIES[:3]:
        got = compare(store, ref, query, 100, filter=condition)
        assert bool(got) == matches_some, name
        assert len(compare(store, ref, query, 3, filter=condition)) == min(3, len(got))


UNKNOWN_KEYS = [
    ("a key no document has", Filter.eq("missing", "x")),
    ("a misspelt key beside a real one", Filter.eq("lang", "en") | Filter.eq("langg", "en")),
    ("a key holding only lists", Filter.eq("tags", "en")),
    ("a key holding only objects", Filter.gt("nested", "a")),
]


@pytest.mark.parametrize(("name", "condition"), UNKNOWN_KEYS, ids=[case[0] for case in UNKNOWN_KEYS])
def test_a_filter_on_a_key_no_document_has_is_refused_naming_the_keys_there_are(
        store: Any, name: str, condition: Filter) -> None:
    assert store.search_vector(QUERIES[0], 3, filter=condition) == []  # an empty store: nothing to check
    rows = corpus()
    store.insert_documents(rows)
    for searched in (store, reference(rows)):
        with pytest.raises(FilterError, match="no document in the store has the metadata key") as refused:
            searched.search_vector(QUERIES[0], 3, filter=condition)
        assert "'lang'" in str(refused.value) and "'year'" in str(refused.value), name  # the keys there are
    assert len(store.search_vector(QUERIES[0], 3, filter=Filter.eq("lang", "en"))) == 3  # the store goes on


def test_a_filter_nested_too_deep_is_a_filter_error(store: Any) -> None:
    store.insert_documents(corpus(5))
    deep = Filter.eq("year", 2020)
    for _ in range(1500):  # and / or alternating: nothing to flatten
        deep = (deep | Filter.eq("lang", "xx")) & Filter.gt("year", 0)
    with pytest.raises(FilterError, match="nested too deep"):
        store.search_vector(QUERIES[0], 3, filter=deep)
    assert len(store.search_vector(QUERIES[0], 3)) == 3  # the store goes on


def test_filters_by_a_dict_documents_own_fields(store: Any) -> None:
    store.insert_documents([("x", {"lang": "de", "year": 2022}, [1.0, 0.0]), ("y", "plain", [1.0, 0.1]),
                            ("z", {"lang": "en"}, [1.0, 0.2], {"lang": "de"})])
    hits = store.search_vector([1.0, 0.0], 5, filter=Filter.eq("lang", "de"))
    assert [doc_id for _, doc_id, _ in hits] == ["x", "z"]  # metadata, when given, wins over the document


def test_a_filter_must_be_a_filter(store: Any) -> None:
    store.insert_documents(corpus(3))
    with pytest.raises(FilterError, match=r"Filter\.parse"):
        store.search_vector(QUERIES[0], 3, filter={"eq": {"lang": "en"}})
    hits = store.search_vector(QUERIES[0], 3, filter=Filter.parse({"eq": {"lang": "en"}}))
    assert all(hit[2]["title"] for hit in hits)


# --- thresholds ---------------------------------------------------------------------------------


def _clear_thresholds(scores: list[float]) -> list[float]:
    """Thresholds halfway between neighbouring scores, far from every score (float32 cannot flip them)."""
    ordered = sorted(set(scores))
    gaps = [(b - a, (a + b) / 2) for a, b in itertools.pairwise(ordered) if b - a > 1e-3]
    assert len(gaps) >= 3, "the corpus should have well separated scores"
    return [gaps[0][1], gaps[len(gaps) // 2][1], gaps[-1][1], 0.999999, -1.0]


def test_thresholds_keep_scores_at_or_above(store: Any) -> None:
    rows = corpus()
    store.insert_documents(rows)
    ref = reference(rows)
    for query in QUERIES[:3]:
        for threshold in _clear_thresholds([hit[0] for hit in ref.search_vector(query, 100)]):
            got = compare(store, ref, query, 100, threshold=threshold)
            assert all(score >= threshold for score, _, _ in got)
            compare(store, ref, query, 100, threshold=threshold, filter=Filter.eq("lang", "en"))
    assert len(store.search_vector(QUERIES[0], 100, threshold=-1.0)) == 54


@pytest.mark.parametrize("threshold", [10 ** 400, -(10 ** 400), float("nan"), float("inf"), "0.5", True])
def test_a_threshold_no_float_holds_is_refused(store: Any, threshold: Any) -> None:
    store.insert_documents(corpus(5))
    with pytest.raises(InvalidRequestError, match="threshold must be a finite number"):
        store.search_vector(QUERIES[0], 3, threshold=threshold)


# --- delete and replace -------------------------------------------------------------------------


def test_delete_removes_documents_and_their_vectors(store: Any) -> None:
    rows = corpus()
    store.insert_documents(rows)
    assert store.delete(["d1", "d2", "missing", 0, "d1"]) == 3  # int 0 is the id "0"; repeats count once
    assert store.delete("d3") == 1  # one id on its own
    assert store.delete([]) == 0
    kept = [row for row in rows if str(row[0]) not in {"d1", "d2", "0", "d3"}]
    ref = reference(kept)
    assert len(store) == len(kept) == 50
    assert "d1" not in store and store.get_document("d1") is None and "d4" in store
    for query in QUERIES[:3]:
        compare(store, ref, query, 100)
        compare(store, ref, query, 100, filter=Filter.eq("lang", "en"))
    with pytest.raises(InvalidTypeError):
        store.delete([1.5])
    with pytest.raises(InvalidTypeError):
        store.delete(None)


def test_reinserting_an_id_replaces_it_in_its_place(store: Any) -> None:
    same = [0.5, 0.5, 0.5, 0.5]
    store.insert_documents([(name, {"v": 1}, same, {"tag": "old"}) for name in ("a", "b", "c")])
    store.insert_documents([("a", {"v": 2}, same, {"tag": "new"})])
    assert len(store) == 3
    assert store.get_document("a") == {"v": 2} and store.get_metadata("a") == {"tag": "new"}
    assert [(doc_id, doc) for _, doc_id, doc in store.search_vector(same, 3)] == \
        [("a", {"v": 2}), ("b", {"v": 1}), ("c", {"v": 1})]
    assert store.search_vector(same, 3, filter=Filter.eq("tag", "old"))[0][1] == "b"
    store.insert_documents([("b", "moved", [[-1.0, 0.0, 0.0, 0.0], [0.0, -1.0, 0.0, 0.0]])])  # now two vectors
    assert [doc_id for _, doc_id, _ in store.search_vector(same, 3)] == ["a", "c", "b"]
    score, doc_id, _ = store.search_vector([-1.0, 0.0, 0.0, 0.0], 1)[0]
    assert doc_id == "b" and score == pytest.approx(1.0, abs=TOL)
    store.insert_documents([("b", "one vector again", [0.0, 0.0, 1.0, 0.0])])  # the two old vectors go
    score, doc_id, _ = store.search_vector([-1.0, 0.0, 0.0, 0.0], 1)[0]
    assert doc_id == "b" and score == pytest.approx(0.0, abs=TOL)
    assert len(store) == 3


def test_the_last_row_for_an_id_in_one_insert_wins(store: Any) -> None:
    store.insert_documents([("a", "first", [1.0, 0.0]), ("b", "b", [0.0, 1.0]), ("a", "second", [0.0, 1.0])])
    assert len(store) == 2 and store.get_document("a") == "second"
    assert [(doc_id, round(score, 4)) for score, doc_id, _ in store.search_vector([1.0, 0.0], 2)] == \
        [("a", 0.0), ("b", 0.0)]


# --- bad input ----------------------------------------------------------------------------------


def test_dimension_errors_name_both_dimensions(store: Any) -> None:
    store.insert_documents(corpus(5))
    with pytest.raises(DimensionMismatchError, match=r"4 dimensions.*8"):
        store.insert_documents([("new", "x", [1.0, 2.0, 3.0, 4.0])])
    with pytest.raises(DimensionMismatchError, match=r"different dimensions: \[4, 8\]"):
        store.insert_documents([("p", "x", _vector(random.Random(1))), ("q", "x", [1.0, 2.0, 3.0, 4.0])])
    with pytest.raises(DimensionMismatchError, match="different dimensions"):
        store.insert_documents([("r", "x", [[1.0] * 8, [1.0] * 4])])
    with pytest.raises(DimensionMismatchError, match=r"3 dimensions, the store 8"):
        store.search_vector([1.0, 2.0, 3.0], 2)
    with pytest.raises(DimensionMismatchError, match=r"5-dimension vectors, the store holds 8"):
        store.index(KeywordModel())
    assert len(store) == 5 and "new" not in store and "p" not in store  # a refused insert leaves nothing


@pytest.mark.parametrize("bad", [[1.0, math.nan], [math.inf, 1.0], [0.0, 0.0], [], ["a", "b"], "ab", None,
                                 [[1.0, 0.0], [math.nan, 1.0]]])
def test_bad_vectors_are_refused(store: Any, bad: Any) -> None:
    with pytest.raises(InvalidVectorError):
        store.insert_documents([("ok", "fine", [1.0, 0.0]), ("bad", "x", bad)])
    assert len(store) == 0  # all or none
    store.insert_documents([("ok", "fine", [1.0, 0.0])])
    if bad and not isinstance(bad, str) and not isinstance(bad[0], list):
        with pytest.raises(InvalidVectorError):
            store.search_vector(bad, 1)


def test_bad_rows_and_arguments(store: Any) -> None:
    for rows in ([("id", "doc")], [(1.5, "doc", [1.0])], [("id", "doc", [1.0], ["not", "a", "dict"])], 5, "abc"):
        with pytest.raises(InvalidTypeError):
            store.insert_documents(rows)
    store.insert_documents([("a", "doc", [1.0, 0.0])])
    for n in (0, -1, 1.5, True):
        with pytest.raises(RigError):
            store.search_vector([1.0, 0.0], n)
    for threshold in (math.nan, "0.5", math.inf):
        with pytest.raises(RigError):
            store.search_vector([1.0, 0.0], 1, threshold=threshold)
    with pytest.raises(RigError):
        store.insert_documents([("b", "doc", [0.0, 1.0])], batch_size=0)
    assert len(store) == 1


# --- batches ------------------------------------------------------------------------------------


def test_batches_give_the_same_store(store: Any) -> None:
    rows = corpus()
    store.insert_documents((row for row in rows), batch_size=7)  # a generator, read lazily
    ref = reference(rows)
    assert len(store) == len(ref) == 54
    for query in QUERIES[:2]:
        compare(store, ref, query, 100)


def test_a_bad_row_keeps_the_batches_before_it(store: Any) -> None:
    rows = corpus(20)
    broken = [*rows[:13], ("bad", "x", [math.nan] * DIMS), *rows[14:]]
    with pytest.raises(InvalidVectorError, match="'bad'"):
        store.insert_documents(broken, batch_size=5)
    assert len(store) == 10  # two whole batches; the third, holding the bad row, is not there
    compare(store, reference(rows[:10]), QUERIES[0], 100)


# --- building from embeddings -------------------------------------------------------------------


class KeywordModel:
    """Deterministic embeddings: one dimension per topic word, plus a bias so no vector is zero."""

    provider = "fake"
    model = "keywords"
    vocab = ("cat", "dog", "car", "sky")
    max_documents = 3
    ndims = len(vocab) + 1

    def vector(self, text: str) -> list[float]:
        words = text.lower().split()
        return [float(words.count(word)) for word in self.vocab] + [0.1]

    def embed_text(self, text: str) -> Embedding:
        return Embedding(text, self.vector(text))

    def embed_texts(self, texts: Sequence[str]) -> list[Embedding]:
        return [Embedding(text, self.vector(text)) for text in texts]


TEXTS = ["cat cat", "dog", "car car car", "sky cat", "dog dog car"]


def test_add_documents_from_the_builder_and_from_embed_texts(store: Any) -> None:
    model = KeywordModel()
    store.add_documents(EmbeddingsBuilder(model).documents(TEXTS[:3]).build())
    store.add_documents(batch.embed_texts(model, TEXTS[3:]))  # Embeddings: each text its own document
    assert sorted(store.get_document(f"doc{i}") for i in range(5)) == sorted(TEXTS)
    store.add_documents([("dog cat", model.vector("dog cat"))], id_fn=lambda text: text.replace(" ", "-"))
    assert store.get_document("dog-cat") == "dog cat" and len(store) == 6
    index = store.index(model)
    assert isinstance(index, VectorStoreIndex)
    assert [doc_id for _, doc_id in index.top_n_ids("cat", 2)] == ["doc0", "doc3"]
    assert index.top_n("car", 1)[0][1:] == ("doc2", "car car car")
    assert [hit[1] for hit in index.search(VectorSearchRequest("dog", 5, threshold=0.5))] == ["doc1", "doc4", "dog-cat"]
    with pytest.raises(InvalidTypeError):
        store.add_documents(["not a pair"])


class RecordingModel(BaseCompletionModel):
    """A completion model that answers "ok" and keeps the requests it was sent."""

    provider = "recording"
    model = "recording-1"

    def __init__(self) -> None:
        self.requests: list[CompletionRequest] = []

    def completion(self, request: CompletionRequest) -> CompletionResponse:
        self.requests.append(request)
        return CompletionResponse((Text("ok"),), Usage(1, 1, 2))

    def stream(self, request: CompletionRequest) -> StreamingCompletionResponse:
        raise NotImplementedError


def test_an_agent_finds_its_context_in_the_store(store: Any) -> None:
    embedder = KeywordModel()
    store.insert_documents([(f"t{i}", text, embedder.vector(text)) for i, text in enumerate(TEXTS)])
    model = RecordingModel()
    agent = AgentBuilder(model).dynamic_context(2, store.index(embedder)).build()
    assert agent.prompt("tell me about the car") == "ok"
    assert model.requests[0].documents == (Document("t2", "car car car"), Document("t4", "dog dog car"))


# --- lifecycle ----------------------------------------------------------------------------------


def test_a_closed_store_says_so(store: Any) -> None:
    store.insert_documents(corpus(3))
    index = store.index(_EightDims())
    store.close()
    store.close()  # twice is harmless
    assert store.closed
    calls = [lambda: len(store), lambda: store.search_vector(QUERIES[0], 1), lambda: store.delete(["d1"]),
             lambda: store.insert_documents(corpus(1)), lambda: store.get_document("d1"),
             lambda: store.index(_EightDims()), lambda: index.top_n("x", 1), lambda: "d1" in store]
    for call in calls:
        with pytest.raises(StoreClosedError, match="closed"):
            call()
    assert issubclass(StoreClosedError, VectorStoreError) and issubclass(StoreClosedError, RigError)
    assert "closed" in repr(store)


def test_with_closes_the_store(store_name: str, tmp_path: Path) -> None:
    with FACTORIES[store_name](tmp_path) as made, made as same:
        same.insert_documents(corpus(2))
        assert len(made) == 2
    with pytest.raises(StoreClosedError):
        len(made)


class _EightDims(KeywordModel):
    ndims = DIMS

    def vector(self, text: str) -> list[float]:
        return _vector(random.Random(text))


# --- documents as JSON (the database stores) ----------------------------------------------------


@pytest.mark.parametrize("name", DATABASE_STORES)
def test_documents_and_metadata_must_be_json(name: str, tmp_path: Path) -> None:
    with FACTORIES[name](tmp_path) as db:
        for row in [("a", object(), [1.0, 0.0]), ("a", {"x": math.nan}, [1.0, 0.0]),
                    ("a", "doc", [1.0, 0.0], {"when": object()}), ("a", "doc", [1.0, 0.0], {"x": math.inf})]:
            with pytest.raises(VectorStoreError, match="JSON"):
                db.insert_documents([("ok", "fine", [1.0, 0.0]), row])
        assert len(db) == 0
        odd = {"text": "ünï \"quoted\" 'single' \\ \u2028", "list": [1, 2.5, None, True, {"deep": [[]]}], "": 0}
        db.insert_documents([("odd", odd, [1.0, 0.0], {"n": np.int64(3), "f": np.float32(0.5)}),
                             ("list", [1, "two"], [0.0, 1.0])])
        assert db.get_document("odd") == odd and db.get_document("list") == [1, "two"]
        assert db.get_metadata("odd") == {"n": 3, "f": 0.5}
        assert db.search_vector([1.0, 0.0], 1, filter=Filter.eq("n", 3))[0][1] == "odd"


# --- property: ranking against a brute-force scan -----------------------------------------------

_ids = itertools.count()
finite = st.floats(min_value=-10, max_value=10, allow_nan=False, allow_infinity=False)


@st.composite
def corpora(draw: st.DrawFn) -> tuple[list[list[list[float]]], list[float], int]:
    dims = draw(st.integers(min_value=1, max_value=6))
    vector = st.lists(finite, min_size=dims, max_size=dims).filter(lambda v: math.hypot(*v) > 1e-3)
    documents = draw(st.lists(st.lists(vector, min_size=1, max_size=3), min_size=1, max_size=15))
    return documents, draw(vector), draw(st.integers(min_value=1, max_value=20))


def brute_force(documents: list[list[list[float]]], query: list[float]) -> list[Hit]:
    """Cosine scores by numpy in float64, best vector per document, ties in insertion order."""
    q = np.asarray(query, dtype=np.float64)
    scores = [max(float(np.dot(v, q) / (np.linalg.norm(v) * np.linalg.norm(q)))
                  for v in np.asarray(vectors, dtype=np.float64)) for vectors in documents]
    order = sorted(range(len(documents)), key=lambda i: (-scores[i], i))
    return [(scores[i], f"p{i}", i) for i in order]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=corpora())
def test_ranking_matches_a_brute_force_scan(store_name: str, tmp_path: Path,
                                            case: tuple[list[list[list[float]]], list[float], int]) -> None:
    documents, query, n = case
    place = tmp_path / f"example{next(_ids)}"
    place.mkdir()
    with FACTORIES[store_name](place) as fresh:
        fresh.insert_documents([(f"p{i}", i, vectors) for i, vectors in enumerate(documents)])
        full = brute_force(documents, query)
        assert_same(fresh.search_vector(query, n), full[:n], full)
