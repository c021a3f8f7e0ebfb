"""A vector store in PostgreSQL with the pgvector extension, on psycopg 3 and its connection pool.

    from rig_sync.vector_stores.pgvector import PgVectorStore      # pip install 'rig-sync[pgvector]'

    store = PgVectorStore("postgresql://app@db.internal/app", "docs")
    store.insert_documents([("a", {"text": "…", "lang": "en"}, vector), ...])
    store.create_index("hnsw")                      # after a bulk load: approximate, much faster search
    store.index(model).top_n("query", 3)            # [(score, id, document)], best first

A Django project can keep its vectors in its own database:

    from django.conf import settings
    from psycopg.conninfo import make_conninfo
    db = settings.DATABASES["default"]
    dsn = make_conninfo(**{key: value for key, value in {
        "dbname": db["NAME"], "user": db.get("USER"), "password": db.get("PASSWORD"),
        "host": db.get("HOST"), "port": str(db.get("PORT") or "")}.items() if value})
    store = PgVectorStore(dsn, "rig_documents")     # one per process: it owns a connection pool

Three tables, named after `table`: `table` (id text primary key, document jsonb, metadata jsonb,
the filterable fields as jsonb, and the insertion order), `table_vectors` (one row per vector, so
a document may have several) and `table_meta` (the metric, ids handed out). Without an index,
search is exact; with one (`create_index` or `index=`), pgvector's HNSW or IVFFlat answers
approximately. Filters are translated to SQL over jsonb with every key and value a parameter.
"""

from __future__ import annotations

import importlib
import math
import numbers
import re
import struct
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from .._checks import whole
from ..errors import InvalidRequestError, InvalidTypeError, RigError
from ..vector_store import (
    CheckedVector,
    Filter,
    InvalidVectorError,
    StoreUnavailableError,
    VectorStoreError,
    value_kind,
)
from ._base import (
    Compiled,
    DatabaseVectorStore,
    FieldValue,
    StoredRow,
    check_ndims,
    compile_filter,
    encode_json,
    import_optional,
)

try:  # imported by name so type checking works with or without the optional extra
    _np: Any = importlib.import_module("numpy")
except ImportError:  # pragma: no cover - depends on the optional extra
    _np = None

if TYPE_CHECKING:
    import psycopg
    import psycopg_pool
    from psycopg import sql as pgsql

__all__ = ["PgVectorStore", "Metric", "IndexKind"]

D = TypeVar("D")
T = TypeVar("T")

Metric = Literal["cosine", "inner_product", "l2"]
IndexKind = Literal["hnsw", "ivfflat"]

# The operator each metric orders by (ascending is best) and the index operator class for it.
# Cosine stores unit vectors, on which the inner product is the cosine and cheaper to compute.
_OPERATORS: Mapping[str, tuple[str, str]] = {
    "cosine": ("<#>", "vector_ip_ops"),
    "inner_product": ("<#>", "vector_ip_ops"),
    "l2": ("<->", "vector_l2_ops"),
}
_MAX_DIMS = 16_000  # pgvector's `vector` type
_MAX_INDEX_DIMS = 2_000  # pgvector's HNSW and IVFFlat on `vector`
_MAX_TABLE_BYTES = 63 - len("_vectors_ivfflat")  # PostgreSQL truncates names past 63 bytes
_FLOAT32_MAX = 3.4028234663852886e38
_FORMAT = 1
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0)
_COPY_TRAILER = struct.pack("!h", -1)
_COPY_CHUNK = 1000  # rows per write into COPY
_EXTENSION = ("SELECT e.extversion, n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
              "WHERE e.extname = 'vector'")


def _drivers() -> tuple[Any, Any, Any]:
    """psycopg, psycopg.sql and psycopg_pool, imported when a store is opened (an optional extra)."""
    names = ("psycopg", "psycopg.sql", "psycopg_pool")
    psycopg, sql, pool = (import_optional(name, "pgvector", "PgVectorStore") for name in names)
    return psycopg, sql, pool


# --- filters: exact Filter.matches semantics over jsonb ----------------------------------------


def _plain_number(value: Any) -> int | float | None:
    """A filter or metadata number as an int or a float (numpy scalars, Fractions); None if not one."""
    if value_kind(value) != "number":
        return None
    return int(value) if isinstance(value, numbers.Integral) else float(value)


def _fields_json(fields: Mapping[str, FieldValue]) -> str:
    """The filterable fields as JSON with every number's exact value (`encode_json` writes a float
    as its shortest repr). jsonb keeps numbers as `numeric`, so filters then compare ints and
    floats exactly as Python does, with no rounding through float8 or a decimal repr."""
    parts = []
    for key, value in fields.items():
        number = _plain_number(value)
        if number is None:
            text = encode_json(value, "a metadata value")
        else:  # every finite double is an exact, finite decimal
            text = str(number) if isinstance(number, int) else str(Decimal(number))
        parts.append(f"{encode_json(key, 'a metadata key')}:{text}")
    return "{" + ",".join(parts) + "}"


def _storable(text: str) -> tuple[str, bool]:
    """(`text` cut before the first character a PostgreSQL text cannot hold, whether it was cut).

    NUL and lone surrogates never reach the database, so a stored string never holds one."""
    for position, char in enumerate(text):
        if char == "\x00" or "\ud800" <= char <= "\udfff":
            return text[:position], True
    return text, False


def _leaf(fields: pgsql.Composable, sql: Any) -> Any:
    """The compiler for one eq / gt / lt over the jsonb `fields` column, for `compile_filter`."""

    def leaf(node: Filter) -> Compiled:
        key, value = node.key, node.value
        assert key is not None  # a leaf always has one (Filter checks)
        key_text, key_cut = _storable(key)
        if key_cut:
            return "FALSE", []  # no stored key holds such a character
        number = _plain_number(value)
        if number is not None:
            value = number
        if node.op == "eq":
            if isinstance(value, str) and _storable(value)[1]:
                return "FALSE", []
            if isinstance(number, float) and math.isinf(number):
                return "FALSE", []  # JSON holds no infinity, so no stored value equals it
            probe = _fields_json({key_text: value})
            # Containment compares numbers by value, strings by bytes, and never true with false or 1.
            return sql.SQL("{} @> %s::jsonb").format(fields).as_string(None), [probe]
        greater = node.op == "gt"
        params: list[Any]
        if number is not None:
            if isinstance(number, float) and math.isinf(number):
                if greater == (number > 0):
                    return "FALSE", []  # nothing is above +inf or below -inf
                condition, params = "TRUE", []  # every number is above -inf and below +inf
            else:
                condition = f"({{0}} ->> %s)::numeric {'>' if greater else '<'} %s"
                params = [key_text, Decimal(number)]
            kind = "number"
        else:
            # Code point order, as Python's: UTF-8 bytes sort so under the C collation.
            text, cut = _storable(value)
            if not cut:
                operator, bound = (">" if greater else "<"), text
            elif value[len(text)] == "\x00":
                # Stored strings hold no NUL: s > "ab\0…" iff s > "ab"; s < "ab\0…" iff s <= "ab".
                operator, bound = (">" if greater else "<="), text
            else:
                # A lone surrogate sorts between U+D7FF and U+E000, so compare with "ab\ue000".
                operator, bound = (">=" if greater else "<"), text + "\ue000"
            condition = f'({{0}} ->> %s) COLLATE "C" {operator} %s'
            params = [key_text, bound]
            kind = "string"
        # CASE, not AND: the cast must not run on a value of another kind.
        template = f"CASE WHEN jsonb_typeof({{0}} -> %s) = '{kind}' THEN {condition} ELSE FALSE END"
        return sql.SQL(template).format(fields).as_string(None), [key_text, *params]

    return leaf


# --- vectors on the wire ------------------------------------------------------------------------


def _float4s(vectors: Sequence[CheckedVector], ndims: int, unit: bool) -> list[bytes]:
    """Each vector (scaled to length 1 if `unit`) as big-endian float4s, with numpy when installed."""
    if _np is None:  # pragma: no cover - depends on the optional extra
        pack = struct.Struct(f"!{ndims}f").pack
        return [pack(*(vec.unit() if unit else vec.values)) for vec in vectors]
    matrix = _np.frombuffer(b"".join(vec.values for vec in vectors), dtype=_np.float64).reshape(len(vectors), ndims)
    if unit:
        matrix = matrix / _np.fromiter((vec.norm for vec in vectors), _np.float64, len(vectors))[:, None]
    data = matrix.astype(">f4").tobytes()
    size = 4 * ndims
    return [data[i * size:(i + 1) * size] for i in range(len(vectors))]


def _copy_payload(rows: Sequence[tuple[str, CheckedVector]], ndims: int, unit: bool) -> Iterator[bytes]:
    """`(doc_id, vector)` rows in COPY's binary format (pgvector's binary `vector`: dims, 0, float4s)."""
    head = struct.Struct("!iHH").pack(4 + 4 * ndims, ndims, 0)
    yield _COPY_HEADER
    for start in range(0, len(rows), _COPY_CHUNK):
        chunk = rows[start:start + _COPY_CHUNK]
        parts: list[bytes] = []
        for (doc_id, _), floats in zip(chunk, _float4s([vec for _, vec in chunk], ndims, unit), strict=True):
            encoded = doc_id.encode("utf-8")
            parts += (struct.pack("!hi", 2, len(encoded)), encoded, head, floats)
        yield b"".join(parts)
    yield _COPY_TRAILER


def _said(exc: BaseException) -> str:
    """A driver's message on one line (PostgreSQL's come with DETAIL / HINT lines)."""
    return " ".join(str(exc).split())


def _vector_text(values: Sequence[float]) -> str:
    """pgvector's text form; 9 significant digits carry a float4 exactly (and format fast)."""
    return "[" + ",".join(["%.9g"] * len(values)) % tuple(values) + "]"


# --- the store ----------------------------------------------------------------------------------


def _name(value: Any, what: str, limit: int) -> str:
    if not isinstance(value, str):
        raise InvalidTypeError(f"{what} must be a string, not {type(value).__name__}")
    if not value or "\x00" in value or len(value.encode("utf-8", "surrogatepass")) > limit:
        raise InvalidRequestError(f"{what} must be 1 to {limit} bytes without NUL, not {value!r:.80}")
    return value


def _choice(value: Any, what: str, allowed: Iterable[Any]) -> Any:
    options = tuple(allowed)
    if value not in options or isinstance(value, bool):
        raise InvalidRequestError(f"{what} must be one of {options}, not {value!r:.60}")
    return value


class PgVectorStore(DatabaseVectorStore[D]):
    """Documents and their vectors in PostgreSQL with pgvector, searched by `metric`.

    `dsn_or_pool` is a libpq connection string / URI (the store opens and owns a
    `psycopg_pool.ConnectionPool` of up to `pool_size` connections, closed by `close()`) or a
    pool of your own (used, never closed by the store). Safe for many threads.

    Scores, best first: `metric="cosine"` (the default, and the in-memory store's) is the cosine
    similarity; `"inner_product"` the raw dot product; `"l2"` the negated Euclidean distance (so
    higher is still better: `threshold=-0.5` keeps vectors within distance 0.5). The metric is
    fixed when the table is created. `index="hnsw"` creates an HNSW index now; `"ivfflat"` one
    learnt from the rows present (after the first insert if the table is empty); an index can also
    be added later with `create_index` — after a bulk load is fastest. With an index, searches are
    approximate: `ef_search` (HNSW) and `probes` (IVFFlat) trade speed for recall.

    `ndims` fixes the dimension now (otherwise the first insert does); a table that exists with
    another dimension raises `DimensionMismatchError`. The `vector` extension is created if it is
    missing, which needs a superuser (or a managed host's equivalent role); a role without that
    right gets a `StoreUnavailableError` saying who must run `CREATE EXTENSION vector`.
    """

    def __init__(
        self,
        dsn_or_pool: str | psycopg_pool.ConnectionPool[Any],
        table: str = "rig_documents",
        *,
        ndims: int | None = None,
        metric: Metric = "cosine",
        index: IndexKind | None = None,
        schema: str | None = None,
        ef_search: int = 100,
        probes: int = 10,
        hnsw_m: int = 16,
        hnsw_ef_construction: int = 64,
        pool_size: int = 10,
        timeout: float = 30.0,
    ) -> None:
        self._table = _name(table, "table", _MAX_TABLE_BYTES)
        self._schema_arg = None if schema is None else _name(schema, "schema", 63)
        self._metric: Metric = _choice(metric, "metric", _OPERATORS)
        self._index_kind: IndexKind | None = _choice(index, "index", (None, "hnsw", "ivfflat"))
        if ndims is not None:
            whole(ndims, "ndims", minimum=1)
            if ndims > _MAX_DIMS:
                raise InvalidRequestError(f"pgvector stores vectors of up to {_MAX_DIMS} dimensions, not {ndims}")
        self._ef_search = whole(ef_search, "ef_search", minimum=1)
        if self._ef_search > 1000:
            raise InvalidRequestError(f"ef_search must be at most 1000 (pgvector's limit), not {ef_search}")
        self._probes = whole(probes, "probes", minimum=1)
        self._hnsw = (whole(hnsw_m, "hnsw_m", minimum=2), whole(hnsw_ef_construction, "hnsw_ef_construction",
                                                                 minimum=4))
        if hnsw_m > 100 or not 2 * hnsw_m <= hnsw_ef_construction <= 1000:  # pgvector's bounds
            raise InvalidRequestError(f"hnsw_m must be at most 100 and hnsw_ef_construction from 2 * hnsw_m to "
                                      f"1000, not {hnsw_m} and {hnsw_ef_construction}")
        whole(pool_size, "pool_size", minimum=1)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout < math.inf:
            raise InvalidRequestError(f"timeout must be a positive number of seconds, not {timeout!r:.60}")
        self._pg, self._sql, self._pool_module = _drivers()
        self._ndims: int | None = None
        self._max_vectors = 1
        self._iterative = False
        self._pool: psycopg_pool.ConnectionPool[Any]
        if isinstance(dsn_or_pool, str):
            try:
                self._pg.conninfo.conninfo_to_dict(dsn_or_pool)
            except self._pg.ProgrammingError as exc:
                raise InvalidRequestError(f"not a PostgreSQL connection string or URI: {exc}") from None
            self._owns_pool = True
            # Set up on one direct connection (a pool would only time out on a bad address), then
            # pool connections in autocommit with the search settings made once per connection,
            # so that a search is a single statement.
            with self._errors("connect to PostgreSQL", opening=True):
                setup = self._pg.connect(dsn_or_pool, connect_timeout=max(1, math.ceil(timeout)), autocommit=True)
            with setup:
                self._open(setup, ndims)
            self._pool = self._pool_module.ConnectionPool(
                dsn_or_pool, min_size=1, max_size=pool_size, open=True, timeout=timeout,
                configure=self._configure,
                kwargs={"autocommit": True}, name="rig_sync.pgvector",
            )
        elif isinstance(dsn_or_pool, self._pool_module.ConnectionPool):
            self._owns_pool = False
            self._pool = dsn_or_pool
            with self._errors("connect to PostgreSQL", opening=True), self._pool.connection() as conn:
                self._open(conn, ndims)
        else:
            raise InvalidTypeError(
                "PgVectorStore takes a connection string or a psycopg_pool.ConnectionPool, not "
                f"{type(dsn_or_pool).__name__}"
            )

    # --- plumbing -------------------------------------------------------------------------------

    @contextmanager
    def _errors(self, doing: str, *, opening: bool = False) -> Iterator[None]:
        """psycopg's and the pool's errors as `VectorStoreError`s saying what failed and what to do
        (`StoreUnavailableError` for a server that cannot be reached while `opening`)."""
        pg, pool = self._pg, self._pool_module
        unreachable = StoreUnavailableError if opening else VectorStoreError
        try:
            yield
        except RigError:
            raise
        except pool.PoolClosed:
            raise VectorStoreError(
                f"cannot {doing}: the connection pool is closed; open the pool again or make a new store"
            ) from None
        except pool.PoolTimeout as exc:
            raise VectorStoreError(
                f"cannot {doing}: no PostgreSQL connection within the pool's timeout ({_said(exc)}); check that the "
                "server is up and reachable, or raise timeout= / pool_size="
            ) from exc
        except pg.OperationalError as exc:
            raise unreachable(
                f"cannot {doing}: the PostgreSQL connection failed ({_said(exc)}); check that the server is up and "
                "reachable, then retry"
            ) from exc
        except pg.DataError as exc:
            raise VectorStoreError(
                f"PostgreSQL refused the data to {doing} ({_said(exc)}); text in PostgreSQL cannot hold NUL "
                "characters or lone surrogates"
            ) from exc
        except pg.Error as exc:
            raise VectorStoreError(f"cannot {doing}: PostgreSQL said: {_said(exc)}") from exc

    def _run(self, doing: str, work: Callable[[psycopg.Connection[Any]], T], *, transaction: bool = True) -> T:
        """`work(conn)` on a pooled connection, in one transaction unless told otherwise, its errors
        as `VectorStoreError`s. A connection found dead (a server restart, an idle timeout) is
        dropped and the work run again on the next, up to once per pooled connection: cheaper than
        checking every connection before use, and every operation here may run twice (inserts
        replace, deletes and reads repeat, a reserved id range may only leave a gap)."""
        self.check_open()
        with self._errors(doing):
            for attempt in range(self._pool.max_size + 1):
                with self._pool.connection() as conn:
                    try:
                        if not transaction:
                            return work(conn)
                        with conn.transaction():
                            return work(conn)
                    except self._pg.OperationalError:
                        if not conn.broken or attempt == self._pool.max_size:
                            raise
        raise AssertionError("unreachable: the last attempt returns or raises")  # pragma: no cover

    def _ident(self, suffix: str = "") -> pgsql.Identifier:
        ident: pgsql.Identifier = self._sql.Identifier(self._schema, self._table + suffix)
        return ident

    # --- opening: the extension, the tables, the checks ------------------------------------------

    def _settings(self, n: int = 0) -> list[tuple[str, str]]:
        """The index search settings for a search of `n` results (0: what every search needs)."""
        ef_search = self._ef_search
        if not self._iterative:  # before pgvector 0.8, HNSW returns at most ef_search rows
            ef_search = max(ef_search, min(1000, n * self._max_vectors))
        settings = [("hnsw.ef_search", str(ef_search)), ("ivfflat.probes", str(self._probes))]
        if self._iterative:  # keep scanning the index until enough rows pass the filter (pgvector 0.8+)
            settings += [("hnsw.iterative_scan", "strict_order"), ("ivfflat.iterative_scan", "relaxed_order")]
        return settings

    def _set(self, conn: psycopg.Connection[Any], settings: list[tuple[str, str]], local: bool) -> None:
        calls = ", ".join(["set_config(%s, %s, %s)"] * len(settings))
        conn.execute(f"SELECT {calls}", [value for pair in settings for value in (*pair, local)])

    def _configure(self, conn: psycopg.Connection[Any]) -> None:
        """Each new connection of the store's own pool: the search settings, for the session."""
        self._set(conn, self._settings(), local=False)

    def _open(self, conn: psycopg.Connection[Any], ndims: int | None) -> None:
        sql = self._sql
        with self._errors("set up the pgvector extension", opening=True), conn.transaction():
            found = conn.execute(_EXTENSION).fetchone()
        if found is None:
            found = self._create_extension(conn)
        version, vector_schema = found
        self._iterative = tuple(int(part) for part in re.findall(r"\d+", version)[:2]) >= (0, 8)
        vector_type = sql.SQL("{}.vector").format(sql.Identifier(vector_schema))
        operator, self._opclass = _OPERATORS[self._metric]
        self._vector_type = vector_type
        self._operator = sql.SQL("OPERATOR({}.{})").format(sql.Identifier(vector_schema), sql.SQL(operator))
        with self._errors(f"open the table {self._table!r}"), conn.transaction():
            schema = self._schema_arg
            if schema is None:
                row = conn.execute("SELECT current_schema()").fetchone()
                schema = None if row is None else row[0]
                if schema is None:
                    raise VectorStoreError("no schema on the search_path to create tables in; pass schema=")
            self._schema: str = schema
            self._lock_tables(conn)
            if self._regclass(conn, "") is None:
                self._create_tables(conn)
            self._check_tables(conn)
            stored = self._stored_ndims(conn)
            if ndims is not None:
                if stored is None:
                    self._create_vectors_table(conn, ndims)
                    stored = ndims
                check_ndims(ndims, stored)
            kind = self._index_kind
            if kind is not None and stored is not None and (kind == "hnsw" or self._has_rows(conn)):
                self._build_index(conn, kind, None, stored)
                kind = None
        self._ndims, self._index_kind = stored, kind

    def _create_extension(self, conn: psycopg.Connection[Any]) -> tuple[str, str]:
        errors = self._pg.errors
        with self._errors("enable the pgvector extension"):
            try:
                with conn.transaction():
                    conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
                    row = conn.execute(_EXTENSION).fetchone()
            except (errors.FeatureNotSupported, errors.UndefinedFile) as exc:
                raise StoreUnavailableError(
                    f"this PostgreSQL server has no pgvector extension ({_said(exc)}); install pgvector on the server "
                    "(e.g. the postgresql-NN-pgvector package or the pgvector/pgvector image), then retry"
                ) from None
            except errors.InsufficientPrivilege as exc:
                raise StoreUnavailableError(
                    f"the pgvector extension is not enabled in this database and this role may not enable it "
                    f"({_said(exc)}); ask a superuser to run CREATE EXTENSION vector in it, then retry"
                ) from None
        assert row is not None
        return str(row[0]), str(row[1])

    def _lock_tables(self, conn: psycopg.Connection[Any]) -> None:
        """Serialise table creation across processes (held until the transaction ends)."""
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"rig_sync.pgvector:{self._schema}.{self._table}",))

    def _regclass(self, conn: psycopg.Connection[Any], suffix: str) -> int | None:
        row = conn.execute("SELECT to_regclass(format('%%I.%%I', %s::text, %s::text))::oid",
                           (self._schema, self._table + suffix)).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def _create_tables(self, conn: psycopg.Connection[Any]) -> None:
        sql = self._sql
        conn.execute(sql.SQL(
            "CREATE TABLE {docs} (seq bigint GENERATED ALWAYS AS IDENTITY, id text PRIMARY KEY, "
            "document jsonb NOT NULL, metadata jsonb, fields jsonb NOT NULL)"
        ).format(docs=self._ident()))
        conn.execute(sql.SQL(
            "CREATE TABLE {meta} (singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton), "
            "format integer NOT NULL, metric text NOT NULL, max_vectors integer NOT NULL DEFAULT 1, "
            "next_auto_id bigint NOT NULL DEFAULT 0)"
        ).format(meta=self._ident("_meta")))
        conn.execute(sql.SQL("INSERT INTO {meta} (format, metric) VALUES (%s, %s)").format(
            meta=self._ident("_meta")), (_FORMAT, self._metric))

    def _check_tables(self, conn: psycopg.Connection[Any]) -> None:
        """The table is one this store made, for this metric; `VectorStoreError` naming the fix if not."""
        expected = {"seq": "bigint", "id": "text", "document": "jsonb", "metadata": "jsonb", "fields": "jsonb"}
        columns = dict(conn.execute(
            "SELECT attname::text, format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped", (self._regclass(conn, ""),)
        ).fetchall())
        meta = self._regclass(conn, "_meta")
        if any(columns.get(name) != kind for name, kind in expected.items()) or meta is None:
            raise VectorStoreError(
                f"the table {self._schema}.{self._table} exists but was not made by PgVectorStore (it needs "
                f"columns {expected} and a {self._table}_meta table); pick another table name"
            )
        row = conn.execute(self._sql.SQL("SELECT format, metric, max_vectors FROM {}").format(
            self._ident("_meta"))).fetchone()
        if row is None or row[0] != _FORMAT:
            raise VectorStoreError(f"{self._table}_meta holds no PgVectorStore format {_FORMAT} row; "
                                   "pick another table")
        if row[1] != self._metric:
            raise VectorStoreError(
                f"the table {self._table!r} was created for metric={row[1]!r}, not {self._metric!r}; open it with "
                f"metric={row[1]!r} or use another table"
            )
        self._max_vectors = int(row[2])

    def _stored_ndims(self, conn: psycopg.Connection[Any]) -> int | None:
        oid = self._regclass(conn, "_vectors")
        if oid is None:
            return None
        row = conn.execute("SELECT atttypmod FROM pg_attribute WHERE attrelid = %s AND attname = 'embedding'",
                           (oid,)).fetchone()
        if row is None or row[0] is None or row[0] < 1:
            raise VectorStoreError(f"{self._table}_vectors has no embedding column of fixed dimension; "
                                   "it was not made by PgVectorStore")
        return int(row[0])

    def _create_vectors_table(self, conn: psycopg.Connection[Any], ndims: int) -> None:
        sql = self._sql
        conn.execute(sql.SQL(
            "CREATE TABLE {vecs} (doc_id text NOT NULL REFERENCES {docs} (id) ON DELETE CASCADE, "
            "embedding {vector}({ndims}) NOT NULL)"
        ).format(vecs=self._ident("_vectors"), docs=self._ident(), vector=self._vector_type,
                 ndims=sql.Literal(ndims)))
        conn.execute(sql.SQL("CREATE INDEX {name} ON {vecs} (doc_id)").format(
            name=sql.Identifier(self._table + "_vectors_doc"), vecs=self._ident("_vectors")))

    def _has_rows(self, conn: psycopg.Connection[Any]) -> bool:
        return conn.execute(self._sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(
            self._ident("_vectors"))).fetchone() == (True,)

    # --- indexes --------------------------------------------------------------------------------

    def create_index(self, kind: IndexKind = "hnsw", *, lists: int | None = None) -> None:
        """Create an approximate-search index on the vectors (kept up to date by later inserts).

        HNSW (`hnsw_m`, `hnsw_ef_construction` from the constructor) builds on any table; IVFFlat
        learns `lists` clusters (default: one per 1,000 vectors, at least 1) from the rows present,
        so create it after loading. Building a large index is faster with a larger
        `maintenance_work_mem` on the server. Creating an index that exists does nothing.
        """
        _choice(kind, "kind", ("hnsw", "ivfflat"))
        if lists is not None:
            whole(lists, "lists", minimum=1)

        def work(conn: psycopg.Connection[Any]) -> None:
            self._lock_tables(conn)
            ndims = self._stored_ndims(conn)
            if ndims is None:
                raise VectorStoreError(f"cannot index {self._table!r} before its dimension is known; insert "
                                       "documents first or pass ndims=")
            if kind == "ivfflat" and not self._has_rows(conn):
                raise VectorStoreError("an IVFFlat index learns its lists from the vectors present; insert "
                                       "documents first, then create it")
            self._build_index(conn, kind, lists, ndims)

        self._run(f"create the {kind} index", work)

    def _build_index(self, conn: psycopg.Connection[Any], kind: IndexKind, lists: int | None, ndims: int) -> None:
        sql = self._sql
        if ndims > _MAX_INDEX_DIMS:
            raise VectorStoreError(
                f"pgvector indexes vectors of up to {_MAX_INDEX_DIMS} dimensions and this store holds "
                f"{ndims}; search without an index (exact) or embed with fewer dimensions"
            )
        if kind == "hnsw":
            m, ef_construction = self._hnsw
            options = sql.SQL("m = {}, ef_construction = {}").format(sql.Literal(m), sql.Literal(ef_construction))
        else:
            if lists is None:
                row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(self._ident("_vectors"))).fetchone()
                count = 0 if row is None else int(row[0])
                lists = max(1, count // 1000) if count <= 1_000_000 else int(math.sqrt(count))
            options = sql.SQL("lists = {}").format(sql.Literal(lists))
        conn.execute(sql.SQL("CREATE INDEX IF NOT EXISTS {name} ON {vecs} USING {kind} (embedding {opclass}) "
                             "WITH ({options})").format(
            name=sql.Identifier(f"{self._table}_vectors_{kind}"), vecs=self._ident("_vectors"),
            kind=sql.SQL(kind), opclass=sql.SQL(self._opclass), options=options))

    # --- DatabaseVectorStore hooks --------------------------------------------------------------

    @property
    def ndims(self) -> int | None:
        """Vector dimension, fixed by the first insert (by any process); None while never set."""
        if self._ndims is None and not self.closed:
            self._ndims = self._run("read the vector dimension", self._stored_ndims)
        return self._ndims

    @property
    def metric(self) -> Metric:
        return self._metric

    def _stored_values(self, vector: CheckedVector, where: str) -> Sequence[float]:
        """What is stored for a vector: unit length for cosine, else as given (within float32)."""
        if self._metric == "cosine":
            return vector.unit()
        largest = max(map(abs, vector.values))
        if largest > _FLOAT32_MAX:
            raise InvalidVectorError(f"{where}: a component of {largest:g} is beyond what pgvector's float4 holds")
        return vector.values

    def _check_stored(self, vector: CheckedVector, where: str) -> CheckedVector:
        if self._metric != "cosine":  # a unit vector always fits float4
            self._stored_values(vector, where)
        return vector

    def _write(self, rows: list[StoredRow], ndims: int) -> None:
        if ndims > _MAX_DIMS:
            raise InvalidVectorError(f"pgvector stores vectors of up to {_MAX_DIMS} dimensions, not {ndims}")
        latest = {row.id: row for row in rows}  # a repeated id: the last row wins, in the first one's place
        vectors = [
            (row.id, self._check_stored(vec, f"document {row.id!r}"))
            for row in latest.values() for vec in row.vectors
        ]
        for doc_id in latest:
            if _storable(doc_id)[1]:
                raise VectorStoreError(f"id {doc_id!r:.80} holds NUL or a lone surrogate, which PostgreSQL text "
                                       "cannot store; use another id")
        most = max(len(row.vectors) for row in latest.values())
        sql = self._sql

        def work(conn: psycopg.Connection[Any]) -> None:
            stored = self._ndims
            if stored is None:  # the first insert (here or by another process) fixes the dimension
                self._lock_tables(conn)
                stored = self._stored_ndims(conn)
                if stored is None:
                    self._create_vectors_table(conn, ndims)
                    stored = ndims
            check_ndims(ndims, stored)
            with conn.cursor() as cur:
                cur.executemany(sql.SQL(
                    "INSERT INTO {docs} (id, document, metadata, fields) VALUES (%s, %s::jsonb, %s::jsonb, %s::jsonb) "
                    "ON CONFLICT (id) DO UPDATE SET document = EXCLUDED.document, metadata = EXCLUDED.metadata, "
                    "fields = EXCLUDED.fields"
                ).format(docs=self._ident()), [
                    (row.id, row.document_json, row.metadata_json, _fields_json(row.fields)) for row in latest.values()
                ])
                cur.execute(sql.SQL("DELETE FROM {} WHERE doc_id = ANY(%s)").format(self._ident("_vectors")),
                            (list(latest),))
                with cur.copy(sql.SQL("COPY {} (doc_id, embedding) FROM STDIN (FORMAT BINARY)").format(
                        self._ident("_vectors"))) as copy:
                    for chunk in _copy_payload(vectors, ndims, self._metric == "cosine"):
                        copy.write(chunk)
                if most > self._max_vectors:
                    cur.execute(sql.SQL("UPDATE {} SET max_vectors = %s WHERE max_vectors < %s").format(
                        self._ident("_meta")), (most, most))
            if self._index_kind is not None:  # an IVFFlat index asked for before there were rows to learn from
                self._build_index(conn, self._index_kind, None, ndims)

        self._run("insert documents", work)
        self._ndims, self._index_kind = ndims, None  # only once committed
        self._max_vectors = max(self._max_vectors, most)

    def _search(
        self, query: CheckedVector, n: int, threshold: float | None, filter: Filter | None
    ) -> list[tuple[float, str, D]]:
        sql = self._sql
        values = self._stored_values(query, "query")
        params: list[Any] = [_vector_text(values)]
        candidates = sql.SQL("SELECT v.doc_id, v.embedding {op} %s::{vector} AS dist FROM {vecs} v").format(
            op=self._operator, vector=self._vector_type, vecs=self._ident("_vectors"))
        if filter is not None:
            condition, filter_params = compile_filter(filter, _leaf(sql.Identifier("f", "fields"), sql))
            candidates = sql.SQL("{} JOIN {docs} f ON f.id = v.doc_id WHERE {condition}").format(
                candidates, docs=self._ident(), condition=sql.SQL(condition))
            params += filter_params
        # The best n documents have their best vectors among the best n * max_vectors (ties kept),
        # so this is exact without an index; with one, the index produces these in order.
        # The documents are joined per candidate (LATERAL ... OFFSET 0 keeps it a primary-key lookup):
        # the planner cannot know how many rows the FETCH yields and would otherwise scan the table.
        query_sql = sql.SQL(
            "WITH c AS MATERIALIZED ({candidates} ORDER BY dist "
            "FETCH FIRST (%s * (SELECT max_vectors FROM {meta})) ROWS WITH TIES), "
            "b AS (SELECT doc_id, min(dist) AS dist FROM c GROUP BY doc_id {having}) "
            "SELECT b.doc_id, d.document, b.dist FROM b CROSS JOIN LATERAL "
            "(SELECT document, seq FROM {docs} WHERE id = b.doc_id OFFSET 0) d ORDER BY b.dist, d.seq LIMIT %s"
        ).format(candidates=candidates, meta=self._ident("_meta"), docs=self._ident(),
                 having=sql.SQL("" if threshold is None else "HAVING min(dist) <= %s"))
        params.append(n)
        if threshold is not None:
            params.append(-threshold)
        params.append(n)
        settings = self._settings(n)
        preset = self._owns_pool and settings == self._settings()  # the pool's connections hold these already

        def work(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
            if not preset:
                self._set(conn, settings, local=True)
            return conn.execute(query_sql, params).fetchall()

        rows = self._run("search", work, transaction=not preset)
        return [(-float(dist), doc_id, document) for doc_id, document, dist in rows]

    def _one(self, doing: str, query: pgsql.Composed, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        """The first row of one statement (run in its own transaction)."""
        return self._run(doing, lambda conn: conn.execute(query, params).fetchone())

    def _delete(self, ids: list[str]) -> int:
        storable = [doc_id for doc_id in ids if not _storable(doc_id)[1]]
        query = self._sql.SQL("DELETE FROM {} WHERE id = ANY(%s)").format(self._ident())
        return self._run("delete documents", lambda conn: max(conn.execute(query, (storable,)).rowcount, 0))

    def _metadata_keys(self) -> set[str]:
        query = self._sql.SQL("SELECT DISTINCT jsonb_object_keys(fields) FROM {}").format(self._ident())
        rows = self._run("list metadata keys", lambda conn: conn.execute(query).fetchall())
        return {str(key) for (key,) in rows}

    def _count(self) -> int:
        row = self._one("count documents", self._sql.SQL("SELECT count(*) FROM {}").format(self._ident()))
        return 0 if row is None else int(row[0])

    def _get(self, doc_id: str) -> tuple[D, Mapping[str, Any] | None] | None:
        if _storable(doc_id)[1]:
            return None
        row = self._one("read a document", self._sql.SQL("SELECT document, metadata FROM {} WHERE id = %s").format(
            self._ident()), (doc_id,))
        return None if row is None else (row[0], row[1])

    def _reserve_ids(self, count: int) -> int:
        row = self._one("reserve document ids", self._sql.SQL(
            "UPDATE {} SET next_auto_id = next_auto_id + %s RETURNING next_auto_id - %s"
        ).format(self._ident("_meta")), (count, count))
        assert row is not None
        return int(row[0])

    def _close(self) -> None:
        if self._owns_pool and hasattr(self, "_pool"):
            self._pool.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"ndims={self._ndims}"
        return f"PgVectorStore({self._table!r}, metric={self._metric!r}, {state})"
