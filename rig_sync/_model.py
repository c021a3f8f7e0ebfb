"""The shared shape of every model object: a cheap view of (client, model name)."""

from __future__ import annotations

from typing import Any, TypeVar

R = TypeVar("R")


class ModelView:
    """Base of the provider model classes. Holds the client and the model name; nothing else."""

    provider: str
    model: str

    def __init__(self, client: Any, model: str) -> None:
        if not isinstance(model, str) or not model.strip():
            from .errors import InvalidRequestError

            raise InvalidRequestError(f"{client.provider}: model name must be a non-empty string, not {model!r}")
        self.client = client
        self.provider = client.provider
        self.model = model

    def _expect(self, request: object, cls: type[R]) -> R:
        """`request` if it is a `cls`; refused before sending otherwise (a str prompt passed where a
        request object belongs would fail deep in the body building, naming no argument)."""
        if not isinstance(request, cls):
            from .errors import InvalidRequestError

            raise InvalidRequestError(f"{self.provider}: expected a {cls.__name__}, got {type(request).__name__}; "
                                      f"build one with {cls.__name__}(...) or the model's request builder")
        return request

    def __repr__(self) -> str:
        return f"{type(self).__name__}(provider={self.provider!r}, model={self.model!r})"
