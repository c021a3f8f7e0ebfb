"""What real servers send and accept (issue 13, "Defects against real servers and recordings").

Each test drives the public API through the transport (`responses`) with the payload shape the
named server really produces; the source of each shape is cited beside it.
"""

from __future__ import annotations

import importlib
import json
from typing import Any

import pytest
import responses

from rig_sync.client import ProviderClient
from rig_sync.completion import ToolChoice, ToolDefinition
from rig_sync.errors import ContextWindowExceededError, InvalidRequestError, ResponseDecodeError, StreamError
from rig_sync.message import Message, ToolCall
from rig_sync.providers._compat import ROWS
from tests.conftest import sent_json

TOOL = ToolDefinition("add", "Add two numbers", {"type": "object", "properties": {"a": {"type": "number"}}})
OTHER = ToolDefinition("mul", "Multiply two numbers", {"type": "object", "properties": {"a": {"type": "number"}}})
LLAMACPP = "http://localhost:8080/v1/chat/completions"
PERPLEXITY = "https://api.perplexity.ai/chat/completions"


def client_of(name: str, **kwargs: Any) -> Any:
    cls: type[ProviderClient] = importlib.import_module(f"rig_sync.providers.{name}").Client
    return cls("test-key", timeout=2, max_retries=0, **kwargs)


def sse(*events: Any, done: bool = True) -> bytes:
    """`data:` events (JSON values, or raw lines given as bytes), then `data: [DONE]` if `done`."""
    out = b""
    for event in events:
        out += event if isinstance(event, bytes) else b"data: " + json.dumps(event).encode() + b"\n\n"
    return out + (b"data: [DONE]\n\n" if done else b"")


def stream(mocked: responses.RequestsMock, url: str, body: bytes, name: str, **request: Any) -> list[Any]:
    mocked.add(responses.POST, url, body=body, content_type="text/event-stream")
    builder = client_of(name).completion_model("m").completion_request("hi")
    for key, value in request.items():
        builder = getattr(builder, key)(value)
    return list(builder.stream())


# --- Perplexity: streams end without `data: [DONE]` ---------------------------------------------------

# Full mode (the default), as captured from api.perplexity.ai in
# https://github.com/perplexityai/api-discussion/issues/209 (March 2025): every chunk is
# `"object": "chat.completion"` carrying usage and citations; the last has finish_reason "stop";
# no `[DONE]` follows. (The first chunk is verbatim; the rest follow its shape.)
_PPLX_ID = "8c1596dd-319a-4c71-a1b8-e0c546b01641"
_CITATIONS = ["https://www.horseandhound.co.uk/dogs/funny-dog-jokes-829701",
              "https://be.chewy.com/21-hilarious-dog-jokes-you-should-tell/"]


def _pplx_full(content: str, so_far: str, finish: str | None, completion_tokens: int) -> dict[str, Any]:
    return {"id": _PPLX_ID, "model": "sonar", "created": 1741689451,
            "usage": {"prompt_tokens": 7, "completion_tokens": completion_tokens,
                      "total_tokens": 7 + completion_tokens},
            "citations": _CITATIONS, "object": "chat.completion",
            "choices": [{"index": 0, "finish_reason": finish,
                         "message": {"role": "assistant", "content": so_far},
                         "delta": {"role": "assistant", "content": content}}]}


PPLX_FULL = [_pplx_full("Why", "Why", None, 1), _pplx_full(" did the dog", "Why did the dog", None, 4),
             _pplx_full(" sit?", "Why did the dog sit?", "stop", 6)]

# Concise mode (`stream_mode: "concise"`), as documented at
# https://docs.perplexity.ai/docs/sonar/pro-search/stream-mode: content chunks, then a last chunk
# with `"object": "chat.completion.done"` carrying the whole message, usage and cost.
PPLX_CONCISE = [
    {"id": "cfa38f9d-fdbc-4ac6-a5d2-a3010b6a33a6", "model": "sonar-pro", "created": 1759441592,
     "object": "chat.completion.chunk",
     "choices": [{"index": 0, "finish_reason": None, "message": {"role": "assistant", "content": ""},
                  "delta": {"role": "assistant", "content": " tonight"}}]},
    {"id": "cfa38f9d-fdbc-4ac6-a5d2-a3010b6a33a6", "model": "sonar-pro", "created": 1759441595,
     "object": "chat.completion.done",
     "usage": {"prompt_tokens": 6, "completion_tokens": 238, "total_tokens": 244, "search_context_size": "low",
               "cost": {"input_tokens_cost": 0.0, "output_tokens_cost": 0.004, "request_cost": 0.006,
                        "total_cost": 0.01}},
     "search_results": [], "images": [],
     "choices": [{"index": 0, "finish_reason": "stop",
                  "message": {"role": "assistant", "content": " tonight", "reasoning_steps": []},
                  "delta": {"role": "assistant", "content": ""}}]},
]


def test_perplexity_full_mode_stream_ends_without_done(mocked: responses.RequestsMock) -> None:
    chunks = stream(mocked, PERPLEXITY, sse(*PPLX_FULL, done=False), "perplexity")
    response = chunks[-1].response
    assert response.choice[0].text == "Why did the dog sit?"
    assert response.finish_reason == "stop"
    assert (response.usage.input_tokens, response.usage.output_tokens) == (7, 6)


def test_perplexity_concise_stream_ends_at_its_done_chunk(mocked: responses.RequestsMock) -> None:
    chunks = stream(mocked, PERPLEXITY, sse(*PPLX_CONCISE, done=False), "perplexity")
    response = chunks[-1].response
    assert response.choice[0].text == " tonight"
    assert response.usage.total_tokens == 244


def test_perplexity_done_chunk_ends_the_stream_even_without_a_finish_reason(mocked: responses.RequestsMock) -> None:
    done = {**PPLX_CONCISE[1], "choices": []}
    chunks = stream(mocked, PERPLEXITY, sse(PPLX_CONCISE[0], done, done=False), "perplexity")
    assert chunks[-1].response.choice[0].text == " tonight"


def test_perplexity_stream_cut_short_is_still_an_error(mocked: responses.RequestsMock) -> None:
    with pytest.raises(StreamError, match=r"perplexity.*incomplete"):
        stream(mocked, PERPLEXITY, sse(*PPLX_FULL[:2], done=False), "perplexity")


def test_a_done_marker_row_still_needs_its_marker(mocked: responses.RequestsMock) -> None:
    # groq ends streams with [DONE]: a finish reason without it is a stream cut short.
    with pytest.raises(StreamError, match=r"groq.*DONE"):
        stream(mocked, "https://api.groq.com/openai/v1/chat/completions", sse(*PPLX_FULL, done=False), "groq")


# --- llama.cpp: usage only when asked --------------------------------------------------------------

# Current llama-server answers `stream_options.include_usage` with a last chunk of no choices and
# the usage (tools/server/server-task.cpp, `to_json_oaicompat_chat_stream`), as OpenAI does.
LLAMA_TEXT = {"choices": [{"finish_reason": None, "index": 0, "delta": {"content": "Hello"}}],
              "created": 1740000000, "id": "chatcmpl-x", "model": "gpt-3.5-turbo", "system_fingerprint": "b4800",
              "object": "chat.completion.chunk"}
LLAMA_STOP = {"choices": [{"finish_reason": "stop", "index": 0, "delta": {}}],
              "created": 1740000000, "id": "chatcmpl-x", "model": "gpt-3.5-turbo", "system_fingerprint": "b4800",
              "object": "chat.completion.chunk"}
LLAMA_USAGE = {"choices": [], "created": 1740000000, "id": "chatcmpl-x", "model": "gpt-3.5-turbo",
               "system_fingerprint": "b4800", "object": "chat.completion.chunk",
               "usage": {"completion_tokens": 1, "prompt_tokens": 9, "total_tokens": 10},
               "timings": {"prompt_n": 9, "predicted_n": 1}}


def test_llamacpp_stream_asks_for_usage_and_reads_it(mocked: responses.RequestsMock) -> None:
    chunks = stream(mocked, LLAMACPP, sse(LLAMA_TEXT, LLAMA_STOP, LLAMA_USAGE), "llamacpp")
    assert sent_json(mocked)["stream_options"] == {"include_usage": True}
    usage = chunks[-1].response.usage
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (9, 1, 10)


@pytest.mark.parametrize("name", sorted(ROWS))
def test_rows_that_accept_stream_options_ask_for_usage(name: str, mocked: responses.RequestsMock) -> None:
    # Perplexity and Mira send usage unasked; Mistral's schema forbids unknown fields.
    row = ROWS[name]
    assert row.dialect.stream_usage == (name not in ("perplexity", "mira", "mistral"))
    stream(mocked, row.base_url + "/chat/completions", sse(LLAMA_TEXT, LLAMA_STOP, LLAMA_USAGE), name)
    assert ("stream_options" in sent_json(mocked)) == row.dialect.stream_usage


# --- assistant tool-call turns carry "content": null -------------------------------------------------


def _tool_turn_history() -> list[Message]:
    return [Message.user("add 2"), Message.assistant(ToolCall("call_1", "add", {"a": 2})),
            Message.tool_result("call_1", "2")]


OPENAI_FORMAT = ["openai", *sorted(name for name, row in ROWS.items() if row.dialect.tools)]


@pytest.mark.parametrize("name", OPENAI_FORMAT)
def test_assistant_tool_call_turn_sends_content_null(name: str, mocked: responses.RequestsMock) -> None:
    # Early-2025 llama-server answers 500 "Expected 'content'" when the key is missing;
    # openai-python sends it as null beside the tool calls.
    base = ROWS[name].base_url if name in ROWS else "https://api.openai.com/v1"
    mocked.add(responses.POST, base + "/chat/completions", json={
        "id": "x", "model": "m", "choices": [{"index": 0, "finish_reason": "stop",
                                              "message": {"role": "assistant", "content": "2"}}]})
    client_of(name).completion_model("m").completion_request("and now?").messages(_tool_turn_history()) \
        .tool(TOOL).send()
    assistant = [m for m in sent_json(mocked)["messages"] if m["role"] == "assistant"]
    assert assistant == [{"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "add", "arguments": '{"a":2}'}}]}]


def test_assistant_text_beside_tool_calls_is_kept(mocked: responses.RequestsMock) -> None:
    mocked.add(responses.POST, LLAMACPP, json={
        "id": "x", "model": "m", "choices": [{"index": 0, "finish_reason": "stop",
                                              "message": {"role": "assistant", "content": "2"}}]})
    history = [Message.user("add 2"), Message.assistant(["Let me add.", ToolCall("call_1", "add", {"a": 2})]),
               Message.tool_result("call_1", "2")]
    client_of("llamacpp").completion_model("m").completion_request("ok").messages(history).tool(TOOL).send()
    (assistant,) = [m for m in sent_json(mocked)["messages"] if m["role"] == "assistant"]
    assert assistant["content"] == "Let me add."


# --- a stream that fails: llama.cpp's `error:` line, or nothing at all ------------------------------------

# Early-2025 llama-server (examples/server/server.cpp, handle_completions_impl) fails a stream by
# writing `server_sent_event(sink, "error", error_data)` — an `error: {json}` line, not `data:` —
# then `data: [DONE]`; error_data is format_error_response's {"code", "message", "type"}.
LLAMA_ERROR_LINE = (b'error: {"code":500,"message":"Failed to parse tool call arguments as JSON",'
                    b'"type":"server_error"}\n\n')
# Current llama-server (tools/server, format_oai_sse(json {{"error", ...}})) sends it as data and stops.
LLAMA_ERROR_DATA = {"error": {"code": 500, "message": "Failed to parse tool call arguments as JSON",
                              "type": "server_error"}}


def test_llamacpp_error_line_then_done_is_a_stream_error(mocked: responses.RequestsMock) -> None:
    with pytest.raises(StreamError, match=r"llamacpp.*Failed to parse tool call arguments") as info:
        stream(mocked, LLAMACPP, sse(LLAMA_ERROR_LINE), "llamacpp")
    assert info.value.provider == "llamacpp"


def test_llamacpp_error_line_after_text_is_a_stream_error(mocked: responses.RequestsMock) -> None:
    with pytest.raises(StreamError, match="Failed to parse tool call arguments"):
        stream(mocked, LLAMACPP, sse(LLAMA_TEXT, LLAMA_ERROR_LINE), "llamacpp")


def test_llamacpp_error_data_is_a_stream_error(mocked: responses.RequestsMock) -> None:
    with pytest.raises(StreamError, match="Failed to parse tool call arguments"):
        stream(mocked, LLAMACPP, sse(LLAMA_TEXT, LLAMA_ERROR_DATA, done=False), "llamacpp")


# llama-server b4875 started with --no-context-shift answers an over-long streamed prompt with a 200
# whose stream is this line, then [DONE] (seen by `make interop` against llama-cpp-python 0.3.8).
LLAMA_OVERFLOW_LINE = (b'error: {"code":400,"message":"the request exceeds the available context size. try increasing '
                       b'the context size or enable context shift","type":"invalid_request_error"}\n\n')


@pytest.mark.parametrize("events", [(LLAMA_OVERFLOW_LINE,), (json.loads(LLAMA_OVERFLOW_LINE[7:]),)],
                         ids=["error-line", "error-data"])
def test_llamacpp_context_overflow_in_a_stream_is_context_window_exceeded(
        events: tuple[Any, ...], mocked: responses.RequestsMock) -> None:
    """Streamed, as unstreamed: the same error class for the same mistake."""
    data = events if isinstance(events[0], bytes) else ({"error": events[0]},)
    with pytest.raises(ContextWindowExceededError, match="exceeds the available context size") as info:
        stream(mocked, LLAMACPP, sse(*data), "llamacpp")
    assert info.value.provider == "llamacpp" and info.value.status_code == 400 and not info.value.is_retryable()


@pytest.mark.parametrize("name", ["openai", "llamacpp", "groq"])
def test_a_stream_with_nothing_in_it_is_an_error(name: str, mocked: responses.RequestsMock) -> None:
    base = ROWS[name].base_url if name in ROWS else "https://api.openai.com/v1"
    with pytest.raises(StreamError, match="no content, no tool call and no finish reason"):
        stream(mocked, base + "/chat/completions", sse(), name)


def test_an_empty_answer_with_a_finish_reason_still_stands(mocked: responses.RequestsMock) -> None:
    chunks = stream(mocked, LLAMACPP, sse(LLAMA_STOP, LLAMA_USAGE), "llamacpp")
    assert chunks[-1].response.finish_reason == "stop" and chunks[-1].response.choice == ()


# --- named tool choice where the server cannot force one tool ------------------------------------------


def test_llamacpp_named_tool_choice_sends_required_with_only_that_tool(mocked: responses.RequestsMock) -> None:
    # llama-server takes tool_choice as a string only ("auto", "none", "required"); an object is
    # logged as "Wrong type supplied for parameter 'tool_choice'" and read as "auto".
    stream(mocked, LLAMACPP, sse(LLAMA_STOP), "llamacpp", tools=[OTHER, TOOL], tool_choice=ToolChoice.tool("add"))
    sent = sent_json(mocked)
    assert sent["tool_choice"] == "required"
    assert [t["function"]["name"] for t in sent["tools"]] == ["add"]


def test_openai_named_tool_choice_is_sent_as_named(mocked: responses.RequestsMock) -> None:
    stream(mocked, "https://api.openai.com/v1/chat/completions", sse(LLAMA_STOP), "openai",
           tools=[OTHER, TOOL], tool_choice=ToolChoice.tool("add"))
    sent = sent_json(mocked)
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "add"}}
    assert [t["function"]["name"] for t in sent["tools"]] == ["mul", "add"]


def test_named_tool_choice_of_an_unknown_tool_is_refused() -> None:
    model = client_of("llamacpp").completion_model("m")
    with pytest.raises(InvalidRequestError, match=r"'sub'.*not among"):
        model.completion_request("hi").tools([TOOL]).tool_choice(ToolChoice.tool("sub")).send()


def test_capability_table_says_which_providers_narrow_a_named_tool_choice(
        capsys: pytest.CaptureFixture[str]) -> None:
    from rig_sync.cli import main

    assert main(["providers"]) == 0
    rows = {line.split("|")[1].strip(): line.split("|")[4].split() for line in capsys.readouterr().out.splitlines()[2:]}
    assert rows["llamacpp"][-1] == "tools*" and rows["cohere"][-1] == "tools*"
    assert rows["openai"][-1] == "tools" and rows["mistral"][-1] == "tools"


# --- embeddings: the vectors are as long as `ndims` says ----------------------------------------------


def test_voyage_sends_output_dimension_and_checks_the_answer(mocked: responses.RequestsMock) -> None:
    mocked.add(responses.POST, "https://api.voyageai.com/v1/embeddings", json={
        "object": "list", "model": "voyage-3.5", "usage": {"total_tokens": 2},
        "data": [{"object": "embedding", "index": 0, "embedding": [0.01] * 1536}]})
    model = client_of("voyageai").embedding_model("voyage-3.5", ndims=256)
    assert model.ndims == 256
    with pytest.raises(ResponseDecodeError, match=r"256.*1536") as info:
        model.embed_text("hi")
    assert info.value.provider == "voyageai"
    assert sent_json(mocked)["output_dimension"] == 256


def test_voyage_vectors_of_the_asked_size_pass(mocked: responses.RequestsMock) -> None:
    mocked.add(responses.POST, "https://api.voyageai.com/v1/embeddings", json={
        "object": "list", "model": "voyage-3.5", "usage": {"total_tokens": 2},
        "data": [{"object": "embedding", "index": 0, "embedding": [0.01] * 256}]})
    assert len(client_of("voyageai").embedding_model("voyage-3.5", ndims=256).embed_text("hi").vec) == 256


def test_openai_dimensions_answer_of_the_wrong_size_is_an_error(mocked: responses.RequestsMock) -> None:
    mocked.add(responses.POST, "https://api.openai.com/v1/embeddings", json={
        "object": "list", "model": "text-embedding-3-small", "usage": {"prompt_tokens": 1, "total_tokens": 1},
        "data": [{"object": "embedding", "index": 0, "embedding": [0.5] * 1536}]})
    openai_model = client_of("openai").embedding_model("text-embedding-3-small", ndims=64)
    # OpenAI answers base64 when asked; a float list is read too.
    with pytest.raises(ResponseDecodeError, match=r"expected embedding vectors of 64 dimensions.*got 1536"):
        openai_model.embed_text("hi")


def test_vectors_of_mixed_sizes_are_an_error(mocked: responses.RequestsMock) -> None:
    # No size known before the first answer (together's model is not in the table): the first
    # vector sets it, and every other one must match.
    mocked.add(responses.POST, "https://api.together.xyz/v1/embeddings", json={
        "object": "list", "model": "m", "data": [
            {"object": "embedding", "index": 0, "embedding": [1.0, 0.0, 0.0]},
            {"object": "embedding", "index": 1, "embedding": [1.0, 0.0]}]})
    with pytest.raises(ResponseDecodeError, match=r"expected embedding vectors of 3 dimensions.*got 2"):
        client_of("together").embedding_model("BAAI/bge-base-en-v1.5").embed_texts(["x", "y"])
