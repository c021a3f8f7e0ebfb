"""Google Vertex AI for the fake provider: Vertex's paths, answered in Gemini's and Anthropic's wire.

Importing this module registers the routes, under ``/v1`` and ``/v1beta1``:

* ``projects/{project}/locations/{location}/publishers/google/models/{model}:generateContent``,
  ``:streamGenerateContent`` and ``:predict`` (text embeddings), with ``Authorization: Bearer``;
  the same without ``projects/…/locations/…`` is express mode, keyed by ``x-goog-api-key``;
* ``projects/{project}/locations/{location}/publishers/anthropic/models/{model}:rawPredict`` and
  ``:streamRawPredict``: Anthropic's Messages body without ``model`` (it is in the URL) and with
  ``"anthropic_version": "vertex-2023-10-16"``, answered as Anthropic answers.

The answers are the Gemini and Anthropic routes' own. Vertex's front end speaks for both: a
request without a bearer token, a status fault and an unknown model are refused in Google's
``{"error": {code, message, status}}`` shape; what the Claude model itself refuses (a bad body)
and its mid-stream errors are Anthropic's.
"""

from __future__ import annotations

import dataclasses

from . import _anthropic, _gemini
from ._anthropic import ANTHROPIC_DIALECT
from ._conversation import word_count
from ._dialect import ApiError, Dialect, JSONDict, dumps
from ._gemini import GEMINI_DIALECT
from ._ndims import ndims_for
from ._routes import Call, Response, owns, route
from ._values import RecordedRequest
from ._vectors import embedding_json

__all__ = ["VERTEX_DIALECT", "VERTEX_CLAUDE_DIALECT", "ANTHROPIC_VERSION"]

ANTHROPIC_VERSION = "vertex-2023-10-16"
_WHERE = r"/(?P<version>v1|v1beta1)/(?:projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)/)?"
_GOOGLE = _WHERE + r"publishers/google/models/(?P<model>[^/:]+):"
_ANTHROPIC = _WHERE + r"publishers/anthropic/models/(?P<model>[^/:]+):"
_NO_CREDENTIALS = ("Request is missing required authentication credential. Expected OAuth 2 access token, login "
                   "cookie or other valid authentication credential. See "
                   "https://developers.google.com/identity/sign-in/web/devconsole-project.")
_BAD_CREDENTIALS = ("Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or "
                    "other valid authentication credential. See "
                    "https://developers.google.com/identity/sign-in/web/devconsole-project.")


def _credentials(req: RecordedRequest) -> str | None:
    """The bearer token; on an express mode path (no project) the ``x-goog-api-key`` instead."""
    scheme, _, token = req.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    if "/projects/" not in req.path:
        return req.headers.get("x-goog-api-key", "").strip() or None
    return None


def _google_error(status: int, message: str, type: str, code: str | None, param: str | None) -> JSONDict:
    if code == "invalid_api_key":  # the core's refusal of the credentials, in Vertex's words
        missing = not message.startswith("Incorrect")
        body = GEMINI_DIALECT.error_body(401, _NO_CREDENTIALS if missing else _BAD_CREDENTIALS, "", None, None)
        body["error"]["details"] = [{
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "CREDENTIALS_MISSING" if missing else "ACCESS_TOKEN_TYPE_UNSUPPORTED",
            "domain": "googleapis.com",
            "metadata": {"service": "aiplatform.googleapis.com"}}]
        return body
    return GEMINI_DIALECT.error_body(status, message, type, code, param)


def _claude_error(status: int, message: str, type: str, code: str | None, param: str | None) -> JSONDict:
    if status in (401, 403, 404, 429) or code == "invalid_api_key":  # Vertex's front end
        return _google_error(status, message, type, code, param)
    return ANTHROPIC_DIALECT.error_body(status, message, type, code, param)  # the model's server


def _unknown_model(model: str, req: RecordedRequest) -> ApiError:
    publisher = "anthropic" if "/publishers/anthropic/" in req.path else "google"
    where = req.path.split("/publishers/")[0].split("/", 2)[-1]
    name = f"{where}/publishers/{publisher}/models/{model}" if "/projects/" in req.path else model
    return ApiError(404, f"Publisher Model `{name}` was not found or your project does not have access to it. "
                         "Please ensure you are using a valid model version.")


VERTEX_DIALECT = Dialect(
    name="vertex",
    extract_key=_credentials,
    error_body=_google_error,
    status_error=GEMINI_DIALECT.status_error,
    sse_error=GEMINI_DIALECT.sse_error,  # appended as plain JSON, outside the SSE framing
    unknown_model=_unknown_model,
)
VERTEX_CLAUDE_DIALECT = Dialect(
    name="vertex-claude",
    extract_key=_credentials,
    error_body=_claude_error,
    status_error=GEMINI_DIALECT.status_error,
    sse_error=ANTHROPIC_DIALECT.sse_error,
    unknown_model=_unknown_model,
)
owns(_WHERE + r"publishers/anthropic/", VERTEX_CLAUDE_DIALECT)
owns(_WHERE + r"publishers/", VERTEX_DIALECT)


# --------------------------------------------------------------------------- #
# Gemini models: the Gemini routes' answers
# --------------------------------------------------------------------------- #


@route("POST", _GOOGLE + "generateContent", dialect=VERTEX_DIALECT, conversational=True)
def generate_content(call: Call) -> Response:
    """Vertex ``…/publishers/google/models/{model}:generateContent``."""
    return _gemini.generate_content(call)


@route("POST", _GOOGLE + "streamGenerateContent", dialect=VERTEX_DIALECT, conversational=True)
def stream_generate_content(call: Call) -> Response:
    """Vertex ``…/publishers/google/models/{model}:streamGenerateContent?alt=sse``."""
    return _gemini.stream_generate_content(call)


@route("POST", _GOOGLE + "predict", dialect=VERTEX_DIALECT)
def predict(call: Call) -> Response:
    """Vertex text embeddings: ``{"instances": [{"content", "task_type"?}], "parameters":
    {"outputDimensionality"?}}`` → ``{"predictions": [{"embeddings": {"values", "statistics"}}]}``;
    gemini-embedding-001 takes one instance per request, the others up to 250."""
    body = call.body_object()
    model = call.match.group("model")
    instances = body.get("instances")
    most = 1 if model.startswith("gemini-embedding") else 250
    if not isinstance(instances, list) or not instances or not all(isinstance(i, dict) for i in instances):
        raise ApiError(400, "Invalid JSON payload: instances must be a non-empty list of objects.")
    if len(instances) > most:
        raise ApiError(400, f"{model} accepts at most {most} instance(s) per request, got {len(instances)}.")
    parameters = body.get("parameters") or {}
    dims = parameters.get("outputDimensionality", ndims_for(model, "gemini")) if isinstance(parameters, dict) else 0
    if not isinstance(dims, int) or isinstance(dims, bool) or not 1 <= dims <= 65536:
        raise ApiError(400, "parameters.outputDimensionality must be a positive integer.")
    items: list[str] = []
    for instance in instances:
        text = instance.get("content")
        if not isinstance(text, str) or not text:
            raise ApiError(400, "Each instance needs a non-empty \"content\" string.")
        stats = dumps({"token_count": word_count(text), "truncated": False}).decode("utf-8")
        items.append('{"embeddings":{"values":' + embedding_json(text, dims) + ',"statistics":' + stats + "}}")
    chars = sum(len(str(i.get("content"))) for i in instances)
    return Response(body=('{"predictions":[' + ",".join(items) + '],"metadata":{"billableCharacterCount":'
                          + str(chars) + "}}").encode("utf-8"))


# --------------------------------------------------------------------------- #
# Claude models: the Anthropic route's answers
# --------------------------------------------------------------------------- #


def _claude(call: Call, stream: bool) -> Response:
    body = call.body_object()
    if "model" in body:  # stricter than Vertex documents: a client that leaks it is caught here
        raise ApiError(400, "model: the model is named in the URL; leave it out of the body")
    version = body.get("anthropic_version")
    if version != ANTHROPIC_VERSION:
        raise ApiError(400, f"anthropic_version: Input should be '{ANTHROPIC_VERSION}'" if version is not None
                       else "anthropic_version: Field required")
    if (body.get("stream") is True) != stream:
        raise ApiError(400, "stream: true needs :streamRawPredict, and :streamRawPredict needs stream: true")
    model = call.match.group("model")
    # As Anthropic's own API takes it: the model in the body, the version in a header.
    request = dataclasses.replace(
        call.request, json={**{k: v for k, v in body.items() if k != "anthropic_version"}, "model": model},
        headers={**call.request.headers, "anthropic-version": "2023-06-01"})
    return _anthropic.messages(dataclasses.replace(call, request=request))


@route("POST", _ANTHROPIC + "rawPredict", dialect=VERTEX_CLAUDE_DIALECT, conversational=True)
def raw_predict(call: Call) -> Response:
    """Vertex ``…/publishers/anthropic/models/{model}:rawPredict``."""
    return _claude(call, stream=False)


@route("POST", _ANTHROPIC + "streamRawPredict", dialect=VERTEX_CLAUDE_DIALECT, conversational=True)
def stream_raw_predict(call: Call) -> Response:
    """Vertex ``…/publishers/anthropic/models/{model}:streamRawPredict``."""
    return _claude(call, stream=True)

