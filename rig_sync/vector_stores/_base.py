"""What every database vector store shares, so that no store repeats it.

- `prepare_row` / `batches`: rows checked as the in-memory store checks them, then encoded once:
  the document and metadata as strict JSON, the fields filters read, the vectors (raw and unit).
- `DatabaseVectorStore`: the public surface (`insert_documents` in batches, `add_documents`,
  `search_vector`, `index`, `delete`, `len`, `get_document`, `close`, `with store:`), with the
  argument checks and the closed-store guard; a store implements the `_write`, `_search`, ...
  hooks against its database.
- `compile_filter`: walks a `Filter` tree into a parameterised SQL condition from one function
  per leaf, so each store only says how one `eq` / `gt` / `lt` reads in its dialect (and/or
  chains come flat, from `Filter.terms`).

The semantics are the in-memory store's: cosine scores (a document scores its best vector),
`threshold` keeps scores >= it, a re-inserted id replaces the document in its place, filters
match as `Filter.matches` does, and the dimension is fixed by the first insert.
"""

from __future__ import annotations

import abc
import importlib
import json
import math
import numbers
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Generic, TypeVar

import attrs

from ..embeddings import Embedding
from ..vector_store import (
    CheckedVector,
    Closable,
    DimensionMismatchError,
    EmbeddingIndex,
    Filter,
    FilterError,
    StoreUnavailableError,
    VectorStoreError,
    check_filter_keys,
    check_ids,
    check_ndims,
    check_rows,
    check_search_args,
    check_vector,
    chunks,
    common_ndims,
    document_pairs,
    filter_keys,
    parse_row,
    value_kind,
)

__all__ = [
    "FieldValue",
    "StoredRow",
    "prepare_row",
    "batches",
    "batch_ndims",
    "check_ndims",
    "encode_json",
    "decode_json",
    "compile_filter",
    "DatabaseVectorStore",
    "import_optional",
]

D = TypeVar("D")

FieldValue = str | int | float | bool | None
"""A metadata value a filter can match: the other kinds (lists, dicts, NaN) never match anything."""


def import_optional(module: str, extra: str, what: str) -> Any:
    """The optional `module`, or `StoreUnavailableError` naming `pip install 'rig-sync[extra]'`."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise StoreUnavailableError(
            f"{what} needs the {module!r} package, which is not installed ({exc}): pip install 'rig-sync[{extra}]'"
        ) from None


# --- JSON ---------------------------------------------------------------------------------------


def _plain_number(value: Any) -> int | float:
    """numpy scalars, Fractions and other numbers as the int / float JSON can hold."""
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def encode_json(value: Any, what: str) -> str:
    """`value` as strict JSON text (no NaN or infinity, which databases' JSON types refuse).

    Raises `VectorStoreError` naming `what` for anything JSON cannot hold. Tuples are written as
    lists and dict keys as strings, as `json` does."""
    options: dict[str, Any] = {"allow_nan": False, "separators": (",", ":"), "default": _plain_number}
    try:
        text = json.dumps(value, ensure_ascii=False, **options)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: keep it as its JSON escape
            text = json.dumps(value, ensure_ascii=True, **options)
    except RecursionError:
        raise VectorStoreError(f"{what} is nested too deep to store as JSON") from None
    except (TypeError, ValueError) as exc:
        raise VectorStoreError(
            f"{what} cannot be stored as JSON ({exc}); store strings, finite numbers, booleans, None, "
            "and lists / dicts of them"
        ) from None
    return text


def decode_json(text: str | bytes) -> Any:
    """A value written by `encode_json`."""
    return json.loads(text)


# --- rows ---------------------------------------------------------------------------------------


def _filter_fields(fields: Mapping[Any, Any]) -> dict[str, FieldValue]:
    """The fields a `Filter` can match. Dropping the rest changes no answer: a non-string key is
    never a filter's key, and a list, a dict or NaN matches nothing, as a missing key does."""
    kept: dict[str, FieldValue] = {}
    for key, value in fields.items():
        if not isinstance(key, str):
            continue
        kind = value_kind(value)
        if kind == "number":
            value = _plain_number(value)
            if isinstance(value, float) and math.isnan(value):  # an int past float's range is no NaN
                continue
        elif kind == "str":
            value = str(value)
        elif kind == "other":
            continue
        kept[key] = value
    return kept


@attrs.frozen
class StoredRow:
    """One checked row, encoded for a database."""

    id: str
    document: Any
    metadata: Mapping[str, Any] | None
    vectors: tuple[CheckedVector, ...]
    document_json: str
    metadata_json: str | None
    fields: Mapping[str, FieldValue]
    """What filters read (the metadata, else a dict document), reduced to values a filter can match."""
    fields_json: str

    @property
    def ndims(self) -> int:
        return len(self.vectors[0].values)

    def unit_vectors(self) -> list[list[float]]:
        """The vectors scaled to length 1: a dot product of two is their cosine similarity."""
        return [vec.unit().tolist() for vec in self.vectors]


def prepare_row(row: Any, position: int) -> StoredRow:
    """`(id, document, vectors[, metadata])` checked as `InMemoryVectorStore.insert_documents` checks
    it, with the document and metadata encoded as JSON (`VectorStoreError` if they cannot be)."""
    doc_id, entry = parse_row(row, position)
    document_json = encode_json(entry.document, f"document {doc_id!r}")
    metadata_json = None if entry.metadata is None else encode_json(entry.metadata, f"metadata of {doc_id!r}")
    fields = _filter_fields(entry.filtered_fields)
    return StoredRow(doc_id, entry.document, entry.metadata, entry.vecs, document_json, metadata_json, fields,
                     encode_json(fields, f"metadata of {doc_id!r}"))


def batches(rows: Iterable[Any], batch_size: int | None) -> Iterator[list[StoredRow]]:
    """Prepared rows in lists of `batch_size` (all of them in one list when None), read lazily."""
    return chunks((prepare_row(row, position) for position, row in enumerate(check_rows(rows))), batch_size)


def batch_ndims(batch: Sequence[StoredRow]) -> int:
    """The one dimension of every vector in `batch`; `DimensionMismatchError` if they differ."""
    return common_ndims(vec for row in batch for vec in row.vectors)


# --- filters ------------------------------------------------------------------------------------

Compiled = tuple[str, list[Any]]


def compile_filter(condition: Filter, leaf: Callable[[Filter], Compiled]) -> Compiled:
    """A `Filter` as an SQL condition and its parameters; `leaf` compiles one eq / gt / lt.

    Every value (and key) must reach the database as a parameter, never inside the SQL text."""

    def balanced(op: str, parts: list[str]) -> str:
        # (a OR b) OR (c OR d): parsers nest `a OR b OR c ...` once per term (SQLite stops at 1000)
        if len(parts) == 1:
            return parts[0]
        middle = len(parts) // 2
        return f"({balanced(op, parts[:middle])}) {op} ({balanced(op, parts[middle:])})"

    def walk(node: Filter) -> Compiled:
        if node.op not in ("and", "or"):
            return leaf(node)
        parts = [walk(child) for child in node.terms()]  # a long a | b | c | ... chain compiles flat
        sql = balanced(node.op.upper(), [part for part, _ in parts])
        return sql, [param for _, params in parts for param in params]

    if not isinstance(condition, Filter):
        raise FilterError(f"filter must be a Filter (see Filter.parse for dicts), not {type(condition).__name__}")
    try:
        return walk(condition)
    except RecursionError:
        raise FilterError("the filter is nested too deep; combine its terms in fewer levels") from None


# --- the store ----------------------------------------------------------------------------------


class DatabaseVectorStore(Closable, Generic[D], abc.ABC):
    """The public surface of a database vector store; subclasses implement the hooks.

    Hooks run only on an open store with checked arguments: `_write` stores one batch in one
    transaction (checking its dimension against the stored one there, with `check_ndims`), and
    `_search` gets a query vector of the store's dimension.
    """

    # hooks

    @property
    @abc.abstractmethod
    def ndims(self) -> int | None:
        """Vector dimension, fixed by the first insert; None while nothing was ever inserted."""

    @abc.abstractmethod
    def _write(self, rows: list[StoredRow], ndims: int) -> None:
        """Insert or replace `rows` (all of dimension `ndims`) in one transaction."""

    @abc.abstractmethod
    def _search(
        self, query: CheckedVector, n: int, threshold: float | None, filter: Filter | None
    ) -> list[tuple[float, str, D]]:
        """The best `n` `(score, id, document)`, best first; equal scores in insertion order."""

    @abc.abstractmethod
    def _delete(self, ids: list[str]) -> int:
        """Remove these ids; how many existed."""

    @abc.abstractmethod
    def _count(self) -> int:
        """How many documents the store holds."""

    @abc.abstractmethod
    def _get(self, doc_id: str) -> tuple[D, Mapping[str, Any] | None] | None:
        """The document and metadata stored under `doc_id`, or None."""

    @abc.abstractmethod
    def _reserve_ids(self, count: int) -> int:
        """The first of `count` consecutive numbers never handed out before, for ids `doc<n>`."""

    @abc.abstractmethod
    def _close(self) -> None:
        """Release connections and files (called once)."""

    def _metadata_keys(self) -> set[str] | None:
        """Every key a filter can match in some stored document (the keys of their fields), read
        from storage; None where the store cannot list them (then filters are not checked)."""
        return None

    _seen_keys: frozenset[str] = frozenset()  # keys known to be stored: written here, or read back

    # writing

    def insert_documents(self, rows: Iterable[Sequence[Any]], *, batch_size: int | None = None) -> None:
        """Insert `(id, document, vectors)` or `(id, document, vectors, metadata)` rows.

        `vectors` is one vector / `Embedding` or a list of them; documents and metadata must be
        JSON (strings, finite numbers, booleans, None, lists, dicts). Without metadata, a dict
        document is its own metadata for filters. An existing id is replaced.

        With `batch_size=None` the whole call is one transaction: all rows or none. With a number,
        rows are read lazily and each batch of that many is committed on its own, so a long
        insert that fails or is killed keeps the batches committed before it.
        """
        self.check_open()
        for batch in batches(rows, batch_size):
            ndims = batch_ndims(batch)
            self.check_open()
            self._write(batch, ndims)
            self._seen_keys = self._seen_keys.union(*(row.fields for row in batch))

    def add_documents_with_ids(self, rows: Iterable[Sequence[Any]], *, batch_size: int | None = None) -> None:
        """`insert_documents` under the in-memory store's other name."""
        self.insert_documents(rows, batch_size=batch_size)

    def add_documents(
        self, documents: Iterable[tuple[D, Any] | Embedding], *, id_fn: Callable[[D], str] | None = None,
        batch_size: int | None = None,
    ) -> None:
        """Insert `(document, vectors)` pairs (`EmbeddingsBuilder.build()` output) or `Embedding`s
        (`batch.embed_texts` output: the text is the document) under `id_fn(document)`, or under
        ids `doc<n>` numbered on from every id this store handed out before."""
        self.check_open()
        pairs = document_pairs(documents)
        if id_fn is not None:
            ids = [id_fn(document) for document, _ in pairs]
        else:
            first = self._reserve_ids(len(pairs)) if pairs else 0
            ids = [f"doc{first + i}" for i in range(len(pairs))]
        self.insert_documents(
            [(doc_id, document, vectors) for doc_id, (document, vectors) in zip(ids, pairs, strict=True)],
            batch_size=batch_size,
        )

    def delete(self, ids: str | int | Iterable[str | int]) -> int:
        """Remove the documents with these ids (missing ids are ignored); returns how many went."""
        self.check_open()
        doc_ids = list(dict.fromkeys(check_ids(ids)))
        return self._delete(doc_ids) if doc_ids else 0

    # reading

    def search_vector(
        self, vector: Sequence[float] | Embedding, n: int, *, threshold: float | None = None,
        filter: Filter | None = None,
    ) -> list[tuple[float, str, D]]:
        """The `n` documents nearest an already-embedded query: `(score, id, document)`, best first."""
        self.check_open()
        check_search_args(n, threshold, filter)
        query = check_vector(vector, "query")
        ndims = self.ndims
        if ndims is None:
            return []
        if len(query.values) != ndims:
            raise DimensionMismatchError(f"query vector has {len(query.values)} dimensions, the store {ndims}")
        if filter is not None:
            self._check_filter_keys(filter)
        return self._search(query, n, threshold, filter)

    def _check_filter_keys(self, condition: Filter) -> None:
        """`check_filter_keys` against the keys stored; storage is read only when the filter names
        a key not seen yet (another process, or an earlier run, may have written it)."""
        if filter_keys(condition) <= self._seen_keys:
            return
        stored = self._metadata_keys()
        if stored is None:
            return
        self._seen_keys = frozenset(stored)
        check_filter_keys(condition, stored, self._count())

    def index(self, model: Any) -> EmbeddingIndex[D]:
        """A `VectorStoreIndex` that embeds queries with `model` (for `dynamic_context`, pipelines)."""
        self.check_open()
        return EmbeddingIndex(self, model)

    def __len__(self) -> int:
        self.check_open()
        return self._count()

    def __contains__(self, doc_id: object) -> bool:
        self.check_open()
        return isinstance(doc_id, str) and self._get(doc_id) is not None

    def get_document(self, doc_id: str) -> D | None:
        """The document stored under `doc_id`, or None."""
        self.check_open()
        found = self._get(doc_id) if isinstance(doc_id, str) else None
        return None if found is None else found[0]

    def get_metadata(self, doc_id: str) -> Mapping[str, Any] | None:
        """The metadata given for `doc_id`, or None."""
        self.check_open()
        found = self._get(doc_id) if isinstance(doc_id, str) else None
        return None if found is None else found[1]

    def close(self) -> None:
        """Release the store's connections; later calls raise `VectorStoreError`. Closing twice is harmless."""
        if not self._closed:
            self._closed = True
            self._close()
