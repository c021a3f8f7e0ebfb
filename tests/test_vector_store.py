"""Tests for rig_sync.vector_store: ranking, thresholds, filters, persistence, both scoring paths, threads."""

from __future__ import annotations

import math
import pickle
import random
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs
import pytest

from rig_sync import vector_store
from rig_sync.completion import Document
from rig_sync.embeddings import Embedding, EmbeddingsBuilder
from rig_sync.errors import InvalidRequestError, RigError
from rig_sync.vector_store import (
    DimensionMismatchError,
    Filter,
    FilterError,
    InMemoryVectorIndex,
    InMemoryVectorStore,
    InvalidVectorError,
    VectorSearchRequest,
    VectorStoreError,
    VectorStoreIndex,
)

HAS_NUMPY = vector_store._np is not None


class KeywordModel:
    """Deterministic embeddings: one dimension per topic word, plus a small bias so no vector is zero."""

    provider = "fake"
    model = "keywords"
    vocab = ("cat", "dog", "car", "sky")

    def __init__(self) -> None:
        self.queries: list[str] = []

    @property
    def max_documents(self) -> int:
        return 2

    @property
    def ndims(self) -> int:
        return len(self.vocab) + 1

    def vector(self, text: str) -> list[float]:
        words = text.lower().split()
        return [float(words.count(word)) for word in self.vocab] + [0.1]

    def embed_text(self, text: str) -> Embedding:
        self.queries.append(text)
        return Embedding(text, self.vector(text))

    def embed_texts(self, texts: Sequence[str]) -> list[Embedding]:
        return [Embedding(text, self.vector(text)) for text in texts]


@pytest.fixture(params=["numpy", "pure"])
def scoring(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test once per scoring path (numpy only where installed)."""
    if request.param == "numpy" and not HAS_NUMPY:
        pytest.skip("numpy is not installed")
    monkeypatch.setattr(vector_store, "USE_NUMPY", request.param == "numpy")
    return str(request.param)


@pytest.fixture
def model() -> KeywordModel:
    return KeywordModel()


ARTICLES = [
    ("a", "cat cat cat", {"lang": "en", "year": 2019, "kind": "pet"}),
    ("b", "dog dog", {"lang": "en", "year": 2021, "kind": "pet"}),
    ("c", "car car sky", {"lang": "fr", "year": 2022, "kind": "thing"}),
    ("d", "cat dog", {"lang": "de", "year": 2023, "kind": "pet"}),
    ("e", "sky", {"lang": "en", "year": 2024, "kind": "thing"}),
]


@pytest.fixture
def store(model: KeywordModel) -> InMemoryVectorStore[str]:
    s: InMemoryVectorStore[str] = InMemoryVectorStore()
    s.insert_documents([(doc_id, text, model.vector(text), meta) for doc_id, text, meta in ARTICLES])
    return s


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.hypot(*a) * math.hypot(*b))


# --- ranking ------------------------------------------------------------------------------------


def test_top_n_returns_best_first_with_cosine_scores(
    scoring: str, store: InMemoryVectorStore[str], model: KeywordModel
) -> None:
    index = store.index(model)
    hits = index.top_n("cat", 3)
    assert [doc_id for _, doc_id, _ in hits] == ["a", "d", "e"]  # "e" (short) beats "b" on the bias
    assert hits[0][2] == "cat cat cat"
    assert hits[0][0] == pytest.approx(cosine(model.vector("cat"), model.vector("cat cat cat")))
    scores = [score for score, _, _ in hits]
    assert scores == sorted(scores, reverse=True)
    assert model.queries == ["cat"]  # the query is embedded once, with embed_text


def test_top_n_ids_and_index_protocol(scoring: str, store: InMemoryVectorStore[str], model: KeywordModel) -> None:
    index = store.index(model)
    assert isinstance(index, VectorStoreIndex)
    assert isinstance(index, InMemoryVectorIndex)
    assert index.top_n_ids("dog", 2) == [(s, i) for s, i, _ in index.top_n("dog", 2)]
    assert [i for _, i in index.top_n_ids("dog", 2)] == ["b", "d"]


def test_n_larger_than_store_returns_everything_sorted(
    scoring: str, store: InMemoryVectorStore[str], model: KeywordModel
) -> None:
    hits = store.index(model).top_n("sky", 50)
    assert len(hits) == len(ARTICLES)
    assert hits[0][1] == "e"


def test_document_with_several_vectors_scores_its_best_one(scoring: str, model: KeywordModel) -> None:
    store: InMemoryVectorStore[str] = InMemoryVectorStore()
    store.insert_documents([
        ("multi", "about cats and cars", [model.vector("cat"), model.vector("car")]),
        ("dogs", "dogs only", model.vector("dog")),
    ])
    index = store.index(model)
    assert index.top_n("car", 1)[0][1] == "multi"
    assert index.top_n("cat", 1)[0][1] == "multi"
    assert index.top_n("cat", 1)[0][0] == pytest.approx(cosine(model.vector("cat"), model.vector("cat")))
    assert index.top_n("dog", 1)[0][1] == "dogs"


def test_ties_keep_insertion_order(scoring: str) -> None:
    store: InMemoryVectorStore[int] = InMemoryVectorStore()
    store.insert_documents([(f"id{i}", i, [1.0, 0.0]) for i in range(10)])
    assert [doc for _, _, doc in store.search_vector([1.0, 0.0], 4)] == [0, 1, 2, 3]


def test_empty_store_returns_nothing(scoring: str, model: KeywordModel) -> None:
    assert InMemoryVectorStore().index(model).top_n("cat", 3) == []


def test_numpy_and_pure_paths_rank_identically(monkeypatch: pytest.MonkeyPatch) -> None:
    if not HAS_NUMPY:
        pytest.skip("numpy is not installed")
    rng = random.Random(7)
    store: InMemoryVectorStore[int] = InMemoryVectorStore()
    store.insert_documents([
        (f"d{i}", i, [[rng.gauss(0, 1) for _ in range(16)] for _ in range(1 + i % 3)], {"even": i % 2 == 0})
        for i in range(300)
    ])
    store.insert_documents([(f"dup{i}", -i, [1.0] + [0.0] * 15) for i in range(5)])  # exact ties
    queries = [[rng.gauss(0, 1) for _ in range(16)] for _ in range(10)] + [[1.0] + [0.0] * 15]
    for query in queries:
        for kwargs in ({}, {"threshold": 0.2}, {"filter": Filter.eq("even", True)}):
            monkeypatch.setattr(vector_store, "USE_NUMPY", True)
            fast = store.search_vector(query, 7, **kwargs)
            monkeypatch.setattr(vector_store, "USE_NUMPY", False)
            pure = store.search_vector(query, 7, **kwargs)
            assert [i for _, i, _ in fast] == [i for _, i, _ in pure]
            assert [s for s, _, _ in fast] == pytest.approx([s for s, _, _ in pure])


# --- threshold and filters ----------------------------------------------------------------------


def search_ids(store: InMemoryVectorStore[str], model: KeywordModel, **kwargs: Any) -> list[str]:
    request = VectorSearchRequest(kwargs.pop("query", "cat dog car sky"), kwargs.pop("samples", 10), **kwargs)
    return [doc_id for _, doc_id, _ in store.index(model).search(request)]


def test_threshold_drops_weak_matches(scoring: str, store: InMemoryVectorStore[str], model: KeywordModel) -> None:
    everything = store.index(model).top_n("cat", 10)
    cutoff = everything[1][0]
    assert search_ids(store, model, query="cat", threshold=cutoff) == ["a", "d"]
    assert search_ids(store, model, query="cat", threshold=1.01) == []


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        (Filter.eq("lang", "en"), {"a", "b", "e"}),
        (Filter.gt("year", 2021), {"c", "d", "e"}),
        (Filter.lt("year", 2021), {"a"}),
        (Filter.gt("lang", "en"), {"c"}),  # strings compare too
        (Filter.eq("lang", "en") & Filter.gt("year", 2020), {"b", "e"}),
        (Filter.and_(Filter.eq("kind", "pet"), Filter.gt("year", 2020), Filter.lt("year", 2023)), {"b"}),
        (Filter.eq("lang", "fr") | Filter.eq("lang", "de"), {"c", "d"}),
        (Filter.or_(Filter.lt("year", 2020), Filter.gt("year", 2023)), {"a", "e"}),
        ((Filter.eq("kind", "thing") | Filter.eq("lang", "de")) & Filter.lt("year", 2024), {"c", "d"}),
        (Filter.eq("kind", "nothing"), set()),
        (Filter.eq("year", "2021"), set()),  # a str never equals an int
        (Filter.gt("lang", 1), set()),  # nor compares with one
    ],
)
def test_filters(
    scoring: str, store: InMemoryVectorStore[str], model: KeywordModel, flt: Filter, expected: set[str]
) -> None:
    assert set(search_ids(store, model, filter=flt)) == expected


def test_filter_and_threshold_combine_with_samples(
    scoring: str, store: InMemoryVectorStore[str], model: KeywordModel
) -> None:
    ids = search_ids(store, model, query="cat", samples=1, filter=Filter.eq("kind", "pet"), threshold=0.1)
    assert ids == ["a"]
    # the filter is applied before picking the top n, so n matching results come back
    assert search_ids(store, model, query="dog", samples=2) == ["b", "d"]
    assert search_ids(store, model, query="dog", samples=2, filter=Filter.eq("lang", "en")) == ["b", "e"]


def test_parse_builds_the_same_filter() -> None:
    spec = {"and": [{"eq": {"lang": "en"}}, {"or": [{"gt": {"year": 2020}}, {"lt": {"year": 2000}}]}]}
    assert Filter.parse(spec) == Filter.eq("lang", "en") & (Filter.gt("year", 2020) | Filter.lt("year", 2000))


def test_dict_documents_are_their_own_metadata(scoring: str, model: KeywordModel) -> None:
    docs = [{"text": "cat", "lang": "en"}, {"text": "cat cat", "lang": "fr"}]
    store = InMemoryVectorStore.from_documents([(doc, model.vector(doc["text"])) for doc in docs])
    hits = store.index(model).search(VectorSearchRequest("cat", 5, filter=Filter.eq("lang", "fr")))
    assert [doc for _, _, doc in hits] == [docs[1]]


@pytest.mark.parametrize(
    "make",
    [
        lambda: Filter("like", "lang", "en"),
        lambda: Filter.parse({"like": {"lang": "en"}}),
        lambda: Filter.parse({"eq": {"lang": "en"}, "gt": {"year": 1}}),
        lambda: Filter.parse({"and": {"eq": {"lang": "en"}}}),
        lambda: Filter.parse("lang == en"),
        lambda: Filter.gt("year", [2020]),
        lambda: Filter.lt("year", None),
        lambda: Filter.gt("year", True),
        lambda: Filter.gt("year", math.nan),
        lambda: Filter.eq("tags", {"a": 1}),
        lambda: Filter.eq("", "x"),
        lambda: Filter.eq(3, "x"),  # type: ignore[arg-type]
        lambda: Filter.and_(),
        lambda: Filter.and_(Filter.eq("a", 1), {"eq": {"b": 2}}),  # type: ignore[arg-type]
        lambda: VectorSearchRequest("q", 3, filter={"eq": {"lang": "en"}}),  # type: ignore[arg-type]
    ],
)
def test_bad_filters_raise_filter_error(make: Any) -> None:
    with pytest.raises(FilterError) as info:
        make()
    assert isinstance(info.value, RigError) and isinstance(info.value, ValueError)
    assert str(info.value)


@pytest.mark.parametrize(
    "kwargs", [{"samples": 0}, {"samples": -1}, {"samples": 2.5}, {"threshold": "high"}, {"threshold": math.inf}]
)
def test_bad_search_requests(kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequestError):
        VectorSearchRequest(**{"query": "q", "samples": 3, **kwargs})
    with pytest.raises(InvalidRequestError):
        VectorSearchRequest("", 3)


# --- inserting ----------------------------------------------------------------------------------


def test_from_documents_takes_embeddings_builder_output(model: KeywordModel) -> None:
    docs = ["cat", "dog dog", "sky car"]
    store = InMemoryVectorStore.from_documents(EmbeddingsBuilder(model).documents(docs).build())
    assert len(store) == 3 and "doc0" in store and "doc3" not in store
    assert store.get_document("doc1") == "dog dog"
    assert store.index(model).top_n("dog", 1)[0][1:] == ("doc1", "dog dog")
    store.add_documents([("cat cat", [Embedding("cat cat", model.vector("cat cat"))])])
    assert store.get_document("doc3") == "cat cat"  # generated ids never collide


def test_id_fn_upsert_and_lookup(model: KeywordModel) -> None:
    store = InMemoryVectorStore.from_documents([("cat", model.vector("cat"))], id_fn=str.upper)
    assert store.get_document("CAT") == "cat" and store.get_document("cat") is None
    store.add_documents_with_ids([("CAT", "now a dog", model.vector("dog"), {"v": 2})])
    assert len(store) == 1
    assert store.get_document("CAT") == "now a dog"
    assert store.get_metadata("CAT") == {"v": 2}
    assert store.index(model).top_n("dog", 1)[0][0] == pytest.approx(1.0)
    store.insert_documents([(7, "int id", model.vector("sky"))])
    assert store.get_document("7") == "int id"


def test_vectors_accept_embeddings_and_numpy_arrays(model: KeywordModel) -> None:
    store: InMemoryVectorStore[str] = InMemoryVectorStore()
    store.insert_documents([("e", "cat", Embedding("cat", model.vector("cat")))])
    if HAS_NUMPY:
        np = vector_store._np
        store.insert_documents([("n", "dog", np.array(model.vector("dog")))])
        store.insert_documents([("m", "both", np.array([model.vector("car"), model.vector("sky")]))])
        assert store.index(model).top_n("sky", 1)[0][1] == "m"
    assert store.index(model).top_n("cat", 1)[0][1] == "e"


@pytest.mark.parametrize(
    "rows",
    [
        [("x", "doc", [1.0, 2.0, 3.0])],  # store holds 5 dimensions
        [("x", "doc", [[0.1] * 5, [0.1] * 4])],  # one document, mixed sizes
    ],
)
def test_dimension_mismatch_on_insert(store: InMemoryVectorStore[str], rows: list[Any]) -> None:
    before = len(store)
    with pytest.raises(DimensionMismatchError, match="dimensions"):
        store.insert_documents(rows)
    assert len(store) == before  # nothing half-inserted


def test_dimension_mismatch_within_one_insert_inserts_nothing() -> None:
    store: InMemoryVectorStore[str] = InMemoryVectorStore()
    with pytest.raises(DimensionMismatchError):
        store.insert_documents([("a", "a", [1.0, 0.0]), ("b", "b", [1.0, 0.0, 0.0])])
    assert len(store) == 0 and store.ndims is None


def test_dimension_mismatch_on_query_and_on_index(store: InMemoryVectorStore[str], model: KeywordModel) -> None:
    with pytest.raises(DimensionMismatchError, match="query vector has 3 dimensions, the store 5"):
        store.search_vector([1.0, 0.0, 0.0], 3)

    class Wide(KeywordModel):
        @property
        def ndims(self) -> int:
            return 1536

    with pytest.raises(DimensionMismatchError, match="1536"):
        store.index(Wide())


@pytest.mark.parametrize(
    ("vectors", "message"),
    [
        ([], "no vectors"),
        ([[]], "empty"),
        ([0.0, 0.0], "zero vector"),
        ([1.0, math.nan], "NaN"),
        ([1.0, math.inf], "infinity"),
        (["a", "b"], "sequence of numbers"),
        ("1,2,3", "expected a vector"),
        (None, "expected a vector"),
    ],
)
def test_invalid_vectors(vectors: Any, message: str) -> None:
    with pytest.raises(InvalidVectorError, match=message):
        InMemoryVectorStore().insert_documents([("x", "doc", vectors)])


def test_malformed_rows_raise_type_error() -> None:
    store: InMemoryVectorStore[str] = InMemoryVectorStore()
    with pytest.raises(TypeError, match="expected"):
        store.insert_documents([("only", "two")])
    with pytest.raises(TypeError, match="metadata"):
        store.insert_documents([("x", "doc", [1.0], ["not", "a", "mapping"])])
    with pytest.raises(TypeError, match="id"):
        store.insert_documents([(1.5, "doc", [1.0])])


# --- persistence --------------------------------------------------------------------------------


def test_save_load_round_trip(
    scoring: str, tmp_path: Path, store: InMemoryVectorStore[str], model: KeywordModel
) -> None:
    store.insert_documents([("multi", "cats and cars", [model.vector("cat"), model.vector("car")])])
    path = tmp_path / "store.jsonl"
    store.save(path)
    loaded = InMemoryVectorStore.load(path)
    assert len(loaded) == len(store) and loaded.ndims == store.ndims
    assert loaded.get_document("c") == "car car sky" and loaded.get_metadata("c") == ARTICLES[2][2]
    request = VectorSearchRequest("cat car", 10, filter=Filter.eq("lang", "en") | Filter.eq("lang", "fr"))
    assert loaded.index(model).search(request) == store.index(model).search(request)
    assert loaded.index(model).top_n("car", 1)[0][1] == "multi"
    assert len(path.read_text().splitlines()) == len(store) + 1  # a header, then one line per document


def test_save_load_structured_documents(tmp_path: Path, model: KeywordModel) -> None:
    docs = [Document("d1", "cat", {"src": "wiki"}), Document("d2", "dog", {})]
    store = InMemoryVectorStore.from_documents([(d, model.vector(d.text)) for d in docs], id_fn=lambda d: d.id)
    path = tmp_path / "docs.jsonl"
    store.save(str(path))
    loaded = InMemoryVectorStore.load(path, document_type=Document)
    assert loaded.get_document("d1") == docs[0]
    assert loaded.index(model).top_n("dog", 1)[0][2] == docs[1]


def test_save_refuses_unserialisable_documents_and_keeps_old_file(tmp_path: Path) -> None:
    path = tmp_path / "store.jsonl"
    good: InMemoryVectorStore[Any] = InMemoryVectorStore()
    good.insert_documents([("a", "fine", [1.0, 0.0])])
    good.save(path)
    before = path.read_bytes()
    bad: InMemoryVectorStore[Any] = InMemoryVectorStore()
    bad.insert_documents([("x", object(), [1.0, 0.0])])
    with pytest.raises(VectorStoreError, match="'x'"):
        bad.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["store.jsonl"]  # no temp file left behind


def test_store_pickles_for_process_pools(store: InMemoryVectorStore[str], model: KeywordModel) -> None:
    store.index(model).top_n("cat", 1)  # builds the cached snapshot, which is not pickled
    clone = pickle.loads(pickle.dumps(store))
    assert clone.index(model).top_n("cat dog", 5) == store.index(model).top_n("cat dog", 5)
    clone.add_documents([("new", model.vector("sky"))])
    assert clone.get_document("doc0") == "new" and store.get_document("doc0") is None


@pytest.mark.parametrize(
    ("content", "line"),
    [
        ('{"not": "a store"}\n', 1),
        ('{"format": "rig_sync.InMemoryVectorStore", "version": 1}\n{"id": "a", "document": "x"}\n', 2),
        ('{"format": "rig_sync.InMemoryVectorStore", "version": 1}\nnot json\n', 2),
    ],
)
def test_load_reports_the_bad_line(tmp_path: Path, content: str, line: int) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(VectorStoreError, match=f"line {line}"):
        InMemoryVectorStore.load(path)


@attrs.frozen
class Note:
    title: str
    year: int


def test_load_with_wrong_document_type_is_a_store_error(tmp_path: Path) -> None:
    store: InMemoryVectorStore[Any] = InMemoryVectorStore()
    store.insert_documents([("a", {"title": "t"}, [1.0, 0.0])])
    path = tmp_path / "s.jsonl"
    store.save(path)
    with pytest.raises(VectorStoreError, match="line 2"):
        InMemoryVectorStore.load(path, document_type=Note)


# --- threads ------------------------------------------------------------------------------------


def test_queries_while_another_thread_inserts(scoring: str) -> None:
    rng = random.Random(3)
    dims = 8
    store: InMemoryVectorStore[str] = InMemoryVectorStore()
    store.insert_documents([("seed", "doc-seed", [1.0] * dims)])
    batches = [
        [(f"w{b}-{i}", f"doc-w{b}-{i}", [rng.uniform(-1, 1) for _ in range(dims)]) for i in range(20)]
        for b in range(40)
    ]
    done = threading.Event()
    errors: list[BaseException] = []
    seen_sizes: list[list[int]] = [[] for _ in range(3)]

    def writer() -> None:
        try:
            for batch in batches:
                store.insert_documents(batch)
        except BaseException as exc:
            errors.append(exc)
        finally:
            done.set()

    def reader(slot: int) -> None:
        query = [rng.uniform(-1, 1) for _ in range(dims)]
        try:
            for _ in range(10_000):  # bounded; stops as soon as the writer is done
                finished = done.is_set()
                hits = store.search_vector(query, 1000)
                scores = [score for score, _, _ in hits]
                assert scores == sorted(scores, reverse=True)
                assert all(doc == f"doc-{doc_id}" for _, doc_id, doc in hits)
                assert len({doc_id for _, doc_id, _ in hits}) == len(hits)
                seen_sizes[slot].append(len(hits))
                if finished:
                    break
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer)] + [threading.Thread(target=reader, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert len(store) == 1 + 40 * 20
    for sizes in seen_sizes:
        assert sizes == sorted(sizes)  # a reader never sees the store shrink or tear
        assert sizes[-1] == 801  # the last query ran after the last insert


# --- end to end over HTTP -----------------------------------------------------------------------


@pytest.fixture
def fake_openai_model() -> Iterator[Any]:
    from rig_sync.providers import openai
    from rig_sync.testing import FakeProvider

    with FakeProvider() as fake:
        client = openai.Client(fake.api_key, base_url=fake.base_url)
        yield client.embedding_model("text-embedding-3-small")


def test_end_to_end_with_the_fake_openai_provider(scoring: str, fake_openai_model: Any, tmp_path: Path) -> None:
    docs = [
        "The cat sat on the warm windowsill all afternoon.",
        "Stock markets fell sharply after the interest rate decision.",
        "A recipe for sourdough bread with a crisp crust.",
        "Volcanic eruptions can change the global climate for years.",
    ]
    store = InMemoryVectorStore.from_documents(
        EmbeddingsBuilder(fake_openai_model).documents(docs).build(), id_fn=lambda d: f"doc{docs.index(d)}"
    )
    assert store.ndims == 1536
    index = store.index(fake_openai_model)
    hits = index.top_n("where did the cat sit?", 3)
    assert len(hits) == 3
    assert hits[0][1:] == ("doc0", docs[0])
    assert index.top_n("sourdough bread recipe", 3)[0][1] == "doc2"
    assert index.top_n_ids("interest rate stock markets", 1)[0][1] == "doc1"

    path = tmp_path / "notebook.jsonl"
    store.save(path)
    assert InMemoryVectorStore.load(path).index(fake_openai_model).top_n("where did the cat sit?", 3) == hits


def test_load_refuses_a_file_cut_short_or_padded(tmp_path: Path) -> None:
    store: InMemoryVectorStore[str] = InMemoryVectorStore()
    store.insert_documents([(f"d{i}", f"doc {i}", [1.0, float(i)]) for i in range(10)])
    path = tmp_path / "s.jsonl"
    store.save(path)
    whole = path.read_bytes()
    lines = whole.splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:6]))  # the header (count 10) and 5 documents: cut at a line end
    with pytest.raises(VectorStoreError, match=r"holds 5 documents but its header says 10.*cut short"):
        InMemoryVectorStore.load(path)
    path.write_bytes(whole[:-20])  # cut in the middle of the last record
    with pytest.raises(VectorStoreError, match="line 11"):
        InMemoryVectorStore.load(path)
    path.write_bytes(whole + lines[1])  # one document too many
    with pytest.raises(VectorStoreError, match="holds 11 documents but its header says 10"):
        InMemoryVectorStore.load(path)
    path.write_bytes(b"")  # cut before the header
    with pytest.raises(VectorStoreError, match="not a rig_sync vector store file"):
        InMemoryVectorStore.load(path)
    path.write_bytes(whole)
    assert len(InMemoryVectorStore.load(path)) == 10


def test_every_string_is_saved_and_loaded_back_equal(tmp_path: Path) -> None:
    odd = "half an emoji \ud83d, a whole one \U0001f600, a NUL \x00 and a \u2028 separator"
    store: InMemoryVectorStore[Any] = InMemoryVectorStore()
    store.insert_documents([(odd, {"text": odd}, [1.0, 0.0], {"note": odd})])
    path = tmp_path / "s.jsonl"
    store.save(path)
    loaded = InMemoryVectorStore.load(path)
    assert loaded.get_document(odd) == {"text": odd} and loaded.get_metadata(odd) == {"note": odd}
    path.read_bytes().decode("utf-8")  # still a UTF-8 file other tools can read
