"""Ollama's native wire format for the fake provider (routes under ``/api``).

Importing this module registers the routes. Point ``ollama.Client(base_url=fake.url)`` at it.
Conversations behave as the OpenAI routes do (echo, ``call:<tool> {json}``, ``tool result: …``,
scripted replies); chat streams by default, as NDJSON, unless the body says ``"stream": false``.
A local Ollama needs no key: requests without ``Authorization`` are accepted unless the fake
was built with ``require_key``. Errors have Ollama's shape, ``{"error": "<message>"}``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping

from ._ndims import ndims_for
from ._openai import _chat_outcome, _completion_tokens, _embedding_inputs, _embedding_json, _Outcome, _pieces
from ._server import (
    ApiError,
    Call,
    Dialect,
    JSONDict,
    RecordedRequest,
    Response,
    _bearer_key,
    _openai_status_error,
    dumps,
    route,
)

__all__ = ["OLLAMA_DIALECT"]

_NDJSON_CT = "application/x-ndjson"
_LOCAL = "ollama-local"  # the key a keyless request counts as


def _key(req: RecordedRequest) -> str | None:
    return _bearer_key(req) or _LOCAL


def _error_body(status: int, message: str, type: str, code: str | None, param: str | None) -> JSONDict:
    return {"error": message}


def _status_error(status: int) -> JSONDict:
    return {"error": _openai_status_error(status)["error"]["message"]}


def _ndjson_error(error: Mapping[str, object]) -> bytes:
    return dumps({"error": error.get("message") or str(dict(error))}) + b"\n"


def _unknown_model(model: str, req: RecordedRequest) -> ApiError:
    return ApiError(404, f'model "{model}" not found, try pulling it first')


OLLAMA_DIALECT = Dialect(
    name="ollama",
    extract_key=_key,
    error_body=_error_body,
    status_error=_status_error,
    sse_error=_ndjson_error,
    unknown_model=_unknown_model,
)


def _model(body: JSONDict) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ApiError(400, "model is required")
    return model


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())


def _wire_calls(out: _Outcome) -> list[JSONDict]:
    calls: list[JSONDict] = []
    for c in out.calls:
        try:
            args: object = json.loads(c.arguments)
        except ValueError:
            args = c.arguments  # a scripted malformed call is sent as it came
        calls.append({"function": {"name": c.name, "arguments": args}})
    return calls


@route("POST", r"/api/chat", dialect=OLLAMA_DIALECT, conversational=True)
def chat(call: Call) -> Response:
    """Ollama ``POST /api/chat``: one object with ``"stream": false``, else an NDJSON stream."""
    body = call.body_object()
    model = _model(body)
    out, prompt_tokens = _chat_outcome(call, body)
    created = _now()
    # Ollama says "stop" for an answer that calls tools; scripted finishes otherwise pass through.
    done_reason = "stop" if out.finish_reason == "tool_calls" else out.finish_reason
    final: JSONDict = {
        "model": model,
        "created_at": created,
        "message": {"role": "assistant", "content": ""},
        "done_reason": done_reason,
        "done": True,
        "total_duration": 1000,
        "load_duration": 10,
        "prompt_eval_count": prompt_tokens,
        "prompt_eval_duration": 100,
        "eval_count": _completion_tokens(out),
        "eval_duration": 800,
    }
    if body.get("stream") is False:
        final["message"]["content"] = out.text or ""
        if out.calls:
            final["message"]["tool_calls"] = _wire_calls(out)
        return Response.json(final)

    def line(message: JSONDict) -> bytes:
        return dumps({"model": model, "created_at": created, "message": {"role": "assistant", **message},
                      "done": False}) + b"\n"

    if out.calls:
        lines = [line({"content": "", "tool_calls": _wire_calls(out)})]
    else:
        lines = [line({"content": piece}) for piece in _pieces(out.text or "")]
    lines.append(dumps(final) + b"\n")
    return Response(content_type=_NDJSON_CT, events=lines, sse_error=_ndjson_error)


def _dims(body: JSONDict) -> int:
    dims = body.get("dimensions", ndims_for(_model(body), "ollama"))
    if not isinstance(dims, int) or isinstance(dims, bool) or not 1 <= dims <= 65536:
        raise ApiError(400, "dimensions must be a positive integer")
    return dims


@route("POST", r"/api/embed", dialect=OLLAMA_DIALECT)
def embed(call: Call) -> Response:
    """Ollama ``POST /api/embed``: ``input`` (text or list) -> ``embeddings`` derived from the text,
    equal to ``rig_sync.testing._openai.embed_text(text, dims)``."""
    body = call.body_object()
    model = _model(body)
    try:
        texts = _embedding_inputs(body.get("input"))
    except ApiError:
        raise ApiError(400, "input must be a string or a list of strings") from None
    dims = _dims(body)
    vectors = ",".join(_embedding_json(t, dims) for t in texts)
    tokens = sum(len(t.split()) for t in texts)
    out = (f'{{"model":{json.dumps(model)},"embeddings":[{vectors}],"total_duration":1000,'
           f'"load_duration":10,"prompt_eval_count":{tokens}}}')
    return Response(body=out.encode("utf-8"))


@route("POST", r"/api/embeddings", dialect=OLLAMA_DIALECT)
def embeddings_legacy(call: Call) -> Response:
    """The deprecated Ollama ``POST /api/embeddings``: ``prompt`` -> ``embedding``."""
    body = call.body_object()
    _model(body)
    prompt = body.get("prompt")
    if not isinstance(prompt, str):
        raise ApiError(400, "prompt must be a string")
    return Response(body=b'{"embedding":' + _embedding_json(prompt, _dims(body)).encode("utf-8") + b"}")
