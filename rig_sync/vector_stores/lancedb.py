"""`LanceDBVectorStore`: documents and their vectors in a LanceDB table, in a local directory or on
object storage, searched exactly or through LanceDB's ANN index, with filters pushed down.

    from rig_sync.vector_stores.lancedb import LanceDBVectorStore   # pip install 'rig-sync[lancedb]'

    with LanceDBVectorStore("vectors.lance") as store:           # or "s3://bucket/prefix", storage_options=
        store.insert_documents(rows, batch_size=10_000)          # (id, document, vectors[, metadata])
        store.create_index()                                     # optional: without it, search is exact
        store.index(model).top_n("query", 3)                     # [(score, id, document)], best first

The table holds one row per vector: the document's id, the vector's number within it (`part`), the
document's place in insertion order (`seq`, kept when the id is re-inserted, so equal scores keep
insertion order), the vector scaled to length 1 as float32, the document and metadata as JSON, and
the filter columns (below). A document with several vectors scores its best one: the search asks
for more rows until it has `n` different documents.

Filters. LanceDB takes a filter as an SQL string, so each metadata value a filter can match is kept
in a typed column per key and kind: `f_s_<key>` (strings), `f_i_<key>` (integers that fit 64 bits),
`f_n_<key>` (other numbers, as doubles), `f_b_<key>` (booleans), `f_z_<key>` (true where the value
is null), `<key>` being the key's UTF-8 bytes in hex. This is what makes `Filter.matches` hold
exactly in SQL: a missing key or a value of another kind is NULL in the column compared, and NULL
matches nothing (a filter has no NOT); booleans are never numbers; strings compare by code point as
Python's do; an integer is compared as an integer, never rounded through a double. A JSON column
read with LanceDB's JSON functions would not do: they convert between kinds ("2021" reads as the
number 2021). Keys in hex need no quoting at all, and every value is written as a literal by one
function (`_literal`) that doubles quotes (LanceDB's SQL has no backslash escapes). A key seen for
the first time adds its columns to the table (a metadata-only change in Lance), so a corpus with
thousands of different keys makes a wide table.

Writes take a lock in this process; writing from several processes at once is not supported (reads
are). Integers beyond 64 bits are stored (for filters) as the nearest double.
"""

from __future__ import annotations

import json
import math
import os
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, TypeVar

from .._checks import whole
from ..errors import InvalidRequestError, InvalidTypeError, RigError
from ..vector_store import CheckedVector, DimensionMismatchError, Filter, FilterError, VectorStoreError, value_kind
from ._base import DatabaseVectorStore, FieldValue, StoredRow, check_ndims, compile_filter, decode_json, import_optional

__all__ = ["LanceDBVectorStore", "INDEX_TYPES"]

D = TypeVar("D")

_FORMAT = "1"
_FORMAT_KEY = "rig_sync.format"
_NEXT_ID_KEY = "rig_sync.next_id"  # on the id column: the next number for generated ids doc<n>
_SEARCH_KEY = "rig_sync.search"  # on the vector column: the index's search settings, as JSON
_BASE_COLUMNS = ("id", "part", "seq", "vector", "document", "metadata")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_OPERATORS = {"eq": "=", "gt": ">", "lt": "<"}
_IN_CHUNK = 1000  # ids per IN (...) list

INDEX_TYPES: dict[str, str] = {
    "IVF_FLAT": "IvfFlat", "IVF_SQ": "IvfSq", "IVF_PQ": "IvfPq", "IVF_RQ": "IvfRq",
    "IVF_HNSW_SQ": "HnswSq", "IVF_HNSW_PQ": "HnswPq", "IVF_HNSW_FLAT": "IvfHnswFlat",
}
"""The ANN index types `create_index` builds (LanceDB's name: its config class in lancedb.index)."""


# --- filter columns -----------------------------------------------------------------------------


_FILTER_COLUMN = re.compile(r"f_[a-z]_((?:[0-9a-f]{2})*)")


def _column(kind: str, key: str) -> str:
    """The filter column for values of `kind` under `key`: hex needs no quoting in SQL, whatever
    the key holds (dots, spaces, quotes, lone surrogates)."""
    return f"f_{kind}_{key.encode('utf-8', 'surrogatepass').hex()}"


def _as_double(value: int | float) -> float:
    try:
        return float(value)
    except OverflowError:  # an integer beyond any double: the infinity on its side
        return math.inf if value > 0 else -math.inf


def _valid_text(text: str, what: str, error: type[RigError]) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise error(f"{what} holds a lone surrogate ({text!r:.60}), which LanceDB cannot store or compare; "
                    "pass valid Unicode text") from None
    return text


def _typed(key: str, value: FieldValue, doc_id: str) -> tuple[str, Any]:
    """(column kind, value) for one filterable metadata value."""
    if value is None:
        return "z", True
    if isinstance(value, bool):
        return "b", value
    if isinstance(value, int):
        return ("i", value) if _INT64_MIN <= value <= _INT64_MAX else ("n", _as_double(value))
    if isinstance(value, float):
        return "n", value
    return "s", _valid_text(value, f"metadata {key!r} of {doc_id!r}", VectorStoreError)


def _literal(value: str | int | float | bool) -> str:
    """An SQL literal for LanceDB (DataFusion): every value a filter puts in SQL goes through here."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return "'" + _valid_text(value, "a filter value", FilterError).replace("'", "''") + "'"
    if isinstance(value, int):  # a cast from text reads every int64, even -2**63 (a bare literal cannot)
        return f"CAST('{int(value)}' AS BIGINT)"
    return f"CAST('{float(value)!r}' AS DOUBLE)"  # repr: exact, and 'inf' / '-inf' for infinities


def _int_part(op: str, value: int | float, column: str) -> str | None:
    """`column op value` over the int64 column, exactly (None: matches no row)."""
    if isinstance(value, float):
        if math.isinf(value):
            return f"{column} IS NOT NULL" if (op == "gt") == (value < 0) and op != "eq" else None
        if op == "eq":
            if not value.is_integer():
                return None
            value = int(value)
        else:  # an integer i: i > v exactly when i > floor(v), i < v when i < ceil(v)
            value = math.floor(value) if op == "gt" else math.ceil(value)
    if value > _INT64_MAX:
        return f"{column} IS NOT NULL" if op == "lt" else None
    if value < _INT64_MIN:
        return f"{column} IS NOT NULL" if op == "gt" else None
    return f"{column} {_OPERATORS[op]} {_literal(value)}"


def _double_part(op: str, value: int | float, column: str) -> str | None:
    """`column op value` over the double column, exactly: an integer that no double holds falls
    between two doubles, `below` and `above`, and compares as that gap does."""
    if isinstance(value, float) or float(_as_double(value)) == value:
        return f"{column} {_OPERATORS[op]} {_literal(_as_double(value))}"
    if op == "eq":
        return None
    nearest = _as_double(value)
    below = nearest if nearest < value else math.nextafter(nearest, -math.inf)
    above = nearest if nearest > value else math.nextafter(nearest, math.inf)
    return f"{column} >= {_literal(above)}" if op == "gt" else f"{column} <= {_literal(below)}"


# --- the store ----------------------------------------------------------------------------------


class LanceDBVectorStore(DatabaseVectorStore[D]):
    """A vector store in LanceDB table `table` at `uri` (a local directory, created if missing, or an
    object storage URI such as "s3://bucket/path" with `storage_options`), scored by cosine
    similarity: exactly until `create_index` builds an ANN index.

    `ndims` fixes the dimension up front (a table created with another raises
    `DimensionMismatchError`). `read_consistency_interval` is how stale a read may be with respect to
    other processes' writes (0: every read sees the latest; None: never look); this process's own
    writes are always seen.
    """

    def __init__(
        self, uri: str | os.PathLike[str], table: str = "rig_documents", *, ndims: int | None = None,
        storage_options: Mapping[str, str] | None = None,
        read_consistency_interval: timedelta | None = timedelta(0),
    ) -> None:
        if not isinstance(uri, str | os.PathLike) or not os.fspath(uri):
            raise InvalidTypeError(f"uri must be a directory path or an object storage URI, not {uri!r:.80}")
        if not isinstance(table, str) or not table or not all(c.isascii() and (c.isalnum() or c in "_-.")
                                                              for c in table):
            raise InvalidRequestError(f"table must be a name of ASCII letters, digits, _, - and ., not {table!r:.80}")
        if ndims is not None:
            whole(ndims, "ndims", minimum=1)
        if read_consistency_interval is not None and not isinstance(read_consistency_interval, timedelta):
            raise InvalidTypeError("read_consistency_interval must be a datetime.timedelta or None, "
                                   f"not {type(read_consistency_interval).__name__}")
        self._lancedb = import_optional("lancedb", "lancedb", "LanceDBVectorStore")
        self._pa = import_optional("pyarrow", "lancedb", "LanceDBVectorStore")
        self._np = import_optional("numpy", "lancedb", "LanceDBVectorStore")
        self._uri = os.fspath(uri)
        self._name = table
        self._lock = threading.RLock()  # one writer at a time in this process
        self._next_seq: tuple[int, int] | None = None  # (table version, next seq) after our last write
        self._pending_next_id = 0  # generated ids handed out before the table exists
        with self._errors():
            self._db = self._lancedb.connect(self._uri, storage_options=dict(storage_options or {}) or None,
                                             read_consistency_interval=read_consistency_interval)
            self._table: Any = self._open_table()
        if self._table is not None:
            if ndims is not None and ndims != self._stored_ndims():
                raise DimensionMismatchError(f"table {table!r} at {self._uri} holds {self._stored_ndims()}-dimension "
                                             f"vectors, not {ndims}; open it with ndims={self._stored_ndims()}")
        elif ndims is not None:
            with self._lock:
                self._create_table(ndims)

    def __repr__(self) -> str:
        state = ", closed" if self._closed else ""
        return f"LanceDBVectorStore({self._uri!r}, table={self._name!r}{state})"

    @property
    def uri(self) -> str:
        return self._uri

    @property
    def table(self) -> Any:
        """The underlying `lancedb` table (None until the first insert): for LanceDB's own tools."""
        self.check_open()
        return self._table

    # plumbing

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """LanceDB's and the file system's errors as `VectorStoreError`s naming the store."""
        try:
            yield
        except RigError:
            raise
        except (ValueError, RuntimeError, OSError, self._pa.ArrowException) as exc:
            text = str(exc).split(", /root/")[0][:500]  # LanceDB appends the Rust source path
            raise VectorStoreError(f"LanceDB error on table {self._name!r} at {self._uri}: "
                                   f"{type(exc).__name__}: {text}") from exc

    def _open_table(self) -> Any:
        try:
            table = self._db.open_table(self._name)
        except ValueError as exc:
            if "not found" in str(exc) or "does not exist" in str(exc):
                return None
            raise
        fields = {field.name: field for field in table.schema}
        missing = [name for name in _BASE_COLUMNS if name not in fields]
        marker = (fields["id"].metadata or {}).get(_FORMAT_KEY.encode()) if "id" in fields else None
        if missing or marker is None or not self._pa.types.is_fixed_size_list(fields["vector"].type):
            raise VectorStoreError(f"table {self._name!r} at {self._uri} is not a rig_sync vector store (its columns "
                                   f"are {sorted(fields)}); pass another table= name")
        if marker != _FORMAT.encode():
            raise VectorStoreError(f"table {self._name!r} at {self._uri} is in rig_sync format "
                                   f"{marker.decode(errors='replace')}; this rig_sync reads format {_FORMAT}: "
                                   "upgrade rig_sync or pass another table= name")
        return table

    def _create_table(self, ndims: int) -> Any:
        pa = self._pa
        schema = pa.schema([
            pa.field("id", pa.string(), nullable=False,
                     metadata={_FORMAT_KEY: _FORMAT, _NEXT_ID_KEY: str(self._pending_next_id)}),
            pa.field("part", pa.int32(), nullable=False),
            pa.field("seq", pa.int64(), nullable=False),
            pa.field("vector", pa.list_(pa.float32(), ndims), nullable=False),
            pa.field("document", pa.string(), nullable=False),
            pa.field("metadata", pa.string()),
        ])
        with self._errors():
            self._table = self._db.create_table(self._name, schema=schema, exist_ok=True)
            self._table = self._open_table()
        return self._table

    def _stored_ndims(self) -> int:
        return int(self._table.schema.field("vector").type.list_size)

    def _field_metadata(self, column: str, key: str) -> str | None:
        value = (self._table.schema.field(column).metadata or {}).get(key.encode())
        return None if value is None else bytes(value).decode()

    def _rows(self, where: str, columns: list[str]) -> Any:
        """Every row matching `where` (a plain scan, no vector), as an Arrow table."""
        return self._table.search().where(where).select(columns).limit(None).to_arrow()

    @staticmethod
    def _in_list(column: str, values: Sequence[str]) -> str:
        return f"{column} IN ({', '.join(_literal(value) for value in values)})"

    # hooks

    @property
    def ndims(self) -> int | None:
        self.check_open()
        if self._table is None:  # another process may have created it since
            with self._lock, self._errors():
                self._table = self._open_table()
        return None if self._table is None else self._stored_ndims()

    def _write(self, rows: list[StoredRow], ndims: int) -> None:
        latest: dict[str, StoredRow] = {}
        for row in rows:  # a repeated id: its last row, in its first place
            latest[row.id] = row
        typed = [[(_column(kind, key), value) for key, field in row.fields.items()
                  for kind, value in [_typed(key, field, row.id)]] for row in latest.values()]
        with self._lock, self._errors():
            self.check_open()
            table = self._table if self._table is not None else self._open_table()
            table = table if table is not None else self._create_table(ndims)
            self._table = table
            check_ndims(ndims, self._stored_ndims())
            existing = self._existing_seqs(list(latest))
            next_seq = self._read_next_seq()
            seqs: list[int] = []
            for doc_id in latest:
                if doc_id in existing:
                    seqs.append(existing[doc_id])
                else:
                    seqs.append(next_seq)
                    next_seq += 1
            self._add_filter_columns({name for fields in typed for name, _ in fields})
            data = self._arrow_rows(list(latest.values()), seqs, typed, ndims)
            if existing:  # replace in one commit: update matching parts, add new, drop parts left over
                (table.merge_insert(["id", "part"]).when_matched_update_all().when_not_matched_insert_all()
                 .when_not_matched_by_source_delete(self._in_list("id", list(existing))).execute(data))
            else:
                table.add(data)
            self._next_seq = (table.version, next_seq)

    def _existing_seqs(self, ids: list[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        for start in range(0, len(ids), _IN_CHUNK):
            chunk = ids[start:start + _IN_CHUNK]
            rows = self._rows(f"part = 0 AND {self._in_list('id', chunk)}", ["id", "seq"])
            found.update(zip(rows["id"].to_pylist(), rows["seq"].to_pylist(), strict=True))
        return found

    def _read_next_seq(self) -> int:
        """One past the largest seq, remembered from our last write while no one else wrote."""
        if self._next_seq is not None and self._next_seq[0] == self._table.version:
            return self._next_seq[1]
        seqs = self._rows("part = 0", ["seq"])["seq"]
        top = self._pa.compute.max(seqs).as_py() if len(seqs) else None
        return 0 if top is None else int(top) + 1

    def _add_filter_columns(self, names: set[str]) -> None:
        present = set(self._table.schema.names)
        new = sorted(names - present)
        if new:
            pa = self._pa
            kinds = {"s": pa.string(), "i": pa.int64(), "n": pa.float64(), "b": pa.bool_(), "z": pa.bool_()}
            self._table.add_columns(pa.schema([pa.field(name, kinds[name[2]]) for name in new]))

    def _arrow_rows(self, rows: list[StoredRow], seqs: list[int], typed: list[list[tuple[str, Any]]],
                    ndims: int) -> Any:
        """One Arrow row per vector, in the table's schema (filter columns a row lacks are NULL)."""
        pa, np = self._pa, self._np
        schema = self._table.schema
        parts = [len(row.vectors) for row in rows]
        matrix = np.empty((sum(parts), ndims), dtype=np.float32)
        at = 0
        for row in rows:
            for vec in row.vectors:
                matrix[at] = np.frombuffer(vec.values, dtype=np.float64) / vec.norm
                at += 1
        columns: dict[str, Any] = {
            "id": [row.id for row, count in zip(rows, parts, strict=True) for _ in range(count)],
            "part": [part for count in parts for part in range(count)],
            "seq": [seq for seq, count in zip(seqs, parts, strict=True) for _ in range(count)],
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(matrix.reshape(-1)), ndims),
            "document": [row.document_json for row, count in zip(rows, parts, strict=True) for _ in range(count)],
            "metadata": [row.metadata_json for row, count in zip(rows, parts, strict=True) for _ in range(count)],
        }
        filters: dict[str, list[Any]] = {name: [None] * len(columns["id"]) for name in schema.names
                                         if name not in columns}
        at = 0
        for fields, count in zip(typed, parts, strict=True):
            for name, value in fields:
                filters[name][at:at + count] = [value] * count
            at += count
        columns.update(filters)
        return pa.Table.from_pydict(columns, schema=schema)

    def _search(
        self, query: CheckedVector, n: int, threshold: float | None, filter: Filter | None
    ) -> list[tuple[float, str, D]]:
        where = None if filter is None else self._where(filter)
        if where == "false":
            return []
        unit = (self._np.frombuffer(query.values, dtype=self._np.float64) / query.norm).astype(self._np.float32)
        with self._errors():
            search = self._search_settings()
            limit = n + 1  # one more row than documents: a lower score there settles the n-th
            while True:
                builder = (self._table.search(unit, vector_column_name="vector").distance_type("cosine")
                           .select(["id", "seq", "document", "_distance"]).limit(limit))
                if where is not None:
                    builder = builder.where(where, prefilter=True)
                for name, value in search.items():
                    builder = getattr(builder, name)(value)
                hits = self._best(builder.to_arrow(), n, limit, threshold)
                if hits is not None:
                    return hits
                limit *= 4

    @staticmethod
    def _best(found: Any, n: int, limit: int, threshold: float | None) -> list[tuple[float, str, Any]] | None:
        """The best `n` documents among the `limit` best rows found (best first), or None when rows
        beyond them could still change the answer: a document's other vectors, or an equal score."""
        scores = [min(1.0, 1.0 - float(distance)) for distance in found["_distance"].to_pylist()]
        best: dict[str, tuple[float, int, str]] = {}
        columns = (found[name].to_pylist() for name in ("id", "seq", "document"))
        for score, doc_id, seq, document in zip(scores, *columns, strict=True):
            if (threshold is None or score >= threshold) and doc_id not in best:
                best[doc_id] = (score, seq, document)
        ranked = sorted(best.items(), key=lambda item: (-item[1][0], item[1][1]))[:n]
        lowest = scores[-1] if scores else -math.inf
        if (found.num_rows < limit or (threshold is not None and lowest < threshold)
                or (len(ranked) == n and ranked[-1][1][0] > lowest)):
            return [(score, doc_id, decode_json(document)) for doc_id, (score, _, document) in ranked]
        return None

    def _where(self, filter: Filter) -> str:
        """The filter as LanceDB SQL over the filter columns; "false" when no column can match."""
        present = set(self._table.schema.names)

        def leaf(node: Filter) -> tuple[str, list[Any]]:
            key, op, value = str(node.key), node.op, node.value
            kind = value_kind(value)
            terms: list[tuple[str, str | None]]
            if kind == "none":
                column = _column("z", key)
                terms = [(column, f"{column} IS NOT NULL")]
            elif kind in ("bool", "str"):
                column = _column("b" if kind == "bool" else "s", key)
                terms = [(column, f"{column} {_OPERATORS[op]} {_literal(value)}")]
            else:
                ints, doubles = _column("i", key), _column("n", key)
                terms = [(ints, _int_part(op, value, ints)), (doubles, _double_part(op, value, doubles))]
            kept = [sql for column, sql in terms if sql is not None and column in present]
            return (" OR ".join(f"({sql})" for sql in kept) if kept else "false"), []

        sql, _ = compile_filter(filter, leaf)  # values are inlined by _literal: LanceDB takes no parameters
        return sql

    def _delete(self, ids: list[str]) -> int:
        removed = 0
        with self._lock, self._errors():
            self.check_open()
            if self._table is None:
                return 0
            for start in range(0, len(ids), _IN_CHUNK):
                condition = self._in_list("id", ids[start:start + _IN_CHUNK])
                count = self._table.count_rows(f"part = 0 AND {condition}")
                if count:
                    self._table.delete(condition)
                    removed += count
        return removed

    def _metadata_keys(self) -> set[str]:
        # Filter columns are added with a key's first value and never dropped: every key ever stored.
        if self._table is None and self.ndims is None:
            return set()
        with self._lock, self._errors():
            names = self._table.schema.names
        return {bytes.fromhex(found.group(1)).decode("utf-8", "surrogatepass")
                for found in map(_FILTER_COLUMN.fullmatch, names) if found}

    def _count(self) -> int:
        if self._table is None and self.ndims is None:
            return 0
        with self._errors():
            return int(self._table.count_rows("part = 0"))

    def _get(self, doc_id: str) -> tuple[D, Mapping[str, Any] | None] | None:
        if self._table is None and self.ndims is None:
            return None
        with self._errors():
            rows = self._rows(f"part = 0 AND id = {_literal(doc_id)}", ["document", "metadata"]).to_pylist()
        if not rows:
            return None
        metadata = rows[0]["metadata"]
        return decode_json(rows[0]["document"]), None if metadata is None else decode_json(metadata)

    def _reserve_ids(self, count: int) -> int:
        with self._lock, self._errors():
            self.check_open()
            if self._table is None and self.ndims is None:
                first = self._pending_next_id
                self._pending_next_id += count
                return first
            first = int(self._field_metadata("id", _NEXT_ID_KEY) or 0)
            self._table.update_field_metadata({"path": "id", "metadata": {_NEXT_ID_KEY: str(first + count)}})
            return first

    def _close(self) -> None:
        self._table = None
        self._db = None

    # the ANN index

    def _search_settings(self) -> dict[str, int]:
        text = self._field_metadata("vector", _SEARCH_KEY)
        return {} if text is None else dict(json.loads(text))

    def create_index(
        self, index_type: str = "IVF_SQ", *, nprobes: int | None = None, refine_factor: int | None = 5,
        ef: int | None = None, **options: Any,
    ) -> None:
        """Build (or rebuild) an ANN index on the vectors; searches use it from then on.

        `index_type` is one of `INDEX_TYPES`; `options` go to LanceDB's index config (e.g.
        `num_partitions`, `num_sub_vectors`, `m`, `ef_construction`). The search settings are kept
        in the table for every later search, from any process: `nprobes` (IVF partitions searched;
        LanceDB's default when None), `refine_factor` (re-rank that many times `n` candidates by
        their exact vectors, so scores are exact; None to skip) and `ef` (HNSW's candidate list).
        Rows inserted after the index are searched exactly until `optimize()` adds them to it.
        """
        kind = index_type.upper() if isinstance(index_type, str) else index_type
        if kind not in INDEX_TYPES:
            raise InvalidRequestError(f"index_type must be one of {sorted(INDEX_TYPES)}, not {index_type!r}")
        settings: dict[str, int] = {}
        for name, value in (("nprobes", nprobes), ("refine_factor", refine_factor), ("ef", ef)):
            if value is not None:
                settings[name] = whole(value, name, minimum=1)
        with self._lock:
            self.check_open()
            if self._table is None and self.ndims is None:
                raise VectorStoreError("the store is empty: insert documents before creating an index")
            config_class = getattr(import_optional("lancedb.index", "lancedb", "create_index"), INDEX_TYPES[kind])
            try:
                config = config_class(distance_type="cosine", **options)
            except TypeError as exc:
                raise InvalidRequestError(f"{kind} does not take these options: {exc}") from None
            with self._errors():
                self._table.create_index("vector", config=config, replace=True)
                self._table.update_field_metadata(
                    {"path": "vector", "metadata": {_SEARCH_KEY: json.dumps(settings, sort_keys=True)}})

    def drop_index(self) -> None:
        """Remove the ANN index: searches are exact again."""
        with self._lock, self._errors():
            self.check_open()
            if self._table is None:
                return
            for index in self._table.list_indices():
                if list(index.columns) == ["vector"]:
                    self._table.drop_index(index.name)
            self._table.update_field_metadata({"path": "vector", "metadata": {_SEARCH_KEY: None}})

    def optimize(self) -> None:
        """Compact the table's files (many small inserts and deletes leave many) and add rows
        inserted since `create_index` to the index. Old versions are kept as LanceDB keeps them."""
        with self._lock, self._errors():
            self.check_open()
            if self._table is not None:
                self._table.optimize()
