"""JSON encode/decode in one place: orjson when installed (the `fast` extra), else the stdlib."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

__all__ = ["dumps", "loads", "JSONDecodeError"]

loads: Callable[[bytes | str], Any]
dumps: Callable[[Any], bytes]

try:  # pragma: no cover - depends on the optional extra
    import orjson

    JSONDecodeError: tuple[type[Exception], ...] = (orjson.JSONDecodeError, ValueError)
    loads = orjson.loads

    def dumps(obj: Any) -> bytes:
        data: bytes = orjson.dumps(obj)  # typed even where orjson's stubs are not installed
        return data

except ImportError:  # pragma: no cover - depends on the optional extra
    JSONDecodeError = (ValueError,)
    _encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
    loads = json.loads

    def dumps(obj: Any) -> bytes:
        return _encoder.encode(obj).encode("utf-8")
