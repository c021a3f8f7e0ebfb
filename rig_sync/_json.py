"""JSON encode/decode in one place: orjson when installed (the `fast` extra), else the stdlib.

`loads` reads whatever the stdlib reads (orjson refuses an escaped lone surrogate, `"\\ud83d"`,
which a provider may send: half an emoji cut at a token boundary), and raises its decode error
(a ValueError), never RecursionError, for JSON nested too deep to read (`[` x 100,000): every
caller that handles unreadable JSON handles that too. `dumps_file` writes every string losslessly
for files we read back (journals, results, vector stores).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

__all__ = ["dumps", "dumps_file", "loads", "JSONDecodeError"]

loads: Callable[[bytes | str], Any]
dumps: Callable[[Any], bytes]


def _stdlib_loads(data: bytes | str) -> Any:
    try:
        return json.loads(data)
    except RecursionError:  # the C scanner recurses per nesting level; a hostile body nests deeper
        raise json.JSONDecodeError("JSON nested too deep to decode", "", 0) from None


try:  # pragma: no cover - depends on the optional extra
    import orjson

    JSONDecodeError: tuple[type[Exception], ...] = (orjson.JSONDecodeError, ValueError)

    def loads(data: bytes | str) -> Any:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            return _stdlib_loads(data)  # what orjson refuses but JSON allows: lone surrogates, NaN

    def dumps(obj: Any) -> bytes:
        data: bytes = orjson.dumps(obj)  # typed even where orjson's stubs are not installed
        return data

except ImportError:  # pragma: no cover - depends on the optional extra
    JSONDecodeError = (ValueError,)
    _encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
    loads = _stdlib_loads

    def dumps(obj: Any) -> bytes:
        return _encoder.encode(obj).encode("utf-8")


_ascii = json.JSONEncoder(separators=(",", ":"))  # ensure_ascii: "\ud83d" stays an escape


def dumps_file(obj: Any) -> bytes:
    """`dumps`, but a string UTF-8 cannot carry (a lone surrogate) is written as its JSON escape,
    so the file stays valid UTF-8 and `loads` gives back an equal value. TypeError for non-JSON,
    ValueError for a value nested too deep."""
    try:
        try:
            return dumps(obj)
        except (TypeError, ValueError):  # orjson's JSONEncodeError is a TypeError; UnicodeEncodeError a ValueError
            return _ascii.encode(obj).encode("ascii")
    except RecursionError:  # the stdlib encoder recurses per nesting level
        raise ValueError("a value nested too deep to write as JSON") from None
