"""OpenAI-style message dicts (`{"role": ..., "content": ...}`) converted to the core types.

`convert` turns a list of `Message`s and dicts into (system texts, messages): system and
developer messages become preamble text, tool messages become tool results (consecutive ones in
one user message, as the agent writes them). Anything else raises `InvalidMessageError` naming
the message, the field and the expected shape; no KeyError, TypeError or RecursionError escapes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .errors import InvalidMessageError
from .message import Audio, DocumentContent, Image, Message, Text, ToolCall, ToolResult, UserContent

__all__ = ["convert", "Conversation"]

Conversation = tuple[list[str], list[Message]]  # (system texts, messages), both in order

_SHAPES = {
    "system": '{"role": "system", "content": "Be brief"}',
    "user": ('{"role": "user", "content": "Hi" or [{"type": "text", "text": "Hi"}, '
             '{"type": "image_url", "image_url": {"url": "https://… or data:image/png;base64,…"}}]}'),
    "assistant": ('{"role": "assistant", "content": "text" (or None with tool_calls), "tool_calls": '
                  '[{"id": "call_1", "type": "function", "function": {"name": "add", "arguments": "{\\"a\\": 2}"}}]}'),
    "tool": '{"role": "tool", "tool_call_id": "call_1", "content": "5"}',
}
_SHAPES["developer"] = _SHAPES["system"]
_ROLES = "'system', 'developer', 'user', 'assistant' or 'tool'"
_DATA_URL = re.compile(r"data:([\w.+-]+/[\w.+-]+);base64,(.*)", re.S)



def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _quote(value: object) -> str:
    """A bad value as an error shows it: short, whatever it is (it may be huge or hostile)."""
    if isinstance(value, str):
        return repr(_cut(value, 60))
    if value is None or isinstance(value, (bool, float)) or (isinstance(value, int) and value.bit_length() < 64):
        return repr(value)
    return f"<{type(value).__name__}>"


class _Bad(Exception):
    """A problem at `field` of one message; `convert` adds which message and the expected shape."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(field, problem)
        self.field, self.problem = field, problem


def convert(items: object, where: str, *, single: bool = False) -> Conversation:
    """(system texts, messages) of `items`, a list of Messages and message dicts, labelled
    `where[i]` in errors; with `single`, `items` is one message labelled `where`."""
    if single:
        items = [items]
    elif isinstance(items, (str, bytes, bytearray, Mapping)) or not isinstance(items, Iterable):
        raise InvalidMessageError(f"{where} must be a list of Messages or message dicts like {_SHAPES['user']}, "
                                  f"not {_kind(items)}" + ("; wrap one message in a list" if
                                                           isinstance(items, Mapping) else ""))
    system: list[str] = []
    messages: list[Message] = []
    results: list[ToolResult] = []  # a run of tool messages, sent as one user message
    for i, item in enumerate(items):
        part = _one(item, where if single else f"{where}[{i}]")
        if isinstance(part, ToolResult):
            results.append(part)
            continue
        if results:
            messages.append(Message.user(results))
            results = []
        if isinstance(part, str):
            system.append(part)
        else:
            messages.append(part)
    if results:
        messages.append(Message.user(results))
    return system, messages


def _one(item: object, label: str) -> str | Message | ToolResult:
    if isinstance(item, Message):
        return item
    if not isinstance(item, Mapping):
        hint = "; convert it with .model_dump()" if callable(getattr(item, "model_dump", None)) else ""
        raise InvalidMessageError(f"{label} must be a Message or a message dict like {_SHAPES['user']}, "
                                  f"not {_kind(item)}{hint}")
    role = item.get("role")
    shape = _SHAPES.get(role, _SHAPES["user"]) if isinstance(role, str) else _SHAPES["user"]
    try:
        if not isinstance(role, str) or role not in _SHAPES:
            raise _Bad("role", f"{_quote(role)} is not a role rig_sync understands; use {_ROLES}")
        if role in ("system", "developer"):
            return _text_content(item.get("content"), "content")
        if role == "tool":
            call_id = _str(item.get("tool_call_id"), "tool_call_id")
            return ToolResult(call_id, _text_content(item.get("content"), "content"))
        if role == "user":
            return Message.user(_user_content(item.get("content")))
        return Message.assistant(_assistant_content(item))
    except _Bad as bad:
        raise InvalidMessageError(f"{label}.{bad.field}: {bad.problem}; expected {shape}") from None


def _kind(value: object) -> str:
    return "None" if value is None else type(value).__name__


def _str(value: object, field: str, *, empty: bool = False) -> str:
    """`value` if it is a string (non-empty unless `empty`)."""
    if value is None:
        raise _Bad(field, "is missing")
    if not isinstance(value, str):
        raise _Bad(field, f"must be a string, not {_kind(value)}")
    if not empty and not value.strip():
        raise _Bad(field, "must not be empty")
    return value


def _mapping(value: object, field: str) -> Mapping[Any, Any]:
    if not isinstance(value, Mapping):
        raise _Bad(field, "is missing" if value is None else f"must be an object (a dict), not {_kind(value)}")
    return value


def _parts(value: object, field: str) -> Sequence[Any]:
    """A content list (a string is handled by the caller); an empty one is refused."""
    if value is None:
        raise _Bad(field, "is missing")
    if isinstance(value, (bytes, bytearray, Mapping)) or not isinstance(value, Sequence):
        raise _Bad(field, f"must be a string or a list of content parts, not {_kind(value)}")
    if not value:
        raise _Bad(field, "is an empty list; give at least one part")
    return value


def _part_type(part: object, field: str) -> str:
    kind = _mapping(part, field).get("type")
    return kind if isinstance(kind, str) else ""  # errors quote the part's own "type"


def _text_content(value: object, field: str) -> str:
    """A string, or text parts joined: the content of system and tool messages."""
    if isinstance(value, str):
        return value
    texts = []
    for j, part in enumerate(_parts(value, field)):
        at = f"{field}[{j}]"
        if _part_type(part, at) != "text":
            raise _Bad(f"{at}.type", f"only text parts are allowed here, not {_quote(part.get('type'))}")
        texts.append(_str(part.get("text"), f"{at}.text", empty=True))
    return "".join(texts)


def _user_content(value: object) -> str | list[UserContent]:
    if isinstance(value, str):
        return value
    return [_user_part(part, f"content[{j}]") for j, part in enumerate(_parts(value, "content"))]


def _user_part(part: Any, at: str) -> UserContent:
    kind = _part_type(part, at)
    if kind == "text":
        return Text(_str(part.get("text"), f"{at}.text", empty=True))
    if kind == "image_url":
        spec = part.get("image_url")
        if isinstance(spec, str):  # a bare URL, as some clients send it
            spec = {"url": spec}
        spec = _mapping(spec, f"{at}.image_url")
        url = _str(spec.get("url"), f"{at}.image_url.url")
        detail = spec.get("detail")
        if detail is not None:
            detail = _str(detail, f"{at}.image_url.detail")
        if not url.startswith("data:"):
            return Image.from_url(url, detail)
        media_type, data = _data_url(url, f"{at}.image_url.url")
        return Image.from_bytes(data, media_type, detail)
    if kind == "input_audio":
        spec = _mapping(part.get("input_audio"), f"{at}.input_audio")
        fmt = spec.get("format")
        return Audio(_str(spec.get("data"), f"{at}.input_audio.data"),
                     "wav" if fmt is None else _str(fmt, f"{at}.input_audio.format"))
    if kind == "file":
        spec = _mapping(part.get("file"), f"{at}.file")
        filename = spec.get("filename")
        if filename is not None:
            filename = _str(filename, f"{at}.file.filename")
        if spec.get("file_data") is None and spec.get("file_id") is not None:
            raise _Bad(f"{at}.file.file_id", "an uploaded file's id belongs to one provider; "
                                             "pass the file itself as file_data (data:application/pdf;base64,…)")
        data = _str(spec.get("file_data"), f"{at}.file.file_data")
        if data.startswith("data:"):
            media_type, data = _data_url(data, f"{at}.file.file_data")
            return DocumentContent(data, media_type, filename)
        return DocumentContent(data, filename=filename)  # bare base64: a PDF, as OpenAI assumes
    raise _Bad(f"{at}.type", f"{_quote(part.get('type'))} is not a user content part rig_sync understands; "
                             "use 'text', 'image_url', 'input_audio' or 'file'")


def _data_url(url: str, field: str) -> tuple[str, str]:
    """(media type, base64 data) of a `data:<type>;base64,<data>` URL."""
    match = _DATA_URL.fullmatch(url)
    if match is None:
        raise _Bad(field, f"{_quote(url)} is not a base64 data URL like data:image/png;base64,iVBOR…")
    return match.group(1), match.group(2)


def _assistant_content(item: Mapping[Any, Any]) -> list[Text | ToolCall]:
    if item.get("function_call") is not None:
        raise _Bad("function_call", "the legacy function_call is not supported; use tool_calls")
    content, calls = item.get("content"), item.get("tool_calls")
    out: list[Text | ToolCall] = []
    if calls is not None:
        if isinstance(calls, (str, bytes, bytearray, Mapping)) or not isinstance(calls, Sequence):
            raise _Bad("tool_calls", f"must be a list of tool calls, not {_kind(calls)}")
        out.extend(_tool_call(call, f"tool_calls[{j}]") for j, call in enumerate(calls))
    if content is None:
        if not out:
            raise _Bad("content", "is missing (None is allowed only beside tool_calls)")
        return out
    if isinstance(content, str):
        text = content
    else:  # text and refusal parts
        texts = []
        for j, part in enumerate(_parts(content, "content")):
            at, kind = f"content[{j}]", _part_type(part, f"content[{j}]")
            if kind not in ("text", "refusal"):
                raise _Bad(f"{at}.type", f"an assistant message holds 'text' or 'refusal' parts, not "
                                         f"{_quote(part.get('type'))}")
            texts.append(_str(part.get(kind), f"{at}.{kind}", empty=True))
        text = "".join(texts)
    # An empty text beside tool calls says nothing; alone it is a (valid) empty answer.
    return [Text(text), *out] if text or not out else out


def _tool_call(call: object, at: str) -> ToolCall:
    spec = _mapping(call, at)
    kind = spec.get("type", "function")
    if kind != "function":
        raise _Bad(f"{at}.type", f"must be 'function', not {_quote(kind)}")
    function = _mapping(spec.get("function"), f"{at}.function")
    return ToolCall(_str(spec.get("id"), f"{at}.id"), _str(function.get("name"), f"{at}.function.name"),
                    _arguments(function.get("arguments"), f"{at}.function.arguments"))


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _arguments(value: object, field: str) -> dict[str, Any]:
    """Tool arguments: a JSON object string (as OpenAI sends them) or a mapping, as a plain dict."""
    try:
        if isinstance(value, str):
            # An empty string is how some streams spell "no arguments".
            parsed = json.loads(value, parse_constant=_no_constant) if value.strip() else {}
        elif isinstance(value, Mapping):
            # Round-tripped, so the request holds plain JSON: NaN, sets and cycles are refused here.
            parsed = json.loads(json.dumps(dict(value), allow_nan=False))
        else:
            raise _Bad(field, f"must be a JSON object string like '{{\"a\": 2}}', not {_kind(value)}")
    except RecursionError:
        raise _Bad(field, "is nested too deeply to be read") from None
    except (ValueError, TypeError) as exc:
        raise _Bad(field, f"is not valid JSON ({_cut(str(exc), 100)})") from None
    if not isinstance(parsed, dict):
        raise _Bad(field, f"must hold a JSON object, not a JSON {type(parsed).__name__}")
    return parsed
