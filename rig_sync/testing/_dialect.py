"""A provider's conventions (:class:`Dialect`: how a request carries its key, how errors look) and
the default one, OpenAI's, which every route and unmatched path uses unless a dialect module says
otherwise. Also the JSON helper and :class:`ApiError` that route handlers raise.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._values import RecordedRequest

__all__ = ["OPENAI_DIALECT", "ApiError", "Dialect", "JSONDict", "bearer_key", "dumps", "openai_status_error"]

JSONDict = dict[str, Any]


def dumps(obj: object) -> bytes:
    """Compact JSON as UTF-8 bytes."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


class ApiError(Exception):
    """Raised by route handlers to produce a provider-shaped error reply."""

    def __init__(
        self,
        status: int,
        message: str,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param


@dataclass(frozen=True)
class Dialect:
    """Provider conventions shared by a family of routes (auth, error shape)."""

    name: str
    extract_key: Callable[[RecordedRequest], str | None]
    error_body: Callable[[int, str, str, str | None, str | None], JSONDict]
    status_error: Callable[[int], JSONDict]
    sse_error: Callable[[Mapping[str, object]], bytes]
    # The provider's own refusal of a model it does not serve (status, message, code), rendered
    # by `error_body`: for `FakeProvider(models=[...])`.
    unknown_model: Callable[[str, RecordedRequest], ApiError]


# --------------------------------------------------------------------------- #
# OpenAI's dialect (the default one)
# --------------------------------------------------------------------------- #


def bearer_key(req: RecordedRequest) -> str | None:
    """The key of ``Authorization: Bearer <key>``, else of Azure's ``api-key`` header."""
    auth = req.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    key = req.headers.get("api-key", "").strip()  # Azure OpenAI style
    return key or None


def _openai_error_body(status: int, message: str, type: str, code: str | None, param: str | None) -> JSONDict:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


_STATUS_DEFAULTS: dict[int, tuple[str, str, str | None]] = {
    400: ("Bad request.", "invalid_request_error", None),
    401: ("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"),
    403: (
        "You are not allowed to access this resource.",
        "invalid_request_error",
        "permission_denied",
    ),
    404: (
        "The requested resource does not exist.",
        "invalid_request_error",
        "not_found",
    ),
    408: ("Request timed out.", "timeout", None),
    409: ("Conflict.", "invalid_request_error", "conflict"),
    422: ("Unprocessable entity.", "invalid_request_error", None),
    429: ("Rate limit reached for requests.", "requests", "rate_limit_exceeded"),
    503: (
        "The engine is currently overloaded, please try again later.",
        "server_error",
        None,
    ),
    529: ("Overloaded.", "overloaded_error", "overloaded"),
}


def openai_status_error(status: int) -> JSONDict:
    """OpenAI's error body for a bare HTTP ``status`` (what ``Fault.status(code)`` sends)."""
    if status in _STATUS_DEFAULTS:
        message, type_, code = _STATUS_DEFAULTS[status]
    elif status >= 500:
        message, type_, code = (
            "The server had an error while processing your request.",
            "server_error",
            None,
        )
    else:
        message, type_, code = ("Request failed.", "invalid_request_error", None)
    return _openai_error_body(status, message, type_, code, None)


def _openai_sse_error(error: Mapping[str, object]) -> bytes:
    return b"data: " + dumps({"error": dict(error)}) + b"\n\n"


def _openai_unknown_model(model: str, req: RecordedRequest) -> ApiError:
    return ApiError(404, f"The model `{model}` does not exist or you do not have access to it.",
                    code="model_not_found")


OPENAI_DIALECT = Dialect(
    name="openai",
    extract_key=bearer_key,
    error_body=_openai_error_body,
    status_error=openai_status_error,
    sse_error=_openai_sse_error,
    unknown_model=_openai_unknown_model,
)
