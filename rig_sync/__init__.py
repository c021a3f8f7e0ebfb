"""rig_sync: one synchronous interface to many LLM providers.

    from rig_sync.providers import openai
    model = openai.Client.from_env().completion_model("gpt-4o")
    print(model.completion_request("Hello").send().text)

Importing this package is cheap: submodules and providers load on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_SUBMODULES = {
    "agent", "audio_generation", "batch", "client", "completion", "embeddings", "errors", "extractor",
    "http", "image_generation", "journal", "message", "observe", "pipeline", "progress",
    "providers", "ratelimit", "sse", "streaming", "testing", "tool", "transcription", "vector_store",
}

if TYPE_CHECKING:
    from . import client, completion, embeddings, errors, message, providers, streaming  # noqa: F401


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        try:
            return importlib.import_module(f"rig_sync.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"rig_sync.{name}":
                raise  # the submodule exists but something it imports is missing: show that
    raise AttributeError(f"module 'rig_sync' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_SUBMODULES])
