"""A long stream keeps its text, not its chunks: memory follows the text received (issue 17)."""

from __future__ import annotations

import json
import tracemalloc

import pytest
import responses

from rig_sync.providers import openai
from rig_sync.streaming import TextBuffer

BASE = "http://127.0.0.1:9/v1"
WORDS = 60_000


def _sse(words: int) -> bytes:
    line = {"id": "c1", "object": "chat.completion.chunk", "model": "gpt-4o",
            "choices": [{"index": 0, "delta": {"content": "ab "}, "finish_reason": None}]}
    head = b"data: " + json.dumps(line).encode() + b"\n\n"
    end = {"id": "c1", "object": "chat.completion.chunk", "model": "gpt-4o",
           "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    return head * words + b"data: " + json.dumps(end).encode() + b"\n\ndata: [DONE]\n\n"


def test_text_buffer_is_a_list_of_pieces_to_its_readers() -> None:
    buffer = TextBuffer()
    assert not buffer and "".join(buffer) == ""
    buffer.append("")
    assert buffer  # something was appended, as a list of one empty piece is true
    pieces = [f"w{i} " for i in range(TextBuffer.BLOCK * 3 + 7)]
    for piece in pieces:
        buffer.append(piece)
    assert "".join(buffer) == "".join(pieces)
    assert len(list(buffer)) == 3 + 8  # three blocks of BLOCK pieces, then the 8 pieces since
    assert any(buffer) and repr(buffer).startswith("TextBuffer('w0 w1")


def test_a_long_stream_holds_about_its_text_not_one_object_per_chunk() -> None:
    text_bytes = 3 * WORDS
    with responses.RequestsMock() as mocked:
        mocked.add(responses.POST, f"{BASE}/chat/completions", body=_sse(WORDS),
                   content_type="text/event-stream")
        model = openai.Client("sk-test", base_url=BASE).completion_model("gpt-4o")
        stream = model.completion_request("Talk").stream()
        tracemalloc.start()
        try:
            received = sum(len(piece) for piece in stream.text_stream())
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert received == text_bytes and stream.response.text == "ab " * WORDS
    # One str per chunk would be ~60 bytes each (20x the text); blocks keep it near the text,
    # plus the final join and the parser's fixed buffers.
    assert peak < 4 * text_bytes + 512 * 1024, f"peak {peak} bytes for {text_bytes} bytes of text"
    assert "chunks=60001" in repr(stream) and "ab ab" in repr(stream)


@pytest.mark.parametrize("words", [1, TextBuffer.BLOCK, TextBuffer.BLOCK + 1])
def test_block_edges_keep_every_piece(words: int) -> None:
    with responses.RequestsMock() as mocked:
        mocked.add(responses.POST, f"{BASE}/chat/completions", body=_sse(words), content_type="text/event-stream")
        model = openai.Client("sk-test", base_url=BASE).completion_model("gpt-4o")
        assert model.completion_request("Talk").stream().text == "ab " * words
