"""Anthropic wire format for the fake provider (``POST /v1/messages``, ``/v1/messages/count_tokens``).

Importing this module registers the route. Behaviour matches the OpenAI routes (echo, ``call:``
tool calls on request, ``tool result: …`` after tool results, scripted replies, faults), spoken
the Anthropic way: ``x-api-key`` auth with Anthropic's ``authentication_error`` body,
``{"type": "error", "error": {...}}`` error bodies, content blocks, and named SSE events in the
API's order (``message_start``, ``content_block_start``, ``ping``, ``content_block_delta``…,
``content_block_stop``, ``message_delta``, ``message_stop``). A request with
``"thinking": {"type": "enabled"}`` gets a signed ``thinking`` block first.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ._conversation import (
    SSE_CT,
    Outcome,
    body_model,
    content_text,
    decide,
    fragments,
    split_pieces,
    token_count,
    wants_stream,
    word_count,
)
from ._dialect import ApiError, Dialect, JSONDict, dumps
from ._routes import Call, Response, owns, route
from ._values import RecordedRequest

__all__ = ["ANTHROPIC_DIALECT"]

# Error `type` per HTTP status, as the API names them.
_ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
_STATUS_MESSAGES: dict[int, str] = {
    401: "invalid x-api-key",
    403: "Your API key does not have permission to use the specified resource.",
    404: "The requested resource could not be found.",
    413: "Request exceeds the maximum allowed number of bytes.",
    429: "Number of request tokens has exceeded your per-minute rate limit.",
    500: "Internal server error",
    529: "Overloaded",
}
# The core finish reasons scripted replies use, in Anthropic's words; others pass through.
_STOP_REASONS = {"stop": "end_turn", "tool_calls": "tool_use", "length": "max_tokens", "content_filter": "refusal"}


def _x_api_key(req: RecordedRequest) -> str | None:
    key = req.headers.get("x-api-key", "").strip()
    if key:
        return key
    scheme, _, token = req.headers.get("authorization", "").partition(" ")  # OAuth-token clients
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _error_type(status: int) -> str:
    return _ERROR_TYPES.get(status) or ("api_error" if status >= 500 else "invalid_request_error")


def _error_body(status: int, message: str, type: str, code: str | None, param: str | None) -> JSONDict:
    if status == 401:  # the core raises its own wording for a bad key; answer as Anthropic does
        message = "invalid x-api-key" if message.startswith("Incorrect") else "x-api-key header is required"
    return {"type": "error", "error": {"type": _error_type(status), "message": message}}


def _status_error(status: int) -> JSONDict:
    return _error_body(status, _STATUS_MESSAGES.get(status, "Request failed."), "", None, None)


def _sse_error(error: Mapping[str, object]) -> bytes:
    kind = error.get("type")
    kind = "api_error" if kind in (None, "server_error") else kind  # the OpenAI-shaped default fault
    message = error.get("message") or "Internal server error"
    return _event("error", {"type": "error", "error": {"type": kind, "message": message}})


def _unknown_model(model: str, req: RecordedRequest) -> ApiError:
    return ApiError(404, f"model: {model}")  # rendered as a not_found_error


ANTHROPIC_DIALECT = Dialect(
    name="anthropic",
    extract_key=_x_api_key,
    error_body=_error_body,
    status_error=_status_error,
    sse_error=_sse_error,
    unknown_model=_unknown_model,
)
owns(r"/v1/(?:messages|complete)(?:/|\Z)", ANTHROPIC_DIALECT)


def _event(kind: str, data: Mapping[str, Any]) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + dumps(data) + b"\n\n"


# --------------------------------------------------------------------------- #
# Request reading
# --------------------------------------------------------------------------- #


def _blocks(content: object) -> list[JSONDict]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if isinstance(content, list) and all(isinstance(b, dict) for b in content):
        return content
    raise ApiError(400, "messages: content must be a string or a list of content blocks")


def _check(body: JSONDict, call: Call, *, generates: bool = True) -> list[tuple[str, list[JSONDict]]]:
    if "anthropic-version" not in call.request.headers:
        raise ApiError(400, "anthropic-version: header is required")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise ApiError(400, "model: Field required")
    max_tokens = body.get("max_tokens")
    if generates and (not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1):
        raise ApiError(400, "max_tokens: Field required")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        raise ApiError(400, "messages: Field required")
    turns: list[tuple[str, list[JSONDict]]] = []
    for i, m in enumerate(messages):
        role = m.get("role")
        if role not in ("user", "assistant"):
            raise ApiError(400, f"messages.{i}.role: Input should be 'user' or 'assistant'")
        blocks = _blocks(m.get("content"))
        # As the API does: every tool_result answers a tool_use of the assistant turn just before.
        asked = {b.get("id") for b in turns[-1][1] if b.get("type") == "tool_use"} if turns else set()
        for j, b in enumerate(blocks):
            if b.get("type") == "tool_result" and b.get("tool_use_id") not in asked:
                raise ApiError(
                    400,
                    f"messages.{i}.content.{j}: unexpected `tool_use_id` found in `tool_result` blocks: "
                    f"{b.get('tool_use_id')}. Each `tool_result` block must have a corresponding `tool_use` "
                    "block in the previous message.",
                )
        turns.append((role, blocks))
    return turns


def _input_tokens(body: JSONDict, turns: list[tuple[str, list[JSONDict]]]) -> int:
    return word_count(content_text(body.get("system"))) + sum(word_count(content_text(blocks)) for _, blocks in turns)


def _outcome(call: Call, body: JSONDict) -> tuple[Outcome, int]:
    turns = _check(body, call)
    last_role, last = turns[-1]
    results = [content_text(b.get("content")) for b in last if b.get("type") == "tool_result"]
    prompt = ""
    for role, blocks in reversed(turns):
        text = content_text([b for b in blocks if b.get("type") == "text"])
        if role == "user" and text:
            prompt = text
            break
    tools = {t["name"] for t in body.get("tools") or [] if isinstance(t, dict) and isinstance(t.get("name"), str)}
    out = decide(call.reply, prompt, results if last_role == "user" and results else None, tools)
    return out, _input_tokens(body, turns)


# --------------------------------------------------------------------------- #
# Reply rendering
# --------------------------------------------------------------------------- #


def _tool_input(arguments: str) -> Any:
    try:
        return json.loads(arguments)
    except ValueError:
        return arguments  # scripted malformed arguments are sent as they are


def _content(out: Outcome, thinking: str | None, seq: int) -> list[JSONDict]:
    blocks: list[JSONDict] = []
    if thinking is not None:
        blocks.append({"type": "thinking", "thinking": thinking, "signature": f"fake-signature-{seq}"})
    if out.text is not None:
        blocks.append({"type": "text", "text": out.text})
    for c in out.calls:
        blocks.append({"type": "tool_use", "id": c.id, "name": c.name, "input": _tool_input(c.arguments)})
    return blocks


def _stream_events(message: JSONDict, out: Outcome) -> list[bytes]:
    start = {**message, "content": [], "stop_reason": None,
             "usage": {**message["usage"], "output_tokens": 1}}
    events = [_event("message_start", {"type": "message_start", "message": start})]
    calls = iter(out.calls)
    for index, block in enumerate(message["content"]):
        kind = block["type"]
        if kind == "tool_use":
            head, deltas = {**block, "input": {}}, [
                {"type": "input_json_delta", "partial_json": frag} for frag in fragments(next(calls).arguments)
            ]
        elif kind == "thinking":
            head = {"type": "thinking", "thinking": "", "signature": ""}
            deltas = [{"type": "thinking_delta", "thinking": p} for p in split_pieces(block["thinking"])]
            deltas.append({"type": "signature_delta", "signature": block["signature"]})
        else:
            head = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": p} for p in split_pieces(block["text"])]
        events.append(_event("content_block_start", {"type": "content_block_start", "index": index,
                                                     "content_block": head}))
        if index == 0:
            events.append(_event("ping", {"type": "ping"}))
        events.extend(_event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d})
                      for d in deltas)
        events.append(_event("content_block_stop", {"type": "content_block_stop", "index": index}))
    events.append(_event("message_delta", {
        "type": "message_delta",
        "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
        "usage": {"output_tokens": message["usage"]["output_tokens"]},
    }))
    events.append(_event("message_stop", {"type": "message_stop"}))
    return events


@route("POST", r"/v1/messages", dialect=ANTHROPIC_DIALECT, conversational=True)
def messages(call: Call) -> Response:
    """Anthropic ``POST /v1/messages`` (plain and streamed)."""
    body = call.body_object()
    out, input_tokens = _outcome(call, body)
    thinking_on = isinstance(body.get("thinking"), dict) and body["thinking"].get("type") == "enabled"
    thinking = "Let me think about how to answer." if thinking_on else None
    message: JSONDict = {
        "id": f"msg_{call.seq}",
        "type": "message",
        "role": "assistant",
        "model": body_model(body),
        "content": _content(out, thinking, call.seq),
        "stop_reason": _STOP_REASONS.get(out.finish_reason, out.finish_reason),
        "stop_sequence": None,
        "usage": {
            "input_tokens": input_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": token_count(out),
        },
    }
    if not wants_stream(body):
        return Response.json(message)
    return Response(content_type=SSE_CT, events=_stream_events(message, out), sse_error=_sse_error)


@route("POST", r"/v1/messages/count_tokens", dialect=ANTHROPIC_DIALECT)
def count_tokens(call: Call) -> Response:
    """Anthropic ``POST /v1/messages/count_tokens``: the ``input_tokens`` that ``/v1/messages``
    would report for the same request (no ``max_tokens`` needed)."""
    body = call.body_object()
    return Response.json({"input_tokens": _input_tokens(body, _check(body, call, generates=False))})
