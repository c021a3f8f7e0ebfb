"""Amazon Bedrock Runtime for the fake provider: ``POST /model/{modelId}/converse``,
``/converse-stream`` and ``/invoke`` (Titan and Cohere embeddings).

Importing this module registers the routes. Behaviour matches the other dialects (echo, ``call:``
tool calls on request, ``tool result: …`` after tool results, scripted replies, faults), spoken the
Bedrock way: a Bedrock API key (``Authorization: Bearer``) or a SigV4 ``Authorization`` header,
whose shape is checked (``AWS4-HMAC-SHA256 Credential=<key>/<yyyymmdd>/<region>/bedrock/aws4_request,
SignedHeaders=…, Signature=<64 hex>`` with a matching ``X-Amz-Date``; the signature itself is not
recomputed: the fake knows no secret) and a malformed one refused with 403
``IncompleteSignatureException``; errors as ``{"message"}`` with the type in ``x-amzn-errortype``
and the request id in ``x-amzn-requestid``; the stream in real ``application/vnd.amazon.eventstream``
framing (CRC-checked binary messages), its error as an exception message. The model id is read from
the path (percent-decoded), so ``FakeProvider(models=[...])`` does not apply to these routes.
"""

from __future__ import annotations

import json
import re
import struct
import zlib
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from .._checks import is_whole
from ._conversation import Outcome, content_text, decide, fragments, split_pieces, token_count, word_count
from ._dialect import ApiError, Dialect, JSONDict, dumps
from ._routes import Call, Response, owns, route
from ._values import RecordedRequest
from ._vectors import embed_text

__all__ = ["BEDROCK_DIALECT", "EVENTSTREAM_CT", "event_message"]

EVENTSTREAM_CT = "application/vnd.amazon.eventstream"
_CORAL = "http://internal.amazon.com/coral/com.amazon.bedrock/"
# The error type each status gets when a fault or the core asks for a bare status.
_TYPES: dict[int, tuple[str, str]] = {
    400: ("ValidationException", "Malformed input request, please reformat your input and try again."),
    401: ("UnrecognizedClientException", "The security token included in the request is invalid."),
    403: ("AccessDeniedException", "You don't have access to the model with the specified model ID."),
    404: ("ResourceNotFoundException", "Could not resolve the foundation model from the provided model identifier."),
    408: ("ModelTimeoutException", "Model has timed out in processing the request. Try your request again."),
    424: ("ModelErrorException", "The model failed to process the request."),
    429: ("ThrottlingException", "Too many requests, please wait before trying again."),
    500: ("InternalServerException", "The system encountered an unexpected error during processing. Try your "
                                     "request again."),
    503: ("ServiceUnavailableException", "Bedrock is unable to process your request."),
}
# An OpenAI-shaped fault's error `type` as the stream's exception type.
_STREAM_EXCEPTIONS = {"rate_limit_error": "throttlingException", "requests": "throttlingException",
                      "overloaded_error": "serviceUnavailableException",
                      "invalid_request_error": "validationException"}
_STOP_REASONS = {"stop": "end_turn", "tool_calls": "tool_use", "length": "max_tokens",
                 "content_filter": "content_filtered"}
_SIGV4 = re.compile(r"AWS4-HMAC-SHA256 Credential=(?P<key>[A-Za-z0-9]{8,128})/(?P<date>\d{8})/(?P<region>[a-z0-9-]+)"
                    r"/bedrock/aws4_request, ?SignedHeaders=(?P<signed>[a-z0-9-]+(?:;[a-z0-9-]+)*), ?"
                    r"Signature=(?P<signature>[0-9a-f]{64})")
# Vector sizes of the embedding models (a request's `dimensions` / `output_dimension` wins).
_NDIMS = {"amazon.titan-embed-text-v2:0": 1024, "amazon.titan-embed-text-v1": 1536,
          "cohere.embed-english-v3": 1024, "cohere.embed-multilingual-v3": 1024, "cohere.embed-v4:0": 1536}


def _key(req: RecordedRequest) -> str | None:
    """The Bedrock API key, or a SigV4 header's access key id (the whole header when it is
    malformed: the route refuses it then, in Bedrock's words)."""
    auth = req.headers.get("authorization", "").strip()
    scheme, _, rest = auth.partition(" ")
    if scheme.lower() == "bearer" and rest.strip():
        return rest.strip()
    if scheme == "AWS4-HMAC-SHA256":
        found = _SIGV4.fullmatch(auth)
        return found.group("key") if found else auth
    return None


def _type_for(status: int) -> tuple[str, str]:
    return _TYPES.get(status) or (("InternalServerException", "Internal error") if status >= 500
                                  else ("ValidationException", "Request failed."))


def _error_body(status: int, message: str, type: str, code: str | None, param: str | None) -> JSONDict:
    if status == 401:  # the core's wording for a bad or missing key, as Bedrock says it
        message = _TYPES[401][1] if message.startswith("Incorrect") else "Missing Authentication Token"
    return {"message": message}


def _status_error(status: int) -> JSONDict:
    return {"message": _type_for(status)[1]}


def event_message(headers: Mapping[str, str], payload: bytes) -> bytes:
    """One event-stream message (prelude, string headers, payload, both CRC32s)."""
    encoded = b"".join(bytes([len(k.encode())]) + k.encode() + b"\x07" + struct.pack(">H", len(v.encode()))
                       + v.encode() for k, v in headers.items())
    prelude = struct.pack(">II", 16 + len(encoded) + len(payload), len(encoded))
    message = prelude + struct.pack(">I", zlib.crc32(prelude)) + encoded + payload
    return message + struct.pack(">I", zlib.crc32(message))


def _event(kind: str, data: Mapping[str, Any]) -> bytes:
    return event_message({":event-type": kind, ":content-type": "application/json", ":message-type": "event"},
                         dumps(dict(data)))


def _sse_error(error: Mapping[str, object]) -> bytes:
    kind = str(error.get("type") or "")
    exception = (kind if kind.endswith("Exception") else _STREAM_EXCEPTIONS.get(kind, "internalServerException"))
    message = error.get("message") or "The system encountered an unexpected error during processing."
    return event_message({":exception-type": exception, ":content-type": "application/json",
                          ":message-type": "exception"}, dumps({"message": message}))


def _unknown_model(model: str, req: RecordedRequest) -> ApiError:
    return ApiError(400, "The provided model identifier is invalid.")


BEDROCK_DIALECT = Dialect(
    name="bedrock",
    extract_key=_key,
    error_body=_error_body,
    status_error=_status_error,
    sse_error=_sse_error,
    unknown_model=_unknown_model,
)
owns(r"/model/", BEDROCK_DIALECT)


class _Refused(Exception):
    """A Bedrock error with its type (sent in `x-amzn-errortype`, which `ApiError` cannot carry)."""

    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.status, self.kind, self.message = status, kind, message


def _headers(call: Call, *more: tuple[str, str]) -> list[tuple[str, str]]:
    return [("x-amzn-requestid", call.request_id), *more]


def _refusal(call: Call, err: _Refused) -> Response:
    return Response(status=err.status, body=dumps({"message": err.message}),
                    headers=_headers(call, ("x-amzn-errortype", f"{err.kind}:{_CORAL}")))


def _check_signature(call: Call) -> None:
    auth = call.request.headers.get("authorization", "").strip()
    if not auth.startswith("AWS4-HMAC-SHA256"):
        return  # a Bedrock API key
    found = _SIGV4.fullmatch(auth)
    if found is None:
        raise _Refused(403, "IncompleteSignatureException",
                       "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters "
                       f"in the AWS4-HMAC-SHA256 form. Authorization={auth[:40]}…")
    date = call.request.headers.get("x-amz-date", "")
    signed = found.group("signed").split(";")
    if not re.fullmatch(r"\d{8}T\d{6}Z", date) or date[:8] != found.group("date"):
        raise _Refused(403, "IncompleteSignatureException",
                       "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP")
    if "host" not in signed or "x-amz-date" not in signed:
        raise _Refused(403, "InvalidSignatureException", "'Host' or 'x-amz-date' must be a signed header.")


def _model_id(call: Call) -> str:
    return unquote(call.match.group("model_id"))


# --------------------------------------------------------------------------- #
# Converse
# --------------------------------------------------------------------------- #


def _turns(body: JSONDict) -> list[tuple[str, list[JSONDict]]]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _Refused(400, "ValidationException", "The messages field is required and must not be empty.")
    turns: list[tuple[str, list[JSONDict]]] = []
    for i, m in enumerate(messages):
        role = m.get("role") if isinstance(m, dict) else None
        content = m.get("content") if isinstance(m, dict) else None
        if role not in ("user", "assistant") or not isinstance(content, list) or not content \
                or not all(isinstance(b, dict) and len(b) == 1 for b in content):
            raise _Refused(400, "ValidationException", f"messages.{i}: a role and a list of content blocks "
                                                       "(one field each) are required")
        if (turns and turns[-1][0] == role) or (not turns and role != "user"):
            raise _Refused(400, "ValidationException", "A conversation must start with a user message and "
                                                       "alternate between user and assistant roles.")
        for block in content:
            if "text" in block and not (isinstance(block["text"], str) and block["text"].strip()):
                raise _Refused(400, "ValidationException", "The text field in the ContentBlock object at "
                                                           f"messages.{i} is blank. Add text and try again.")
        asked = {b["toolUse"].get("toolUseId") for b in turns[-1][1] if "toolUse" in b} if turns else set()
        for block in content:
            if "toolResult" in block and block["toolResult"].get("toolUseId") not in asked:
                raise _Refused(400, "ValidationException", "The toolUseId in a toolResult block matches no "
                                                           "toolUse block of the previous turn.")
        turns.append((role, content))
    return turns


def _tool_names(body: JSONDict, turns: list[tuple[str, list[JSONDict]]]) -> set[str]:
    config = body.get("toolConfig")
    tools = config.get("tools") if isinstance(config, dict) else None
    uses_tools = any("toolUse" in b or "toolResult" in b for _, blocks in turns for b in blocks)
    if uses_tools and not tools:
        raise _Refused(400, "ValidationException", "The toolConfig field must be defined when using toolUse and "
                                                   "toolResult content blocks.")
    names: set[str] = set()
    for tool in tools or []:
        spec = tool.get("toolSpec") if isinstance(tool, dict) else None
        if not (isinstance(spec, dict) and isinstance(spec.get("name"), str)
                and isinstance((spec.get("inputSchema") or {}).get("json"), dict)):
            raise _Refused(400, "ValidationException", "Each tool needs toolSpec.name and toolSpec.inputSchema.json.")
        names.add(spec["name"])
    return names


def _outcome(call: Call, body: JSONDict) -> tuple[Outcome, int]:
    turns = _turns(body)
    names = _tool_names(body, turns)
    role, last = turns[-1]
    results = [content_text(b["toolResult"].get("content")) for b in last if "toolResult" in b]
    prompt = ""
    for r, blocks in reversed(turns):
        text = content_text([b for b in blocks if "text" in b])
        if r == "user" and text:
            prompt = text
            break
    system = content_text(body.get("system"))
    tokens = word_count(system) + sum(word_count(content_text([b for b in blocks if "text" in b]))
                                      for _, blocks in turns)
    return decide(call.reply, prompt, results if role == "user" and results else None, names), max(tokens, 1)


def _tool_input(arguments: str) -> Any:
    try:
        return json.loads(arguments)
    except ValueError:
        return arguments


def _answer(call: Call) -> tuple[JSONDict, Outcome]:
    _check_signature(call)
    out, input_tokens = _outcome(call, call.body_object())
    content: list[JSONDict] = []
    if out.text is not None:
        content.append({"text": out.text})
    for c in out.calls:
        content.append({"toolUse": {"toolUseId": c.id, "name": c.name, "input": _tool_input(c.arguments)}})
    output = token_count(out)
    return {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": _STOP_REASONS.get(out.finish_reason, out.finish_reason),
        "usage": {"inputTokens": input_tokens, "outputTokens": output, "totalTokens": input_tokens + output},
        "metrics": {"latencyMs": 1},
    }, out


@route("POST", r"/model/(?P<model_id>[^/]+)/converse", dialect=BEDROCK_DIALECT, conversational=True)
def converse(call: Call) -> Response:
    """Bedrock ``Converse``: one whole answer."""
    try:
        answer, _ = _answer(call)
    except _Refused as err:
        return _refusal(call, err)
    return Response(body=dumps(answer), headers=_headers(call))


@route("POST", r"/model/(?P<model_id>[^/]+)/converse-stream", dialect=BEDROCK_DIALECT, conversational=True)
def converse_stream(call: Call) -> Response:
    """Bedrock ``ConverseStream``: the answer as event-stream messages, in the API's order."""
    try:
        answer, out = _answer(call)
    except _Refused as err:
        return _refusal(call, err)
    events = [_event("messageStart", {"role": "assistant"})]
    calls = iter(out.calls)
    for index, block in enumerate(answer["output"]["message"]["content"]):
        if "text" in block:
            events.extend(_event("contentBlockDelta", {"contentBlockIndex": index, "delta": {"text": piece}})
                          for piece in split_pieces(block["text"]))
        else:
            use, raw = block["toolUse"], next(calls).arguments
            events.append(_event("contentBlockStart", {"contentBlockIndex": index, "start": {
                "toolUse": {"toolUseId": use["toolUseId"], "name": use["name"]}}}))
            events.extend(_event("contentBlockDelta", {"contentBlockIndex": index, "delta": {"toolUse": {"input": f}}})
                          for f in fragments(raw))
        events.append(_event("contentBlockStop", {"contentBlockIndex": index}))
    events.append(_event("messageStop", {"stopReason": answer["stopReason"]}))
    events.append(_event("metadata", {"usage": answer["usage"], "metrics": answer["metrics"]}))
    return Response(content_type=EVENTSTREAM_CT, events=events, sse_error=_sse_error, headers=_headers(call))


# --------------------------------------------------------------------------- #
# InvokeModel: embeddings
# --------------------------------------------------------------------------- #


def _size(body: JSONDict, field: str, default: int) -> int:
    size = body.get(field, default)
    if not is_whole(size) or size < 1:
        raise _Refused(400, "ValidationException", f"{field} must be a positive integer")
    return size


def _titan(body: JSONDict, model: str) -> tuple[JSONDict, int]:
    text = body.get("inputText")
    if not isinstance(text, str) or not text:
        raise _Refused(400, "ValidationException", "Malformed input request: #: required key [inputText] not found")
    size = _size(body, "dimensions", _NDIMS.get(model, 1024))
    vector = embed_text(text, size)
    tokens = max(word_count(text), 1)
    answer: JSONDict = {"embedding": vector, "inputTextTokenCount": tokens}
    if "v2" in model:
        answer["embeddingsByType"] = {"float": vector}
    return answer, tokens


def _cohere(body: JSONDict, model: str) -> tuple[JSONDict, int]:
    texts, input_type = body.get("texts"), body.get("input_type")
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) and t for t in texts):
        raise _Refused(400, "ValidationException", "Malformed input request: texts must be a non-empty list")
    if len(texts) > 96:
        raise _Refused(400, "ValidationException", "Malformed input request: texts: expected maxItems: 96")
    if input_type not in ("search_document", "search_query", "classification", "clustering", "image"):
        raise _Refused(400, "ValidationException", "Malformed input request: input_type is required")
    size = _size(body, "output_dimension", _NDIMS.get(model, 1024))
    vectors = [embed_text(t, size) for t in texts]
    tokens = sum(max(word_count(t), 1) for t in texts)
    if "embed-v4" in model:
        return {"id": "fake-embed", "texts": texts, "embeddings": {"float": vectors},
                "response_type": "embeddings_by_type"}, tokens
    return {"id": "fake-embed", "texts": texts, "embeddings": vectors, "response_type": "embeddings_floats"}, tokens


@route("POST", r"/model/(?P<model_id>[^/]+)/invoke", dialect=BEDROCK_DIALECT)
def invoke(call: Call) -> Response:
    """Bedrock ``InvokeModel`` for Titan (one ``inputText``) and Cohere (``texts``) embeddings."""
    try:
        _check_signature(call)
        model, body = _model_id(call), call.body_object()
        base = model.rpartition("/")[2].split(".", 1)[-1] if model.startswith(("us.", "eu.", "apac.")) else model
        if base.startswith("amazon.titan-embed-text"):
            answer, tokens = _titan(body, base)
        elif base.startswith("cohere.embed"):
            answer, tokens = _cohere(body, base)
        else:
            raise _Refused(400, "ValidationException", "The provided model identifier is invalid.")
    except _Refused as err:
        return _refusal(call, err)
    return Response(body=dumps(answer), headers=_headers(call, ("x-amzn-bedrock-input-token-count", str(tokens))))
