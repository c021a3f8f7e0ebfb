"""Provider differences are values (issue 14): an OpenAI-compatible provider's chat deviations are
one frozen `ChatDialect`, carried by its row (`CompatProvider.dialect`), by its client class
(`chat_dialect`) and read once by the chat model; a new deviation is a new value, not new code.

The wire checks send through the public API to the loopback `FakeProvider` and read what it got.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import attrs
import pytest

from rig_sync.client import CompletionClient, ProviderClient
from rig_sync.client.capabilities import matrix_letters
from rig_sync.completion import ToolChoice, ToolDefinition
from rig_sync.errors import StreamError, UnsupportedFeature
from rig_sync.message import Audio, Message, Text
from rig_sync.providers import azure, llamacpp, mira, mistral, openai, perplexity
from rig_sync.providers._compat import ROWS, CompatProvider, client_class
from rig_sync.providers._openai_chat import OPENAI_DIALECT, OPENAI_PARTS, ChatCompletionsModel, ChatDialect, PartDialect
from rig_sync.streaming import FinalResponse
from rig_sync.testing import FakeProvider, Reply

ADD = ToolDefinition("add", "Add two numbers", {"type": "object", "properties": {"a": {"type": "number"}}})
MUL = ToolDefinition("mul", "Multiply two numbers", {"type": "object", "properties": {"a": {"type": "number"}}})
PROVIDERS = Path(__file__).resolve().parent.parent / "rig_sync" / "providers"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeProvider]:
    with FakeProvider() as server:
        yield server


@pytest.fixture(autouse=True)
def _reset(fake: FakeProvider) -> None:
    fake.reset()


def on_fake(cls: type[Any], fake: FakeProvider) -> Any:
    return cls(fake.api_key, base_url=fake.base_url, timeout=5, max_retries=0)


def sent(fake: FakeProvider) -> Any:
    assert fake.last_request is not None
    return fake.last_request.json


def sse(*events: Any) -> bytes:
    return b"".join(b"data: " + json.dumps(event).encode() + b"\n\n" for event in events)


def chunk(content: str, finish: str | None = None, obj: str = "chat.completion.chunk") -> dict[str, Any]:
    return {"id": "c1", "model": "m", "object": obj,
            "choices": [{"index": 0, "finish_reason": finish, "delta": {"role": "assistant", "content": content}}]}


# --- the value ----------------------------------------------------------------------------------


def test_the_dialect_is_a_frozen_hashable_value() -> None:
    assert ChatDialect() == OPENAI_DIALECT and hash(ChatDialect()) == hash(OPENAI_DIALECT)
    any_word = ChatDialect(required_tool_choice="any")
    assert len({OPENAI_DIALECT, ChatDialect(), any_word, ChatDialect(required_tool_choice="any")}) == 2
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        any_word.stream_usage = False  # type: ignore[misc]
    evolved = attrs.evolve(any_word, stream_usage=False)
    assert (evolved.required_tool_choice, evolved.stream_usage) == ("any", False)
    assert any_word.stream_usage is True  # the original is unchanged
    assert "required_tool_choice='any'" in repr(any_word) and "stream_usage=False" in repr(evolved)


def test_the_defaults_are_openais() -> None:
    d = OPENAI_DIALECT
    assert (d.tools, d.streaming, d.stream_usage, d.done_marker, d.end_object) == (True, True, True, True, None)
    assert (d.required_tool_choice, d.named_tool_choice, d.user_parts) == ("required", True, OPENAI_PARTS)
    assert [f.name for f in attrs.fields(ChatDialect)] == [
        "tools", "streaming", "stream_usage", "done_marker", "end_object", "required_tool_choice",
        "named_tool_choice", "user_parts"]


@pytest.mark.parametrize("name", sorted(ROWS))
def test_each_client_class_carries_its_rows_dialect(name: str) -> None:
    import importlib

    cls = importlib.import_module(f"rig_sync.providers.{name}").Client
    row = ROWS[name]
    assert isinstance(row.dialect, ChatDialect) and cls.chat_dialect is row.dialect
    # the flags every client class has follow the dialect
    assert (cls.supports_tools, cls.streams_completions) == (row.dialect.tools, row.dialect.streaming)
    if "completion" in row.capabilities:
        assert cls("k", base_url="http://127.0.0.1:9/v1").completion_model("m").dialect is row.dialect


def test_openai_and_azure_speak_openais_dialect() -> None:
    assert openai.Client.chat_dialect is OPENAI_DIALECT and azure.Client.chat_dialect is OPENAI_DIALECT
    model = azure.Client("k", endpoint="https://res.openai.azure.com").completion_model("dep")
    assert model.dialect is OPENAI_DIALECT


def test_the_deviating_rows_and_their_dialects() -> None:
    deviating = {name: row.dialect for name, row in ROWS.items() if row.dialect != OPENAI_DIALECT}
    assert deviating == {
        "perplexity": ChatDialect(tools=False, stream_usage=False, done_marker=False,
                                  end_object="chat.completion.done"),
        "mira": ChatDialect(tools=False, stream_usage=False),
        "hyperbolic": ChatDialect(tools=False),
        "llamacpp": ChatDialect(named_tool_choice=False),
        "mistral": ChatDialect(stream_usage=False, required_tool_choice="any",
                               user_parts=PartDialect(bare_audio=True, documents_by_url=True)),
    }


# --- each row's dialect drives the wire -----------------------------------------------------------


def test_mistral_says_any_and_asks_no_stream_usage(fake: FakeProvider) -> None:
    fake.script(Reply.tool_calls([("add", {"a": 1})]))
    model = on_fake(mistral.Client, fake).completion_model("mistral-large-latest")
    model.completion_request("add").tools([ADD]).tool_choice(ToolChoice("required")).send()
    assert sent(fake)["tool_choice"] == "any"
    chunks = list(model.completion_request("stream me").stream())
    assert isinstance(chunks[-1], FinalResponse) and "stream me" in chunks[-1].response.choice[0].text
    assert sent(fake)["stream"] is True and "stream_options" not in sent(fake)


def test_mistral_sends_audio_as_a_bare_string(fake: FakeProvider) -> None:
    model = on_fake(mistral.Client, fake).completion_model("voxtral-small-latest")
    model.completion_request(Message.user([Text("what is said?"), Audio("UklGRg==", "wav")])).send()
    parts = sent(fake)["messages"][-1]["content"]
    assert {"type": "input_audio", "input_audio": "UklGRg=="} in parts


def test_llamacpp_narrows_a_named_choice_and_asks_for_stream_usage(fake: FakeProvider) -> None:
    model = on_fake(llamacpp.Client, fake).completion_model("m")
    fake.script(Reply.tool_calls([("add", {"a": 1})]))
    list(model.completion_request("add").tools([MUL, ADD]).tool_choice(ToolChoice.tool("add")).stream())
    body = sent(fake)
    assert body["tool_choice"] == "required" and [t["function"]["name"] for t in body["tools"]] == ["add"]
    assert body["stream_options"] == {"include_usage": True}


def test_perplexity_streams_end_at_its_end_object_and_it_takes_no_tools(fake: FakeProvider) -> None:
    # No `data: [DONE]`: its `chat.completion.done` chunk ends the stream, as the dialect says.
    fake.script(Reply.json(200, sse(chunk("Hi"), chunk(" there", obj="chat.completion.done")),
                           {"Content-Type": "text/event-stream"}))
    model = on_fake(perplexity.Client, fake).completion_model("sonar")
    chunks = list(model.completion_request("hi").stream())
    assert chunks[-1].response.choice[0].text == "Hi there" and "stream_options" not in sent(fake)
    before = fake.request_count
    with pytest.raises(UnsupportedFeature, match="tool calling"):
        model.completion_request("hi").tool(ADD).send()
    assert fake.request_count == before  # refused before sending


def test_a_row_without_stream_usage_leaves_stream_options_out(fake: FakeProvider) -> None:
    model = on_fake(mira.Client, fake).completion_model("m")
    chunks = list(model.completion_request("stream me").stream())
    assert "stream me" in chunks[-1].response.choice[0].text
    assert sent(fake)["stream"] is True and "stream_options" not in sent(fake)


def test_openai_sends_a_named_choice_and_asks_for_stream_usage(fake: FakeProvider) -> None:
    model = on_fake(openai.Client, fake).completion_model("gpt-4o")
    fake.script(Reply.tool_calls([("add", {"a": 1})]))
    list(model.completion_request("add").tools([MUL, ADD]).tool_choice(ToolChoice.tool("add")).stream())
    body = sent(fake)
    assert body["tool_choice"] == {"type": "function", "function": {"name": "add"}}
    assert [t["function"]["name"] for t in body["tools"]] == ["mul", "add"]
    assert body["stream_options"] == {"include_usage": True}


# --- a new deviation is a value -------------------------------------------------------------------


def test_a_new_row_sends_what_its_dialect_says(fake: FakeProvider) -> None:
    row = CompatProvider("probe", fake.base_url,
                         dialect=ChatDialect(required_tool_choice="any", stream_usage=False))
    cls = client_class(row, __name__)
    assert cls.chat_dialect is row.dialect and cls.provider == "probe"
    model = on_fake(cls, fake).completion_model("m")
    fake.script(Reply.tool_calls([("add", {"a": 1})]))
    model.completion_request("add").tools([ADD]).tool_choice(ToolChoice("required")).send()
    assert sent(fake)["tool_choice"] == "any"
    list(model.completion_request("stream me").stream())
    assert "stream_options" not in sent(fake)


def test_a_new_row_with_an_end_object_and_no_done_marker(fake: FakeProvider) -> None:
    cls = client_class(CompatProvider("probe", fake.base_url,
                                      dialect=ChatDialect(done_marker=False, end_object="probe.end")), __name__)
    model = on_fake(cls, fake).completion_model("m")
    fake.script(Reply.json(200, sse(chunk("a"), chunk("b", obj="probe.end")), {"Content-Type": "text/event-stream"}))
    assert list(model.completion_request("x").stream())[-1].response.choice[0].text == "ab"
    # without its end object nor a finish reason the stream is cut short, not an answer
    fake.script(Reply.json(200, sse(chunk("a")), {"Content-Type": "text/event-stream"}))
    with pytest.raises(StreamError, match="incomplete"):
        list(model.completion_request("x").stream())


def test_a_new_row_without_tools_or_streaming_shows_it_in_the_matrix(fake: FakeProvider) -> None:
    plain = client_class(CompatProvider("probe", fake.base_url, dialect=ChatDialect(tools=False, streaming=False)))
    narrowing = client_class(CompatProvider("probe", fake.base_url, dialect=ChatDialect(named_tool_choice=False)))
    assert (plain.supports_tools, plain.streams_completions) == (False, False)
    assert matrix_letters(plain) == "C" and matrix_letters(narrowing) == "C S tools*"
    with pytest.raises(UnsupportedFeature, match="streaming"):
        on_fake(plain, fake).completion_model("m").completion_request("x").stream()


def test_a_subclass_setting_only_the_flags_has_them_in_its_dialect() -> None:
    class NoTools(openai.Client):
        supports_tools: ClassVar[bool] = False

    assert NoTools.chat_dialect == ChatDialect(tools=False)
    assert NoTools("k").completion_model("m").dialect.tools is False


def test_a_client_of_its_own_without_a_dialect_speaks_openais_with_its_flags() -> None:
    class Plain(ProviderClient, CompletionClient):
        provider: ClassVar[str] = "plain"
        default_base_url: ClassVar[str] = "http://127.0.0.1:9/v1"
        supports_tools: ClassVar[bool] = False

        def completion_model(self, model: str) -> ChatCompletionsModel:
            return ChatCompletionsModel(self, model)

    assert Plain("k").completion_model("m").dialect == ChatDialect(tools=False)


# --- no dialect field is read off the client with a default -------------------------------------------

_FIELDS = {f.name for f in attrs.fields(ChatDialect)} | {
    "stream_done_marker", "stream_end_object", "supports_tools", "streams_completions", "chat_dialect"}


def _client_getattrs(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr"):
            continue
        target = node.args[0] if node.args else None
        on_client = (isinstance(target, ast.Attribute) and target.attr == "client") or (
            isinstance(target, ast.Name) and target.id == "client")
        name = node.args[1] if len(node.args) > 1 else None
        names_field = isinstance(name, ast.Constant) and name.value in _FIELDS
        if on_client or names_field:
            found.append(f"line {node.lineno}: {ast.unparse(node)}")
    return found


def test_no_getattr_reads_of_the_client_or_dialect_fields_in_providers() -> None:
    offenders = {path.name: hits for path in sorted(PROVIDERS.glob("*.py"))
                 if (hits := _client_getattrs(ast.parse(path.read_text(encoding="utf-8"))))}
    assert offenders == {}
    # the scan does see such a read
    assert _client_getattrs(ast.parse('getattr(self.client, "stream_usage", True)'))
