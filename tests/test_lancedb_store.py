"""LanceDBVectorStore beyond the shared contract (tests/test_vector_store_contract.py): filters as
LanceDB SQL (exactly `Filter.matches`, whatever the keys and values hold), the table it keeps, the
ANN index, reopening, and its errors. Every store lives in the test's temporary directory."""

from __future__ import annotations

import math
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rig_sync.errors import InvalidRequestError, InvalidTypeError
from rig_sync.vector_store import (
    DimensionMismatchError,
    Filter,
    FilterError,
    StoreClosedError,
    StoreUnavailableError,
    VectorStoreError,
)
from rig_sync.vector_stores.lancedb import INDEX_TYPES, LanceDBVectorStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LanceDBVectorStore[Any]]:
    with LanceDBVectorStore(tmp_path / "db") as made:
        yield made


def unit(seed: int, dims: int = 8) -> list[float]:
    rnd = random.Random(seed)
    return [rnd.gauss(0, 1) for _ in range(dims)]


# --- filters ------------------------------------------------------------------------------------

ODD_KEYS = ["lang", "a.b", "with space", "it's", 'say "hi"', "back\\slash", "ünï😀", "$.x", "`tick`", "f_s_00",
            "x' OR '1'='1"]
ODD_VALUES: list[Any] = [
    "en", "", "it's", "O'Reilly\\", "\\", "a\\'b", "'; DELETE FROM rig_documents; --", "x' OR '1'='1", "ünï😀",
    "a\x00b", "😀", "Z", 0, 1, -1, 2, 2.5, -0.0, 1e-300, 2**53, 2**53 + 1, 2**62, -(2**63), 2**63 - 1, 1e308,
    -1e308, True, False, None, [1, 2], {"nested": 1},
]


def odd_corpus() -> list[tuple[str, Any, list[float], dict[str, Any]]]:
    """Documents whose metadata puts every odd value under every odd key, in some order (no
    infinities: documents and metadata are strict JSON)."""
    rows = []
    for i in range(len(ODD_VALUES)):
        metadata = {key: ODD_VALUES[(i + k * 7) % len(ODD_VALUES)] for k, key in enumerate(ODD_KEYS)}
        rows.append((f"d{i}", {"i": i}, unit(i), metadata))
    return rows


@pytest.fixture(scope="module")
def odd_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LanceDBVectorStore[Any], list[Any]]]:
    rows = odd_corpus()
    with LanceDBVectorStore(tmp_path_factory.mktemp("odd") / "db") as made:
        made.insert_documents(rows)
        yield made, rows


def expected_ids(rows: list[Any], condition: Filter) -> set[str]:
    return {row[0] for row in rows if condition.matches(row[3])}


def found_ids(store: LanceDBVectorStore[Any], rows: list[Any], condition: Filter) -> set[str]:
    hits = store.search_vector(unit(999), len(rows) + 5, filter=condition)
    assert len(hits) == len({doc_id for _, doc_id, _ in hits})
    return {doc_id for _, doc_id, _ in hits}


FILTER_VALUES = [value for value in ODD_VALUES if not isinstance(value, list | dict)] + [
    "never stored", 3, math.inf, -math.inf, 2**64, -(2**64), 2**53 + 0.5, 0.5, 1.0, 2**63, -(2**63) - 1, 10**400]


def leaf_filters() -> list[Filter]:
    filters = []
    for key in ODD_KEYS:
        for value in FILTER_VALUES:
            filters.append(Filter.eq(key, value))
            if isinstance(value, str) or (isinstance(value, int | float) and not isinstance(value, bool)):
                filters.extend([Filter.gt(key, value), Filter.lt(key, value)])
    return filters


def test_every_leaf_filter_matches_as_filter_matches(odd_store: tuple[LanceDBVectorStore[Any], list[Any]]) -> None:
    store, rows = odd_store
    checked = matched = 0
    for condition in leaf_filters():
        want = expected_ids(rows, condition)
        assert found_ids(store, rows, condition) == want, condition
        checked += 1
        matched += bool(want)
    assert checked > 800 and matched > 300  # the grid holds matches, not only empty answers


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_combined_filters_match_as_filter_matches(odd_store: tuple[LanceDBVectorStore[Any], list[Any]],
                                                  data: st.DataObject) -> None:
    store, rows = odd_store
    leaves = st.sampled_from(leaf_filters())
    tree = st.recursive(leaves, lambda children: st.one_of(
        st.lists(children, min_size=1, max_size=4).map(lambda items: Filter.and_(*items)),
        st.lists(children, min_size=1, max_size=4).map(lambda items: Filter.or_(*items))), max_leaves=8)
    condition = data.draw(tree)
    assert found_ids(store, rows, condition) == expected_ids(rows, condition)


def test_injection_attempts_stay_values(store: LanceDBVectorStore[Any]) -> None:
    hostile = ["x' OR '1'='1", "'; DELETE FROM rig_documents WHERE '1'='1", "\\' OR true --", "') OR (true", "\x00'"]
    store.insert_documents([(f"h{i}", {"v": value, value: "key"}, unit(i)) for i, value in enumerate(hostile)]
                           + [("plain", {"v": "plain"}, unit(50))])
    def ids(condition: Filter) -> list[str]:
        return [doc_id for _, doc_id, _ in store.search_vector(unit(0), 10, filter=condition)]

    for i, value in enumerate(hostile):
        assert ids(Filter.eq("v", value)) == [f"h{i}"] and ids(Filter.eq(value, "key")) == [f"h{i}"]
    assert store.search_vector(unit(0), 10, filter=Filter.eq("v", "' OR true OR '")) == []
    with pytest.raises(FilterError, match="no document in the store has the metadata key"):
        store.search_vector(unit(0), 10, filter=Filter.gt("v' OR true OR '", ""))
    assert len(store) == len(hostile) + 1


def test_integers_compare_exactly(store: LanceDBVectorStore[Any]) -> None:
    """Beyond 2**53 a double cannot tell neighbours apart; the int64 column can."""
    big = 2**53
    store.insert_documents([("low", "l", unit(1), {"n": big}), ("high", "h", unit(2), {"n": big + 1}),
                            ("half", "f", unit(3), {"n": 2.5}), ("top", "t", unit(4), {"n": 2**63 - 1})])

    def ids(condition: Filter) -> list[str]:
        return sorted(doc_id for _, doc_id, _ in store.search_vector(unit(0), 10, filter=condition))

    assert ids(Filter.eq("n", big + 1)) == ["high"]
    assert ids(Filter.gt("n", big)) == ["high", "top"]
    assert ids(Filter.lt("n", big + 1)) == ["half", "low"]
    assert ids(Filter.eq("n", float(big))) == ["low"]
    assert ids(Filter.gt("n", 2)) == ["half", "high", "low", "top"]
    assert ids(Filter.lt("n", 2.6)) == ["half"]
    assert ids(Filter.gt("n", 2**63 - 2)) == ["top"]
    assert ids(Filter.gt("n", 2**64)) == [] and ids(Filter.lt("n", 2**64)) == ["half", "high", "low", "top"]
    assert ids(Filter.lt("n", math.inf)) == ["half", "high", "low", "top"] and ids(Filter.gt("n", math.inf)) == []


def test_text_that_lancedb_cannot_hold_is_refused(store: LanceDBVectorStore[Any]) -> None:
    store.insert_documents([("ok", "text", unit(1), {"k": "v"})])
    with pytest.raises(VectorStoreError, match="lone surrogate"):
        store.insert_documents([("bad", "text", unit(2), {"k": "\ud800"})])
    with pytest.raises(FilterError, match="lone surrogate"):
        store.search_vector(unit(0), 3, filter=Filter.eq("k", "\udfff"))
    assert len(store) == 1 and store.get_document("bad") is None


def test_filter_columns_are_typed_per_key_and_kind(store: LanceDBVectorStore[Any]) -> None:
    store.insert_documents([("a", "a", unit(1), {"k": "s", "n": 1, "f": 1.5, "b": True, "z": None, "l": [1]})])
    names = set(store.table.schema.names)
    for kind, key in [("s", "k"), ("i", "n"), ("n", "f"), ("b", "b"), ("z", "z")]:
        assert f"f_{kind}_{key.encode().hex()}" in names
    assert not any(name.endswith("_" + b"l".hex()) for name in names)  # a list matches nothing
    # A replaced document keeps none of its old filter values.
    store.insert_documents([("a", "a", unit(1), {"other": 1})])
    assert store.search_vector(unit(0), 3, filter=Filter.eq("k", "s")) == []
    assert [d for _, d, _ in store.search_vector(unit(0), 3, filter=Filter.eq("other", 1))] == ["a"]


# --- the table ----------------------------------------------------------------------------------


def test_one_row_per_vector_and_replacing_drops_the_old_ones(store: LanceDBVectorStore[Any]) -> None:
    store.insert_documents([("many", "m", [unit(1), unit(2), unit(3)]), ("one", "o", unit(4))])
    assert store.table.count_rows() == 4 and len(store) == 2
    store.insert_documents([("many", "m2", [unit(5)])])
    assert store.table.count_rows() == 2 and len(store) == 2
    assert store.get_document("many") == "m2"
    [(score, doc_id, document)] = store.search_vector(unit(5), 1)
    assert (doc_id, document) == ("many", "m2") and score == pytest.approx(1.0, abs=1e-6)


def test_many_vectors_of_one_document_do_not_crowd_out_others(store: LanceDBVectorStore[Any]) -> None:
    query = unit(0)
    near = [[q + 0.01 * random.Random(i).random() for q in query] for i in range(50)]
    store.insert_documents([("crowd", "c", near)] + [(f"o{i}", i, unit(i + 1)) for i in range(5)])
    hits = store.search_vector(query, 4)
    assert hits[0][1] == "crowd" and len({doc_id for _, doc_id, _ in hits}) == 4


def test_ties_beyond_the_first_rows_keep_insertion_order(store: LanceDBVectorStore[Any]) -> None:
    """Twenty equal vectors: the first three inserted come first, even after one is re-inserted."""
    same = unit(7)
    store.insert_documents([(f"t{i:02}", i, same) for i in range(20)])
    store.insert_documents([("t00", "again", same)])
    assert [doc_id for _, doc_id, _ in store.search_vector(same, 3)] == ["t00", "t01", "t02"]


def test_reopening_keeps_documents_dimension_and_generated_ids(tmp_path: Path) -> None:
    with LanceDBVectorStore(tmp_path / "db") as first:
        first.add_documents([("a", unit(1)), ("b", unit(2))])
    with LanceDBVectorStore(tmp_path / "db") as again:
        assert len(again) == 2 and again.ndims == 8
        again.add_documents([("c", unit(3))])
        assert again.get_document("doc2") == "c"
    with pytest.raises(DimensionMismatchError, match=r"8-dimension.*not 4"):
        LanceDBVectorStore(tmp_path / "db", ndims=4)


def test_ndims_creates_the_table_up_front(tmp_path: Path) -> None:
    with LanceDBVectorStore(tmp_path / "db", "fixed", ndims=3) as made:
        assert made.ndims == 3 and len(made) == 0
        with pytest.raises(DimensionMismatchError):
            made.insert_documents([("a", "a", [1.0, 2.0])])


def test_another_process_sees_writes(tmp_path: Path) -> None:
    reader = LanceDBVectorStore(tmp_path / "db")
    with LanceDBVectorStore(tmp_path / "db") as writer:
        writer.insert_documents([("a", "a", unit(1))])
        assert reader.ndims == 8 and len(reader) == 1
        writer.insert_documents([("b", "b", unit(2))])
        assert [doc_id for _, doc_id, _ in reader.search_vector(unit(2), 1)] == ["b"]
    reader.close()


def test_a_table_that_is_not_a_store_is_refused(tmp_path: Path) -> None:
    import lancedb
    import pyarrow as pa

    lancedb.connect(tmp_path / "db").create_table("theirs", data=pa.table({"x": [1, 2]}))
    with pytest.raises(VectorStoreError, match=r"not a rig_sync vector store.*another table="):
        LanceDBVectorStore(tmp_path / "db", "theirs")


@pytest.mark.parametrize(("uri", "table", "error"), [
    ("", "t", InvalidTypeError), (42, "t", InvalidTypeError), ("{tmp}", "bad name", InvalidRequestError),
    ("{tmp}", "", InvalidRequestError), ("{tmp}", "ü", InvalidRequestError), ("{tmp}", None, InvalidRequestError)])
def test_bad_arguments(tmp_path: Path, uri: Any, table: Any, error: type[Exception]) -> None:
    uri = str(tmp_path) if uri == "{tmp}" else uri
    with pytest.raises(error):
        LanceDBVectorStore(uri, table)


def test_an_unusable_place_is_a_vector_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(VectorStoreError, match=r"LanceDB error.*file"):
        LanceDBVectorStore(blocker / "db", ndims=2)


def test_closed_store(store: LanceDBVectorStore[Any]) -> None:
    store.insert_documents([("a", "a", unit(1))])
    store.close()
    for call in (lambda: store.search_vector(unit(1), 1), lambda: store.create_index(), lambda: store.optimize(),
                 lambda: store.drop_index(), lambda: store.table, lambda: store.ndims, lambda: len(store),
                 lambda: store.insert_documents([("b", "b", unit(2))]), lambda: store.delete("a")):
        with pytest.raises(StoreClosedError, match="closed"):
            call()


def test_importing_the_module_does_not_import_lancedb() -> None:
    code = ("import sys, rig_sync, rig_sync.vector_store, rig_sync.vector_stores.lancedb; "
            "print(sorted({'lancedb', 'pyarrow'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_without_lancedb_the_error_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "lancedb", None)
    with pytest.raises(StoreUnavailableError, match=r"pip install 'rig-sync\[lancedb\]'"):
        LanceDBVectorStore(tmp_path / "db")


# --- the ANN index ------------------------------------------------------------------------------


def clustered(count: int, dims: int, seed: int) -> list[list[float]]:
    rnd = random.Random(seed)
    centres = [[rnd.gauss(0, 1) for _ in range(dims)] for _ in range(20)]
    return [[c + rnd.gauss(0, 0.3) for c in rnd.choice(centres)] for _ in range(count)]


def test_an_index_keeps_recall_and_exact_scores(tmp_path: Path) -> None:
    vectors = clustered(3000, 32, seed=1)
    rows = [(f"v{i}", i, vec, {"even": i % 2 == 0}) for i, vec in enumerate(vectors)]
    queries = clustered(20, 32, seed=2)
    with LanceDBVectorStore(tmp_path / "db") as store:
        store.insert_documents(rows, batch_size=1000)
        exact = [store.search_vector(q, 10) for q in queries]
        store.create_index("IVF_SQ", num_partitions=8, nprobes=4, refine_factor=5)
        assert [index.index_type for index in store.table.list_indices()] == ["IvfSq"]
    with LanceDBVectorStore(tmp_path / "db") as store:  # the search settings are kept in the table
        approx = [store.search_vector(q, 10) for q in queries]
        recall = sum(len({h[1] for h in a} & {h[1] for h in e}) for a, e in zip(approx, exact, strict=True)) / 200
        assert recall >= 0.9
        for a, e in zip(approx, exact, strict=True):  # refined: the scores come from the vectors
            scores = {doc_id: score for score, doc_id, _ in e}
            assert all(score == pytest.approx(scores[doc_id], abs=1e-5) for score, doc_id, _ in a if doc_id in scores)
        filtered = store.search_vector(queries[0], 10, filter=Filter.eq("even", True))
        assert len(filtered) == 10 and all(document % 2 == 0 for _, _, document in filtered)
        store.insert_documents([("late", "l", queries[0])])  # not in the index yet: searched exactly
        assert store.search_vector(queries[0], 1)[0][1] == "late"
        store.optimize()
        assert store.search_vector(queries[0], 1)[0][1] == "late"
        store.drop_index()
        assert list(store.table.list_indices()) == []
        assert store.search_vector(queries[1], 10) == exact[1]


def test_index_arguments_are_checked(store: LanceDBVectorStore[Any]) -> None:
    with pytest.raises(VectorStoreError, match="empty"):
        store.create_index()
    store.insert_documents([(f"v{i}", i, unit(i)) for i in range(300)])
    with pytest.raises(InvalidRequestError, match="IVF_SQ"):
        store.create_index("BTREE")
    with pytest.raises(InvalidRequestError, match="does not take"):
        store.create_index("IVF_SQ", no_such_option=1)
    with pytest.raises(InvalidRequestError):
        store.create_index("IVF_SQ", nprobes=0)
    assert set(INDEX_TYPES) >= {"IVF_PQ", "IVF_SQ", "IVF_HNSW_SQ"}
