"""The length of the fake's embedding vectors, per model: a known model's published size (the one
the rig_sync clients also know, so `embedding_model(m).ndims` agrees with the vectors before any
request), else the size of its wire format's usual model. A request's own size field wins.

Kept here, apart from the clients' tables, on purpose: a fake that read the client's table could
not catch a wrong entry in it (tests/test_fake_provider.py checks the two agree).
"""

from __future__ import annotations

__all__ = ["KNOWN_NDIMS", "DEFAULT_NDIMS", "ndims_for"]

KNOWN_NDIMS: dict[str, int] = {
    # OpenAI
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
    # Mistral (OpenAI's wire format)
    "mistral-embed": 1024,
    "codestral-embed": 1536,
    # Voyage AI (OpenAI's wire format)
    "voyage-3": 1024,
    "voyage-3-lite": 512,
    "voyage-3-large": 1024,
    "voyage-code-3": 1024,
    "voyage-2": 1024,
    # Cohere
    "embed-v4.0": 1536,
    "embed-english-v3.0": 1024,
    "embed-multilingual-v3.0": 1024,
    "embed-english-light-v3.0": 384,
    "embed-multilingual-light-v3.0": 384,
    # Gemini
    "gemini-embedding-001": 3072,
    "text-embedding-004": 768,
    "embedding-001": 768,
    # Ollama
    "nomic-embed-text": 768,
    "mxbai-embed-large": 1024,
    "all-minilm": 384,
}

# Any other model: by wire format ("openai" also serves Azure, Voyage and the OpenAI-compatible ones).
DEFAULT_NDIMS: dict[str, int] = {"openai": 1536, "cohere": 1024, "gemini": 768, "ollama": 768}


def ndims_for(model: str, wire: str = "openai") -> int:
    """The vector length the fake answers for `model` in the `wire` format when none is asked for."""
    if wire not in DEFAULT_NDIMS:
        raise ValueError(f"unknown wire format {wire!r}; one of: {', '.join(DEFAULT_NDIMS)}")
    known = KNOWN_NDIMS.get(model.removeprefix("models/"))  # Gemini's resource name
    return known if known is not None else DEFAULT_NDIMS[wire]
