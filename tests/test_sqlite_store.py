"""SQLiteVectorStore beyond the shared contract: the file (persistence, WAL, dimension, format,
several stores in one file), threads, a writer killed mid-insert, locks held by others, pickling,
and the errors for a missing package or a Python whose sqlite3 cannot load extensions."""

from __future__ import annotations

import os
import pickle
import random
import selectors
import signal
import subprocess
import sys
import textwrap
import threading
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rig_sync.errors import InvalidRequestError, InvalidTypeError, RigError
from rig_sync.vector_store import (
    DimensionMismatchError,
    Filter,
    FilterError,
    StoreClosedError,
    StoreUnavailableError,
    VectorStoreError,
)
from rig_sync.vector_stores.sqlite import SQLiteVectorStore, sqlite_driver

DIMS = 8


def vec(seed: int | str, dims: int = DIMS) -> list[float]:
    rng = random.Random(seed)
    return [rng.gauss(0.0, 1.0) for _ in range(dims)]


def rows(start: int, count: int, **metadata: Any) -> list[tuple[str, Any, list[float], dict[str, Any]]]:
    return [(f"d{i}", {"n": i}, vec(i), {"n": i, **metadata}) for i in range(start, start + count)]


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "vectors.db"


@pytest.fixture
def store(path: Path) -> Iterator[SQLiteVectorStore[Any]]:
    with SQLiteVectorStore(path) as opened:
        yield opened


def raw(path: Path) -> Any:
    """A plain connection to the file, without sqlite-vec, as another program would open it."""
    return sqlite_driver().connect(str(path), isolation_level=None)


# --- the file -----------------------------------------------------------------------------------


def test_documents_survive_closing_and_reopening(path: Path) -> None:
    with SQLiteVectorStore(path) as first:
        first.insert_documents(rows(0, 20))
        first.add_documents([("auto", vec("auto"))])
        before = first.search_vector(vec(3), 5, filter=Filter.gt("n", 2))
    with SQLiteVectorStore(path) as again:
        assert len(again) == 21 and again.ndims == DIMS
        assert again.search_vector(vec(3), 5, filter=Filter.gt("n", 2)) == before
        assert again.get_metadata("d4") == {"n": 4} and again.get_document("doc0") == "auto"
        again.add_documents([("next", vec("next"))])  # numbering goes on from the file, not from 0
        assert again.get_document("doc1") == "next" and again.get_document("doc0") == "auto"


def test_the_file_is_in_wal_mode_with_the_tables_named(store: SQLiteVectorStore[Any], path: Path) -> None:
    store.insert_documents(rows(0, 2))
    conn = raw(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"documents", "documents__vectors", "rig_sync_vector_stores"} <= names
        assert conn.execute("SELECT count(*) FROM documents__vectors").fetchone()[0] == 2
    finally:
        conn.close()
    assert store.path == str(path)


def test_a_file_made_for_another_dimension_says_so(path: Path) -> None:
    with SQLiteVectorStore(path) as first:
        first.insert_documents(rows(0, 3))
    with pytest.raises(DimensionMismatchError, match=r"created for 8-dimension vectors, not 16.*ndims=8"):
        SQLiteVectorStore(path, ndims=16)
    with SQLiteVectorStore(path, ndims=8) as same:
        assert len(same) == 3
    with SQLiteVectorStore(path, table="fixed", ndims=4) as fixed:
        assert fixed.ndims == 4
        with pytest.raises(DimensionMismatchError, match="8 dimensions, the store holds 4"):
            fixed.insert_documents(rows(0, 1))
    with SQLiteVectorStore(path, table="fixed") as fixed:
        assert fixed.ndims == 4  # fixed before anything was inserted, and kept


def test_several_stores_share_a_file_beside_other_tables(path: Path) -> None:
    conn = raw(path)
    conn.execute("CREATE TABLE users (name TEXT)")
    conn.close()
    with SQLiteVectorStore(path, table="articles") as articles, SQLiteVectorStore(path, table="faq") as faq:
        articles.insert_documents(rows(0, 3))
        faq.insert_documents([("q1", "question", [1.0, 0.0])])
        assert (len(articles), len(faq), articles.ndims, faq.ndims) == (3, 1, DIMS, 2)
        assert faq.search_vector([1.0, 0.0], 5)[0][1] == "q1"
    with pytest.raises(VectorStoreError, match="'users' that is not a rig_sync vector store; pass another table="):
        SQLiteVectorStore(path, table="users")


def test_a_file_of_a_newer_format_is_refused(path: Path) -> None:
    SQLiteVectorStore(path).close()
    conn = raw(path)
    conn.execute("UPDATE rig_sync_vector_stores SET version = 99")
    conn.close()
    with pytest.raises(VectorStoreError, match=r"format 99.*upgrade rig_sync"):
        SQLiteVectorStore(path)


@pytest.mark.parametrize("where", [":memory:", "", "file:x.db?mode=memory"])
def test_a_store_needs_a_file(where: str) -> None:
    with pytest.raises(InvalidRequestError, match="InMemoryVectorStore"):
        SQLiteVectorStore(where)


def test_bad_paths_and_files(tmp_path: Path) -> None:
    with pytest.raises(VectorStoreError, match=r"unable to open.*directory exists"):
        SQLiteVectorStore(tmp_path / "missing" / "x.db")
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database, just forty-odd bytes of text" * 100)
    with pytest.raises(VectorStoreError, match="not a SQLite database"):
        SQLiteVectorStore(junk)
    with pytest.raises(InvalidTypeError, match="file path"):
        SQLiteVectorStore(42)  # type: ignore[arg-type]


@pytest.mark.parametrize("table", ['x"; DROP TABLE y; --', "1abc", "", "a b", "rig_sync_meta", "é", 5])
def test_table_names_are_plain_identifiers(path: Path, table: Any) -> None:
    with pytest.raises(InvalidRequestError, match="table must be a name"):
        SQLiteVectorStore(path, table=table)


@pytest.mark.parametrize(("options", "error"), [
    ({"ndims": 0}, InvalidRequestError), ({"ndims": "8"}, InvalidTypeError), ({"timeout": -1}, InvalidRequestError),
    ({"on_connect": "not callable"}, InvalidTypeError),
])
def test_bad_options(path: Path, options: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        SQLiteVectorStore(path, **options)
    assert issubclass(error, RigError)


def test_injection_looking_filters_are_just_values(store: SQLiteVectorStore[Any]) -> None:
    store.insert_documents(rows(0, 5, note="x'); DROP TABLE documents; --"))
    evil = "x'); DROP TABLE documents; --"
    assert len(store.search_vector(vec(0), 10, filter=Filter.eq("note", evil))) == 5
    store.insert_documents([("k", {"n": 9}, vec(9), {evil: "x", 'n" OR 1=1 --': 2})])  # keys that look like SQL
    assert [doc_id for _, doc_id, _ in store.search_vector(vec(0), 10, filter=Filter.eq(evil, "x"))] == ["k"]
    assert store.search_vector(vec(0), 10, filter=Filter.eq('n" OR 1=1 --', 1)) == []
    with pytest.raises(FilterError, match="no document in the store has the metadata key"):
        store.search_vector(vec(0), 10, filter=Filter.eq("n' OR 1=1 --", 1))  # no such key: refused, not run
    assert len(store) == 6


def test_numbers_past_64_bits(store: SQLiteVectorStore[Any]) -> None:
    store.insert_documents([("huge", "h", [1.0, 0.0], {"x": 10 ** 400}), ("big", "b", [1.0, 0.1], {"x": 2 ** 70}),
                            ("small", "s", [1.0, 0.2], {"x": 5})])
    found = [doc_id for _, doc_id, _ in store.search_vector([1.0, 0.0], 5, filter=Filter.gt("x", 2 ** 64))]
    assert found == ["huge", "big"]  # an int past a float's range still sorts above every float
    assert store.search_vector([1.0, 0.0], 5, filter=Filter.eq("x", 2 ** 70))[0][1] == "big"
    assert store.get_metadata("huge") == {"x": 10 ** 400}  # kept exactly in the JSON
    with pytest.raises(FilterError, match=r"64-bit floats.*'x'"):
        store.search_vector([1.0, 0.0], 5, filter=Filter.lt("x", 10 ** 400))


def test_text_utf8_cannot_carry_is_kept(store: SQLiteVectorStore[Any]) -> None:
    # A lone surrogate (half an emoji cut at a token boundary) or a NUL, in ids, documents, keys, values.
    rows = [("a\ud800", "doc \udc00", [1.0, 0.0], {"k": "\ud800", "n\x00": "z\x00y", "\ud800": "key"}),
            ("b", "plain", [1.0, 0.1], {"k": "\ue000"})]
    store.insert_documents(rows)
    assert store.get_document("a\ud800") == "doc \udc00" and "a\ud800" in store
    assert store.get_metadata("a\ud800") == rows[0][3]
    assert [hit[1] for hit in store.search_vector([1.0, 0.0], 5)] == ["a\ud800", "b"]
    for condition, ids in [(Filter.eq("k", "\ud800"), ["a\ud800"]), (Filter.eq("n\x00", "z\x00y"), ["a\ud800"]),
                           (Filter.eq("\ud800", "key"), ["a\ud800"]), (Filter.gt("k", "\ud7ff"), ["a\ud800", "b"]),
                           (Filter.lt("k", "\ue000"), ["a\ud800"])]:
        assert [hit[1] for hit in store.search_vector([1.0, 0.0], 5, filter=condition)] == ids, condition
    assert store.delete("a\ud800") == 1 and len(store) == 1


# --- concurrency --------------------------------------------------------------------------------


def test_readers_never_see_half_a_batch_while_writers_insert(store: SQLiteVectorStore[Any]) -> None:
    batch, batches_per_writer, writers = 10, 12, 2
    done = threading.Event()
    failures: list[BaseException] = []
    seen: list[int] = []

    def write(offset: int) -> None:
        try:
            for b in range(batches_per_writer):
                store.insert_documents(rows(offset + b * batch, batch))
        except BaseException as exc:
            failures.append(exc)

    def read(seed: int) -> None:
        try:
            for _ in range(5000):  # bounded; ends as soon as the writers are done
                hits = store.search_vector(vec(seed), 1000)
                assert len(hits) % batch == 0, f"{len(hits)} documents: a batch was half visible"
                assert len({doc_id for _, doc_id, _ in hits}) == len(hits)
                seen.append(len(hits))
                if done.is_set():
                    return
        except BaseException as exc:
            failures.append(exc)

    readers = [threading.Thread(target=read, args=(seed,)) for seed in range(4)]
    writing = [threading.Thread(target=write, args=(w * 10_000,)) for w in range(writers)]
    for thread in readers + writing:
        thread.start()
    for thread in writing:
        thread.join(timeout=120)
    done.set()
    for thread in readers:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in readers + writing)
    assert failures == []
    assert len(store) == batch * batches_per_writer * writers
    assert len(seen) >= 4  # every reader searched at least once


def test_closing_while_threads_search_gives_answers_or_closed_errors(path: Path) -> None:
    store: SQLiteVectorStore[Any] = SQLiteVectorStore(path)
    store.insert_documents(rows(0, 50))
    started = threading.Barrier(4)
    outcomes: list[str] = []

    def search() -> None:
        started.wait(timeout=30)
        for _ in range(2000):
            try:
                assert len(store.search_vector(vec(1), 5)) == 5
            except StoreClosedError:
                outcomes.append("closed")
                return
            except BaseException as exc:  # anything else is a failure
                outcomes.append(repr(exc))
                return
        outcomes.append("finished")

    threads = [threading.Thread(target=search) for _ in range(3)]
    for thread in threads:
        thread.start()
    started.wait(timeout=30)
    store.close()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    assert set(outcomes) <= {"closed", "finished"} and len(outcomes) == 3, outcomes


def test_a_write_lock_held_elsewhere_is_a_clear_error_and_readers_go_on(path: Path) -> None:
    with SQLiteVectorStore(path, timeout=0) as store:
        store.insert_documents(rows(0, 3))
        other = raw(path)
        other.execute("BEGIN IMMEDIATE")  # another process's writer, mid-transaction
        try:
            with pytest.raises(VectorStoreError, match=r"locked.*raise timeout="):
                store.insert_documents(rows(3, 1))
            assert len(store.search_vector(vec(0), 10)) == 3  # WAL: reading goes on meanwhile
        finally:
            other.execute("ROLLBACK")
            other.close()
        store.insert_documents(rows(3, 1))
        assert len(store) == 4


def test_another_store_on_the_file_sees_what_one_writes(path: Path) -> None:
    with SQLiteVectorStore(path) as reader, SQLiteVectorStore(path) as writer:
        assert reader.ndims is None and reader.search_vector(vec(0), 3) == []
        writer.insert_documents(rows(0, 4))
        assert reader.ndims == DIMS and len(reader.search_vector(vec(0), 3)) == 3


CHILD = textwrap.dedent("""
    import random, sys
    from rig_sync.vector_stores.sqlite import SQLiteVectorStore

    path, batch = sys.argv[1], int(sys.argv[2])
    armed, base = False, {}

    def vec(seed):
        rng = random.Random(seed)
        return [rng.gauss(0.0, 1.0) for _ in range(8)]

    def on_connect(conn):
        def progress():
            # Once armed, block inside the open transaction after it has written rows: the parent
            # kills this process right here, mid-insert.
            if armed and conn.in_transaction:
                start = base.setdefault(id(conn), conn.total_changes)
                if conn.total_changes - start >= 100:
                    print("in transaction", conn.total_changes - start, flush=True)
                    sys.stdin.readline()
            return 0
        conn.set_progress_handler(progress, 20)

    store = SQLiteVectorStore(path, on_connect=on_connect)
    for b in range(3):
        store.insert_documents([(f"b{b}-{i}", {"b": b}, vec(f"{b}-{i}")) for i in range(batch)])
        print("committed", b, flush=True)
    armed = True
    store.insert_documents([(f"b3-{i}", {"b": 3}, vec(f"3-{i}")) for i in range(batch * 10)], batch_size=batch * 10)
    print("not killed", flush=True)
""")


def test_a_writer_killed_mid_insert_leaves_the_batches_committed_before(path: Path) -> None:
    batch = 50
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(path), str(batch)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    watchdog = threading.Timer(120, child.kill)  # a child that never reports is killed, not waited for
    watchdog.start()
    try:
        assert child.stdout is not None
        lines = [child.stdout.readline().strip() for _ in range(4)]
        assert lines[:3] == ["committed 0", "committed 1", "committed 2"], (lines, child.stderr)
        assert lines[3].startswith("in transaction"), lines
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=60) == -signal.SIGKILL
    finally:
        watchdog.cancel()
        if child.poll() is None:
            child.kill()
            child.wait(timeout=60)
    conn = raw(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()
    with SQLiteVectorStore(path) as store:
        assert len(store) == 3 * batch
        assert {doc["b"] for _, _, doc in store.search_vector(vec("0-0"), 1000)} == {0, 1, 2}
        assert store.search_vector(vec("0-0"), 1000, filter=Filter.eq("b", 3)) == []
        store.insert_documents([("after", {"b": 4}, vec("after"))])  # the file takes writes again
        assert len(store) == 3 * batch + 1


def _report_from(pid: int, read_fd: int) -> bytes:
    """What a forked child wrote on its pipe; bounded: a child silent for a minute is killed."""
    report = b""
    with selectors.DefaultSelector() as selector:
        selector.register(read_fd, selectors.EVENT_READ)
        for _ in range(100):
            if not selector.select(timeout=60):
                break
            piece = os.read(read_fd, 4096)
            if not piece:
                break
            report += piece
    os.close(read_fd)
    if not report:
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    return report + f" exit {os.waitstatus_to_exitcode(status)}".encode()


def test_a_forked_child_uses_connections_of_its_own(path: Path) -> None:
    # SQLite's documentation forbids using a connection carried across fork() (the child holds none
    # of the parent's file locks). Here the parent even closes its store (checkpointing the WAL
    # away) before the child writes through the store it inherited.
    store: SQLiteVectorStore[Any] = SQLiteVectorStore(path)
    store.insert_documents(rows(0, 10))
    assert len(store.search_vector(vec(0), 3)) == 3  # a reader connection is in the pool too
    read_fd, write_fd = os.pipe()
    go_read, go_write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report on the pipe, then leave at once (no pytest teardown here)
        code = 1
        try:
            os.close(read_fd)
            os.close(go_write)
            os.read(go_read, 1)  # wait until the parent has closed its store
            store.insert_documents(rows(100, 5))
            found = len(store.search_vector(vec(0), 100))
            store.close()
            os.write(write_fd, f"ok {found}".encode())
            code = 0
        except BaseException as exc:
            os.write(write_fd, repr(exc).encode())
        finally:
            os._exit(code)
    os.close(write_fd)
    os.close(go_read)
    store.close()
    os.write(go_write, b"g")
    os.close(go_write)
    assert _report_from(pid, read_fd) == b"ok 15 exit 0"
    with SQLiteVectorStore(path) as again:
        assert len(again) == 15  # the child's rows are in the file
    conn = raw(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()


def test_a_forked_child_and_its_parent_both_keep_writing(store: SQLiteVectorStore[Any]) -> None:
    store.insert_documents(rows(0, 10))
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(read_fd)
            store.insert_documents(rows(100, 5))
            os.write(write_fd, f"ok {len(store)}".encode())
            store.close()  # leaves the inherited connections to the parent
            code = 0
        except BaseException as exc:
            os.write(write_fd, repr(exc).encode())
        finally:
            os._exit(code)
    os.close(write_fd)
    assert _report_from(pid, read_fd) == b"ok 15 exit 0"
    store.insert_documents(rows(200, 1))  # the parent's connections were left alone
    assert len(store) == 16 and len(store.search_vector(vec(0), 100)) == 16


# --- pickling -----------------------------------------------------------------------------------


def test_a_pickled_store_opens_the_same_file(store: SQLiteVectorStore[Any]) -> None:
    store.insert_documents(rows(0, 3))
    copy: SQLiteVectorStore[Any] = pickle.loads(pickle.dumps(store))
    try:
        assert copy is not store and copy.path == store.path and len(copy) == 3
        copy.insert_documents(rows(3, 1))
        assert len(store) == 4
    finally:
        copy.close()
    assert len(store) == 3 + 1  # closing the copy leaves the original open
    store.close()
    with pytest.raises(StoreClosedError):
        pickle.dumps(store)


# --- missing pieces -----------------------------------------------------------------------------


def test_without_sqlite_vec_the_error_names_the_extra(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sqlite_vec", None)  # as if not installed
    with pytest.raises(StoreUnavailableError, match=r"sqlite_vec.*pip install 'rig-sync\[sqlite\]'"):
        SQLiteVectorStore(path)


def test_a_sqlite3_that_cannot_load_extensions_names_the_fixes(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    no_extensions = types.SimpleNamespace(Connection=type("Connection", (), {}))
    with pytest.raises(StoreUnavailableError, match=r"cannot load extensions.*pysqlite3-binary.*loadable-sqlite"):
        SQLiteVectorStore(path, driver=no_extensions)
    # The default: the standard library's module when it can load extensions, else pysqlite3, else the error.
    from rig_sync.vector_stores import sqlite as module

    monkeypatch.setattr(module, "sqlite3", no_extensions)
    monkeypatch.setitem(sys.modules, "pysqlite3", None)
    monkeypatch.setitem(sys.modules, "pysqlite3.dbapi2", None)
    with pytest.raises(StoreUnavailableError, match="PYTHON_CONFIGURE_OPTS=--enable-loadable-sqlite-extensions"):
        sqlite_driver()
    monkeypatch.undo()
    import sqlite3

    driver = sqlite_driver()
    assert hasattr(driver.Connection, "enable_load_extension")
    assert (driver is sqlite3) == hasattr(sqlite3.Connection, "enable_load_extension")


def test_an_extension_that_fails_to_load_is_reported(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    driver = sqlite_driver()

    def load(conn: Any) -> None:
        raise driver.OperationalError("wrong ELF class: ELFCLASS32")

    monkeypatch.setitem(sys.modules, "sqlite_vec", types.SimpleNamespace(load=load))
    with pytest.raises(StoreUnavailableError, match=r"could not load the sqlite-vec extension.*ELFCLASS32.*reinstall"):
        SQLiteVectorStore(path)


def test_importing_the_module_loads_no_extension() -> None:
    code = ("import sys, rig_sync.vector_store, rig_sync.vector_stores.sqlite; "
            "print(sorted(m for m in ('sqlite_vec', 'pysqlite3') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_a_key_another_handle_wrote_is_found_not_refused(path: Path) -> None:
    with SQLiteVectorStore(path) as reader, SQLiteVectorStore(path) as writer:
        reader.insert_documents(rows(0, 3))
        assert len(reader.search_vector(vec(0), 5, filter=Filter.gt("n", 0))) == 2  # "n" now known to the reader
        writer.insert_documents([("w", {"n": 9}, vec(9), {"n": 9, "lang": "en"})])  # "lang": only the writer saw it
        found = reader.search_vector(vec(0), 5, filter=Filter.eq("lang", "en"))
        assert [doc_id for _, doc_id, _ in found] == ["w"]
        with pytest.raises(FilterError, match=r"'lang'.*'n'"):
            reader.search_vector(vec(0), 5, filter=Filter.eq("langg", "en"))
