"""A model name is data, not a path.

Every provider that puts a model or deployment name in the URL (Gemini's `models/<name>:<method>`,
Azure's `/deployments/<name>/`, Hugging Face's `/hf-inference/models/<org>/<name>`) sends it
through one helper: a name that could point the request elsewhere (`..`, `.`, an empty segment, a
backslash, `?`, `#`, a control character; a `/` where the API has no nested names) is refused with
`InvalidRequestError` before anything is sent, the same for every capability, and every legitimate
name reaches the same URL whether it is sent or streamed.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import responses

from rig_sync.errors import InvalidRequestError
from rig_sync.image_generation import ImageGenerationRequest
from rig_sync.providers import azure, gemini, huggingface
from rig_sync.testing import FakeProvider, Reply
from rig_sync.transcription import TranscriptionRequest

HOSTILE = ["../../admin", "..", ".", "models/../../admin", "models/..", "tunedModels/./x", "a/../b", "/admin",
           "models//x", "x/", "a\\..\\b", "x?alt=json", "x#frag", "x\r\nHost: evil", "x\x00", "x\x7f"]
NOT_NESTED = ["a/b", "openai/gpt-4o"]  # a deployment name has no "/"


@pytest.fixture
def no_request() -> Iterator[responses.RequestsMock]:
    """Nothing may leave the process: any request would be a connection error, and counted."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        yield mocked
        assert not mocked.calls, f"a request was sent: {mocked.calls[0].request.url}"


def assert_refused(call: Callable[[], Any], name: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        call()
    assert repr(name)[1:-1][:40] in str(info.value), "the error names the model"
    assert "sk-secret" not in str(info.value)


def gemini_uses(model: str) -> list[Callable[[], Any]]:
    client = gemini.Client("sk-secret", base_url="http://127.0.0.1:9", max_retries=0)
    return [
        lambda: client.completion_model(model).completion_request("hi").send(),
        lambda: client.completion_model(model).completion_request("hi").stream().response,
        lambda: client.embedding_model(model).embed_text("hi"),
        lambda: client.embedding_model(model).embed_texts(["a", "b"]),
        lambda: client.transcription_model(model).transcription(TranscriptionRequest(data=b"RIFF", filename="a.wav")),
    ]


@pytest.mark.parametrize("model", HOSTILE)
def test_gemini_refuses_a_name_that_would_steer_the_url_in_every_capability(
        model: str, no_request: responses.RequestsMock) -> None:
    for use in gemini_uses(model):
        assert_refused(use, model)


@pytest.mark.parametrize("model", HOSTILE + NOT_NESTED)
def test_azure_refuses_a_deployment_name_that_would_steer_the_url(
        model: str, no_request: responses.RequestsMock) -> None:
    client = azure.Client("sk-secret", endpoint="http://127.0.0.1:9", max_retries=0)
    for make in (client.completion_model, client.embedding_model, client.transcription_model,
                 client.image_generation_model, client.audio_generation_model):
        assert_refused(functools.partial(make, model), model)


@pytest.mark.parametrize("model", HOSTILE)
def test_huggingface_inference_refuses_a_name_that_would_steer_the_url(
        model: str, no_request: responses.RequestsMock) -> None:
    client = huggingface.Client("sk-secret", base_url="http://127.0.0.1:9/v1", max_retries=0)
    assert_refused(lambda: client.transcription_model(model).transcription(
        TranscriptionRequest(data=b"RIFF", filename="a.wav")), model)
    assert_refused(lambda: client.image_generation_model(model).image_generation(
        ImageGenerationRequest(prompt="a lighthouse")), model)


# --- legitimate names keep working, and reach one URL whatever the capability -----------------------------


@pytest.mark.parametrize(("model", "resource"), [
    ("gemini-1.5-pro-002", "/v1beta/models/gemini-1.5-pro-002"),
    ("models/gemini-2.0-flash", "/v1beta/models/gemini-2.0-flash"),
    ("tunedModels/my-model-7", "/v1beta/tunedModels/my-model-7"),
])
def test_gemini_send_and_stream_reach_the_same_resource(model: str, resource: str) -> None:
    with FakeProvider() as fake:
        fake.script(Reply.text("one"), Reply.text("two"))
        chat = gemini.Client(fake.api_key, base_url=fake.url, max_retries=0).completion_model(model)
        assert chat.completion_request("hi").send().text == "one"
        assert chat.completion_request("hi").stream().text == "two"
        paths = [r.path for r in fake.requests]
    assert paths == [f"{resource}:generateContent", f"{resource}:streamGenerateContent"]


def test_gemini_percent_encodes_what_a_name_may_hold(mocked: responses.RequestsMock) -> None:
    """`:` would start the method (`x:streamGenerateContent`), a space is not URL text: both are
    encoded, identically for send and stream."""
    client = gemini.Client("k", base_url="http://127.0.0.1:9", max_retries=0)
    answer = {"candidates": [{"content": {"role": "model", "parts": [{"text": "hi"}]}, "finishReason": "STOP"}]}
    base = "http://127.0.0.1:9/v1beta/models/a%20b%3AstreamGenerateContent"
    mocked.add(responses.POST, f"{base}:generateContent", json=answer)
    mocked.add(responses.POST, f"{base}:streamGenerateContent?alt=sse", body=f"data: {json.dumps(answer)}\n\n",
               content_type="text/event-stream")
    model = client.completion_model("a b:streamGenerateContent")
    assert model.completion_request("hi").send().text == "hi"
    assert model.completion_request("hi").stream().text == "hi"


@pytest.mark.parametrize("deployment", ["gpt-4o", "my_gpt-4o.2024-08-06", "GPT35Turbo"])
def test_azure_deployment_names_with_dots_dashes_and_underscores_work(deployment: str, fake: FakeProvider) -> None:
    client = azure.Client(fake.api_key, endpoint=fake.url, max_retries=0)
    fake.script(Reply.text("one"), Reply.text("two"))
    chat = client.completion_model(deployment)
    assert chat.completion_request("hi").send().text == "one"
    assert chat.completion_request("hi").stream().text == "two"
    client.embedding_model(deployment).embed_text("hi")
    paths = [r.path for r in fake.requests]
    root = f"/openai/deployments/{deployment}"
    assert paths == [f"{root}/chat/completions", f"{root}/chat/completions", f"{root}/embeddings"]


def test_huggingface_org_and_model_stay_two_segments(mocked: responses.RequestsMock) -> None:
    mocked.add(responses.POST, "http://127.0.0.1:9/hf-inference/models/openai/whisper-large-v3",
               json={"text": "hello"})
    client = huggingface.Client("k", base_url="http://127.0.0.1:9/v1", max_retries=0)
    out = client.transcription_model("openai/whisper-large-v3").transcription(
        TranscriptionRequest(data=b"RIFF", filename="a.wav"))
    assert out.text == "hello"
