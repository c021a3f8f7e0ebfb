"""Azure OpenAI for the fake provider: OpenAI's formats under per-deployment paths.

Importing this module registers ``/openai/deployments/{deployment}/…`` for chat completions,
embeddings, transcriptions, image generation and speech; each reuses the OpenAI handler after
checking the ``api-version`` query parameter (missing: 400 ``MissingApiVersionParameter``).
The key comes in the ``api-key`` header (or an Entra ID token as ``Authorization: Bearer``).
Point ``azure.Client(fake.api_key, endpoint=fake.url)`` at it. Errors have Azure's shape,
``{"error": {"code": …, "message": …}}``.
"""

from __future__ import annotations

from ._dialect import OPENAI_DIALECT, ApiError, Dialect, JSONDict, openai_status_error
from ._openai import audio_speech, audio_transcriptions, chat_completions, embeddings, images_generations
from ._routes import Call, Handler, Response, owns, route
from ._values import RecordedRequest

__all__ = ["AZURE_DIALECT"]


def _error_body(status: int, message: str, type: str, code: str | None, param: str | None) -> JSONDict:
    error: JSONDict = {"code": code or str(status), "message": message}
    if param is not None:
        error["param"] = param
    return {"error": error}


def _status_error(status: int) -> JSONDict:
    return _error_body(status, openai_status_error(status)["error"]["message"], "", None, None)


def _unknown_model(model: str, req: RecordedRequest) -> ApiError:
    return ApiError(404, "The API deployment for this resource does not exist. If you created the deployment "
                         "within the last 5 minutes, please wait a moment and try again.", code="DeploymentNotFound")


AZURE_DIALECT = Dialect(
    name="azure",
    extract_key=OPENAI_DIALECT.extract_key,  # `api-key`, or an Entra ID bearer token
    error_body=_error_body,
    status_error=_status_error,
    sse_error=OPENAI_DIALECT.sse_error,
    unknown_model=_unknown_model,
)
owns(r"/openai/", AZURE_DIALECT)


def _versioned(handler: Handler) -> Handler:
    def run(call: Call) -> Response:
        if not call.request.query.get("api-version"):
            raise ApiError(400, "The api-version query parameter (?api-version=) is required for all requests.",
                           code="MissingApiVersionParameter")
        return handler(call)

    run.__doc__ = f"Azure OpenAI deployment route over {handler.__name__}."
    return run


_DEPLOYMENT = r"/openai/deployments/(?P<deployment>[^/]+)/"

for _suffix, _handler, _conversational, _json_body in (
    ("chat/completions", chat_completions, True, True),
    ("embeddings", embeddings, False, True),
    ("audio/transcriptions", audio_transcriptions, False, False),
    ("images/generations", images_generations, False, True),
    ("audio/speech", audio_speech, False, True),
):
    route("POST", _DEPLOYMENT + _suffix, dialect=AZURE_DIALECT, conversational=_conversational,
          expects_json=_json_body)(_versioned(_handler))
