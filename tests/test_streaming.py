"""StreamingCompletionResponse over a plain generator, and the tool-call assembler."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from rig_sync.completion import CompletionResponse, Usage
from rig_sync.errors import ResponseDecodeError, RigError, StreamError
from rig_sync.message import Text, ToolCall
from rig_sync.providers import openai
from rig_sync.streaming import (
    FinalResponse,
    ReasoningChunk,
    StreamChunk,
    StreamingCompletionResponse,
    TextChunk,
    ToolCallAssembler,
    ToolCallChunk,
    parse_tool_call,
)
from rig_sync.testing import FakeProvider, Reply

FINAL = CompletionResponse((Text("Hello world"),), Usage(3, 2, 5), finish_reason="stop")


class Source:
    """A chunk generator that records how far it was read and whether its `finally` ran."""

    def __init__(self, chunks: list[StreamChunk]) -> None:
        self.chunks = chunks
        self.produced = 0
        self.finalized = False

    def __call__(self) -> Iterator[StreamChunk]:
        try:
            for chunk in self.chunks:
                self.produced += 1
                yield chunk
        finally:
            self.finalized = True


def hello_chunks() -> list[StreamChunk]:
    return [ReasoningChunk("hm"), TextChunk("Hello"), TextChunk(" world"), FinalResponse(FINAL)]


def stream_of(source: Source) -> StreamingCompletionResponse:
    return StreamingCompletionResponse(source(), "test")


def test_chunks_pass_through_in_order_and_response_is_set_after() -> None:
    stream = stream_of(Source(hello_chunks()))
    assert list(stream) == hello_chunks()
    assert stream.response is FINAL
    assert stream.text == "Hello world"
    assert stream.response.usage == Usage(3, 2, 5)


def test_response_before_iteration_drains_the_stream() -> None:
    source = Source(hello_chunks())
    stream = stream_of(source)
    assert source.produced == 0  # nothing read until asked
    assert stream.response is FINAL
    assert source.produced == 4 and source.finalized


def test_response_mid_iteration_reads_the_rest() -> None:
    source = Source(hello_chunks())
    stream = stream_of(source)
    it = iter(stream)
    assert next(it) == ReasoningChunk("hm")
    assert stream.text == "Hello world"
    assert source.produced == 4
    assert list(it) == []  # the rest was consumed by .response


def test_text_stream_yields_only_text() -> None:
    stream = stream_of(Source(hello_chunks()))
    assert list(stream.text_stream()) == ["Hello", " world"]
    assert stream.response is FINAL


def test_a_stream_without_final_response_raises_stream_error() -> None:
    stream = stream_of(Source([TextChunk("Hel"), TextChunk("lo")]))
    seen: list[StreamChunk] = []
    with pytest.raises(StreamError, match="before the provider finished") as info:
        for chunk in stream:
            seen.append(chunk)
    assert seen == [TextChunk("Hel"), TextChunk("lo")]  # what did arrive was passed on first
    assert isinstance(info.value, RigError) and info.value.provider == "test"
    with pytest.raises(StreamError):
        _ = stream.response  # and it stays an error: a cut-off stream never passes for a short answer


def test_response_of_a_cut_off_stream_raises() -> None:
    with pytest.raises(StreamError):
        _ = stream_of(Source([TextChunk("x")])).text


def test_with_block_closes_the_generator_early() -> None:
    source = Source(hello_chunks())
    with stream_of(source) as stream:
        first = next(iter(stream))
        assert first == ReasoningChunk("hm")
        assert not source.finalized
    assert source.finalized  # the generator's finally ran: its connection would be released
    assert source.produced == 1
    with pytest.raises(StreamError, match="closed"):
        _ = stream.response


def test_close_before_reading_runs_nothing_and_is_idempotent() -> None:
    source = Source(hello_chunks())
    stream = stream_of(source)
    stream.close()
    stream.close()
    assert source.produced == 0
    with pytest.raises(StreamError, match="closed"):
        list(stream)  # a closed stream has no more chunks and no answer
    with pytest.raises(StreamError):
        _ = stream.response


def test_an_error_inside_the_generator_propagates() -> None:
    def broken() -> Iterator[StreamChunk]:
        yield TextChunk("a")
        raise StreamError("provider said no", provider="test")

    stream = StreamingCompletionResponse(broken(), "test")
    with pytest.raises(StreamError, match="provider said no"):
        list(stream)


def test_a_list_of_chunks_is_read_once() -> None:
    stream = StreamingCompletionResponse(hello_chunks(), "test")
    assert len(list(stream)) == 4
    assert list(stream) == []  # one pass, as with a network stream
    assert stream.response is FINAL


# --- ToolCallAssembler ------------------------------------------------------------------------------


def test_interleaved_deltas_for_several_calls_assemble_in_order() -> None:
    calls = ToolCallAssembler("test")
    assert not calls
    calls.add(0, id="call_a", name="get_weather", arguments='{"ci')
    calls.add(1, id="call_b", name="get_time")
    calls.add(0, arguments='ty": "Par')
    calls.add(1, arguments='{"tz": ')
    calls.add(2, id="call_c", name="noop", call_id="fc_c")
    calls.add(0, arguments='is"}')
    calls.add(1, arguments='"UTC"}')
    assert calls
    assert calls.finish() == [
        ToolCall("call_a", "get_weather", {"city": "Paris"}),
        ToolCall("call_b", "get_time", {"tz": "UTC"}),
        ToolCall("call_c", "noop", {}, "fc_c"),
    ]
    assert not calls  # finished calls are handed out once


def test_later_deltas_do_not_rename_a_call() -> None:
    calls = ToolCallAssembler("test")
    calls.add("k", id="c1", name="first")
    calls.add("k", name="second", arguments="{}")
    assert calls.finish() == [ToolCall("c1", "first", {})]


def test_invalid_json_arguments_are_kept_as_sent() -> None:
    """The model's mistake, not a broken answer: the call stands, its text kept for the agent."""
    calls = ToolCallAssembler("test")
    calls.add(0, id="c", name="f", arguments='{"a": ')
    assert calls.finish() == [ToolCall("c", "f", {}, invalid_arguments='{"a": ')]


@pytest.mark.parametrize(("arguments", "kept"), [
    ("[1, 2]", "[1, 2]"), ('"x"', '"x"'), ("3", "3"), ("[" * 100_000, "[" * 100_000),
    ([1, 2], "[1,2]"), (True, "true"), ("text", "text"),
])
def test_non_object_arguments_are_kept_as_text(arguments: Any, kept: str) -> None:
    assert parse_tool_call("c", "f", arguments, "test") == ToolCall("c", "f", {}, invalid_arguments=kept)


@pytest.mark.parametrize("empty", ["", "   ", None, "null", " null "])
def test_empty_arguments_are_an_empty_object(empty: str | None) -> None:
    assert parse_tool_call("c", "f", empty, "test") == ToolCall("c", "f", {})
    calls = ToolCallAssembler("test")
    calls.add(0, id="c", name="f", arguments=empty)
    assert calls.finish() == [ToolCall("c", "f", {})]


def test_arguments_already_decoded_are_kept() -> None:
    assert parse_tool_call("c", "f", {"x": 1}, "test").arguments == {"x": 1}


def test_a_call_that_never_got_a_name_is_a_decode_error() -> None:
    calls = ToolCallAssembler("test")
    calls.add(0, id="c", arguments="{}")
    with pytest.raises(ResponseDecodeError, match="function name"):
        calls.finish()


def test_tool_call_chunks_carry_whole_calls() -> None:
    call = ToolCall("c", "f", {"a": 1})
    final = CompletionResponse((call,))
    stream = StreamingCompletionResponse(iter([ToolCallChunk(call), FinalResponse(final)]), "test")
    assert [c.tool_call for c in stream if isinstance(c, ToolCallChunk)] == [call]
    assert stream.response.tool_calls == [call]


# --- against the loopback server --------------------------------------------------------------------


def test_leaving_a_with_block_early_releases_the_connection() -> None:
    with FakeProvider() as fake:
        fake.script(Reply.text("word " * 200))
        # One pooled connection: if the early exit leaked it, the next request would wait forever.
        client = openai.ClientBuilder(fake.api_key).base_url(fake.base_url).pool_size(1).timeout(5).build()
        model = client.completion_model("gpt-4o")
        with model.completion_request("talk").stream() as stream:
            first = next(iter(stream))
            assert isinstance(first, TextChunk)
        with pytest.raises(StreamError, match="closed"):
            _ = stream.response

        answers: list[str] = []
        follow_up = threading.Thread(target=lambda: answers.append(model.completion_request("again").send().text),
                                     daemon=True)
        follow_up.start()
        follow_up.join(timeout=10)
        assert not follow_up.is_alive(), "the streamed connection was never given back to the pool"
        assert answers and answers[0]


# --- readable reprs ----------------------------------------------------------------------------------------


def test_the_repr_follows_the_stream_from_not_started_to_finished() -> None:
    stream = StreamingCompletionResponse(Source(hello_chunks())(), "openai", model="gpt-4o-mini")
    assert repr(stream) == ("StreamingCompletionResponse(provider='openai', model='gpt-4o-mini', "
                            "state='not started', chunks=0, text='')")
    pieces = iter(stream)
    next(pieces), next(pieces)
    assert stream.state == "streaming"
    assert "state='streaming', chunks=2, text='Hello'" in repr(stream)
    assert stream.text == "Hello world"
    assert "state='finished', chunks=4, text='Hello world'" in repr(stream)


def test_the_repr_says_closed_and_shows_a_short_excerpt_of_a_long_text() -> None:
    long = [TextChunk("word " * 40), FinalResponse(FINAL)]
    stream = StreamingCompletionResponse(iter(long), "test")
    next(iter(stream))
    stream.close()
    shown = repr(stream)
    assert "state='closed'" in shown and "chunks=1" in shown and "model=None" in shown
    assert "…'" in shown and len(shown) < 200


def test_the_model_falls_back_to_the_final_responses() -> None:
    final = CompletionResponse((Text("hi"),), model="m-2024")
    stream = StreamingCompletionResponse(iter([TextChunk("hi"), FinalResponse(final)]), "test")
    assert stream.response is final and stream.model == "m-2024"


def test_a_live_stream_and_its_http_answer_read_well_and_hide_the_key() -> None:
    key = "sk-repr-secret-31337"
    with FakeProvider(require_key=key) as fake:
        client = openai.Client(key, base_url=fake.base_url, max_retries=0)
        stream = client.completion_model("gpt-4o-mini").completion_request("say hi").stream()
        assert stream.state == "not started" and "model='gpt-4o-mini'" in repr(stream)
        assert "".join(stream.text_stream()) == "echo: say hi"
        assert repr(stream) == ("StreamingCompletionResponse(provider='openai', model='gpt-4o-mini', "
                                "state='finished', chunks=4, text='echo: say hi')")  # 3 words and the final
        assert key not in repr(stream)

        http = client.transport.stream("POST", "/chat/completions", model="gpt-4o-mini", json={
            "model": "gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "x"}]})
        with http:
            assert repr(http) == ("StreamResponse(provider='openai', model='gpt-4o-mini', status=200, "
                                  "request_id='req_2', state='not started', chunks=0)")
            next(http.chunks())
            assert "state='streaming', chunks=1" in repr(http)
            http.finish()
            assert http.state == "finished"
        assert key not in repr(http)
        closed = client.transport.stream("POST", "/chat/completions", json={
            "model": "m", "stream": True, "messages": [{"role": "user", "content": "x"}]})
        closed.close()
        assert closed.state == "closed" and "model=None" in repr(closed)
