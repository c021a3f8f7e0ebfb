"""The shared shape of every model object: a cheap view of (client, model name)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from ._common import event_completion, report_usage

if TYPE_CHECKING:
    from ..client.jobs import Prepared
    from ..completion import CompletionResponse
    from ..http import Response
    from ..observe import UsageLike
    from ..streaming import StreamChunk, StreamingCompletionResponse

R = TypeVar("R")


class ModelView:
    """Base of the provider model classes. Holds the client and the model name; nothing else.

    Its `_post`, `_send`, `_complete` and `_stream` tag every request with the model and
    capability, and `_report` (which `_complete` and `_stream` call) hands an answer's tokens on,
    so that every provider feeds `rig_sync.observe` and the client's rate limiter the same way.
    """

    provider: str
    model: str

    def __init__(self, client: Any, model: str) -> None:
        if not isinstance(model, str) or not model.strip():
            from ..errors import InvalidRequestError

            raise InvalidRequestError(f"{client.provider}: model name must be a non-empty string, not {model!r}")
        self.client = client
        self.provider = client.provider
        self.model = model

    def _expect(self, request: object, cls: type[R]) -> R:
        """`request` if it is a `cls`; refused before sending otherwise (a str prompt passed where a
        request object belongs would fail deep in the body building, naming no argument)."""
        if not isinstance(request, cls):
            from ..errors import InvalidRequestError

            raise InvalidRequestError(f"{self.provider}: expected a {cls.__name__}, got {type(request).__name__}; "
                                      f"build one with {cls.__name__}(...) or the model's request builder")
        return request

    def _post(self, path: str, body: Any, capability: str, **kwargs: Any) -> Any:
        """POST `body` as JSON to `path` (relative to the client's base URL); the decoded answer."""
        return self.client.transport.post_json(path, body, model=self.model, capability=capability, **kwargs)

    def _complete(self, path: str, body: Any, parse: Callable[[Any, str], CompletionResponse]) -> CompletionResponse:
        """POST a completion request and `parse` the answer; its usage is reported."""
        response = parse(self._post(path, body, "completion"), self.provider)
        self._report("completion", response.usage)
        return response

    def _complete_prepared(self, call: Prepared) -> CompletionResponse:
        """Send a prepared completion call (`prepare(request)`), as `_complete` does."""
        return self._complete(call.path, call.body, call.parse)

    def _send(self, method: str, path: str, capability: str, **kwargs: Any) -> Response:
        """Any request (`Transport.request` keywords: json, data, files, headers, …); the whole answer."""
        response: Response = self.client.transport.request(method, path, model=self.model, capability=capability,
                                                           **kwargs)
        return response

    def _stream(self, path: str, body: Any, parse: Callable[[Iterator[Any], str], Iterator[StreamChunk]],
                **kwargs: Any) -> StreamingCompletionResponse:
        """A streamed completion (`providers._common.event_completion`: SSE unless `framing=` says
        otherwise); its final usage is reported when the stream reaches it."""
        return event_completion(self.client, path, body, parse, model=self.model, **kwargs)

    def _report(self, capability: str, usage: UsageLike | None) -> None:
        """Hand an answer's token counts to the observe hooks and the client's rate limiter."""
        report_usage(self.client, self.model, capability, usage)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(provider={self.provider!r}, model={self.model!r})"
