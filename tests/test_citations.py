"""Citations and safety results from recorded payloads, sent and streamed (issue 13)."""

from __future__ import annotations

import json
import re

import responses
from conftest import load_bytes, load_fixture

from rig_sync.completion import Citation, SafetyResult
from rig_sync.providers import azure, cohere, gemini, perplexity

BASE = "http://127.0.0.1:9"
KEY = "sk-test-0123456789abcdef"
ANY = re.compile(r"http://127\.0\.0\.1:9/.*")


def sse(payloads: list[str]) -> bytes:
    return b"".join(b"data: " + p.encode() + b"\n\n" for p in payloads)


def test_perplexity_citations_sent_and_streamed(mocked: responses.RequestsMock) -> None:
    model = perplexity.Client(KEY, base_url=BASE, max_retries=0).completion_model("sonar")
    mocked.add("POST", ANY, body=load_bytes("perplexity/chat_completion.citations.json"),
               content_type="application/json")
    resp = model.completion_request("Hi").send()
    urls = load_fixture("perplexity/chat_completion.citations.json")["citations"]
    assert [c.url for c in resp.citations] == urls
    assert resp.citations[1] == Citation(url="https://en.wikipedia.org/wiki/San_Francisco")

    lines = load_fixture("perplexity/chat_stream.citations.chunks.txt").splitlines()
    mocked.add("POST", ANY, body=sse(lines), content_type="text/event-stream")  # as recorded: no [DONE]
    streamed = model.completion_request("Hi").stream().response
    assert [c.url for c in streamed.citations] == json.loads(lines[-1])["citations"]  # once, not per chunk


def test_cohere_citations_sent_and_streamed(mocked: responses.RequestsMock) -> None:
    model = cohere.Client(KEY, base_url=BASE, max_retries=0).completion_model("command-a")
    data = load_fixture("cohere/chat.v2.documents_citations.json")
    mocked.add("POST", ANY, json=data)
    resp = model.completion_request("Hi").send()
    first = data["message"]["citations"][0]
    assert resp.citations[0].start == first["start"] and resp.citations[0].end == first["end"]
    assert resp.citations[0].document_id == first["sources"][0]["id"]
    assert resp.text[first["start"]:first["end"]] == first["text"]
    assert len(resp.citations) == sum(len(c["sources"]) for c in data["message"]["citations"])

    events = load_fixture("cohere/chat_stream.v2.documents_citations.events.json")
    body = b"".join(f"event: {e['event']}\ndata: {json.dumps(e['data'])}\n\n".encode() for e in events)
    mocked.add("POST", ANY, body=body, content_type="text/event-stream")
    streamed = model.completion_request("Hi").stream().response
    cited = [e["data"]["delta"]["message"]["citations"] for e in events if e["event"] == "citation-start"]
    assert [(c.start, c.end) for c in streamed.citations] == [
        (c["start"], c["end"]) for c in cited for _ in c["sources"]]


def test_gemini_citations_and_safety(mocked: responses.RequestsMock) -> None:
    model = gemini.Client(KEY, base_url=BASE, max_retries=0).completion_model("gemini-x")
    data = load_fixture("gemini/generate_content.citations.json")
    mocked.add("POST", ANY, json=data)
    resp = model.completion_request("Hi").send()
    sources = data["candidates"][0]["citationMetadata"]["citationSources"]
    assert [(c.url, c.start, c.end) for c in resp.citations] == [
        (s.get("uri"), s["startIndex"], s["endIndex"]) for s in sources]
    assert resp.safety[0] == SafetyResult("HARM_CATEGORY_HATE_SPEECH", False, "NEGLIGIBLE", "answer")
    assert len(resp.safety) == 4

    grounded = load_fixture("gemini/generate_content.google_search_grounding.json")
    mocked.add("POST", ANY, json=grounded)
    resp = model.completion_request("Hi").send()
    assert resp.citations and all(c.url for c in resp.citations)
    # Gemini's grounding spans count UTF-8 bytes of the answer
    assert all(resp.text.encode()[c.start or 0:c.end].decode() == c.cited_text for c in resp.citations)


def test_azure_content_filters_streamed(mocked: responses.RequestsMock) -> None:
    lines = load_fixture("azure/chat_stream.content_filter.chunks.txt").splitlines()
    mocked.add("POST", ANY, body=sse([*lines, "[DONE]"]), content_type="text/event-stream")
    model = azure.Client(KEY, endpoint=BASE, max_retries=0).completion_model("gpt-5-nano")
    resp = model.completion_request("Hi").stream().response
    assert resp.text == "Capital of Denmark."
    prompt = {r.category: r for r in resp.safety if r.target == "prompt"}
    answer = {r.category: r for r in resp.safety if r.target == "answer"}
    assert prompt["jailbreak"] == SafetyResult("jailbreak", False, "not detected", "prompt")
    assert set(answer) == {"hate", "self_harm", "sexual", "violence"}
    assert all(r.level == "safe" and not r.blocked for r in answer.values())
