"""rig_sync: one synchronous interface to many LLM providers.

    import rig_sync
    print(rig_sync.complete("openai:gpt-4o-mini", "Hello").text)   # OPENAI_API_KEY from the environment

    from rig_sync.providers import openai
    model = openai.Client().completion_model("gpt-4o")
    print(model.completion_request("Hello").send().text)

Importing this package is cheap: submodules and providers load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_SUBMODULES = {
    "agent", "audio_generation", "batch", "client", "completion", "embeddings", "errors", "extractor",
    "http", "image_generation", "journal", "message", "observe", "pipeline", "progress",
    "providers", "ratelimit", "sse", "streaming", "testing", "tool", "transcription", "vector_store",
}
_SHORTCUTS = {"complete", "stream", "embed"}  # in rig_sync._shortcuts

if TYPE_CHECKING:
    from . import client, completion, embeddings, errors, message, providers, streaming  # noqa: F401
    from ._shortcuts import complete as complete
    from ._shortcuts import embed as embed
    from ._shortcuts import stream as stream


def __getattr__(name: str) -> Any:
    import importlib

    if name in _SHORTCUTS:
        value = getattr(importlib.import_module("rig_sync._shortcuts"), name)
        globals()[name] = value  # looked up once
        return value
    if name in _SUBMODULES:
        try:
            return importlib.import_module(f"rig_sync.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"rig_sync.{name}":
                raise  # the submodule exists but something it imports is missing: show that
    raise AttributeError(f"module 'rig_sync' has no attribute {name!r}")


def __dir__() -> list[str]:
    # The public API only, not this module's own imports (annotations, TYPE_CHECKING, Any …).
    return sorted([*_SUBMODULES, *_SHORTCUTS, "__version__"])
