"""What every dialect's conversation routes share: deciding the answer (a scripted reply, a tool
call asked for with ``call:name {json}``, a summary of tool results, else an echo of the prompt),
counting words as tokens, and cutting text and tool arguments into streamed pieces.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from ._dialect import JSONDict
from ._values import Reply, ToolCall

__all__ = [
    "DEFAULT_MODEL",
    "SSE_CT",
    "Outcome",
    "body_model",
    "content_text",
    "decide",
    "fragments",
    "result_text",
    "split_pieces",
    "token_count",
    "wants_stream",
    "word_count",
]

DEFAULT_MODEL = "fake-model"
SSE_CT = "text/event-stream; charset=utf-8"
_PIECE_RE = re.compile(r"\S+\s*|\s+")


@dataclass(frozen=True)
class Outcome:
    """The answer decided for a conversation turn: text, or tool calls, and why it ended."""

    text: str | None
    calls: tuple[ToolCall, ...]
    finish_reason: str


def word_count(text: str) -> int:
    """Whitespace-separated words: the fake's token count."""
    return len(text.split())


def split_pieces(text: str) -> list[str]:
    """Split text into word-sized pieces whose concatenation is ``text``."""
    return _PIECE_RE.findall(text)


def fragments(s: str, size: int = 6) -> list[str]:
    """``s`` in ``size``-character pieces (tool arguments as they stream)."""
    return [s[i : i + size] for i in range(0, len(s), size)] or [""]


def content_text(content: object) -> str:
    """The text of a message's content: a string, text parts joined by spaces, or ``""``."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts: list[str] = []
        for p in content:
            if isinstance(p, str):
                parts.append(p)
            elif isinstance(p, dict) and isinstance(p.get("text"), str):
                parts.append(p["text"])
        return " ".join(parts)
    if isinstance(content, dict) and isinstance(content.get("text"), str):
        return str(content["text"])
    return ""


def _parse_call_prompt(prompt: str, tool_names: set[str]) -> tuple[ToolCall, ...] | None:
    """``call:name {json} ; other {json}`` -> tool calls, if all tools exist."""
    spec = prompt.strip()
    if not spec.startswith("call:"):
        return None
    calls: list[ToolCall] = []
    for i, seg in enumerate(spec[len("call:") :].split(" ; ")):
        seg = seg.strip()
        m = re.match(r"([A-Za-z0-9_.\-]+)\s*(.*)\Z", seg, re.DOTALL)
        if m is None:
            return None
        name, raw_args = m.group(1), m.group(2).strip() or "{}"
        if name not in tool_names:
            return None
        try:
            args = json.dumps(json.loads(raw_args))
        except ValueError:
            args = raw_args
        calls.append(ToolCall(name=name, arguments=args, id=f"call_{i}"))
    return tuple(calls) or None


def decide(
    reply: Reply | None,
    prompt: str,
    tool_results: list[str] | None,
    tool_names: set[str],
) -> Outcome:
    """The turn's answer: a scripted ``reply``, else a summary of ``tool_results``, else the tool
    calls a ``call:name {json}`` prompt asks for (of known ``tool_names``), else an echo."""
    if reply is not None and reply.kind == "text":
        return Outcome(reply.content, (), reply.finish_reason or "stop")
    if reply is not None and reply.kind == "tool_calls":
        calls = tuple(ToolCall(c.name, c.arguments, c.id or f"call_{i}") for i, c in enumerate(reply.calls))
        return Outcome(None, calls, reply.finish_reason or "tool_calls")
    if tool_results is not None:
        return Outcome("tool result: " + ", ".join(tool_results), (), "stop")
    calls_opt = _parse_call_prompt(prompt, tool_names)
    if calls_opt:
        return Outcome(None, calls_opt, "tool_calls")
    return Outcome("echo: " + prompt, (), "stop")


def token_count(out: Outcome) -> int:
    """Output tokens of an answer (a tool call counts one plus its arguments' words)."""
    if out.text is not None:
        return word_count(out.text)
    return sum(1 + word_count(c.arguments) for c in out.calls)


def body_model(body: JSONDict) -> str:
    """The body's ``model``, else :data:`DEFAULT_MODEL`."""
    model = body.get("model")
    return model if isinstance(model, str) and model else DEFAULT_MODEL


def wants_stream(body: JSONDict) -> bool:
    """Whether the body asks for a stream (``"stream": true``)."""
    return body.get("stream") is True


def result_text(value: object) -> str:
    """A structured tool result as the fake's ``tool result: …`` echo reads it: text as it is, an
    object holding one text (``{"result": "3"}``) as that text, anything else as compact JSON."""
    if isinstance(value, dict) and len(value) == 1 and isinstance(only := next(iter(value.values())), str):
        return only
    return value if isinstance(value, str) else json.dumps(value)
