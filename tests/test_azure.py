"""Azure OpenAI through the public API: per-deployment URLs, api-version, key or Entra ID token,
the content filter, OpenAI's recorded payloads served from Azure URLs (Azure speaks OpenAI's wire
format; tests/fixtures has no Azure-only recordings), then end to end against FakeProvider."""

from __future__ import annotations

import base64
import json
import pickle
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from conftest import ADD, load_bytes, load_fixture, sent_json, serve_fixture

from rig_sync import errors
from rig_sync.audio_generation import AudioGenerationRequest
from rig_sync.client import ProviderValue
from rig_sync.client.builder import DynClientBuilder
from rig_sync.http import Transport
from rig_sync.image_generation import ImageGenerationRequest
from rig_sync.message import Message
from rig_sync.providers import azure
from rig_sync.streaming import TextChunk, ToolCallChunk
from rig_sync.testing import FakeProvider, Fault
from rig_sync.testing._openai import embed_text
from rig_sync.transcription import TranscriptionRequest

ENDPOINT = "http://127.0.0.1:9"
KEY = "azure-key-0123456789abcdef"
TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.payload.signature"
DEPLOYMENT = "gpt-4o-prod"


def url(operation: str, deployment: str = DEPLOYMENT) -> str:
    return f"{ENDPOINT}/openai/deployments/{deployment}/{operation}"


def client(api_key: str | None = KEY, **options: Any) -> azure.Client:
    options.setdefault("max_retries", 0)
    return azure.Client(api_key, endpoint=ENDPOINT, **options)


def query(mocked: responses.RequestsMock, index: int = 0) -> dict[str, list[str]]:
    return parse_qs(urlsplit(mocked.calls[index].request.url).query)


def path(mocked: responses.RequestsMock, index: int = 0) -> str:
    return urlsplit(mocked.calls[index].request.url).path


# --- URLs, api-version, credentials -----------------------------------------------------------------


def test_chat_goes_to_the_deployment_with_the_api_version(mocked: responses.RequestsMock) -> None:
    serve_fixture(mocked, url("chat/completions"), "openai/chat_completion.hello_world.json")
    resp = client().completion_model(DEPLOYMENT).completion_request("Hello").send()
    assert resp.text == "Hello! How can I assist you today?"
    assert (resp.usage.input_tokens, resp.usage.output_tokens) == (11, 9)
    assert path(mocked) == f"/openai/deployments/{DEPLOYMENT}/chat/completions"
    assert query(mocked) == {"api-version": [azure.DEFAULT_API_VERSION]}
    headers = mocked.calls[0].request.headers
    assert headers["api-key"] == KEY and "Authorization" not in headers
    assert sent_json(mocked)["messages"] == [{"role": "user", "content": "Hello"}]


def test_entra_token_is_a_bearer_header(mocked: responses.RequestsMock) -> None:
    serve_fixture(mocked, url("chat/completions"), "openai/chat_completion.text.json")
    azure.Client(token=TOKEN, endpoint=ENDPOINT).completion_model(DEPLOYMENT).completion_request("Hi").send()
    headers = mocked.calls[0].request.headers
    assert headers["Authorization"] == f"Bearer {TOKEN}" and "api-key" not in headers


def test_custom_api_version_and_deployment_names_are_encoded(mocked: responses.RequestsMock) -> None:
    serve_fixture(mocked, url("chat/completions", "my%20dep"), "openai/chat_completion.text.json")
    c = client(api_version="2025-01-01-preview")
    c.completion_model("my dep").completion_request("Hi").send()
    assert path(mocked) == "/openai/deployments/my%20dep/chat/completions"
    assert query(mocked) == {"api-version": ["2025-01-01-preview"]}
    assert "2025-01-01-preview" in repr(c)


@pytest.mark.parametrize("endpoint", [ENDPOINT, ENDPOINT + "/", ENDPOINT + "/openai", ENDPOINT + "/openai/"])
def test_endpoint_forms(endpoint: str) -> None:
    c = azure.Client(KEY, endpoint=endpoint)
    assert c.endpoint == ENDPOINT
    assert c.base_url == f"{ENDPOINT}/openai?api-version={azure.DEFAULT_API_VERSION}"


def test_missing_endpoint_names_azure_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AZURE_ENDPOINT", raising=False)
    monkeypatch.setenv("AZURE_API_KEY", KEY)
    for build in (lambda: azure.Client(KEY), azure.Client.from_env):
        with pytest.raises(errors.ClientBuildError, match="AZURE_ENDPOINT"):
            build()


def test_missing_credentials_name_both_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AZURE_API_KEY", "AZURE_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AZURE_ENDPOINT", ENDPOINT)
    for build in (lambda: azure.Client(endpoint=ENDPOINT), azure.Client.from_env):
        with pytest.raises(errors.MissingAPIKeyError) as info:
            build()
        assert "AZURE_API_KEY" in str(info.value) and "AZURE_TOKEN" in str(info.value)


def test_key_and_token_together_are_refused() -> None:
    with pytest.raises(errors.ClientBuildError, match="not an API key and a token"):
        azure.Client(KEY, endpoint=ENDPOINT, token=TOKEN)
    with pytest.raises(errors.ClientBuildError, match="not both"):
        azure.Client(KEY, endpoint=ENDPOINT, base_url="http://127.0.0.1:8")
    with pytest.raises(TypeError, match="api_version"):
        azure.Client(KEY, endpoint=ENDPOINT, api_version=2024)  # type: ignore[arg-type]


def test_from_env(mocked: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AZURE_API_KEY", raising=False)
    monkeypatch.setenv("AZURE_TOKEN", TOKEN)
    monkeypatch.setenv("AZURE_ENDPOINT", ENDPOINT)
    monkeypatch.setenv("AZURE_API_VERSION", "2024-06-01")
    serve_fixture(mocked, url("chat/completions"), "openai/chat_completion.text.json")
    azure.Client.from_env().completion_model(DEPLOYMENT).completion_request("Hi").send()
    assert query(mocked) == {"api-version": ["2024-06-01"]}
    assert mocked.calls[0].request.headers["Authorization"] == f"Bearer {TOKEN}"


def test_from_value_builder_and_registry(mocked: responses.RequestsMock) -> None:
    value = ProviderValue(KEY, base_url=ENDPOINT, options={"api_version": "2024-06-01"})
    assert azure.Client.from_value(value).base_url == f"{ENDPOINT}/openai?api-version=2024-06-01"
    built = azure.ClientBuilder(KEY).base_url(ENDPOINT).option("api_version", "2024-02-01").build()
    assert built.api_version == "2024-02-01"
    by_token = azure.Client.from_value(ProviderValue(None, base_url=ENDPOINT, options={"token": TOKEN}))
    serve_fixture(mocked, url("chat/completions"), "openai/chat_completion.text.json")
    by_token.completion_model(DEPLOYMENT).completion_request("Hi").send()
    assert mocked.calls[0].request.headers["Authorization"] == f"Bearer {TOKEN}"
    dyn = DynClientBuilder().build_from_value("azure", value)
    assert isinstance(dyn, azure.Client) and dyn.api_version == "2024-06-01"
    with pytest.raises(TypeError, match="unexpected options"):
        azure.Client(KEY, endpoint=ENDPOINT, organization="x")


def test_secrets_never_shown(mocked: responses.RequestsMock) -> None:
    body = {"error": {"code": "401", "message": f"Access denied due to invalid subscription key {KEY}."}}
    mocked.add(responses.POST, url("chat/completions"), json=body, status=401)
    c = client()
    with pytest.raises(errors.AuthenticationError) as info:
        c.completion_model(DEPLOYMENT).completion_request("Hi").send()
    assert KEY not in str(info.value) and info.value.code == "401"
    for shown in (repr(c), repr(c.completion_model(DEPLOYMENT)), repr(azure.Client(token=TOKEN, endpoint=ENDPOINT))):
        assert KEY not in shown and TOKEN not in shown


def test_capabilities_and_pickling() -> None:
    c = client()
    assert c.capabilities() == ["completion", "embeddings", "transcription", "image_generation", "audio_generation"]
    again = pickle.loads(pickle.dumps(c))
    assert again.base_url == c.base_url
    assert again.completion_model("d").path == "/deployments/d/chat/completions"


# --- OpenAI's recorded payloads on Azure URLs --------------------------------------------------------


def test_streaming_with_usage(mocked: responses.RequestsMock) -> None:
    serve_fixture(mocked, url("chat/completions"), "openai/chat_stream.include_usage.sse")
    stream = client().completion_model(DEPLOYMENT).completion_request("pizza?").stream()
    assert sum(isinstance(c, TextChunk) for c in stream) > 1
    usage = stream.response.usage
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (22, 712, 734)
    assert query(mocked) == {"api-version": [azure.DEFAULT_API_VERSION]}
    assert sent_json(mocked)["stream"] is True


def test_streamed_tool_call(mocked: responses.RequestsMock) -> None:
    serve_fixture(mocked, url("chat/completions"), "openai/chat_stream.tool_call_single.sse")
    stream = client().completion_model(DEPLOYMENT).completion_request("weather?").stream()
    calls = [c.tool_call for c in stream if isinstance(c, ToolCallChunk)]
    assert [(c.name, c.arguments) for c in calls] == [("get_weather", {"city": "New York City"})]


def test_embeddings(mocked: responses.RequestsMock) -> None:
    serve_fixture(mocked, url("embeddings", "embed-small"), "openai/embeddings.single_base64.json")
    e = client().embedding_model("embed-small").embed_text("Hello")
    assert len(e.vec) == 1536 and path(mocked) == "/openai/deployments/embed-small/embeddings"
    assert query(mocked) == {"api-version": [azure.DEFAULT_API_VERSION]}
    assert sent_json(mocked) == {"model": "embed-small", "input": ["Hello"], "encoding_format": "base64"}


def test_transcription_is_the_real_transcriptions_endpoint(mocked: responses.RequestsMock) -> None:
    serve_fixture(mocked, url("audio/transcriptions", "whisper"), "openai/transcription.json.json")
    t = client().transcription_model("whisper").transcription(
        TranscriptionRequest(data=b"RIFF....", filename="a.wav", language="en"))
    assert t.text == "Hello, world! This is a test."
    assert path(mocked) == "/openai/deployments/whisper/audio/transcriptions"
    assert query(mocked) == {"api-version": [azure.DEFAULT_API_VERSION]}


def test_image_generation(mocked: responses.RequestsMock) -> None:
    data = load_fixture("openai/images.b64_json.json")
    serve_fixture(mocked, url("images/generations", "gpt-image"), "openai/images.b64_json.json")
    img = client().image_generation_model("gpt-image").image_generation(
        ImageGenerationRequest(prompt="a dot", width=1024, height=1536))
    assert img.image == base64.b64decode(data["data"][0]["b64_json"]) and img.image.startswith(b"\x89PNG")
    assert query(mocked) == {"api-version": [azure.DEFAULT_API_VERSION]}


def test_audio_generation(mocked: responses.RequestsMock) -> None:
    serve_fixture(mocked, url("audio/speech", "tts"), "openai/speech.stream.sse")
    audio = client().audio_generation_model("tts").audio_generation(
        AudioGenerationRequest(text="Hello", voice="alloy", additional_params={"stream_format": "sse"}))
    assert len(audio.audio) > 100 and path(mocked) == "/openai/deployments/tts/audio/speech"
    assert load_bytes("openai/speech.stream.sse").startswith(b"data: ")


def test_recorded_openai_error_shapes_map(mocked: responses.RequestsMock) -> None:
    serve_fixture(mocked, url("chat/completions"), "openai/error.429_rate_limit_exceeded.json")
    with pytest.raises(errors.RateLimitError) as info:
        client().completion_model(DEPLOYMENT).completion_request("Hi").send()
    assert info.value.provider == "azure" and info.value.status_code == 429


# --- Azure's content filter ---------------------------------------------------------------------------

FILTERED = {
    "id": "chatcmpl-filtered", "object": "chat.completion", "created": 1700000000, "model": "gpt-4o-2024-08-06",
    "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {"hate": {"filtered": False,
                                                                                      "severity": "safe"}}}],
    "choices": [{"index": 0, "finish_reason": "content_filter", "message": {"role": "assistant", "content": None},
                 "content_filter_results": {"violence": {"filtered": True, "severity": "medium"}}}],
    "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
}

PROMPT_FILTERED = {"error": {
    "message": "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. "
               "Please modify your prompt and retry.",
    "type": None, "param": "prompt", "code": "content_filter", "status": 400,
    "innererror": {"code": "ResponsibleAIPolicyViolation",
                   "content_filter_result": {"violence": {"filtered": True, "severity": "high"}}},
}}


def test_withheld_answer_raises(mocked: responses.RequestsMock) -> None:
    mocked.add(responses.POST, url("chat/completions"), json=FILTERED)
    with pytest.raises(azure.ContentFilteredError) as info:
        client().completion_model(DEPLOYMENT).completion_request("Hi").send()
    assert info.value.body == FILTERED and info.value.reason == "content_filter" and info.value.provider == "azure"
    assert isinstance(info.value, errors.APIError)


def test_cut_answer_keeps_its_text(mocked: responses.RequestsMock) -> None:
    body = {**FILTERED, "choices": [{**FILTERED["choices"][0], "message": {"role": "assistant",  # type: ignore[dict-item]
                                                                           "content": "Once upon"}}]}
    mocked.add(responses.POST, url("chat/completions"), json=body)
    resp = client().completion_model(DEPLOYMENT).completion_request("Hi").send()
    assert (resp.text, resp.finish_reason) == ("Once upon", "content_filter")


def test_blocked_prompt_is_a_bad_request_with_code(mocked: responses.RequestsMock) -> None:
    mocked.add(responses.POST, url("chat/completions"), json=PROMPT_FILTERED, status=400)
    with pytest.raises(errors.BadRequestError, match="content management policy") as info:
        client().completion_model(DEPLOYMENT).completion_request("Hi").send()
    assert info.value.code == "content_filter" and info.value.body == PROMPT_FILTERED


def test_withheld_streamed_answer_raises(mocked: responses.RequestsMock) -> None:
    events = [
        {"id": "", "object": "", "created": 0, "model": "", "choices": [], "prompt_filter_results": []},
        {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o",
         "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]},
        {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o",
         "choices": [{"index": 0, "delta": {}, "finish_reason": "content_filter"}]},
    ]
    body = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events) + b"data: [DONE]\n\n"
    mocked.add(responses.POST, url("chat/completions"), body=body, content_type="text/event-stream")
    with pytest.raises(azure.ContentFilteredError):
        _ = client().completion_model(DEPLOYMENT).completion_request("Hi").stream().response


# --- end to end against the loopback FakeProvider ---------------------------------------------------


def fake_client(fake: FakeProvider, **options: Any) -> azure.Client:
    options.setdefault("max_retries", 0)
    return azure.Client(fake.api_key, endpoint=fake.url, timeout=5, **options)


def test_fake_completion_and_streaming(fake: FakeProvider) -> None:
    m = fake_client(fake).completion_model("chat-deploy")
    assert m.completion_request("Hello there").send().text == "echo: Hello there"
    sent = fake.last_request
    assert sent is not None and sent.path == "/openai/deployments/chat-deploy/chat/completions"
    assert sent.query == {"api-version": azure.DEFAULT_API_VERSION} and sent.headers["api-key"] == fake.api_key
    stream = m.completion_request("stream these words").stream()
    assert len(list(stream.text_stream())) > 1 and stream.response.text == "echo: stream these words"


def test_fake_tool_round_trip(fake: FakeProvider) -> None:
    m = fake_client(fake).completion_model("chat-deploy")
    first = m.completion_request('call:add {"a": 2, "b": 3}').tool(ADD).send()
    assert [(c.name, c.arguments) for c in first.tool_calls] == [("add", {"a": 2, "b": 3})]
    answer = (m.completion_request(Message.tool_result(first.tool_calls[0].id, "5"))
              .messages([Message.user('call:add {"a": 2, "b": 3}'), first.message()]).tool(ADD).send())
    assert answer.text == "tool result: 5"


def test_fake_media(fake: FakeProvider) -> None:
    c = fake_client(fake)
    assert c.embedding_model("emb").embed_text("the cat").vec == embed_text("the cat")
    t = c.transcription_model("whisper").transcription(TranscriptionRequest(data=b"abcd", filename="a.wav"))
    assert t.text == "transcribed 4 bytes from a.wav"
    img = c.image_generation_model("img").image_generation(ImageGenerationRequest(prompt="dot", width=1, height=1))
    assert img.image.startswith(b"\x89PNG")
    speech = c.audio_generation_model("tts").audio_generation(AudioGenerationRequest(text="hi", voice="alloy"))
    assert speech.audio.startswith(b"FAKEAUDIO")
    assert [r.path.rsplit("/", 2)[-2:] for r in fake.requests][-1] == ["audio", "speech"]
    assert all(r.query == {"api-version": azure.DEFAULT_API_VERSION} for r in fake.requests)


def test_fake_entra_token(fake: FakeProvider) -> None:
    c = azure.Client(token=fake.api_key, endpoint=fake.url, timeout=5)
    assert c.completion_model("d").completion_request("hi").send().text == "echo: hi"
    assert fake.last_request is not None and fake.last_request.headers["authorization"] == f"Bearer {fake.api_key}"


def test_fake_fault_has_azures_error_shape(fake: FakeProvider) -> None:
    fake.inject(Fault.status(429))
    with pytest.raises(errors.RateLimitError) as info:
        fake_client(fake).completion_model("d").completion_request("x").send()
    assert info.value.body == {"error": {"code": "429", "message": info.value.message}}
    assert info.value.code == "429" and info.value.provider == "azure"


def test_fake_wrong_key(fake: FakeProvider) -> None:
    fake.require_key = "the-right-key"
    wrong = azure.Client("the-wrong-key", endpoint=fake.url, timeout=5, max_retries=0)
    with pytest.raises(errors.AuthenticationError) as info:
        wrong.completion_model("d").completion_request("x").send()
    assert info.value.code == "invalid_api_key" and "the-wrong-key" not in str(info.value)
    assert fake_client(fake).completion_model("d").completion_request("x").send().text == "echo: x"


def test_fake_requires_the_api_version(fake: FakeProvider) -> None:
    transport = Transport("azure", fake.url, auth_headers={"api-key": fake.api_key})
    with pytest.raises(errors.BadRequestError, match="api-version") as info:
        transport.post_json("/openai/deployments/d/chat/completions", {"messages": []})
    assert info.value.code == "MissingApiVersionParameter"


def test_fake_stream_closed_early_releases_the_connection(fake: FakeProvider) -> None:
    m = fake_client(fake, pool_size=1).completion_model("d")
    for _ in range(3):  # with one pooled connection, a leaked stream would block the next request
        with m.completion_request("one two three four").stream() as stream:
            assert isinstance(next(iter(stream)), TextChunk)
    assert m.completion_request("after").send().text == "echo: after"
