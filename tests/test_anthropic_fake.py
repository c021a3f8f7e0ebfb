"""Anthropic end to end against the loopback FakeProvider speaking the Messages API: real HTTP,
SSE framing, auth, faults in Anthropic's error shapes, the tool loop and the registry."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from conftest import ADD

from rig_sync import errors, observe
from rig_sync.client import ProviderValue
from rig_sync.client.builder import DynClientBuilder
from rig_sync.http import RetryPolicy
from rig_sync.message import Message, Reasoning
from rig_sync.providers import anthropic
from rig_sync.streaming import FinalResponse, ReasoningChunk, TextChunk, ToolCallChunk
from rig_sync.testing import FakeProvider, Fault, Reply
from rig_sync.tool import tool

CALL_ADD = 'call:add {"a": 2, "b": 3}'


def claude(fake: FakeProvider, key: str | None = None, **options: Any) -> anthropic.CompletionModel:
    if "retry" not in options:
        options.setdefault("max_retries", 0)
    client = anthropic.Client(key or fake.api_key, base_url=fake.url, timeout=5, **options)
    return client.completion_model("claude-sonnet-4-5")


def test_completion_echo(fake: FakeProvider) -> None:
    resp = claude(fake).completion_request("Hello there").preamble("Be brief").send()
    assert resp.text == "echo: Hello there"
    assert resp.finish_reason == "end_turn"
    assert (resp.id, resp.model) == ("msg_1", "claude-sonnet-4-5")
    assert resp.usage.input_tokens == 4 and resp.usage.output_tokens == 3  # words of system + prompt; of answer
    sent = fake.last_request
    assert sent is not None and sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == fake.api_key
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in sent.headers
    assert sent.json["system"] == "Be brief" and sent.json["max_tokens"] == 8192


def test_streaming(fake: FakeProvider) -> None:
    stream = claude(fake).completion_request("stream these words please").stream()
    pieces = list(stream.text_stream())
    assert len(pieces) > 1
    assert "".join(pieces) == stream.response.text == "echo: stream these words please"
    assert stream.response.finish_reason == "end_turn"
    assert stream.response.usage.output_tokens == 5
    assert fake.last_request is not None and fake.last_request.json["stream"] is True


def test_fake_sends_the_events_in_the_api_order(fake: FakeProvider) -> None:
    body = {"model": "claude-sonnet-4-5", "max_tokens": 16, "stream": True,
            "messages": [{"role": "user", "content": "two words"}]}
    headers = {"x-api-key": fake.api_key, "anthropic-version": "2023-06-01"}
    raw = requests.post(fake.url + "/v1/messages", json=body, headers=headers, timeout=5).text
    names = [line[len("event: "):] for line in raw.splitlines() if line.startswith("event: ")]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert set(names[3:-3]) == {"content_block_delta"}
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]


def test_tool_call(fake: FakeProvider) -> None:
    resp = claude(fake).completion_request(CALL_ADD).tool(ADD).send()
    assert [(c.name, c.arguments) for c in resp.tool_calls] == [("add", {"a": 2, "b": 3})]
    assert resp.finish_reason == "tool_use"
    assert fake.last_request is not None
    assert fake.last_request.json["tools"][0] == {"name": "add", "description": "Add two integers",
                                                  "input_schema": ADD.parameters}
    stream = claude(fake).completion_request(CALL_ADD).tool(ADD).stream()
    calls = [c.tool_call for c in stream if isinstance(c, ToolCallChunk)]
    assert [(c.name, c.arguments) for c in calls] == [("add", {"a": 2, "b": 3})]
    assert stream.response.finish_reason == "tool_use"


@pytest.mark.parametrize("streamed", [False, True])
def test_tool_result_round_trip(fake: FakeProvider, streamed: bool) -> None:
    model = claude(fake)
    question = Message.user(CALL_ADD)
    first = model.completion_request(question).tool(ADD).send()
    follow = model.completion_request(Message.tool_result(first.tool_calls[0].id, "5")).messages(
        [question, first.message()]).tool(ADD)
    resp = follow.stream().response if streamed else follow.send()
    assert resp.text == "tool result: 5"
    assert fake.last_request is not None
    assert fake.last_request.json["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": first.tool_calls[0].id, "content": "5"}]


def test_tool_result_without_its_call_is_refused_like_the_api_does(fake: FakeProvider) -> None:
    with pytest.raises(errors.BadRequestError, match="unexpected `tool_use_id`") as info:
        claude(fake).completion_request(Message.tool_result("toolu_nope", "5")).message(
            Message.user("hi")).tool(ADD).send()
    assert info.value.code == "invalid_request_error"
    assert info.value.body["type"] == "error"


def test_agent_runs_the_tool_loop(fake: FakeProvider) -> None:
    @tool
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    agent = anthropic.Client(fake.api_key, base_url=fake.url, timeout=5).agent("claude-haiku-4-5").tool(add).build()
    assert agent.prompt(CALL_ADD) == "tool result: 5"
    assert fake.request_count == 2


def test_thinking_round_trips_with_its_signature(fake: FakeProvider) -> None:
    model = claude(fake)
    thinking = {"thinking": {"type": "enabled", "budget_tokens": 1024}}
    stream = model.completion_request(CALL_ADD).tool(ADD).additional_params(thinking).stream()
    chunks = list(stream)
    assert any(isinstance(c, ReasoningChunk) for c in chunks)
    first = stream.response
    assert isinstance(first.choice[0], Reasoning) and first.choice[0].signature == "fake-signature-1"
    (model.completion_request(Message.tool_result(first.tool_calls[0].id, "5"))
     .messages([Message.user(CALL_ADD), first.message()]).tool(ADD).additional_params(thinking).send())
    assert fake.last_request is not None
    sent = fake.last_request.json["messages"][1]["content"][0]
    assert sent == {"type": "thinking", "thinking": first.reasoning, "signature": "fake-signature-1"}


def test_scripted_replies_render_in_anthropic_format(fake: FakeProvider) -> None:
    fake.script(Reply.text("cut off", finish_reason="length"), Reply.tool_calls([("add", {"a": 1, "b": 1}, "toolu_x")]))
    assert claude(fake).completion_request("hi").send().finish_reason == "max_tokens"
    stream = claude(fake).completion_request("hi").tool(ADD).stream()
    chunks = list(stream)
    assert [c.tool_call.id for c in chunks if isinstance(c, ToolCallChunk)] == ["toolu_x"]
    assert isinstance(chunks[-1], FinalResponse)


def test_scripted_malformed_arguments_are_kept_on_the_call(fake: FakeProvider) -> None:
    fake.script(Reply.tool_calls([("add", '{"a": 1,')]))
    call = claude(fake).completion_request("hi").tool(ADD).stream().response.tool_calls[0]
    assert (call.name, call.arguments, call.invalid_arguments) == ("add", {}, '{"a": 1,')


def test_scripted_refusal_without_text_raises(fake: FakeProvider) -> None:
    fake.script(Reply.text("", finish_reason="refusal"))
    with pytest.raises(anthropic.RefusalError):
        claude(fake).completion_request("hi").send()


@pytest.mark.parametrize("streamed", [False, True])
def test_usage_is_reported_to_observe_hooks(fake: FakeProvider, streamed: bool) -> None:
    seen: list[observe.UsageEvent] = []

    def hook(event: observe.Event) -> None:
        if isinstance(event, observe.UsageEvent):
            seen.append(event)

    observe.add_hook(hook)
    try:
        request = claude(fake).completion_request("count my words")
        resp = request.stream().response if streamed else request.send()
    finally:
        observe.remove_hook(hook)
    assert [(e.provider, e.model, e.capability) for e in seen] == [("anthropic", "claude-sonnet-4-5", "completion")]
    assert (seen[0].input_tokens, seen[0].output_tokens) == (resp.usage.input_tokens, resp.usage.output_tokens)


# --- auth and faults in Anthropic's error shapes -----------------------------------------------------


def test_wrong_key_is_an_authentication_error(fake: FakeProvider) -> None:
    fake.require_key = "right-key-123456"
    secret = "wrong-key-abcdef123"
    with pytest.raises(errors.AuthenticationError) as info:
        claude(fake, key=secret).completion_request("hi").send()
    err = info.value
    assert err.body == {"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}}
    assert (err.status_code, err.code, err.message) == (401, "authentication_error", "invalid x-api-key")
    assert secret not in str(err) and secret not in repr(err)


def test_missing_version_header_is_refused_by_the_fake(fake: FakeProvider) -> None:
    resp = requests.post(fake.url + "/v1/messages", headers={"x-api-key": fake.api_key}, timeout=5,
                         json={"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]})
    assert resp.status_code == 400
    assert resp.json()["error"] == {"type": "invalid_request_error", "message": "anthropic-version: header is required"}


@pytest.mark.parametrize(("status", "cls", "kind"), [
    (429, errors.RateLimitError, "rate_limit_error"),
    (529, errors.OverloadedError, "overloaded_error"),
    (500, errors.InternalServerError, "api_error"),
])
def test_faults_use_anthropic_error_bodies(fake: FakeProvider, status: int, cls: type[errors.APIStatusError],
                                           kind: str) -> None:
    fake.inject(Fault.status(status))
    with pytest.raises(cls) as info:
        claude(fake).completion_request("hi").send()
    err = info.value
    assert (err.status_code, err.code, err.provider) == (status, kind, "anthropic")
    assert err.body["type"] == "error" and err.body["error"]["type"] == kind
    assert err.is_retryable()


def test_overloaded_is_retried_then_succeeds(fake: FakeProvider) -> None:
    fake.inject(Fault.status(529, should_retry=True))
    resp = claude(fake, retry=RetryPolicy(max_retries=2, backoff_base=0)).completion_request("again").send()
    assert resp.text == "echo: again"
    assert fake.request_count == 2


def test_rate_limit_headers_reach_the_error(fake: FakeProvider) -> None:
    fake.inject(Fault.status(429, headers={"anthropic-ratelimit-requests-remaining": "0"}, retry_after=7))
    with pytest.raises(errors.RateLimitError) as info:
        claude(fake).completion_request("hi").send()
    assert info.value.headers["anthropic-ratelimit-requests-remaining"] == "0"
    assert info.value.retry_after == 7


def test_mid_stream_overloaded_error_event(fake: FakeProvider) -> None:
    fake.inject(Fault.sse_error(after_events=4, error={"type": "overloaded_error", "message": "Overloaded"}))
    stream = claude(fake).completion_request("a b c d e f").stream()
    seen: list[str] = []
    with pytest.raises(errors.StreamError, match="overloaded_error") as info:
        for chunk in stream:
            if isinstance(chunk, TextChunk):
                seen.append(chunk.text)
    assert seen  # text before the error was delivered
    assert info.value.is_retryable()
    assert info.value.body == {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}


def test_default_sse_error_fault_is_an_api_error_event(fake: FakeProvider) -> None:
    fake.inject(Fault.sse_error(after_events=2))
    with pytest.raises(errors.StreamError, match="api_error"):
        _ = claude(fake).completion_request("a b c").stream().response


def test_stream_cut_raises_stream_error(fake: FakeProvider) -> None:
    fake.inject(Fault.stream_cut(after_events=5))
    with pytest.raises(errors.StreamError) as info:
        _ = claude(fake).completion_request("a b c d e f g").stream().response
    assert info.value.is_retryable()


# --- the registry -------------------------------------------------------------------------------------


def test_registry_builds_anthropic_from_env(fake: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", fake.api_key)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.url)
    model = DynClientBuilder().completion("anthropic", "claude-3-7-sonnet-latest")
    assert isinstance(model, anthropic.CompletionModel)
    assert model.completion_request("via registry").send().text == "echo: via registry"
    assert fake.last_request is not None and fake.last_request.json["max_tokens"] == 8192


def test_registry_from_value_with_options(fake: FakeProvider) -> None:
    value = ProviderValue(fake.api_key, base_url=fake.url, options={"betas": ["token-efficient-tools-2025-02-19"]})
    client = DynClientBuilder().build_from_value("anthropic", value)
    client.completion_model("claude-3-5-haiku-latest").completion_request("hi").send()
    assert fake.last_request is not None
    assert fake.last_request.headers["anthropic-beta"] == "token-efficient-tools-2025-02-19"
    assert json.loads(fake.last_request.body)["model"] == "claude-3-5-haiku-latest"
