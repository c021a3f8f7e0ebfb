"""OpenAI wire format for the fake provider (routes under ``/v1``).

Importing this module registers the routes. Replies are deterministic: chat
and responses echo the last user message (``"echo: <text>"``), call tools on
request (``call:add {"a": 2}``), and summarise tool results.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
import time
import zlib
from collections.abc import Sequence

from ._conversation import (
    DEFAULT_MODEL,
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
from ._dialect import ApiError, JSONDict, dumps
from ._ndims import ndims_for
from ._routes import Call, Response, route
from ._values import ToolCall
from ._vectors import embed_text, embedding_b64, embedding_inputs, embedding_json

__all__ = ["DEFAULT_MODEL", "chat_outcome", "chat_tool_names", "embed_text", "tiny_png"]


# --------------------------------------------------------------------------- #
# Chat completions
# --------------------------------------------------------------------------- #


def chat_tool_names(body: JSONDict) -> set[str]:
    """The tool (and legacy function) names a chat completions body declares."""
    names: set[str] = set()
    for tool in body.get("tools") or []:
        if isinstance(tool, dict):
            fn = tool.get("function")
            if isinstance(fn, dict) and isinstance(fn.get("name"), str):
                names.add(fn["name"])
            elif isinstance(tool.get("name"), str):
                names.add(tool["name"])
    for fn in body.get("functions") or []:
        if isinstance(fn, dict) and isinstance(fn.get("name"), str):
            names.add(fn["name"])
    return names


def chat_outcome(call: Call, body: JSONDict) -> tuple[Outcome, int]:
    """A chat completions body's answer (see ``decide``) and its prompt tokens."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        raise ApiError(400, "'messages' is a required property", param="messages")
    tool_results: list[str] | None = None
    if messages and messages[-1].get("role") in ("tool", "function"):
        tool_results = []
        for m in reversed(messages):
            if m.get("role") not in ("tool", "function"):
                break
            tool_results.append(content_text(m.get("content")))
        tool_results.reverse()
    prompt = ""
    for m in reversed(messages):
        if m.get("role") == "user":
            prompt = content_text(m.get("content"))
            break
    prompt_tokens = sum(word_count(content_text(m.get("content"))) for m in messages)
    return decide(call.reply, prompt, tool_results, chat_tool_names(body)), prompt_tokens


def _chat_tool_call_json(c: ToolCall) -> JSONDict:
    return {
        "id": c.id,
        "type": "function",
        "function": {"name": c.name, "arguments": c.arguments},
    }


@route("POST", r"/v1/chat/completions", conversational=True)
def chat_completions(call: Call) -> Response:
    """OpenAI ``POST /v1/chat/completions`` (plain and streamed)."""
    body = call.body_object()
    out, prompt_tokens = chat_outcome(call, body)
    completion_tokens = token_count(out)
    usage = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }
    cid = f"chatcmpl-{call.seq}"
    created = int(time.time())
    model = body_model(body)
    if not wants_stream(body):
        message: JSONDict = {"role": "assistant", "content": out.text, "refusal": None}
        if out.calls:
            message["tool_calls"] = [_chat_tool_call_json(c) for c in out.calls]
        return Response.json(
            {
                "id": cid,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "system_fingerprint": "fp_fake",
                "choices": [
                    {
                        "index": 0,
                        "message": message,
                        "logprobs": None,
                        "finish_reason": out.finish_reason,
                    }
                ],
                "usage": usage,
            }
        )

    opts = body.get("stream_options")
    include_usage = isinstance(opts, dict) and opts.get("include_usage") is True

    def chunk(delta: JSONDict, finish: str | None = None) -> bytes:
        obj: JSONDict = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if include_usage:
            obj["usage"] = None
        return b"data: " + dumps(obj) + b"\n\n"

    events: list[bytes] = []
    if out.calls:
        for i, c in enumerate(out.calls):
            head: JSONDict = {
                "tool_calls": [
                    {
                        "index": i,
                        "id": c.id,
                        "type": "function",
                        "function": {"name": c.name, "arguments": ""},
                    }
                ]
            }
            if i == 0:
                head = {"role": "assistant", "content": None, **head}
            events.append(chunk(head))
            for frag in fragments(c.arguments):
                if frag:
                    events.append(chunk({"tool_calls": [{"index": i, "function": {"arguments": frag}}]}))
    else:
        events.append(chunk({"role": "assistant", "content": "", "refusal": None}))
        for piece in split_pieces(out.text or ""):
            events.append(chunk({"content": piece}))
    events.append(chunk({}, out.finish_reason))
    if include_usage:
        events.append(
            b"data: "
            + dumps(
                {
                    "id": cid,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "system_fingerprint": "fp_fake",
                    "choices": [],
                    "usage": usage,
                }
            )
            + b"\n\n"
        )
    events.append(b"data: [DONE]\n\n")
    return Response(content_type=SSE_CT, events=events)


# --------------------------------------------------------------------------- #
# Responses API
# --------------------------------------------------------------------------- #


def _responses_tool_names(body: JSONDict) -> set[str]:
    names: set[str] = set()
    for tool in body.get("tools") or []:
        if isinstance(tool, dict):
            if isinstance(tool.get("name"), str):
                names.add(tool["name"])
            fn = tool.get("function")
            if isinstance(fn, dict) and isinstance(fn.get("name"), str):
                names.add(fn["name"])
    return names


def _responses_outcome(call: Call, body: JSONDict) -> tuple[Outcome, int]:
    raw = body.get("input")
    instructions = body.get("instructions")
    prompt_tokens = word_count(instructions) if isinstance(instructions, str) else 0
    prompt = ""
    tool_results: list[str] | None = None
    if isinstance(raw, str):
        prompt = raw
        prompt_tokens += word_count(raw)
    elif isinstance(raw, list):
        items = [({"role": "user", "content": it} if isinstance(it, str) else it) for it in raw]
        if not all(isinstance(it, dict) for it in items):
            raise ApiError(400, "Invalid 'input': expected a list of items.", param="input")
        for it in items:
            kind = it.get("type", "message")
            if kind == "message" or (kind not in ("function_call", "function_call_output") and "role" in it):
                text = content_text(it.get("content"))
                prompt_tokens += word_count(text)
                if it.get("role") == "user":
                    prompt = text
            elif kind == "function_call_output":
                prompt_tokens += word_count(content_text(it.get("output")))
            elif kind == "function_call":
                prompt_tokens += word_count(str(it.get("arguments", "")))
        if items and items[-1].get("type") == "function_call_output":
            tool_results = []
            for it in reversed(items):
                if it.get("type") != "function_call_output":
                    break
                tool_results.append(content_text(it.get("output")))
            tool_results.reverse()
    elif raw is not None:
        raise ApiError(400, "Invalid 'input': expected a string or a list.", param="input")
    else:
        raise ApiError(400, "Missing required parameter: 'input'.", param="input")
    return decide(call.reply, prompt, tool_results, _responses_tool_names(body)), prompt_tokens


def _responses_sse_error(error: object) -> bytes:
    err = dict(error) if isinstance(error, dict) else {"message": str(error)}
    data = {
        "type": "error",
        "code": err.get("code"),
        "message": err.get("message"),
        "param": err.get("param"),
        "error": err,
    }
    return b"event: error\ndata: " + dumps(data) + b"\n\n"


@route("POST", r"/v1/responses", conversational=True)
def responses(call: Call) -> Response:
    """OpenAI ``POST /v1/responses`` (plain and streamed)."""
    body = call.body_object()
    out, input_tokens = _responses_outcome(call, body)
    output_tokens = token_count(out)
    rid = f"resp_{call.seq}"
    msg_id = f"msg_{call.seq}"
    created = int(time.time())
    model = body_model(body)

    items: list[JSONDict] = []
    if out.calls:
        for i, c in enumerate(out.calls):
            items.append(
                {
                    "type": "function_call",
                    "id": f"fc_{i}",
                    "call_id": c.id,
                    "name": c.name,
                    "arguments": c.arguments,
                    "status": "completed",
                }
            )
    else:
        items.append(
            {
                "type": "message",
                "id": msg_id,
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": out.text or "", "annotations": [], "logprobs": []}],
            }
        )

    def response_obj(status: str, output: list[JSONDict], with_usage: bool) -> JSONDict:
        return {
            "id": rid,
            "object": "response",
            "created_at": created,
            "status": status,
            "error": None,
            "incomplete_details": None,
            "instructions": body.get("instructions"),
            "max_output_tokens": body.get("max_output_tokens"),
            "model": model,
            "output": output,
            "parallel_tool_calls": body.get("parallel_tool_calls", True),
            "previous_response_id": body.get("previous_response_id"),
            "temperature": body.get("temperature", 1.0),
            "text": {"format": {"type": "text"}},
            "tool_choice": body.get("tool_choice", "auto"),
            "tools": body.get("tools") or [],
            "top_p": body.get("top_p", 1.0),
            "metadata": body.get("metadata") or {},
            "usage": (
                {
                    "input_tokens": input_tokens,
                    "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                    "output_tokens": output_tokens,
                    "output_tokens_details": {"reasoning_tokens": 0},
                    "total_tokens": input_tokens + output_tokens,
                }
                if with_usage
                else None
            ),
        }

    if not wants_stream(body):
        return Response.json(response_obj("completed", items, True))

    events: list[bytes] = []

    def emit(kind: str, **fields: object) -> None:
        data = {"type": kind, "sequence_number": len(events), **fields}
        events.append(b"event: " + kind.encode() + b"\ndata: " + dumps(data) + b"\n\n")

    emit("response.created", response=response_obj("in_progress", [], False))
    emit("response.in_progress", response=response_obj("in_progress", [], False))
    for idx, item in enumerate(items):
        if item["type"] == "function_call":
            emit(
                "response.output_item.added",
                output_index=idx,
                item={**item, "arguments": "", "status": "in_progress"},
            )
            for frag in fragments(item["arguments"]):
                if frag:
                    emit(
                        "response.function_call_arguments.delta",
                        item_id=item["id"],
                        output_index=idx,
                        delta=frag,
                    )
            emit(
                "response.function_call_arguments.done",
                item_id=item["id"],
                output_index=idx,
                arguments=item["arguments"],
            )
        else:
            text = item["content"][0]["text"]
            emit(
                "response.output_item.added",
                output_index=idx,
                item={**item, "status": "in_progress", "content": []},
            )
            emit(
                "response.content_part.added",
                item_id=item["id"],
                output_index=idx,
                content_index=0,
                part={"type": "output_text", "text": "", "annotations": [], "logprobs": []},
            )
            for piece in split_pieces(text):
                emit(
                    "response.output_text.delta",
                    item_id=item["id"],
                    output_index=idx,
                    content_index=0,
                    delta=piece,
                    logprobs=[],
                )
            emit(
                "response.output_text.done",
                item_id=item["id"],
                output_index=idx,
                content_index=0,
                text=text,
                logprobs=[],
            )
            emit(
                "response.content_part.done",
                item_id=item["id"],
                output_index=idx,
                content_index=0,
                part=item["content"][0],
            )
        emit("response.output_item.done", output_index=idx, item=item)
    emit("response.completed", response=response_obj("completed", items, True))
    return Response(content_type=SSE_CT, events=events, sse_error=_responses_sse_error)


# --------------------------------------------------------------------------- #
# Embeddings
# --------------------------------------------------------------------------- #


@route("POST", r"/v1/embeddings")
def embeddings(call: Call) -> Response:
    """OpenAI ``POST /v1/embeddings`` with text-derived, similarity-preserving vectors."""
    body = call.body_object()
    texts = embedding_inputs(body.get("input"))
    # `output_dimension`: the size field of Mistral and Voyage, whose embeddings this route serves too
    # (the voyageai SDK sends it as null when not asked).
    asked = [body[k] for k in ("dimensions", "output_dimension") if body.get(k) is not None]
    dims_raw = asked[0] if asked else ndims_for(body_model(body))
    if not isinstance(dims_raw, int) or isinstance(dims_raw, bool) or not 1 <= dims_raw <= 65536:
        raise ApiError(400, "'dimensions' must be a positive integer.", param="dimensions")
    fmt = body.get("encoding_format", "float") or "float"
    if fmt not in ("float", "base64"):
        raise ApiError(
            400,
            "'encoding_format' must be 'float' or 'base64'.",
            param="encoding_format",
        )
    render = embedding_json if fmt == "float" else embedding_b64
    items = [f'{{"object":"embedding","index":{i},"embedding":{render(t, dims_raw)}}}' for i, t in enumerate(texts)]
    tokens = sum(word_count(t) for t in texts)
    model = json.dumps(body_model(body))
    out = (  # an `id`, as Mistral's answers (served here too) have it: the mistralai SDK requires it
        f'{{"id":"embd-{call.seq}","object":"list","data":['
        + ",".join(items)
        + f'],"model":{model},"usage":{{"prompt_tokens":{tokens},"total_tokens":{tokens}}}}}'
    )
    return Response(body=out.encode("utf-8"))


# --------------------------------------------------------------------------- #
# Audio
# --------------------------------------------------------------------------- #


def _transcribe(call: Call, verb: str) -> Response:
    req = call.request
    if "multipart/form-data" not in req.headers.get("content-type", ""):
        raise ApiError(400, "Expected multipart/form-data.")
    upload = req.files.get("file")
    if upload is None:
        raise ApiError(400, "Missing required parameter: 'file'.", param="file")
    filename, data = upload
    if not data:
        raise ApiError(400, "The audio file is empty.", param="file", code="empty_file")
    if "model" not in req.form:
        raise ApiError(400, "Missing required parameter: 'model'.", param="model")
    text = f"{verb} {len(data)} bytes from {filename}"
    language = req.form.get("language")
    fmt = req.form.get("response_format", "json") or "json"
    if fmt == "text":
        return Response(body=text.encode("utf-8"), content_type="text/plain; charset=utf-8")
    if fmt in ("srt", "vtt"):
        cue = "00:00:00,000 --> 00:00:01,000" if fmt == "srt" else "00:00:00.000 --> 00:00:01.000"
        head = "1\n" if fmt == "srt" else "WEBVTT\n\n"
        return Response(
            body=f"{head}{cue}\n{text}\n".encode(),
            content_type="text/plain; charset=utf-8",
        )
    obj: JSONDict = {"text": text}
    if language:
        obj["language"] = language
    if fmt == "verbose_json":
        obj = {
            "task": "transcribe" if verb == "transcribed" else "translate",
            "language": language or "english",
            "duration": round(len(data) / 16000, 3),
            "text": text,
            "segments": [],
        }
    return Response.json(obj)


@route("POST", r"/v1/audio/transcriptions", expects_json=False)
def audio_transcriptions(call: Call) -> Response:
    """OpenAI ``POST /v1/audio/transcriptions`` (multipart upload)."""
    return _transcribe(call, "transcribed")


@route("POST", r"/v1/audio/translations", expects_json=False)
def audio_translations(call: Call) -> Response:
    """OpenAI ``POST /v1/audio/translations`` (multipart upload)."""
    return _transcribe(call, "translated")


def _wav(text: str, sample_rate: int = 8000, n_samples: int = 400) -> bytes:
    seed = hashlib.sha256(text.encode("utf-8")).digest()
    pcm = (seed * (2 * n_samples // len(seed) + 1))[: 2 * n_samples]
    header = b"RIFF" + struct.pack("<I", 36 + len(pcm)) + b"WAVE"
    fmt = b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, sample_rate * 2, 2, 16)
    return header + fmt + b"data" + struct.pack("<I", len(pcm)) + pcm


_AUDIO_TYPES = {
    "mp3": "audio/mpeg",
    "opus": "audio/opus",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm",
}


@route("POST", r"/v1/audio/speech")
def audio_speech(call: Call) -> Response:
    """OpenAI ``POST /v1/audio/speech``: a tiny WAV or ``b"FAKEAUDIO"``-prefixed bytes."""
    body = call.body_object()
    text = body.get("input")
    if not isinstance(text, str) or not text:
        raise ApiError(400, "Missing required parameter: 'input'.", param="input")
    fmt = body.get("response_format") or "mp3"
    if not isinstance(fmt, str) or fmt not in _AUDIO_TYPES:
        raise ApiError(400, f"Invalid 'response_format': {fmt!r}.", param="response_format")
    if fmt == "wav":
        return Response(body=_wav(text), content_type="audio/wav")
    digest = hashlib.sha256(f"{fmt}|{body.get('voice')}|{text}".encode()).digest()
    return Response(body=b"FAKEAUDIO" + digest, content_type=_AUDIO_TYPES[fmt])


# --------------------------------------------------------------------------- #
# Images
# --------------------------------------------------------------------------- #


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def tiny_png(seed: str) -> bytes:
    """A valid 1x1 RGB PNG whose colour is derived from ``crc32(seed)``."""
    c = zlib.crc32(seed.encode("utf-8"))
    rgb = bytes(((c >> 16) & 0xFF, (c >> 8) & 0xFF, c & 0xFF))
    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" + rgb)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


@route("POST", r"/v1/images/generations")
def images_generations(call: Call) -> Response:
    """OpenAI ``POST /v1/images/generations``: 1x1 PNGs coloured by the prompt."""
    body = call.body_object()
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt:
        raise ApiError(400, "Missing required parameter: 'prompt'.", param="prompt")
    n = body.get("n", 1)
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 10:
        raise ApiError(400, "'n' must be between 1 and 10.", param="n")
    data: list[JSONDict] = []
    for i in range(n):
        png = tiny_png(prompt if i == 0 else f"{prompt}#{i}")
        b64 = base64.b64encode(png).decode("ascii")
        item: JSONDict = {"b64_json": b64, "revised_prompt": prompt}
        if body.get("response_format") == "url":
            item = {"url": "data:image/png;base64," + b64, "revised_prompt": prompt}
        data.append(item)
    return Response.json({"created": int(time.time()), "data": data})


# --------------------------------------------------------------------------- #
# Models
# --------------------------------------------------------------------------- #

_MODELS: Sequence[str] = (
    DEFAULT_MODEL,
    "gpt-4o",
    "gpt-4o-mini",
    "text-embedding-3-small",
    "whisper-1",
    "tts-1",
    "dall-e-3",
)


def _model_obj(name: str) -> JSONDict:
    return {"id": name, "object": "model", "created": 0, "owned_by": "rig-sync-fake"}


@route("GET", r"/v1/models")
def list_models(call: Call) -> Response:
    """OpenAI ``GET /v1/models``: the fake's ``models`` when it was given some."""
    names = _MODELS if call.provider.models is None else sorted(call.provider.models)
    return Response.json({"object": "list", "data": [_model_obj(m) for m in names]})


@route("GET", r"/v1/models/(?P<model>[^/]+)")
def get_model(call: Call) -> Response:
    """OpenAI ``GET /v1/models/{model}`` (any model id exists, unless ``FakeProvider(models=...)``)."""
    return Response.json(_model_obj(call.match.group("model")))
