"""Gemini wire format for the fake provider (routes under ``/v1beta`` and ``/v1``).

Importing this module registers the routes: ``models/{model}:generateContent``,
``:streamGenerateContent`` (``?alt=sse``: data-only SSE without ``[DONE]``; without it, a JSON
array of chunks), ``:countTokens``, ``:embedContent`` and ``:batchEmbedContents``. The key is read from the
``x-goog-api-key`` header only. Conversation behaviour is the OpenAI routes' own (echo,
``call:<tool> {json}``, ``tool result: …``); errors have Google's ``{"error": {code, message,
status, details}}`` shape.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from ._conversation import Outcome, decide, result_text, split_pieces, word_count
from ._dialect import ApiError, Dialect, JSONDict, dumps
from ._ndims import ndims_for
from ._routes import Call, Response, owns, route
from ._values import RecordedRequest
from ._vectors import embedding_json

__all__ = ["GEMINI_DIALECT"]

_SSE_CT = "text/event-stream"
_MODEL = r"/(?P<version>v1beta|v1)/(?P<model>(?:models|tunedModels)/[^/:]+):"
_STATUS = {
    400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
    409: "ABORTED", 429: "RESOURCE_EXHAUSTED", 499: "CANCELLED", 500: "INTERNAL", 501: "NOT_IMPLEMENTED",
    503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED",
}
_MESSAGES = {
    400: "Request contains an invalid argument.",
    403: "The caller does not have permission",
    404: "Requested entity was not found.",
    429: "Resource has been exhausted (e.g. check quota).",
    503: "The model is overloaded. Please try again later.",
}
_FINISH = {"stop": "STOP", "tool_calls": "STOP", "length": "MAX_TOKENS", "content_filter": "SAFETY"}


# --------------------------------------------------------------------------- #
# Dialect: auth and error shapes
# --------------------------------------------------------------------------- #


def _key(req: RecordedRequest) -> str | None:
    return req.headers.get("x-goog-api-key", "").strip() or None


def _status_name(status: int) -> str:
    return _STATUS.get(status, "INTERNAL" if status >= 500 else "FAILED_PRECONDITION")


def _error_body(status: int, message: str, type: str, code: str | None, param: str | None) -> JSONDict:
    if code == "invalid_api_key":  # the server core's auth failure, in Google's words
        return {"error": {"code": status, "message": "API key not valid. Please pass a valid API key.",
                          "status": _status_name(status), "details": [{
                              "@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                              "domain": "googleapis.com",
                              "metadata": {"service": "generativelanguage.googleapis.com"}}]}}
    return {"error": {"code": status, "message": message, "status": _status_name(status)}}


def _status_error(status: int) -> JSONDict:
    message = _MESSAGES.get(status, "An internal error has occurred." if status >= 500 else "Request failed.")
    return _error_body(status, message, "", None, None)


def _sse_error(error: Mapping[str, object]) -> bytes:
    # Gemini appends the error object mid-stream as plain JSON, outside the SSE framing.
    message = error.get("message") or "An internal error has occurred."
    return json.dumps(_error_body(500, str(message), "", None, None), indent=2).encode("utf-8") + b"\n"


def _unknown_model(model: str, req: RecordedRequest) -> ApiError:
    version, method = req.path.split("/")[1], req.path.rpartition(":")[2]
    return ApiError(404, f"models/{model} is not found for API version {version}, or is not supported for {method}. "
                         "Call ListModels to see the list of available models and their supported methods.")


GEMINI_DIALECT = Dialect(
    name="gemini",
    extract_key=_key,
    error_body=_error_body,
    status_error=_status_error,
    sse_error=_sse_error,
    unknown_model=_unknown_model,
)
owns(r"/v1beta/", GEMINI_DIALECT)
owns(r"/v1/(?:models|tunedModels)/[^/:]+:", GEMINI_DIALECT)  # a model's method; plain /v1/ is OpenAI's


# --------------------------------------------------------------------------- #
# Reading requests
# --------------------------------------------------------------------------- #


def _parts(content: object) -> list[JSONDict]:
    parts = content.get("parts") if isinstance(content, dict) else None
    if not isinstance(parts, list) or not all(isinstance(p, dict) for p in parts):
        raise ApiError(400, "* GenerateContentRequest.contents: contents.parts must not be empty.")
    return parts


def _text(parts: list[JSONDict]) -> str:
    return " ".join(p["text"] for p in parts if isinstance(p.get("text"), str) and not p.get("thought"))


def _function_output(part: JSONDict) -> str | None:
    fr = part.get("functionResponse", part.get("function_response"))
    return result_text(fr.get("response")) if isinstance(fr, dict) else None


def _tool_names(body: JSONDict) -> set[str]:
    names: set[str] = set()
    for tool in body.get("tools") or []:
        if isinstance(tool, dict):
            for fn in tool.get("functionDeclarations", tool.get("function_declarations")) or []:
                if isinstance(fn, dict) and isinstance(fn.get("name"), str):
                    names.add(fn["name"])
    return names


def _prompt(body: JSONDict) -> tuple[list[JSONDict], list[list[JSONDict]], int]:
    """The contents, their parts, and the prompt's token count (system instruction included)."""
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents or not all(isinstance(c, dict) for c in contents):
        raise ApiError(400, "* GenerateContentRequest.contents: contents is not specified")
    all_parts = [_parts(c) for c in contents]
    prompt_tokens = sum(word_count(_text(parts)) for parts in all_parts)
    system = body.get("systemInstruction", body.get("system_instruction"))
    if system is not None:
        prompt_tokens += word_count(_text(_parts(system)))
    return contents, all_parts, prompt_tokens


def _outcome(call: Call, body: JSONDict) -> tuple[Outcome, int]:
    contents, all_parts, prompt_tokens = _prompt(body)
    outputs = [out for out in map(_function_output, all_parts[-1]) if out is not None]
    prompt = next((_text(p) for c, p in zip(reversed(contents), reversed(all_parts), strict=True)
                   if c.get("role", "user") == "user" and _text(p)), "")
    return decide(call.reply, prompt, outputs or None, _tool_names(body)), prompt_tokens


# --------------------------------------------------------------------------- #
# generateContent / streamGenerateContent
# --------------------------------------------------------------------------- #


def _call_parts(call: Call, out: Outcome) -> list[JSONDict]:
    # Gemini's function calls mostly come without ids; a scripted reply's explicit id is sent.
    given = [c.id for c in call.reply.calls] if call.reply is not None and call.reply.kind == "tool_calls" else []
    parts: list[JSONDict] = []
    for i, c in enumerate(out.calls):
        try:
            args = json.loads(c.arguments)
        except ValueError:
            args = c.arguments  # malformed on purpose: sent as is
        fc: JSONDict = {"name": c.name, "args": args}
        if i < len(given) and given[i]:
            fc["id"] = given[i]
        parts.append({"functionCall": fc})
    return parts


def _chunk(model: str, parts: list[JSONDict], finish: str | None, usage: JSONDict, rid: str) -> JSONDict:
    candidate: JSONDict = {"content": {"parts": parts, "role": "model"}, "index": 0}
    if finish is not None:
        candidate["finishReason"] = finish
    return {"candidates": [candidate], "usageMetadata": usage, "modelVersion": model, "responseId": rid}


def _generate(call: Call, stream: bool) -> Response:
    body = call.body_object()
    out, prompt_tokens = _outcome(call, body)
    model = call.match.group("model").rpartition("/")[2]
    finish = _FINISH.get(out.finish_reason, out.finish_reason.upper())
    answer = out.text or ""
    output_tokens = word_count(answer) if not out.calls else sum(1 + word_count(c.arguments) for c in out.calls)
    usage = {"promptTokenCount": prompt_tokens, "candidatesTokenCount": output_tokens,
             "totalTokenCount": prompt_tokens + output_tokens}
    rid = f"resp_{call.seq}"
    if not stream:
        parts = _call_parts(call, out) if out.calls else [{"text": answer}]
        return Response.json(_chunk(model, parts, finish, usage, rid))
    partial = {"promptTokenCount": prompt_tokens, "totalTokenCount": prompt_tokens}
    if out.calls:
        chunks = [_chunk(model, _call_parts(call, out), finish, usage, rid)]
    else:
        pieces = split_pieces(answer) or [""]
        chunks = [_chunk(model, [{"text": p}], None, partial, rid) for p in pieces[:-1]]
        chunks.append(_chunk(model, [{"text": pieces[-1]}], finish, usage, rid))
    if call.request.query.get("alt") != "sse":
        return Response(body=dumps(chunks))  # without alt=sse Gemini streams one JSON array
    events = [b"data: " + dumps(c) + b"\r\n\r\n" for c in chunks]
    return Response(content_type=_SSE_CT, events=events)


@route("POST", _MODEL + "generateContent", dialect=GEMINI_DIALECT, conversational=True)
def generate_content(call: Call) -> Response:
    """Gemini ``POST /v1beta/models/{model}:generateContent``."""
    return _generate(call, stream=False)


@route("POST", _MODEL + "streamGenerateContent", dialect=GEMINI_DIALECT, conversational=True)
def stream_generate_content(call: Call) -> Response:
    """Gemini ``POST /v1beta/models/{model}:streamGenerateContent?alt=sse``."""
    return _generate(call, stream=True)


@route("POST", _MODEL + "countTokens", dialect=GEMINI_DIALECT)
def count_tokens(call: Call) -> Response:
    """Gemini ``POST /v1beta/models/{model}:countTokens``: ``contents``, or a whole
    ``generateContentRequest``, counted as ``generateContent`` counts its ``promptTokenCount``."""
    body = call.body_object()
    wrapped = body.get("generateContentRequest", body.get("generate_content_request"))
    tokens = _prompt(wrapped if isinstance(wrapped, dict) else body)[2]
    return Response.json({"totalTokens": tokens, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": tokens}]})


# --------------------------------------------------------------------------- #
# Embeddings
# --------------------------------------------------------------------------- #


def _embedding(request: object, model: str) -> str:
    """One embedding as JSON text: ``{"values": [...]}``, derived from the text as for OpenAI."""
    if not isinstance(request, dict):
        raise ApiError(400, "Invalid JSON payload received. Expected an EmbedContentRequest object.")
    if request.get("model", model) != model:
        raise ApiError(400, f"Model {request.get('model')!r} in the request does not match the URL's {model!r}.")
    text = _text(_parts(request.get("content")))
    if not text:
        raise ApiError(400, "* EmbedContentRequest.content: contents must not be empty.")
    default = ndims_for(model, "gemini")
    dims = request.get("outputDimensionality", request.get("output_dimensionality", default))
    if not isinstance(dims, int) or isinstance(dims, bool) or not 1 <= dims <= 65536:
        raise ApiError(400, "* EmbedContentRequest.output_dimensionality: must be a positive integer.")
    return '{"values":' + embedding_json(text, dims) + "}"


@route("POST", _MODEL + "embedContent", dialect=GEMINI_DIALECT)
def embed_content(call: Call) -> Response:
    """Gemini ``POST /v1beta/models/{model}:embedContent``."""
    item = _embedding(call.body_object(), call.match.group("model"))
    return Response(body=('{"embedding":' + item + "}").encode("utf-8"))


@route("POST", _MODEL + "batchEmbedContents", dialect=GEMINI_DIALECT)
def batch_embed_contents(call: Call) -> Response:
    """Gemini ``POST /v1beta/models/{model}:batchEmbedContents`` (at most 100 requests)."""
    requests = call.body_object().get("requests")
    if not isinstance(requests, list) or not requests:
        raise ApiError(400, "* BatchEmbedContentsRequest.requests: requests must not be empty.")
    if len(requests) > 100:
        raise ApiError(400, "* BatchEmbedContentsRequest.requests: at most 100 requests can be in one batch.")
    model = call.match.group("model")
    items = ",".join(_embedding(r, model) for r in requests)
    return Response(body=('{"embeddings":[' + items + "]}").encode("utf-8"))
