"""Ollama's native wire format for the fake provider (routes under ``/api``).

Importing this module registers the routes. Point ``ollama.Client(base_url=fake.url)`` at it.
Conversations behave as the OpenAI routes do (echo, ``call:<tool> {json}``, ``tool result: …``,
scripted replies); chat and generate stream by default, as NDJSON, unless the body says
``"stream": false``; ``GET /api/tags`` lists the models.
A local Ollama needs no key: requests without ``Authorization`` are accepted unless the fake
was built with ``require_key``. Errors have Ollama's shape, ``{"error": "<message>"}``.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Mapping

from ._conversation import Outcome, decide, split_pieces, token_count, word_count
from ._dialect import ApiError, Dialect, JSONDict, bearer_key, dumps, openai_status_error
from ._ndims import ndims_for
from ._openai import chat_outcome
from ._routes import Call, Response, owns, route
from ._values import RecordedRequest
from ._vectors import embedding_inputs, embedding_json

__all__ = ["OLLAMA_DIALECT"]

_NDJSON_CT = "application/x-ndjson"
_LOCAL = "ollama-local"  # the key a keyless request counts as


def _key(req: RecordedRequest) -> str | None:
    return bearer_key(req) or _LOCAL


def _error_body(status: int, message: str, type: str, code: str | None, param: str | None) -> JSONDict:
    return {"error": message}


def _status_error(status: int) -> JSONDict:
    return {"error": openai_status_error(status)["error"]["message"]}


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
owns(r"/api/", OLLAMA_DIALECT)


def _model(body: JSONDict) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ApiError(400, "model is required")
    return model


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())


def _wire_calls(out: Outcome) -> list[JSONDict]:
    calls: list[JSONDict] = []
    for c in out.calls:
        try:
            args: object = json.loads(c.arguments)
        except ValueError:
            args = c.arguments  # a scripted malformed call is sent as it came
        calls.append({"function": {"name": c.name, "arguments": args}})
    return calls


def _stats(out: Outcome, prompt_tokens: int) -> JSONDict:
    """The fields of the last line (or the one object) of a chat or generate answer."""
    # Ollama says "stop" for an answer that calls tools; scripted finishes otherwise pass through.
    done_reason = "stop" if out.finish_reason == "tool_calls" else out.finish_reason
    return {"done_reason": done_reason, "done": True, "total_duration": 1000, "load_duration": 10,
            "prompt_eval_count": prompt_tokens, "prompt_eval_duration": 100,
            "eval_count": token_count(out), "eval_duration": 800}


def _answer(body: JSONDict, model: str, parts: list[JSONDict], whole: JSONDict, stats: JSONDict) -> Response:
    """One object when the body says ``"stream": false``, else NDJSON: each of ``parts`` on its own
    line, then ``stats`` (the answer itself already sent) on the last."""
    created = _now()
    if body.get("stream") is False:
        return Response.json({"model": model, "created_at": created, **whole, **stats})
    lines = [dumps({"model": model, "created_at": created, **part, "done": False}) + b"\n" for part in parts]
    last = {key: ({"role": "assistant", "content": ""} if key == "message" else "") for key in whole}
    lines.append(dumps({"model": model, "created_at": created, **last, **stats}) + b"\n")
    return Response(content_type=_NDJSON_CT, events=lines, sse_error=_ndjson_error)


@route("POST", r"/api/chat", dialect=OLLAMA_DIALECT, conversational=True)
def chat(call: Call) -> Response:
    """Ollama ``POST /api/chat``: one object with ``"stream": false``, else an NDJSON stream."""
    body = call.body_object()
    model = _model(body)
    out, prompt_tokens = chat_outcome(call, body)
    message: JSONDict = {"role": "assistant", "content": out.text or ""}
    if out.calls:
        message["tool_calls"] = _wire_calls(out)
        parts = [{"message": {"role": "assistant", "content": "", "tool_calls": message["tool_calls"]}}]
    else:
        parts = [{"message": {"role": "assistant", "content": piece}} for piece in split_pieces(out.text or "")]
    return _answer(body, model, parts, {"message": message}, _stats(out, prompt_tokens))


@route("POST", r"/api/generate", dialect=OLLAMA_DIALECT, conversational=True)
def generate(call: Call) -> Response:
    """Ollama ``POST /api/generate``: ``prompt`` (and ``system``) -> ``response``, streamed as chat is."""
    body = call.body_object()
    model = _model(body)
    prompt, system = body.get("prompt", ""), body.get("system", "")
    if not isinstance(prompt, str) or not isinstance(system, str):
        raise ApiError(400, "prompt and system must be strings")
    out = decide(call.reply, prompt, None, set())
    if out.calls:
        raise ApiError(400, "/api/generate cannot call tools: script Reply.text for it, or use /api/chat")
    text = out.text or ""
    parts = [{"response": piece} for piece in split_pieces(text)]
    return _answer(body, model, parts, {"response": text}, _stats(out, word_count(system) + word_count(prompt)))


_DEFAULT_TAGS = ("llama3.2:latest", "nomic-embed-text:latest")


@route("GET", r"/api/tags", dialect=OLLAMA_DIALECT)
def tags(call: Call) -> Response:
    """Ollama ``GET /api/tags``: the local models (the fake's ``models`` when it was given some)."""
    names = _DEFAULT_TAGS if call.provider.models is None else sorted(call.provider.models)
    return Response.json({"models": [{
        "name": name,
        "model": name,
        "modified_at": "2025-01-01T00:00:00.000000Z",
        "size": 1000000,
        "digest": hashlib.sha256(name.encode()).hexdigest(),
        "details": {"parent_model": "", "format": "gguf", "family": re.sub(r"[^a-z].*", "", name) or "llama",
                    "families": None, "parameter_size": "1B", "quantization_level": "Q4_K_M"},
    } for name in names]})


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
        texts = embedding_inputs(body.get("input"))
    except ApiError:
        raise ApiError(400, "input must be a string or a list of strings") from None
    dims = _dims(body)
    vectors = ",".join(embedding_json(t, dims) for t in texts)
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
    return Response(body=b'{"embedding":' + embedding_json(prompt, _dims(body)).encode("utf-8") + b"}")
