"""PgVectorStore against a real PostgreSQL with pgvector, started by the tests (tests/pg_support.py).

The shared semantics (ranking, filters, thresholds, replace, delete, errors) are in the contract
test; this module covers what is PostgreSQL's own: the server the tests start, pools and
connections, the extension, tables that exist already, metrics, ANN indexes, filter SQL that
must match Python's comparisons exactly, and what PostgreSQL text cannot hold.
"""

from __future__ import annotations

import math
import random
import socket
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from loopback_support import wait_until
from pg_support import is_ours, pg_dsn, postgres_server, scratch_database, start_postgres
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import ConnectionPool

from rig_sync.errors import InvalidRequestError, InvalidTypeError, RigError
from rig_sync.vector_store import (
    DimensionMismatchError,
    Filter,
    FilterError,
    InMemoryVectorStore,
    InvalidVectorError,
    StoreUnavailableError,
    VectorStoreError,
)
from rig_sync.vector_stores.pgvector import PgVectorStore

__all__ = ["pg_dsn", "postgres_server"]  # fixtures, imported for pytest to find


def new_table() -> str:
    return f"t_{uuid.uuid4().hex[:12]}"


@pytest.fixture()
def store(pg_dsn: str) -> Iterator[PgVectorStore[Any]]:
    with PgVectorStore(pg_dsn, new_table()) as opened:
        yield opened


def admin(dsn: str) -> psycopg.Connection[Any]:
    return psycopg.connect(dsn, autocommit=True)


def rows_of(rnd: random.Random, count: int, dims: int) -> list[tuple[str, Any, list[float]]]:
    return [(f"id{i}", {"n": i}, [rnd.gauss(0, 1) for _ in range(dims)]) for i in range(count)]


# --- the server the tests start ------------------------------------------------------------------


def test_the_server_listens_on_loopback_only_and_not_as_root(postgres_server: str) -> None:
    with admin(postgres_server) as conn:
        assert conn.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)
        assert conn.execute("SHOW unix_socket_directories").fetchone() == ("",)
        (data,) = conn.execute("SHOW data_directory").fetchone() or ("",)
        (pid,) = conn.execute("SELECT pg_backend_pid()").fetchone() or (0,)
    assert Path(data).resolve().is_relative_to(Path(tempfile.gettempdir()).resolve())
    assert conninfo_to_dict(postgres_server)["host"] == "127.0.0.1"
    status = Path(f"/proc/{pid}/status").read_text()
    [uid_line] = [line for line in status.splitlines() if line.startswith("Uid:")]
    assert int(uid_line.split()[1]) != 0, "PostgreSQL must never run as root"


def test_a_server_with_another_data_directory_is_refused(postgres_server: str, tmp_path: Path) -> None:
    with admin(postgres_server) as conn:
        (data,) = conn.execute("SHOW data_directory").fetchone() or ("",)
    assert is_ours(postgres_server, Path(data))
    with pytest.raises(RuntimeError, match="did not start"):
        is_ours(postgres_server, tmp_path)


def test_a_server_without_pgvector_gives_the_fix_and_stops_cleanly() -> None:
    dsn, stop = start_postgres(without_vector=True)
    try:
        with admin(dsn) as conn:
            (data,) = conn.execute("SHOW data_directory").fetchone() or ("",)
        with pytest.raises(StoreUnavailableError, match=r"no pgvector extension.*install pgvector"):
            PgVectorStore(dsn, "docs")
    finally:
        stop()
    stop()  # idempotent
    assert not Path(data).exists()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(dsn, connect_timeout=5)


def test_a_role_that_may_not_create_the_extension_is_told_who_can(postgres_server: str) -> None:
    role = f"limited_{uuid.uuid4().hex[:8]}"
    with scratch_database(postgres_server) as db, admin(postgres_server) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        try:
            with pytest.raises(StoreUnavailableError, match="superuser to run CREATE EXTENSION vector"):
                PgVectorStore(make_conninfo(db, user=role), "docs")
        finally:
            with admin(db) as dbconn:  # the failed open made nothing, but be sure before dropping
                assert dbconn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'vector'").fetchone() == (0,)
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


# --- connections and pools -------------------------------------------------------------------------


def backends(dsn: str, name: str) -> int:
    with admin(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (name,)).fetchone()
    return 0 if row is None else int(row[0])


def test_a_dsn_gets_a_pool_the_store_owns_and_closes(pg_dsn: str) -> None:
    name = f"rig-{uuid.uuid4().hex[:8]}"
    store: PgVectorStore[Any] = PgVectorStore(make_conninfo(pg_dsn, application_name=name), new_table())
    store.insert_documents([("a", "x", [1.0, 0.0])])
    assert backends(pg_dsn, name) >= 1
    store.close()
    wait_until(lambda: backends(pg_dsn, name) == 0, 10, "the store's connections to close")
    with pytest.raises(VectorStoreError, match="closed"):
        store.search_vector([1.0, 0.0], 1)


def test_a_pool_passed_in_is_used_and_left_open(pg_dsn: str) -> None:
    table = new_table()
    with ConnectionPool(pg_dsn, min_size=1, max_size=2, open=True) as pool:
        with PgVectorStore(pool, table) as first:
            first.insert_documents([("a", "x", [1.0, 0.0])])
        assert not pool.closed
        with PgVectorStore(pool, table) as second:
            assert [doc_id for _, doc_id, _ in second.search_vector([1.0, 0.0], 1)] == ["a"]


def test_a_closed_pool_is_a_clear_error(pg_dsn: str) -> None:
    pool = ConnectionPool(pg_dsn, min_size=1, max_size=1, open=True)
    store: PgVectorStore[Any] = PgVectorStore(pool, new_table())
    store.insert_documents([("a", "x", [1.0, 0.0])])
    pool.close()
    with pytest.raises(VectorStoreError, match="pool is closed"):
        store.search_vector([1.0, 0.0], 1)
    with pytest.raises(VectorStoreError, match="pool is closed"):
        len(store)
    store.close()


def terminate(dsn: str, name: str) -> None:
    with admin(dsn) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s", (name,))
    wait_until(lambda: backends(dsn, name) == 0, 10, "the backends to end")


def test_dead_connections_are_replaced_and_the_work_done(pg_dsn: str) -> None:
    name = f"rig-{uuid.uuid4().hex[:8]}"
    with ConnectionPool(make_conninfo(pg_dsn, application_name=name), min_size=3, max_size=3, open=True) as pool:
        pool.wait(10)
        store: PgVectorStore[Any] = PgVectorStore(pool, new_table())
        store.insert_documents([("a", "x", [1.0, 0.0])])
        terminate(pg_dsn, name)  # every pooled connection is dead now
        assert [doc_id for _, doc_id, _ in store.search_vector([1.0, 0.0], 1)] == ["a"]
        terminate(pg_dsn, name)
        store.insert_documents([("b", "y", [0.0, 1.0])])
        assert len(store) == 2


def test_the_owned_pool_survives_a_restart_too(pg_dsn: str) -> None:
    name = f"rig-{uuid.uuid4().hex[:8]}"
    with PgVectorStore(make_conninfo(pg_dsn, application_name=name), new_table()) as store:
        store.insert_documents([("a", "x", [1.0, 0.0])])
        terminate(pg_dsn, name)
        assert len(store) == 1


def test_a_server_gone_away_is_a_clear_error() -> None:
    dsn, stop = start_postgres()
    try:
        store: PgVectorStore[Any] = PgVectorStore(dsn, "docs", timeout=2)
        store.insert_documents([("a", "x", [1.0, 0.0])])
    finally:
        stop()
    with pytest.raises(VectorStoreError, match=r"no PostgreSQL connection within the pool's timeout.*server is up"):
        store.search_vector([1.0, 0.0], 1)
    store.close()


def test_a_failed_first_insert_leaves_the_store_usable(store: PgVectorStore[Any]) -> None:
    with pytest.raises(VectorStoreError):
        store.insert_documents([("a", "nul \x00 inside", [1.0, 0.0, 0.0])])
    assert store.ndims is None and len(store) == 0
    store.insert_documents([("a", "fine", [1.0, 0.0])])
    assert store.ndims == 2 and store.get_document("a") == "fine"


def test_an_unreachable_server_fails_fast_with_the_reason() -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(StoreUnavailableError, match=r"cannot connect to PostgreSQL.*refused"):
        PgVectorStore(make_conninfo(host="127.0.0.1", port=port, dbname="x", user="x"), timeout=5)


NOWHERE = "host=127.0.0.1 port=1 dbname=none"  # were a check missing, nothing answers there


@pytest.mark.parametrize(("args", "kwargs", "error"), [
    (("host=127.0.0.1 port",), {}, InvalidRequestError),
    (("postgresql://[bad",), {}, InvalidRequestError),
    ((42,), {}, InvalidTypeError),
    ((NOWHERE, ""), {}, InvalidRequestError),
    ((NOWHERE, "x" * 48), {}, InvalidRequestError),
    ((NOWHERE, "a\x00b"), {}, InvalidRequestError),
    ((NOWHERE, 5), {}, InvalidTypeError),
    ((NOWHERE,), {"metric": "dot"}, InvalidRequestError),
    ((NOWHERE,), {"index": "flat"}, InvalidRequestError),
    ((NOWHERE,), {"ndims": 0}, InvalidRequestError),
    ((NOWHERE,), {"ndims": 16_001}, InvalidRequestError),
    ((NOWHERE,), {"ndims": True}, InvalidTypeError),
    ((NOWHERE,), {"ef_search": 1001}, InvalidRequestError),
    ((NOWHERE,), {"hnsw_m": 101, "hnsw_ef_construction": 300}, InvalidRequestError),
    ((NOWHERE,), {"hnsw_m": 16, "hnsw_ef_construction": 20}, InvalidRequestError),
    ((NOWHERE,), {"probes": 0}, InvalidRequestError),
    ((NOWHERE,), {"timeout": math.nan}, InvalidRequestError),
    ((NOWHERE,), {"timeout": -1}, InvalidRequestError),
])
def test_bad_arguments_are_refused_before_connecting(args: tuple[Any, ...], kwargs: dict[str, Any],
                                                      error: type[Exception]) -> None:
    with pytest.raises(error):
        PgVectorStore(*args, **kwargs)


def test_a_django_database_setting_opens_as_a_dsn(pg_dsn: str) -> None:
    parts = conninfo_to_dict(pg_dsn)
    db = {"ENGINE": "django.db.backends.postgresql", "NAME": parts["dbname"], "USER": parts["user"],
          "PASSWORD": "", "HOST": parts["host"], "PORT": int(str(parts["port"]))}
    dsn = make_conninfo(**{key: value for key, value in {  # as the module docstring shows
        "dbname": db["NAME"], "user": db.get("USER"), "password": db.get("PASSWORD"),
        "host": db.get("HOST"), "port": str(db.get("PORT") or "")}.items() if value})
    with PgVectorStore(dsn, new_table()) as store:
        store.insert_documents([("a", "x", [1.0, 0.0])])
        assert len(store) == 1


# --- tables that exist already ---------------------------------------------------------------------


def test_a_reopened_table_keeps_documents_dimension_and_id_counter(pg_dsn: str) -> None:
    table = new_table()
    with PgVectorStore(pg_dsn, table) as first:
        first.add_documents([("one", [1.0, 0.0, 0.0]), ("two", [0.0, 1.0, 0.0])])
    with PgVectorStore(pg_dsn, table) as second:
        assert (len(second), second.ndims) == (2, 3)
        assert second.get_document("doc1") == "two"
        second.add_documents([("three", [0.0, 0.0, 1.0])])
        assert second.get_document("doc2") == "three"
    with pytest.raises(DimensionMismatchError, match=r"\b4\b.*\b3\b"):
        PgVectorStore(pg_dsn, table, ndims=4)


def test_another_metric_is_refused_on_an_existing_table(pg_dsn: str) -> None:
    table = new_table()
    PgVectorStore(pg_dsn, table).close()
    with pytest.raises(VectorStoreError, match="metric='cosine'"):
        PgVectorStore(pg_dsn, table, metric="l2")


def test_a_table_of_someone_elses_is_left_alone(pg_dsn: str) -> None:
    table = new_table()
    with admin(pg_dsn) as conn:
        conn.execute(sql.SQL("CREATE TABLE {} (id integer, note text)").format(sql.Identifier(table)))
        conn.execute(sql.SQL("INSERT INTO {} VALUES (1, 'mine')").format(sql.Identifier(table)))
    with pytest.raises(VectorStoreError, match="not made by PgVectorStore"):
        PgVectorStore(pg_dsn, table)
    with admin(pg_dsn) as conn:
        assert conn.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier(table))).fetchall() == [(1, "mine")]


def test_ndims_creates_the_table_now_and_a_schema_can_be_named(pg_dsn: str) -> None:
    schema = f"s_{uuid.uuid4().hex[:8]}"
    with admin(pg_dsn) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    with PgVectorStore(pg_dsn, "docs", ndims=5, schema=schema) as store:
        assert store.ndims == 5 and len(store) == 0
    with admin(pg_dsn) as conn:
        tables = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY 1", (schema,)).fetchall()
    assert tables == [("docs",), ("docs_meta",), ("docs_vectors",)]


def test_a_first_insert_race_between_processes_fixes_one_dimension(pg_dsn: str) -> None:
    table = new_table()
    stores = [PgVectorStore(pg_dsn, table), PgVectorStore(pg_dsn, table)]
    outcomes: list[Any] = [None, None]
    start = threading.Barrier(2)

    def insert(i: int) -> None:
        start.wait()
        try:
            stores[i].insert_documents([(f"d{i}", "x", [1.0] * (3 + i))])
            outcomes[i] = "ok"
        except RigError as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=insert, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(map(type, outcomes), key=str) == sorted([str, DimensionMismatchError], key=str)
    for opened in stores:
        opened.close()


# --- metrics ------------------------------------------------------------------------------------------


def test_inner_product_scores_are_dot_products(pg_dsn: str) -> None:
    with PgVectorStore(pg_dsn, new_table(), metric="inner_product") as store:
        store.insert_documents([("a", "a", [1.0, 0.0]), ("b", "b", [2.0, 0.0]), ("c", "c", [0.0, 3.0])])
        found = store.search_vector([1.0, 1.0], 3)
        assert [doc_id for _, doc_id, _ in found] == ["c", "b", "a"]
        assert [score for score, _, _ in found] == pytest.approx([3.0, 2.0, 1.0])
        assert [doc_id for _, doc_id, _ in store.search_vector([1.0, 1.0], 3, threshold=1.5)] == ["c", "b"]
        with pytest.raises(InvalidVectorError, match="float4"):
            store.insert_documents([("huge", "x", [1e39, 0.0])])


def test_l2_scores_are_negated_distances(pg_dsn: str) -> None:
    with PgVectorStore(pg_dsn, new_table(), metric="l2") as store:
        store.insert_documents([("a", "a", [1.0, 1.0]), ("b", "b", [4.0, 5.0]), ("c", "c", [2.0, 1.0])])
        found = store.search_vector([1.0, 1.5], 3)
        assert [doc_id for _, doc_id, _ in found] == ["a", "c", "b"]
        assert [score for score, _, _ in found] == pytest.approx([-0.5, -math.hypot(1, 0.5), -math.hypot(3, 3.5)])
        assert [doc_id for _, doc_id, _ in store.search_vector([1.0, 1.5], 3, threshold=-1.2)] == ["a", "c"]


def test_cosine_takes_vectors_beyond_float32_by_their_direction(store: PgVectorStore[Any]) -> None:
    store.insert_documents([("big", "x", [1e300, 1e300]), ("other", "y", [1.0, -1.0])])
    [(score, doc_id, _)] = store.search_vector([1.0, 1.0], 1)
    assert doc_id == "big" and score == pytest.approx(1.0, abs=1e-6)


# --- indexes --------------------------------------------------------------------------------------------


def index_scans(pool: ConnectionPool[Any], name: str) -> int:
    """How often `name` was scanned, as the pool's one connection has counted so far."""
    with pool.connection() as conn:
        conn.execute("SELECT pg_stat_force_next_flush()")  # flushed when this transaction ends
    with pool.connection() as conn:
        row = conn.execute("SELECT idx_scan FROM pg_stat_user_indexes WHERE indexrelname = %s", (name,)).fetchone()
    assert row is not None, f"no index {name}"
    return int(row[0])


@pytest.mark.parametrize("kind", ["hnsw", "ivfflat"])
def test_an_ann_index_is_used_and_keeps_recall(pg_dsn: str, kind: str) -> None:
    rnd = random.Random(7)
    table = new_table()
    rows = rows_of(rnd, 3000, 24)
    exact: InMemoryVectorStore[Any] = InMemoryVectorStore()
    exact.insert_documents(rows)
    with ConnectionPool(pg_dsn, min_size=1, max_size=1, open=True) as pool, PgVectorStore(pool, table) as store:
        store.insert_documents(rows)
        store.create_index(kind)  # type: ignore[arg-type]
        store.create_index(kind)  # type: ignore[arg-type]  # again: nothing happens
        with pool.connection() as conn:
            [(definition,)] = conn.execute("SELECT indexdef FROM pg_indexes WHERE indexname = %s",
                                           (f"{table}_vectors_{kind}",)).fetchall()
        assert f"USING {kind}" in definition and "vector_ip_ops" in definition
        before = index_scans(pool, f"{table}_vectors_{kind}")
        hits = 0
        for _ in range(20):
            query = [rnd.gauss(0, 1) for _ in range(24)]
            found = {doc_id for _, doc_id, _ in store.search_vector(query, 10)}
            hits += len(found & {doc_id for _, doc_id, _ in exact.search_vector(query, 10)})
        assert index_scans(pool, f"{table}_vectors_{kind}") >= before + 20
        assert hits / 200 >= 0.9
        # A selective filter still fills n (iterative index scans go on past the filtered-out rows).
        rare = Filter.lt("n", 150)
        found_rare = store.search_vector([1.0] * 24, 10, filter=rare)
        assert len(found_rare) == 10 and all(doc["n"] < 150 for _, _, doc in found_rare)


def test_hnsw_finds_every_document_when_documents_have_several_vectors(pg_dsn: str) -> None:
    rnd = random.Random(3)
    rows = [(f"d{i}", i, [[rnd.gauss(0, 1) for _ in range(8)] for _ in range(1 + i % 4)]) for i in range(300)]
    exact: InMemoryVectorStore[Any] = InMemoryVectorStore()
    exact.insert_documents(rows)
    with PgVectorStore(pg_dsn, new_table(), index="hnsw", ndims=8) as store:
        store.insert_documents(rows)
        query = [rnd.gauss(0, 1) for _ in range(8)]
        found = store.search_vector(query, 300)
        assert len(found) == 300
        expected = exact.search_vector(query, 5)
        assert [doc_id for _, doc_id, _ in found[:5]] == [doc_id for _, doc_id, _ in expected]


def test_index_requests_are_honoured_when_the_data_allows(pg_dsn: str) -> None:
    def indexes(table: str) -> list[str]:
        with admin(pg_dsn) as conn:
            rows = conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = %s ORDER BY 1",
                                (table + "_vectors",)).fetchall()
        return [name for (name,) in rows]

    hnsw = new_table()
    with PgVectorStore(pg_dsn, hnsw, ndims=4, index="hnsw"):
        assert f"{hnsw}_vectors_hnsw" in indexes(hnsw)
    ivf = new_table()
    with PgVectorStore(pg_dsn, ivf, index="ivfflat") as store:
        with pytest.raises(VectorStoreError, match="insert documents first"):
            store.create_index("ivfflat")
        assert indexes(ivf) == []
        store.insert_documents([(f"d{i}", i, [1.0, float(i)]) for i in range(20)])
        assert f"{ivf}_vectors_ivfflat" in indexes(ivf)
    wide = new_table()
    with PgVectorStore(pg_dsn, wide, ndims=2001) as store:
        with pytest.raises(VectorStoreError, match="up to 2000 dimensions"):
            store.create_index("hnsw")
    with PgVectorStore(pg_dsn, new_table()) as store:
        with pytest.raises(VectorStoreError, match="insert documents first or pass ndims"):
            store.create_index("hnsw")
        with pytest.raises(InvalidRequestError):
            store.create_index("flat")  # type: ignore[arg-type]


# --- filters: SQL that answers as Filter.matches ------------------------------------------------------

STORED = [0, 1, -1, 2**53, 2**53 + 1, float(2**53), 2**70, 0.1, 0.3, 0.30000000000000004, 1e300, 1e-300,
          5e-324, -0.0, 10**400, True, False, None, "", "a", "B", "ab", "é", "z", "\uffff", "\U0001f600",
          "2021", [1], {"x": 1}]
PROBES = [0, 1, -1, 2**53, float(2**53), 2**53 + 1, 2**70, float(2**70), 0.1, 0.3, 0.30000000000000004,
          1e300, 5e-324, math.inf, -math.inf, 10**400, True, False, None, "", "a", "ab", "a\x00", "a\x00b",
          "\ud800", "a\udfff", "é", "\uffff", "\U0001f600", "2021"]


def filters() -> Iterator[Filter]:
    for value in PROBES:
        yield Filter.eq("v", value)
        if isinstance(value, int | float | str) and not isinstance(value, bool):
            yield Filter.gt("v", value)
            yield Filter.lt("v", value)


def test_filters_compare_exactly_as_python_does(store: PgVectorStore[Any]) -> None:
    rows: list[tuple[str, Any, list[float]]] = [(f"s{i}", {"v": value}, [1.0, float(i)])
                                                 for i, value in enumerate(STORED)]
    rows += [("missing", {"w": 1}, [1.0, 0.5]), ("text", "not a dict", [1.0, 0.25])]
    memory: InMemoryVectorStore[Any] = InMemoryVectorStore()
    memory.insert_documents(rows)
    store.insert_documents(rows)
    checked = 0
    for condition in filters():
        expected = {doc_id for _, doc_id, _ in memory.search_vector([1.0, 0.0], 100, filter=condition)}
        found = {doc_id for _, doc_id, _ in store.search_vector([1.0, 0.0], 100, filter=condition)}
        assert found == expected, condition
        checked += 1
    assert checked > 60


def test_keys_and_values_are_parameters_not_sql(store: PgVectorStore[Any], pg_dsn: str) -> None:
    odd = "we'ird %s {key} \"quoted\" -- $1"
    store.insert_documents([("a", {odd: "x'); DROP TABLE t; --", "n": 1}, [1.0, 0.0]),
                            ("b", {"n": 2}, [0.0, 1.0])])
    assert [i for _, i, _ in store.search_vector([1.0, 0.0], 5, filter=Filter.eq(odd, "x'); DROP TABLE t; --"))] \
        == ["a"]
    with pytest.raises(FilterError, match="no document in the store has the metadata key"):
        store.search_vector([1.0, 0.0], 5, filter=Filter.eq("n'); DELETE FROM x; --", 1))
    assert store.search_vector([1.0, 0.0], 5, filter=Filter.gt(odd, "x") | Filter.lt("n", 2))[0][1] == "a"
    assert len(store) == 2


# --- what PostgreSQL text cannot hold ---------------------------------------------------------------


@pytest.mark.parametrize("document", ["a\x00b", {"k": "\ud800"}])
def test_text_postgresql_cannot_hold_fails_the_whole_insert(store: PgVectorStore[Any], document: Any) -> None:
    store.insert_documents([("first", "fine", [1.0, 0.0])])
    with pytest.raises(VectorStoreError, match="cannot hold NUL"):
        store.insert_documents([("ok", "fine", [1.0, 0.0]), ("bad", document, [0.0, 1.0])])
    assert len(store) == 1 and store.get_document("ok") is None


def test_an_id_postgresql_cannot_hold_is_refused(store: PgVectorStore[Any]) -> None:
    with pytest.raises(VectorStoreError, match="NUL or a lone surrogate"):
        store.insert_documents([("a\x00", "x", [1.0, 0.0])])
    assert store.get_document("a\x00") is None and store.delete(["a\x00", "\ud800"]) == 0
    assert len(store) == 0


# --- threads ------------------------------------------------------------------------------------------


def test_threads_search_while_one_inserts(store: PgVectorStore[Any]) -> None:
    rnd = random.Random(11)
    store.insert_documents(rows_of(rnd, 50, 6))
    errors: list[BaseException] = []
    done = threading.Event()

    def search() -> None:
        while not done.is_set():
            try:
                found = store.search_vector([1.0] * 6, 5)
                assert len(found) == 5
            except BaseException as exc:  # reported below
                errors.append(exc)
                return

    readers = [threading.Thread(target=search) for _ in range(4)]
    for reader in readers:
        reader.start()
    for batch in range(10):
        store.insert_documents([(f"n{batch}-{i}", i, [rnd.gauss(0, 1) for _ in range(6)]) for i in range(20)])
    done.set()
    for reader in readers:
        reader.join(30)
    assert errors == [] and len(store) == 250


@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_vectors_are_written_alike_with_and_without_numpy(pg_dsn: str, metric: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from rig_sync.vector_stores import pgvector

    rows = rows_of(random.Random(2), 40, 12)
    found = []
    for numpy_module in (pgvector._np, None):
        monkeypatch.setattr(pgvector, "_np", numpy_module)
        with PgVectorStore(pg_dsn, new_table(), metric=metric) as store:  # type: ignore[arg-type]
            store.insert_documents(rows)
            found.append(store.search_vector([1.0] * 12, 40))
    assert found[0] == found[1] and len(found[0]) == 40


def test_a_small_ef_search_still_fills_n(pg_dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """pgvector 0.8's iterative scan goes past ef_search (the store's own pool sets it per
    connection); before it (`_iterative` off, as an older extension reports), the store raises
    ef_search to n for that search, here on a pool passed in whose sessions scan as by default."""
    rows = rows_of(random.Random(5), 400, 8)
    table = new_table()
    with PgVectorStore(pg_dsn, table, ef_search=1, index="hnsw", ndims=8) as store:
        store.insert_documents(rows)
        assert len(store.search_vector([1.0] * 8, 25)) == 25
    with ConnectionPool(pg_dsn, min_size=1, max_size=1, open=True) as pool, \
            PgVectorStore(pool, table, ef_search=1) as store:
        with pool.connection() as conn:
            conn.execute("SELECT '[1]'::vector")  # loads pgvector, which registers its settings
            assert conn.execute("SHOW hnsw.iterative_scan").fetchone() == ("off",)
        monkeypatch.setattr(store, "_iterative", False)
        assert len(store.search_vector([1.0] * 8, 25)) == 25
        monkeypatch.setattr(store, "_ef_search", 1)  # a search of 1 needs no override: one row comes back
        assert len(store.search_vector([1.0] * 8, 1)) == 1


def test_index_and_vector_limits_and_odd_keys(pg_dsn: str, postgres_server: str) -> None:
    table = new_table()
    with PgVectorStore(pg_dsn, table, ndims=3) as store:
        assert store.metric == "cosine"
        with pytest.raises(VectorStoreError, match="learns its lists from the vectors present"):
            store.create_index("ivfflat")
        store.insert_documents([(f"d{i}", {"k": 1, "n": i}, [1.0, float(i), 0.5]) for i in range(30)])
        store.create_index("ivfflat", lists=3)
        with admin(pg_dsn) as conn:
            [(definition,)] = conn.execute("SELECT indexdef FROM pg_indexes WHERE indexname = %s",
                                           (f"{table}_vectors_ivfflat",)).fetchall()
        assert "lists='3'" in definition
        assert len(store.search_vector([1.0, 0.0, 0.0], 5, filter=Filter.eq("k", 1))) == 5
        with pytest.raises(FilterError, match=r"metadata key 'k\\x00'"):  # no stored key has NUL
            store.search_vector([1.0, 0.0, 0.0], 5, filter=Filter.eq("k\x00", 1))
        with pytest.raises(InvalidRequestError):
            store.create_index("ivfflat", lists=0)
    with PgVectorStore(pg_dsn, new_table()) as store:
        with pytest.raises(InvalidVectorError, match="up to 16000 dimensions"):
            store.insert_documents([("wide", "x", [1.0] * 16_001)])


def test_what_postgresql_refuses_is_named(pg_dsn: str, postgres_server: str) -> None:
    table, role = new_table(), f"reader_{uuid.uuid4().hex[:8]}"
    PgVectorStore(pg_dsn, table, ndims=2).close()
    with admin(postgres_server) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
    try:
        with admin(pg_dsn) as conn:  # may read the tables, not write them
            for suffix in ("", "_meta", "_vectors"):
                conn.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(sql.Identifier(table + suffix),
                                                                        sql.Identifier(role)))
        with PgVectorStore(make_conninfo(pg_dsn, user=role), table) as store:
            assert len(store) == 0 and store.ndims == 2
            with pytest.raises(VectorStoreError, match="cannot insert documents: PostgreSQL said: permission denied"):
                store.insert_documents([("a", "x", [1.0, 0.0])])
    finally:
        with admin(pg_dsn) as conn:
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        with admin(postgres_server) as conn:
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
