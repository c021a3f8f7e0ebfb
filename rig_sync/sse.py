"""Stream framing: byte chunks -> lines -> Server-Sent Events (and NDJSON lines).

Incremental and allocation-light: it handles `\\n`, `\\r\\n` and `\\r` line ends split anywhere
across chunks, multi-line `data:` fields, comments, and discards a half-received event at the
end of the stream (as the SSE spec says), so a cut-off stream is never mistaken for a whole one.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import attrs

__all__ = ["SSEEvent", "LineSplitter", "iter_lines", "iter_sse"]


@attrs.frozen(slots=True)
class SSEEvent:
    event: str | None
    data: str
    id: str | None = None


class LineSplitter:
    """Feed byte chunks, get back the complete lines (without line ends) each one finishes."""

    __slots__ = ("_pending", "_pending_cr")

    def __init__(self) -> None:
        self._pending = bytearray()  # grows in place: a long line in tiny chunks stays linear
        self._pending_cr = False  # the previous chunk ended in "\r": a leading "\n" belongs to it

    def feed(self, chunk: bytes) -> list[bytes]:
        if not chunk:
            return []
        if self._pending_cr and chunk[:1] == b"\n":
            chunk = chunk[1:]
        self._pending_cr = chunk[-1:] == b"\r"
        if b"\r" in chunk:
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if b"\n" not in chunk:
            self._pending += chunk
            return []
        lines = chunk.split(b"\n")
        if self._pending:
            lines[0] = bytes(self._pending) + lines[0]
            self._pending.clear()
        self._pending += lines.pop()
        return lines

    def tail(self) -> bytes:
        """What is left after the last line end (an unterminated last line, or b"")."""
        return bytes(self._pending)


def iter_lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Lines from arbitrarily split byte chunks. A final line without a line end is yielded too:
    NDJSON readers decide whether it is whole."""
    splitter = LineSplitter()
    for chunk in chunks:
        yield from splitter.feed(chunk)
    if splitter.tail():
        yield splitter.tail()


def iter_sse(chunks: Iterable[bytes]) -> Iterator[SSEEvent]:
    """Server-Sent Events from byte chunks, in order."""
    splitter = LineSplitter()
    event: str | None = None
    data: list[bytes] = []
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
                    yield SSEEvent(event, b"\n".join(data).decode("utf-8", "replace"), last_id)
                event, data = None, []
            elif line.startswith(b"data:"):  # the hot path: one per event
                data.append(line[6:] if line[5:6] == b" " else line[5:])
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
    # Whatever is left had no closing blank line: an incomplete event, dropped per the spec.
