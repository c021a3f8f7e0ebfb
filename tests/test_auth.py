"""Credentials per request (`rig_sync.auth`): each kind on the wire, tokens that refresh, bodies that
are signed, and secrets that stay secret — through clients on the loopback FakeProvider."""

from __future__ import annotations

import hashlib
import hmac
import logging
import pickle
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from rig_sync.auth import Auth, BearerAuth, HeaderAuth, MultiAuth, QueryKeyAuth, TokenAuth
from rig_sync.errors import (
    AuthenticationError,
    ClientBuildError,
    CredentialsError,
    MissingAPIKeyError,
    RigError,
)
from rig_sync.providers import anthropic, azure, gemini, openai
from rig_sync.testing import FakeProvider, Fault, Reply

PROMPT = "Hello"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeProvider]:
    with FakeProvider() as fp:
        yield fp


def chat(client: Any, model: str = "gpt-4o-mini") -> str:
    return str(client.completion_model(model).completion_request(PROMPT).send().choice[0].text)


# --- each kind, as the server sees it -------------------------------------------------------------------


def test_the_providers_own_conventions_are_sent(fake: FakeProvider) -> None:
    key = fake.api_key
    chat(openai.Client(key, base_url=fake.base_url))
    assert fake.last_request is not None and fake.last_request.headers["authorization"] == f"Bearer {key}"
    anthropic.Client(key, base_url=fake.url).completion_model("claude-3-5-haiku-latest") \
        .completion_request(PROMPT).max_tokens(16).send()
    assert fake.last_request is not None and fake.last_request.headers["x-api-key"] == key
    assert "authorization" not in fake.last_request.headers
    gemini.Client(key, base_url=fake.url).completion_model("gemini-2.0-flash").completion_request(PROMPT).send()
    assert fake.last_request is not None and fake.last_request.headers["x-goog-api-key"] == key


def test_a_token_auth_fetches_once_and_again_only_when_the_token_expires(fake: FakeProvider) -> None:
    calls: list[int] = []

    def fetch() -> tuple[str, float]:
        calls.append(1)
        return fake.api_key, 3600.0

    client = openai.Client(base_url=fake.base_url, auth=TokenAuth(fetch))
    for _ in range(5):
        chat(client)
    assert len(calls) == 1
    assert fake.last_request is not None and fake.last_request.headers["authorization"] == f"Bearer {fake.api_key}"

    expired: list[str] = []

    def short_lived() -> tuple[str, float]:  # expires at once: fetched again for every request
        expired.append("t")
        return fake.api_key, 0.0

    client = openai.Client(base_url=fake.base_url, auth=TokenAuth(short_lived))
    for _ in range(3):
        chat(client)
    assert len(expired) == 3


def test_a_token_is_fetched_once_for_many_threads_at_once(fake: FakeProvider) -> None:
    calls: list[int] = []
    gate = threading.Event()

    def slow_fetch() -> str:
        calls.append(1)
        gate.wait(5)  # every thread is waiting on the lock by now, or has the token
        return fake.api_key

    auth = TokenAuth(slow_fetch)
    client = openai.Client(base_url=fake.base_url, auth=auth)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            chat(client)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(8)]
    for t in threads:
        t.start()
    gate.set()
    for t in threads:
        t.join(30)
    assert not errors and len(calls) == 1


def test_a_failing_fetch_is_a_credentials_error_and_nothing_is_sent(fake: FakeProvider) -> None:
    def broken() -> str:
        raise OSError("the metadata server is down")

    client = openai.Client(base_url=fake.base_url, auth=TokenAuth(broken))
    before = fake.request_count
    with pytest.raises(CredentialsError) as info:
        chat(client)
    assert isinstance(info.value, RigError) and "metadata server is down" in str(info.value)
    assert info.value.provider == "openai"
    assert fake.request_count == before


def test_a_custom_auth_signs_the_exact_body_sent() -> None:
    """An `Auth` sees the encoded body (what SigV4 signs): the server checks the signature over
    the bytes it received."""
    secret = b"signing-secret-123"
    seen: list[bool] = []

    class Signed(Auth):
        def apply(self, method: str, url: str, headers: dict[str, str], body: bytes | None) -> str:
            headers["x-signature"] = hmac.new(secret, f"{method}\n{url}\n".encode() + (body or b""),
                                              hashlib.sha256).hexdigest()
            return url

        def secrets(self) -> tuple[str, ...]:
            return ()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            url = f"http://127.0.0.1:{self.server.server_address[1]}{self.path}"
            want = hmac.new(secret, f"POST\n{url}\n".encode() + body, hashlib.sha256).hexdigest()
            seen.append(hmac.compare_digest(want, self.headers.get("x-signature", "")))
            reply = (b'{"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,'
                     b'"message":{"role":"assistant","content":"signed"},"finish_reason":"stop"}]}')
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = openai.Client(base_url=f"http://127.0.0.1:{server.server_address[1]}/v1", auth=Signed())
        assert chat(client, "m") == "signed"
        assert seen == [True]
    finally:
        server.shutdown()
        server.server_close()


def test_a_query_key_goes_on_the_url_and_is_masked_everywhere(fake: FakeProvider,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    key = "qk-SECRET-0123456789"
    client = openai.Client(base_url=fake.base_url, auth=QueryKeyAuth("key", key), max_retries=0)
    fake.inject(Fault.status(401))
    with caplog.at_level(logging.DEBUG), pytest.raises(AuthenticationError) as info:
        chat(client)
    assert fake.last_request is not None and fake.last_request.query.get("key") == key
    shown = " ".join([str(info.value), repr(info.value), repr(client), caplog.text])
    assert key not in shown


def test_multi_auth_applies_every_part_in_order(fake: FakeProvider) -> None:
    both = MultiAuth(HeaderAuth("x-gateway", "gw-SECRET-1234"), BearerAuth(fake.api_key))
    chat(openai.Client(base_url=fake.base_url, auth=both))
    assert fake.last_request is not None
    assert fake.last_request.headers["x-gateway"] == "gw-SECRET-1234"
    assert fake.last_request.headers["authorization"] == f"Bearer {fake.api_key}"
    assert "gw-SECRET" not in repr(both) and fake.api_key not in repr(both)


# --- secrets ------------------------------------------------------------------------------------------


def test_every_token_a_token_auth_gave_is_masked_in_errors(fake: FakeProvider) -> None:
    tokens = iter(["tok-FIRST-0123456789", "tok-SECOND-0123456789"])
    client = openai.Client(base_url=fake.base_url, auth=TokenAuth(lambda: (next(tokens), 0.0)), max_retries=0)
    fake.inject(Fault.status(401))
    with pytest.raises(AuthenticationError):
        chat(client)  # spends the first token
    fake.script(Reply.json(401, {"error": {"message": "bad tokens tok-FIRST-0123456789 and "
                                           "tok-SECOND-0123456789", "type": "invalid_request_error"}}))
    with pytest.raises(AuthenticationError) as info:
        chat(client)
    text = f"{info.value} {info.value!r} {info.value.body}"
    assert "tok-FIRST" not in text and "tok-SECOND" not in text and "***" in text


def test_auth_reprs_and_pickles_hide_nothing_they_should_not_keep(fake: FakeProvider) -> None:
    for auth in (BearerAuth("sk-SECRET-1"), HeaderAuth("x-api-key", "xk-SECRET-2"),
                 QueryKeyAuth("key", "qk-SECRET-3"), TokenAuth(_static_token)):
        assert "SECRET" not in repr(auth)
        again = pickle.loads(pickle.dumps(auth))
        assert type(again) is type(auth) and again.secrets() == auth.secrets()
    client = openai.Client(base_url=fake.base_url, auth=TokenAuth(_token_for_fake))
    chat(client)
    assert _FAKE_TOKEN.encode() not in pickle.dumps(client)  # a fetched token is fetched again, not carried
    chat(pickle.loads(pickle.dumps(client)))


_FAKE_TOKEN = "tok-FETCHED-0123456789"  # the fake takes any key


def _static_token() -> str:
    return "tk-SECRET-4"


def _token_for_fake() -> str:
    return _FAKE_TOKEN


# --- building --------------------------------------------------------------------------------------------


def test_auth_takes_the_place_of_the_key(fake: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-the-environment")
    chat(openai.Client(base_url=fake.base_url, auth=BearerAuth(fake.api_key)))
    assert fake.last_request is not None
    assert fake.last_request.headers["authorization"] == f"Bearer {fake.api_key}"
    with pytest.raises(ClientBuildError, match="not both"):
        openai.Client("sk-x", auth=BearerAuth("sk-y"))
    with pytest.raises(TypeError, match=r"rig_sync\.auth\.Auth"):
        openai.Client(auth="sk-y")  # type: ignore[arg-type]
    built = openai.ClientBuilder().base_url(fake.base_url).auth(BearerAuth(fake.api_key)).build()
    chat(built)


@pytest.mark.parametrize("bad", ["", "with space\n", "ключ"])
def test_bad_credentials_are_refused_when_built_without_echoing_them(bad: str) -> None:
    for make in (lambda: BearerAuth(bad), lambda: HeaderAuth("x-api-key", bad), lambda: QueryKeyAuth("key", bad)):
        with pytest.raises(ClientBuildError) as info:
            make()
        assert not bad.strip() or bad.strip() not in str(info.value)


def test_azure_token_provider_is_fetched_per_expiry(fake: FakeProvider) -> None:
    calls: list[int] = []

    def entra() -> tuple[str, float]:
        calls.append(1)
        return fake.api_key, 3600.0

    client = azure.Client(endpoint=fake.url, token_provider=entra)
    for _ in range(2):
        client.completion_model("gpt-4o").completion_request(PROMPT).send()
    assert len(calls) == 1
    assert fake.last_request is not None and fake.last_request.headers["authorization"] == f"Bearer {fake.api_key}"
    with pytest.raises(ClientBuildError):
        azure.Client("key", endpoint=fake.url, token_provider=entra)
    with pytest.raises(MissingAPIKeyError):
        azure.Client(endpoint=fake.url)
