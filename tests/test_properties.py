"""Hostile input: every response parser and stream framer, fed the real recorded payloads in
tests/fixtures mutated (fields dropped, types swapped, values emptied or made huge, events
dropped, duplicated or reordered, bytes cut or inserted, chunks split anywhere, other line ends).

The property everywhere: the outcome is a well-typed core value or a `RigError` — never another
exception, never a hang. Splitting chunks or changing line ends must not change the outcome at all.
Regressions found by these tests are kept as `@example`s.
"""

from __future__ import annotations

import copy
import faulthandler
import json
import math
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from typing import Any

import attrs
import pytest
import responses
from conftest import FIXTURES, load_bytes, load_fixture
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from rig_sync.completion import CompletionResponse, Usage
from rig_sync.embeddings import Embedding
from rig_sync.errors import RigError
from rig_sync.message import Reasoning, Text, ToolCall
from rig_sync.providers import (
    _anthropic_stream,
    _anthropic_wire,
    _cohere_chat,
    _gemini_chat,
    _ollama_chat,
    _openai_chat,
    _openai_responses,
    anthropic,
    cohere,
    gemini,
    mistral,
    ollama,
    openai,
    voyageai,
)
from rig_sync.providers._common import iter_ndjson
from rig_sync.sse import SSEEvent, iter_lines, iter_sse
from rig_sync.streaming import FinalResponse, ReasoningChunk, StreamChunk, TextChunk, ToolCallChunk

# No example database: nothing is written into the work tree; regressions live on as @example.
SETTINGS = settings(max_examples=120, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])
HUGE = "x" * 200_000


@pytest.fixture(autouse=True)
def no_hang() -> Iterator[None]:
    """A parser that loops forever fails the run with a traceback instead of hanging it."""
    faulthandler.dump_traceback_later(120, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


# --- what an outcome may be ---------------------------------------------------------------------------


def _check_usage(usage: Usage) -> None:
    assert isinstance(usage, Usage)
    for field in attrs.astuple(usage):  # a count, a cost, or None: not reported
        assert field is None or (type(field) in (int, float) and field >= 0), f"usage holds {field!r}"


def check_response(resp: object) -> None:
    assert isinstance(resp, CompletionResponse), f"parsed into {type(resp).__name__}"
    for part in resp.choice:
        assert isinstance(part, (Text, ToolCall, Reasoning)), f"a {type(part).__name__} in the answer"
    assert isinstance(resp.text, str)
    assert resp.finish_reason is None or isinstance(resp.finish_reason, str)
    assert resp.id is None or isinstance(resp.id, str)
    assert resp.model is None or isinstance(resp.model, str)
    _check_usage(resp.usage)


def check_chunks(chunks: list[StreamChunk]) -> None:
    assert chunks and isinstance(chunks[-1], FinalResponse), "a stream ended without its final response"
    for chunk in chunks[:-1]:
        if isinstance(chunk, (TextChunk, ReasoningChunk)):
            assert isinstance(chunk.text, str), f"{type(chunk).__name__} carries {chunk.text!r}"
        else:
            assert isinstance(chunk, ToolCallChunk), f"a {type(chunk).__name__} mid-stream"
            assert isinstance(chunk.tool_call, ToolCall)
    check_response(chunks[-1].response)


def outcome(fn: Callable[[], Any], check: Callable[[Any], None]) -> object:
    """`fn()` checked as a core value, or the RigError it raised; anything else fails the test."""
    try:
        value = fn()
    except RigError as err:
        return (type(err), str(err))
    check(value)
    return value


# --- mutating JSON ------------------------------------------------------------------------------------

LEAVES = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12), st.sampled_from(["", HUGE, "[DONE]"]),
)
VALUES = st.recursive(
    LEAVES, lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=8), kids, max_size=3),
    max_leaves=6,
)
OPS = ("drop", "swap", "empty", "huge", "wrap", "null")


def _slots(value: Any) -> Iterator[tuple[Any, Any]]:
    """(container, key) of every value inside `value`."""
    stack = [value]
    while stack:
        node = stack.pop()
        items: Iterable[tuple[Any, Any]] = (
            node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        )
        for key, child in items:
            yield node, key
            stack.append(child)


def _emptied(value: Any) -> Any:
    return type(value)() if isinstance(value, (str, list, dict, int, float)) else None


@st.composite
def mutated(draw: st.DrawFn, original: Any, values: st.SearchStrategy[Any] = VALUES) -> Any:
    """`original` (a parsed JSON value) with one to four random mutations, new values from `values`."""
    value = copy.deepcopy(original)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        slots = list(_slots(value))
        if not slots or draw(st.integers(min_value=0, max_value=40)) == 0:
            value = draw(values)  # the whole body replaced
            continue
        parent, key = draw(st.sampled_from(slots))
        op = draw(st.sampled_from(OPS))
        if op == "drop":
            del parent[key]
        elif op == "swap":
            parent[key] = draw(values)
        elif op == "empty":
            parent[key] = _emptied(parent[key])
        elif op == "huge":
            parent[key] = HUGE if not isinstance(parent[key], list) else parent[key] * 50
        elif op == "wrap":
            parent[key] = [parent[key]] if draw(st.booleans()) else {"value": parent[key]}
        else:
            parent[key] = None
    return value


def fixture_names(pattern: str) -> list[str]:
    """Fixture paths (relative to the fixtures directory) matching a glob."""
    names = sorted(str(p.relative_to(FIXTURES)) for p in FIXTURES.glob(pattern) if "requests" not in p.parts)
    assert names, f"no fixtures match {pattern!r}"
    return names


# --- non-streamed response parsers --------------------------------------------------------------------

PARSERS: dict[str, tuple[Callable[[Any, str], CompletionResponse], list[str]]] = {
    "openai chat": (_openai_chat.parse_chat_response,
                    fixture_names("openai/chat_completion.*.json") + fixture_names("openai/spec.chat.*.json")
                    + fixture_names("mistral/chat_completion.*.json")),
    "openai responses": (_openai_responses.parse_response,
                         fixture_names("openai/responses.*.json") + fixture_names("openai/spec.responses.*.json")),
    "anthropic": (_anthropic_wire.parse_message, fixture_names("anthropic/message.*.json")),
    "gemini": (_gemini_chat.parse_response,
               fixture_names("gemini/generate_content.*.json") + fixture_names("gemini/vertexai.*.json")),
    "cohere": (_cohere_chat.parse_chat_response, fixture_names("cohere/chat.v2.*.json")),
    "ollama": (_ollama_chat.parse_chat_response, ["ollama/api_chat.non_stream.json", "ollama/api_chat.with_tools.json",
                                                  "ollama/api_chat.structured_output.json"]),
}


@pytest.mark.parametrize("name", list(PARSERS))
def test_every_recorded_response_parses_or_raises_a_rig_error(name: str) -> None:
    parse, fixtures = PARSERS[name]
    parsed = [outcome(partial(parse, load_fixture(f), name), check_response) for f in fixtures]
    assert any(isinstance(p, CompletionResponse) for p in parsed)  # the baseline the mutations start from


@pytest.mark.parametrize("name", list(PARSERS))
@SETTINGS
@given(data=st.data())
def test_mutated_responses_parse_or_raise_a_rig_error(name: str, data: st.DataObject) -> None:
    parse, fixtures = PARSERS[name]
    body = data.draw(mutated(load_fixture(data.draw(st.sampled_from(fixtures)))))
    outcome(lambda: parse(body, name), check_response)


@pytest.mark.parametrize("name", list(PARSERS))
@pytest.mark.parametrize("body", [None, 0, 1.5, True, "text", "", [], {}, [{}], {"error": None}, {"error": [1]},
                                  {"choices": None, "candidates": None, "content": None, "message": None,
                                   "output": None}])
def test_bodies_of_the_wrong_shape_raise_a_rig_error(name: str, body: Any) -> None:
    parse, _ = PARSERS[name]
    outcome(lambda: parse(body, name), check_response)


# --- streams: framing + parser --------------------------------------------------------------------------


def _sse_frame(events: list[tuple[str | None, Any]], done: bool) -> bytes:
    out = b""
    for name, data in events:
        head = f"event: {name}\n".encode() if name else b""
        out += head + b"data: " + json.dumps(data).encode() + b"\n\n"
    return out + (b"data: [DONE]\n\n" if done else b"")


def _cohere_stream(name: str) -> bytes:
    return _sse_frame([(e["event"], e["data"]) for e in load_fixture(name)], done=False)


def _ollama_chat_stream(*names: str) -> bytes:
    return b"".join(json.dumps(load_fixture(n)).encode() + b"\n" for n in names)


StreamParser = Callable[[Iterable[bytes]], list[StreamChunk]]

STREAMS: dict[str, tuple[StreamParser, list[Callable[[], bytes]]]] = {
    "openai chat": (
        lambda chunks: list(_openai_chat.stream_chat(iter_sse(chunks), "openai")),
        [partial(load_bytes, n) for n in fixture_names("openai/chat_stream.*.sse")]
        + [lambda: _sse_frame([(None, c) for c in load_fixture("mistral/chat_stream.chunks.docs.json")], done=True)],
    ),
    "openai responses": (
        lambda chunks: list(_openai_responses.stream_response(iter_sse(chunks), "openai")),
        [lambda: load_bytes("openai/responses.stream.text.sse")],
    ),
    "anthropic": (
        lambda chunks: list(_anthropic_stream.stream_messages(iter_sse(chunks), "anthropic")),
        [partial(load_bytes, n) for n in fixture_names("anthropic/stream.*.sse")],
    ),
    "gemini": (
        lambda chunks: list(_gemini_chat.parse_stream(_gemini_chat.sse_events(chunks), "gemini")),
        [partial(load_bytes, n) for n in fixture_names("gemini/*.sse")],
    ),
    "cohere": (
        lambda chunks: list(_cohere_chat.stream_chat(iter_sse(chunks), "cohere")),
        [partial(_cohere_stream, n) for n in fixture_names("cohere/chat_stream.*.events.json")],
    ),
    "ollama": (
        lambda chunks: list(_ollama_chat.stream_chat(iter_ndjson(chunks, "ollama"), "ollama")),
        [lambda: _ollama_chat_stream("ollama/api_chat.stream_chunk.json", "ollama/api_chat.stream_chunk.json",
                                     "ollama/api_chat.stream_final.json"),
         lambda: _ollama_chat_stream("ollama/api_chat.stream_tools_chunk.json",
                                     "ollama/api_chat.stream_tools_final.json"),
         lambda: load_bytes("ollama/api_generate.stream.ndjson"),
         lambda: load_bytes("ollama/api_generate.stream_error_mid_stream.ndjson")],
    ),
}
STREAM_CASES = [(name, i) for name, (_, bodies) in STREAMS.items() for i in range(len(bodies))]


def parsed_or_rig_error(result: object) -> bool:
    """What `outcome` returns: a checked value, or (RigError subclass, message)."""
    if isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], type):
        return issubclass(result[0], RigError)
    return result is not None


def stream_outcome(name: str, chunks: Iterable[bytes]) -> object:
    parse, _ = STREAMS[name]
    return outcome(lambda: parse(chunks), check_chunks)


def stream_body(name: str, index: int) -> bytes:
    return STREAMS[name][1][index]()


@pytest.mark.parametrize(("name", "index"), STREAM_CASES)
def test_split_at_every_byte_boundary_changes_nothing(name: str, index: int) -> None:
    body = stream_body(name, index)
    whole = stream_outcome(name, [body])
    step = max(1, len(body) // 60)  # two-way splits spread over the body; the byte-at-a-time run covers the rest
    for cut in range(0, len(body) + 1, step):
        assert stream_outcome(name, [body[:cut], body[cut:]]) == whole, f"split at byte {cut}"
    assert stream_outcome(name, [body[i:i + 1] for i in range(len(body))]) == whole  # one byte at a time


@pytest.mark.parametrize(("name", "index"), STREAM_CASES)
@SETTINGS
@given(data=st.data())
def test_random_chunking_and_line_ends_change_nothing(name: str, index: int, data: st.DataObject) -> None:
    body = stream_body(name, index)
    whole = stream_outcome(name, [body])
    plain = body.replace(b"\r\n", b"\n")
    variant = data.draw(st.sampled_from([plain, plain.replace(b"\n", b"\r\n"), plain.replace(b"\n", b"\r")]))
    if name == "ollama" and variant.count(b"\r") and not variant.count(b"\n"):
        variant = plain  # NDJSON is split on line feeds only by some servers; a bare CR stream is not NDJSON
    cuts = sorted(data.draw(st.lists(st.integers(min_value=0, max_value=len(variant)), max_size=30)))
    chunks = [variant[a:b] for a, b in zip([0, *cuts], [*cuts, len(variant)], strict=True)]
    assert stream_outcome(name, chunks) == whole


def _data_lines(body: bytes) -> list[int]:
    """Indexes of the lines of `body` (split on "\\n") that carry one JSON value."""
    out = []
    for i, line in enumerate(body.split(b"\n")):
        payload = line[6:] if line.startswith(b"data: ") else line
        try:
            json.loads(payload)
        except ValueError:
            continue
        out.append(i)
    return out


@st.composite
def mangled_stream(draw: st.DrawFn, body: bytes) -> list[bytes]:
    """`body` with its events mutated, dropped, repeated or reordered, or its bytes cut or garbled,
    then split into random chunks."""
    lines = body.replace(b"\r\n", b"\n").split(b"\n")
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        targets = _data_lines(b"\n".join(lines))
        op = draw(st.sampled_from(("mutate", "mutate", "drop", "repeat", "swap", "cut", "insert")))
        if op in ("mutate", "drop", "repeat", "swap") and targets:
            i = draw(st.sampled_from(targets))
            line = lines[i]
            prefix = b"data: " if line.startswith(b"data: ") else b""
            if op == "mutate":
                value = draw(mutated(json.loads(line[len(prefix):])))
                lines[i] = prefix + json.dumps(value).encode()
            elif op == "drop":
                del lines[i]
            elif op == "repeat":
                lines.insert(i, line)
            else:
                j = draw(st.sampled_from(targets))
                lines[i], lines[j] = lines[j], lines[i]
        else:
            blob = b"\n".join(lines)
            at = draw(st.integers(min_value=0, max_value=len(blob)))
            if op == "cut":
                blob = blob[:at]
            else:
                blob = blob[:at] + draw(st.binary(min_size=1, max_size=16)) + blob[at:]
            lines = blob.split(b"\n")
    blob = b"\n".join(lines)
    cuts = sorted(draw(st.lists(st.integers(min_value=0, max_value=len(blob)), max_size=8)))
    return [blob[a:b] for a, b in zip([0, *cuts], [*cuts, len(blob)], strict=True)]


@pytest.mark.parametrize("name", list(STREAMS))
@SETTINGS
@given(data=st.data())
def test_mangled_streams_parse_or_raise_a_rig_error(name: str, data: st.DataObject) -> None:
    index = data.draw(st.integers(min_value=0, max_value=len(STREAMS[name][1]) - 1))
    chunks = data.draw(mangled_stream(stream_body(name, index)))
    assert parsed_or_rig_error(stream_outcome(name, chunks))


# Regressions the mutations found, kept as examples of narrower properties.


@SETTINGS
@given(arguments=VALUES)
@example(arguments=[1, 2])  # was AttributeError: 'list' object has no attribute 'strip'
@example(arguments={"a": 1})
@example(arguments='{"a": 1}')
def test_tool_call_arguments_of_any_type(arguments: Any) -> None:
    """Whatever the arguments, the answer stands: the call has an object, or keeps what came as text."""
    body = load_fixture("openai/chat_completion.tool_call_strict.json")
    body["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] = arguments
    result = outcome(lambda: _openai_chat.parse_chat_response(body, "openai"), check_response)
    assert isinstance(result, CompletionResponse)
    call = result.tool_calls[0]
    if isinstance(arguments, dict):
        assert (call.arguments, call.invalid_arguments) == (arguments, None)
    else:
        assert call.invalid_arguments is None or (call.arguments == {} and isinstance(call.invalid_arguments, str))


def _responses_events(*events: dict[str, Any]) -> bytes:
    final = {"type": "response.completed", "response": load_fixture("openai/responses.text.json")}
    return _sse_frame([(e["type"], e) for e in (*events, final)], done=False)


@SETTINGS
@given(delta=VALUES, kind=st.sampled_from(["response.output_text.delta", "response.reasoning_summary_text.delta"]))
@example(delta={"value": "Hello"}, kind="response.output_text.delta")  # was a TextChunk carrying a dict
def test_responses_stream_deltas_of_any_type(delta: Any, kind: str) -> None:
    body = _responses_events({"type": kind, "delta": delta})
    assert parsed_or_rig_error(stream_outcome("openai responses", [body]))


@SETTINGS
@given(response=VALUES)
@example(response=None)  # was AttributeError: 'NoneType' object has no attribute 'get'
@example(response=[{"error": "x"}])
def test_responses_stream_failure_events_of_any_shape(response: Any) -> None:
    body = _sse_frame([("response.failed", {"type": "response.failed", "response": response})], done=False)
    assert isinstance(stream_outcome("openai responses", [body]), tuple)  # always an error, never an answer


@SETTINGS
@given(usage=VALUES)
@example(usage="str")  # was TypeError: 'str' object is not a mapping (merged with the delta's usage)
@example(usage={"input_tokens": 3})
def test_anthropic_stream_start_usage_of_any_shape(usage: Any) -> None:
    def event(data: dict[str, Any]) -> tuple[str, Any]:
        return data["type"], data

    body = _sse_frame([
        event({"type": "message_start", "message": {"id": "msg_1", "model": "claude", "content": [], "usage": usage}}),
        event({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 2}}),
        event({"type": "message_stop"}),
    ], done=False)
    result = stream_outcome("anthropic", [body])
    if isinstance(usage, dict) and usage == {"input_tokens": 3}:
        assert isinstance(result, list) and result[-1].response.usage.input_tokens == 3


@SETTINGS
@given(block=VALUES, error=VALUES)
@example(block={"type": "text", "text": 5}, error={"type": "overloaded_error"})  # was a TextChunk carrying 5
@example(block={"type": "text", "text": ""}, error={"type": ["overloaded_error"]})  # was unhashable type: 'list'
def test_anthropic_stream_blocks_and_error_events_of_any_shape(block: Any, error: Any) -> None:
    start = {"type": "message_start", "message": {"id": "msg_1", "model": "claude", "content": []}}
    body = _sse_frame([("message_start", start),
                       ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": block}),
                       ("error", {"type": "error", "error": error})], done=False)
    assert isinstance(stream_outcome("anthropic", [body]), tuple)  # always an error, never an answer


# --- the framers themselves -----------------------------------------------------------------------------


def _events(chunks: Iterable[bytes]) -> list[SSEEvent]:
    return list(iter_sse(chunks))


@SETTINGS
@given(body=st.binary(max_size=600), cuts=st.lists(st.integers(min_value=0, max_value=600), max_size=20))
@example(body=b"\xef\xbb\xbfdata: x\r\n\r\n", cuts=[1, 2])  # a byte order mark split across chunks
@example(body=b"data: a\r", cuts=[8])  # a CR at a chunk end, its LF never coming
def test_framers_never_raise_and_ignore_chunking(body: bytes, cuts: list[int]) -> None:
    bounded = sorted(min(c, len(body)) for c in cuts)
    chunks = [body[a:b] for a, b in zip([0, *bounded], [*bounded, len(body)], strict=True)]
    assert _events(chunks) == _events([body])
    assert list(iter_lines(chunks)) == list(iter_lines([body]))
    assert list(_gemini_chat.sse_events(chunks)) == list(_gemini_chat.sse_events([body]))
    for event in _events(chunks):
        assert isinstance(event.data, str)
    try:
        values = list(iter_ndjson(chunks, "ollama"))
    except RigError:
        return
    assert len(values) <= body.count(b"\n") + body.count(b"\r") + 1


@SETTINGS
@given(lines=st.lists(st.text(alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\r\n"),
                              max_size=30), max_size=20),
       ending=st.sampled_from(["\n", "\r\n", "\r"]))
def test_iter_lines_returns_the_lines_whatever_the_line_end(lines: list[str], ending: str) -> None:
    body = "".join(line + ending for line in lines).encode()
    assert [line.decode() for line in iter_lines([body])] == lines


# --- embeddings, through the public model API ------------------------------------------------------------

EMBEDDERS: dict[str, tuple[Callable[[], Any], str, list[str]]] = {
    "openai": (lambda: openai.Client("sk-test").embedding_model("text-embedding-3-small"),
               "https://api.openai.com/v1/embeddings",
               ["openai/embeddings.single_base64.json", "openai/embeddings.multiple_dimensions_base64.json"]),
    "mistral": (lambda: mistral.Client("test-key").embedding_model("mistral-embed"),
                "https://api.mistral.ai/v1/embeddings", ["mistral/embeddings.spec_example.json"]),
    "cohere": (lambda: cohere.Client("test-key").embedding_model("embed-english-v3.0"),
               "https://api.cohere.com/v2/embed", ["cohere/embed.v2.texts_float.json"]),
    "ollama": (lambda: ollama.Client().embedding_model("nomic-embed-text"), "http://localhost:11434/api/embed",
               ["ollama/api_embed.single.json", "ollama/api_embed.multiple.json"]),
    "voyage": (lambda: voyageai.Client("test-key").embedding_model("voyage-3"),
               "https://api.voyageai.com/v1/embeddings", ["voyage/embeddings.spec_example.ELIDED.json"]),
}


def _vector_count(body: Any) -> int:
    for key in ("data", "embeddings"):
        value = body.get(key)
        if isinstance(value, list):
            return len(value)
        if isinstance(value, dict) and isinstance(value.get("float"), list):
            return len(value["float"])
    return 1


def check_embeddings(result: object) -> None:
    assert isinstance(result, list)
    for item in result:
        assert isinstance(item, Embedding)
        assert isinstance(item.vec, list) and all(isinstance(v, float) for v in item.vec)


def embed_outcome(name: str, body: Any, count: int) -> object:
    factory, url, _ = EMBEDDERS[name]
    model = factory()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add("POST", url, body=json.dumps(body), content_type="application/json")
        return outcome(lambda: model.embed_texts([f"text {i}" for i in range(count)]), check_embeddings)


@pytest.mark.parametrize("name", list(EMBEDDERS))
def test_recorded_embeddings_decode_or_raise_a_rig_error(name: str) -> None:
    fixtures = EMBEDDERS[name][2]
    results = [embed_outcome(name, load_fixture(f), _vector_count(load_fixture(f))) for f in fixtures]
    if name != "voyage":  # Voyage's only example elides its vectors with "..." strings
        assert any(isinstance(r, list) for r in results)


@pytest.mark.parametrize("name", list(EMBEDDERS))
@settings(SETTINGS, max_examples=60)
@given(data=st.data())
def test_mutated_embeddings_decode_or_raise_a_rig_error(name: str, data: st.DataObject) -> None:
    original = load_fixture(data.draw(st.sampled_from(EMBEDDERS[name][2])))
    assert parsed_or_rig_error(embed_outcome(name, data.draw(mutated(original)), _vector_count(original)))


def test_the_mutator_really_mutates() -> None:
    original = load_fixture("openai/chat_completion.text.json")

    @settings(max_examples=30, deadline=None, database=None)
    @given(mutated(original))
    def run(value: Any) -> None:
        seen.append(value != original)

    seen: list[bool] = []
    run()
    assert sum(seen) >= 20  # "null" of a null field or "empty" of an empty one may leave it equal


def test_data_lines_finds_json_events_and_ndjson_lines() -> None:
    assert _data_lines(b'data: {"a": 1}\n\nevent: x\ndata: [DONE]\n{"b": 2}') == [0, 4]


# --- through the transport: hostile values and headers -----------------------------------------------------
# Every provider's parser, sent and streamed, behind the real HTTP stack (`responses` answering its URL):
# the recorded shapes carrying values a broken or hostile server may send, with any status and headers.

DEEP, NEST, BIG = "\x00deep", "\x00nest", "\x00big"  # stand-ins for JSON text `json.dumps` cannot write
HOSTILE_LEAVES = st.one_of(
    LEAVES,
    st.sampled_from([math.nan, math.inf, -math.inf, -5, -1, 1.5, 2**64, 10**30, 1e308, True, "\ud83d", "a\udfffb",
                     "-5", "NaN", DEEP, NEST, BIG]),
)
HOSTILE = st.recursive(
    HOSTILE_LEAVES, lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=8), kids, max_size=3),
    max_leaves=6,
)


def hostile_json(value: Any) -> bytes:
    """`value` as JSON (NaN and infinities as Python writes them, lone surrogates escaped), its stand-ins
    replaced: JSON nested too deep to decode, nested deep but readable, a number past a double."""
    text = json.dumps(value)
    text = text.replace(json.dumps(DEEP), "[" * 100_000).replace(json.dumps(NEST), "[" * 400 + "]" * 400)
    return text.replace(json.dumps(BIG), "1e400").encode()


HEADER_NAMES = ["Retry-After", "retry-after-ms", "x-should-retry", "x-request-id", "request-id", "Content-Type",
                "x-ratelimit-remaining-requests", "x-ratelimit-reset-tokens", "anthropic-ratelimit-tokens-reset"]
HEADER_VALUES = st.one_of(
    st.sampled_from(["nan", "inf", "-inf", "-5", "1e400", "99999999999999999999", "", " ", "0", "true",
                     "Wed, 99 Foo 0000 25:61:61 GMT", "1.5", "text/html", "application/json; charset=utf-16"]),
    st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=24),
)
STATUSES = st.sampled_from([200, 200, 200, 200, 400, 401, 404, 408, 429, 500, 503])

BASE = "http://127.0.0.1:9"
KEY = "sk-hostile-0123456789abcdef"
GEMINI_MODEL = f"{BASE}/v1beta/models/gemini-2.0-flash"

# name -> (URL, the model it is sent to, the content type a stream answers with)
TRANSPORTED: dict[str, tuple[str, Callable[[], Any], str]] = {
    "openai chat": (f"{BASE}/v1/chat/completions", lambda: openai.Client(KEY, base_url=f"{BASE}/v1", max_retries=0)
                    .completion_model("gpt-4o-mini"), "text/event-stream"),
    "openai responses": (f"{BASE}/v1/responses", lambda: openai.Client(KEY, base_url=f"{BASE}/v1", max_retries=0)
                         .responses_model("gpt-4o"), "text/event-stream"),
    "anthropic": (f"{BASE}/v1/messages", lambda: anthropic.Client(KEY, base_url=BASE, max_retries=0)
                  .completion_model("claude-haiku-4-5"), "text/event-stream"),
    "gemini": (GEMINI_MODEL, lambda: gemini.Client(KEY, base_url=BASE, max_retries=0)
               .completion_model("gemini-2.0-flash"), "text/event-stream"),
    "cohere": (f"{BASE}/v2/chat", lambda: cohere.Client(KEY, base_url=BASE, max_retries=0)
               .completion_model("command-r"), "text/event-stream"),
    "ollama": (f"{BASE}/api/chat", lambda: ollama.Client(base_url=BASE, max_retries=0).completion_model("llama3"),
               "application/x-ndjson"),
}
TRANSPORT_SETTINGS = settings(SETTINGS, max_examples=40)


@st.composite
def hostile_headers(draw: st.DrawFn) -> dict[str, str]:
    return draw(st.dictionaries(st.sampled_from(HEADER_NAMES), HEADER_VALUES, max_size=4))


def served(url: str, status: int, body: bytes, content_type: str, headers: dict[str, str],
           call: Callable[[], Any], check: Callable[[Any], None]) -> object:
    headers = {k: v for k, v in headers.items() if k.lower() != "content-type"} | {
        "Content-Type": headers.get("Content-Type", content_type)}
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add("POST", url, body=body, status=status, headers=headers)
        return outcome(call, check)


@pytest.mark.parametrize("name", list(TRANSPORTED))
@TRANSPORT_SETTINGS
@given(data=st.data())
def test_hostile_answers_through_the_transport_parse_or_raise_a_rig_error(name: str, data: st.DataObject) -> None:
    url, model, _ = TRANSPORTED[name]
    body = data.draw(mutated(load_fixture(data.draw(st.sampled_from(PARSERS[name][1]))), HOSTILE))
    send = model().completion_request("hi").send
    url = f"{url}:generateContent" if name == "gemini" else url
    assert parsed_or_rig_error(served(url, data.draw(STATUSES), hostile_json(body), "application/json",
                                      data.draw(hostile_headers()), send, check_response))


@st.composite
def hostile_stream(draw: st.DrawFn, body: bytes) -> bytes:
    """`body` (SSE or NDJSON) with one to three of its JSON values mutated with hostile values."""
    lines = body.replace(b"\r\n", b"\n").split(b"\n")
    targets = _data_lines(body.replace(b"\r\n", b"\n"))
    for i in draw(st.lists(st.sampled_from(targets), min_size=1, max_size=3, unique=True)) if targets else []:
        prefix = b"data: " if lines[i].startswith(b"data: ") else b""
        lines[i] = prefix + hostile_json(draw(mutated(json.loads(lines[i][len(prefix):]), HOSTILE)))
    return b"\n".join(lines)


@pytest.mark.parametrize("name", list(TRANSPORTED))
@TRANSPORT_SETTINGS
@given(data=st.data())
def test_hostile_streams_through_the_transport_parse_or_raise_a_rig_error(name: str, data: st.DataObject) -> None:
    url, model, content_type = TRANSPORTED[name]
    bodies = STREAMS[name][1]
    body = data.draw(hostile_stream(bodies[data.draw(st.integers(min_value=0, max_value=len(bodies) - 1))]()))
    url = f"{url}:streamGenerateContent" if name == "gemini" else url

    def read() -> list[StreamChunk]:
        with model().completion_request("hi").stream() as stream:
            return list(stream)

    assert parsed_or_rig_error(served(url, data.draw(STATUSES), body, content_type, data.draw(hostile_headers()),
                                      read, check_chunks))


@pytest.mark.parametrize("name", list(EMBEDDERS))
@TRANSPORT_SETTINGS
@given(data=st.data())
def test_hostile_embeddings_through_the_transport_decode_or_raise_a_rig_error(name: str, data: st.DataObject) -> None:
    factory, url, fixtures = EMBEDDERS[name]
    original = load_fixture(data.draw(st.sampled_from(fixtures)))
    body = hostile_json(data.draw(mutated(original, HOSTILE)))
    texts = [f"text {i}" for i in range(_vector_count(original))]
    assert parsed_or_rig_error(served(url, data.draw(STATUSES), body, "application/json", data.draw(hostile_headers()),
                                      lambda: factory().embed_texts(texts), check_embeddings))
