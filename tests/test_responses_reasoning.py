"""OpenAI Responses reasoning items kept and sent back (issue 13): the item's id, summary and
`encrypted_content` ride on the `Reasoning` part, so that with `store=False` reasoning goes back
in the next request's input without server-side state; and `output_text` annotations are
`resp.citations`. Every payload here is recorded (tests/fixtures)."""

from __future__ import annotations

import copy
import json
from typing import Any

import responses
from conftest import load_fixture, sent_json, serve_fixture

from rig_sync.agent import AgentBuilder
from rig_sync.completion import Citation
from rig_sync.message import Message, Reasoning
from rig_sync.providers import openai
from rig_sync.tool import tool

BASE = "http://127.0.0.1:9/v1"
URL = f"{BASE}/responses"
RECORDED = "azure/responses.reasoning_encrypted_content.json"
ITEM = next(i for i in load_fixture(RECORDED)["output"] if i["type"] == "reasoning")
# What the API needs to read the reasoning back, exactly as it gave it.
SENT_BACK = {key: ITEM[key] for key in ("type", "id", "encrypted_content", "summary")}


def model(store: bool | None = None) -> openai.ResponsesModel:
    return openai.Client("sk-test", base_url=BASE, max_retries=0).responses_model("gpt-5-mini", store=store)


def test_a_recorded_reasoning_item_is_kept_whole(mocked: responses.RequestsMock) -> None:
    serve_fixture(mocked, URL, RECORDED)
    resp = model().completion_request("Add it up").send()
    reasoning = resp.choice[0]
    assert isinstance(reasoning, Reasoning)
    assert reasoning.id == ITEM["id"]
    assert reasoning.encrypted == ITEM["encrypted_content"]
    assert reasoning.summary == tuple(s["text"] for s in ITEM["summary"])
    assert resp.reasoning == ITEM["summary"][0]["text"]
    assert ITEM["encrypted_content"] not in repr(reasoning)  # an opaque blob: its length only


def test_reasoning_goes_back_before_the_answer_it_led_to(mocked: responses.RequestsMock) -> None:
    serve_fixture(mocked, URL, RECORDED)
    serve_fixture(mocked, URL, RECORDED)
    chat = model(store=False)
    first = chat.completion_request("Add it up").send()
    chat.completion_request([Message.user("Add it up"), first.message(), Message.user("Now halve it")]).send()
    sent = sent_json(mocked, 1)["input"]
    assert [item["type"] for item in sent] == ["message", "reasoning", "message", "message"]
    assert sent[1] == SENT_BACK
    assert sent[2]["role"] == "assistant" and sent[2]["content"][0]["text"] == first.text


def test_store_false_asks_for_the_encrypted_reasoning(mocked: responses.RequestsMock) -> None:
    for _ in range(3):
        serve_fixture(mocked, URL, RECORDED)
    model(store=False).completion_request("Hi").send()
    model(store=False).completion_request("Hi").additional_params({"include": ["file_search_call.results"]}).send()
    model().completion_request("Hi").send()
    first, merged, default = (sent_json(mocked, i) for i in range(3))
    assert first["store"] is False and first["include"] == ["reasoning.encrypted_content"]
    assert merged["include"] == ["file_search_call.results", "reasoning.encrypted_content"]
    assert "store" not in default and "include" not in default


def test_reasoning_without_a_summary_is_kept_for_its_encrypted_content(mocked: responses.RequestsMock) -> None:
    body = copy.deepcopy(load_fixture(RECORDED))
    body["output"][0]["summary"] = []  # what a request that asks for no summary gets
    mocked.add("POST", URL, json=body)
    serve_fixture(mocked, URL, RECORDED)
    chat = model(store=False)
    first = chat.completion_request("Add it up").send()
    assert first.choice[0] == Reasoning("", id=ITEM["id"], encrypted=ITEM["encrypted_content"])
    chat.completion_request([first.message(), Message.user("Again")]).send()
    assert sent_json(mocked, 1)["input"][0] == {**SENT_BACK, "summary": []}


def test_another_providers_reasoning_is_not_sent(mocked: responses.RequestsMock) -> None:
    serve_fixture(mocked, URL, RECORDED)
    history = [Message.assistant([Reasoning("thought", "sig"), "Hi"]), Message.user("Again")]
    model().completion_request(history).send()
    assert [item["type"] for item in sent_json(mocked)["input"]] == ["message", "message"]


def test_streamed_reasoning_goes_back_too(mocked: responses.RequestsMock) -> None:
    recorded = load_fixture(RECORDED)
    events: list[dict[str, Any]] = [
        {"type": "response.output_item.done", "output_index": 0, "item": ITEM},
        {"type": "response.completed", "response": recorded},
    ]
    mocked.add("POST", URL, body="".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events),
               content_type="text/event-stream")
    serve_fixture(mocked, URL, RECORDED)
    chat = model(store=False)
    first = chat.completion_request("Add it up").stream().response
    chat.completion_request([first.message(), Message.user("Again")]).send()
    assert sent_json(mocked, 1)["input"][0] == SENT_BACK


def test_the_agent_tool_loop_sends_reasoning_back(mocked: responses.RequestsMock) -> None:
    call = load_fixture("openai/responses.function_call.json")
    call["output"] = [ITEM, *call["output"]]  # reasoning, then the call it led to: as reasoning models answer
    mocked.add("POST", URL, json=call)
    serve_fixture(mocked, URL, "openai/responses.after_function_call_output.json")

    @tool
    def get_weather_at_location(location: str) -> str:
        """The weather at a place."""
        return f"Sunny in {location}"

    agent = AgentBuilder(model(store=False)).tool(get_weather_at_location).build()
    agent.prompt("What should I wear?")
    sent = sent_json(mocked, 1)["input"]
    assert [item["type"] for item in sent] == ["message", "reasoning", "function_call", "function_call_output"]
    assert sent[1] == SENT_BACK


def test_output_text_annotations_are_citations(mocked: responses.RequestsMock) -> None:
    name = "openai/spec.responses.web_search.json"
    recorded = load_fixture(name)
    serve_fixture(mocked, URL, name)
    resp = model().completion_request("News?").send()
    annotations = [a for i in recorded["output"] if i["type"] == "message" for c in i["content"]
                   for a in c["annotations"]]
    assert len(annotations) == 3
    assert resp.citations == tuple(Citation(url=a["url"], title=a["title"], start=a["start_index"],
                                            end=a["end_index"]) for a in annotations)


def test_citation_spans_count_in_the_whole_text(mocked: responses.RequestsMock) -> None:
    body = copy.deepcopy(load_fixture("openai/spec.responses.web_search.json"))
    message = body["output"][1]
    first = message["content"][0]
    message["content"] = [{"type": "output_text", "text": "Intro. ", "annotations": []}, first]
    mocked.add("POST", URL, json=body)
    resp = model().completion_request("News?").send()
    assert [c.start for c in resp.citations] == [a["start_index"] + 7 for a in first["annotations"]]


def test_citation_spans_count_a_refusal_before_them(mocked: responses.RequestsMock) -> None:
    body = copy.deepcopy(load_fixture("openai/spec.responses.web_search.json"))
    message = body["output"][1]
    first = message["content"][0]
    message["content"] = [{"type": "refusal", "refusal": "No. "}, first]
    mocked.add("POST", URL, json=body)
    resp = model().completion_request("News?").send()
    assert resp.text.startswith("No. ")
    assert [c.start for c in resp.citations] == [a["start_index"] + 4 for a in first["annotations"]]
