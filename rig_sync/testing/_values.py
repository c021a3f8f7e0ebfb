"""The fake's public value types: :class:`RecordedRequest` (a request as received),
:class:`Reply` (a scripted answer) and :class:`ToolCall` (a tool call within one)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["RecordedRequest", "Reply", "ToolCall"]

@dataclass(frozen=True)
class RecordedRequest:
    """A request as received by the fake server.

    ``headers`` has lower-case keys; ``json`` is the parsed JSON body (or
    ``None``); ``form``/``files`` hold multipart/form-data fields and files
    (``name -> (filename, bytes)``); ``query`` holds the URL query parameters.
    """

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    json: Any = None
    form: dict[str, str] = field(default_factory=dict)
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    request_id: str = ""

    @property
    def text(self) -> str:
        """The body decoded as UTF-8 (invalid bytes replaced)."""
        return self.body.decode("utf-8", "replace")


@dataclass(frozen=True)
class ToolCall:
    """A tool call in a scripted reply: ``arguments`` is JSON text."""

    name: str
    arguments: str
    id: str | None = None


@dataclass(frozen=True)
class Reply:
    """A scripted reply for :meth:`FakeProvider.script`.

    ``text`` and ``tool_calls`` replies are rendered in the wire format of the
    endpoint that consumes them (streamed or not); ``json`` replies are sent
    verbatim by any endpoint.
    """

    kind: Literal["text", "tool_calls", "json"]
    content: str = ""
    calls: tuple[ToolCall, ...] = ()
    finish_reason: str | None = None
    status: int = 200
    body: object = None
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def text(cls, text: str, *, finish_reason: str = "stop") -> Reply:
        """An assistant text reply."""
        return cls(kind="text", content=text, finish_reason=finish_reason)

    @classmethod
    def tool_calls(
        cls,
        calls: Iterable[tuple[str, Mapping[str, object] | str] | tuple[str, Mapping[str, object] | str, str]],
    ) -> Reply:
        """A reply that calls tools: ``[(name, args)]`` or ``[(name, args, id)]``.

        ``args`` is a mapping (serialised to JSON) or a raw JSON string (sent
        as-is, so malformed arguments can be tested). Ids default to
        ``call_0``, ``call_1``...
        """
        out: list[ToolCall] = []
        for item in calls:
            name, args = item[0], item[1]
            call_id = item[2] if len(item) > 2 else None
            text = args if isinstance(args, str) else json.dumps(dict(args))
            out.append(ToolCall(name=name, arguments=text, id=call_id))
        return cls(kind="tool_calls", calls=tuple(out), finish_reason="tool_calls")

    @classmethod
    def json(
        cls,
        status: int,
        body: object,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        """A raw reply for any endpoint: ``body`` is JSON-serialised unless it
        is ``bytes``/``str``."""
        return cls(
            kind="json",
            status=status,
            body=body,
            headers=tuple((headers or {}).items()),
        )

