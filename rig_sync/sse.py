"""Stream framing: byte chunks -> lines -> Server-Sent Events (and NDJSON lines).

Incremental and allocation-light: it handles `\n`, `\r\n` and `\r` line ends split anywhere
across chunks, multi-line `data:` fields, comments, and discards a half-received event at the
end of the stream (as the SSE spec says), so a cut-off stream is never mistaken for a whole one.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import attrs

__all__ = ["SSEEvent", "iter_lines", "iter_sse"]


@attrs.frozen(slots=True)
class SSEEvent:
    event: str | None
    data: str
    id: str | None = None


def iter_lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Lines (without their line end) from arbitrarily split byte chunks.

    A final line without a line end is yielded too: NDJSON readers decide whether it is whole.
    """
    pending = b""
    pending_cr = False  # the previous chunk ended in "\r": a following "\n" belongs to it
    for chunk in chunks:
        if not chunk:
            continue
        if pending_cr and chunk[:1] == b"\n":
            chunk = chunk[1:]
        pending_cr = chunk[-1:] == b"\r"
        if b"\r" in chunk:
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = chunk.split(b"\n")
        if pending:
            lines[0] = pending + lines[0]
        pending = lines.pop()
        yield from lines
    if pending:
        yield pending


def iter_sse(chunks: Iterable[bytes]) -> Iterator[SSEEvent]:
    """Server-Sent Events from byte chunks, in order."""
    event: str | None = None
    data: list[str] = []
    last_id: str | None = None
    for raw in iter_lines(chunks):
        if not raw:
            if data:
                yield SSEEvent(event, "\n".join(data), last_id)
            event, data = None, []
            continue
        line = raw.decode("utf-8", "replace")
        if line[0] == ":":
            continue
        name, sep, value = line.partition(":")
        if sep and value[:1] == " ":
            value = value[1:]
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value
        elif name == "id":
            last_id = value
    # Whatever is left had no closing blank line: an incomplete event, dropped per the spec.
