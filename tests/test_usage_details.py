"""Usage details from recorded payloads: reasoning tokens, cache reads and writes, cost, and
"not reported" as None (issue 13). Every figure below is the provider's own, from tests/fixtures."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
import responses
from conftest import load_bytes, load_fixture

from rig_sync.agent import AgentBuilder
from rig_sync.completion import CompletionModel, Usage
from rig_sync.providers import anthropic, azure, cohere, gemini, ollama, openai, openrouter, perplexity, xai
from rig_sync.tool import tool

BASE = "http://127.0.0.1:9"
KEY = "sk-test-0123456789abcdef"
ANY = re.compile(r"http://127\.0\.0\.1:9/.*")


def chat(cls: Any, name: str = "m") -> Callable[[], CompletionModel]:
    return lambda: cls.Client(KEY, base_url=f"{BASE}/v1", max_retries=0).completion_model(name)


MODELS: dict[str, Callable[[], CompletionModel]] = {
    "openai": chat(openai),
    "xai": chat(xai),
    "openrouter": chat(openrouter),
    "perplexity": chat(perplexity),
    "responses": lambda: openai.Client(KEY, base_url=f"{BASE}/v1", max_retries=0).responses_model("m"),
    "anthropic": lambda: anthropic.Client(KEY, base_url=BASE, max_retries=0).completion_model("claude-x"),
    "gemini": lambda: gemini.Client(KEY, base_url=BASE, max_retries=0).completion_model("gemini-x"),
    "cohere": lambda: cohere.Client(KEY, base_url=BASE, max_retries=0).completion_model("command-a"),
    "ollama": lambda: ollama.Client(base_url=BASE, max_retries=0).completion_model("llama3"),
}

# (provider, fixture, the Usage the provider's own figures give)
RECORDED = [
    # reasoning within completion_tokens: input + output = total
    ("openai", "openai/chat_completion.hello_world.json", Usage(11, 9, 20, 0, 0)),
    # xAI counts reasoning apart: 291 + 26 + 189 = 506, so output is 26 + 189; cost 1399000 ticks of 1e-10 USD
    ("xai", "xai/chat_completion.reasoning_tool_call.json", Usage(291, 215, 506, 244, 189, None, 0.0001399)),
    ("openrouter", "openrouter/chat_completion.usage_cost.json", Usage(555, 431, 986, 0, 0, 0, 0.00813)),
    ("perplexity", "perplexity/chat_completion.usage_cost.json", Usage(6, 1, 7, cost_usd=0.00501)),
    ("perplexity", "perplexity/chat_completion.citations.json", Usage(10, 251, 261)),
    ("responses", "openai/spec.responses.reasoning.json", Usage(81, 1035, 1116, 0, 832, 0)),
    # Anthropic's input_tokens leaves out the cache: 11306 + 0 + 0
    ("anthropic", "anthropic/message.web_search_server_tool.json", Usage(11306, 163, 11469, 0, None, 0)),
    # Gemini counts thoughts apart from candidates: 14 in, 2 + 24 out, total 40
    ("gemini", "gemini/generate_content.thinking_reply.json", Usage(14, 26, 40, None, 24)),
    ("gemini", "gemini/generate_content.rest_curl.cached_content.json", Usage(323388, 397, 323785, 323383)),
    ("cohere", "cohere/chat.v2.text.json", Usage(71, 418, 489)),
    ("ollama", "ollama/api_chat.non_stream.json", Usage(26, 298, 324)),
]


@pytest.mark.parametrize(("provider", "name", "expected"), RECORDED, ids=[r[1] for r in RECORDED])
def test_recorded_usage_details(mocked: responses.RequestsMock, provider: str, name: str, expected: Usage) -> None:
    mocked.add("POST", ANY, body=load_bytes(name), content_type="application/json")
    usage = MODELS[provider]().completion_request("Hi").send().usage
    assert usage == expected
    # The invariant every provider keeps: the parts add up to the provider's total.
    assert usage.input_tokens is not None and usage.output_tokens is not None
    assert usage.input_tokens + usage.output_tokens == usage.total_tokens
    assert (usage.reasoning_tokens or 0) <= usage.output_tokens
    assert (usage.cached_input_tokens or 0) + (usage.cache_write_tokens or 0) <= usage.input_tokens


def test_anthropic_cache_writes_are_input(mocked: responses.RequestsMock) -> None:
    # The recorded usage block (an issue's quote) in a message envelope.
    message = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x", "stop_reason": "end_turn",
               "content": [{"type": "text", "text": "ok"}],
               "usage": load_fixture("anthropic/usage.cache_creation_nonzero.json")}
    mocked.add("POST", ANY, json=message)
    usage = MODELS["anthropic"]().completion_request("Hi").send().usage
    assert usage == Usage(337 + 46209, 342, 337 + 46209 + 342, 0, None, 46209)


def sse(payloads: list[str]) -> bytes:
    return b"".join(b"data: " + p.encode() + b"\n\n" for p in payloads)


def test_azure_stream_reports_reasoning(mocked: responses.RequestsMock) -> None:
    lines = load_fixture("azure/chat_stream.content_filter.chunks.txt").splitlines()
    mocked.add("POST", ANY, body=sse([*lines, "[DONE]"]), content_type="text/event-stream")
    model = azure.Client(KEY, endpoint=BASE, max_retries=0).completion_model("gpt-5-nano")
    usage = model.completion_request("Hi").stream().response.usage
    assert usage == Usage(15, 78, 93, 0, 64)


def test_a_stream_without_usage_reports_none(mocked: responses.RequestsMock) -> None:
    chunks = [json.dumps({"id": "c1", "model": "m", "choices": [{"index": 0, "delta": {"content": "hi"}}]}),
              json.dumps({"id": "c1", "model": "m", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
              "[DONE]"]
    mocked.add("POST", ANY, body=sse(chunks), content_type="text/event-stream")
    resp = MODELS["openai"]().completion_request("Hi").stream().response
    assert resp.text == "hi"
    assert resp.usage == Usage() and not resp.usage.reported
    assert resp.usage.input_tokens is None and resp.usage.output_tokens is None and resp.usage.total_tokens is None
    assert repr(resp.usage) == "Usage()"


def test_sums_count_what_was_reported() -> None:
    known = Usage(10, 5, 15, 2, cost_usd=0.5)
    assert known + Usage() == known == Usage() + known
    assert sum([Usage(), known, known]) == Usage(20, 10, 30, 4, cost_usd=1.0)
    assert sum([Usage(), Usage()]) == Usage()
    assert known + None == known and None + known == known  # type: ignore[operator]


def test_agent_totals_skip_a_turn_without_usage(mocked: responses.RequestsMock) -> None:
    call = {"id": "c1", "model": "m", "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
        "role": "assistant", "content": None,
        "tool_calls": [{"id": "t1", "type": "function", "function": {"name": "echo", "arguments": "{}"}}]}}]}
    done = {"id": "c2", "model": "m", "choices": [{"index": 0, "finish_reason": "stop",
                                                   "message": {"role": "assistant", "content": "done"}}],
            "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}}
    mocked.add("POST", ANY, json=call)
    mocked.add("POST", ANY, json=done)

    @tool
    def echo() -> str:
        """Say hi."""
        return "hi"

    details = AgentBuilder(MODELS["openai"]()).tool(echo).build().prompt_details("Hi")
    assert details.output == "done"
    assert details.usage == Usage(7, 3, 10)  # the first turn reported nothing, and added nothing
