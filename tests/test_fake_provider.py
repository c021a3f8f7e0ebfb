"""Tests for rig_sync.testing.FakeProvider, driven with requests and http.client."""

from __future__ import annotations

import base64
import http.client
import json
import math
import struct
import subprocess
import sys
import threading
import time
import zlib
from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from rig_sync import errors
from rig_sync.providers import (
    _gemini_media,
    _openai_media,
    anthropic,
    azure,
    cohere,
    gemini,
    mistral,
    ollama,
    openai,
    voyageai,
)
from rig_sync.providers._compat import ROWS
from rig_sync.testing import FakeProvider, Fault, Reply
from rig_sync.transcription import TranscriptionRequest

ROOT = Path(__file__).resolve().parents[1]
T = 3.0  # generous client timeout for requests that should succeed


# --------------------------------------------------------------------------- #
# helpers
# --------------------------------------------------------------------------- #


@pytest.fixture
def session(fake: FakeProvider) -> Iterator[requests.Session]:
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {fake.api_key}"
    yield s
    s.close()


def chat_body(text: Any, **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-test", "messages": [{"role": "user", "content": text}], **extra}


def sse_data(resp: requests.Response) -> list[str]:
    """The data payloads of an SSE response, in order."""
    out = []
    for block in resp.text.split("\n\n"):
        for line in block.split("\n"):
            if line.startswith("data: "):
                out.append(line[len("data: ") :])
    return out


def sse_events(text: str) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        lines = dict(line.split(": ", 1) for line in block.split("\n"))
        out.append((lines["event"], json.loads(lines["data"])))
    return out


ADD_TOOL = {
    "type": "function",
    "function": {"name": "add", "parameters": {"type": "object"}},
}
MUL_TOOL = {
    "type": "function",
    "function": {"name": "mul", "parameters": {"type": "object"}},
}


# --------------------------------------------------------------------------- #
# lifecycle
# --------------------------------------------------------------------------- #


def test_import_is_cheap_and_stdlib_only() -> None:
    code = (
        "import sys, threading, rig_sync.testing as t;"
        "assert 'requests' not in sys.modules, 'requests imported';"
        "assert threading.active_count() == 1, 'thread started';"
        "print('ok')"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=20,
        env={"PYTHONPATH": str(ROOT), "PATH": ""},
    )
    assert out.stdout.strip() == "ok", out.stderr


def test_start_stop_fast_and_urls() -> None:
    t0 = time.perf_counter()
    fake = FakeProvider()
    with fake:
        assert time.perf_counter() - t0 < 1.0
        assert fake.running
        host, port = fake.address
        assert host == "127.0.0.1" and port > 0
        assert fake.url == f"http://127.0.0.1:{port}"
        assert fake.base_url == fake.url + "/v1"
        assert fake.api_key == "fake-key"
        r = requests.get(fake.base_url + "/models", headers={"Authorization": "Bearer k"}, timeout=T)
        assert r.status_code == 200
    assert not fake.running
    with pytest.raises(RuntimeError):
        _ = fake.url
    assert time.perf_counter() - t0 < 2.0
    assert not any(t.name.startswith("FakeProvider:") for t in threading.enumerate())


def test_restart_after_stop() -> None:
    fake = FakeProvider()
    for _ in range(2):
        with fake:
            r = requests.post(
                fake.base_url + "/chat/completions",
                json=chat_body("x"),
                headers={"Authorization": "Bearer k"},
                timeout=T,
            )
            assert r.status_code == 200


def test_stop_closes_keepalive_and_hung_connections() -> None:
    fake = FakeProvider().start()
    host, port = fake.address
    idle = http.client.HTTPConnection(host, port, timeout=5)
    idle.request("GET", "/v1/models", headers={"Authorization": "Bearer k"})
    assert idle.getresponse().read()
    fake.inject(Fault.hang())
    hung = http.client.HTTPConnection(host, port, timeout=5)
    hung.request(
        "POST",
        "/v1/chat/completions",
        body=json.dumps(chat_body("x")),
        headers={"Authorization": "Bearer k", "Content-Type": "application/json"},
    )
    t0 = time.perf_counter()
    fake.stop()
    with pytest.raises((http.client.HTTPException, OSError)):
        hung.getresponse()
    assert time.perf_counter() - t0 < 2.0
    idle.close()
    hung.close()


# --------------------------------------------------------------------------- #
# chat completions
# --------------------------------------------------------------------------- #


def test_chat_echo(fake: FakeProvider, session: requests.Session) -> None:
    r = session.post(fake.base_url + "/chat/completions", json=chat_body("hello there world"), timeout=T)
    assert r.status_code == 200
    assert r.headers["x-request-id"] == "req_1"
    assert int(r.headers["Content-Length"]) == len(r.content)
    data = r.json()
    assert data["object"] == "chat.completion"
    assert data["model"] == "gpt-test"
    assert data["id"] and isinstance(data["created"], int)
    choice = data["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "echo: hello there world", "refusal": None}
    assert choice["finish_reason"] == "stop"
    usage = data["usage"]
    assert usage["prompt_tokens"] == 3
    assert usage["completion_tokens"] == 4
    assert usage["total_tokens"] == 7


def test_chat_echo_content_parts_and_last_user(fake: FakeProvider, session: requests.Session) -> None:
    body = {
        "model": "m",
        "messages": [
            {"role": "system", "content": "be nice"},
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": [{"type": "text", "text": "second"}]},
        ],
    }
    r = session.post(fake.base_url + "/chat/completions", json=body, timeout=T)
    assert r.json()["choices"][0]["message"]["content"] == "echo: second"


def test_chat_stream_framing(fake: FakeProvider, session: requests.Session) -> None:
    body = chat_body("one two three four", stream=True, stream_options={"include_usage": True})
    r = session.post(fake.base_url + "/chat/completions", json=body, timeout=T)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/event-stream")
    assert r.headers["Transfer-Encoding"] == "chunked"
    assert r.text.startswith("data: ") and r.text.endswith("data: [DONE]\n\n")
    datas = sse_data(r)
    assert datas[-1] == "[DONE]"
    chunks = [json.loads(d) for d in datas[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    usage_chunk = chunks[-1]
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"] == {
        "prompt_tokens": 4,
        "completion_tokens": 5,
        "total_tokens": 9,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    pieces = [c["choices"][0]["delta"].get("content") or "" for c in chunks[:-1]]
    assert sum(1 for p in pieces if p) >= 4
    assert "".join(pieces) == "echo: one two three four"


def test_chat_stream_without_usage(fake: FakeProvider, session: requests.Session) -> None:
    r = session.post(fake.base_url + "/chat/completions", json=chat_body("hi", stream=True), timeout=T)
    chunks = [json.loads(d) for d in sse_data(r)[:-1]]
    assert all(c["choices"] for c in chunks)
    assert all("usage" not in c for c in chunks)


def test_chat_tool_call_on_request(fake: FakeProvider, session: requests.Session) -> None:
    body = chat_body('call:add {"a": 2, "b": 3} ; mul {"x": 4}', tools=[ADD_TOOL, MUL_TOOL])
    r = session.post(fake.base_url + "/chat/completions", json=body, timeout=T)
    choice = r.json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    calls = choice["message"]["tool_calls"]
    assert [c["id"] for c in calls] == ["call_0", "call_1"]
    assert [c["function"]["name"] for c in calls] == ["add", "mul"]
    assert json.loads(calls[0]["function"]["arguments"]) == {"a": 2, "b": 3}
    assert json.loads(calls[1]["function"]["arguments"]) == {"x": 4}


def test_chat_tool_call_unknown_tool_echoes(fake: FakeProvider, session: requests.Session) -> None:
    body = chat_body('call:nope {"a": 1}', tools=[ADD_TOOL])
    r = session.post(fake.base_url + "/chat/completions", json=body, timeout=T)
    assert r.json()["choices"][0]["message"]["content"] == 'echo: call:nope {"a": 1}'


def test_chat_tool_call_streamed_deltas(fake: FakeProvider, session: requests.Session) -> None:
    body = chat_body(
        'call:add {"a": 2, "b": 3, "note": "some longer text"} ; mul {"x": 4}',
        tools=[ADD_TOOL, MUL_TOOL],
        stream=True,
    )
    r = session.post(fake.base_url + "/chat/completions", json=body, timeout=T)
    datas = sse_data(r)
    assert datas[-1] == "[DONE]"
    chunks = [json.loads(d) for d in datas[:-1]]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assembled: dict[int, dict[str, str]] = {}
    fragments = 0
    for c in chunks:
        for tc in c["choices"][0]["delta"].get("tool_calls") or []:
            slot = assembled.setdefault(tc["index"], {"id": "", "name": "", "arguments": ""})
            if "id" in tc:
                assert tc["function"]["arguments"] == ""
                slot["id"] = tc["id"]
                slot["name"] = tc["function"]["name"]
            else:
                fragments += 1
                slot["arguments"] += tc["function"]["arguments"]
    assert fragments > 3
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    assert assembled[0]["id"] == "call_0" and assembled[0]["name"] == "add"
    assert json.loads(assembled[0]["arguments"]) == {"a": 2, "b": 3, "note": "some longer text"}
    assert assembled[1]["id"] == "call_1" and json.loads(assembled[1]["arguments"]) == {"x": 4}


def test_chat_tool_results(fake: FakeProvider, session: requests.Session) -> None:
    body = {
        "model": "m",
        "messages": [
            {"role": "user", "content": "call:add {}"},
            {"role": "assistant", "content": None, "tool_calls": []},
            {"role": "tool", "tool_call_id": "call_0", "content": "5"},
            {"role": "tool", "tool_call_id": "call_1", "content": [{"type": "text", "text": "12"}]},
        ],
    }
    r = session.post(fake.base_url + "/chat/completions", json=body, timeout=T)
    assert r.json()["choices"][0]["message"]["content"] == "tool result: 5, 12"


# --------------------------------------------------------------------------- #
# scripted replies
# --------------------------------------------------------------------------- #


def test_script_in_order_then_echo(fake: FakeProvider, session: requests.Session) -> None:
    fake.script(
        Reply.text("first"),
        Reply.tool_calls([("add", {"a": 1}), ("mul", '{"bad json', "my_id")]),
    )
    # an embeddings request does not consume text/tool-call replies
    assert session.post(fake.base_url + "/embeddings", json={"input": "a"}, timeout=T).status_code == 200
    fake.script(Reply.json(418, {"teapot": True}, headers={"x-custom": "1"}))
    assert fake.pending_replies == 3
    url = fake.base_url + "/chat/completions"
    assert session.post(url, json=chat_body("x"), timeout=T).json()["choices"][0]["message"]["content"] == "first"
    msg = session.post(url, json=chat_body("x"), timeout=T).json()["choices"][0]["message"]
    assert [c["id"] for c in msg["tool_calls"]] == ["call_0", "my_id"]
    assert json.loads(msg["tool_calls"][0]["function"]["arguments"]) == {"a": 1}
    assert msg["tool_calls"][1]["function"]["arguments"] == '{"bad json'
    r = session.post(url, json=chat_body("x"), timeout=T)
    assert r.status_code == 418 and r.json() == {"teapot": True} and r.headers["x-custom"] == "1"
    assert session.post(url, json=chat_body("x"), timeout=T).json()["choices"][0]["message"]["content"] == "echo: x"
    assert fake.pending_replies == 0


def test_script_rendered_in_stream_and_responses(fake: FakeProvider, session: requests.Session) -> None:
    fake.script(Reply.text("alpha beta gamma"), Reply.text("resp text"))
    r = session.post(fake.base_url + "/chat/completions", json=chat_body("x", stream=True), timeout=T)
    chunks = [json.loads(d) for d in sse_data(r)[:-1]]
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == "alpha beta gamma"
    r = session.post(fake.base_url + "/responses", json={"model": "m", "input": "x"}, timeout=T)
    assert r.json()["output"][0]["content"][0]["text"] == "resp text"


def test_script_path_filter(fake: FakeProvider, session: requests.Session) -> None:
    fake.script(Reply.json(200, {"data": []}), path="/v1/embeddings")
    r = session.post(fake.base_url + "/chat/completions", json=chat_body("x"), timeout=T)
    assert r.json()["choices"][0]["message"]["content"] == "echo: x"
    r = session.post(fake.base_url + "/embeddings", json={"input": "x"}, timeout=T)
    assert r.json() == {"data": []}


# --------------------------------------------------------------------------- #
# responses API
# --------------------------------------------------------------------------- #


def test_responses_echo(fake: FakeProvider, session: requests.Session) -> None:
    body = {
        "model": "gpt-r",
        "instructions": "be brief",
        "input": [
            {"role": "user", "content": "earlier"},
            {"role": "assistant", "content": [{"type": "output_text", "text": "ok"}]},
            {"role": "user", "content": [{"type": "input_text", "text": "hello responses"}]},
        ],
    }
    data = session.post(fake.base_url + "/responses", json=body, timeout=T).json()
    assert data["object"] == "response" and data["status"] == "completed"
    assert data["model"] == "gpt-r"
    (item,) = data["output"]
    assert item["type"] == "message" and item["role"] == "assistant"
    assert item["content"] == [{"type": "output_text", "text": "echo: hello responses", "annotations": [],
                                "logprobs": []}]
    assert data["usage"]["output_tokens"] == 3
    assert data["usage"]["total_tokens"] == data["usage"]["input_tokens"] + 3


def test_responses_tool_calls_and_results(fake: FakeProvider, session: requests.Session) -> None:
    tools = [{"type": "function", "name": "add", "parameters": {}}, {"type": "function", "name": "mul"}]
    body = {"model": "m", "input": 'call:add {"a": 1} ; mul {"b": 2}', "tools": tools}
    data = session.post(fake.base_url + "/responses", json=body, timeout=T).json()
    assert [o["type"] for o in data["output"]] == ["function_call", "function_call"]
    first = data["output"][0]
    assert first["id"] == "fc_0" and first["call_id"] == "call_0" and first["name"] == "add"
    assert first["status"] == "completed" and json.loads(first["arguments"]) == {"a": 1}
    assert data["output"][1]["call_id"] == "call_1"

    follow = {
        "model": "m",
        "tools": tools,
        "input": [
            {"role": "user", "content": "call:add {}"},
            {"type": "function_call", "call_id": "call_0", "name": "add", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_0", "output": "3"},
            {"type": "function_call_output", "call_id": "call_1", "output": "4"},
        ],
    }
    data = session.post(fake.base_url + "/responses", json=follow, timeout=T).json()
    assert data["output"][0]["content"][0]["text"] == "tool result: 3, 4"


def test_responses_stream_events(fake: FakeProvider, session: requests.Session) -> None:
    body = {"model": "m", "input": "streaming words here", "stream": True}
    r = session.post(fake.base_url + "/responses", json=body, timeout=T)
    assert "[DONE]" not in r.text
    events = sse_events(r.text)
    kinds = [k for k, _ in events]
    assert all(k == d["type"] for k, d in events)
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert [d["sequence_number"] for _, d in events] == list(range(len(events)))
    for needed in ("response.output_item.added", "response.output_text.done", "response.output_item.done"):
        assert needed in kinds
    deltas = [d["delta"] for k, d in events if k == "response.output_text.delta"]
    assert len(deltas) >= 3 and "".join(deltas) == "echo: streaming words here"
    done = events[-1][1]["response"]
    assert done["status"] == "completed" and done["usage"]["output_tokens"] == 4
    assert done["output"][0]["content"][0]["text"] == "echo: streaming words here"


def test_responses_stream_function_call(fake: FakeProvider, session: requests.Session) -> None:
    body = {
        "model": "m",
        "input": 'call:add {"a": 1, "b": "a longer string value"}',
        "tools": [{"type": "function", "name": "add"}],
        "stream": True,
    }
    events = sse_events(session.post(fake.base_url + "/responses", json=body, timeout=T).text)
    deltas = [d["delta"] for k, d in events if k == "response.function_call_arguments.delta"]
    (done,) = [d for k, d in events if k == "response.function_call_arguments.done"]
    assert len(deltas) > 1 and "".join(deltas) == done["arguments"]
    assert json.loads(done["arguments"]) == {"a": 1, "b": "a longer string value"}
    final = events[-1][1]["response"]["output"][0]
    assert final["type"] == "function_call" and final["call_id"] == "call_0"


# --------------------------------------------------------------------------- #
# embeddings, audio, images
# --------------------------------------------------------------------------- #


def _cos(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def test_embeddings_float_base64_and_similarity(fake: FakeProvider, session: requests.Session) -> None:
    texts = [
        "The cat sat on the mat",
        "the cat sat on a mat",
        "Quarterly revenue grew by eleven percent",
    ]
    url = fake.base_url + "/embeddings"
    r = session.post(url, json={"model": "emb", "input": texts}, timeout=T)
    data = r.json()
    assert data["object"] == "list" and data["model"] == "emb"
    assert data["usage"] == {"prompt_tokens": 18, "total_tokens": 18}
    vecs = [d["embedding"] for d in data["data"]]
    assert [d["index"] for d in data["data"]] == [0, 1, 2]
    assert all(len(v) == 1536 for v in vecs)
    assert all(abs(math.sqrt(sum(x * x for x in v)) - 1.0) < 1e-5 for v in vecs)
    assert _cos(vecs[0], vecs[1]) > 0.7
    assert _cos(vecs[0], vecs[1]) > _cos(vecs[0], vecs[2]) + 0.4

    r = session.post(url, json={"model": "emb", "input": texts, "encoding_format": "base64"}, timeout=T)
    decoded = [list(array("f", base64.b64decode(d["embedding"]))) for d in r.json()["data"]]
    if sys.byteorder != "little":  # pragma: no cover
        pytest.skip("big-endian host")
    assert decoded == vecs

    r = session.post(url, json={"input": "single", "dimensions": 64}, timeout=T)
    (item,) = r.json()["data"]
    assert len(item["embedding"]) == 64
    again = session.post(url, json={"input": "single", "dimensions": 64}, timeout=T)
    assert again.json()["data"][0]["embedding"] == item["embedding"]


def test_embeddings_bad_input(fake: FakeProvider, session: requests.Session) -> None:
    r = session.post(fake.base_url + "/embeddings", json={"input": 5}, timeout=T)
    assert r.status_code == 400 and r.json()["error"]["param"] == "input"


def test_transcription_multipart(fake: FakeProvider, session: requests.Session) -> None:
    url = fake.base_url + "/audio/transcriptions"
    audio = bytes(range(256)) * 4
    r = session.post(
        url,
        files={"file": ("clip.wav", audio, "audio/wav")},
        data={"model": "whisper-1", "language": "en"},
        timeout=T,
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"text": "transcribed 1024 bytes from clip.wav", "language": "en"}
    rec = fake.requests[-1]
    assert rec.form == {"model": "whisper-1", "language": "en"}
    assert rec.files == {"file": ("clip.wav", audio)}

    r = session.post(url, files={"file": ("empty.mp3", b"")}, data={"model": "whisper-1"}, timeout=T)
    assert r.status_code == 400
    assert set(r.json()["error"]) >= {"message", "type", "param", "code"}


def test_image_png(fake: FakeProvider, session: requests.Session) -> None:
    url = fake.base_url + "/images/generations"
    r1 = session.post(url, json={"prompt": "a red fox", "model": "dall-e-3"}, timeout=T)
    r2 = session.post(url, json={"prompt": "a red fox"}, timeout=T)
    r3 = session.post(url, json={"prompt": "a blue whale"}, timeout=T)
    png = base64.b64decode(r1.json()["data"][0]["b64_json"])
    assert isinstance(r1.json()["created"], int)
    assert png == base64.b64decode(r2.json()["data"][0]["b64_json"])
    assert png != base64.b64decode(r3.json()["data"][0]["b64_json"])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, kinds = 8, []
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, data = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", png[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + data)
        kinds.append(kind)
        if kind == b"IDAT":
            assert len(zlib.decompress(data)) == 4
        pos += 12 + length
    assert kinds == [b"IHDR", b"IDAT", b"IEND"]


def test_speech(fake: FakeProvider, session: requests.Session) -> None:
    url = fake.base_url + "/audio/speech"
    r = session.post(url, json={"model": "tts-1", "input": "hi", "voice": "alloy", "response_format": "wav"}, timeout=T)
    assert r.headers["Content-Type"] == "audio/wav"
    wav = r.content
    assert wav[:4] == b"RIFF" and wav[8:16] == b"WAVEfmt "
    assert struct.unpack("<I", wav[4:8])[0] == len(wav) - 8
    assert wav[36:40] == b"data" and struct.unpack("<I", wav[40:44])[0] == len(wav) - 44
    r2 = session.post(url, json={"model": "tts-1", "input": "hi", "voice": "alloy"}, timeout=T)
    assert r2.headers["Content-Type"] == "audio/mpeg" and r2.content.startswith(b"FAKEAUDIO")
    r3 = session.post(url, json={"model": "tts-1", "input": "hi", "voice": "alloy"}, timeout=T)
    assert r3.content == r2.content


# --------------------------------------------------------------------------- #
# errors
# --------------------------------------------------------------------------- #


def test_not_found(fake: FakeProvider, session: requests.Session) -> None:
    r = session.post(fake.base_url + "/nope", json={}, timeout=T)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"
    assert r.json()["error"]["type"] == "invalid_request_error"
    assert r.json()["error"]["param"] is None


def test_auth(fake: FakeProvider) -> None:
    url = fake.base_url + "/chat/completions"
    for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": "Basic abc"}):
        r = requests.post(url, json=chat_body("x"), headers=headers, timeout=T)
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "invalid_api_key"
    assert requests.post(url, json=chat_body("x"), headers={"Authorization": "Bearer any"}, timeout=T).ok


def test_require_key() -> None:
    with FakeProvider(require_key="sk-secret") as fake:
        assert fake.api_key == "sk-secret"
        url = fake.base_url + "/chat/completions"
        bad = requests.post(url, json=chat_body("x"), headers={"Authorization": "Bearer other"}, timeout=T)
        assert bad.status_code == 401
        good = requests.post(url, json=chat_body("x"), headers={"Authorization": "Bearer sk-secret"}, timeout=T)
        assert good.status_code == 200


def test_malformed_json(fake: FakeProvider, session: requests.Session) -> None:
    r = session.post(
        fake.base_url + "/chat/completions",
        data=b'{"model": ',
        headers={"Content-Type": "application/json"},
        timeout=T,
    )
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    assert fake.requests[-1].json is None and fake.requests[-1].body == b'{"model": '


# --------------------------------------------------------------------------- #
# faults
# --------------------------------------------------------------------------- #


def test_fault_status_with_headers(fake: FakeProvider, session: requests.Session) -> None:
    url = fake.base_url + "/chat/completions"
    fake.inject(Fault.status(429, retry_after=2, retry_after_ms=1500, should_retry=True))
    fake.inject(Fault.status(503, retry_after="Wed, 21 Oct 2015 07:28:00 GMT", should_retry=False))
    fake.inject(Fault.status(529))
    fake.inject(Fault.status(500, body={"custom": 1}, headers={"x-extra": "y"}))
    r = session.post(url, json=chat_body("x"), timeout=T)
    assert r.status_code == 429
    assert r.headers["Retry-After"] == "2"
    assert r.headers["retry-after-ms"] == "1500"
    assert r.headers["x-should-retry"] == "true"
    assert r.json()["error"]["type"] == "requests" and r.json()["error"]["code"] == "rate_limit_exceeded"
    r = session.post(url, json=chat_body("x"), timeout=T)
    assert r.status_code == 503 and r.headers["Retry-After"].startswith("Wed,")
    assert r.headers["x-should-retry"] == "false" and r.json()["error"]["type"] == "server_error"
    r = session.post(url, json=chat_body("x"), timeout=T)
    assert r.status_code == 529 and r.json()["error"]["type"] == "overloaded_error"
    r = session.post(url, json=chat_body("x"), timeout=T)
    assert r.status_code == 500 and r.json() == {"custom": 1} and r.headers["x-extra"] == "y"
    assert session.post(url, json=chat_body("x"), timeout=T).status_code == 200
    assert fake.request_count == 5


def test_fault_times_and_path(fake: FakeProvider, session: requests.Session) -> None:
    fake.inject(Fault.status(500), times=2, path="/v1/embeddings")
    assert fake.pending_faults == 2
    assert session.post(fake.base_url + "/chat/completions", json=chat_body("x"), timeout=T).status_code == 200
    for _ in range(2):
        assert session.post(fake.base_url + "/embeddings", json={"input": "x"}, timeout=T).status_code == 500
    assert session.post(fake.base_url + "/embeddings", json={"input": "x"}, timeout=T).status_code == 200
    assert fake.pending_faults == 0


def test_fault_drop(fake: FakeProvider, session: requests.Session) -> None:
    fake.inject(Fault.drop())
    with pytest.raises(requests.ConnectionError):
        session.post(fake.base_url + "/chat/completions", json=chat_body("x"), timeout=T)
    assert fake.request_count == 1
    assert session.post(fake.base_url + "/chat/completions", json=chat_body("x"), timeout=T).ok


def test_fault_truncate(fake: FakeProvider) -> None:
    fake.inject(Fault.truncate(10))
    conn = http.client.HTTPConnection(*fake.address, timeout=T)
    conn.request("POST", "/v1/chat/completions", body=json.dumps(chat_body("x")), headers={"Authorization": "Bearer k"})
    resp = conn.getresponse()
    assert resp.status == 200
    assert int(resp.getheader("Content-Length") or 0) > 10
    with pytest.raises(http.client.IncompleteRead) as info:
        resp.read()
    assert len(info.value.partial) == 10
    conn.close()
    fake.inject(Fault.truncate())
    with pytest.raises(requests.RequestException):
        requests.post(
            fake.base_url + "/chat/completions", json=chat_body("x"), headers={"Authorization": "Bearer k"}, timeout=T
        )


def test_fault_stream_cut(fake: FakeProvider, session: requests.Session) -> None:
    fake.inject(Fault.stream_cut(after_events=2))
    r = session.post(
        fake.base_url + "/chat/completions", json=chat_body("a b c d e", stream=True), timeout=T, stream=True
    )
    lines: list[bytes] = []
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        for line in r.iter_lines():
            lines.append(line)
    datas = [ln for ln in lines if ln.startswith(b"data: ")]
    assert len(datas) == 2 and b"[DONE]" not in b"".join(lines)
    assert session.post(fake.base_url + "/chat/completions", json=chat_body("x"), timeout=T).ok


def test_fault_sse_error(fake: FakeProvider, session: requests.Session) -> None:
    fake.inject(Fault.sse_error(after_events=1, error={"message": "boom", "type": "server_error"}))
    r = session.post(fake.base_url + "/chat/completions", json=chat_body("a b c", stream=True), timeout=T)
    datas = sse_data(r)
    assert len(datas) == 2 and "[DONE]" not in datas
    assert json.loads(datas[1]) == {"error": {"message": "boom", "type": "server_error"}}


def test_fault_raw(fake: FakeProvider, session: requests.Session) -> None:
    fake.inject(Fault.raw(502, b"<html>Bad Gateway</html>", "text/html"))
    fake.inject(Fault.raw(200, b'{"choices": [', "application/json"))
    r = session.post(fake.base_url + "/chat/completions", json=chat_body("x"), timeout=T)
    assert r.status_code == 502 and r.headers["Content-Type"] == "text/html" and b"Bad Gateway" in r.content
    r = session.post(fake.base_url + "/chat/completions", json=chat_body("x"), timeout=T)
    assert r.status_code == 200
    with pytest.raises(ValueError):
        r.json()


def test_fault_hang_with_client_timeout(fake: FakeProvider, session: requests.Session) -> None:
    fake.inject(Fault.hang())
    t0 = time.perf_counter()
    with pytest.raises(requests.exceptions.ReadTimeout):
        session.post(fake.base_url + "/chat/completions", json=chat_body("x"), timeout=0.3)
    assert time.perf_counter() - t0 < 1.5
    assert fake.request_count == 1
    assert session.post(fake.base_url + "/chat/completions", json=chat_body("x"), timeout=T).ok


def test_fault_slow(fake: FakeProvider, session: requests.Session) -> None:
    url = fake.base_url + "/chat/completions"
    fake.inject(Fault.slow(1.0))
    with pytest.raises(requests.exceptions.ReadTimeout):
        session.post(url, json=chat_body("x"), timeout=0.2)
    fake.inject(Fault.slow(0.1))
    t0 = time.perf_counter()
    r = session.post(url, json=chat_body("late"), timeout=T)
    assert time.perf_counter() - t0 >= 0.1
    assert r.json()["choices"][0]["message"]["content"] == "echo: late"


def test_latency() -> None:
    with FakeProvider(latency=0.1) as fake:
        t0 = time.perf_counter()
        r = requests.post(
            fake.base_url + "/chat/completions", json=chat_body("x"), headers={"Authorization": "Bearer k"}, timeout=T
        )
        assert r.ok and time.perf_counter() - t0 >= 0.1


# --------------------------------------------------------------------------- #
# counters, keep-alive, recording, threads
# --------------------------------------------------------------------------- #


def test_keep_alive_and_counters(fake: FakeProvider, session: requests.Session) -> None:
    ids = []
    for i in range(10):
        r = session.post(fake.base_url + "/chat/completions", json=chat_body(f"m{i}"), timeout=T)
        ids.append(r.headers["x-request-id"])
    stream = session.post(fake.base_url + "/chat/completions", json=chat_body("s", stream=True), timeout=T)
    assert stream.ok
    assert session.get(fake.base_url + "/models", timeout=T).ok
    assert fake.connection_count == 1
    assert fake.request_count == 12
    assert ids == [f"req_{i}" for i in range(1, 11)]
    reqs = fake.requests
    assert len(reqs) == 12
    first = reqs[0]
    assert first.method == "POST" and first.path == "/v1/chat/completions"
    assert first.headers["authorization"] == "Bearer fake-key"
    assert first.json == chat_body("m0") and json.loads(first.body) == first.json
    assert fake.last_request is not None and fake.last_request.method == "GET"


def test_reset(fake: FakeProvider, session: requests.Session) -> None:
    session.post(fake.base_url + "/chat/completions", json=chat_body("x"), timeout=T)
    fake.script(Reply.text("never"))
    fake.inject(Fault.status(500))
    fake.reset()
    assert fake.request_count == 0 and fake.connection_count == 0 and fake.requests == []
    assert fake.pending_replies == 0 and fake.pending_faults == 0
    r = session.post(fake.base_url + "/chat/completions", json=chat_body("y"), timeout=T)
    assert r.json()["choices"][0]["message"]["content"] == "echo: y"
    assert r.headers["x-request-id"] == "req_1"


def test_thread_safety(fake: FakeProvider) -> None:
    n_threads, per_thread = 16, 20
    errors: list[str] = []
    barrier = threading.Barrier(n_threads)

    def worker(t: int) -> None:
        with requests.Session() as s:
            s.headers["Authorization"] = "Bearer k"
            barrier.wait(timeout=T)
            for i in range(per_thread):
                text = f"thread {t} message {i}"
                try:
                    r = s.post(fake.base_url + "/chat/completions", json=chat_body(text), timeout=T)
                    got = r.json()["choices"][0]["message"]["content"]
                except Exception as exc:  # pragma: no cover - reported below
                    errors.append(repr(exc))
                    continue
                if got != "echo: " + text:
                    errors.append(got)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=20)
    assert not any(th.is_alive() for th in threads)
    assert errors == []
    assert fake.request_count == n_threads * per_thread
    assert fake.connection_count == n_threads
    assert sorted(int(r.request_id[4:]) for r in fake.requests) == list(range(1, 321))


def test_record_false_keeps_no_copies_but_still_counts() -> None:
    with FakeProvider(record=False) as quiet:
        model = openai.Client(quiet.api_key, base_url=quiet.base_url).completion_model("gpt-4o-mini")
        assert model.completion_request("hi").send().text == "echo: hi"
        assert quiet.requests == [] and quiet.request_count == 1


# --------------------------------------------------------------------------- #
# embedding sizes agree with the clients; strict model names
# --------------------------------------------------------------------------- #

def _clients(fake: FakeProvider) -> dict[str, Any]:
    """A client per wire format the fake speaks, pointed at it (no retries: a refusal is final)."""
    key, opts = fake.api_key, {"max_retries": 0, "timeout": 5}
    return {
        "openai": openai.Client(key, base_url=fake.base_url, **opts),
        "mistral": mistral.Client(key, base_url=fake.base_url, **opts),
        "voyage": voyageai.Client(key, base_url=fake.base_url, **opts),
        "cohere": cohere.Client(key, base_url=fake.url, **opts),
        "gemini": gemini.Client(key, base_url=fake.url, **opts),
        "ollama": ollama.Client(base_url=fake.url, **opts),
        "anthropic": anthropic.Client(key, base_url=fake.url, **opts),
        "azure": azure.Client(key, endpoint=fake.url, **opts),
    }


# (client, the client's table of known sizes, the fake's wire format)
KNOWN_TABLES = [
    ("openai", _openai_media.KNOWN_NDIMS, "openai"),
    ("mistral", dict(ROWS["mistral"].known_ndims), "openai"),
    ("voyage", voyageai.KNOWN_NDIMS, "openai"),
    ("cohere", cohere.KNOWN_NDIMS, "cohere"),
    ("gemini", _gemini_media.KNOWN_NDIMS, "gemini"),
]


@pytest.mark.parametrize(("name", "table", "wire"), KNOWN_TABLES, ids=[t[0] for t in KNOWN_TABLES])
def test_known_models_vectors_have_the_size_the_client_announces(
        fake: FakeProvider, name: str, table: dict[str, int], wire: str) -> None:
    client = _clients(fake)[name]
    assert table, "the client knows no sizes: nothing to compare"
    for model, size in table.items():
        emb = client.embedding_model(model)
        assert emb.ndims == size == fake.ndims(model, wire), model  # before any request
        assert len(emb.embed_text("a small cat").vec) == size, model


@pytest.mark.parametrize(("name", "wire"), [("openai", "openai"), ("voyage", "openai"), ("cohere", "cohere"),
                                            ("gemini", "gemini"), ("ollama", "ollama")])
def test_an_unknown_models_size_is_learnt_from_the_vectors_and_told_by_the_fake(
        fake: FakeProvider, name: str, wire: str) -> None:
    emb = _clients(fake)[name].embedding_model("my-own-embedder")
    assert emb.ndims is None
    vec = emb.embed_text("a small cat").vec
    assert emb.ndims == len(vec) == fake.ndims("my-own-embedder", wire)


def test_a_requested_size_wins_in_every_spelling(fake: FakeProvider) -> None:
    clients = _clients(fake)
    for name, model in (("openai", "text-embedding-3-large"), ("mistral", "codestral-embed"),
                        ("voyage", "voyage-3"), ("cohere", "embed-v4.0"), ("gemini", "gemini-embedding-001")):
        emb = clients[name].embedding_model(model, 256)
        assert emb.ndims == len(emb.embed_text("a small cat").vec) == 256, name


def test_ndims_names_the_wire_formats_it_knows(fake: FakeProvider) -> None:
    assert fake.ndims("nomic-embed-text", "ollama") == 768 and fake.ndims("text-embedding-3-large") == 3072
    with pytest.raises(ValueError, match="one of: openai, cohere, gemini, ollama"):
        fake.ndims("m", "anthropic")


def _first(fake: FakeProvider, name: str, model: str) -> Any:
    """One request for `model` in the wire format of client `name`."""
    client = _clients(fake)[name]
    if name == "voyage":
        return client.rerank_model(model).rerank("cat", ["a cat", "a dog"])
    return client.completion_model(model).completion_request("hi").max_tokens(8).send().text


# (client, a model it serves, how a typo is refused: error class, status, and the body's shape)
STRICT = [
    ("openai", "gpt-4o-mini", errors.NotFoundError, 404,
     lambda body, m: body["error"]["code"] == "model_not_found" and f"`{m}` does not" in body["error"]["message"]),
    ("azure", "chat-deploy", errors.NotFoundError, 404,
     lambda body, m: body["error"]["code"] == "DeploymentNotFound"),
    ("anthropic", "claude-3-5-haiku-latest", errors.NotFoundError, 404,
     lambda body, m: body == {"type": "error", "error": {"type": "not_found_error", "message": f"model: {m}"}}),
    ("gemini", "gemini-2.0-flash", errors.NotFoundError, 404,
     lambda body, m: body["error"]["status"] == "NOT_FOUND" and body["error"]["message"].startswith(f"models/{m} ")),
    ("cohere", "command-r", errors.NotFoundError, 404,
     lambda body, m: body["message"].startswith(f"model '{m}' not found")),
    ("ollama", "llama3.2", errors.NotFoundError, 404,
     lambda body, m: body == {"error": f'model "{m}" not found, try pulling it first'}),
    ("voyage", "rerank-2", errors.BadRequestError, 400,
     lambda body, m: list(body) == ["detail"] and repr(m) in body["detail"]),
]


@pytest.mark.parametrize(("name", "model", "cls", "status", "shaped"), STRICT, ids=[s[0] for s in STRICT])
def test_strict_models_refuse_a_typo_in_the_providers_own_shape(
        name: str, model: str, cls: type[errors.APIStatusError], status: int, shaped: Any) -> None:
    typo = model[:-1] + "x"
    with FakeProvider(models=[model]) as fake:
        fake.script(Reply.text("scripted"))
        with pytest.raises(cls) as info:
            _first(fake, name, typo)
        assert info.value.status_code == status and shaped(info.value.body, typo), info.value.body
        assert fake.pending_replies == 1  # the refused request used up nothing
        assert _first(fake, name, model)  # the listed name is served


def test_strict_models_cover_streams_embeddings_uploads_and_the_model_list() -> None:
    with FakeProvider(models=["gpt-4o-mini", "text-embedding-3-small", "whisper-1"]) as fake:
        client = _clients(fake)["openai"]
        with pytest.raises(errors.NotFoundError, match="gpt-4o-mnii"):
            list(client.completion_model("gpt-4o-mnii").completion_request("hi").stream())
        with pytest.raises(errors.NotFoundError, match="The model `text-embedding-3-smal` does not exist"):
            client.embedding_model("text-embedding-3-smal").embed_text("hi")
        audio = TranscriptionRequest(data=b"RIFF", filename="a.wav")
        with pytest.raises(errors.NotFoundError, match="whisper-2"):  # the model rides in a multipart form
            client.transcription_model("whisper-2").transcription(audio)
        assert client.transcription_model("whisper-1").transcription(audio).text
        listed = requests.get(fake.base_url + "/models", headers={"Authorization": f"Bearer {fake.api_key}"}, timeout=T)
        assert [m["id"] for m in listed.json()["data"]] == ["gpt-4o-mini", "text-embedding-3-small", "whisper-1"]
        one = requests.get(fake.base_url + "/models/gpt-4o", headers={"Authorization": f"Bearer {fake.api_key}"},
                           timeout=T)
        assert one.status_code == 404 and one.json()["error"]["code"] == "model_not_found"
    with FakeProvider(models=["text-embedding-004"]) as fake:  # Gemini names the model in the URL
        emb = _clients(fake)["gemini"]
        assert len(emb.embedding_model("text-embedding-004").embed_text("hi").vec) == 768
        with pytest.raises(errors.NotFoundError, match=r"models/text-embedding-005 is not found .* embedContent"):
            emb.embedding_model("text-embedding-005").embed_text("hi")


def test_without_models_every_name_is_served_and_models_are_checked() -> None:
    with FakeProvider() as fake:
        assert fake.models is None
        assert _first(fake, "openai", "anything-at-all") == "echo: hi"
    assert FakeProvider(models="gpt-4o").models == frozenset({"gpt-4o"})  # one name
    for bad in ([1], [""], ["ok", None]):
        with pytest.raises(TypeError, match="models must be model names"):
            FakeProvider(models=bad)  # type: ignore[list-item]


# --------------------------------------------------------------------------- #
# the wire exactly: unmatched paths, the smaller endpoints, recorded field sets
# --------------------------------------------------------------------------- #

ANTHROPIC_HEADERS = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
BEARER = {"Authorization": "Bearer k"}
GEMINI_KEY = {"x-goog-api-key": "k"}

# (method, path, headers, how the provider that owns the path prefix shapes a 404)
UNMATCHED = [
    ("POST", "/v1/nope", BEARER, lambda b: b["error"]["code"] == "not_found" and "/v1/nope" in b["error"]["message"]),
    ("GET", "/v1/messages/nope", ANTHROPIC_HEADERS,
     lambda b: b["type"] == "error" and b["error"]["type"] == "not_found_error" and "nope" in b["error"]["message"]),
    ("POST", "/v2/nope", BEARER, lambda b: list(b) == ["message"] and "/v2/nope" in b["message"]),
    ("POST", "/api/nope", {}, lambda b: list(b) == ["error"] and "/api/nope" in b["error"]),
    ("POST", "/v1beta/models/gemini-2.0-flash:nope", GEMINI_KEY,
     lambda b: b["error"]["status"] == "NOT_FOUND" and b["error"]["code"] == 404),
    ("POST", "/v1/models/gemini-2.0-flash:nope", GEMINI_KEY, lambda b: b["error"]["status"] == "NOT_FOUND"),
    ("POST", "/openai/deployments/d/nope", {"api-key": "k"},
     lambda b: set(b["error"]) == {"code", "message"} and "/d/nope" in b["error"]["message"]),
]


@pytest.mark.parametrize(("method", "path", "headers", "shaped"), UNMATCHED, ids=[u[1] for u in UNMATCHED])
def test_an_unmatched_path_answers_404_in_the_shape_of_the_provider_owning_its_prefix(
        fake: FakeProvider, method: str, path: str, headers: dict[str, str], shaped: Any) -> None:
    missing = requests.request(method, fake.url + path, json={}, headers=headers, timeout=T)
    assert missing.status_code == 404 and shaped(missing.json()), missing.text
    fake.inject(Fault.status(503), path=path)  # a fault on an unmatched path speaks the same dialect
    faulted = requests.request(method, fake.url + path, json={}, headers=headers, timeout=T)
    assert faulted.status_code == 503 and set(faulted.json()) == set(missing.json()), faulted.text


def test_responses_usage_and_text_events_carry_the_recorded_field_sets(fake: FakeProvider) -> None:
    recorded = load_fixture_json("openai/responses.text.python_sdk.json")
    body = {"model": "gpt-4o-mini", "input": "hello there"}
    plain = requests.post(fake.base_url + "/responses", json=body, headers=BEARER, timeout=T).json()
    assert set(plain["usage"]["input_tokens_details"]) == set(recorded["usage"]["input_tokens_details"])
    assert plain["usage"]["input_tokens_details"] == {"cached_tokens": 0, "cache_write_tokens": 0}
    assert set(plain["output"][0]["content"][0]) == set(recorded["output"][0]["content"][0])  # logprobs: []
    stream = requests.post(fake.base_url + "/responses", json={**body, "stream": True}, headers=BEARER, timeout=T)
    events = {kind: data for kind, data in sse_events(stream.text)}
    for kind in ("response.output_text.delta", "response.output_text.done"):
        assert events[kind]["logprobs"] == [], kind
    assert events["response.content_part.added"]["part"]["logprobs"] == []
    assert events["response.completed"]["response"]["usage"]["input_tokens_details"]["cache_write_tokens"] == 0


def load_fixture_json(name: str) -> Any:
    return json.loads((ROOT / "tests" / "fixtures" / name).read_text(encoding="utf-8"))


def test_cohere_tool_results_given_as_documents_are_read(fake: FakeProvider) -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "add", "arguments": "{}"}}
    def tool(content: Any) -> str:
        body = {"model": "command-r", "messages": [
            {"role": "user", "content": "add"},
            {"role": "assistant", "tool_plan": "I will add.", "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "c1", "content": content}]}
        r = requests.post(fake.url + "/v2/chat", json=body, headers=BEARER, timeout=T)
        return str(r.json()["message"]["content"][0]["text"])

    assert tool([{"type": "document", "document": {"data": {"result": "3"}}}]) == "tool result: 3"
    assert tool([{"type": "document", "document": {"data": '{"sum": 3}', "id": "d1"}}]) == 'tool result: {"sum": 3}'
    assert tool([{"type": "document", "document": {"data": {"a": 1, "b": "x"}}},
                 {"type": "text", "text": "and more"}]) == 'tool result: {"a": 1, "b": "x"} and more'
    assert tool("plain") == "tool result: plain"


def test_voyage_output_dimension_sizes_the_vectors(fake: FakeProvider) -> None:
    body = {"model": "voyage-3", "input": ["a cat"], "input_type": "document", "output_dimension": 256}
    r = requests.post(fake.base_url + "/embeddings", json=body, headers=BEARER, timeout=T).json()
    assert len(r["data"][0]["embedding"]) == 256
    for unasked in (None, "absent"):  # the voyageai SDK sends null when no size is asked
        body["output_dimension"] = unasked
        if unasked == "absent":
            del body["output_dimension"]
        r = requests.post(fake.base_url + "/embeddings", json=body, headers=BEARER, timeout=T).json()
        assert len(r["data"][0]["embedding"]) == 1024 == fake.ndims("voyage-3")
    assert r["id"]  # Mistral's embeddings, served by this route too, carry one (its SDK requires it)


def test_anthropic_count_tokens_agrees_with_the_messages_usage(fake: FakeProvider) -> None:
    body = {"model": "claude-3-5-haiku-latest", "system": "Be brief please",
            "messages": [{"role": "user", "content": "how many words are here"}]}
    r = requests.post(fake.url + "/v1/messages/count_tokens", json=body, headers=ANTHROPIC_HEADERS, timeout=T)
    assert r.status_code == 200 and r.json() == {"input_tokens": 8}
    sent = requests.post(fake.url + "/v1/messages", json={**body, "max_tokens": 16}, headers=ANTHROPIC_HEADERS,
                         timeout=T).json()
    assert sent["usage"]["input_tokens"] == 8
    bad = requests.post(fake.url + "/v1/messages/count_tokens", json={"model": "m"}, headers=ANTHROPIC_HEADERS,
                        timeout=T)
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"


def test_gemini_count_tokens_agrees_with_the_generate_usage(fake: FakeProvider) -> None:
    contents = [{"role": "user", "parts": [{"text": "how many words are here"}]}]
    url = fake.url + "/v1beta/models/gemini-2.0-flash:"
    r = requests.post(url + "countTokens", json={"contents": contents}, headers=GEMINI_KEY, timeout=T)
    assert r.status_code == 200
    assert r.json() == {"totalTokens": 5, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 5}]}
    wrapped = {"generateContentRequest": {"model": "models/gemini-2.0-flash", "contents": contents,
                                          "systemInstruction": {"parts": [{"text": "be brief"}]}}}
    r = requests.post(url + "countTokens", json=wrapped, headers=GEMINI_KEY, timeout=T)
    assert r.json()["totalTokens"] == 7
    gen = requests.post(url + "generateContent", json=wrapped["generateContentRequest"], headers=GEMINI_KEY,
                        timeout=T).json()
    assert gen["usageMetadata"]["promptTokenCount"] == 7


def test_cohere_rerank_orders_documents_by_similarity(fake: FakeProvider) -> None:
    body = {"model": "rerank-v3.5", "query": "a small cat", "documents": ["stock prices", "a small cat sat", "cats"]}
    r = requests.post(fake.url + "/v2/rerank", json=body, headers=BEARER, timeout=T)
    out = r.json()
    assert r.status_code == 200 and out["results"][0]["index"] == 1
    assert sorted(x["index"] for x in out["results"]) == [0, 1, 2]
    assert out["meta"] == {"api_version": {"version": "2"}, "billed_units": {"search_units": 1}}
    assert all(0 <= x["relevance_score"] <= 1 for x in out["results"])
    top = requests.post(fake.url + "/v2/rerank", json={**body, "top_n": 1}, headers=BEARER, timeout=T).json()
    assert top["results"] == out["results"][:1]
    bad = requests.post(fake.url + "/v2/rerank", json={**body, "documents": []}, headers=BEARER, timeout=T)
    assert bad.status_code == 400 and list(bad.json()) == ["message"]


def test_ollama_tags_lists_the_served_models() -> None:
    with FakeProvider(models=["llama3.2:latest", "nomic-embed-text"]) as fake:
        r = requests.get(fake.url + "/api/tags", timeout=T)
        models = r.json()["models"]
        assert [m["name"] for m in models] == [m["model"] for m in models] == ["llama3.2:latest", "nomic-embed-text"]
        assert set(models[0]) == {"name", "model", "modified_at", "size", "digest", "details"}
        assert set(models[0]["details"]) == {"parent_model", "format", "family", "families", "parameter_size",
                                             "quantization_level"}
    with FakeProvider() as fake:
        assert requests.get(fake.url + "/api/tags", timeout=T).json()["models"]


def test_ollama_generate_plain_and_streamed(fake: FakeProvider) -> None:
    body = {"model": "llama3.2", "prompt": "why is the sky blue", "stream": False}
    one = requests.post(fake.url + "/api/generate", json=body, timeout=T)
    final = one.json()
    assert one.headers["Content-Type"] == "application/json"
    assert final["response"] == "echo: why is the sky blue" and final["done"] is True
    assert final["done_reason"] == "stop" and final["prompt_eval_count"] == 5 and final["eval_count"] == 6
    del body["stream"]  # Ollama streams by default
    streamed = requests.post(fake.url + "/api/generate", json=body, timeout=T)
    assert streamed.headers["Content-Type"] == "application/x-ndjson"
    lines = [json.loads(line) for line in streamed.text.splitlines()]
    recorded = [json.loads(line) for line in
                (ROOT / "tests/fixtures/ollama/api_generate.stream.ndjson").read_text().splitlines() if line]
    assert set(lines[0]) == set(recorded[0])  # model, created_at, response, done
    assert "".join(x["response"] for x in lines) == final["response"]
    assert [x["done"] for x in lines] == [False] * (len(lines) - 1) + [True]
    assert {k: v for k, v in lines[-1].items() if k not in ("response", "created_at")} == \
        {k: v for k, v in final.items() if k not in ("response", "created_at")}
    fake.inject(Fault.sse_error(after_events=2, error={"message": "model crashed"}))
    cut = requests.post(fake.url + "/api/generate", json=body, timeout=T).text.splitlines()
    assert len(cut) == 3 and json.loads(cut[-1]) == {"error": "model crashed"}
    missing = requests.post(fake.url + "/api/generate", json={"prompt": "x"}, timeout=T)
    assert missing.status_code == 400 and missing.json() == {"error": "model is required"}
