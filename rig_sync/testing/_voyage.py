"""Voyage AI wire format for the fake provider (routes under ``/v1``).

Voyage's ``POST /v1/embeddings`` is OpenAI's shape (``input`` list + ``model`` ->
``data[].embedding``), so the OpenAI route serves it (honouring Voyage's ``output_dimension``);
only ``/v1/rerank`` is added here. Its scores are the cosine similarity of the fake embeddings, and
its errors (also the 404 of Voyage's unserved multimodal and contextualized embeddings) Voyage's
``{"detail": …}`` shape.
"""

from __future__ import annotations

from collections.abc import Mapping

from .._checks import is_whole
from ._conversation import body_model, word_count
from ._dialect import ApiError, Dialect, JSONDict, bearer_key, dumps
from ._routes import Call, Response, owns, route
from ._values import RecordedRequest
from ._vectors import ranked

__all__ = ["VOYAGE_DIALECT"]


def _error_body(status: int, message: str, type: str, code: str | None, param: str | None) -> JSONDict:
    return {"detail": message}


def _status_error(status: int) -> JSONDict:
    if status == 429:
        return {"detail": "You have exceeded the rate limit. Please wait and try again."}
    return {"detail": "Internal server error" if status >= 500 else "Request failed"}


def _sse_error(error: Mapping[str, object]) -> bytes:  # Voyage does not stream; kept for the Dialect
    return b"data: " + dumps({"detail": error.get("message")}) + b"\n\n"


def _unknown_model(model: str, req: RecordedRequest) -> ApiError:
    return ApiError(400, "The request body is not valid JSON, or some arguments were not specified properly. "
                         f"In particular, model {model!r} is not supported.")


VOYAGE_DIALECT = Dialect(
    name="voyage",
    extract_key=bearer_key,
    error_body=_error_body,
    status_error=_status_error,
    sse_error=_sse_error,
    unknown_model=_unknown_model,
)
owns(r"/v1/(?:multimodal|contextualized)embeddings\Z", VOYAGE_DIALECT)

@route("POST", r"/v1/rerank", dialect=VOYAGE_DIALECT)
def rerank(call: Call) -> Response:
    """Voyage ``POST /v1/rerank``: documents by similarity to the query, best first."""
    body = call.body_object()
    query, documents, top_k = body.get("query"), body.get("documents"), body.get("top_k")
    if not isinstance(query, str) or not query:
        raise ApiError(400, "query must be a non-empty string")
    if not isinstance(documents, list) or not documents or not all(isinstance(d, str) for d in documents):
        raise ApiError(400, "documents must be a non-empty list of strings")
    if top_k is not None and (not is_whole(top_k) or top_k < 1):
        raise ApiError(400, "top_k must be a positive integer")
    tokens = word_count(query) * len(documents) + sum(word_count(d) for d in documents)
    return Response.json({
        "object": "list",
        "data": [{"relevance_score": score, "index": i} for i, score in ranked(query, documents, top_k)],
        "model": body_model(body),
        "usage": {"total_tokens": tokens},
    })
