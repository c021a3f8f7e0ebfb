"""Bedrock's ConverseStream: the `application/vnd.amazon.eventstream` binary framing, decoded here
in a small bounded parser, and its events reassembled into the answer a Converse call returns.

A message on the wire:

    prelude   total length (4 bytes, big-endian) · headers length (4) · CRC32 of those 8 bytes (4)
    headers   name length (1) · name · value type (1) · value   (repeated; strings are 2-byte length + UTF-8)
    payload   total - headers - 16 bytes (JSON for Bedrock's events)
    trailer   CRC32 of everything before it (4)

Both CRCs are checked (zlib.crc32), a message is split anywhere across reads, and the lengths are
checked against `MAX_HEADERS_BYTES` / `MAX_PAYLOAD_BYTES` as soon as the 12-byte prelude is in,
before anything more is buffered: a corrupt or hostile length raises `StreamError`, never a huge
allocation. A stream that ends inside a message raises `StreamError` (retryable), as a cut one does.

Events (`:message-type: event`, named by `:event-type`): `messageStart` · `contentBlockStart`
(a tool call's id and name) · `contentBlockDelta` (`text`, `toolUse.input` JSON pieces,
`reasoningContent` text / signature / redactedContent) · `contentBlockStop` · `messageStop`
(stopReason) · `metadata` (usage, metrics; sent last). Text and reasoning are yielded as they come,
a tool call whole when its block stops; the final response is the reassembled Converse answer read
by the one `parse_converse`. An exception message (`:message-type: exception`, `:exception-type:
throttlingException`, payload `{"message"}`) raises `StreamError` naming the type, retryable for the
types the API says to retry (throttling, internal, unavailable, model stream errors and timeouts).
"""

from __future__ import annotations

import struct
import uuid
import zlib
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import attrs

from .. import _json
from ..errors import StreamError
from ..streaming import (
    FinalResponse,
    ReasoningChunk,
    StreamChunk,
    TextBuffer,
    TextChunk,
    ToolCallChunk,
    parse_tool_call,
)
from ._bedrock_wire import parse_converse

__all__ = ["EventMessage", "iter_event_messages", "encode_message", "stream_converse", "RETRYABLE_EXCEPTIONS",
           "MAX_HEADERS_BYTES", "MAX_PAYLOAD_BYTES"]

# The limits of the format (AWS's event-stream specification; botocore checks the same).
MAX_HEADERS_BYTES = 128 * 1024
MAX_PAYLOAD_BYTES = 24 * 2**20
_PRELUDE = struct.Struct(">III")
_PRELUDE_LEN = 12
_OVERHEAD = _PRELUDE_LEN + 4  # prelude and message CRC

# Exception types the API documents as worth the same request again.
RETRYABLE_EXCEPTIONS = frozenset({"throttlingException", "internalServerException", "serviceUnavailableException",
                                  "modelStreamErrorException", "modelTimeoutException", "modelNotReadyException"})

HeaderValue = bool | int | bytes | str | uuid.UUID


@attrs.frozen(slots=True)
class EventMessage:
    """One decoded event-stream message: its headers and its payload bytes."""

    headers: Mapping[str, HeaderValue]
    payload: bytes

    @property
    def message_type(self) -> str:
        kind = self.headers.get(":message-type")
        return kind if isinstance(kind, str) else "event"


def _broken(why: str) -> StreamError:
    # Garbled framing: a cut or corrupted connection, or not an event stream at all; asking again may help.
    return StreamError(f"the event stream is corrupt: {why}", retryable=True)


def _read_headers(data: bytes) -> dict[str, HeaderValue]:
    headers: dict[str, HeaderValue] = {}
    pos, end = 0, len(data)

    def take(n: int) -> bytes:
        nonlocal pos
        if pos + n > end:
            raise _broken("a header runs past the headers' length")
        piece = data[pos:pos + n]
        pos += n
        return piece

    while pos < end:
        name = take(take(1)[0]).decode("utf-8", "replace")
        kind = take(1)[0]
        value: HeaderValue
        if kind in (0, 1):
            value = kind == 0
        elif kind in (2, 3, 4, 5):
            size = {2: 1, 3: 2, 4: 4, 5: 8}[kind]
            value = int.from_bytes(take(size), "big", signed=True)
        elif kind in (6, 7):
            raw = take(int.from_bytes(take(2), "big"))
            value = raw if kind == 6 else raw.decode("utf-8", "replace")
        elif kind == 8:
            value = int.from_bytes(take(8), "big", signed=True)  # milliseconds since the epoch
        elif kind == 9:
            value = uuid.UUID(bytes=take(16))
        else:
            raise _broken(f"unknown header value type {kind}")
        headers[name] = value
    return headers


def iter_event_messages(chunks: Iterable[bytes]) -> Iterator[EventMessage]:
    """The messages of an event stream whose bytes arrive in `chunks` (split anywhere)."""
    buffer = bytearray()
    for chunk in chunks:
        buffer += chunk
        while len(buffer) >= _PRELUDE_LEN:
            total, headers_len, prelude_crc = _PRELUDE.unpack_from(buffer)
            if zlib.crc32(memoryview(buffer)[:8]) != prelude_crc:
                raise _broken("the prelude's CRC does not match (not an event stream, or garbled)")
            if headers_len > MAX_HEADERS_BYTES or total < _OVERHEAD + headers_len \
                    or total - _OVERHEAD - headers_len > MAX_PAYLOAD_BYTES:
                raise _broken(f"a message declares {total:,} bytes with {headers_len:,} of headers, "
                              f"beyond the format's limits")
            if len(buffer) < total:
                break  # the rest of this message is still to come
            view = memoryview(buffer)
            (message_crc,) = struct.unpack_from(">I", buffer, total - 4)
            if zlib.crc32(view[:total - 4]) != message_crc:
                raise _broken("a message's CRC does not match")
            headers = _read_headers(bytes(view[_PRELUDE_LEN:_PRELUDE_LEN + headers_len]))
            payload = bytes(view[_PRELUDE_LEN + headers_len:total - 4])
            view.release()
            del buffer[:total]
            yield EventMessage(headers, payload)
    if buffer:
        raise StreamError(f"the event stream ended inside a message ({len(buffer):,} bytes of it): the answer is "
                          "incomplete", retryable=True)


def encode_message(headers: Mapping[str, str], payload: bytes) -> bytes:
    """One event-stream message with string headers (for tests and test servers)."""
    encoded = b""
    for name, value in headers.items():
        raw_name, raw_value = name.encode(), value.encode()
        encoded += bytes([len(raw_name)]) + raw_name + b"\x07" + len(raw_value).to_bytes(2, "big") + raw_value
    total = _OVERHEAD + len(encoded) + len(payload)
    prelude = struct.pack(">II", total, len(encoded))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    body = prelude + encoded + payload
    return body + struct.pack(">I", zlib.crc32(body))


# --- ConverseStream events ------------------------------------------------------------------------


@attrs.define
class _Block:
    kind: str  # "text", "reasoning", "toolUse" or another start's kind
    start: dict[str, Any] = attrs.field(factory=dict)
    pieces: TextBuffer = attrs.field(factory=TextBuffer)
    signature: str | None = None
    redacted: list[str] = attrs.field(factory=list)
    done: bool = False


class _Converse:
    """The answer being streamed: blocks by index, then the stop reason and usage."""

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.role = "assistant"
        self.blocks: dict[int, _Block] = {}
        self.stop: dict[str, Any] | None = None
        self.metadata: dict[str, Any] | None = None

    def _bad(self, what: str, data: Any) -> StreamError:
        return StreamError(f"{self.provider} sent a {what} event it could not read: {str(data)[:200]}",
                           provider=self.provider, body=data)

    def _index(self, data: dict[str, Any], what: str) -> int:
        index = data.get("contentBlockIndex")
        if index.__class__ is not int or index < 0:
            raise self._bad(what, data)
        return int(index)

    def block_start(self, data: dict[str, Any]) -> None:
        start = data.get("start")
        if not isinstance(start, dict) or len(start) != 1:
            raise self._bad("contentBlockStart", data)
        ((kind, detail),) = start.items()
        if kind == "toolUse" and not (isinstance(detail, dict) and isinstance(detail.get("toolUseId"), str)
                                      and isinstance(detail.get("name"), str)):
            raise self._bad("contentBlockStart", data)
        self.blocks[self._index(data, "contentBlockStart")] = _Block(kind, detail if isinstance(detail, dict) else {})

    def delta(self, data: dict[str, Any]) -> StreamChunk | None:
        index = self._index(data, "contentBlockDelta")
        delta = data.get("delta")
        if not isinstance(delta, dict):
            raise self._bad("contentBlockDelta", data)
        if "text" in delta:
            block = self.blocks.setdefault(index, _Block("text"))  # text blocks come without a start
            piece = delta["text"]
            if isinstance(piece, str) and piece:
                block.pieces.append(piece)
                return TextChunk(piece)
        elif "toolUse" in delta:
            started = self.blocks.get(index)
            piece = delta["toolUse"].get("input") if isinstance(delta["toolUse"], dict) else None
            if started is None or started.kind != "toolUse" or not isinstance(piece, str):
                raise self._bad("contentBlockDelta", data)
            started.pieces.append(piece)
        elif "reasoningContent" in delta:
            block = self.blocks.setdefault(index, _Block("reasoning"))
            thought = delta["reasoningContent"]
            if not isinstance(thought, dict):
                raise self._bad("contentBlockDelta", data)
            if isinstance(thought.get("signature"), str):
                block.signature = thought["signature"]
            if isinstance(thought.get("redactedContent"), str):
                block.redacted.append(thought["redactedContent"])
            piece = thought.get("text")
            if isinstance(piece, str) and piece:
                block.pieces.append(piece)
                return ReasoningChunk(piece)
        return None  # citations, images and delta kinds newer than this code: the answer stands without them

    def block_stop(self, data: dict[str, Any]) -> StreamChunk | None:
        block = self.blocks.get(self._index(data, "contentBlockStop"))
        if block is None:
            return None  # a block that sent nothing (e.g. an empty text block)
        return self._close(block)

    def _close(self, block: _Block) -> StreamChunk | None:
        if block.done:
            return None
        block.done = True
        if block.kind == "toolUse":
            call = parse_tool_call(block.start["toolUseId"], block.start["name"], "".join(block.pieces),
                                   self.provider)
            return ToolCallChunk(call)
        return None

    def _content(self) -> list[dict[str, Any]]:
        content: list[dict[str, Any]] = []
        for index in sorted(self.blocks):
            block = self.blocks[index]
            joined = "".join(block.pieces)
            if block.kind == "text":
                content.append({"text": joined})
            elif block.kind == "reasoning":
                if block.redacted and not joined:
                    content.append({"reasoningContent": {"redactedContent": "".join(block.redacted)}})
                else:
                    text: dict[str, Any] = {"text": joined}
                    if block.signature is not None:
                        text["signature"] = block.signature
                    content.append({"reasoningContent": {"reasoningText": text}})
            elif block.kind == "toolUse":
                call = parse_tool_call(block.start["toolUseId"], block.start["name"], joined, self.provider)
                content.append({"toolUse": {"toolUseId": call.id, "name": call.name,
                                            "input": joined if call.invalid_arguments is not None else call.arguments}})
            else:
                content.append({block.kind: {**block.start, **({"input": joined} if joined else {})}})
        return content

    def finish(self) -> FinalResponse:
        assert self.stop is not None
        whole: dict[str, Any] = {"output": {"message": {"role": self.role, "content": self._content()}},
                                 "stopReason": self.stop.get("stopReason")}
        for key in ("additionalModelResponseFields",):
            if key in self.stop:
                whole[key] = self.stop[key]
        for key, value in (self.metadata or {}).items():
            whole.setdefault(key, value)  # usage, metrics, trace
        return FinalResponse(parse_converse(whole, self.provider))


def _payload(message: EventMessage, provider: str) -> Any:
    try:
        return _json.loads(message.payload) if message.payload else {}
    except _json.JSONDecodeError:
        raise StreamError(f"{provider} sent an event whose payload is not JSON: {message.payload[:200]!r}",
                          provider=provider) from None


def _header_text(message: EventMessage, name: str) -> str | None:
    value = message.headers.get(name)
    return value if isinstance(value, str) and value else None


def _raise_exception(message: EventMessage, provider: str) -> None:
    if message.message_type == "error":  # the protocol's own errors: :error-code / :error-message headers
        code, said = (_header_text(message, ":error-code"), _header_text(message, ":error-message"))
        raise StreamError(f"error mid-stream ({code or 'unknown'}): {said or 'no message'}", provider=provider,
                          body={"code": code, "message": said}, retryable=False)
    kind = _header_text(message, ":exception-type") or "unknown"
    try:
        data = _json.loads(message.payload) if message.payload else {}
    except _json.JSONDecodeError:
        data = message.payload.decode("utf-8", "replace")[:500]
    said = data.get("message") if isinstance(data, dict) else data
    said = said if isinstance(said, str) and said else str(data)[:500] or "no message"
    if isinstance(data, dict) and isinstance(data.get("originalMessage"), str):
        said = f"{said} ({data['originalMessage']})"
    raise StreamError(f"{kind} mid-stream: {said}", provider=provider,
                      body={"type": kind, **(data if isinstance(data, dict) else {"message": data})},
                      retryable=kind in RETRYABLE_EXCEPTIONS)


def stream_converse(messages: Iterator[EventMessage], provider: str) -> Iterator[StreamChunk]:
    """Chunks from a ConverseStream answer; complete once `messageStop` came (its usage follows in
    `metadata`, the last event)."""
    state = _Converse(provider)
    for message in messages:
        if message.message_type != "event":
            if message.message_type in ("exception", "error"):
                _raise_exception(message, provider)
            continue  # message types newer than this code
        kind = message.headers.get(":event-type")
        data = _payload(message, provider)
        if not isinstance(data, dict):
            raise StreamError(f"{provider} sent an event that is not an object: {str(data)[:200]}",
                              provider=provider, body=data)
        chunk: StreamChunk | None = None
        if kind == "contentBlockDelta":
            chunk = state.delta(data)
        elif kind == "contentBlockStart":
            state.block_start(data)
        elif kind == "contentBlockStop":
            chunk = state.block_stop(data)
        elif kind == "messageStart":
            if isinstance(data.get("role"), str):
                state.role = data["role"]
        elif kind == "messageStop":
            for block in state.blocks.values():
                if (late := state._close(block)) is not None:  # a block the stream never closed
                    yield late
            state.stop = data
        elif kind == "metadata":
            state.metadata = data
            if state.stop is not None:
                yield state.finish()
                return
        if chunk is not None:
            yield chunk
    if state.stop is not None:  # no metadata (no usage): the answer itself is whole
        yield state.finish()
        return
    raise StreamError(f"{provider} stream ended before messageStop: the answer is incomplete",
                      provider=provider, retryable=True)
