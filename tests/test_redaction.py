"""Secrets stay secret after decoding (issue 12): a key the server echoes JSON-escaped (`\\/` as PHP
writes it, `\\u0073k-…`), a proxy's 407 page echoing `Proxy-Authorization` (base64 of user:pass),
proxy URL credentials and a base URL's query token. Each is looked for in everything an error
leaves behind: str, repr, traceback, `err.body`, its pickle and the log, over loopback sockets.
"""

from __future__ import annotations

import base64
import json
import logging
import pickle
import socket
import threading
import traceback
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from rig_sync import errors
from rig_sync.http import RetryPolicy, Transport
from rig_sync.providers import openai
from rig_sync.testing import FakeProvider, Fault

KEY = "sk-proj/Zq8Wv/SECRET+key-1234567890"
NO_RETRY = RetryPolicy(max_retries=0)


@pytest.fixture
def fake() -> Iterator[FakeProvider]:
    with FakeProvider() as server:
        yield server


def php_escaped(text: str) -> str:
    return text.replace("/", "\\/")  # json_encode's default


def all_escaped(text: str) -> str:
    return "".join(f"\\u{ord(c):04x}" for c in text)


def first_escaped(text: str) -> str:
    return f"\\u{ord(text[0]):04X}{text[1:]}"  # upper-case hex is JSON too


ENCODINGS = {"php": php_escaped, "unicode": all_escaped, "first char": first_escaped}


def left_behind(err: BaseException, caplog: pytest.LogCaptureFixture) -> dict[str, str]:
    """Every text an error leaves behind, by where it is."""
    logging.getLogger("test_redaction").error("call failed: %s (%r)", err, err, exc_info=err)
    body = getattr(err, "body", None)
    return {
        "str": str(err),
        "repr": repr(err),
        "traceback": "".join(traceback.format_exception(err)),
        "body": repr(body) + json.dumps(body, default=repr),
        "pickle": pickle.dumps(err).decode("latin-1"),
        "unpickled": repr(vars(pickle.loads(pickle.dumps(err)))),
        "log": caplog.text,
    }


def assert_nowhere(secrets: list[str], err: BaseException, caplog: pytest.LogCaptureFixture) -> None:
    for where, text in left_behind(err, caplog).items():
        for secret in secrets:
            assert secret not in text, f"{secret!r} in {where}: {text[:400]!r}"


@pytest.mark.parametrize("encoding", list(ENCODINGS))
def test_a_key_echoed_escaped_in_an_error_body_is_masked(
    fake: FakeProvider, encoding: str, caplog: pytest.LogCaptureFixture
) -> None:
    said = ENCODINGS[encoding](KEY)
    body = ('{"error": {"message": "Incorrect API key provided: ' + said + '", "type": "invalid_request_error", '
            '"key": "' + said + '", "' + said + '": ["' + said + '"]}}').encode()
    fake.inject(Fault.raw(401, body, "application/json"))
    model = openai.Client(KEY, base_url=fake.base_url, retry=NO_RETRY).completion_model("gpt-4o")
    with caplog.at_level(logging.DEBUG), pytest.raises(errors.AuthenticationError) as info:
        model.completion_request("hi").send()
    assert "Incorrect API key provided: ***" in str(info.value)
    assert_nowhere([KEY], info.value, caplog)


@pytest.mark.parametrize("encoding", list(ENCODINGS))
def test_a_key_echoed_escaped_in_a_stream_error_event_is_masked(
    fake: FakeProvider, encoding: str, caplog: pytest.LogCaptureFixture
) -> None:
    said = ENCODINGS[encoding](KEY)
    event = '{"error": {"message": "key ' + said + ' was revoked", "type": "invalid_request_error"}}'
    fake.inject(Fault.raw(200, b"data: " + event.encode() + b"\n\n", "text/event-stream"))
    model = openai.Client(KEY, base_url=fake.base_url, retry=NO_RETRY).completion_model("gpt-4o")
    with caplog.at_level(logging.DEBUG), pytest.raises(errors.StreamError) as info:
        model.completion_request("hi").stream().text()
    assert "key *** was revoked" in str(info.value)
    assert_nowhere([KEY], info.value, caplog)


def test_a_key_echoed_escaped_in_a_document_answering_a_stream_is_masked(
    fake: FakeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    body = '{"error": {"message": "bad key ' + all_escaped(KEY) + '"}}'
    fake.inject(Fault.raw(200, body.encode(), "application/json"))
    model = openai.Client(KEY, base_url=fake.base_url, retry=NO_RETRY).completion_model("gpt-4o")
    with caplog.at_level(logging.DEBUG), pytest.raises(errors.StreamError) as info:
        model.completion_request("hi").stream().text()
    assert_nowhere([KEY], info.value, caplog)


# --- proxies --------------------------------------------------------------------------------


PROXY_USER, PROXY_PASSWORD = "proxyuser", "pa:ss/w@rd-S3CRET"
BASIC = base64.b64encode(f"{PROXY_USER}:{PROXY_PASSWORD}".encode()).decode()
PROXY_SECRETS = [PROXY_PASSWORD, "pa%3Ass%2Fw%40rd-S3CRET", f"{PROXY_USER}:{PROXY_PASSWORD}", BASIC]


class EchoingProxy:
    """A loopback "proxy" that refuses every request with a 407 page echoing the request's head,
    `Proxy-Authorization` included, as JSON (escaped the way PHP escapes) or as HTML."""

    def __init__(self, content_type: str) -> None:
        self.content_type = content_type
        self.heads: list[str] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://{PROXY_USER}:pa%3Ass%2Fw%40rd-S3CRET@127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                head = b""
                while b"\r\n\r\n" not in head:
                    data = conn.recv(65536)
                    if not data:
                        break
                    head += data
                text = head.partition(b"\r\n\r\n")[0].decode("latin-1")
                self.heads.append(text)
                if self.content_type == "application/json":
                    body = php_escaped(json.dumps({"error": {"message": f"proxy refused: {text}"}})).encode()
                else:
                    body = f"<html><pre>{text}</pre></html>".encode()
                reply = (f"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Type: {self.content_type}\r\n"
                         f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
                conn.sendall(reply + body)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(params=["application/json", "text/html"])
def proxy(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[EchoingProxy]:
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.delenv(name, raising=False)  # a bypass for 127.0.0.1 would skip the proxy
    server = EchoingProxy(request.param)
    yield server
    server.close()


def check_407(client: Any, proxy: EchoingProxy, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG), pytest.raises(errors.APIStatusError) as info:
        client.completion_model("gpt-4o").completion_request("hi").send()
    assert info.value.status_code == 407
    assert any(f"Basic {BASIC}" in head for head in proxy.heads)  # the proxy did get (and echo) it
    assert_nowhere([*PROXY_SECRETS, KEY], info.value, caplog)
    for shown in (repr(client), repr(client.transport)):
        assert not any(secret in shown for secret in PROXY_SECRETS)


def test_a_407_echoing_proxy_credentials_from_a_callers_session(
    proxy: EchoingProxy, caplog: pytest.LogCaptureFixture
) -> None:
    session = requests.Session()
    session.proxies = {"http": proxy.url}
    client = openai.Client(KEY, base_url="http://api.provider.test/v1", session=session, retry=NO_RETRY)
    check_407(client, proxy, caplog)


def test_a_407_echoing_proxy_credentials_from_the_environment(
    proxy: EchoingProxy, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("http_proxy", proxy.url)
    client = openai.Client(KEY, base_url="http://api.provider.test/v1", retry=NO_RETRY)
    check_407(client, proxy, caplog)


# --- base URL credentials ---------------------------------------------------------------------


@pytest.mark.parametrize("param", ["key", "api_key", "access_token", "sig"])
def test_a_base_url_query_token_is_masked(
    fake: FakeProvider, param: str, caplog: pytest.LogCaptureFixture
) -> None:
    token = "QUERY-T0KEN-abcdef123"
    client = openai.Client(KEY, base_url=f"{fake.base_url}?{param}={token}&api-version=2024-10-21", retry=NO_RETRY)
    assert token not in repr(client) and token not in repr(client.transport)
    assert f"{param}=***" in repr(client) and "api-version=2024-10-21" in repr(client)  # the rest is shown
    assert token in client.base_url  # the real URL is used
    echo = json.dumps({"error": {"message": f"unknown token {token}"}}).encode()
    fake.inject(Fault.raw(403, echo, "application/json"))
    with caplog.at_level(logging.DEBUG), pytest.raises(errors.PermissionDeniedError) as info:
        client.completion_model("gpt-4o").completion_request("hi").send()
    assert_nowhere([token], info.value, caplog)
    sock = socket.create_server(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there: the refusal names the base URL
    closed = openai.Client(KEY, base_url=f"http://127.0.0.1:{port}/v1?{param}={token}", retry=NO_RETRY)
    with caplog.at_level(logging.DEBUG), pytest.raises(errors.APIConnectionError) as refused:
        closed.completion_model("gpt-4o").completion_request("hi").send()
    assert "base URL" in str(refused.value)
    assert_nowhere([token], refused.value, caplog)


@pytest.mark.parametrize("url", [
    "http://user:hunter2-S3CRET@127.0.0.1:1/v1",
    "http://127.0.0.1:99999/v1?key=hunter2-S3CRET",
    "http://127.0.0.1:1/v1?key=hunter2-S3CRET#frag",
    "127.0.0.1/v1?api_key=hunter2-S3CRET",
])
def test_a_refused_base_url_does_not_echo_its_secret(url: str) -> None:
    with pytest.raises(errors.InvalidBaseURLError) as info:
        openai.Client(KEY, base_url=url)
    assert "hunter2" not in str(info.value) and "hunter2" not in repr(info.value)


def test_a_transport_redacts_what_its_base_url_holds() -> None:
    transport = Transport("p", "https://api.provider.test/v1?key=T0KEN-xyz-42")
    assert "T0KEN-xyz-42" not in repr(transport) and "key=***" in repr(transport)
