"""The `llamacpp` provider against a real llama.cpp `llama-server` (run by `make interop`).

interop/run.py builds the server, writes a tiny random-weight model and starts three servers, then
runs this file with their base URLs in LLAMACPP_INTEROP_URL (chat, --jinja, no embeddings),
LLAMACPP_INTEROP_EMBED_URL (--embeddings) and LLAMACPP_INTEROP_TOOLS_URL (chat, --jinja, on a
model with a one-token `<tool_call>\n` that a logit_bias uses to force a tool call). Outside that
run every test here is skipped; `make test` never collects this folder (pytest's testpaths is
`tests`).

The model's weights are random, so its words are gibberish: these checks are about the wire
(requests the server accepts, answers and streams rig_sync reads, errors it classifies), never
about what the model says. Sampling is greedy (temperature 0), so every run asks the same.

The same checks run against an early-2025 server (`INTEROP_LLAMA_CPP_PYTHON_VERSION=0.3.8`: llama.cpp
b4875, 2025-03-12). Where that build answers differently (no streamed tool calls, an over-long prompt
truncated, embeddings on a chat server refused with a 400), a check asserts what rig_sync does with
that build's answer: see `Build` and `early()`.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

import pytest
import requests

from rig_sync import errors, observe
from rig_sync.agent import MaxTurnsError
from rig_sync.completion import ToolChoice, ToolDefinition
from rig_sync.message import Message, ToolResult
from rig_sync.providers import llamacpp
from rig_sync.streaming import TextChunk, ToolCallChunk
from rig_sync.tool import tool

CHAT_URL = os.environ.get("LLAMACPP_INTEROP_URL")
EMBED_URL = os.environ.get("LLAMACPP_INTEROP_EMBED_URL")
TOOLS_URL = os.environ.get("LLAMACPP_INTEROP_TOOLS_URL")
N_CTX = int(os.environ.get("LLAMACPP_INTEROP_N_CTX", "1024"))
N_EMBD = int(os.environ.get("LLAMACPP_INTEROP_N_EMBD", "64"))
MODEL = "tiny"  # llama-server serves its one model whatever the name

_MISSING = [name for name, url in (("LLAMACPP_INTEROP_URL", CHAT_URL), ("LLAMACPP_INTEROP_EMBED_URL", EMBED_URL),
                                   ("LLAMACPP_INTEROP_TOOLS_URL", TOOLS_URL)) if not url]
if _MISSING and os.environ.get("LLAMACPP_INTEROP_RUN"):  # under interop/run.py a skip would read as a pass
    raise RuntimeError(f"interop/run.py did not set {', '.join(_MISSING)}")
pytestmark = pytest.mark.skipif(bool(_MISSING), reason="needs running llama-servers: run `make interop`")


@dataclass(frozen=True)
class Build:
    """The llama.cpp build a server reports in GET /props: `b<number>-<commit>`.

    A server built from a llama-cpp-python sdist reports number 1 whatever its age (the sdist's git
    history is one commit deep); interop/run.py then passes the commit's date, read from that
    history, in LLAMACPP_INTEROP_BUILD_DATE, used only when run.py saw the same build.
    """

    info: str
    number: int
    date: str  # YYYY-MM-DD, or "" when unknown

    def up_to(self, number: int, date: str) -> bool:
        """Whether this build is `number` (committed on `date`) or older; an unknown age is new."""
        if self.number > 1:
            return self.number <= number
        return bool(self.date) and self.date <= date


@cache
def server_build() -> Build:
    """The chat server's build, read once (all three servers run the same binary)."""
    info = requests.get(str(CHAT_URL).removesuffix("/v1") + "/props", timeout=10).json().get("build_info", "")
    match = re.fullmatch(r"b(\d+)-\w+", info or "")
    date = os.environ.get("LLAMACPP_INTEROP_BUILD_DATE", "") if os.environ.get("LLAMACPP_INTEROP_BUILD") == info else ""
    return Build(info or "unknown", int(match.group(1)) if match else 0, date)


def early() -> bool:
    """An early-2025 build: the newest checked is b4875 of 2025-03-12 (llama-cpp-python 0.3.8).

    What it does that later builds do not, and each check that reads it:
    - a streamed request with tools is refused, `500 "Cannot use tools with stream"` (streamed tool
      calls came later): test_streamed_tool_call;
    - context shift is on by default, so a prompt longer than the context is cut, not refused
      (a 400 from August 2025): test_prompt_longer_than_the_context_is_context_window_exceeded;
    - a server without --embeddings computes embeddings anyway, and refuses a model without pooling
      with `400 "Pooling type 'none' is not OAI compatible"` (later: a 501): test_unsupported_request_is_not_retried.
    Builds between that one and the current one are not told apart: they count as current.
    """
    return server_build().up_to(4875, "2025-03-12")


# A tool whose only argument is an enum: under tool_choice "required" the server's grammar fixes
# the whole call, so even a random model finishes it within max_tokens.
WEATHER = ToolDefinition("get_weather", "The weather in a unit", {
    "type": "object",
    "properties": {"unit": {"type": "string", "enum": ["c", "f"]}},
    "required": ["unit"],
})


@tool
def get_weather(unit: Literal["c", "f"]) -> str:
    """The weather, in a unit.

    Args:
        unit: "c" or "f".
    """
    return "21" if unit == "c" else "70"


def token_id(url: str | None, text: str) -> int:
    """The one token for `text` of the model served at `url`, from the server's /tokenize."""
    base = str(url).removesuffix("/v1")
    ids = requests.post(base + "/tokenize", json={"content": text, "parse_special": True}, timeout=10).json()["tokens"]
    assert len(ids) == 1, (text, ids)
    return int(ids[0])


@pytest.fixture(scope="module")
def force_call() -> dict[str, Any]:
    """Request fields that make the random model make exactly one tool call, at once.

    A random model never writes the template's `<tool_call>\n` by itself, and under "required"
    llama-server lets it write text first. The tiny model has that opening as one token
    (interop/make_tiny_model.py); a logit_bias on it, a stronger one on the end token (which the
    server's grammar forbids until a call is complete) and parallel_tool_calls false give one
    whole call in llama.cpp's own format.
    """
    return {"logit_bias": {str(token_id(TOOLS_URL, "<tool_call>\n")): 50, str(token_id(TOOLS_URL, "<|im_end|>")): 60},
            "parallel_tool_calls": False}


def no_call_for(url: str | None) -> dict[str, Any]:
    """Keep the random model off the tool-call tokens where tools are offered but text is wanted.

    Random text with a stray `<tool_call>` token fails the server's own parse of the answer (500
    "does not match the expected peg-native format"), which is the model's fault, not the wire's.
    """
    return {"logit_bias": {str(token_id(url, t)): -100 for t in ("<tool_call>", "</tool_call>")}}


@pytest.fixture(scope="module")
def no_call() -> dict[str, Any]:
    return no_call_for(CHAT_URL)


def first_call_is_complete(calls: list[Any]) -> None:
    assert len(calls) == 1, calls
    assert calls[0].name == "get_weather"
    assert calls[0].arguments in ({"unit": "c"}, {"unit": "f"}), calls[0]
    assert calls[0].id


@pytest.fixture
def client() -> Iterator[Any]:
    with llamacpp.Client(base_url=CHAT_URL) as c:
        yield c


@pytest.fixture
def tools_client() -> Iterator[Any]:
    with llamacpp.Client(base_url=TOOLS_URL) as c:
        yield c


@pytest.fixture
def requests_seen() -> Iterator[list[observe.RequestEvent]]:
    seen: list[observe.RequestEvent] = []

    def hook(event: observe.Event) -> None:
        if isinstance(event, observe.RequestEvent):
            seen.append(event)

    observe.add_hook(hook)
    try:
        yield seen
    finally:
        observe.remove_hook(hook)


def test_send_reads_text_and_usage(client: Any) -> None:
    resp = client.completion_model(MODEL).completion_request("Hello").temperature(0.0).max_tokens(8).send()
    assert isinstance(resp.text, str)
    assert resp.usage.reported
    assert resp.usage.input_tokens and resp.usage.input_tokens > 0
    assert resp.usage.output_tokens is not None and 0 < resp.usage.output_tokens <= 8
    assert resp.usage.input_tokens + resp.usage.output_tokens == resp.usage.total_tokens


def test_stream_yields_chunks_and_usage(client: Any) -> None:
    model = client.completion_model(MODEL)
    with model.completion_request("Tell me a story").temperature(0.0).max_tokens(16).stream() as stream:
        chunks = list(stream)
    texts = [c for c in chunks if isinstance(c, TextChunk)]
    assert texts, f"no text chunks in {chunks!r}"
    usage = stream.response.usage
    assert usage.reported, "llama-server sent no usage: stream_options.include_usage not asked for?"
    assert usage.output_tokens is not None and 0 < usage.output_tokens <= 16
    assert usage.input_tokens and usage.input_tokens > 0


def test_request_after_a_stream_is_not_delayed(client: Any,
                                               requests_seen: list[observe.RequestEvent]) -> None:
    """llama-server may close the kept-alive socket after a stream; the next call must not back off."""
    model = client.completion_model(MODEL)
    for _ in range(3):
        with model.completion_request("Hi").temperature(0.0).max_tokens(4).stream() as stream:
            list(stream)
        t0 = time.monotonic()
        model.completion_request("Hi").temperature(0.0).max_tokens(4).send()
        assert time.monotonic() - t0 < 0.3
    assert all(e.retries == 0 for e in requests_seen), requests_seen


@pytest.mark.parametrize("choice", ["auto", "none", None])
def test_tool_definition_and_choice_are_accepted(client: Any, no_call: dict[str, Any], choice: str | None) -> None:
    """Tools offered, the model answers in text (forced calls: test_forced_tool_call_is_read)."""
    builder = client.completion_model(MODEL).completion_request("What is the weather?").tool(WEATHER)
    if choice is not None:
        builder = builder.tool_choice(choice)
    resp = builder.additional_params(no_call).temperature(0.0).max_tokens(32).send()
    assert resp.usage.reported
    for call in resp.tool_calls:
        assert call.name == "get_weather"


@pytest.mark.parametrize("choice", ["required", ToolChoice.tool("get_weather")])
def test_forced_tool_call_is_read(tools_client: Any, force_call: dict[str, Any], choice: ToolChoice | str) -> None:
    resp = (tools_client.completion_model(MODEL).completion_request("What is the weather?").tool(WEATHER)
            .tool_choice(choice).additional_params(force_call).temperature(0.0).max_tokens(96).send())
    first_call_is_complete(resp.tool_calls)


def test_streamed_tool_call(tools_client: Any, force_call: dict[str, Any],
                            requests_seen: list[observe.RequestEvent]) -> None:
    """The call streamed back; an early build refuses the stream, and rig_sync raises that at once."""
    model = tools_client.completion_model(MODEL)
    request = (model.completion_request("What is the weather?").tool(WEATHER).tool_choice("required")
               .additional_params(force_call).temperature(0.0).max_tokens(96))
    if early():  # `500 {"error": {"code": 500, "message": "Cannot use tools with stream", ...}}`
        t0 = time.monotonic()
        with pytest.raises(errors.InternalServerError) as info:
            with request.stream() as stream:
                list(stream)
        assert info.value.status_code == 500
        assert "Cannot use tools with stream" in str(info.value)
        assert not info.value.is_retryable()
        assert time.monotonic() - t0 < 0.3  # no backoff sleeps
        assert [e.retries for e in requests_seen if e.status == 500] == [0]
        return
    with request.stream() as stream:
        chunks = list(stream)
    first_call_is_complete(stream.response.tool_calls)
    assert [c for c in chunks if isinstance(c, ToolCallChunk)], chunks
    assert stream.response.usage.reported


def test_assistant_tool_turn_with_null_content_is_accepted(client: Any, no_call: dict[str, Any]) -> None:
    messages = [
        {"role": "user", "content": "What is the weather?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"unit": "c"}'}},
        ]},
        {"role": "tool", "tool_call_id": "call_1", "content": "21"},
    ]
    resp = (client.completion_model(MODEL).completion_request(messages).tool(WEATHER)
            .additional_params(no_call).temperature(0.0).max_tokens(8).send())
    assert resp.usage.reported


def test_tool_result_round_trip(tools_client: Any, force_call: dict[str, Any]) -> None:
    """The call read back from the server, its result, and the next request with both.

    The next request goes with tool_choice "none": that server's model cannot take "auto".
    """
    model = tools_client.completion_model(MODEL)
    question = Message.user("What is the weather?")
    first = (model.completion_request(question).tool(WEATHER).tool_choice("required")
             .additional_params(force_call).temperature(0.0).max_tokens(96).send())
    first_call_is_complete(first.tool_calls)
    results = [Message.tool_result(call.id, "21") for call in first.tool_calls]
    answer = (model.completion_request([question, first.message(), *results]).tool(WEATHER)
              .tool_choice("none").additional_params(no_call_for(TOOLS_URL)).temperature(0.0).max_tokens(8).send())
    assert answer.usage.reported


def test_agent_tool_turns_reach_the_server(tools_client: Any, force_call: dict[str, Any]) -> None:
    """An agent forced to call its tool runs it and sends each tool turn back, until max_turns."""
    agent = (tools_client.agent(MODEL).preamble("Use your tools.").tool(get_weather).tool_choice("required")
             .additional_params(force_call).temperature(0.0).max_tokens(256).max_turns(2).build())
    with pytest.raises(MaxTurnsError) as info:
        agent.prompt("What is the weather?")
    history = info.value.history
    calls = [c for m in history for c in m.tool_calls]
    results = [p for m in history for p in m.content if isinstance(p, ToolResult)]
    assert len(calls) >= 2 and all(c.name == "get_weather" for c in calls), history
    assert len(results) >= 2 and all(r.content in ("21", "70") for r in results), history


def test_embeddings_have_the_model_size() -> None:
    with llamacpp.Client(base_url=EMBED_URL) as c:
        emb = c.embedding_model(MODEL, ndims=N_EMBD)
        vectors = emb.embed_texts(["a small cat", "a little kitten", "a tax invoice"])
    assert [v.document for v in vectors] == ["a small cat", "a little kitten", "a tax invoice"]
    assert all(len(v.vec) == N_EMBD for v in vectors)
    assert vectors[0].vec != vectors[2].vec


def test_prompt_longer_than_the_context_is_context_window_exceeded(client: Any) -> None:
    """A 400 the server's words mark as too long. An early build (context shift on by default) cuts
    the prompt and answers: rig_sync reads that answer, usage showing the prompt it kept."""
    prompt = "word " * (2 * N_CTX)  # byte-level vocabulary: about 5 tokens a word
    model = client.completion_model(MODEL)
    if early():
        resp = model.completion_request(prompt).max_tokens(4).send()
        assert resp.usage.input_tokens is not None and 0 < resp.usage.input_tokens < N_CTX
        with model.completion_request(prompt).max_tokens(4).stream() as stream:
            list(stream)
        assert stream.response.usage.input_tokens is not None and 0 < stream.response.usage.input_tokens < N_CTX
        return
    with pytest.raises(errors.ContextWindowExceededError) as info:
        model.completion_request(prompt).max_tokens(4).send()
    assert info.value.status_code == 400
    with pytest.raises(errors.ContextWindowExceededError):
        with model.completion_request(prompt).max_tokens(4).stream() as stream:
            list(stream)


def test_unsupported_request_is_not_retried(client: Any,
                                            requests_seen: list[observe.RequestEvent]) -> None:
    """Embeddings on the chat server (started without --embeddings): 501, raised at once. An early
    build tries them, and refuses the chat model's pooling (none) with a 400, raised at once too."""
    status, kind, words = (400, errors.BadRequestError, "Pooling type 'none' is not OAI compatible") if early() \
        else (501, errors.InternalServerError, "embeddings")
    t0 = time.monotonic()
    with pytest.raises(kind) as info:
        client.embedding_model(MODEL).embed_texts(["hello"])
    assert info.value.status_code == status
    assert not info.value.is_retryable()
    assert words in str(info.value)
    assert time.monotonic() - t0 < 0.3  # no backoff sleeps
    assert [e.retries for e in requests_seen if e.status == status] == [0]


def test_an_embedding_input_past_the_batch_is_raised_once(requests_seen: list[observe.RequestEvent]) -> None:
    """The embeddings server (-ub 512) answers an input longer than its batch with a 500 ("input (…
    tokens) is too large to process"), on both builds: it can never be served, so it is not retried."""
    t0 = time.monotonic()
    with llamacpp.Client(base_url=EMBED_URL) as c, pytest.raises(errors.InternalServerError) as info:
        c.embedding_model(MODEL).embed_texts(["word " * 600])
    assert info.value.status_code == 500 and "too large to process" in str(info.value)
    assert not info.value.is_retryable()
    assert time.monotonic() - t0 < 0.3  # no backoff sleeps
    assert [e.retries for e in requests_seen if e.status == 500] == [0]
