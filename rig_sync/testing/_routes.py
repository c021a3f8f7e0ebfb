"""The route table. A dialect module registers its handlers with :func:`route` and the paths it
answers for with :func:`owns`; a handler receives a :class:`Call` and returns a :class:`Response`.
The server looks routes up with :func:`find_route` and knows no provider by name.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ._dialect import OPENAI_DIALECT, ApiError, Dialect, JSONDict, dumps
from ._values import RecordedRequest, Reply

if TYPE_CHECKING:
    from ._server import FakeProvider

__all__ = [
    "Call",
    "Handler",
    "Response",
    "Route",
    "dialect_for",
    "disown",
    "find_route",
    "owns",
    "requested_model",
    "route",
    "unroute",
]


@dataclass
class Response:
    """What a route handler returns.

    Either a complete ``body`` or, for streams, ``events``: already framed SSE
    events (``b"data: ...\\n\\n"``) sent with chunked transfer encoding.
    ``sse_error`` frames an error object as an event for this stream.
    """

    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)
    events: Sequence[bytes] | None = None
    sse_error: Callable[[Mapping[str, object]], bytes] | None = None

    @classmethod
    def json(cls, obj: object, status: int = 200) -> Response:
        """A JSON response."""
        return cls(status=status, body=dumps(obj))


@dataclass(frozen=True)
class Call:
    """Everything a route handler needs to answer one request."""

    request: RecordedRequest
    match: re.Match[str]
    reply: Reply | None
    seq: int
    provider: FakeProvider

    @property
    def request_id(self) -> str:
        """The ``x-request-id`` of this request (``req_<seq>``)."""
        return self.request.request_id

    def body_object(self) -> JSONDict:
        """The JSON body, which must be an object (else a 400 ``ApiError``)."""
        data = self.request.json
        if not isinstance(data, dict):
            raise ApiError(400, "Request body must be a JSON object.")
        return data


Handler = Callable[[Call], Response]


@dataclass(frozen=True)
class Route:
    """One registered handler: ``method`` and a path regex matched in full."""

    method: str
    pattern: re.Pattern[str]
    handler: Handler
    dialect: Dialect
    conversational: bool
    expects_json: bool


# Replaced, never mutated, on (un)registration: a server thread reading them needs no lock.
_ROUTES: tuple[Route, ...] = ()
# Path prefixes a provider owns (regexes matched at the start), so that a path the fake does not
# serve is refused in that provider's shape, as its SDK expects; the rest are OpenAI's.
_PREFIXES: tuple[tuple[re.Pattern[str], Dialect], ...] = ()


def route(
    method: str,
    pattern: str,
    *,
    dialect: Dialect = OPENAI_DIALECT,
    conversational: bool = False,
    expects_json: bool = True,
) -> Callable[[Handler], Handler]:
    """Register a handler for ``method`` and a path regex (full match).

    ``conversational`` routes consume scripted text/tool-call replies;
    ``expects_json`` routes answer 400 to a malformed JSON body.
    """

    def deco(fn: Handler) -> Handler:
        global _ROUTES
        _ROUTES = (*_ROUTES, Route(method.upper(), re.compile(pattern), fn, dialect, conversational, expects_json))
        return fn

    return deco


def unroute(handler: Handler) -> None:
    """Forget every route served by ``handler`` (for tests that register their own)."""
    global _ROUTES
    _ROUTES = tuple(r for r in _ROUTES if r.handler is not handler)


def owns(prefix: str, dialect: Dialect) -> None:
    """Answer unmatched paths starting with ``prefix`` (a regex) in ``dialect``'s shape."""
    global _PREFIXES
    _PREFIXES = (*_PREFIXES, (re.compile(prefix), dialect))


def disown(prefix: str) -> None:
    """Undo :func:`owns` for ``prefix``."""
    global _PREFIXES
    _PREFIXES = tuple(p for p in _PREFIXES if p[0].pattern != prefix)


def dialect_for(path: str) -> Dialect:
    """The dialect that owns ``path`` (OpenAI's unless a module claimed it with :func:`owns`)."""
    return next((d for p, d in _PREFIXES if p.match(path)), OPENAI_DIALECT)


def find_route(method: str, path: str) -> tuple[Route, re.Match[str]] | None:
    """The first route for ``method`` whose pattern matches all of ``path``, and the match."""
    for r in _ROUTES:
        if r.method == method:
            m = r.pattern.fullmatch(path)
            if m is not None:
                return r, m
    return None


# How a request names its model: a URL part (Azure's deployment, Gemini's `models/{model}`,
# OpenAI's `GET /v1/models/{model}`), else the JSON body's or the multipart form's "model".
_URL_MODEL_GROUPS = ("deployment", "model")


def requested_model(req: RecordedRequest, match: re.Match[str]) -> str | None:
    """The model a request asks for, if it names one."""
    groups = match.groupdict()
    for name in _URL_MODEL_GROUPS:
        if groups.get(name):
            return re.sub(r"^(?:models|tunedModels)/", "", groups[name])
    model = req.json.get("model") if isinstance(req.json, dict) else req.form.get("model")
    return model if isinstance(model, str) and model else None
