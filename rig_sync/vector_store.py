"""Vector stores: the `VectorStoreIndex` protocol, search requests with metadata filters, and an in-memory store.

    store = InMemoryVectorStore.from_documents(EmbeddingsBuilder(model).documents(texts).build())
    index = store.index(model)
    index.top_n("query", 3)                                   # [(score, id, document)], best first
    index.search(VectorSearchRequest("query", 5, threshold=0.3,
                                     filter=Filter.eq("lang", "en") & Filter.gt("year", 2020)))
    store.save("store.jsonl"); store = InMemoryVectorStore.load("store.jsonl")

Scores are cosine similarities; a document with several vectors scores its best one. numpy is used
when installed (the `numpy` extra); the pure-Python path gives the same ranking.

The checks every store shares (`parse_row`, `check_vector`, `check_search_args`, `value_kind`,
`check_ids`, `common_ndims`, `check_ndims`, `chunks`), the `Closable` lifecycle and the
query-embedding `EmbeddingIndex` are public here so the database stores in
`rig_sync.vector_stores` reuse them.
"""

from __future__ import annotations

import heapq
import importlib
import math
import numbers
import os
import tempfile
import threading
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from operator import mul
from types import TracebackType
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

import attrs
import cattrs

from . import _json
from ._checks import whole
from .embeddings import Embedding, EmbeddingModel
from .errors import InvalidRequestError, InvalidTypeError, RigError

__all__ = [
    "USE_NUMPY",
    "VectorStoreError",
    "FilterError",
    "InvalidVectorError",
    "DimensionMismatchError",
    "StoreClosedError",
    "StoreUnavailableError",
    "Filter",
    "VectorSearchRequest",
    "VectorStoreIndex",
    "InMemoryVectorStore",
    "InMemoryVectorIndex",
    "EmbeddingIndex",
    "VectorSearcher",
    "filterable_keys",
    "filter_keys",
    "check_filter_keys",
]

try:  # imported by name so type checking works with or without the optional extra
    _np: Any = importlib.import_module("numpy")
except ImportError:  # pragma: no cover - depends on the optional extra
    _np = None

USE_NUMPY: bool = _np is not None
"""Score with numpy when True (the default when numpy is installed); set False to force pure Python."""

D = TypeVar("D")

# A document's vectors: one Embedding, one vector, or several of either.
Vectors = Embedding | Sequence[float] | Sequence[Embedding | Sequence[float]]


class VectorStoreError(RigError):
    """A vector store operation failed (bad file, unserialisable document, …)."""


class FilterError(VectorStoreError, ValueError):
    """A search filter is malformed: unknown operator, missing key, or a value of the wrong type."""


class InvalidVectorError(VectorStoreError, ValueError):
    """A vector is empty, zero, not numeric, or contains NaN/infinity."""


class DimensionMismatchError(InvalidVectorError):
    """A vector's length differs from the store's (or the embedding model's) dimension."""


class StoreClosedError(VectorStoreError):
    """The store was closed; open it again to use it."""


class StoreUnavailableError(VectorStoreError):
    """A store cannot open: an optional package or database extension is missing, or the database
    cannot be reached. The message names the fix (usually a `pip install 'rig-sync[...]'`)."""


# --- filters ------------------------------------------------------------------------------------

_LEAF_OPS = ("eq", "gt", "lt")
_BRANCH_OPS = ("and", "or")


def value_kind(value: Any) -> str:
    """The comparison family of a value ("bool", "number", "str", "none" or "other"); values of
    different families never match."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, numbers.Real):
        return "number"
    if isinstance(value, str):
        return "str"
    return "none" if value is None else "other"


def filterable_keys(fields: Mapping[Any, Any]) -> set[str]:
    """The keys of `fields` a filter can match: string keys whose value is a string, a number
    (not NaN), a bool or null."""
    return {key for key, value in fields.items() if isinstance(key, str) and value_kind(value) != "other"
            and not (isinstance(value, float) and math.isnan(value))}


def check_filter_keys(condition: Filter, known: Iterable[str], documents: int) -> None:
    """Refuse a filter on a key that no document of a store holding `documents` has (with a value a
    filter can match), naming the keys there are: most likely a misspelt key, which would
    otherwise silently match nothing. A key some documents lack is fine (they do not match)."""
    missing = sorted(filter_keys(condition) - set(known))
    if missing and documents:
        there = sorted(set(known))
        shown = ", ".join(map(repr, there[:20])) + (" …" if len(there) > 20 else "") if there else "none"
        raise FilterError(f"no document in the store has the metadata key {', '.join(map(repr, missing))} (with a "
                          f"string, number, bool or null value); the keys there are: {shown}. Check the spelling, "
                          "or insert documents with that key first")


def filter_keys(condition: Filter) -> set[str]:
    """The metadata keys a filter reads (walked without recursion: filters may nest deep)."""
    keys: set[str] = set()
    stack = [condition]
    while stack:
        node = stack.pop()
        if node.op in _BRANCH_OPS:
            stack.extend(node.terms())
        elif node.key is not None:
            keys.add(node.key)
    return keys


@attrs.frozen
class Filter:
    """A predicate over document metadata: `eq`, `gt`, `lt` on one key, combined with `and` / `or`.

    Build with `Filter.eq("lang", "en") & Filter.gt("year", 2020)`, `Filter.or_(a, b)`, or from a
    JSON-style dict with `Filter.parse({"and": [{"eq": {"lang": "en"}}, {"gt": {"year": 2020}}]})`.
    A missing key, or a value of another type (`"2021"` vs `2020`), does not match; a key that no
    document of a store has at all (most likely misspelt) is refused with `FilterError` when searched.
    """

    op: str
    key: str | None = None
    value: Any = None
    children: tuple[Filter, ...] = ()
    _terms: tuple[Filter, ...] | None = attrs.field(default=None, init=False, eq=False, hash=False, repr=False)

    def __attrs_post_init__(self) -> None:
        if self.op in _BRANCH_OPS:
            if self.key is not None or not self.children:
                raise FilterError(f"{self.op!r} takes one or more filters and no key")
            for child in self.children:
                if not isinstance(child, Filter):
                    raise FilterError(f"{self.op!r} combines Filter objects, not {type(child).__name__}")
            return
        if self.op not in _LEAF_OPS:
            raise FilterError(f"unknown filter operator {self.op!r}; expected one of {_LEAF_OPS + _BRANCH_OPS}")
        if not isinstance(self.key, str) or not self.key:
            raise FilterError(f"{self.op!r} needs a non-empty string key, not {self.key!r}")
        if self.children:
            raise FilterError(f"{self.op!r} compares one key and takes no sub-filters")
        kind = value_kind(self.value)
        allowed = ("str", "number", "bool", "none") if self.op == "eq" else ("str", "number")
        if kind not in allowed or (kind == "number" and self.value != self.value):  # NaN (10**400 is fine)
            raise FilterError(
                f"{self.op!r} on {self.key!r} needs a {' / '.join(allowed)} value, not {type(self.value).__name__}"
            )

    @classmethod
    def eq(cls, key: str, value: Any) -> Filter:
        return cls("eq", key, value)

    @classmethod
    def gt(cls, key: str, value: Any) -> Filter:
        return cls("gt", key, value)

    @classmethod
    def lt(cls, key: str, value: Any) -> Filter:
        return cls("lt", key, value)

    @classmethod
    def and_(cls, *filters: Filter) -> Filter:
        return cls("and", children=tuple(filters))

    @classmethod
    def or_(cls, *filters: Filter) -> Filter:
        return cls("or", children=tuple(filters))

    def __and__(self, other: Filter) -> Filter:
        return Filter.and_(self, other) if isinstance(other, Filter) else NotImplemented

    def __or__(self, other: Filter) -> Filter:
        return Filter.or_(self, other) if isinstance(other, Filter) else NotImplemented

    @classmethod
    def parse(cls, spec: Any) -> Filter:
        """A filter from `{"eq": {"key": value}}`, `{"and": [spec, …]}` or `{"or": [spec, …]}`."""
        if isinstance(spec, Filter):
            return spec
        if not isinstance(spec, Mapping) or len(spec) != 1:
            raise FilterError(f"a filter spec is a one-key dict like {{'eq': {{'lang': 'en'}}}}, not {spec!r:.80}")
        [(op, arg)] = spec.items()
        if op in _BRANCH_OPS:
            if not isinstance(arg, list | tuple):
                raise FilterError(f"{op!r} takes a list of filter specs, not {type(arg).__name__}")
            return cls(op, children=tuple(cls.parse(item) for item in arg))
        if not isinstance(arg, Mapping) or len(arg) != 1:
            raise FilterError(f"{op!r} takes a one-key dict {{key: value}}, not {arg!r:.80}")
        [(key, value)] = arg.items()
        return cls(op, key, value)

    def terms(self) -> tuple[Filter, ...]:
        """An and / or filter's operands with same-operator descendants spliced in, so that
        `a | b | c | ...` joined one term at a time is one flat `or` however long (a leaf: ())."""
        if self._terms is None:
            flat: list[Filter] = []
            stack = list(reversed(self.children))
            while stack:
                child = stack.pop()
                if child.op == self.op:
                    stack.extend(reversed(child.children))
                else:
                    flat.append(child)
            object.__setattr__(self, "_terms", tuple(flat))  # computed once; the filter is immutable
        assert self._terms is not None
        return self._terms

    def matches(self, metadata: Mapping[str, Any]) -> bool:
        """Whether `metadata` satisfies this filter."""
        if self.op == "and":
            return all(child.matches(metadata) for child in self.terms())
        if self.op == "or":
            return any(child.matches(metadata) for child in self.terms())
        if self.key is None or self.key not in metadata:
            return False
        actual = metadata[self.key]
        if value_kind(actual) != value_kind(self.value):
            return False
        if self.op == "eq":
            return bool(actual == self.value)
        return bool(actual > self.value) if self.op == "gt" else bool(actual < self.value)


# --- requests and the index protocol ------------------------------------------------------------


def _check_samples(_: Any, __: Any, value: Any) -> None:
    whole(value, "samples", minimum=1)


def _check_threshold(_: Any, __: Any, value: Any) -> None:
    if value is None:
        return
    try:
        finite = value_kind(value) == "number" and math.isfinite(value)
    except OverflowError:  # an int past a float's range (10**400): no score reaches it
        finite = False
    if not finite:
        raise InvalidRequestError(f"threshold must be a finite number a float can hold, or None, not {value!r:.60}")


def _check_filter(_: Any, __: Any, value: Any) -> None:
    if value is not None and not isinstance(value, Filter):
        raise FilterError(f"filter must be a Filter (see Filter.parse for dicts), not {type(value).__name__}")


def _check_query(_: Any, __: Any, value: Any) -> None:
    if not isinstance(value, str) or not value:
        raise InvalidRequestError(f"query must be a non-empty string, not {value!r:.80}")


def check_search_args(n: Any, threshold: Any, filter: Any) -> None:
    """The checks `VectorSearchRequest` makes, for callers searching with a vector."""
    for check, value in ((_check_samples, n), (_check_threshold, threshold), (_check_filter, filter)):
        check(None, None, value)


@attrs.frozen
class VectorSearchRequest:
    """The `samples` best matches for `query` scoring at least `threshold` whose metadata passes `filter`."""

    query: str = attrs.field(validator=_check_query)
    samples: int = attrs.field(validator=_check_samples)
    threshold: float | None = attrs.field(default=None, validator=_check_threshold)
    filter: Filter | None = attrs.field(default=None, validator=_check_filter)


@runtime_checkable
class VectorStoreIndex(Protocol):
    """What agents (`dynamic_context`) and pipelines (`lookup`) need of a searchable store."""

    def top_n(self, query: str, n: int) -> list[tuple[float, str, Any]]:
        """The `n` documents nearest `query`: `(score, id, document)`, best first."""
        ...

    def top_n_ids(self, query: str, n: int) -> list[tuple[float, str]]:
        """As `top_n`, without the documents."""
        ...

    def search(self, request: VectorSearchRequest) -> list[tuple[float, str, Any]]:
        """As `top_n`, honouring the request's threshold and filter."""
        ...


# --- vectors ------------------------------------------------------------------------------------


@attrs.frozen
class CheckedVector:
    """A stored vector and its L2 norm (kept as given, so save/load round-trips exactly)."""

    values: array[float]
    norm: float

    def unit(self) -> array[float]:
        """The vector scaled to length 1 (cosine similarity is then a dot product); every component
        lies in [-1, 1], so it fits a float32 column even when the raw values would not."""
        norm = self.norm
        return array("d", (v / norm for v in self.values))


def check_vector(raw: Any, where: str) -> CheckedVector:
    """A vector (a sequence of numbers or an `Embedding`) checked: not empty, finite, not zero."""
    if isinstance(raw, Embedding):
        raw = raw.vec
    try:
        values = array("d", raw)
    except (TypeError, ValueError):
        raise InvalidVectorError(f"{where}: a vector is a sequence of numbers, not {type(raw).__name__}") from None
    if not values:
        raise InvalidVectorError(f"{where}: vector is empty")
    norm = math.hypot(*values)
    if not math.isfinite(norm):
        raise InvalidVectorError(f"{where}: vector contains NaN or infinity")
    if norm == 0.0:
        raise InvalidVectorError(f"{where}: zero vector has no direction (cosine similarity is undefined)")
    return CheckedVector(values, norm)


def check_vectors(value: Any, where: str) -> tuple[CheckedVector, ...]:
    """A document's vectors from one Embedding / vector or a sequence of them."""
    if isinstance(value, Embedding):
        return (check_vector(value, where),)
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise InvalidVectorError(
            f"{where}: expected a vector, an Embedding, or a list of them, not {type(value).__name__}"
        )
    items = list(value)
    if not items:
        raise InvalidVectorError(f"{where}: no vectors")
    if isinstance(items[0], numbers.Real):
        return (check_vector(items, where),)
    return tuple(check_vector(item, f"{where}, vector {i}") for i, item in enumerate(items))


@attrs.frozen
class Entry(Generic[D]):
    """One parsed row: the document, its vectors and the metadata given with it (or None)."""

    document: D
    vecs: tuple[CheckedVector, ...]
    metadata: Mapping[str, Any] | None

    @property
    def filtered_fields(self) -> Mapping[str, Any]:
        """What filters read: the metadata, else a dict document itself, else nothing."""
        if self.metadata is not None:
            return self.metadata
        return self.document if isinstance(self.document, Mapping) else {}


def parse_row(row: Any, position: int) -> tuple[str, Entry[Any]]:
    """`(id, document, vectors)` or `(id, document, vectors, metadata)` → (id, entry)."""
    if not isinstance(row, tuple | list) or len(row) not in (3, 4):
        raise InvalidTypeError(f"row {position}: expected (id, document, vectors[, metadata]), not {row!r:.80}")
    doc_id, document, vectors = row[0], row[1], row[2]
    metadata = row[3] if len(row) == 4 else None
    if isinstance(doc_id, int) and not isinstance(doc_id, bool):
        doc_id = str(doc_id)
    if not isinstance(doc_id, str):
        raise InvalidTypeError(f"row {position}: id must be a str or int, not {type(doc_id).__name__}")
    if metadata is not None and not isinstance(metadata, Mapping):
        raise InvalidTypeError(
            f"row {position} ({doc_id!r}): metadata must be a mapping, not {type(metadata).__name__}"
        )
    vecs = check_vectors(vectors, f"document {doc_id!r}")
    return doc_id, Entry(document, vecs, None if metadata is None else dict(metadata))


# --- search -------------------------------------------------------------------------------------


class _Snapshot:
    """An immutable view of the store for readers; the numpy matrix is built on first use."""

    def __init__(self, entries: Mapping[str, Entry[Any]], ndims: int | None) -> None:
        self.ids = list(entries)
        self.entries = list(entries.values())
        self.ndims = ndims
        self._lock = threading.Lock()
        self._numpy: tuple[Any, Any, Any] | None = None
        self._keys: frozenset[str] | None = None

    @property
    def keys(self) -> frozenset[str]:
        """Every key a filter can match in some document (gathered on the first filtered search)."""
        if self._keys is None:
            self._keys = frozenset(k for e in self.entries for k in filterable_keys(e.filtered_fields))
        return self._keys

    def metadata(self, position: int) -> Mapping[str, Any]:
        return self.entries[position].filtered_fields

    def _matrix(self) -> tuple[Any, Any, Any]:
        """(rows-by-ndims matrix, row norms, first row of each document or None when one row each)."""
        with self._lock:
            if self._numpy is None:
                vecs = [vec for entry in self.entries for vec in entry.vecs]
                matrix = _np.frombuffer(b"".join(vec.values for vec in vecs), dtype=_np.float64)
                norms = _np.fromiter((vec.norm for vec in vecs), dtype=_np.float64, count=len(vecs))
                starts = None
                if len(vecs) != len(self.entries):
                    starts = _np.cumsum([0] + [len(entry.vecs) for entry in self.entries[:-1]])
                self._numpy = (matrix.reshape(len(vecs), -1), norms, starts)
            return self._numpy

    def top(
        self, query: CheckedVector, n: int, threshold: float | None, keep: Filter | None
    ) -> list[tuple[float, int]]:
        """(score, position) of the best `n` documents, best first; ties go to the earlier insert."""
        if not self.entries:
            return []
        if self.ndims is not None and len(query.values) != self.ndims:
            raise DimensionMismatchError(f"query vector has {len(query.values)} dimensions, the store {self.ndims}")
        try:
            allowed = None if keep is None else [i for i in range(len(self.entries)) if keep.matches(self.metadata(i))]
        except RecursionError:
            raise FilterError("the filter is nested too deep; combine its terms in fewer levels") from None
        if USE_NUMPY and _np is not None:
            return self._top_numpy(query, n, threshold, allowed)
        return self._top_pure(query, n, threshold, allowed)

    def _top_pure(
        self, query: CheckedVector, n: int, threshold: float | None, allowed: list[int] | None
    ) -> list[tuple[float, int]]:
        q = query.values

        def score(i: int) -> float:
            best: float = max(sum(map(mul, vec.values, q)) / vec.norm for vec in self.entries[i].vecs)
            return best / query.norm

        scored: Iterable[tuple[float, int]] = (
            (score(i), i) for i in (range(len(self.entries)) if allowed is None else allowed)
        )
        if threshold is not None:
            scored = (pair for pair in scored if pair[0] >= threshold)
        return heapq.nlargest(n, scored, key=lambda pair: (pair[0], -pair[1]))

    def _top_numpy(
        self, query: CheckedVector, n: int, threshold: float | None, allowed: list[int] | None
    ) -> list[tuple[float, int]]:
        np = _np
        matrix, norms, starts = self._matrix()
        scores = (matrix @ np.frombuffer(query.values, dtype=np.float64)) / norms / query.norm
        if starts is not None:
            scores = np.maximum.reduceat(scores, starts)
        positions = np.arange(len(scores)) if allowed is None else np.asarray(allowed, dtype=np.intp)
        scores = scores[positions]
        if threshold is not None:
            kept = scores >= threshold
            positions, scores = positions[kept], scores[kept]
        if len(scores) > n:
            # Partial selection finds the n-th best score; keep everything tying it so the final
            # order (score desc, position asc) matches the pure path exactly.
            cutoff = scores[np.argpartition(-scores, n - 1)[n - 1]]
            kept = scores >= cutoff
            positions, scores = positions[kept], scores[kept]
        order = np.lexsort((positions, -scores))[:n]
        return [(float(scores[o]), int(positions[o])) for o in order]


def common_ndims(vectors: Iterable[CheckedVector]) -> int:
    """The one dimension of `vectors` (at least one); `DimensionMismatchError` if they differ."""
    dims = {len(vec.values) for vec in vectors}
    if len(dims) > 1:
        raise DimensionMismatchError(f"vectors in one insert have different dimensions: {sorted(dims)}")
    [ndims] = dims
    return ndims


def check_ndims(found: int, stored: int | None) -> None:
    """`DimensionMismatchError` naming both dimensions unless `found` fits a store holding `stored`."""
    if stored is not None and found != stored:
        raise DimensionMismatchError(
            f"vectors have {found} dimensions, the store holds {stored}; embed with the model the store "
            "was built with, or use another store"
        )


T = TypeVar("T")


def chunks(items: Iterable[T], size: int | None) -> Iterator[list[T]]:
    """`items` in lists of `size`, read lazily (all in one list when `size` is None; none if empty)."""
    if size is not None:
        whole(size, "batch_size", minimum=1)
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def check_rows(rows: Any) -> Iterable[Any]:
    """`rows` if it can be rows to insert: an iterable, but not a string, bytes or a single dict."""
    if isinstance(rows, str | bytes | Mapping) or not isinstance(rows, Iterable):
        raise InvalidTypeError(
            f"rows must be an iterable of (id, document, vectors[, metadata]), not {type(rows).__name__}"
        )
    return rows


def check_ids(ids: Any) -> list[str]:
    """Document ids for `delete`: one id or an iterable of them, each a str or an int (as inserted)."""
    if isinstance(ids, str) or (isinstance(ids, int) and not isinstance(ids, bool)):
        ids = [ids]
    if isinstance(ids, bytes | Mapping) or not isinstance(ids, Iterable):
        raise InvalidTypeError(f"ids must be an id or an iterable of ids (str or int), not {type(ids).__name__}")
    checked: list[str] = []
    for doc_id in ids:
        if isinstance(doc_id, int) and not isinstance(doc_id, bool):
            doc_id = str(doc_id)
        if not isinstance(doc_id, str):
            raise InvalidTypeError(f"a document id is a str or an int, not {type(doc_id).__name__}")
        checked.append(doc_id)
    return checked


def document_pairs(documents: Iterable[Any]) -> list[tuple[Any, Any]]:
    """`(document, vectors)` pairs from `EmbeddingsBuilder.build()` output or from `Embedding`s
    (`batch.embed_texts` output), where each text is its own document."""
    if isinstance(documents, str | bytes | Mapping) or not isinstance(documents, Iterable):
        raise InvalidTypeError(
            f"documents must be an iterable of (document, vectors) pairs, not {type(documents).__name__}"
        )
    pairs: list[tuple[Any, Any]] = []
    for position, item in enumerate(documents):
        if isinstance(item, Embedding):
            pairs.append((item.document, item))
        elif isinstance(item, tuple | list) and len(item) == 2:
            pairs.append((item[0], item[1]))
        else:
            raise InvalidTypeError(
                f"document {position}: expected (document, vectors) or an Embedding, not {item!r:.80}"
            )
    return pairs


_C = TypeVar("_C", bound="Closable")


class Closable:
    """`close()`, `with store:` and the check each operation makes first: a closed store raises
    `StoreClosedError` (a `VectorStoreError`) instead of answering from released resources."""

    _closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def check_open(self) -> None:
        """Raise `VectorStoreError` if the store is closed."""
        if self._closed:
            raise StoreClosedError(f"{type(self).__name__} is closed; open the store again to use it")

    def close(self) -> None:
        """Release the store; later calls raise `VectorStoreError`. Closing twice is harmless."""
        self._closed = True

    def __enter__(self: _C) -> _C:
        self.check_open()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


# --- the store ----------------------------------------------------------------------------------

_FORMAT = "rig_sync.InMemoryVectorStore"
_converter = cattrs.Converter()
_LOAD_ERRORS: tuple[type[Exception], ...] = (*_json.JSONDecodeError, KeyError, TypeError, cattrs.BaseValidationError)


class InMemoryVectorStore(Closable, Generic[D]):
    """Documents with one or more vectors each (and optional metadata), searched by cosine similarity.

    Writers take a lock; readers search an immutable snapshot, so queries from many threads run
    safely while another thread inserts. Inserting an existing id replaces that document (in its
    place: ties keep insertion order). `close()` drops the documents; later calls raise.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, Entry[D]] = {}
        self._ndims: int | None = None
        self._snapshot: _Snapshot | None = None
        self._auto_id = 0

    # construction

    @classmethod
    def from_documents(
        cls, documents: Iterable[tuple[D, Vectors]], *, id_fn: Callable[[D], str] | None = None
    ) -> InMemoryVectorStore[D]:
        """A store of `(document, vectors)` pairs (what `EmbeddingsBuilder.build()` returns).

        Ids come from `id_fn(document)`, or are `doc0`, `doc1`, … in order.
        """
        store: InMemoryVectorStore[D] = cls()
        store.add_documents(documents, id_fn=id_fn)
        return store

    @classmethod
    def from_documents_with_ids(cls, rows: Iterable[Sequence[Any]]) -> InMemoryVectorStore[D]:
        """A store of `(id, document, vectors[, metadata])` rows."""
        store: InMemoryVectorStore[D] = cls()
        store.insert_documents(rows)
        return store

    def add_documents(
        self, documents: Iterable[tuple[D, Vectors] | Embedding], *, id_fn: Callable[[D], str] | None = None
    ) -> None:
        """Insert `(document, vectors)` pairs (`EmbeddingsBuilder.build()` output) or `Embedding`s
        (`batch.embed_texts` output: the text is the document) under `id_fn(document)` or
        generated ids `doc<n>`."""
        self.check_open()
        pairs = document_pairs(documents)
        if id_fn is not None:
            self.insert_documents([(id_fn(doc), doc, vecs) for doc, vecs in pairs])
            return
        with self._lock:  # reserve the ids so concurrent add_documents calls never collide
            first, self._auto_id = self._auto_id, self._auto_id + len(pairs)
        self.insert_documents([(f"doc{first + i}", doc, vecs) for i, (doc, vecs) in enumerate(pairs)])

    def insert_documents(self, rows: Iterable[Sequence[Any]], *, batch_size: int | None = None) -> None:
        """Insert `(id, document, vectors)` or `(id, document, vectors, metadata)` rows, all or none.

        `vectors` is one vector / `Embedding` or a list of them. Without metadata, a dict document
        is its own metadata for filters. With `batch_size`, rows are read lazily and applied that
        many at a time (as the database stores commit them): a bad row keeps the batches before it.
        """
        self.check_open()
        for batch in chunks((parse_row(row, i) for i, row in enumerate(check_rows(rows))), batch_size):
            ndims = common_ndims(vec for _, entry in batch for vec in entry.vecs)
            with self._lock:
                self.check_open()
                check_ndims(ndims, self._ndims)
                self._ndims = ndims
                self._entries.update(batch)
                self._snapshot = None

    add_documents_with_ids = insert_documents

    def delete(self, ids: str | int | Iterable[str | int]) -> int:
        """Remove the documents with these ids (missing ids are ignored); returns how many went."""
        doc_ids = check_ids(ids)
        with self._lock:
            self.check_open()
            removed = sum(self._entries.pop(doc_id, None) is not None for doc_id in doc_ids)
            if removed:
                self._snapshot = None
            return removed

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._entries, self._snapshot = {}, None

    # reading

    def _snap(self) -> _Snapshot:
        with self._lock:
            self.check_open()
            if self._snapshot is None:
                self._snapshot = _Snapshot(self._entries, self._ndims)
            return self._snapshot

    @property
    def ndims(self) -> int | None:
        """Vector dimension, fixed by the first insert."""
        return self._ndims

    def __len__(self) -> int:
        with self._lock:
            self.check_open()
            return len(self._entries)

    def __contains__(self, doc_id: object) -> bool:
        with self._lock:
            self.check_open()
            return doc_id in self._entries

    def __repr__(self) -> str:
        if self._closed:
            return "InMemoryVectorStore(closed)"
        return f"InMemoryVectorStore({len(self)} documents, ndims={self._ndims})"

    def _entry(self, doc_id: str) -> Entry[D] | None:
        with self._lock:  # a reader never sees half of a batch insert
            self.check_open()
            return self._entries.get(doc_id)

    def get_document(self, doc_id: str) -> D | None:
        """The document stored under `doc_id`, or None."""
        entry = self._entry(doc_id)
        return None if entry is None else entry.document

    def get_metadata(self, doc_id: str) -> Mapping[str, Any] | None:
        """The metadata given for `doc_id`, or None."""
        entry = self._entry(doc_id)
        return None if entry is None else entry.metadata

    # pickling (process pools, Dask): everything but the lock and the cached snapshot

    def __getstate__(self) -> dict[str, Any]:
        with self._lock:
            self.check_open()
            return {"entries": dict(self._entries), "ndims": self._ndims, "auto_id": self._auto_id}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()  # type: ignore[misc]
        self._entries, self._ndims, self._auto_id = state["entries"], state["ndims"], state["auto_id"]

    def search_vector(
        self, vector: Sequence[float] | Embedding, n: int, *, threshold: float | None = None,
        filter: Filter | None = None,
    ) -> list[tuple[float, str, D]]:
        """The `n` documents nearest an already-embedded query: `(score, id, document)`, best first."""
        check_search_args(n, threshold, filter)
        snap = self._snap()
        if filter is not None:
            check_filter_keys(filter, snap.keys, len(snap.entries))
        hits = snap.top(check_vector(vector, "query"), n, threshold, filter)
        return [(score, snap.ids[pos], snap.entries[pos].document) for score, pos in hits]

    def index(self, model: EmbeddingModel) -> InMemoryVectorIndex[D]:
        """A searchable index that embeds queries with `model`; it sees later inserts too."""
        self.check_open()
        return InMemoryVectorIndex(self, model)

    # persistence

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the store as JSON lines (a header, then one document per line), atomically.

        Documents must be JSON-serialisable after `cattrs.unstructure` (str, dict, attrs classes, …).
        """
        snap = self._snap()
        lines = [_json.dumps_file({"format": _FORMAT, "version": 1, "ndims": snap.ndims, "count": len(snap.ids)})]
        for doc_id, entry in zip(snap.ids, snap.entries, strict=True):
            try:
                record = {
                    "id": doc_id,
                    "document": _converter.unstructure(entry.document),
                    "vectors": [vec.values.tolist() for vec in entry.vecs],
                    "metadata": entry.metadata,
                }
                lines.append(_json.dumps_file(record))
            except RecursionError:
                raise VectorStoreError(f"document {doc_id!r} is nested too deep to save as JSON") from None
            except (TypeError, ValueError) as exc:
                raise VectorStoreError(f"document {doc_id!r} cannot be saved as JSON: {exc}") from exc
        directory = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(prefix=".rig-store-", dir=directory)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(b"\n".join(lines) + b"\n")
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise

    @classmethod
    def load(cls, path: str | os.PathLike[str], document_type: Any = None) -> InMemoryVectorStore[Any]:
        """A store read from a file written by `save`; `document_type` structures documents with cattrs.
        `VectorStoreError` for a file that is not whole: its header counts the documents that follow."""
        store: InMemoryVectorStore[Any] = cls()
        rows: list[tuple[str, Any, list[list[float]], Any]] = []
        header: dict[str, Any] | None = None
        where = os.fspath(path)
        with open(path, "rb") as infile:
            for lineno, line in enumerate(infile, 1):
                if not line.strip():
                    continue
                try:
                    record = _json.loads(line)
                    if header is None:
                        if not isinstance(record, dict) or record.get("format") != _FORMAT:
                            raise ValueError("not a rig_sync vector store file")
                        header = record
                        continue
                    document = record["document"]
                    if document_type is not None:
                        document = _converter.structure(document, document_type)
                    rows.append((record["id"], document, record["vectors"], record.get("metadata")))
                except (*_LOAD_ERRORS,) as exc:
                    raise VectorStoreError(f"{where}, line {lineno}: {type(exc).__name__}: {exc}") from exc
        if header is None:
            raise VectorStoreError(f"{where} is empty, not a rig_sync vector store file; save the store again")
        count = header.get("count")
        if count != len(rows):  # a copy or a write that stopped at a line's end leaves valid JSON behind
            how = "cut short" if isinstance(count, int) and count > len(rows) else "not as saved"
            raise VectorStoreError(f"{where} holds {len(rows)} documents but its header says {count}: the file is "
                                   f"{how}; save the store again or restore a whole copy")
        store.insert_documents(rows)
        return store


class VectorSearcher(Protocol[D]):
    """A store searched with an already-embedded query (every store in rig_sync is one)."""

    @property
    def ndims(self) -> int | None: ...

    def search_vector(
        self, vector: Sequence[float] | Embedding, n: int, *, threshold: float | None = None,
        filter: Filter | None = None,
    ) -> list[tuple[float, str, D]]: ...


class EmbeddingIndex(Generic[D]):
    """A `VectorStoreIndex` over any `VectorSearcher`: queries are embedded with the model's `embed_text`."""

    def __init__(self, store: VectorSearcher[D], model: EmbeddingModel) -> None:
        if not callable(getattr(model, "embed_text", None)):
            raise InvalidTypeError(
                f"a vector index needs an EmbeddingModel to embed queries, not {type(model).__name__}"
            )
        ndims = model.ndims
        if ndims is not None and store.ndims is not None and ndims != store.ndims:
            raise DimensionMismatchError(
                f"{model.provider}:{model.model} makes {ndims}-dimension vectors, the store holds {store.ndims}"
            )
        self.store = store
        self.model = model

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.store!r}, model={self.model.provider}:{self.model.model})"

    def search(self, request: VectorSearchRequest) -> list[tuple[float, str, D]]:
        vector = self.model.embed_text(request.query).vec
        return self.store.search_vector(vector, request.samples, threshold=request.threshold, filter=request.filter)

    def search_ids(self, request: VectorSearchRequest) -> list[tuple[float, str]]:
        return [(score, doc_id) for score, doc_id, _ in self.search(request)]

    def top_n(self, query: str, n: int) -> list[tuple[float, str, D]]:
        return self.search(VectorSearchRequest(query, n))

    def top_n_ids(self, query: str, n: int) -> list[tuple[float, str]]:
        return self.search_ids(VectorSearchRequest(query, n))


class InMemoryVectorIndex(EmbeddingIndex[D]):
    """An `InMemoryVectorStore` searched by text: queries are embedded with the model's `embed_text`."""

    store: InMemoryVectorStore[D]

    def __init__(self, store: InMemoryVectorStore[D], model: EmbeddingModel) -> None:
        super().__init__(store, model)
