"""The lean header read gives exactly what http.client's email-based parser gives (issue 17)."""

from __future__ import annotations

import http.client
import io
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rig_sync import errors
from rig_sync.http import _headers
from rig_sync.http._headers import LeanResponse, parse_headers
from rig_sync.providers import openai
from rig_sync.testing import FakeProvider


def view(message: Any) -> tuple[Any, ...]:
    """Everything urllib3 and rig_sync read of a header block (defects by kind: they compare by identity)."""
    return (message.items(), [type(d) for d in message.defects], message.get_payload(), message.is_multipart(),
            message.get_all("set-cookie"), message.get("content-length"), type(message))


def both(block: bytes) -> tuple[Any, Any]:
    return view(http.client.parse_headers(io.BytesIO(block))), view(parse_headers(io.BytesIO(block)))


OPENAI_HEADERS = (b"Date: Tue, 15 Jul 2025 10:00:00 GMT\r\nContent-Type: application/json\r\n"
                  b"openai-processing-ms: 745\r\nx-ratelimit-remaining-tokens: 149999972\r\n"
                  b"set-cookie: a=1; path=/\r\nset-cookie: b=2; HttpOnly\r\nalt-svc: h3=\":443\"; ma=86400\r\n"
                  b"x-request-id: req_1\r\nServer: cloudflare\r\n\r\n")


@pytest.mark.parametrize("block", [
    OPENAI_HEADERS,
    b"\r\n",  # no headers
    b"a: b\n\n",  # bare LF line ends
    b"A:b  \r\n\r\n",  # no blank after the colon; trailing blanks kept
    b"a:\r\n\r\n",  # an empty value
    b"a: \t b\tc\t\r\n\r\n",  # leading blanks stripped, inner and trailing tabs kept
    b"a: \xff\xfe caf\xc3\xa9\r\n\r\n",  # bytes past ASCII, read as latin-1
    b"a: b\r\n folded\r\n\r\n",  # obsolete line folding
    b"a: b\r\nno colon here\r\nc: d\r\n\r\n",  # a line that is not a header: the rest is payload, a defect
    b": x\r\n\r\n",  # an empty name
    b"a b: c\r\n\r\n",  # a space in the name
    b"a: b\rc\r\n\r\n",  # a stray CR inside a value
    b"From someone\r\n\r\n",  # mbox's From line
    b"a: b\r\n",  # the connection closed before the blank line
])
def test_every_shape_of_block_reads_as_the_standard_parser_reads_it(block: bytes) -> None:
    standard, lean = both(block)
    assert lean == standard


_names = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters=":"), min_size=1,
                 max_size=12)
_values = st.text(st.characters(min_codepoint=0, max_codepoint=0xFF), max_size=30)
_lines = st.one_of(st.tuples(_names, _values).map(lambda nv: f"{nv[0]}: {nv[1]}\r\n"),
                   _values.map(lambda v: v + "\r\n"))  # anything at all, now and then


@settings(max_examples=400, deadline=None)
@given(st.lists(_lines, max_size=8))
def test_any_block_reads_the_same(lines: list[str]) -> None:
    text = "".join(lines)
    if "\r\n\r\n" in text or text.startswith("\r\n"):  # the block would end early: not one header block
        return
    standard, lean = both(text.encode("latin-1") + b"\r\n")
    assert lean == standard


def test_the_limits_and_errors_are_http_clients_own() -> None:
    too_many = b"".join(b"x%d: y\r\n" % i for i in range(101)) + b"\r\n"
    for parse in (http.client.parse_headers, parse_headers):
        with pytest.raises(http.client.HTTPException, match="more than 100 headers"):
            parse(io.BytesIO(too_many))
        with pytest.raises(http.client.LineTooLong):
            parse(io.BytesIO(b"a: " + b"x" * 70_000 + b"\r\n\r\n"))


def test_the_clients_connections_read_headers_with_it(monkeypatch: pytest.MonkeyPatch) -> None:
    read: list[int] = []

    def counting(fp: Any, _class: Any = http.client.HTTPMessage) -> Any:
        message = parse_headers(fp, _class)
        read.append(len(message))
        return message

    monkeypatch.setitem(LeanResponse.begin.__globals__, "parse_headers", counting)
    with FakeProvider(models=["gpt-4o-mini"]) as fake:
        client = openai.Client("sk-test", base_url=fake.base_url, max_retries=0)
        answer = client.completion_model("gpt-4o-mini").completion_request("Hello").send()
        stream = client.completion_model("gpt-4o-mini").completion_request("Hello").stream()
        assert stream.text and answer.text
        with pytest.raises(errors.APIStatusError) as refused:
            client.completion_model("gpt-0").completion_request("Hello").send()
    assert len(read) == 3 and all(count >= 3 for count in read)
    assert refused.value.request_id and refused.value.request_id.startswith("req_")  # read the lean way
    assert http.client.HTTPResponse.begin.__globals__["parse_headers"] is _headers.http.client.parse_headers
