"""Stream framing: byte chunks -> lines -> Server-Sent Events (and NDJSON lines).

Incremental and allocation-light: it handles `\\n`, `\\r\\n` and `\\r` line ends split anywhere
across chunks, multi-line `data:` fields, comments, and discards a half-received event at the
end of the stream (as the SSE spec says), so a cut-off stream is never mistaken for a whole one.
One field outside the spec is kept: an `error: …` line (llama.cpp fails a stream so, then sends
`data: [DONE]`) reads as an event named "error" carrying that value, so it cannot pass unseen.

Memory stays bounded whatever the server sends: a line, or an event's data, longer than
`MAX_EVENT_BYTES` raises `StreamError` instead of growing a buffer until the process dies.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import NamedTuple

from .errors import StreamError

__all__ = ["MAX_EVENT_BYTES", "SSEEvent", "LineSplitter", "iter_lines", "iter_sse", "event_too_long"]

# The largest single event or line a stream may send. Real events are small (a token, a tool-call
# delta) except those carrying media, such as a streamed partial image or a Gemini inline image,
# base64 (a 1536x1024 PNG is some 3-8 MiB); 16 MiB is twice that, and bounds what the framer buffers
# (with its copies, a few times this) when a server never ends a line. Read when a stream starts:
# set `rig_sync.sse.MAX_EVENT_BYTES` to change it for every provider, or pass `max_bytes=`.
MAX_EVENT_BYTES = 16 * 2**20


def event_too_long(limit: int) -> StreamError:
    """The error for a line or event past `limit` bytes (the stream is dropped: it cannot resync)."""
    return StreamError(f"the server sent a stream line or event longer than {limit:,} bytes without ending it "
                       "(the limit is rig_sync.sse.MAX_EVENT_BYTES)")


class SSEEvent(NamedTuple):
    """One Server-Sent Event: its type (None for the default "message"), data and last event id.
    (A tuple: one is made per event of every stream.)"""

    event: str | None
    data: str
    id: str | None = None


class LineSplitter:
    """Feed byte chunks, get back the complete lines (without line ends) each one finishes.
    A line longer than `max_bytes` (default `MAX_EVENT_BYTES`) raises `StreamError`."""

    __slots__ = ("_pending", "_pending_cr", "max_bytes")

    def __init__(self, max_bytes: int | None = None) -> None:
        self._pending = bytearray()  # grows in place: a long line in tiny chunks stays linear
        self._pending_cr = False  # the previous chunk ended in "\r": a leading "\n" belongs to it
        self.max_bytes = MAX_EVENT_BYTES if max_bytes is None else max_bytes

    def feed(self, chunk: bytes) -> list[bytes]:
        if not chunk:
            return []
        if self._pending_cr and chunk[:1] == b"\n":
            chunk = chunk[1:]
        self._pending_cr = chunk[-1:] == b"\r"
        if b"\r" in chunk:
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        limit = self.max_bytes
        if b"\n" not in chunk:
            if len(self._pending) + len(chunk) > limit:
                raise event_too_long(limit)
            self._pending += chunk
            return []
        lines = chunk.split(b"\n")
        if self._pending:
            lines[0] = bytes(self._pending) + lines[0]
            self._pending.clear()
        # Only a carried-over line, or a chunk itself longer than the limit, can hold a line past it.
        if len(lines[0]) > limit or (len(chunk) > limit and max(map(len, lines)) > limit):
            raise event_too_long(limit)
        self._pending += lines.pop()
        return lines

    def tail(self) -> bytes:
        """What is left after the last line end (an unterminated last line, or b"")."""
        return bytes(self._pending)


def iter_lines(chunks: Iterable[bytes], *, max_bytes: int | None = None) -> Iterator[bytes]:
    """Lines from arbitrarily split byte chunks. A final line without a line end is yielded too:
    NDJSON readers decide whether it is whole. A line past `max_bytes` raises `StreamError`."""
    splitter = LineSplitter(max_bytes)
    for chunk in chunks:
        yield from splitter.feed(chunk)
    if splitter.tail():
        yield splitter.tail()


def iter_sse(chunks: Iterable[bytes], *, max_bytes: int | None = None) -> Iterator[SSEEvent]:
    """Server-Sent Events from byte chunks, in order. A line, or an event's data lines together,
    past `max_bytes` (default `MAX_EVENT_BYTES`) raise `StreamError`."""
    splitter = LineSplitter(max_bytes)
    limit = splitter.max_bytes
    event: str | None = None
    data: list[bytes] = []
    size = 0  # bytes of the data lines held: endless short "data:" lines are bounded too
    last_id: str | None = None
    first = True
    for chunk in chunks:
        for line in splitter.feed(chunk):
            if first:
                first = False
                if line.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte order mark may open the stream
                    line = line[3:]
            if not line:
                if data and (len(data) > 1 or data[0]):  # the spec dispatches nothing for empty data
                    text = data[0] if len(data) == 1 else b"\n".join(data)
                    yield SSEEvent(event, text.decode("utf-8", "replace"), last_id)
                event, data, size = None, [], 0
            elif line.startswith(b"data:"):  # the hot path: one per event
                data.append(line[6:] if line[5:6] == b" " else line[5:])
                size += len(line)
                if size > limit:
                    raise event_too_long(limit)
            elif line[:1] == b":":
                continue
            else:
                name, sep, value = line.partition(b":")
                if sep and value[:1] == b" ":
                    value = value[1:]
                if name == b"event":
                    event = value.decode("utf-8", "replace")
                elif name == b"id" and b"\0" not in value:  # the spec ignores ids containing NUL
                    last_id = value.decode("utf-8", "replace")
                elif name == b"data":  # "data" with no colon: an empty data line
                    data.append(b"")
                    size += len(line)
                    if size > limit:
                        raise event_too_long(limit)
                elif name == b"error" and sep:  # not in the spec, which would drop it: a server's error
                    event = "error"
                    data.append(value)
                    size += len(line)
                    if size > limit:
                        raise event_too_long(limit)
    # Whatever is left had no closing blank line: an incomplete event, dropped per the spec.
