"""Per-call cost against raw `requests` on the same loopback fake provider (in another process):

* one non-streaming chat completion, end to end, typed response  vs  `Session.post(...).json()`
* streaming: per-chunk cost  vs  `iter_lines()` + `json.loads` on the same SSE body
* embeddings of 10,000 texts x 1536 dims: base64 through `embed_texts`  vs  float JSON + `json`
"""

from __future__ import annotations

import json

import requests
from _common import HEADER, Row, embedding_inputs, fake_server, raw_float_embeddings, timed_rounds

from rig_sync.providers import openai

HEADERS = {"Authorization": "Bearer fake-key"}


def chat(base_url: str, calls: int = 200, rounds: int = 15) -> Row:
    session = requests.Session()
    model = openai.Client("fake-key", base_url=base_url).completion_model("gpt-4o-mini")
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello there"}]}

    def raw() -> None:
        for _ in range(calls):
            data = session.post(base_url + "/chat/completions", json=body, headers=HEADERS).json()
            assert data["choices"][0]["message"]["content"]

    def ours() -> None:
        for _ in range(calls):
            assert model.completion_request("Hello there").send().text

    t = timed_rounds({"raw": raw, "ours": ours}, rounds)
    ratio = t["ours"] / t["raw"]
    return Row("chat completion, per call", t["ours"] / calls * 1e6, t["raw"] / calls * 1e6, "us",
               "<= 0.9x", ratio, ratio <= 0.9)


def streaming(base_url: str, words: int = 2000, rounds: int = 15) -> Row:
    session = requests.Session()
    model = openai.Client("fake-key", base_url=base_url).completion_model("gpt-4o-mini")
    prompt = " ".join(f"w{i}" for i in range(words))
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": prompt}], "stream": True,
            "stream_options": {"include_usage": True}}

    def raw() -> None:
        with session.post(base_url + "/chat/completions", json=body, headers=HEADERS, stream=True) as resp:
            pieces = 0
            for line in resp.iter_lines():
                if line.startswith(b"data: ") and line != b"data: [DONE]":
                    chunk = json.loads(line[6:])
                    if chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                        pieces += 1
            assert pieces > words

    def ours() -> None:
        with model.completion_request(prompt).stream() as stream:
            assert sum(1 for _ in stream.text_stream()) > words

    t = timed_rounds({"raw": raw, "ours": ours}, rounds)
    ratio = t["ours"] / t["raw"]
    per = words + 3
    return Row(f"streaming, per chunk ({words} chunks)", t["ours"] / per * 1e6, t["raw"] / per * 1e6, "us",
               "<= 1.0x", ratio, ratio <= 1.0)


def embeddings(base_url: str, texts: int = 10_000, rounds: int = 5) -> Row:
    session = requests.Session()
    model = openai.Client("fake-key", base_url=base_url).embedding_model("text-embedding-3-small")
    inputs = embedding_inputs(texts)

    def raw() -> None:
        vectors = raw_float_embeddings(session, base_url, inputs, HEADERS)
        assert len(vectors) == texts and len(vectors[0]) == 1536

    def ours() -> None:
        result = model.embed_texts(inputs)
        assert len(result) == texts and len(result[0].vec) == 1536

    t = timed_rounds({"raw": raw, "ours": ours}, rounds)
    speedup = t["raw"] / t["ours"]
    return Row(f"embeddings, {texts} x 1536, throughput", texts / t["ours"], texts / t["raw"], "texts/s",
               ">= 2x", speedup, speedup >= 2.0)


def run() -> list[Row]:
    with fake_server() as base_url:
        return [chat(base_url), streaming(base_url), embeddings(base_url)]


if __name__ == "__main__":
    print(HEADER)
    for row in run():
        print(row.line())
