"""`SQLiteVectorStore`: documents and their vectors in one SQLite file, searched with sqlite-vec.

    from rig_sync.vector_stores.sqlite import SQLiteVectorStore    # pip install 'rig-sync[sqlite]'

    with SQLiteVectorStore("vectors.db") as store:
        store.insert_documents(rows, batch_size=1000)           # (id, document, vectors[, metadata])
        store.index(model).top_n("query", 3)                    # [(score, id, document)], best first

The file holds, per store (`table=`, "documents" by default, so one file can hold several and live
beside an application's own tables): a documents table (a sequence number that keeps insertion
order, the id, the document and metadata as JSON, and the fields filters read) and a vectors
table (each vector scaled to length 1, as float32). A search is exact: sqlite-vec's
`vec_distance_cosine` over every vector (or every vector of the documents a filter keeps), the
best `n` taken by SQLite's sorter; filters become `json_each` conditions with every key and value
a parameter. The file is in WAL mode: any number of threads (and processes) read while one writes,
and every insert batch is one transaction, so a writer killed mid-batch leaves the batches before it.

sqlite-vec is loaded into each connection, which needs a `sqlite3` module that can load extensions.
Where the standard library's cannot (pyenv's default build, macOS's system Python), `pysqlite3`
(the `pysqlite3-binary` wheel, part of the `sqlite` extra on Linux x86-64) is used instead.
"""

from __future__ import annotations

import os
import re
import sqlite3
import threading
from array import array
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

from .._checks import number, whole
from ..errors import InvalidRequestError, InvalidTypeError
from ..vector_store import (
    CheckedVector,
    DimensionMismatchError,
    Filter,
    FilterError,
    StoreUnavailableError,
    VectorStoreError,
    value_kind,
)
from ._base import DatabaseVectorStore, StoredRow, check_ndims, compile_filter, decode_json, import_optional

__all__ = ["SQLiteVectorStore", "sqlite_driver"]

D = TypeVar("D")

_FORMAT_VERSION = 1
_META = "rig_sync_vector_stores"  # one row per store in the file: format version, dimension, next auto id
_TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}\Z")
_CHUNK = 500  # ids per IN (...) list, well under any SQLite's parameter limit
_IDLE_READERS = 8  # reader connections kept open between searches
_INT64 = 2**63
_OPERATORS = {"eq": "=", "gt": ">", "lt": "<"}
# Connections a forked child inherited. SQLite forbids using a connection carried across fork()
# (the child holds none of the parent's file locks), so the child neither uses nor closes them.
_INHERITED: list[Any] = []
_FORK_LOCK = threading.Lock()


def _fresh_fork_lock() -> None:  # a thread of the parent may have held it at the fork
    global _FORK_LOCK
    _FORK_LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_fresh_fork_lock)
_NO_EXTENSIONS = (
    "SQLiteVectorStore loads the sqlite-vec extension, but this Python's sqlite3 module cannot load "
    "extensions (it was built without --enable-loadable-sqlite-extensions, as pyenv's default build and "
    "macOS's system Python are). Install pysqlite3-binary, which can (pip install 'rig-sync[sqlite]' does on "
    "Linux x86-64), or use a Python built with it, e.g. "
    "PYTHON_CONFIGURE_OPTS=--enable-loadable-sqlite-extensions pyenv install <version>"
)


def sqlite_driver() -> Any:
    """The `sqlite3` module the store uses: the standard library's when it can load extensions,
    else `pysqlite3.dbapi2`; `StoreUnavailableError` naming the fix when neither can."""
    if hasattr(sqlite3.Connection, "enable_load_extension"):
        return sqlite3
    try:
        return import_optional("pysqlite3.dbapi2", "sqlite", "SQLiteVectorStore")
    except StoreUnavailableError:
        raise StoreUnavailableError(_NO_EXTENSIONS) from None


def _float32(vector: CheckedVector) -> bytes:
    """The vector at length 1 as float32 bytes: components in [-1, 1] always fit."""
    return array("f", vector.unit()).tobytes()


def _text(value: str) -> str | bytes:
    """A string as a parameter: as is, or, when it holds a lone surrogate UTF-8 cannot carry, as
    the bytes SQLite itself makes of one (bound through CAST(? AS TEXT), read back by _read_text)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogatepass")
    return value


def _json_text(value: str) -> str | bytes:
    """A string as SQLite's JSON functions decode it: an escaped surrogate pair is one character."""
    return _text(value.encode("utf-16", "surrogatepass").decode("utf-16", "surrogatepass"))


def _read_text(data: bytes) -> str:
    return data.decode("utf-8", "surrogatepass")


def _marks(count: int) -> str:
    return ", ".join(["CAST(? AS TEXT)"] * count)


def _number(key: str | None, value: Any) -> int | float:
    """A filter's number as a parameter. SQLite's JSON holds an int beyond 64 bits as
    a float, so such a value compares as one; past a float's range it could not compare at all."""
    if isinstance(value, int) and -_INT64 <= value < _INT64:
        return int(value)
    try:
        return float(value)
    except OverflowError:
        raise FilterError(f"SQLiteVectorStore compares numbers as 64-bit floats at most; the value for {key!r} "
                          "is beyond their range") from None


def _leaf(node: Filter) -> tuple[str, list[Any]]:
    """One eq / gt / lt as SQL over the document's filter fields (`d.fields`), as `Filter.matches`
    reads it: the key must be present and hold a value of the same kind. json_each compares the
    key as a parameter, so no key (quotes, `$.a` paths, ...) ever becomes part of a JSON path."""
    kind = value_kind(node.value)
    assert node.key is not None
    key = _json_text(node.key)
    head = "EXISTS (SELECT 1 FROM json_each(d.fields) AS j WHERE j.key = CAST(? AS TEXT) AND "
    if kind == "bool":
        return head + "j.type = ?)", [key, "true" if node.value else "false"]
    if kind == "none":
        return head + "j.type = 'null')", [key]
    if kind == "str":
        value: Any = _json_text(node.value)
        return head + f"j.type = 'text' AND j.atom {_OPERATORS[node.op]} CAST(? AS TEXT))", [key, value]
    value = _number(node.key, node.value)
    return head + f"j.type IN ('integer', 'real') AND j.atom {_OPERATORS[node.op]} ?)", [key, value]


class SQLiteVectorStore(DatabaseVectorStore[D]):
    """A vector store in one SQLite file (created if missing), searched exactly by cosine similarity.

    `table` names the store inside the file; `ndims` fixes the dimension up front (a file created
    with another raises `DimensionMismatchError`); `timeout` is how long a writer waits for another
    process's write; `on_connect(connection)` runs for each new connection (pragmas, functions);
    `driver` is the sqlite3-compatible module to use (see `sqlite_driver`).

    Safe to share between threads: one writer at a time (a lock), readers on pooled connections.
    The store pickles as its path and table; the copy opens its own connections.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, table: str = "documents", ndims: int | None = None,
        timeout: float = 30.0, on_connect: Callable[[Any], None] | None = None, driver: Any = None,
    ) -> None:
        if not isinstance(path, str | os.PathLike):
            raise InvalidTypeError(f"path must be a file path (str or os.PathLike), not {type(path).__name__}")
        where = os.fspath(path)
        if not isinstance(where, str) or where in ("", ":memory:") or where.startswith("file:"):
            raise InvalidRequestError(
                f"SQLiteVectorStore keeps its documents in a file: give a file path, not {where!r} "
                "(for a store in memory use rig_sync.vector_store.InMemoryVectorStore)"
            )
        if not isinstance(table, str) or not _TABLE_NAME.match(table) or table.startswith("rig_sync_"):
            raise InvalidRequestError(
                f"table must be a name of letters, digits and _ (not starting with a digit or rig_sync_), not {table!r}"
            )
        if ndims is not None:
            whole(ndims, "ndims", minimum=1)
        if on_connect is not None and not callable(on_connect):
            raise InvalidTypeError(f"on_connect must be a callable taking a connection, not {on_connect!r:.60}")
        self._timeout = number(timeout, "timeout", at_least=0)
        self._path = os.path.abspath(where)
        self._table = table
        self._docs = f'"{table}"'
        self._vectors = f'"{table}__vectors"'
        self._on_connect = on_connect
        self._driver = sqlite_driver() if driver is None else driver
        if not hasattr(self._driver.Connection, "enable_load_extension"):
            raise StoreUnavailableError(_NO_EXTENSIONS)
        self._vec = import_optional("sqlite_vec", "sqlite", "SQLiteVectorStore")
        self._write_lock = threading.Lock()  # one writing thread at a time, on the one writer connection
        self._pool_lock = threading.Lock()
        self._pid = os.getpid()
        self._idle: list[Any] = []
        self._known_ndims: int | None = None
        self._writer = self._connect(writer=True)
        try:
            self._known_ndims = self._set_up(ndims)
        except BaseException:
            self._writer.close()
            raise

    def __repr__(self) -> str:
        state = ", closed" if self._closed else ""
        return f"SQLiteVectorStore({self._path!r}, table={self._table!r}{state})"

    @property
    def path(self) -> str:
        """The database file (absolute)."""
        return self._path

    # connections

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """SQLite's errors as `VectorStoreError`s that say which file and what to do."""
        try:
            yield
        except self._driver.Error as exc:
            text = str(exc)
            if "not a database" in text:
                hint = "it is not a SQLite database (or is encrypted); give another path"
            elif "unable to open" in text:
                hint = "check that its directory exists and that you may write there"
            elif "locked" in text or "busy" in text:
                hint = f"another process held the write lock for over {self._timeout:g}s; retry, or raise timeout="
            elif "no such function" in text or "no such module" in text:
                hint = "the sqlite-vec extension is not loaded; pip install 'rig-sync[sqlite]'"
            else:
                hint = "see SQLite's message"
            raise VectorStoreError(f"SQLite error on {self._path}: {text}; {hint}") from exc

    def _connect(self, *, writer: bool) -> Any:
        with self._errors():
            conn = self._driver.connect(self._path, timeout=self._timeout, isolation_level=None,
                                        check_same_thread=False)
            conn.text_factory = _read_text
            try:
                try:
                    conn.enable_load_extension(True)
                    try:
                        self._vec.load(conn)
                    finally:
                        conn.enable_load_extension(False)
                except self._driver.Error as exc:
                    raise StoreUnavailableError(
                        f"could not load the sqlite-vec extension into SQLite {self._driver.sqlite_version}: {exc}; "
                        "reinstall it with pip install --force-reinstall 'rig-sync[sqlite]'"
                    ) from None
                if writer:
                    conn.execute("PRAGMA journal_mode=WAL")  # readers never block the writer, nor it them
                    conn.execute("PRAGMA synchronous=NORMAL")  # a commit survives a killed process
                else:
                    conn.execute("PRAGMA query_only=ON")
                if self._on_connect is not None:
                    self._on_connect(conn)
            except BaseException:
                conn.close()
                raise
        return conn

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        """The writer connection inside BEGIN IMMEDIATE ... COMMIT (ROLLBACK on any exception)."""
        self._after_fork()
        with self._write_lock:
            self.check_open()
            conn = self._writer
            with self._errors():
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                except BaseException:
                    if conn.in_transaction:
                        try:
                            conn.execute("ROLLBACK")
                        except self._driver.Error:  # the first error is the one to report
                            pass
                    raise
                conn.execute("COMMIT")

    @contextmanager
    def _reading(self) -> Iterator[Any]:
        """A pooled reader connection inside one read transaction: every statement sees one snapshot."""
        self._after_fork()
        with self._pool_lock:
            self.check_open()
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = self._connect(writer=False)
        healthy = False
        try:
            with self._errors():
                conn.execute("BEGIN")
                try:
                    yield conn
                finally:
                    if conn.in_transaction:
                        conn.execute("COMMIT")
            healthy = True
        finally:
            with self._pool_lock:
                if healthy and not self._closed and len(self._idle) < _IDLE_READERS:
                    self._idle.append(conn)
                    conn = None
            if conn is not None:
                conn.close()

    def _after_fork(self) -> None:
        """In a child process (os.fork, multiprocessing's fork start), leave the parent's connections
        and locks alone and open the child's own."""
        if self._pid == os.getpid() or self._closed:
            return
        with _FORK_LOCK:
            if self._pid == os.getpid():
                return
            _INHERITED.extend([self._writer, *self._idle])
            self._write_lock, self._pool_lock, self._idle = threading.Lock(), threading.Lock(), []
            self._writer = self._connect(writer=True)
            self._pid = os.getpid()

    def _set_up(self, ndims: int | None) -> int | None:
        """Create the tables (or check the ones there); the store's dimension, if known."""
        with self._transaction() as conn:
            conn.execute(f"CREATE TABLE IF NOT EXISTS {_META} (name TEXT PRIMARY KEY, version INTEGER NOT NULL, "
                         "ndims INTEGER, next_id INTEGER NOT NULL DEFAULT 0)")
            row = conn.execute(f"SELECT version, ndims FROM {_META} WHERE name = ?", (self._table,)).fetchone()
            if row is None:
                taken = conn.execute("SELECT name FROM sqlite_master WHERE name IN (?, ?)",
                                     (self._table, f"{self._table}__vectors")).fetchone()
                if taken is not None:
                    raise VectorStoreError(f"{self._path} already has a table {taken[0]!r} that is not a rig_sync "
                                           "vector store; pass another table= name")
                conn.execute(f"INSERT INTO {_META} (name, version, ndims) VALUES (?, ?, ?)",
                             (self._table, _FORMAT_VERSION, ndims))
                version, stored = _FORMAT_VERSION, ndims
            else:
                version, stored = row
            if version != _FORMAT_VERSION:
                raise VectorStoreError(f"{self._path} holds store {self._table!r} in format {version}; this "
                                       f"rig_sync reads format {_FORMAT_VERSION}: upgrade rig_sync")
            if ndims is not None and stored is not None and ndims != stored:
                raise DimensionMismatchError(
                    f"{self._path} (table {self._table!r}) was created for {stored}-dimension vectors, not {ndims}; "
                    f"open it with ndims={stored}, or use another file or table"
                )
            if stored is None and ndims is not None:
                conn.execute(f"UPDATE {_META} SET ndims = ? WHERE name = ?", (ndims, self._table))
                stored = ndims
            conn.execute(f"CREATE TABLE IF NOT EXISTS {self._docs} (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, "
                         "document TEXT NOT NULL, metadata TEXT, fields TEXT NOT NULL)")
            conn.execute(f"CREATE TABLE IF NOT EXISTS {self._vectors} (doc INTEGER NOT NULL, embedding BLOB NOT NULL)")
            conn.execute(f'CREATE INDEX IF NOT EXISTS "{self._table}__vectors_doc" ON {self._vectors} (doc)')
        return None if stored is None else int(stored)

    # hooks

    @property
    def ndims(self) -> int | None:
        if self._known_ndims is None and not self._closed:  # another process may have inserted since
            with self._reading() as conn:
                row = conn.execute(f"SELECT ndims FROM {_META} WHERE name = ?", (self._table,)).fetchone()
            self._known_ndims = None if row is None or row[0] is None else int(row[0])
        return self._known_ndims

    def _write(self, rows: list[StoredRow], ndims: int) -> None:
        blobs = [[_float32(vec) for vec in row.vectors] for row in rows]
        with self._transaction() as conn:
            (stored,) = conn.execute(f"SELECT ndims FROM {_META} WHERE name = ?", (self._table,)).fetchone()
            check_ndims(ndims, stored)
            if stored is None:
                conn.execute(f"UPDATE {_META} SET ndims = ? WHERE name = ?", (ndims, self._table))
            vectors: dict[int, list[bytes]] = {}  # by seq: a repeated id keeps its last vectors only
            for row, row_blobs in zip(rows, blobs, strict=True):
                # An existing id keeps its seq (its place in insertion order), as in the in-memory store.
                (seq,) = conn.execute(
                    f"INSERT INTO {self._docs} (id, document, metadata, fields) VALUES (CAST(? AS TEXT), ?, ?, ?) "
                    "ON CONFLICT (id) DO UPDATE SET document = excluded.document, metadata = excluded.metadata, "
                    "fields = excluded.fields RETURNING seq",
                    (_text(row.id), row.document_json, row.metadata_json, row.fields_json),
                ).fetchone()
                if seq not in vectors:
                    conn.execute(f"DELETE FROM {self._vectors} WHERE doc = ?", (seq,))
                vectors[seq] = row_blobs
            conn.executemany(f"INSERT INTO {self._vectors} (doc, embedding) VALUES (?, ?)",
                             ((seq, blob) for seq, seq_blobs in vectors.items() for blob in seq_blobs))
        self._known_ndims = ndims

    def _search(
        self, query: CheckedVector, n: int, threshold: float | None, filter: Filter | None
    ) -> list[tuple[float, str, D]]:
        sql = (f"SELECT v.doc, 1.0 - vec_distance_cosine(v.embedding, ?) AS score FROM {self._vectors} AS v")
        params: list[Any] = [_float32(query)]
        if filter is not None:
            condition, filter_params = compile_filter(filter, _leaf)
            sql += f" JOIN {self._docs} AS d ON d.seq = v.doc WHERE {condition}"
            params += filter_params
        sql += " ORDER BY score DESC, v.doc LIMIT ?"
        with self._reading() as conn:
            best = self._best_documents(conn, sql, params, n, threshold)
            found: dict[int, tuple[str, str]] = {}
            seqs = list(best)
            for start in range(0, len(seqs), _CHUNK):
                chunk = seqs[start:start + _CHUNK]
                marks = ", ".join("?" * len(chunk))
                for seq, doc_id, document in conn.execute(
                        f"SELECT seq, id, document FROM {self._docs} WHERE seq IN ({marks})", chunk):
                    found[seq] = (doc_id, document)
        return [(score, found[seq][0], decode_json(found[seq][1])) for seq, score in best.items()]

    def _best_documents(
        self, conn: Any, sql: str, params: list[Any], n: int, threshold: float | None
    ) -> dict[int, float]:
        """The best `n` documents' seqs and scores, best first.

        Vectors come back best first, so a document's first vector is its best and documents first
        appear in score order. With several vectors per document, the best `k` vectors may name fewer
        than `n` documents: then ask for more (k x 4) until `n` are found or no vectors are left."""
        k = n
        while True:
            try:
                rows = conn.execute(sql, [*params, min(k, _INT64 - 1)]).fetchall()
            except self._driver.OperationalError as exc:
                if "too many" in str(exc) or "too large" in str(exc) or "too deep" in str(exc):
                    raise FilterError(f"the filter is too large for SQLite ({exc}); split the search") from None
                raise
            best: dict[int, float] = {}
            for seq, score in rows:
                if threshold is not None and score < threshold:
                    return best  # every later vector scores lower still
                if seq not in best:
                    best[seq] = min(float(score), 1.0)  # float32 rounding can pass 1 by an ulp
                    if len(best) == n:
                        return best
            if len(rows) < k:
                return best
            k *= 4

    def _delete(self, ids: list[str]) -> int:
        removed = 0
        with self._transaction() as conn:
            for start in range(0, len(ids), _CHUNK):
                chunk = [_text(doc_id) for doc_id in ids[start:start + _CHUNK]]
                marks = _marks(len(chunk))
                conn.execute(f"DELETE FROM {self._vectors} WHERE doc IN "
                             f"(SELECT seq FROM {self._docs} WHERE id IN ({marks}))", chunk)
                removed += conn.execute(f"DELETE FROM {self._docs} WHERE id IN ({marks})", chunk).rowcount
        return removed

    def _count(self) -> int:
        with self._reading() as conn:
            (count,) = conn.execute(f"SELECT count(*) FROM {self._docs}").fetchone()
        return int(count)

    def _metadata_keys(self) -> set[str]:
        with self._reading() as conn:
            rows = conn.execute(f"SELECT DISTINCT j.key FROM {self._docs}, json_each({self._docs}.fields) AS j")
            return {str(key) for (key,) in rows}

    def _get(self, doc_id: str) -> tuple[D, Mapping[str, Any] | None] | None:
        with self._reading() as conn:
            row = conn.execute(f"SELECT document, metadata FROM {self._docs} WHERE id = CAST(? AS TEXT)",
                               (_text(doc_id),)).fetchone()
        if row is None:
            return None
        return decode_json(row[0]), None if row[1] is None else decode_json(row[1])

    def _reserve_ids(self, count: int) -> int:
        with self._transaction() as conn:
            (after,) = conn.execute(f"UPDATE {_META} SET next_id = next_id + ? WHERE name = ? RETURNING next_id",
                                    (count, self._table)).fetchone()
        return int(after) - count

    def _close(self) -> None:
        if self._pid != os.getpid():  # a forked child closing what it inherited: leave it to the parent
            _INHERITED.extend([self._writer, *self._idle])
            self._idle = []
            return
        with self._write_lock:
            self._writer.close()
        with self._pool_lock:
            idle, self._idle = self._idle, []
        for conn in idle:  # connections in use close when their reader hands them back
            conn.close()

    # pickling (process pools): the copy opens the same file

    def __getstate__(self) -> dict[str, Any]:
        self.check_open()
        return {"path": self._path, "table": self._table, "timeout": self._timeout, "on_connect": self._on_connect,
                "driver": self._driver.__name__}

    def __setstate__(self, state: dict[str, Any]) -> None:
        driver = import_optional(state["driver"], "sqlite", "SQLiteVectorStore")
        self.__init__(state["path"], table=state["table"], timeout=state["timeout"],  # type: ignore[misc]
                      on_connect=state["on_connect"], driver=driver)
