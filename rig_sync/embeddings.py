"""Embeddings: the `Embedding` value, the `EmbeddingModel` protocol, and the shared chunking."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import attrs

from .errors import InvalidRequestError, ResponseDecodeError

__all__ = ["Embedding", "EmbeddingModel", "BaseEmbeddingModel", "check_texts", "Embed", "EmbeddingsBuilder"]


@attrs.frozen
class Embedding:
    """A text and its vector."""

    document: str
    vec: list[float] = attrs.field(repr=lambda v: f"<{len(v)} floats>")


@runtime_checkable
class EmbeddingModel(Protocol):
    """What composition (vector stores, embeddings builders) needs of any embedding model."""

    provider: str
    model: str

    @property
    def max_documents(self) -> int: ...

    @property
    def ndims(self) -> int | None: ...

    def embed_text(self, text: str) -> Embedding: ...

    def embed_texts(self, texts: Sequence[str]) -> list[Embedding]: ...


def check_texts(texts: Sequence[str]) -> list[str]:
    """The texts as a list, or `InvalidRequestError` for an empty list or an empty/non-str item."""
    if isinstance(texts, str):
        raise TypeError("embed_texts takes a list of strings; use embed_text for one string")
    items = list(texts)
    if not items:
        raise InvalidRequestError("embed_texts needs at least one text")
    for i, text in enumerate(items):
        if not isinstance(text, str):
            raise TypeError(f"texts[{i}] is {type(text).__name__}, not str")
        if not text:
            raise InvalidRequestError(f"texts[{i}] is empty; providers reject empty inputs")
    return items


class BaseEmbeddingModel:
    """Shared half of every provider's embedding model: validation, chunking, order.

    A provider implements `_embed_chunk(texts)` returning one vector per text, in order.
    """

    provider: str
    model: str
    _max_documents: int = 1024
    _ndims: int | None = None
    _requested_ndims: int | None = None  # the size the caller asked for (sent as the provider's parameter)
    _ndims_seen = False  # an answer has shown the real size

    @property
    def max_documents(self) -> int:
        """The most texts one request may carry."""
        return self._max_documents

    @property
    def ndims(self) -> int | None:
        """Vector size, where known (None until the provider has told us)."""
        return self._ndims

    def _embed_chunk(self, texts: list[str]) -> list[list[float]]:
        raise NotImplementedError

    def embed_text(self, text: str) -> Embedding:
        return self.embed_texts([text])[0]

    def _check_sizes(self, vectors: list[list[float]]) -> None:
        """Every vector is as long as the size asked for, or else as the first answer's vectors: a
        server that ignored the size asked for, or answered vectors of mixed sizes, would corrupt an
        index. A size known only from a model table is a guess until then: the answer settles it."""
        expected = self._requested_ndims or (self._ndims if self._ndims_seen else None)
        for i, vec in enumerate(vectors):
            if expected is None:
                expected = len(vec)
            elif len(vec) != expected:
                raise ResponseDecodeError(
                    f"{self.model}: expected embedding vectors of {expected} dimensions (ndims), got {len(vec)}",
                    provider=self.provider, field=f"data[{i}].embedding")
        if expected is not None:
            self._ndims, self._ndims_seen = expected, True

    def embed_texts(self, texts: Sequence[str]) -> list[Embedding]:
        """Embeddings in input order; sent in chunks of at most `max_documents` texts."""
        items = check_texts(texts)
        out: list[Embedding] = []
        size = self.max_documents
        for start in range(0, len(items), size):
            chunk = items[start:start + size]
            vectors = self._embed_chunk(chunk)
            if len(vectors) != len(chunk):
                raise ResponseDecodeError(
                    f"asked for {len(chunk)} embeddings, got {len(vectors)}", provider=self.provider, field="data"
                )
            self._check_sizes(vectors)
            out.extend(Embedding(text, vec) for text, vec in zip(chunk, vectors, strict=True))
        return out


from .embeddings_builder import Embed, EmbeddingsBuilder  # noqa: E402
