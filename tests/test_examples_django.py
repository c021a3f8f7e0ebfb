"""examples/django_app against the loopback FakeProvider, through Django's test client and WSGI."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any
from wsgiref.util import setup_testing_defaults

import pytest

django = pytest.importorskip("django")

from examples_support import (  # noqa: E402 - after the skip
    FAN_OUT,
    assert_streamed_in_order,
    finishes_within,
    point_env_at,
    single_connection_assistant,
)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examples.django_app.settings")
django.setup()

from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment, teardown_test_environment  # noqa: E402

from examples.django_app import views  # noqa: E402
from examples.django_app.wsgi import application  # noqa: E402
from rig_sync.testing import FakeProvider, Fault  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def django_test_environment() -> Iterator[None]:
    setup_test_environment()  # lets the test client's "testserver" host through ALLOWED_HOSTS
    yield
    teardown_test_environment()


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeProvider]:
    with FakeProvider() as fake:
        point_env_at(fake, monkeypatch)
        build = views._build
        build.cache_clear()  # each test's process-wide assistant talks to its own fake
        yield fake
        build.cache_clear()


@pytest.fixture
def client(fake: FakeProvider) -> Client:
    return Client()


def test_ask_prompts_the_agent_with_its_preamble(client: Client, fake: FakeProvider) -> None:
    got = client.get("/ask", {"prompt": "ping-51d0"})
    assert got.status_code == 200
    assert got.json() == {"answer": "echo: ping-51d0"}
    sent = fake.last_request
    assert sent is not None and sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {fake.api_key}"
    assert sent.json["messages"][0]["role"] == "system"


def test_the_assistant_is_built_once_per_process(client: Client, fake: FakeProvider) -> None:
    for n in range(5):
        got = client.post("/ask", {"prompt": f"call {n}"}, content_type="application/json")
        assert got.json() == {"answer": f"echo: call {n}"}
    assert views.assistant() is views.assistant()
    assert fake.connection_count == 1  # one pool, reused by every request


def test_stream_sends_the_reply_in_several_chunks_in_order(client: Client) -> None:
    got = client.get("/stream", {"prompt": "one two three four five"})
    assert got.status_code == 200 and got.streaming
    assert got["Content-Type"] == "text/plain; charset=utf-8"
    assert got["Cache-Control"] == "no-cache"
    chunks = list(got.streaming_content)
    assert_streamed_in_order(chunks, "echo: one two three four five")


def test_closing_the_streaming_response_closes_the_provider_stream(
    client: Client, fake: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    assistant = single_connection_assistant(fake)
    monkeypatch.setattr(views, "_build", lambda: assistant)
    got = client.get("/stream", {"prompt": "a long story " * 50})
    assert next(iter(got.streaming_content)) == b"echo: "
    got.close()  # what Django's WSGI handler does when the server closes the body early
    answer = finishes_within(lambda: client.get("/ask", {"prompt": "next"}).json())
    assert answer == {"answer": "echo: next"}
    assert fake.connection_count == 2  # the half-read connection was dropped, not reused


def test_a_wsgi_server_closing_the_body_early_releases_the_connection(
    fake: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What gunicorn does when the browser goes away: stop iterating, call close() on the body.
    assistant = single_connection_assistant(fake)
    monkeypatch.setattr(views, "_build", lambda: assistant)
    started: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        started.append(status)
        return lambda data: None

    def wsgi_get(url: str) -> tuple[str, Any]:
        path, _, query = url.partition("?")
        environ: dict[str, Any] = {"PATH_INFO": path, "QUERY_STRING": query, "HTTP_HOST": "localhost"}
        setup_testing_defaults(environ)
        body = application(environ, start_response)
        return started[-1], body

    status, body = wsgi_get("/stream?prompt=" + "word+" * 100)
    assert status == "200 OK"
    assert next(iter(body)) == b"echo: "
    body.close()

    def next_request() -> bytes:
        _, answer = wsgi_get("/ask?prompt=after")
        try:
            return b"".join(answer)
        finally:
            answer.close()

    assert finishes_within(next_request) == b'{"answer": "echo: after"}'


def test_stream_fails_with_502_before_any_body_is_sent(client: Client, fake: FakeProvider) -> None:
    fake.inject(Fault.status(401))
    got = client.get("/stream", {"prompt": "hi"})
    assert got.status_code == 502 and not got.streaming
    assert "AuthenticationError" in got.json()["error"]
    assert fake.api_key not in got.content.decode()


def test_fan_out_asks_every_target_in_its_own_dialect(client: Client, fake: FakeProvider) -> None:
    got = client.post("/fan-out", {"prompt": "fan-44b2"}, content_type="application/json")
    assert got.status_code == 200
    assert got.json() == {"answers": {target: "echo: fan-44b2" for target in FAN_OUT}, "errors": {}}
    assert sorted(r.path for r in fake.requests) == sorted(FAN_OUT.values())
    assert all("fan-44b2" in r.text for r in fake.requests)


def test_fan_out_is_a_502_when_every_target_fails(client: Client, fake: FakeProvider) -> None:
    fake.inject(Fault.status(400), times=2)
    got = client.get("/fan-out", {"prompt": "none"})
    assert got.status_code == 502
    assert got.json()["answers"] == {} and len(got.json()["errors"]) == 2


@pytest.mark.parametrize(
    ("method", "body"),
    [("get", {}), ("get", {"prompt": " "}), ("get", {"prompt": "x" * 8001}), ("post", "not json"),
     ("post", '{"prompt": 3}')],
)
def test_a_bad_prompt_is_a_400(client: Client, fake: FakeProvider, method: str, body: Any) -> None:
    for path in ("/ask", "/stream", "/fan-out"):
        if method == "get":
            got = client.get(path, body)
        else:
            got = client.post(path, body, content_type="application/json")
        assert got.status_code == 400
        assert "prompt" in got.json()["error"]
    assert fake.request_count == 0


def test_other_methods_are_refused(client: Client, fake: FakeProvider) -> None:
    got = client.put("/ask", "{}", content_type="application/json")
    assert got.status_code == 405 and got["Allow"] == "GET, POST"
