"""examples/flask_app.py against the loopback FakeProvider, through Flask's test client."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("flask")

from examples_support import (
    FAN_OUT,
    assert_streamed_in_order,
    finishes_within,
    point_env_at,
    single_connection_assistant,
)
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from examples.flask_app import create_app
from rig_sync.errors import MissingAPIKeyError
from rig_sync.testing import FakeProvider, Fault


def as_dict(response: TestResponse) -> dict[str, Any]:
    data = response.get_json()
    assert isinstance(data, dict), data
    return data


@pytest.fixture
def app(fake: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> Flask:
    point_env_at(fake, monkeypatch)
    return create_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def test_ask_prompts_the_agent_with_its_preamble(client: FlaskClient, fake: FakeProvider) -> None:
    got = client.get("/ask", query_string={"prompt": "ping-7f3a"})
    assert got.status_code == 200
    assert as_dict(got) == {"answer": "echo: ping-7f3a"}
    sent = fake.last_request
    assert sent is not None and sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {fake.api_key}"  # the key came from OPENAI_API_KEY
    assert sent.json["messages"][0]["role"] == "system"


def test_the_client_is_built_once_not_per_request(client: FlaskClient, fake: FakeProvider) -> None:
    for n in range(5):
        assert as_dict(client.post("/ask", json={"prompt": f"call {n}"})) == {"answer": f"echo: call {n}"}
    assert fake.connection_count == 1  # one pool, reused by every request


def test_stream_sends_the_reply_in_several_chunks_in_order(client: FlaskClient) -> None:
    got = client.get("/stream", query_string={"prompt": "one two three four five"}, buffered=False)
    assert got.status_code == 200
    assert got.mimetype == "text/plain"
    assert got.headers["X-Accel-Buffering"] == "no"
    chunks = [chunk for chunk in got.response if isinstance(chunk, bytes)]
    got.close()
    assert_streamed_in_order(chunks, "echo: one two three four five")


def test_a_client_disconnect_closes_the_provider_stream(fake: FakeProvider) -> None:
    # One pooled connection: had the half-read stream kept it, the next request would block forever.
    client = create_app(single_connection_assistant(fake)).test_client()
    got = client.get("/stream", query_string={"prompt": "a long story " * 50}, buffered=False)
    assert next(iter(got.response)) == b"echo: "
    got.close()  # what the WSGI server does when the browser goes away
    answer = finishes_within(lambda: as_dict(client.get("/ask", query_string={"prompt": "next"})))
    assert answer == {"answer": "echo: next"}
    # The half-read connection was dropped (never reused mid-stream); the next request opened another.
    assert fake.connection_count == 2


def test_stream_fails_with_502_before_any_body_is_sent(client: FlaskClient, fake: FakeProvider) -> None:
    fake.inject(Fault.status(401))
    got = client.get("/stream", query_string={"prompt": "hi"})
    assert got.status_code == 502
    assert got.is_json and "AuthenticationError" in as_dict(got)["error"]
    assert fake.api_key not in got.get_data(as_text=True)


def test_fan_out_asks_every_target_in_its_own_dialect(client: FlaskClient, fake: FakeProvider) -> None:
    got = client.post("/fan-out", json={"prompt": "fan-9c1e"})
    assert got.status_code == 200
    assert as_dict(got) == {"answers": {target: "echo: fan-9c1e" for target in FAN_OUT}, "errors": {}}
    assert sorted(r.path for r in fake.requests) == sorted(FAN_OUT.values())
    assert all("fan-9c1e" in r.text for r in fake.requests)


def test_fan_out_reports_a_failing_target_beside_the_others(client: FlaskClient, fake: FakeProvider) -> None:
    fake.inject(Fault.status(400), path="/v1/messages")
    got = client.post("/fan-out", json={"prompt": "half"})
    assert got.status_code == 200
    assert as_dict(got)["answers"] == {"openai:gpt-4o-mini": "echo: half"}
    assert list(as_dict(got)["errors"]) == ["anthropic:claude-3-5-haiku-latest"]


def test_fan_out_is_a_502_when_every_target_fails(client: FlaskClient, fake: FakeProvider) -> None:
    fake.inject(Fault.status(400), times=2)
    got = client.post("/fan-out", json={"prompt": "none"})
    assert got.status_code == 502
    assert as_dict(got)["answers"] == {} and len(as_dict(got)["errors"]) == 2


@pytest.mark.parametrize("query", [{}, {"prompt": "   "}, {"prompt": "x" * 8001}])
def test_a_missing_or_oversized_prompt_is_a_400(client: FlaskClient, fake: FakeProvider, query: dict[str, str]) -> None:
    for path in ("/ask", "/stream", "/fan-out"):
        got = client.get(path, query_string=query)
        assert got.status_code == 400 and "prompt" in as_dict(got)["error"]
    assert fake.request_count == 0


def test_the_app_refuses_to_start_without_a_key(monkeypatch: pytest.MonkeyPatch, fake: FakeProvider) -> None:
    point_env_at(fake, monkeypatch)
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(MissingAPIKeyError, match="OPENAI_API_KEY"):
        create_app()
