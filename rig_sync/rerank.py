"""Reranking, provider-neutral: a `RerankModel` orders documents by relevance to a query.

    reranker = voyageai.Client.from_env().rerank_model("rerank-2")    # or cohere's "rerank-v3.5"
    for hit in reranker.rerank("where did the cat sit?", docs, top_k=3):
        print(hit.index, hit.relevance_score, hit.document)

Providers implement the protocol (`client.rerank_model(model)`, `client.as_rerank()`,
`DynClientBuilder().rerank("voyageai:rerank-2")`); `checked_input` and `ranked` are the checks
every implementation shares, so each refuses and decodes alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol, runtime_checkable

import attrs

from ._checks import whole
from .errors import InvalidRequestError, ResponseDecodeError

__all__ = ["RerankModel", "RerankResult", "checked_input", "ranked"]


@attrs.frozen
class RerankResult:
    """One document's place in a reranking: its index in the input, its score, the text."""

    index: int
    relevance_score: float
    document: str


@runtime_checkable
class RerankModel(Protocol):
    """A reranking model: `rerank(query, documents, top_k=None)` -> the documents, best first."""

    provider: str
    model: str

    def rerank(self, query: str, documents: Sequence[str], *, top_k: int | None = None) -> list[RerankResult]:
        """The documents ordered by relevance to `query`, best first (the `top_k` best, if given)."""
        ...


def checked_input(query: object, documents: object, top_k: object) -> list[str]:
    """The documents as a list, once the query, documents and `top_k` are known to be sendable;
    refused before any request otherwise (`InvalidRequestError`, `TypeError`, `ValueError`)."""
    if not isinstance(query, str) or not query.strip():
        raise InvalidRequestError("rerank needs a non-empty query")
    if isinstance(documents, (str, bytes)) or not isinstance(documents, Sequence):
        raise TypeError("rerank takes a list of document strings")
    texts = list(documents)
    if not texts or not all(isinstance(t, str) and t for t in texts):
        raise InvalidRequestError("rerank needs at least one document, each a non-empty string")
    if top_k is not None:
        whole(top_k, "top_k", minimum=1)
    return texts


def ranked(provider: str, texts: Sequence[str], scores: Iterable[tuple[int, float]], *, field: str,
           body: Any = None) -> list[RerankResult]:
    """`(index, score)` pairs from an answer as results, best first. An index the request did not
    send is a `ResponseDecodeError` naming `field` (the answer's own spelling, e.g. "data.index")."""
    out: list[RerankResult] = []
    for index, score in scores:
        if not 0 <= index < len(texts):
            raise ResponseDecodeError(f"{provider} ranked a document index ({index}) it was not sent",
                                      provider=provider, field=field, body=body)
        out.append(RerankResult(index, float(score), texts[index]))
    return sorted(out, key=lambda r: -r.relevance_score)
