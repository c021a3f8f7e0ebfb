"""The fake's embeddings: deterministic, L2-normalised vectors hashed from a text's words and
trigrams (so similar texts are near), rendered as JSON or base64, and reranking by their cosine.
"""

from __future__ import annotations

import base64
import math
import re
import sys
import zlib
from array import array
from functools import lru_cache

from ._dialect import ApiError

__all__ = ["embed_text", "embedding_b64", "embedding_inputs", "embedding_json", "ranked"]

_WORD_RE = re.compile(r"\w+")
_LITTLE = sys.byteorder == "little"


@lru_cache(maxsize=8192)
def _sparse_embedding(text: str, dims: int) -> tuple[array[int], array[float]]:
    """Normalised float32 sparse vector: (indices, values), indices sorted.

    Features are hashed lower-cased words (weight 1) and character trigrams
    (weight 0.5) with a hash-derived sign, so texts sharing words and spelling
    get a high cosine similarity.
    """
    crc = zlib.crc32
    acc: dict[int, float] = {}
    words = _WORD_RE.findall(text.lower())
    for h in [crc(w.encode("utf-8")) for w in words]:
        i = h % dims
        acc[i] = acc.get(i, 0.0) + (1.0 if h & 0x80000000 else -1.0)
    joined = " ".join(words).encode("utf-8")
    for h in [crc(joined[j : j + 3], 0x5EED) for j in range(len(joined) - 2)]:
        i = h % dims
        acc[i] = acc.get(i, 0.0) + (0.5 if h & 0x80000000 else -0.5)
    nz = sorted((i, v) for i, v in acc.items() if v != 0.0)
    if not nz:
        nz = [(crc(text.encode("utf-8")) % dims, 1.0)]
    norm = math.sqrt(sum(v * v for _, v in nz))
    idx = array("i", [i for i, _ in nz])
    vals = array("f", [v / norm for _, v in nz])  # rounded to float32
    return idx, vals


def embed_text(text: str, dims: int = 1536) -> list[float]:
    """The fake embedding of ``text``: L2-normalised, float32-exact values,
    identical to what ``/v1/embeddings`` returns."""
    idx, vals = _sparse_embedding(text, dims)
    vec = [0.0] * dims
    for i, v in zip(idx, vals, strict=True):
        vec[i] = v
    return vec


_RANK_DIMS = 256  # enough for stable similarities, cheap to compute


def ranked(query: str, documents: list[str], top: int | None) -> list[tuple[int, float]]:
    """``(index, score)`` of the best ``top`` documents, best first: the cosine similarity of the
    fake embeddings, so reranking agrees with vector search over the same texts."""
    q = embed_text(query, _RANK_DIMS)
    scores = [sum(a * b for a, b in zip(q, embed_text(d, _RANK_DIMS), strict=True)) for d in documents]
    return [(i, round(scores[i], 6)) for i in sorted(range(len(documents)), key=lambda i: -scores[i])[:top]]


@lru_cache(maxsize=1024)
def embedding_json(text: str, dims: int) -> str:
    """``embed_text(text, dims)`` as JSON array text, built without the zeros' floats."""
    idx, vals = _sparse_embedding(text, dims)
    parts: list[str] = ["["]
    prev = 0  # next index to be written
    for i, v in zip(idx, vals, strict=True):
        parts.append("0.0," * (i - prev))
        parts.append(repr(v))
        parts.append(",")
        prev = i + 1
    parts.append("0.0," * (dims - prev))
    out = "".join(parts)
    return out[:-1] + "]"


@lru_cache(maxsize=1024)
def embedding_b64(text: str, dims: int) -> str:
    """``embed_text(text, dims)`` as a JSON string of little-endian float32s in base64."""
    idx, vals = _sparse_embedding(text, dims)
    arr = array("f", bytes(4 * dims))
    for i, v in zip(idx, vals, strict=True):
        arr[i] = v
    if not _LITTLE:
        arr.byteswap()
    return '"' + base64.b64encode(arr.tobytes()).decode("ascii") + '"'


def embedding_inputs(raw: object) -> list[str]:
    """OpenAI's ``input`` as texts: a string, strings, or token arrays (a 400 otherwise)."""
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, list) and raw:
        if all(isinstance(x, str) for x in raw):
            return list(raw)
        if all(isinstance(x, int) for x in raw):
            return [" ".join(str(x) for x in raw)]
        if all(isinstance(x, list) and all(isinstance(t, int) for t in x) for x in raw):
            return [" ".join(str(t) for t in x) for x in raw]
    raise ApiError(
        400,
        "'input' must be a string, an array of strings or an array of token arrays.",
        param="input",
    )

