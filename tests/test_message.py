"""Message and its content parts: provider-neutral, frozen, and strict about what goes where."""

from __future__ import annotations

import base64
from typing import Any

import attrs
import pytest

from rig_sync.errors import InvalidMessageError, InvalidRequestError, RigError
from rig_sync.message import (
    Audio,
    DocumentContent,
    Image,
    Message,
    Reasoning,
    Text,
    ToolCall,
    ToolResult,
)


def test_user_message_from_a_string_is_one_text_part() -> None:
    msg = Message.user("hello")
    assert msg.role == "user"
    assert msg.content == (Text("hello"),)
    assert msg.text == "hello"


def test_user_message_holds_every_user_part_in_order() -> None:
    image = Image.from_url("https://example.invalid/cat.png", detail="low")
    audio = Audio.from_bytes(b"RIFF", "wav")
    doc = DocumentContent.from_bytes(b"%PDF-1.4", filename="a.pdf")
    result = ToolResult("call_1", "42")
    msg = Message.user(["look:", image, audio, doc, result])
    assert msg.content == (Text("look:"), image, audio, doc, result)
    assert msg.text == "look:"


def test_assistant_message_holds_text_tool_calls_and_reasoning() -> None:
    call = ToolCall("call_1", "add", {"a": 1, "b": 2})
    msg = Message.assistant([Reasoning("adding"), "Let me add.", call])
    assert msg.role == "assistant"
    assert msg.text == "Let me add."
    assert msg.tool_calls == [call]


def test_a_single_part_is_accepted_without_a_list() -> None:
    call = ToolCall("c", "f")
    assert Message.assistant(call).content == (call,)
    assert Message.user(Image.from_url("https://example.invalid/x.png")).content[0].is_url  # type: ignore[union-attr]


def test_tool_result_message_is_a_user_message_with_one_result() -> None:
    msg = Message.tool_result("call_9", "sunny", call_id="fc_9", is_error=True)
    assert msg.role == "user"
    assert msg.content == (ToolResult("call_9", "sunny", "fc_9", True),)
    assert msg.text == ""  # a tool result is not text of the conversation


def test_content_given_as_a_list_is_stored_as_a_tuple() -> None:
    msg = Message("user", [Text("a"), Text("b")])
    assert isinstance(msg.content, tuple)
    assert msg.text == "ab"
    hash(msg)  # frozen with tuple content: usable as a dict key


@pytest.mark.parametrize(
    "part",
    [ToolCall("c", "f"), Reasoning("thinking")],
    ids=["tool_call", "reasoning"],
)
def test_user_message_rejects_assistant_parts(part: Any) -> None:
    with pytest.raises(InvalidMessageError, match="user message content may hold"):
        Message.user(["hi", part])


@pytest.mark.parametrize(
    "part",
    [
        Image.from_url("https://example.invalid/x.png"),
        Audio("AAAA"),
        DocumentContent("AAAA"),
        ToolResult("c", "r"),
    ],
    ids=["image", "audio", "document", "tool_result"],
)
def test_assistant_message_rejects_user_parts(part: Any) -> None:
    with pytest.raises(InvalidMessageError, match="assistant message content may hold"):
        Message.assistant(part)


@pytest.mark.parametrize("bad", [42, None, 3.5, object()])
def test_non_part_objects_are_rejected(bad: Any) -> None:
    with pytest.raises(InvalidMessageError) as info:
        Message.user(bad)
    # A typed RigError that is still the TypeError it used to be.
    assert isinstance(info.value, RigError) and isinstance(info.value, TypeError)
    with pytest.raises(InvalidMessageError):
        Message.user(["ok", bad])


@pytest.mark.parametrize("bad", [{"text": "hi"}, b"hi", bytearray(b"hi")], ids=["dict", "bytes", "bytearray"])
def test_iterables_that_are_not_lists_of_parts_are_rejected(bad: Any) -> None:
    # A dict would otherwise become its keys as text, bytes a run of ints.
    with pytest.raises(InvalidMessageError, match="content must be text or content parts"):
        Message.user(bad)


@pytest.mark.parametrize("empty", [[], ()])
def test_empty_content_is_rejected(empty: Any) -> None:
    with pytest.raises(InvalidRequestError, match="at least one content part") as info:
        Message.user(empty)
    assert isinstance(info.value, RigError) and isinstance(info.value, ValueError)
    with pytest.raises(InvalidRequestError):
        Message.assistant(empty)


def test_direct_construction_is_validated_too() -> None:
    with pytest.raises(InvalidMessageError, match="role must be 'user' or 'assistant', not 'system'; a system "
                                                  "prompt is the request's preamble"):
        Message("system", (Text("x"),))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Message("assistant", (ToolResult("c", "r"),))
    with pytest.raises(InvalidRequestError):
        Message("user", ())


def test_messages_are_frozen_value_objects() -> None:
    msg = Message.user("hi")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        msg.role = "assistant"  # type: ignore[misc]
    assert Message.user("hi") == msg
    assert Message.user("hi") != Message.assistant("hi")


def test_image_inline_bytes_are_base64_and_make_a_data_url() -> None:
    img = Image.from_bytes(b"\x89PNG", media_type="image/png")
    assert img.data == base64.b64encode(b"\x89PNG").decode()
    assert not img.is_url
    assert img.data_url() == f"data:image/png;base64,{img.data}"
    url = Image.from_url("https://example.invalid/a.jpg")
    assert url.data_url() == "https://example.invalid/a.jpg"


def test_image_from_already_encoded_base64_is_kept() -> None:
    assert Image.from_bytes("QUJD", "image/jpeg").data == "QUJD"


def test_audio_and_document_from_bytes_encode_base64() -> None:
    assert Audio.from_bytes(b"abc", "mp3") == Audio("YWJj", "mp3")
    doc = DocumentContent.from_bytes(b"abc", "text/plain", "a.txt")
    assert (doc.data, doc.media_type, doc.filename, doc.is_url) == ("YWJj", "text/plain", "a.txt", False)


@pytest.mark.parametrize(
    "make",
    [
        lambda: Text(5),
        lambda: ToolCall(None, "f"),
        lambda: ToolCall("id", "f", ["not", "a", "dict"]),
        lambda: ToolResult("id", 42),
        lambda: Reasoning(None),
    ],
    ids=["text", "tool_call_id", "tool_call_args", "tool_result_content", "reasoning"],
)
def test_parts_check_their_field_types(make: Any) -> None:
    with pytest.raises(TypeError):
        make()
