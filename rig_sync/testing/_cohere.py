"""Cohere v2 wire format for the fake provider (``/v2/chat``, ``/v2/embed``, ``/v2/rerank`` at the root URL).

Importing this module registers the routes. Conversations behave as the OpenAI routes do (the
same decision code): echo the last user message, call tools on ``call:<tool> {json}``, answer
``tool result: …`` after tool messages (text or ``document`` items), or play a scripted
:class:`Reply`. Errors use Cohere's ``{"message": …}`` shape; an injected ``sse_error`` ends the
stream with ``finish_reason: ERROR``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from .._checks import is_whole
from ._conversation import (
    SSE_CT,
    Outcome,
    content_text,
    decide,
    fragments,
    result_text,
    split_pieces,
    token_count,
    wants_stream,
    word_count,
)
from ._dialect import ApiError, Dialect, JSONDict, bearer_key, dumps
from ._ndims import ndims_for
from ._openai import chat_tool_names
from ._routes import Call, Response, owns, route
from ._values import RecordedRequest
from ._vectors import embedding_json, ranked

__all__ = ["COHERE_DIALECT"]

_STATUS_MESSAGES = {
    400: "invalid request: the request body is not valid",
    401: "invalid api token",
    403: "you do not have access to this resource",
    404: "model not found",
    422: "invalid request: unprocessable entity",
    429: "You are past the rate limit for this API key. Please wait and try again.",
    498: "blocked output: please adjust your prompt and try again",
    499: "request cancelled by the client",
}


def _error_body(status: int, message: str, type: str, code: str | None, param: str | None) -> JSONDict:
    return {"message": message}


def _status_error(status: int) -> JSONDict:
    default = "internal server error, this has been reported to our developers" if status >= 500 else "error"
    return {"message": _STATUS_MESSAGES.get(status, default)}


def _event(kind: str, **fields: object) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + dumps({"type": kind, **fields}) + b"\n\n"


def _sse_error(error: Mapping[str, object]) -> bytes:
    message = error.get("message") or "internal error"
    return _event("message-end", delta={"finish_reason": "ERROR", "error": message})


def _unknown_model(model: str, req: RecordedRequest) -> ApiError:
    return ApiError(404, f"model '{model}' not found, make sure the correct model ID was used and that you have "
                         "access to the model.")


COHERE_DIALECT = Dialect(
    name="cohere",
    extract_key=bearer_key,
    error_body=_error_body,
    status_error=_status_error,
    sse_error=_sse_error,
    unknown_model=_unknown_model,
)
owns(r"/v2/", COHERE_DIALECT)

# Our scripted finish reasons (OpenAI's words) in Cohere's; Cohere's own pass through.
_FINISH = {"stop": "COMPLETE", "length": "MAX_TOKENS", "tool_calls": "TOOL_CALL"}


def _required(body: JSONDict, name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise ApiError(400, f"invalid request: {name} must be a non-empty string")
    return value


def _tool_content(content: object) -> str:
    """A tool message's content: text, or v2's list of ``text`` and ``document`` items (a
    document's ``data`` is an object or JSON text)."""
    if not isinstance(content, list):
        return content_text(content)
    texts = []
    for item in content:
        doc = item.get("document") if isinstance(item, dict) and item.get("type") == "document" else None
        texts.append(result_text(doc.get("data")) if isinstance(doc, dict) else content_text([item]))
    return " ".join(texts)


def _outcome(call: Call, body: JSONDict) -> tuple[Outcome, int]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        raise ApiError(400, "invalid request: messages must be a non-empty list of messages")
    tool_results: list[str] | None = None
    if messages[-1].get("role") == "tool":
        tool_results = []
        for m in reversed(messages):
            if m.get("role") != "tool":
                break
            tool_results.append(_tool_content(m.get("content")))
        tool_results.reverse()
    prompt = next((content_text(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), "")
    documents = [d.get("data") for d in body.get("documents") or [] if isinstance(d, dict)]
    prompt_tokens = sum(word_count(_tool_content(m.get("content"))) for m in messages)
    prompt_tokens += sum(word_count(json.dumps(d)) for d in documents)
    return decide(call.reply, prompt, tool_results, chat_tool_names(body)), prompt_tokens


@route("POST", r"/v2/chat", dialect=COHERE_DIALECT, conversational=True)
def chat(call: Call) -> Response:
    """Cohere ``POST /v2/chat`` (plain and streamed)."""
    body = call.body_object()
    _required(body, "model")
    out, prompt_tokens = _outcome(call, body)
    output_tokens = token_count(out)
    tokens = {"input_tokens": prompt_tokens, "output_tokens": output_tokens}
    usage = {"billed_units": tokens, "tokens": tokens}
    finish = _FINISH.get(out.finish_reason, out.finish_reason.upper())
    cid = f"chat-{call.seq}"
    plan = "I will call " + ", ".join(c.name for c in out.calls) + "." if out.calls else None
    if not wants_stream(body):
        message: JSONDict = {"role": "assistant"}
        if out.calls:
            message["tool_plan"] = plan
            message["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in out.calls
            ]
        else:
            message["content"] = [{"type": "text", "text": out.text or ""}]
        return Response.json({"id": cid, "finish_reason": finish, "message": message, "usage": usage})

    events = [_event("message-start", id=cid, delta={"message": {"role": "assistant"}})]
    if out.calls:
        events.append(_event("tool-plan-delta", delta={"message": {"tool_plan": plan}}))
        for i, c in enumerate(out.calls):
            start = {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": ""}}
            events.append(_event("tool-call-start", index=i, delta={"message": {"tool_calls": start}}))
            for frag in fragments(c.arguments):
                if frag:
                    delta = {"message": {"tool_calls": {"function": {"arguments": frag}}}}
                    events.append(_event("tool-call-delta", index=i, delta=delta))
            events.append(_event("tool-call-end", index=i))
    else:
        events.append(_event("content-start", index=0,
                             delta={"message": {"content": {"type": "text", "text": ""}}}))
        for piece in split_pieces(out.text or ""):
            events.append(_event("content-delta", index=0, delta={"message": {"content": {"text": piece}}}))
        events.append(_event("content-end", index=0))
    events.append(_event("message-end", delta={"finish_reason": finish, "usage": usage}))
    return Response(content_type=SSE_CT, events=events)


_INPUT_TYPES = ("search_document", "search_query", "classification", "clustering", "image")


def _dims(body: JSONDict, model: str) -> int:
    dims = body.get("output_dimension")
    if dims is None:
        return ndims_for(model, "cohere")
    if isinstance(dims, bool) or dims not in (256, 512, 1024, 1536):
        raise ApiError(400, "invalid request: output_dimension must be one of 256, 512, 1024, 1536")
    return int(dims)


def _strings(body: JSONDict, name: str) -> list[str]:
    items = body.get(name)
    if not isinstance(items, list) or not 1 <= len(items) <= 96 or not all(isinstance(t, str) and t for t in items):
        raise ApiError(400, f"invalid request: {name} must be a list of 1 to 96 non-empty strings")
    return items


@route("POST", r"/v2/embed", dialect=COHERE_DIALECT)
def embed(call: Call) -> Response:
    """Cohere ``POST /v2/embed``: the same similarity-preserving vectors as the OpenAI route."""
    body = call.body_object()
    model = _required(body, "model")
    if body.get("input_type") not in _INPUT_TYPES:
        raise ApiError(400, "invalid request: input_type must be one of " + ", ".join(_INPUT_TYPES))
    if body.get("embedding_types", ["float"]) != ["float"]:
        raise ApiError(400, "invalid request: this fake serves embedding_types ['float'] only")
    images = "images" in body
    inputs = _strings(body, "images" if images else "texts")
    if images and not all(i.startswith("data:image/") for i in inputs):
        raise ApiError(400, "invalid request: images must be data URIs")
    dims = _dims(body, model)
    vectors = ",".join(embedding_json(text, dims) for text in inputs)
    units = {"images": len(inputs)} if images else {"input_tokens": sum(word_count(t) for t in inputs)}
    texts = [] if images else inputs
    out = (f'{{"id":"embed-{call.seq}","texts":{dumps(texts).decode()},"embeddings":{{"float":[{vectors}]}},'
           f'"meta":{{"api_version":{{"version":"2"}},"billed_units":{dumps(units).decode()}}},'
           f'"response_type":"embeddings_by_type"}}')
    return Response(body=out.encode("utf-8"))


@route("POST", r"/v2/rerank", dialect=COHERE_DIALECT)
def rerank(call: Call) -> Response:
    """Cohere ``POST /v2/rerank``: documents by similarity to the query, best first (the same
    scores as the Voyage route)."""
    body = call.body_object()
    _required(body, "model")
    query, top_n = _required(body, "query"), body.get("top_n")
    if top_n is not None and (not is_whole(top_n) or top_n < 1):
        raise ApiError(400, "invalid request: top_n must be a positive integer")
    documents = body.get("documents")
    if not isinstance(documents, list) or not documents or not all(isinstance(d, str) for d in documents):
        raise ApiError(400, "invalid request: documents must be a non-empty list of strings")
    return Response.json({
        "id": f"rerank-{call.seq}",
        "results": [{"index": i, "relevance_score": score} for i, score in ranked(query, documents, top_n)],
        "meta": {"api_version": {"version": "2"}, "billed_units": {"search_units": 1}},
    })
