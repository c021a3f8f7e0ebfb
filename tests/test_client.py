"""The provider client base, through OpenAI as the concrete provider: construction paths,
builder settings that must each take effect, capabilities, secrets, pickling, threads."""

from __future__ import annotations

import pickle
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

import pytest
import requests
import responses

import rig_sync.client
from rig_sync.client import (
    AudioGenerationClient,
    CompletionClient,
    EmbeddingsClient,
    ImageGenerationClient,
    ProviderClient,
    ProviderValue,
    TranscriptionClient,
)
from rig_sync.errors import ClientBuildError, InvalidBaseURLError, MissingAPIKeyError, RigError
from rig_sync.http import RetryPolicy, Timeout
from rig_sync.providers import openai
from rig_sync.providers._openai_chat import ChatCompletionsModel
from rig_sync.testing import FakeProvider, Fault

KEY = "sk-live-SECRET-0123456789abcdef"
BASE = "http://127.0.0.1:9/v1"
CHAT = f"{BASE}/chat/completions"
ANSWER = {
    "choices": [{"message": {"role": "assistant", "content": "pong"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


class CountingSession(requests.Session):
    """A caller's own Session: counts the requests it sends and keeps the send options."""

    def __init__(self) -> None:
        super().__init__()
        self.sent = 0
        self.kwargs: list[dict[str, Any]] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        self.sent += 1
        self.kwargs.append(kwargs)
        return super().send(request, **kwargs)


def ping(client: openai.Client) -> str:
    return client.completion_model("gpt-4o").completion_request("ping").send().text


# --- construction ---------------------------------------------------------------------------------


def test_client_from_a_key_sends_it_as_a_bearer_token(mocked: responses.RequestsMock) -> None:
    mocked.add(responses.POST, CHAT, json=ANSWER)
    client = openai.Client(KEY, base_url=BASE)
    assert ping(client) == "pong"
    assert mocked.calls[0].request.headers["Authorization"] == f"Bearer {KEY}"
    assert client.base_url == BASE
    assert openai.Client(KEY).base_url == "https://api.openai.com/v1"


def test_from_env_reads_key_and_base_url(monkeypatch: pytest.MonkeyPatch, mocked: responses.RequestsMock) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", BASE)
    mocked.add(responses.POST, CHAT, json=ANSWER)
    client = openai.Client.from_env()
    assert client.base_url == BASE
    assert ping(client) == "pong"
    assert mocked.calls[0].request.headers["Authorization"] == f"Bearer {KEY}"


def test_from_env_without_a_key_names_the_variable() -> None:
    # (tests/conftest.py removes every provider variable for each test)
    with pytest.raises(MissingAPIKeyError, match="OPENAI_API_KEY") as info:
        openai.Client.from_env()
    assert isinstance(info.value, ClientBuildError) and isinstance(info.value, RigError)


@pytest.mark.parametrize("key", [None, "", "   "])
def test_missing_key_is_refused_at_build_time(key: str | None) -> None:
    with pytest.raises(MissingAPIKeyError, match="OPENAI_API_KEY"):
        openai.Client(key)
    with pytest.raises(MissingAPIKeyError, match="OPENAI_API_KEY"):
        openai.ClientBuilder(key).base_url(BASE).build()


def test_a_non_string_key_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        openai.Client(12345)  # type: ignore[arg-type]


def test_from_value(mocked: responses.RequestsMock) -> None:
    mocked.add(responses.POST, CHAT, json=ANSWER)
    client = openai.Client.from_value(ProviderValue(KEY, base_url=BASE, options={"organization": "org-1"}))
    assert ping(client) == "pong"
    headers = mocked.calls[0].request.headers
    assert headers["Authorization"] == f"Bearer {KEY}"
    assert headers["OpenAI-Organization"] == "org-1"
    assert openai.Client.from_value(KEY).base_url == "https://api.openai.com/v1"  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="ProviderValue"):
        openai.Client.from_value(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="unexpected options"):
        openai.Client.from_value(ProviderValue(KEY, options={"colour": "blue"}))


@pytest.mark.parametrize(
    "url",
    ["not a url", "ftp://example.invalid/v1", "127.0.0.1:8080/v1", "http://", "", "https://user:pw@example.invalid"],
)
def test_malformed_base_url_is_refused_at_build_time(url: str) -> None:
    with pytest.raises(InvalidBaseURLError) as info:
        openai.ClientBuilder(KEY).base_url(url).build()
    assert "pw" not in str(info.value)  # credentials inside a URL are never echoed
    with pytest.raises(InvalidBaseURLError):
        openai.Client(KEY, base_url=url)


# --- the builder: every setting takes effect ------------------------------------------------------


def full_builder(session: requests.Session, base_url: str = BASE) -> Any:
    return (
        openai.ClientBuilder(KEY)
        .base_url(base_url)
        .custom_client(session)
        .timeout(30)
        .max_retries(3)
        .headers({"X-Team": "a"})
    )


def test_builder_settings_take_effect(mocked: responses.RequestsMock) -> None:
    session = CountingSession()
    client = full_builder(session).build()
    assert isinstance(client, openai.Client)
    assert client.transport.timeout == Timeout(connect=10.0, read=30.0)
    assert client.transport.retry.max_retries == 3
    mocked.add(responses.POST, CHAT, json=ANSWER)
    assert ping(client) == "pong"
    sent = mocked.calls[0].request
    assert sent.url == CHAT  # the base URL
    assert sent.headers["X-Team"] == "a"  # the custom header
    assert sent.headers["Authorization"] == f"Bearer {KEY}"
    assert session.sent == 1  # the caller's own Session carried the request
    assert session.kwargs[0]["timeout"] == (10.0, 30.0)  # with the configured timeout


def test_client_builder_classmethod_is_the_same_builder() -> None:
    built = openai.Client.builder(KEY).base_url(BASE).timeout((2, 5)).build()
    assert isinstance(built, openai.Client)
    assert built.transport.timeout == Timeout(2.0, 5.0)
    assert isinstance(openai.Client.builder(KEY), openai.ClientBuilder)


def test_max_retries_is_used_on_the_wire(fake: FakeProvider) -> None:
    fake.inject(Fault.status(503), times=3)
    client = (
        openai.ClientBuilder(fake.api_key)
        .base_url(fake.base_url)
        .retry(RetryPolicy(backoff_base=0.0))  # no waiting between attempts in a test
        .max_retries(3)
        .timeout(5)
        .build()
    )
    assert client.transport.retry == RetryPolicy(max_retries=3, backoff_base=0.0)
    assert ping(client)
    assert fake.request_count == 4  # three 503s retried, the fourth answered


def test_max_retries_zero_gives_up_at_once(fake: FakeProvider) -> None:
    fake.inject(Fault.status(503), times=2)
    client = openai.ClientBuilder(fake.api_key).base_url(fake.base_url).max_retries(0).timeout(5).build()
    with pytest.raises(RigError) as info:
        ping(client)
    assert getattr(info.value, "status_code", None) == 503
    assert fake.request_count == 1


def test_custom_session_and_headers_against_the_fake_provider(fake: FakeProvider) -> None:
    session = CountingSession()
    client = full_builder(session, fake.base_url).api_key(fake.api_key).build()
    assert ping(client)
    assert session.sent == 1
    recorded = fake.last_request
    assert recorded is not None
    assert recorded.headers.get("x-team") == "a"
    assert recorded.headers.get("authorization") == f"Bearer {fake.api_key}"


@pytest.mark.parametrize(
    ("configure", "error"),
    [
        (lambda b: b.max_retries(-1), ValueError),
        (lambda b: b.max_retries(True), ValueError),
        (lambda b: b.timeout(0), ValueError),
        (lambda b: b.timeout("30"), TypeError),
        (lambda b: b.headers({"X-Count": 3}), TypeError),
        (lambda b: b.headers({"X-Bad": "a\r\nInjected: yes"}), ValueError),
        (lambda b: b.headers(["X-Team"]), TypeError),
        (lambda b: b.custom_client(object()), TypeError),
    ],
    ids=["negative-retries", "bool-retries", "zero-timeout", "str-timeout", "int-header", "crlf-header",
         "list-headers", "not-a-session"],
)
def test_bad_builder_settings_are_refused(configure: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        configure(openai.ClientBuilder(KEY)).build()


def test_headers_calls_accumulate(mocked: responses.RequestsMock) -> None:
    mocked.add(responses.POST, CHAT, json=ANSWER)
    client = openai.ClientBuilder(KEY).base_url(BASE).headers({"X-A": "1"}).headers({"X-B": "2"}).build()
    ping(client)
    headers = mocked.calls[0].request.headers
    assert (headers["X-A"], headers["X-B"]) == ("1", "2")


# --- capabilities ---------------------------------------------------------------------------------


def test_openai_has_every_capability() -> None:
    client = openai.Client(KEY)
    for accessor in (client.as_completion, client.as_embeddings, client.as_transcription,
                     client.as_image_generation, client.as_audio_generation):
        assert accessor() is client
    for mixin in (CompletionClient, EmbeddingsClient, TranscriptionClient, ImageGenerationClient,
                  AudioGenerationClient):
        assert isinstance(client, mixin)
    assert isinstance(client, rig_sync.client.EmbeddingsClient)
    assert openai.Client.capabilities() == [
        "completion", "embeddings", "transcription", "image_generation", "audio_generation", "list_models",
        "batch_jobs"]
    assert client.as_batch_jobs() is client  # OpenAI's Batch API (tests/test_openai_batch.py)
    assert client.as_rerank() is None  # OpenAI has no reranking endpoint


class CompletionOnlyClient(ProviderClient, CompletionClient):
    """A provider with chat completions and nothing else."""

    provider: ClassVar[str] = "testonly"
    default_base_url: ClassVar[str] = "http://127.0.0.1:9/v1"

    def completion_model(self, model: str) -> ChatCompletionsModel:
        return ChatCompletionsModel(self, model)


def test_a_provider_without_a_capability_answers_none(monkeypatch: pytest.MonkeyPatch) -> None:
    client = CompletionOnlyClient("k")
    assert client.as_completion() is client
    assert client.as_embeddings() is None
    assert client.as_transcription() is None
    assert client.as_image_generation() is None
    assert client.as_audio_generation() is None
    assert not isinstance(client, EmbeddingsClient)
    assert CompletionOnlyClient.capabilities() == ["completion"]
    # The base class derived the env names and the builder from the provider name.
    assert CompletionOnlyClient.env_api_key == ("TESTONLY_API_KEY",)
    monkeypatch.setenv("TESTONLY_API_KEY", "from-env")
    assert CompletionOnlyClient.from_env().base_url == "http://127.0.0.1:9/v1"
    assert isinstance(CompletionOnlyClient.builder("k").build(), CompletionOnlyClient)


def test_models_are_cheap_views_of_the_client() -> None:
    client = openai.Client(KEY)
    a, b = client.completion_model("gpt-4o"), client.completion_model("gpt-4o-mini")
    assert a.client is client and b.client is client
    assert (a.provider, a.model) == ("openai", "gpt-4o")
    assert KEY not in repr(a)


@pytest.mark.parametrize("name", ["", "  ", None])
def test_a_model_needs_a_name(name: Any) -> None:
    with pytest.raises(RigError, match="model name"):
        openai.Client(KEY).completion_model(name)


# --- secrets --------------------------------------------------------------------------------------


def test_the_key_never_appears_in_reprs() -> None:
    session = requests.Session()
    builder = full_builder(session)
    client = builder.build()
    value = ProviderValue(KEY, base_url=BASE)
    for text in (repr(client), str(client), repr(builder), repr(value), str(value), repr(client.transport),
                 repr(client.completion_model("gpt-4o")), repr(client.embedding_model("text-embedding-3-small"))):
        assert KEY not in text
        assert "SECRET" not in text
    assert "***" in repr(value)
    assert "None" in repr(ProviderValue())


@pytest.mark.parametrize("key", ["sk-abc\ndef", "sk-abc def", "sk-abc\x00", "sk-\u2026abc"],
                         ids=["newline", "space", "nul", "non-ascii"])
def test_a_mangled_key_is_refused_at_build_without_echoing_it(key: str, mocked: responses.RequestsMock) -> None:
    # Sent, `requests` would quote the whole header, key included, in its error message.
    with pytest.raises(ClientBuildError, match="API key contains") as info:
        openai.Client(key, base_url=BASE)
    assert key.strip() not in str(info.value) and "abc" not in str(info.value)
    assert len(mocked.calls) == 0


def test_surrounding_whitespace_in_a_key_is_trimmed(mocked: responses.RequestsMock) -> None:
    mocked.add(responses.POST, CHAT, json=ANSWER)
    ping(openai.Client(f"  {KEY}\n", base_url=BASE))
    assert mocked.calls[0].request.headers["Authorization"] == f"Bearer {KEY}"


@pytest.mark.parametrize(
    "make",
    [lambda: ProviderValue(123), lambda: ProviderValue(KEY, base_url=5),  # type: ignore[arg-type]
     lambda: ProviderValue(KEY, options=[1])],  # type: ignore[arg-type]
    ids=["int-key", "int-url", "list-options"],
)
def test_provider_value_checks_its_fields(make: Any) -> None:
    with pytest.raises(TypeError):
        make()


def test_the_key_is_not_in_a_missing_key_or_bad_url_error() -> None:
    with pytest.raises(InvalidBaseURLError) as info:
        openai.Client(KEY, base_url="nope")
    assert KEY not in str(info.value)


# --- immutability, pickling, threads --------------------------------------------------------------


def test_clients_are_immutable_once_built() -> None:
    client = openai.Client(KEY)
    with pytest.raises(AttributeError, match="immutable"):
        client.transport = None  # type: ignore[assignment]
    with pytest.raises(AttributeError, match="immutable"):
        client.anything = 1
    with pytest.raises(AttributeError):
        del client.transport


def test_clients_pickle_and_work_after(mocked: responses.RequestsMock) -> None:
    client = openai.ClientBuilder(KEY).base_url(BASE).headers({"X-Team": "a"}).max_retries(1).timeout(7).build()
    copy = pickle.loads(pickle.dumps(client))
    assert isinstance(copy, openai.Client) and copy is not client
    assert (copy.base_url, copy.transport.timeout, copy.transport.retry) == (
        BASE, client.transport.timeout, client.transport.retry)
    mocked.add(responses.POST, CHAT, json=ANSWER)
    assert ping(copy) == "pong"
    sent = mocked.calls[0].request.headers
    assert (sent["Authorization"], sent["X-Team"]) == (f"Bearer {KEY}", "a")
    with pytest.raises(AttributeError):
        copy.transport = None  # type: ignore[assignment]  # still immutable after the round trip


def test_a_pickled_client_with_a_custom_session_drops_only_the_session(fake: FakeProvider) -> None:
    session = CountingSession()
    client = full_builder(session, fake.base_url).api_key(fake.api_key).build()
    copy = pickle.loads(pickle.dumps(client))
    assert ping(copy)
    assert session.sent == 0  # live connections stay behind; the settings travel
    recorded = fake.last_request
    assert recorded is not None and recorded.headers.get("x-team") == "a"


def test_a_client_is_safe_to_share_across_threads(mocked: responses.RequestsMock) -> None:
    mocked.add(responses.POST, CHAT, json=ANSWER)
    client = openai.Client(KEY, base_url=BASE)
    start = threading.Barrier(16)

    def work(i: int) -> str:
        start.wait(timeout=10)
        return client.completion_model("gpt-4o").completion_request(f"ping {i}").send().text

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(work, range(64)))
    assert answers == ["pong"] * 64
    assert len(mocked.calls) == 64


def test_threads_share_one_pool_against_a_real_server(fake: FakeProvider) -> None:
    client = openai.ClientBuilder(fake.api_key).base_url(fake.base_url).pool_size(8).timeout(10).build()
    model = client.completion_model("gpt-4o")

    def work(i: int) -> str:
        return model.completion_request(f"question {i}").send().text

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(work, range(40)))
    assert len(answers) == 40 and all(answers)
    assert fake.request_count == 40
    prompts = sorted(r.json["messages"][-1]["content"] for r in fake.requests)
    assert prompts == sorted(f"question {i}" for i in range(40))


def test_close_and_context_manager() -> None:
    with openai.Client(KEY) as client:
        assert client.as_completion() is client
    client.close()  # closing twice is harmless
