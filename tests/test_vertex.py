"""Google Vertex AI through the public API: Gemini and Claude models against the payloads recorded
from Vertex in tests/fixtures/vertex (HTTP mocked with `responses`), the paths and bodies sent, the
credentials (TokenAuth, google-auth faked by a tiny object, a static token, express mode keys),
errors, no secret in anything shown; and the same against FakeProvider's Vertex dialect."""

from __future__ import annotations

import datetime
import json
import pickle
import sys
from pathlib import Path
from typing import Any

import google.auth
import google.auth.exceptions
import google.auth.transport.requests
import pytest
import responses
from conftest import FIXTURES, credentials_sent, load_bytes, load_fixture, sent_json

import rig_sync.tool
from rig_sync import errors
from rig_sync.auth import HeaderAuth, TokenAuth
from rig_sync.client import ProviderValue
from rig_sync.client.builder import DynClientBuilder
from rig_sync.completion import CompletionResponse, ToolDefinition, Usage
from rig_sync.message import Message, Reasoning, Text, ToolCall
from rig_sync.providers import vertex
from rig_sync.streaming import FinalResponse, TextChunk, ToolCallChunk
from rig_sync.testing import FakeProvider
from rig_sync.transcription import TranscriptionRequest

HOST = "http://127.0.0.1:9"
PROJECT = "my-project"
LOCATION = "us-east5"
ROOT = f"{HOST}/v1/projects/{PROJECT}/locations/{LOCATION}/publishers"
GEMINI = "gemini-2.5-flash"
CLAUDE = "claude-3-7-sonnet@20250219"
TOKEN = "ya29.SECRET-vertex-token-0123456789"
SSE = "text/event-stream"


def client(**kwargs: Any) -> vertex.Client:
    options: dict[str, Any] = {"token": TOKEN, "project": PROJECT, "location": LOCATION, "base_url": HOST,
                               "max_retries": 0, **kwargs}
    return vertex.Client(**options)


def serve(mocked: responses.RequestsMock, url: str, name: str, *, status: int = 200,
          headers: dict[str, str] | None = None) -> None:
    kind = SSE if name.endswith(".sse") else "application/json"
    mocked.add("POST", url, body=load_bytes(name), status=status, content_type=kind, headers=headers or {})


def streamed(stream: Any) -> tuple[str, list[Any], CompletionResponse]:
    chunks = list(stream)
    final = chunks[-1]
    assert isinstance(final, FinalResponse)
    return "".join(c.text for c in chunks if isinstance(c, TextChunk)), chunks, final.response


def test_every_vertex_fixture_is_exercised() -> None:
    source = Path(__file__).read_text()
    names = [p.relative_to(FIXTURES / "vertex").as_posix() for p in sorted((FIXTURES / "vertex").rglob("*"))
             if p.is_file()]
    assert [n for n in names if n.rpartition("/")[2] not in source] == []


# --- the client -------------------------------------------------------------------------------------


def test_capabilities_defaults_and_where_each_location_is_served() -> None:
    assert vertex.Client.capabilities() == ["completion", "embeddings", "transcription"]
    c = vertex.Client(token=TOKEN, project=PROJECT)
    assert c.location == "us-central1" and c.base_url == "https://us-central1-aiplatform.googleapis.com"
    assert vertex.Client(token=TOKEN, project=PROJECT, location="global").base_url == "https://aiplatform.googleapis.com"
    assert vertex.Client(token=TOKEN, project=PROJECT, location="eu").base_url == \
        "https://aiplatform.eu.rep.googleapis.com"
    assert set(vertex.Client.env_variables()) >= {"VERTEX_API_KEY", "VERTEX_BASE_URL", "GOOGLE_CLOUD_PROJECT",
                                                 "GOOGLE_CLOUD_LOCATION"}


def test_project_and_location_come_from_the_option_then_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "env-project")
    monkeypatch.setenv("GOOGLE_CLOUD_LOCATION", "europe-west4")
    c = vertex.Client(token=TOKEN)
    assert (c.project, c.location) == ("env-project", "europe-west4")
    assert c.base_url == "https://europe-west4-aiplatform.googleapis.com"
    c = vertex.Client(token=TOKEN, project="given", location="global")
    assert (c.project, c.location) == ("given", "global")
    path = c.completion_model(GEMINI).method_path("generateContent")  # type: ignore[union-attr]
    assert path == f"/v1/projects/given/locations/global/publishers/google/models/{GEMINI}:generateContent"


def test_bad_settings_are_refused_when_built(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(errors.ClientBuildError, match="GOOGLE_CLOUD_PROJECT"):
        vertex.Client(token=TOKEN)
    with pytest.raises(errors.ClientBuildError, match="location must be a Google Cloud location"):
        vertex.Client(token=TOKEN, project=PROJECT, location="evil.com/x")
    with pytest.raises(errors.ClientBuildError, match="one of"):
        vertex.Client("express-key", token=TOKEN)
    with pytest.raises(errors.ClientBuildError, match="no project or location"):
        vertex.Client("express-key", project=PROJECT)
    with pytest.raises(errors.ClientBuildError, match="api_version"):
        vertex.Client(token=TOKEN, project=PROJECT, api_version="latest")


def test_the_builder_and_the_registry_build_one(mocked: responses.RequestsMock) -> None:
    built = vertex.ClientBuilder().option("token", TOKEN).option("project", PROJECT).option("location", LOCATION) \
        .base_url(HOST).build()
    assert isinstance(built, vertex.Client) and built.project == PROJECT
    value = ProviderValue(base_url=HOST, options={"token": TOKEN, "project": PROJECT, "location": LOCATION})
    model = DynClientBuilder().completion("vertex", GEMINI, value)
    serve(mocked, f"{ROOT}/google/models/{GEMINI}:generateContent", "vertex/gemini.generate_content.text.json")
    assert model.completion_request("Say hi in Portuguese").send().text == "Olá!"


# --- Gemini on Vertex ---------------------------------------------------------------------------------


def test_gemini_completion_path_body_and_usage(mocked: responses.RequestsMock) -> None:
    serve(mocked, f"{ROOT}/google/models/{GEMINI}:generateContent", "vertex/gemini.generate_content.text.json")
    resp = client().completion_model(GEMINI).completion_request("Say hi in Portuguese") \
        .preamble("You are a helpful assistant").max_tokens(4000).send()
    assert resp.text == "Olá!" and resp.finish_reason == "STOP" and resp.model == "gemini-2.5-flash"
    # thinking is part of the output (README: Usage), as Gemini's total says
    assert resp.usage == Usage(9, 26, 35, reasoning_tokens=24)
    assert sent_json(mocked) == {  # the body the recording's request carried, in Gemini's wire
        "contents": [{"parts": [{"text": "Say hi in Portuguese"}], "role": "user"}],
        "systemInstruction": {"parts": [{"text": "You are a helpful assistant"}]},
        "generationConfig": {"maxOutputTokens": 4000},
    }
    sent = mocked.calls[0].request
    assert sent.headers["Authorization"] == f"Bearer {TOKEN}" and "x-goog-api-key" not in sent.headers


def test_gemini_stream(mocked: responses.RequestsMock) -> None:
    serve(mocked, f"{ROOT}/google/models/{GEMINI}:streamGenerateContent?alt=sse",
          "vertex/gemini.stream_generate_content.text.sse")
    text, _, resp = streamed(client().completion_model(GEMINI).completion_request("Say hi in Portuguese").stream())
    assert text == 'Olá! (pronounced "oh-LAH")' == resp.text
    assert resp.usage == Usage(9, 45, 54, reasoning_tokens=36) and resp.id == "hACzaZf3G-Tjt8gPydPHkAI"


WEATHER = ToolDefinition("weather", "Get weather information for a location", {
    "type": "object", "properties": {"location": {"type": "string", "description": "the city"}},
    "required": ["location"]})


def test_gemini_tool_call_and_its_signature_go_back(mocked: responses.RequestsMock) -> None:
    url = f"{ROOT}/google/models/{GEMINI}:generateContent"
    serve(mocked, url, "vertex/gemini.generate_content.function_call.json")
    serve(mocked, url, "vertex/gemini.generate_content.text.json")
    model = client().completion_model(GEMINI)
    question = Message.user("What's the weather in Florence,Italy?")
    first = model.completion_request(question).tool(WEATHER).send()
    (call,) = first.tool_calls
    assert (call.name, call.arguments) == ("weather", {"location": "Florence,Italy"})
    signature = next(p.signature for p in first.choice if isinstance(p, Reasoning))
    model.completion_request([question, first.message(), Message.tool_result(call.id, "40 C")]).tool(WEATHER).send()
    history = sent_json(mocked, 1)["contents"]
    assert history[1] == {"role": "model", "parts": [{"functionCall": {"name": "weather",
                                                                        "args": {"location": "Florence,Italy"}},
                                                       "thoughtSignature": signature}]}
    assert history[2]["parts"][0]["functionResponse"] == {"name": "weather", "response": {"output": "40 C"}}


def test_gemini_tool_call_streamed(mocked: responses.RequestsMock) -> None:
    serve(mocked, f"{ROOT}/google/models/{GEMINI}:streamGenerateContent?alt=sse",
          "vertex/gemini.stream_generate_content.function_call.sse")
    _, chunks, resp = streamed(client().completion_model(GEMINI).completion_request("weather?").tool(WEATHER).stream())
    (piece,) = [c for c in chunks if isinstance(c, ToolCallChunk)]
    assert piece.tool_call.arguments == {"location": "Florence,Italy"} and resp.tool_calls == [piece.tool_call]
    assert resp.usage.reasoning_tokens == 51


def test_an_error_vertex_appends_mid_stream_is_a_stream_error(mocked: responses.RequestsMock) -> None:
    serve(mocked, f"{ROOT}/google/models/{GEMINI}:streamGenerateContent?alt=sse",
          "gemini/vertexai.stream.error_mid_stream.sse")
    with pytest.raises(errors.StreamError) as info:
        list(client().completion_model(GEMINI).completion_request("Hello").stream())
    assert info.value.provider == "vertex"


def test_transcription_goes_to_generate_content(mocked: responses.RequestsMock) -> None:
    serve(mocked, f"{ROOT}/google/models/{GEMINI}:generateContent", "vertex/gemini.generate_content.text.json")
    text = client().transcription_model(GEMINI).transcription(TranscriptionRequest(b"ID3 audio", "a.mp3")).text
    assert text == "Olá!" and sent_json(mocked)["contents"][0]["parts"][1]["inlineData"]["mimeType"] == "audio/mp3"
    with pytest.raises(errors.UnsupportedFeature):
        client().transcription_model(CLAUDE)


# --- Claude on Vertex --------------------------------------------------------------------------------


def test_claude_completion_path_and_body_without_model(mocked: responses.RequestsMock) -> None:
    serve(mocked, f"{ROOT}/anthropic/models/{CLAUDE}:rawPredict", "vertex/claude.raw_predict.text.json",
          headers={"request-id": "req_vrtx_011CZPwvaXWt3cGD9r2W9LcV"})
    resp = client().completion_model(CLAUDE).completion_request("Say hi in Portuguese") \
        .preamble("You are a helpful assistant").max_tokens(4000).send()
    assert resp.text == "Olá! Como posso ajudar você hoje?" and resp.finish_reason == "end_turn"
    assert resp.id == "msg_vrtx_011eLZnjY8pFUmGNwLPxrGHH" and resp.usage == Usage(16, 16, 32, 0, cache_write_tokens=0)
    body = sent_json(mocked)
    assert "model" not in body and body["anthropic_version"] == vertex.ANTHROPIC_VERSION == "vertex-2023-10-16"
    assert body == {"max_tokens": 4000, "messages": [{"role": "user", "content": "Say hi in Portuguese"}],
                    "system": "You are a helpful assistant", "anthropic_version": "vertex-2023-10-16"}
    recorded = load_fixture("vertex/requests/claude.raw_predict.text.request.json")  # what another client sent
    assert set(body) == set(recorded)
    sent = mocked.calls[0].request
    assert "@" in (sent.url or "") and sent.headers["Authorization"] == f"Bearer {TOKEN}"
    assert "anthropic-version" not in sent.headers and "x-api-key" not in sent.headers


def test_claude_stream(mocked: responses.RequestsMock) -> None:
    serve(mocked, f"{ROOT}/anthropic/models/{CLAUDE}:streamRawPredict", "vertex/claude.stream_raw_predict.text.sse")
    text, _, resp = streamed(client().completion_model(CLAUDE).completion_request("Say hi in Portuguese").stream())
    assert text == "Olá! Como posso ajudar você hoje?" == resp.text
    assert resp.usage.input_tokens == 16 and resp.usage.output_tokens == 16 and resp.finish_reason == "end_turn"
    body = sent_json(mocked)
    assert body["stream"] is True and "model" not in body and body["anthropic_version"] == "vertex-2023-10-16"
    assert set(body) - {"system"} == set(load_fixture("vertex/requests/claude.stream_raw_predict.text.request.json")) \
        - {"system"}


def test_claude_tool_use_sent_and_streamed(mocked: responses.RequestsMock) -> None:
    serve(mocked, f"{ROOT}/anthropic/models/{CLAUDE}:rawPredict", "vertex/claude.raw_predict.tool_use.json")
    serve(mocked, f"{ROOT}/anthropic/models/{CLAUDE}:streamRawPredict",
          "vertex/claude.stream_raw_predict.tool_use.sse")
    model = client().completion_model(CLAUDE)
    resp = model.completion_request("What's the weather in Florence,Italy?").tool(WEATHER).send()
    assert resp.tool_calls == [ToolCall("toolu_vrtx_01PKrjavVyDh3fufyVCkCJ49", "weather",
                                        {"location": "Florence,Italy"})]
    assert resp.finish_reason == "tool_use" and resp.choice[0] == Text(
        "I'll get the current weather information for Florence, Italy for you.")
    recorded = load_fixture("vertex/requests/claude.raw_predict.tool_use.request.json")
    assert sent_json(mocked)["tools"] == recorded["tools"]  # Anthropic's tool shape, as recorded
    question = "What's the weather in Florence,Italy?"
    _, chunks, final = streamed(model.completion_request(question).tool(WEATHER).stream())
    (piece,) = [c for c in chunks if isinstance(c, ToolCallChunk)]
    assert piece.tool_call.id == "toolu_vrtx_01JhPy9eXqgjLWmUpoCiEkCs" and final.tool_calls == [piece.tool_call]
    assert final.usage.output_tokens == 76
    assert "model" not in sent_json(mocked, 1) and load_fixture(
        "vertex/requests/claude.stream_raw_predict.tool_use.request.json")["anthropic_version"] == "vertex-2023-10-16"


# --- embeddings -----------------------------------------------------------------------------------------


def test_embeddings_go_to_predict_one_text_per_gemini_request(mocked: responses.RequestsMock) -> None:
    url = f"{ROOT}/google/models/gemini-embedding-001:predict"
    serve(mocked, url, "vertex/predict.gemini_embedding_001.json")
    emb = client().embedding_model("gemini-embedding-001", task_type="RETRIEVAL_QUERY")
    assert emb.ndims == 3072 and emb.max_documents == 1
    (one,) = emb.embed_texts(["Hello, world!"])
    assert one.document == "Hello, world!" and len(one.vec) == 3072 and one.vec[0] == -0.020920176059007645
    assert sent_json(mocked) == load_fixture("vertex/requests/predict.gemini_embedding_001.request.json")


def test_embeddings_ask_for_fewer_dimensions_and_batch_other_models(mocked: responses.RequestsMock) -> None:
    # No recorded answer of a shorter vector: the recorded one, trimmed to the size asked for.
    recorded = load_fixture("vertex/predict.gemini_embedding_001.json")["predictions"][0]["embeddings"]
    short = {"values": recorded["values"][:256], "statistics": recorded["statistics"]}
    mocked.add("POST", f"{ROOT}/google/models/text-embedding-005:predict",
               json={"predictions": [{"embeddings": short}, {"embeddings": short}]})
    emb = client().embedding_model("text-embedding-005", 256)
    assert emb.max_documents == 250
    assert [len(e.vec) for e in emb.embed_texts(["a", "b"])] == [256, 256]
    assert sent_json(mocked) == {"instances": [{"content": "a"}, {"content": "b"}],
                                 "parameters": {"outputDimensionality": 256}}
    with pytest.raises(errors.UnsupportedFeature):
        client().embedding_model(CLAUDE)


# --- credentials -----------------------------------------------------------------------------------------


def test_a_token_auth_that_expires_at_once_is_fetched_for_every_call(mocked: responses.RequestsMock) -> None:
    tokens = iter(f"ya29.token-{n}" for n in range(1, 10))
    auth = TokenAuth(lambda: (next(tokens), 0))
    url = f"{ROOT}/google/models/{GEMINI}:generateContent"
    for _ in range(3):
        serve(mocked, url, "vertex/gemini.generate_content.text.json")
    model = vertex.Client(auth=auth, project=PROJECT, location=LOCATION, base_url=HOST).completion_model(GEMINI)
    for _ in range(3):
        model.completion_request("hi").send()
    assert [c.request.headers["Authorization"] for c in mocked.calls] == [
        "Bearer ya29.token-1", "Bearer ya29.token-2", "Bearer ya29.token-3"]


class FakeCredentials:
    """google-auth credentials as rig_sync uses them: token, expiry (naive UTC) and refresh(request)."""

    def __init__(self, lifetime: float = 3600) -> None:
        self.token: str | None = None
        self.expiry: datetime.datetime | None = None
        self.lifetime = lifetime
        self.refreshes: list[Any] = []

    def refresh(self, request: Any) -> None:
        self.refreshes.append(request)
        self.token = f"ya29.fake-{len(self.refreshes)}"
        now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
        self.expiry = now + datetime.timedelta(seconds=self.lifetime)


@pytest.fixture
def adc(monkeypatch: pytest.MonkeyPatch) -> FakeCredentials:
    """Application Default Credentials, faked: google.auth.default returns a FakeCredentials."""
    credentials = FakeCredentials()
    asked: list[Any] = []

    def default(scopes: Any = None, **kwargs: Any) -> tuple[FakeCredentials, str]:
        asked.append(scopes)
        return credentials, "adc-project"

    monkeypatch.setattr(google.auth, "default", default)
    credentials.asked = asked  # type: ignore[attr-defined]
    return credentials


def test_default_credentials_are_refreshed_before_they_expire(adc: FakeCredentials,
                                                              mocked: responses.RequestsMock) -> None:
    c = vertex.Client(location=LOCATION, base_url=HOST, max_retries=0)
    assert c.project == "adc-project" and adc.asked == [["https://www.googleapis.com/auth/cloud-platform"]]  # type: ignore[attr-defined]
    assert adc.refreshes == []  # nothing fetched before the first request
    url = f"{HOST}/v1/projects/adc-project/locations/{LOCATION}/publishers/google/models/{GEMINI}:generateContent"
    for _ in range(4):
        serve(mocked, url, "vertex/gemini.generate_content.text.json")
    model = c.completion_model(GEMINI)
    adc.lifetime = 30  # tokens that expire within TokenAuth's minute of margin: fetched again for every call
    model.completion_request("hi").send()
    model.completion_request("hi").send()
    adc.lifetime = 3600  # an hour's token: fetched once, then reused
    model.completion_request("hi").send()
    model.completion_request("hi").send()
    assert [call.request.headers["Authorization"] for call in mocked.calls] == [
        "Bearer ya29.fake-1", "Bearer ya29.fake-2", "Bearer ya29.fake-3", "Bearer ya29.fake-3"]
    assert len(adc.refreshes) == 3 and isinstance(adc.refreshes[0], google.auth.transport.requests.Request)


def test_the_project_option_wins_over_the_credentials_project(adc: FakeCredentials,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    assert vertex.Client(project="mine").project == "mine"
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "from-env")
    assert vertex.Client().project == "from-env"


def test_given_credentials_are_used_and_their_project_too(mocked: responses.RequestsMock) -> None:
    credentials = FakeCredentials()
    credentials.project_id = "sa-project"  # type: ignore[attr-defined]  # as service account credentials have
    c = vertex.Client(credentials=credentials, location=LOCATION, base_url=HOST)
    assert c.project == "sa-project"
    serve(mocked, f"{HOST}/v1/projects/sa-project/locations/{LOCATION}/publishers/google/models/{GEMINI}"
                  ":generateContent", "vertex/gemini.generate_content.text.json")
    c.completion_model(GEMINI).completion_request("hi").send()
    assert credentials_sent(c) == {"Authorization": "Bearer ya29.fake-1"}
    with pytest.raises(errors.ClientBuildError, match="google-auth credentials"):
        vertex.Client(credentials="not credentials", project=PROJECT)


def test_without_google_auth_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "google.auth", None)  # import google.auth now raises ImportError
    with pytest.raises(errors.ClientBuildError, match=r"pip install 'rig_sync\[vertex\]'"):
        vertex.Client(project=PROJECT)
    assert vertex.Client(token=TOKEN, project=PROJECT).project == PROJECT  # a token needs no google-auth


def test_no_default_credentials_is_a_build_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def default(**kwargs: Any) -> Any:
        raise google.auth.exceptions.DefaultCredentialsError("Your default credentials were not found.")

    monkeypatch.setattr(google.auth, "default", default)
    with pytest.raises(errors.ClientBuildError, match="gcloud auth application-default login"):
        vertex.Client(project=PROJECT)


def test_a_refresh_that_fails_is_a_credentials_error_and_nothing_is_sent(adc: FakeCredentials) -> None:
    def refresh(request: Any) -> None:
        raise google.auth.exceptions.RefreshError("invalid_grant: Token has been expired or revoked.")

    adc.refresh = refresh  # type: ignore[method-assign]
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        with pytest.raises(errors.CredentialsError, match="invalid_grant") as info:
            vertex.Client(base_url=HOST).completion_model(GEMINI).completion_request("hi").send()
        assert len(mocked.calls) == 0
    assert info.value.provider == "vertex"


def test_express_mode_sends_the_key_in_a_header_to_the_global_paths(mocked: responses.RequestsMock,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    key = "AQ.SECRET-express-key-0123456789"
    assert vertex.Client(key).base_url == "https://aiplatform.googleapis.com"
    c = vertex.Client(key, base_url=HOST)
    serve(mocked, f"{HOST}/v1/publishers/google/models/{GEMINI}:generateContent",
          "vertex/gemini.generate_content.text.json")
    assert c.completion_model(GEMINI).completion_request("hi").send().text == "Olá!"
    sent = mocked.calls[0].request
    assert sent.headers["x-goog-api-key"] == key and "Authorization" not in sent.headers
    assert key not in (sent.url or "") and key not in repr(c)
    with pytest.raises(errors.UnsupportedFeature, match="express mode"):
        c.completion_model(CLAUDE)
    monkeypatch.setenv("VERTEX_API_KEY", key)
    assert vertex.Client().express and credentials_sent(vertex.Client()) == {"x-goog-api-key": key}
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "ignored-in-express-mode")
    assert vertex.Client().project is None
    assert vertex.Client(token=TOKEN, project=PROJECT).express is False  # explicit credentials win


# --- errors and secrets -------------------------------------------------------------------------------------


def test_resource_exhausted_is_a_rate_limit_error_for_both_wires(mocked: responses.RequestsMock) -> None:
    serve(mocked, f"{ROOT}/anthropic/models/{CLAUDE}:streamRawPredict",
          "vertex/error.429_resource_exhausted.claude.json", status=429, headers={"request-id": "req_vrtx_0001"})
    serve(mocked, f"{ROOT}/google/models/{GEMINI}:generateContent", "gemini/error.429_resource_exhausted.json",
          status=429)
    with pytest.raises(errors.RateLimitError) as info:
        list(client().completion_model(CLAUDE).completion_request("hi").stream())
    assert "Quota exceeded for aiplatform.googleapis.com" in str(info.value)
    assert info.value.request_id == "req_vrtx_0001" and info.value.provider == "vertex"
    with pytest.raises(errors.RateLimitError, match="Quota exceeded"):
        client().completion_model(GEMINI).completion_request("hi").send()


def test_unauthenticated_is_an_authentication_error(mocked: responses.RequestsMock) -> None:
    serve(mocked, f"{ROOT}/google/models/{GEMINI}:generateContent", "vertex/error.401_credentials_missing.json",
          status=401)
    with pytest.raises(errors.AuthenticationError, match="Expected OAuth2 access token"):
        client().completion_model(GEMINI).completion_request("hi").send()


def test_no_token_in_reprs_errors_or_pickles(mocked: responses.RequestsMock) -> None:
    echo = json.dumps({"error": {"code": 401, "message": f"Bearer {TOKEN} is not valid", "status": "UNAUTHENTICATED"}})
    mocked.add("POST", f"{ROOT}/google/models/{GEMINI}:generateContent", body=echo, status=401,
               content_type="application/json")
    c = client()
    with pytest.raises(errors.AuthenticationError) as info:
        c.completion_model(GEMINI).completion_request("hi").send()
    shown = [str(info.value), repr(info.value), repr(info.value.body), repr(c), repr(c.transport),
             repr(c.transport.auth), repr(c.completion_model(GEMINI)),
             repr(vertex.ClientBuilder().option("token", TOKEN))]
    assert not [s for s in shown if TOKEN in s or TOKEN[5:] in s]
    again = pickle.loads(pickle.dumps(c))
    assert again.project == PROJECT and TOKEN not in repr(again)
    credentials = FakeCredentials()
    credentials.refresh(None)
    assert credentials.token is not None
    fetch = vertex.Client(credentials=credentials, project=PROJECT).transport.auth
    assert credentials.token not in repr(fetch) and "FakeCredentials" in repr(fetch._fetch)  # type: ignore[union-attr]


# --- against the loopback FakeProvider (its Vertex dialect) ---------------------------------------------


def fake_client(fake: FakeProvider, **kwargs: Any) -> vertex.Client:
    return vertex.Client(**{"token": fake.api_key, "project": PROJECT, "location": LOCATION, "base_url": fake.url,
                            "max_retries": 0, **kwargs})


@pytest.mark.parametrize("model", [GEMINI, "claude-sonnet-4-5@20250929"])
def test_the_fake_answers_both_wires_sent_streamed_and_with_tools(fake: FakeProvider, model: str) -> None:
    m = fake_client(fake).completion_model(model)
    assert m.completion_request("hello there").send().text == "echo: hello there"
    text, _, resp = streamed(m.completion_request("hello there").stream())
    assert text == "echo: hello there" and resp.usage.total_tokens == 5
    agent = fake_client(fake).agent(model).tool(rig_sync.tool.tool(add_numbers)).build()
    assert agent.prompt('call:add_numbers {"a": 2, "b": 3}') == "tool result: 5"
    wire = fake.requests[0]
    publisher = "anthropic" if model.startswith("claude") else "google"
    assert wire.path.startswith(f"/v1/projects/{PROJECT}/locations/{LOCATION}/publishers/{publisher}/models/")
    assert wire.headers["authorization"] == f"Bearer {fake.api_key}"


def add_numbers(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: the first
        b: the second
    """
    return a + b


def test_the_fake_embeds_on_predict_and_serves_express_mode(fake: FakeProvider) -> None:
    emb = fake_client(fake).embedding_model("text-embedding-005")
    vectors = emb.embed_texts(["a small cat", "a tax invoice"])
    assert [len(v.vec) for v in vectors] == [768, 768] == [emb.ndims] * 2
    assert len(fake.requests) == 1  # one :predict for both
    assert len(fake_client(fake).embedding_model("gemini-embedding-001", 64).embed_texts(["a", "b"])[1].vec) == 64
    assert len(fake.requests) == 3  # gemini-embedding-001: one text per request
    express = vertex.Client(fake.api_key, base_url=fake.url)
    assert express.completion_model(GEMINI).completion_request("hi").send().text == "echo: hi"
    assert fake.requests[-1].path == f"/v1/publishers/google/models/{GEMINI}:generateContent"
    assert fake.requests[-1].headers["x-goog-api-key"] == fake.api_key


def test_the_fake_refuses_a_request_without_a_bearer_token_as_google_does(fake: FakeProvider) -> None:
    keyed = fake_client(fake, token=None, auth=HeaderAuth("x-goog-api-key", fake.api_key))  # a key, not a token
    for model in (GEMINI, CLAUDE):
        with pytest.raises(errors.AuthenticationError, match="missing required authentication credential") as info:
            keyed.completion_model(model).completion_request("hi").send()
        assert info.value.body["error"]["status"] == "UNAUTHENTICATED"
        assert info.value.body["error"]["details"][0]["reason"] == "CREDENTIALS_MISSING"


def test_the_fake_checks_the_claude_body(fake: FakeProvider) -> None:
    wrong = fake_client(fake, anthropic_version="bedrock-2023-05-31").completion_model(CLAUDE)
    with pytest.raises(errors.BadRequestError, match="vertex-2023-10-16") as info:
        wrong.completion_request("hi").send()
    assert info.value.body["type"] == "error"  # the model's own refusal: Anthropic's shape
    fake_client(fake).completion_model(CLAUDE).completion_request("hi").send()
    sent = fake.requests[-1].json
    assert "model" not in sent and sent["anthropic_version"] == "vertex-2023-10-16"
