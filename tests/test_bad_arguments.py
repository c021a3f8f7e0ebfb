"""Bad arguments at every public entry point fail at the call, with a clear error, before any request.

Every case runs inside a `responses` mock with no URL registered: a request would come back as an
`APIConnectionError`, which no case expects, and the mock's call list must stay empty. A few cases
also run against the loopback `FakeProvider`, whose request counter must stay at zero.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import pytest
import responses

from rig_sync import batch, pipeline
from rig_sync.agent import AgentBuilder
from rig_sync.audio_generation import AudioGenerationRequest
from rig_sync.client import ClientBuilder, ProviderValue
from rig_sync.client.builder import ClientFactory, DynClientBuilder, builtin_provider_names, load_provider
from rig_sync.completion import Document, ToolDefinition
from rig_sync.errors import (
    APIError,
    ClientBuildError,
    InvalidBaseURLError,
    InvalidIdString,
    InvalidRequestError,
    MissingAPIKeyError,
    UnknownProvider,
    UnsupportedFeature,
)
from rig_sync.extractor import ExtractorBuilder
from rig_sync.image_generation import ImageGenerationRequest
from rig_sync.ratelimit import RateLimiter
from rig_sync.testing import FakeProvider
from rig_sync.tool import tool
from rig_sync.transcription import TranscriptionRequest
from rig_sync.vector_store import InMemoryVectorStore
from tests.test_registry_walk import HOST, claims, value_for

PROVIDERS = builtin_provider_names()
NAN = math.nan


@pytest.fixture(autouse=True)
def no_network(request: pytest.FixtureRequest) -> Iterator[None]:
    """Any request would fail with a connection error, and be counted (tests of the real loopback
    server count its requests instead)."""
    if "fake" in request.fixturenames:
        yield
        return
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        yield
        assert len(mocked.calls) == 0, f"a request was sent: {mocked.calls[0].request.url}"


def assert_refused(call: Callable[[], Any],
                   expected: type[BaseException] | tuple[type[BaseException], ...]) -> BaseException:
    """The error `call` raises: of the `expected` type, never a failed request in disguise."""
    with pytest.raises(expected) as info:
        call()
    assert not isinstance(info.value, APIError), f"a request was attempted: {info.value}"
    assert str(info.value).strip(), "the error says nothing"
    return info.value


def client(name: str, **overrides: Any) -> Any:
    value = value_for(name)
    kwargs = {"api_key": value.api_key, "base_url": value.base_url, **dict(value.options), **overrides}
    return load_provider(name)(**kwargs)


def capable(capability: str) -> list[str]:
    return [n for n in PROVIDERS if claims(n, capability)]


# --- provider clients ---------------------------------------------------------------------------

CLIENT_ARGS: list[tuple[str, dict[str, Any], type[BaseException]]] = [
    ("key-int", {"api_key": 123}, TypeError),
    ("key-bytes", {"api_key": b"sk-1"}, TypeError),
    ("key-space", {"api_key": "sk 1"}, ClientBuildError),
    ("key-newline", {"api_key": "sk-1\n"
                                "X-Evil: 1"}, ClientBuildError),
    ("base-no-scheme", {"base_url": "api.example.com/v1"}, InvalidBaseURLError),
    ("base-ftp", {"base_url": "ftp://127.0.0.1/v1"}, InvalidBaseURLError),
    ("base-empty", {"base_url": ""}, (InvalidBaseURLError, ClientBuildError)),  # type: ignore[dict-item]
    ("base-blank", {"base_url": "   "}, (InvalidBaseURLError, ClientBuildError)),  # type: ignore[dict-item]
    ("base-int", {"base_url": 8080}, (InvalidBaseURLError, TypeError, ClientBuildError)),  # type: ignore[dict-item]
    ("base-creds", {"base_url": "http://alice:hunter2-pw@127.0.0.1:9"}, InvalidBaseURLError),
    ("base-bad-port", {"base_url": "http://127.0.0.1:99999"}, InvalidBaseURLError),
    ("timeout-negative", {"timeout": -1}, ValueError),
    ("timeout-zero", {"timeout": 0}, ValueError),
    ("timeout-nan", {"timeout": NAN}, ValueError),
    ("timeout-str", {"timeout": "30"}, TypeError),
    ("timeout-tuple3", {"timeout": (1, 2, 3)}, TypeError),
    ("max-retries-negative", {"max_retries": -1}, ValueError),
    ("max-retries-str", {"max_retries": "3"}, (TypeError, ValueError)),  # type: ignore[dict-item]
    ("pool-zero", {"pool_size": 0}, ValueError),
    ("pool-str", {"pool_size": "8"}, TypeError),
    ("pool-bool", {"pool_size": True}, TypeError),
    ("headers-list", {"headers": [("a", "b")]}, TypeError),
    ("headers-int-value", {"headers": {"X-A": 1}}, TypeError),
    ("headers-newline", {"headers": {"X-A": "1\r\nX-B: 2"}}, ValueError),
    ("verify-none", {"verify": None}, TypeError),
    ("verify-zero", {"verify": 0}, TypeError),
    ("verify-empty-path", {"verify": ""}, ValueError),
    ("rate-limiter-str", {"rate_limiter": "60/min"}, TypeError),
    ("unknown-option", {"no_such_option": 1}, TypeError),
    ("session-str", {"session": "requests"}, TypeError),
    ("retry-int", {"retry": 3}, TypeError),
]


@pytest.mark.parametrize("name", PROVIDERS)
@pytest.mark.parametrize(("case", "kwargs", "expected"), CLIENT_ARGS, ids=[c[0] for c in CLIENT_ARGS])
def test_client_constructor_refuses(name: str, case: str, kwargs: dict[str, Any],
                                    expected: type[BaseException]) -> None:
    if name == "ollama" and case == "base-no-scheme":  # OLLAMA_HOST's documented `host:port` form
        assert client(name, **kwargs).base_url == "http://api.example.com:11434/v1"
        return
    err = assert_refused(lambda: client(name, **kwargs), expected)
    assert "hunter2-pw" not in str(err) and "hunter2-pw" not in repr(err)


@pytest.mark.parametrize("name", PROVIDERS)
def test_missing_or_blank_key(name: str) -> None:
    cls = load_provider(name)
    if not cls.requires_api_key and name != "azure":  # e.g. a local Ollama needs no key
        return
    for key in (None, "", "   "):
        assert_refused(lambda key=key: client(name, api_key=key), MissingAPIKeyError)


@pytest.mark.parametrize("name", PROVIDERS)
@pytest.mark.parametrize("value", [None, 123, {"api_key": "k"}, ["k"]], ids=["none", "int", "dict", "list"])
def test_from_value_refuses_non_values(name: str, value: Any) -> None:
    assert_refused(lambda: load_provider(name).from_value(value), TypeError)


@pytest.mark.parametrize("name", PROVIDERS)
def test_from_value_checks_its_base_url(name: str) -> None:
    good = value_for(name)
    for url in ("ftp://127.0.0.1:9/v1", "http://bob:s3cret-pw@127.0.0.1:9"):
        bad = ProviderValue(good.api_key, base_url=url, options=good.options)
        err = assert_refused(lambda bad=bad: load_provider(name).from_value(bad), InvalidBaseURLError)
        assert "s3cret-pw" not in str(err)


@pytest.mark.parametrize(("kwargs", "expected"), [
    ({"api_key": 1}, TypeError), ({"base_url": 1}, TypeError), ({"options": [1]}, TypeError),
], ids=["key", "base-url", "options"])
def test_provider_value_checks_types(kwargs: dict[str, Any], expected: type[BaseException]) -> None:
    assert_refused(lambda: ProviderValue(**kwargs), expected)


BUILDER_CALLS: list[tuple[str, Callable[[ClientBuilder], Any], type[BaseException]]] = [
    ("timeout-negative", lambda b: b.timeout(-5), ValueError),
    ("timeout-none", lambda b: b.timeout(None), TypeError),  # type: ignore[arg-type]
    ("max-retries-negative", lambda b: b.max_retries(-1), ValueError),
    ("max-retries-float", lambda b: b.max_retries(1.5), ValueError),  # type: ignore[arg-type]
    ("max-retries-bool", lambda b: b.max_retries(True), ValueError),
    ("custom-client-str", lambda b: b.custom_client("s"), TypeError),  # type: ignore[arg-type]
    ("headers-none", lambda b: b.headers(None), TypeError),  # type: ignore[arg-type]
    ("headers-bytes", lambda b: b.headers({"X-A": b"1"}), TypeError),  # type: ignore[dict-item]
    ("pool-zero", lambda b: b.pool_size(0), ValueError),
    ("pool-float", lambda b: b.pool_size(2.5), TypeError),  # type: ignore[arg-type]
    ("verify-none", lambda b: b.verify(None), TypeError),  # type: ignore[arg-type]
    ("verify-empty", lambda b: b.verify(""), ValueError),
    ("rate-limit-int", lambda b: b.rate_limit(60), TypeError),  # type: ignore[arg-type]
    ("retry-dict", lambda b: b.retry({"max_retries": 1}), TypeError),  # type: ignore[arg-type]
    ("option-name-int", lambda b: b.option(1, "x"), TypeError),  # type: ignore[arg-type]
    ("base-url-no-scheme", lambda b: b.base_url("//127.0.0.1:9"), InvalidBaseURLError),
    ("base-url-creds", lambda b: b.base_url("https://u:p4ssw0rd-x@127.0.0.1"), InvalidBaseURLError),
    ("api-key-int", lambda b: b.api_key(5), TypeError),  # type: ignore[arg-type]
]


@pytest.mark.parametrize("name", PROVIDERS)
@pytest.mark.parametrize(("case", "call", "expected"), BUILDER_CALLS, ids=[c[0] for c in BUILDER_CALLS])
def test_client_builder_refuses(name: str, case: str, call: Callable[[ClientBuilder], Any],
                                expected: type[BaseException]) -> None:
    """Each builder method refuses at once, or at the latest at `build()`: never at the first request."""
    value = value_for(name)
    builder = load_provider(name).builder(value.api_key).base_url(value.base_url or HOST)
    for option, setting in value.options.items():
        builder.option(option, setting)

    def apply_and_build() -> Any:
        return call(builder).build()

    err = assert_refused(apply_and_build, expected)
    assert "p4ssw0rd-x" not in str(err)


# --- models ----------------------------------------------------------------------------------------

MODEL_FACTORIES = {
    "completion": "completion_model",
    "embeddings": "embedding_model",
    "transcription": "transcription_model",
    "image_generation": "image_generation_model",
    "audio_generation": "audio_generation_model",
}
BAD_MODEL_NAMES = [None, "", "   ", 123, b"gpt"]
MODEL_CASES = [(n, c) for c in MODEL_FACTORIES for n in capable(c)]


@pytest.mark.parametrize(("name", "capability"), MODEL_CASES)
@pytest.mark.parametrize("model", BAD_MODEL_NAMES, ids=["none", "empty", "blank", "int", "bytes"])
def test_model_names_are_checked(name: str, capability: str, model: Any) -> None:
    make = getattr(client(name), MODEL_FACTORIES[capability])
    assert_refused(lambda: make(model), InvalidRequestError)


@pytest.mark.parametrize("name", capable("embeddings"))
@pytest.mark.parametrize("ndims", [0, -3, 1.5, True, "256"], ids=["zero", "negative", "float", "bool", "str"])
def test_embedding_ndims_are_checked(name: str, ndims: Any) -> None:
    made = client(name)
    assert_refused(lambda: made.embedding_model("test-model", ndims), ValueError)
    assert_refused(lambda: made.embedding_model_with_ndims("test-model", ndims), ValueError)


REQUEST_CALLS: list[tuple[str, Callable[[Any], Any], type[BaseException]]] = [
    ("prompt-none", lambda m: m.completion_request(None), TypeError),
    ("prompt-empty", lambda m: m.completion_request(""), InvalidRequestError),
    ("prompt-blank", lambda m: m.completion_request(" \n"), InvalidRequestError),
    ("prompt-int", lambda m: m.completion_request(42), TypeError),
    ("temperature-nan", lambda m: m.completion_request("hi").temperature(NAN), InvalidRequestError),
    ("temperature-inf", lambda m: m.completion_request("hi").temperature(math.inf), InvalidRequestError),
    ("temperature-negative", lambda m: m.completion_request("hi").temperature(-0.1), InvalidRequestError),
    ("temperature-big", lambda m: m.completion_request("hi").temperature(2.5), InvalidRequestError),
    ("temperature-str", lambda m: m.completion_request("hi").temperature("0.2"), InvalidRequestError),
    ("temperature-bool", lambda m: m.completion_request("hi").temperature(True), InvalidRequestError),
    ("max-tokens-zero", lambda m: m.completion_request("hi").max_tokens(0), InvalidRequestError),
    ("max-tokens-negative", lambda m: m.completion_request("hi").max_tokens(-1), InvalidRequestError),
    ("max-tokens-float", lambda m: m.completion_request("hi").max_tokens(10.0), InvalidRequestError),
    ("max-tokens-nan", lambda m: m.completion_request("hi").max_tokens(NAN), InvalidRequestError),
    ("preamble-int", lambda m: m.completion_request("hi").preamble(1), TypeError),
    ("messages-str", lambda m: m.completion_request("hi").messages("hello"), TypeError),
    ("messages-dicts", lambda m: m.completion_request("hi").messages([{"role": "user"}]), TypeError),
    ("message-none", lambda m: m.completion_request("hi").message(None), TypeError),
    ("documents-str", lambda m: m.completion_request("hi").documents(["text"]), TypeError),
    ("document-bad-id", lambda m: m.completion_request("hi").document(Document(1, "t")), TypeError),
    ("tools-dicts", lambda m: m.completion_request("hi").tools([{"name": "x"}]), TypeError),
    ("tool-empty-name", lambda m: m.completion_request("hi").tool(ToolDefinition("")), InvalidRequestError),
    ("tool-choice-empty", lambda m: m.completion_request("hi").tool_choice(""), InvalidRequestError),
    ("tool-choice-none", lambda m: m.completion_request("hi").tool_choice(None), InvalidRequestError),
    ("tool-choice-int", lambda m: m.completion_request("hi").tool_choice(1), InvalidRequestError),
    ("params-list", lambda m: m.completion_request("hi").additional_params([("a", 1)]), TypeError),
    ("params-str", lambda m: m.completion_request("hi").additional_params("{}"), TypeError),
]


@pytest.mark.parametrize("name", capable("completion"))
@pytest.mark.parametrize(("case", "call", "expected"), REQUEST_CALLS, ids=[c[0] for c in REQUEST_CALLS])
def test_completion_request_builder_refuses(name: str, case: str, call: Callable[[Any], Any],
                                            expected: type[BaseException]) -> None:
    model = client(name).completion_model("test-model")
    assert_refused(lambda: call(model), expected)


@pytest.mark.parametrize("name", capable("embeddings"))
@pytest.mark.parametrize(("texts", "expected"), [
    ("one string", TypeError), (None, TypeError), ([], InvalidRequestError), ([""], InvalidRequestError),
    (["ok", 3], TypeError), ([None], TypeError), (b"bytes", TypeError),
], ids=["str", "none", "empty-list", "empty-text", "int-item", "none-item", "bytes"])
def test_embed_texts_refuses(name: str, texts: Any, expected: type[BaseException]) -> None:
    model = client(name).embedding_model("test-model")
    assert_refused(lambda: model.embed_texts(texts), expected)
    assert_refused(lambda: batch.embed_texts(model, texts), expected)


@pytest.mark.parametrize("name", capable("embeddings"))
@pytest.mark.parametrize("text", [None, "", 5], ids=["none", "empty", "int"])
def test_embed_text_refuses(name: str, text: Any) -> None:
    model = client(name).embedding_model("test-model")
    assert_refused(lambda: model.embed_text(text), (TypeError, InvalidRequestError))


MEDIA_REQUESTS: list[tuple[str, Callable[[], Any], type[BaseException]]] = [
    ("transcription-empty", lambda: TranscriptionRequest(b""), InvalidRequestError),
    ("transcription-str", lambda: TranscriptionRequest("audio"), TypeError),  # type: ignore[arg-type]
    ("transcription-filename", lambda: TranscriptionRequest(b"ID3", filename=""), InvalidRequestError),
    ("transcription-temperature", lambda: TranscriptionRequest(b"ID3", temperature=NAN), InvalidRequestError),
    ("transcription-language", lambda: TranscriptionRequest(b"ID3", language=1), TypeError),  # type: ignore[arg-type]
    ("image-prompt-empty", lambda: ImageGenerationRequest(""), InvalidRequestError),
    ("image-prompt-none", lambda: ImageGenerationRequest(None), InvalidRequestError),  # type: ignore[arg-type]
    ("image-width-zero", lambda: ImageGenerationRequest("fox", width=0), InvalidRequestError),
    ("image-height-negative", lambda: ImageGenerationRequest("fox", height=-1), InvalidRequestError),
    ("image-width-float", lambda: ImageGenerationRequest("fox", width=512.5), InvalidRequestError),
    ("image-width-bool", lambda: ImageGenerationRequest("fox", width=True), InvalidRequestError),
    ("image-params-str", lambda: ImageGenerationRequest("fox", additional_params="x"), TypeError),
    ("audio-text-empty", lambda: AudioGenerationRequest(""), InvalidRequestError),
    ("audio-voice-empty", lambda: AudioGenerationRequest("hi", voice=""), InvalidRequestError),
    ("audio-speed-zero", lambda: AudioGenerationRequest("hi", speed=0), InvalidRequestError),
    ("audio-speed-nan", lambda: AudioGenerationRequest("hi", speed=NAN), InvalidRequestError),
    ("audio-speed-negative", lambda: AudioGenerationRequest("hi", speed=-1.0), InvalidRequestError),
    ("audio-speed-str", lambda: AudioGenerationRequest("hi", speed="fast"), InvalidRequestError),
]


@pytest.mark.parametrize(("case", "call", "expected"), MEDIA_REQUESTS, ids=[c[0] for c in MEDIA_REQUESTS])
def test_media_requests_refuse(case: str, call: Callable[[], Any], expected: type[BaseException]) -> None:
    assert_refused(call, expected)


@pytest.mark.parametrize("name", capable("transcription"))
def test_transcription_builder_refuses(name: str, tmp_path: Any) -> None:
    model = client(name).transcription_model("test-model")
    assert_refused(lambda: model.transcription_request().send(), InvalidRequestError)  # no audio given
    assert_refused(lambda: model.transcription_request().load_file(3), TypeError)
    assert_refused(lambda: model.transcription_request().load_file(tmp_path / "missing.mp3"), InvalidRequestError)
    assert_refused(lambda: model.transcription_request().data(b"").send(), InvalidRequestError)
    assert_refused(lambda: model.transcription_request().data(b"ID3").temperature(-1).send(), InvalidRequestError)
    assert_refused(lambda: model.transcription(b"ID3"), InvalidRequestError)


@pytest.mark.parametrize("name", capable("image_generation"))
def test_image_builder_refuses(name: str) -> None:
    model = client(name).image_generation_model("test-model")
    assert_refused(lambda: model.image_generation_request().send(), InvalidRequestError)  # no prompt given
    assert_refused(lambda: model.image_generation_request().prompt("fox").width(-1).send(), InvalidRequestError)
    assert_refused(lambda: model.image_generation("a fox"), InvalidRequestError)


@pytest.mark.parametrize("name", capable("audio_generation"))
def test_audio_builder_refuses(name: str) -> None:
    model = client(name).audio_generation_model("test-model")
    assert_refused(lambda: model.audio_generation_request().send(), InvalidRequestError)  # no text given
    assert_refused(lambda: model.audio_generation_request().text("hi").speed(NAN).send(), InvalidRequestError)
    assert_refused(lambda: model.audio_generation("hello"), InvalidRequestError)


@pytest.mark.parametrize("name", capable("completion"))
def test_completion_and_stream_take_requests_only(name: str) -> None:
    model = client(name).completion_model("test-model")
    assert_refused(lambda: model.completion("hello"), InvalidRequestError)
    assert_refused(lambda: model.stream({"prompt": "hello"}), InvalidRequestError)


# --- the dynamic registry ------------------------------------------------------------------------

DYN_CALLS: list[tuple[str, Callable[[DynClientBuilder], Any], type[BaseException]]] = [
    ("unknown-provider", lambda d: d.completion("openia", "gpt-4o", ProviderValue("k")), UnknownProvider),
    ("provider-none", lambda d: d.completion(None, "gpt-4o"), TypeError),
    ("provider-empty", lambda d: d.build(""), UnknownProvider),
    ("model-empty", lambda d: d.completion("openai", "", ProviderValue("k", base_url=HOST)), InvalidRequestError),
    ("model-none", lambda d: d.embeddings("openai", None, ProviderValue("k", base_url=HOST)), InvalidIdString),
    ("unsupported", lambda d: d.embeddings("anthropic", "m", ProviderValue("k", base_url=HOST)), UnsupportedFeature),
    ("value-int", lambda d: d.build_from_value("openai", 5), TypeError),
    ("value-none", lambda d: d.completion("openai", "gpt", None).completion_request("x"), MissingAPIKeyError),
    ("value-bad-url", lambda d: d.build_from_value("openai", ProviderValue("k", base_url="x")), InvalidBaseURLError),
    ("id-no-colon", lambda d: d.id("openai"), InvalidIdString),
    ("id-no-provider", lambda d: d.id(":gpt-4o"), InvalidIdString),
    ("id-no-model", lambda d: d.id("openai:"), InvalidIdString),
    ("id-blank-model", lambda d: d.id("openai:  "), InvalidIdString),
    ("id-blank-provider", lambda d: d.id("  :gpt"), InvalidIdString),
    ("id-none", lambda d: d.id(None), InvalidIdString),
    ("id-int", lambda d: d.id(3), InvalidIdString),
    ("id-unknown-provider", lambda d: d.id("nope:gpt-4o"), UnknownProvider),
    ("id-spaced-model", lambda d: d.id("openai:gpt 4o"), InvalidIdString),
    ("id-control-model", lambda d: d.id("openai:gpt-4o\n"[:-1] + "\x00"), InvalidIdString),
    ("id-not-a-provider-name", lambda d: d.id("open ai:gpt-4o"), InvalidIdString),
    ("register-str", lambda d: d.register("openai"), TypeError),
    ("register-all-str", lambda d: d.register_all("ab"), TypeError),
    ("factory-int", lambda d: d.factory(1), TypeError),
]


@pytest.mark.parametrize(("case", "call", "expected"), DYN_CALLS, ids=[c[0] for c in DYN_CALLS])
def test_dyn_client_builder_refuses(case: str, call: Callable[[DynClientBuilder], Any], monkeypatch: Any,
                                    expected: type[BaseException]) -> None:
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    assert_refused(lambda: call(DynClientBuilder()), expected)


@pytest.mark.parametrize("name", ["", "a:b", " a", None, 1], ids=["empty", "colon", "space", "none", "int"])
def test_client_factory_names_are_checked(name: Any) -> None:
    assert_refused(lambda: ClientFactory(name, lambda: None, lambda v: None), ValueError)


def test_client_factory_needs_callables() -> None:
    assert_refused(lambda: ClientFactory("mine", None, lambda v: None), TypeError)  # type: ignore[arg-type]
    assert_refused(lambda: ClientFactory("mine", lambda: None, "x"), TypeError)  # type: ignore[arg-type]


# --- composition: batch, rate limits, vector stores, agents, extractors, tools, pipelines ---------


def _model() -> Any:
    return client("openai").completion_model("test-model")


def _embedder() -> Any:
    return client("openai").embedding_model("test-model")


COMPOSITION: list[tuple[str, Callable[[], Any], type[BaseException]]] = [
    ("map-workers-zero", lambda: batch.map(str, [1], max_workers=0), ValueError),
    ("map-workers-negative", lambda: batch.map(str, [1], max_workers=-2), ValueError),
    ("map-workers-bool", lambda: batch.map(str, [1], max_workers=True), ValueError),
    ("map-workers-none", lambda: batch.map(str, [1], max_workers=None), ValueError),  # type: ignore[call-overload]
    ("map-fn-none", lambda: batch.map(None, [1]), TypeError),  # type: ignore[call-overload]
    ("map-items-none", lambda: batch.map(str, None), TypeError),  # type: ignore[call-overload]
    ("imap-workers-zero", lambda: batch.imap(str, [1], max_workers=0), ValueError),
    ("imap-fn-int", lambda: batch.imap(3, [1]), TypeError),  # type: ignore[arg-type]
    ("embed-workers-zero", lambda: batch.embed_texts(_embedder(), ["a"], max_workers=0), ValueError),
    ("embed-model-none", lambda: batch.embed_texts(None, ["a"]), TypeError),  # type: ignore[arg-type]
    ("fan-out-no-targets", lambda: batch.fan_out("hi", []), ValueError),
    ("fan-out-str-target", lambda: batch.fan_out("hi", "openai:gpt"), (TypeError, ValueError)),  # type: ignore
    ("fan-out-short-target", lambda: batch.fan_out("hi", [("openai",)]), (TypeError, ValueError)),  # type: ignore
    ("fan-out-unknown", lambda: batch.fan_out("hi", [("nope", "m")]), UnknownProvider),
    ("fan-out-mode", lambda: batch.fan_out("hi", [("openai", "m")], mode="any"), ValueError),  # type: ignore
    ("fan-out-duplicate", lambda: batch.fan_out("hi", [("openai", "m"), ("openai", "m")]), ValueError),
    ("fan-out-prompt-empty", lambda: batch.fan_out("", [("openai", "m")]), InvalidRequestError),
    ("fan-out-prompt-none", lambda: batch.fan_out(None, [("openai", "m")]), TypeError),  # type: ignore
    ("fan-out-workers-zero", lambda: batch.fan_out("hi", [("openai", "m")], max_workers=0), ValueError),
    ("limiter-rpm-zero", lambda: RateLimiter(rpm=0), ValueError),
    ("limiter-rpm-negative", lambda: RateLimiter(rpm=-60), ValueError),
    ("limiter-rpm-nan", lambda: RateLimiter(rpm=NAN), ValueError),
    ("limiter-rpm-str", lambda: RateLimiter(rpm="60"), ValueError),  # type: ignore[arg-type]
    ("limiter-tpm-bool", lambda: RateLimiter(tpm=True), ValueError),
    ("limiter-max-pause-zero", lambda: RateLimiter(max_pause=0), ValueError),
    ("limiter-clock-int", lambda: RateLimiter(clock=1), TypeError),  # type: ignore[arg-type]
    ("limiter-acquire-negative", lambda: RateLimiter(rpm=60).acquire(-1), ValueError),
    ("limiter-shared-empty", lambda: RateLimiter.shared("", rpm=60), ValueError),
    ("store-vector-empty", lambda: InMemoryVectorStore().add_documents([("a", "doc", [])]), ValueError),
    ("store-vector-str", lambda: InMemoryVectorStore().add_documents([("a", "doc", "vec")]), ValueError),
    ("store-vector-nan", lambda: InMemoryVectorStore().add_documents([("a", "doc", [NAN, 1.0])]), ValueError),
    ("store-rows-none", lambda: InMemoryVectorStore().add_documents(None), TypeError),
    ("store-search-n-zero", lambda: InMemoryVectorStore().search_vector([1.0], 0), ValueError),
    ("store-index-none", lambda: InMemoryVectorStore().index(None), TypeError),
    ("agent-model-none", lambda: AgentBuilder(None), TypeError),  # type: ignore[arg-type]
    ("agent-model-str", lambda: AgentBuilder("gpt-4o"), TypeError),  # type: ignore[arg-type]
    ("agent-temperature-nan", lambda: AgentBuilder(_model()).temperature(NAN), InvalidRequestError),
    ("agent-max-tokens-zero", lambda: AgentBuilder(_model()).max_tokens(0), InvalidRequestError),
    ("agent-max-turns-zero", lambda: AgentBuilder(_model()).max_turns(0), ValueError),
    ("agent-concurrency-zero", lambda: AgentBuilder(_model()).tool_concurrency(0), ValueError),
    ("agent-dynamic-context-n", lambda: AgentBuilder(_model()).dynamic_context(-1, _Index()), ValueError),
    ("agent-dynamic-context-index", lambda: AgentBuilder(_model()).dynamic_context(2, None), TypeError),
    ("agent-tool-str", lambda: AgentBuilder(_model()).tool("search"), TypeError),  # type: ignore[arg-type]
    ("agent-tools-none", lambda: AgentBuilder(_model()).tools(None), TypeError),  # type: ignore[arg-type]
    ("agent-preamble-int", lambda: AgentBuilder(_model()).preamble(3), TypeError),  # type: ignore[arg-type]
    ("agent-context-none", lambda: AgentBuilder(_model()).context(None), TypeError),  # type: ignore[arg-type]
    ("agent-name-int", lambda: AgentBuilder(_model()).name(3).build(), TypeError),  # type: ignore[arg-type]
    ("agent-hook-none", lambda: AgentBuilder(_model()).hook(None), TypeError),  # type: ignore[arg-type]
    ("agent-tool-choice-empty", lambda: AgentBuilder(_model()).tool_choice(""), InvalidRequestError),
    ("agent-params-str", lambda: AgentBuilder(_model()).additional_params("x"), TypeError),  # type: ignore
    ("agent-prompt-empty", lambda: AgentBuilder(_model()).build().prompt(""), InvalidRequestError),
    ("agent-prompt-none", lambda: AgentBuilder(_model()).build().prompt(None), TypeError),  # type: ignore
    ("agent-max-turns-call", lambda: AgentBuilder(_model()).build().prompt("hi", max_turns=0), ValueError),
    ("extractor-model-none", lambda: ExtractorBuilder(_Person, None), TypeError),  # type: ignore[arg-type]
    ("extractor-cls-none", lambda: ExtractorBuilder(None, _model()), TypeError),  # type: ignore[arg-type]
    ("extractor-retries", lambda: ExtractorBuilder(_Person, _model()).retries(-1), ValueError),
    ("extractor-temperature", lambda: ExtractorBuilder(_Person, _model()).temperature(NAN), InvalidRequestError),
    ("extractor-max-tokens", lambda: ExtractorBuilder(_Person, _model()).max_tokens(-5), InvalidRequestError),
    ("extractor-preamble-int", lambda: ExtractorBuilder(_Person, _model()).preamble(1), TypeError),  # type: ignore
    ("extractor-text-empty", lambda: ExtractorBuilder(_Person, _model()).build().extract(""), InvalidRequestError),
    ("tool-untyped", lambda: tool(_untyped), TypeError),
    ("tool-lambda", lambda: tool(lambda x: x), (TypeError, ValueError)),
    ("tool-not-callable", lambda: tool(3), TypeError),  # type: ignore[call-overload]
    ("tool-name-empty", lambda: tool(name="")(_typed), (TypeError, ValueError)),
    ("pipeline-batch-zero", lambda: pipeline.passthrough().batch_call(0, [1]), ValueError),
    ("pipeline-batch-negative", lambda: pipeline.passthrough().batch_call(-1, [1]), ValueError),
    ("pipeline-batch-bool", lambda: pipeline.passthrough().batch_call(True, [1]), ValueError),
    ("pipeline-batch-float", lambda: pipeline.passthrough().batch_call(2.0, [1]), ValueError),  # type: ignore
    ("pipeline-map-int", lambda: pipeline.map(3), TypeError),  # type: ignore[arg-type]
    ("pipeline-lookup-n", lambda: pipeline.lookup(_Index(), 0), ValueError),
    ("pipeline-prompt-str", lambda: pipeline.prompt("agent"), TypeError),
]


@attrs.define
class _Person:
    name: str


def _untyped(x, y):  # type: ignore[no-untyped-def]
    """Adds."""
    return x + y


def _typed(x: int) -> int:
    """Doubles."""
    return 2 * x


class _Index:
    def top_n(self, query: str, n: int) -> list[tuple[float, str, Any]]:
        return []

    def top_n_ids(self, query: str, n: int) -> list[tuple[float, str]]:
        return []


@pytest.mark.parametrize(("case", "call", "expected"), COMPOSITION, ids=[c[0] for c in COMPOSITION])
def test_composition_refuses(case: str, call: Callable[[], Any], expected: type[BaseException]) -> None:
    assert_refused(call, expected)


# --- against a real server: nothing reaches it --------------------------------------------------


def test_nothing_reaches_the_fake_provider(fake: FakeProvider) -> None:
    if True:
        made = load_provider("openai")(fake.api_key, base_url=fake.base_url, timeout=5)
        model = made.completion_model("gpt-4o")
        embedder = made.embedding_model("text-embedding-3-small")
        assert_refused(lambda: model.completion_request("").send(), InvalidRequestError)
        assert_refused(lambda: model.completion_request("hi").temperature(NAN).send(), InvalidRequestError)
        assert_refused(lambda: model.completion_request("hi").max_tokens(-1).stream(), InvalidRequestError)
        assert_refused(lambda: embedder.embed_texts([]), InvalidRequestError)
        assert_refused(lambda: batch.embed_texts(embedder, ["ok", ""]), InvalidRequestError)
        assert_refused(lambda: made.transcription_model("whisper-1").transcription_request().data(b"").send(),
                InvalidRequestError)
        assert_refused(lambda: AgentBuilder(model).build().prompt(" "), InvalidRequestError)
        assert fake.request_count == 0
        # The same client still works: the refusals left nothing behind.
        assert model.completion_request("hi").send().text
        assert fake.request_count == 1
