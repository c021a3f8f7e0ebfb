"""Embed many documents at once: turn each into texts, embed them concurrently, keep the order.

    from rig_sync.embeddings import EmbeddingsBuilder
    pairs = EmbeddingsBuilder(model).document("a").documents(["b", "c"]).build()
    # [("a", [Embedding("a", [...])]), ("b", [...]), ("c", [...])]

What texts a document yields is decided by `to_texts`, a `functools.singledispatch` function:

- an object with an `embed()` method (the `Embed` protocol) yields what that method returns;
- `str` yields itself; a list or tuple yields the texts of each item, in order;
- a dict yields its string values, or a JSON dump when it has none;
- `completion.Document` yields its text;
- an attrs class or dataclass yields the fields marked with `metadata=EMBED`
  (`attrs.field(metadata=EMBED)`, `dataclasses.field(metadata=EMBED)`), or else its str fields.

Register other types with `@to_texts.register(MyType)`.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import attrs

from . import _json
from ._checks import whole
from .completion import Document
from .errors import InvalidRequestError, RigError

if TYPE_CHECKING:  # embeddings.py re-exports this module, so importing it here at run time would be a cycle
    from .embeddings import Embedding, EmbeddingModel

__all__ = ["EMBED", "Embed", "EmbedError", "EmbeddingsBuildError", "EmbeddingsBuilder", "to_texts"]

EMBED: Mapping[str, Any] = MappingProxyType({"rig_sync.embed": True})
"""Field metadata marking the attrs/dataclass fields whose values are embedded."""


@runtime_checkable
class Embed(Protocol):
    """A user type that knows which of its texts to embed."""

    def embed(self) -> list[str]: ...


class EmbedError(InvalidRequestError):
    """A document yields no usable text (unsupported type, empty text, `embed()` returned non-strings)."""


class EmbeddingsBuildError(RigError):
    """Some chunks failed to embed; nothing is returned, so no document is silently dropped.

    `failed` lists `(position, document, error)` for every document whose texts were in a failed chunk.
    """

    def __init__(self, failed: list[tuple[int, Any, BaseException]], total: int) -> None:
        positions = ", ".join(str(pos) for pos, _, _ in failed[:10]) + (", …" if len(failed) > 10 else "")
        first = failed[0][2]
        super().__init__(
            f"{len(failed)} of {total} documents failed to embed (positions {positions}): "
            f"{type(first).__name__}: {first}"
        )
        self.failed = failed

    @property
    def errors(self) -> list[BaseException]:
        """The distinct errors, in the order they occurred in the input."""
        seen: dict[int, BaseException] = {}
        for _, _, err in self.failed:
            seen.setdefault(id(err), err)
        return list(seen.values())


@functools.singledispatch
def to_texts(document: Any) -> list[str]:
    """The texts to embed for `document` (see the module docstring for the rules)."""
    if isinstance(document, Embed):
        texts = document.embed()
        texts = [texts] if isinstance(texts, str) else texts
        if not isinstance(texts, list | tuple) or not all(isinstance(t, str) for t in texts):
            raise EmbedError(f"{type(document).__name__}.embed() must return a list of str, not {texts!r:.80}")
        return list(texts)
    fields = _record_fields(document)
    if fields is None:
        raise EmbedError(
            f"cannot embed a {type(document).__name__}: give it an embed() method, "
            "mark attrs/dataclass fields with metadata=EMBED, or register it with to_texts.register"
        )
    marked = [value for value, meta in fields if meta.get("rig_sync.embed")]
    if marked:
        return [text for value in marked for text in to_texts(value)]
    return [value for value, _ in fields if isinstance(value, str)]


def _record_fields(obj: Any) -> list[tuple[Any, Mapping[str, Any]]] | None:
    """(value, metadata) per field of an attrs instance or dataclass instance, else None."""
    cls = type(obj)
    if attrs.has(cls):
        return [(getattr(obj, f.name), f.metadata) for f in attrs.fields(cls)]
    if dataclasses.is_dataclass(obj):
        return [(getattr(obj, f.name), f.metadata) for f in dataclasses.fields(obj)]
    return None


@to_texts.register
def _(document: str) -> list[str]:
    return [document]


@to_texts.register(list)
@to_texts.register(tuple)
def _(document: list[Any] | tuple[Any, ...]) -> list[str]:
    return [text for item in document for text in to_texts(item)]


@to_texts.register(dict)
def _(document: dict[Any, Any]) -> list[str]:
    strings = [value for value in document.values() if isinstance(value, str)]
    return strings or [_json.dumps(document).decode("utf-8")]


@to_texts.register
def _(document: Document) -> list[str]:
    return [document.text]


class EmbeddingsBuilder:
    """Collects documents, then embeds all their texts in `max_documents`-sized chunks on a thread pool.

    `build()` returns `[(document, [Embedding, …])]` in the order the documents were added.
    """

    def __init__(self, model: EmbeddingModel, *, max_workers: int = 4) -> None:
        whole(max_workers, "max_workers", minimum=1)
        self.model = model
        self.max_workers = max_workers
        self._documents: list[tuple[Any, list[str]]] = []

    def document(self, document: Any) -> EmbeddingsBuilder:
        """Add one document; its texts are worked out now, so a bad document fails here, not in `build`."""
        texts = to_texts(document)
        if not texts:
            raise EmbedError(f"document {len(self._documents)} ({type(document).__name__}) yields no text to embed")
        for text in texts:
            if not isinstance(text, str) or not text:
                raise EmbedError(f"document {len(self._documents)} yields an empty or non-str text: {text!r:.80}")
        self._documents.append((document, texts))
        return self

    def documents(self, documents: Iterable[Any]) -> EmbeddingsBuilder:
        """Add several documents, in order."""
        for document in documents:
            self.document(document)
        return self

    def __len__(self) -> int:
        return len(self._documents)

    def build(self) -> list[tuple[Any, list[Embedding]]]:
        """Embed every text; raise `EmbeddingsBuildError` naming the documents whose chunk failed."""
        # One flat list of (document position, text); chunk boundaries may split a document's texts.
        flat = [(pos, text) for pos, (_, texts) in enumerate(self._documents) for text in texts]
        if not flat:
            return []
        size = max(1, int(self.model.max_documents))
        chunks = [flat[start:start + size] for start in range(0, len(flat), size)]
        workers = min(self.max_workers, len(chunks))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rig-embed") as pool:
            futures = [pool.submit(self._embed_chunk, [text for _, text in chunk]) for chunk in chunks]
        results: list[list[Embedding]] = [[] for _ in self._documents]
        failed: dict[int, BaseException] = {}
        for chunk, future in zip(chunks, futures, strict=True):
            error = future.exception()
            if error is not None:
                for pos, _ in chunk:
                    failed.setdefault(pos, error)
                continue
            for (pos, _), embedding in zip(chunk, future.result(), strict=True):
                results[pos].append(embedding)
        if failed:
            raise EmbeddingsBuildError(
                [(pos, self._documents[pos][0], err) for pos, err in sorted(failed.items())], len(self._documents)
            ) from next(iter(failed.values()))
        return [(document, embeddings) for (document, _), embeddings in zip(self._documents, results, strict=True)]

    def _embed_chunk(self, texts: list[str]) -> list[Embedding]:
        embeddings = self.model.embed_texts(texts)
        if len(embeddings) != len(texts):
            raise RigError(f"embedding model returned {len(embeddings)} embeddings for {len(texts)} texts")
        return embeddings
