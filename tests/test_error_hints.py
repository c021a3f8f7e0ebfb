"""Errors name what helps: the host and port a failed connection tried, and the missing `/v1` of a
base URL that got a 404. Against a closed loopback port, the loopback FakeProvider and `responses`."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
import responses

from rig_sync import errors
from rig_sync.providers import anthropic, groq, openai
from rig_sync.testing import FakeProvider, Fault

KEY = "sk-hint-secret-4242"


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port that refuses connections: bound (so nobody else takes it) but not listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def no_secret(err: BaseException) -> None:
    assert KEY not in str(err) and KEY not in repr(err) and KEY not in str(err.args)


def test_a_refused_connection_names_provider_host_and_port(closed_port: int) -> None:
    client = openai.Client(KEY, base_url=f"http://127.0.0.1:{closed_port}/v1", max_retries=0)
    with pytest.raises(errors.APIConnectionError) as info:
        client.completion_model("gpt-4o-mini").completion_request("hi").send()
    err = info.value
    assert type(err) is errors.APIConnectionError and err.provider == "openai"
    assert str(err).startswith(f"[openai] could not connect to 127.0.0.1:{closed_port} (connection refused)")
    assert "POST /chat/completions" in str(err) and "base URL" in str(err)
    no_secret(err)


def test_each_provider_is_named_and_a_stream_fails_the_same_way(closed_port: int) -> None:
    client = anthropic.Client(KEY, base_url=f"http://127.0.0.1:{closed_port}", max_retries=0)
    refused = rf"^\[anthropic\] could not connect to 127\.0\.0\.1:{closed_port} \(connection refused\)"
    with pytest.raises(errors.APIConnectionError, match=refused) as info:
        list(client.completion_model("claude-3-5-haiku-latest").completion_request("hi").stream())
    no_secret(info.value)


def test_a_timeout_names_the_host_port_and_the_limit(fake: FakeProvider) -> None:
    fake.inject(Fault.hang())
    client = openai.Client(KEY, base_url=fake.base_url, max_retries=0, timeout=(5, 0.2))
    with pytest.raises(errors.APITimeoutError) as info:
        client.completion_model("gpt-4o-mini").completion_request("hi").send()
    host, port = fake.address
    assert f"{host}:{port} did not answer within 0.2s" in str(info.value)
    assert "Raise the timeout" in str(info.value)
    no_secret(info.value)


def test_a_404_from_a_base_url_without_v1_suggests_the_fixed_url(fake: FakeProvider) -> None:
    client = openai.Client(fake.api_key, base_url=fake.url, max_retries=0)  # the fake serves OpenAI under /v1
    model = client.completion_model("gpt-4o-mini")
    with pytest.raises(errors.NotFoundError) as info:
        model.completion_request("hi").send()
    hint = f"the base URL {fake.url} probably needs /v1: try base_url='{fake.url}/v1'"
    assert hint in str(info.value)
    with pytest.raises(errors.NotFoundError, match="probably needs /v1"):
        list(model.completion_request("hi").stream())
    with pytest.raises(errors.NotFoundError, match="probably needs /v1"):
        client.embedding_model("text-embedding-3-small").embed_text("hi")
    # The suggestion works.
    fixed = openai.Client(fake.api_key, base_url=f"{fake.url}/v1", max_retries=0)
    assert fixed.completion_model("gpt-4o-mini").completion_request("hi").send().text == "echo: hi"


def test_the_hint_keeps_a_path_the_base_url_already_has(mocked: responses.RequestsMock) -> None:
    mocked.post("http://127.0.0.1:9/proxy/chat/completions", status=404, json={"error": {"message": "no route"}})
    client = openai.Client(KEY, base_url="http://127.0.0.1:9/proxy", max_retries=0)
    with pytest.raises(errors.NotFoundError) as info:
        client.completion_model("m").completion_request("hi").send()
    assert "no route" in str(info.value) and "try base_url='http://127.0.0.1:9/proxy/v1'" in str(info.value)
    no_secret(info.value)


def test_the_prefix_comes_from_the_providers_default_base_url(mocked: responses.RequestsMock) -> None:
    # groq's API lives under /openai/v1 (https://api.groq.com/openai/v1).
    mocked.post("http://127.0.0.1:9/chat/completions", status=404, json={"error": {"message": "Unknown request URL"}})
    with pytest.raises(errors.NotFoundError, match=r"needs /openai/v1: try base_url='http://127\.0\.0\.1:9/openai/v1'"):
        groq.Client(KEY, base_url="http://127.0.0.1:9", max_retries=0).completion_model("m").completion_request(
            "hi").send()


def test_no_hint_where_the_prefix_is_there_or_the_provider_has_none(fake: FakeProvider) -> None:
    # A 404 for a model the server does not know, on a right base URL: the server's message alone.
    fake.inject(Fault.status(404))
    with pytest.raises(errors.NotFoundError) as info:
        openai.Client(fake.api_key, base_url=fake.base_url, max_retries=0).completion_model("m").completion_request(
            "hi").send()
    assert "probably needs" not in str(info.value)
    # A proxy's own layout keeping a segment of the prefix (`/v1/...`) is not second-guessed.
    with pytest.raises(errors.NotFoundError) as info:
        openai.Client(fake.api_key, base_url=f"{fake.url}/v1/extra", max_retries=0).completion_model(
            "m").completion_request("hi").send()
    assert "probably needs" not in str(info.value)
    # Anthropic's default base URL has no path (its paths carry /v1): nothing to suggest.
    with pytest.raises(errors.NotFoundError) as info:
        anthropic.Client(fake.api_key, base_url=f"{fake.url}/nowhere", max_retries=0).completion_model(
            "claude-3-5-haiku-latest").completion_request("hi").send()
    assert "probably needs" not in str(info.value)


def test_other_statuses_get_no_base_url_hint(fake: FakeProvider) -> None:
    fake.inject(Fault.status(400))
    with pytest.raises(errors.BadRequestError) as info:
        openai.Client(fake.api_key, base_url=fake.url, max_retries=0).completion_model("m").completion_request(
            "hi").send()
    assert "probably needs" not in str(info.value)
