"""Shared test helpers: the recorded provider payloads in tests/fixtures (their sources are in its
README.md), and the `fake` fixture (a loopback FakeProvider) with the `ADD` tool the end-to-end
tests call. Nothing here reads outside the repository.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import responses

from rig_sync.completion import BaseCompletionModel, CompletionRequest, CompletionResponse, ToolDefinition, Usage
from rig_sync.message import Text
from rig_sync.testing import FakeProvider

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def fixture_path(name: str) -> Path:
    """The path of a fixture file, e.g. `fixture_path("openai/chat_completion.text.json")`."""
    path = FIXTURES / name
    if not path.is_file():
        pytest.fail(f"fixture {name!r} not found under {FIXTURES}")
    return path


def load_bytes(name: str) -> bytes:
    return fixture_path(name).read_bytes()


def load_fixture(name: str) -> Any:
    """A JSON fixture parsed; any other fixture as text."""
    path = fixture_path(name)
    if path.suffix == ".json":
        return json.loads(path.read_bytes())
    return path.read_text(encoding="utf-8")


@cache
def _index() -> dict[str, dict[str, Any]]:
    data = json.loads(fixture_path("index.json").read_bytes())
    return {entry["file"]: entry for entry in data["files"]}


def fixture_meta(name: str) -> dict[str, Any]:
    """The index.json entry of a fixture (status, content type, recorded response headers …)."""
    return _index().get(name, {})


def recorded_headers(name: str) -> dict[str, str]:
    """The response headers recorded with a fixture, without Content-Type (passed separately)."""
    headers = fixture_meta(name).get("response_headers") or {}
    return {k: v for k, v in headers.items() if k.lower() != "content-type"}


def sse_payloads(name: str) -> list[Any]:
    """The `data:` payloads of an SSE fixture, parsed independently of rig_sync's SSE reader."""
    out: list[Any] = []
    for line in load_bytes(name).decode("utf-8").splitlines():
        if line.startswith("data: ") and line[6:] != "[DONE]":
            out.append(json.loads(line[6:]))
    return out


def serve_fixture(mocked: responses.RequestsMock, url: str, name: str, *, method: str = "POST",
                  headers: dict[str, str] | None = None, body: bytes | None = None) -> None:
    """Answer the next `method url` with a fixture, with its recorded status, content type and headers."""
    meta = fixture_meta(name)
    mocked.add(
        method,
        url,
        body=load_bytes(name) if body is None else body,
        status=meta.get("http_status") or 200,
        content_type=meta.get("content_type") or "application/json",
        headers={**recorded_headers(name), **(headers or {})},
    )


def sent_json(mocked: responses.RequestsMock, index: int = 0) -> Any:
    """The JSON body of the `index`-th request the mock received."""
    body = mocked.calls[index].request.body
    assert body is not None, "the request had no body"
    return json.loads(body)


def credentials_sent(client: Any) -> dict[str, str]:
    """The headers a client's auth puts on a request to its own base URL."""
    headers: dict[str, str] = {}
    if client.transport.auth is not None:
        client.transport.auth.apply("POST", client.base_url, headers, b"{}")
    return headers


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    """HTTP mocked with `responses`; every registered response must be requested."""
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        yield rsps


# --- the loopback FakeProvider, shared by the end-to-end tests ----------------------------------------

ADD = ToolDefinition("add", "Add two integers",
                     {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                      "required": ["a", "b"]})


@pytest.fixture
def fake() -> Iterator[FakeProvider]:
    """A FakeProvider for one test (a module may define its own, e.g. module-scoped)."""
    with FakeProvider() as fp:
        yield fp


# --- no provider variable of the machine running the tests leaks into them ------------------------------


@cache
def _provider_variables() -> list[str]:
    # Asked of the provider classes themselves (at the first test, not at collection).
    from rig_sync.client.builder import provider_env_variables

    return provider_env_variables()


@pytest.fixture(autouse=True)
def _without_provider_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Clients read their provider's variables when built: a developer's OPENAI_API_KEY (or
    OPENAI_BASE_URL, ANTHROPIC_TIMEOUT …) must not change what a test sees."""
    for name in _provider_variables():
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def _fresh_shared_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts without the one-liners' shared registry, so no client cached by another
    test (pointed at another test's fake) is reused; the test's own clients are closed after it."""
    from rig_sync.client import builder

    monkeypatch.setattr(builder, "_shared", None)
    yield
    if builder._shared is not None:
        builder._shared.clear()


class InterruptAfter:
    """A progress object that raises KeyboardInterrupt (as Ctrl-C would) after `n` items."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.seen = 0

    def update(self, ok: bool) -> None:
        self.seen += 1
        if self.seen == self.n:
            raise KeyboardInterrupt

    def skip(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


class RecordingModel(BaseCompletionModel):
    """A completion model that keeps the requests it is given and answers "ok"."""

    provider = "recording"
    model = "m"

    def __init__(self) -> None:
        self.requests: list[CompletionRequest] = []

    def completion(self, request: CompletionRequest) -> CompletionResponse:
        self.requests.append(request)
        return CompletionResponse((Text("ok"),), Usage(1, 1, 2))
