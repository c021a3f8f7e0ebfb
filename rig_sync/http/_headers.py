"""A leaner read of a response's header block, for the connections rig_sync opens.

`http.client` hands every response's header lines to the `email` package's feed parser, which is
built for mail: for a chat call's few dozen headers it costs more than the rest of urllib3's
response handling. Well-formed lines (`name: value`, a token name, no folding, no stray CR) need
none of that; `parse_headers` splits those itself into the same `HTTPMessage` (same items, same
order, no defects, empty payload) and gives anything else to the standard parser, so a malformed
or folded block gets exactly the standard treatment (its defects reach urllib3's checks).

`LeanResponse` is `http.client.HTTPResponse` whose `begin` — the standard code object itself, not
a copy — reads its headers with it; `_pool`'s connections use it as their `response_class`.
"""

from __future__ import annotations

import email.parser
import http.client
import re
import types
from typing import Any

__all__ = ["parse_headers", "LeanResponse"]

# One line: a token name (the characters the email parser takes for a header name), a colon, the
# value without its leading blanks (as the parser strips them) and with no CR or LF, the line end.
_LINE = re.compile(r"^([\x21-\x39\x3b-\x7e]+):[ \t]*([^\r\n]*)\r?$", re.MULTILINE)


def parse_headers(fp: Any, _class: type[http.client.HTTPMessage] = http.client.HTTPMessage) -> Any:
    """`http.client.parse_headers`, with the common case read directly (same limits and errors:
    the lines are read by `http.client`'s own reader)."""
    lines: list[bytes] = http.client._read_headers(fp)  # type: ignore[attr-defined]
    text = b"".join(lines).decode("iso-8859-1")
    pairs = _LINE.findall(text)
    # Every line but the closing blank one a header line, and nothing else: else (folded,
    # malformed, a stray CR) the standard parser, on the same text.
    if len(pairs) != len(lines) - 1 or lines[-1] not in (b"\r\n", b"\n"):
        return email.parser.Parser(_class=_class).parsestr(text)
    message = _class()
    for name, value in pairs:
        message.set_raw(name, value)
    message.set_payload("")  # as the standard parser leaves it: nothing after the blank line
    return message


class LeanResponse(http.client.HTTPResponse):
    """`http.client.HTTPResponse` reading its headers with `parse_headers`."""


if hasattr(http.client, "_read_headers"):  # else (a future Python): the standard class, unchanged
    LeanResponse.begin = types.FunctionType(  # type: ignore[method-assign]
        http.client.HTTPResponse.begin.__code__, {**vars(http.client), "parse_headers": parse_headers}, "begin")
