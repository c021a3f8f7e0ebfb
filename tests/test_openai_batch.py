"""OpenAI's Batch API: the adapter (`rig_sync/providers/_openai_batch.py`, the `batch_jobs` methods
of `openai.Client`) against the recorded payloads in tests/fixtures/batch/openai (with `responses`),
then end to end against the loopback FakeProvider's Files and Batch routes, then hostile answers."""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import responses
from conftest import load_bytes, load_fixture

from rig_sync import errors
from rig_sync.client.jobs import JobEntry, JobError, JobState, RemoteJob
from rig_sync.completion import CompletionResponse
from rig_sync.providers import _openai_batch, openai
from rig_sync.testing import FakeProvider, Fault, Reply

BASE = "http://127.0.0.1:9/v1"
KEY = "sk-test-0123456789abcdef"
OPENAI_FIXTURES = Path(__file__).resolve().parent / "fixtures" / "batch" / "openai"


def mock_client() -> openai.Client:
    return openai.Client(KEY, base_url=BASE, max_retries=0)


def fake_client(fake: FakeProvider) -> openai.Client:
    return openai.Client(fake.api_key, base_url=fake.base_url, max_retries=0)


def chat_entries(client: openai.Client, prompts: list[str], model: str = "gpt-4o-mini") -> list[JobEntry]:
    m = client.completion_model(model)
    return [JobEntry(f"i{k}", m.prepare(m.completion_request(p).build())) for k, p in enumerate(prompts)]


def remote(client: openai.Client, name: str) -> RemoteJob:
    return client._remote(load_fixture(f"batch/openai/{name}"), name)


def poll_until_ended(client: openai.Client, job_id: str, limit: int = 20) -> RemoteJob:
    for _ in range(limit):
        job = client.job(job_id)
        if job.state.ended:
            return job
    raise AssertionError(f"job {job_id} did not end within {limit} polls")


# --- the request file and bodies, against the recorded examples ------------------------------------


def test_input_file_lines_have_the_recorded_shape(mocked: responses.RequestsMock) -> None:
    recorded = [json.loads(line)
                for line in load_bytes("batch/openai/input.chat_completions.ruby.jsonl").splitlines()]
    mocked.add("POST", f"{BASE}/files", json=load_fixture("batch/openai/files.create.batch.json"))
    mocked.add("POST", f"{BASE}/batches",
               json=load_fixture("batch/openai/batch.validating.create_response.2025-10.json"))
    client = mock_client()
    job = client.create_job("completion", "gpt-4o-mini", chat_entries(client, ["What is 2+2?", "What is 3+2?"]),
                            label="rs-1761896200-2-0123abcd")
    assert job.state is JobState.PENDING and job.id == "batch_690467101b488190972cdce590a00ae3"

    upload = mocked.calls[0].request
    assert b'name="purpose"\r\n\r\nbatch\r\n' in upload.body
    part = upload.body.split(b'filename="rs-1761896200-2-0123abcd.jsonl"', 1)[1]
    data = part.split(b"\r\n\r\n", 1)[1].rsplit(b"\r\n--", 1)[0]
    assert data.endswith(b"\n") and data.count(b"\n") == 2
    lines = [json.loads(line) for line in data.splitlines()]
    for mine, theirs in zip(lines, recorded, strict=True):
        assert mine.keys() == theirs.keys()
        assert (mine["method"], mine["url"]) == (theirs["method"], theirs["url"]) == ("POST", "/v1/chat/completions")
        assert mine["body"]["messages"][-1] == {"role": "user", "content": theirs["body"]["messages"][-1]["content"]}
    assert [line["custom_id"] for line in lines] == ["i0", "i1"]

    create = json.loads(mocked.calls[1].request.body)
    recorded_create = load_fixture("batch/openai/batches.create.request.metadata.json")
    assert create.keys() == recorded_create.keys()
    assert create == {"input_file_id": "file-FqLLytrEaPH6hmSPXTr1db", "endpoint": "/v1/chat/completions",
                      "completion_window": "24h", "metadata": {"rig_sync_label": "rs-1761896200-2-0123abcd"}}


@pytest.mark.parametrize("name", sorted(p.name for p in OPENAI_FIXTURES.glob("input.*.jsonl")))
def test_our_lines_have_the_keys_of_every_recorded_input_file(name: str) -> None:
    client = mock_client()
    [chat] = chat_entries(client, ["hi"])
    emb = JobEntry("e", client.embedding_model("text-embedding-3-small").prepare_embeddings(["hi"]))
    for theirs in (json.loads(line) for line in load_bytes(f"batch/openai/{name}").splitlines() if line.strip()):
        entry = emb if theirs["url"] == "/v1/embeddings" else chat
        data, endpoint = client._input_file("embeddings" if entry is emb else "completion", [entry])
        ours = json.loads(data)
        assert ours.keys() == theirs.keys() and ours["method"] == theirs["method"] == "POST"
        assert ours["url"] == theirs["url"] == endpoint
        assert ours["body"]["model"] and set(theirs["body"]) - {"max_tokens"} <= set(ours["body"]) | {"input"}


def test_embeddings_lines_go_to_the_embeddings_endpoint(mocked: responses.RequestsMock) -> None:
    mocked.add("POST", f"{BASE}/files", json=load_fixture("batch/openai/files.create.batch.json"))
    mocked.add("POST", f"{BASE}/batches", json=load_fixture("batch/openai/batch.completed.embeddings.sdk_to_json.json"))
    client = mock_client()
    emb = client.embedding_model("text-embedding-3-small")
    job = client.create_job("embeddings", "text-embedding-3-small", [JobEntry("e0", emb.prepare_embeddings(["x"]))],
                            label="rs-1")
    assert job.state is JobState.COMPLETED and (job.total, job.succeeded, job.failed) == (25, 25, 0)
    body = mocked.calls[0].request.body
    line = json.loads(body.split(b"\r\n\r\n", 2)[2].split(b"\n", 1)[0])
    assert line == {"custom_id": "e0", "method": "POST", "url": "/v1/embeddings",
                    "body": {**emb.prepare_embeddings(["x"]).body}}  # what embed_texts would send
    assert json.loads(mocked.calls[1].request.body)["endpoint"] == "/v1/embeddings"


def test_the_url_is_the_base_urls_path_plus_the_prepared_path(mocked: responses.RequestsMock) -> None:
    base = "http://127.0.0.1:9/proxy/openai/v1"
    mocked.add("POST", f"{base}/files", json={"id": "file-1", "object": "file"})
    mocked.add("POST", f"{base}/batches", json=load_fixture("batch/openai/batch.validating.create_response.json"))
    client = openai.Client(KEY, base_url=base, max_retries=0)
    client.create_job("completion", "m", chat_entries(client, ["hi"], "m"), label="rs-1")
    assert b'"url":"/proxy/openai/v1/chat/completions"' in mocked.calls[0].request.body
    assert json.loads(mocked.calls[1].request.body)["endpoint"] == "/proxy/openai/v1/chat/completions"


# --- recorded batch objects and results --------------------------------------------------------------

# OpenAI's statuses and the state each stands for (written out here, apart from the adapter's table).
OPENAI_STATES = {"validating": JobState.PENDING, "in_progress": JobState.RUNNING, "finalizing": JobState.RUNNING,
                 "completed": JobState.COMPLETED, "failed": JobState.FAILED, "expired": JobState.EXPIRED,
                 "cancelling": JobState.CANCELLING, "cancelled": JobState.CANCELLED}
BATCH_OBJECTS = sorted(p.name for p in OPENAI_FIXTURES.glob("batch.*.json"))


def test_the_recorded_batch_objects_cover_every_state() -> None:
    statuses = {load_fixture(f"batch/openai/{name}")["status"] for name in BATCH_OBJECTS}
    assert statuses == set(OPENAI_STATES)


@pytest.mark.parametrize("name", BATCH_OBJECTS)
def test_recorded_batch_objects_map_to_states(name: str) -> None:
    recorded = load_fixture(f"batch/openai/{name}")
    job = remote(mock_client(), name)
    counts = recorded["request_counts"]
    assert job.state is OPENAI_STATES[recorded["status"]]
    assert (job.total, job.succeeded, job.failed) == (counts["total"], counts["completed"], counts["failed"])
    assert job.provider == "openai" and job.id == recorded["id"] and job.raw == recorded
    assert (job.error is not None) == (job.state is JobState.FAILED)


def test_recorded_states_spot_checks() -> None:
    client = mock_client()
    assert remote(client, "batch.in_progress.json").succeeded == 1
    assert remote(client, "batch.cancelled.json").state.ended
    assert not remote(client, "batch.cancelling.json").state.ended
    failed = remote(client, "batch.failed.abridged.json")
    assert failed.error == "missing_required_parameter: Missing required parameter: 'messages'. (line 1)"


def test_a_failed_batch_says_why() -> None:
    obj = {**load_fixture("batch/openai/batch.validating.create_response.json"), "status": "failed", "errors": {
        "object": "list", "data": [{"code": "invalid_json_line", "message": "This line is not parseable as valid JSON.",
                                    "param": None, "line": 3}]}}
    job = mock_client()._remote(obj, "GET /batches/x")
    assert job.state is JobState.FAILED and job.state.ended
    assert job.error == "invalid_json_line: This line is not parseable as valid JSON. (line 3)"


@pytest.mark.parametrize("broken", [
    {"status": "in_progress"},  # no id
    {"id": "batch_1"},  # no status
    {"id": "batch_1", "status": "paused"},  # a status OpenAI does not have
    {"id": "../files/x", "status": "completed"},  # an id that would walk the URL
    {"id": 7, "status": "completed"},
    ["not", "an", "object"],
])
def test_a_batch_object_missing_fields_is_a_decode_error(mocked: responses.RequestsMock, broken: Any) -> None:
    mocked.add("GET", f"{BASE}/batches/batch_1", json=broken)
    with pytest.raises(errors.ResponseDecodeError, match="openai: GET /batches/batch_1: ") as got:
        mock_client().job("batch_1")
    assert got.value.body == broken


def test_recorded_output_file_gives_each_answer(mocked: responses.RequestsMock) -> None:
    client = mock_client()
    job = remote(client, "batch.completed.json")
    mocked.add("GET", f"{BASE}/files/file-GykDwPni5UjeQEo2wkgrh7/content",
               body=load_bytes("batch/openai/output.chat_completions.jsonl"), content_type="application/octet-stream")
    got = list(client.job_results(job))
    assert [cid for cid, _ in got] == ["0", "1", "2"]
    parse = client.completion_model("gpt-3.5-turbo").prepare(
        client.completion_model("gpt-3.5-turbo").completion_request("x").build()).parse
    answers = [parse(body, "openai") for _, body in got]
    assert all(isinstance(a, CompletionResponse) for a in answers)
    assert answers[0].choice[0].text.startswith("Spaghetti is a type of pasta")
    assert answers[2].usage.output_tokens == 110


def test_recorded_error_file_gives_status_errors(mocked: responses.RequestsMock) -> None:
    client = mock_client()
    job = remote(client, "batch.completed.json")
    job = RemoteJob("openai", job.id, job.state, raw={**job.raw, "output_file_id": None, "error_file_id": "file-err"})
    mocked.add("GET", f"{BASE}/files/file-err/content",
               body=load_bytes("batch/openai/error_file.model_not_found.jsonl"))
    got = dict(client.job_results(job))
    assert list(got) == ["440000", "440001"]
    err = got["440000"]
    assert isinstance(err, errors.PermissionDeniedError)  # what a 403 raises when sent on its own
    assert err.status_code == 403 and err.request_id == "77cb94f3725b4661f7b0c201b459bebd"
    assert err.code == "model_not_found" and "does not have access to model" in err.message
    assert err.body["error"]["type"] == "invalid_request_error"


def test_recorded_embeddings_output_parses_to_vectors(mocked: responses.RequestsMock) -> None:
    client = mock_client()
    job = remote(client, "batch.completed.embeddings.sdk_to_json.json")
    mocked.add("GET", f"{BASE}/files/file-BhMQY4umjMy228GzgVqvgB/content",
               body=load_bytes("batch/openai/output.embeddings.jsonl"))
    [(cid, body)] = list(client.job_results(job))
    assert cid == "e4d52600-5a9a-48fc-8afe-af3ed6d835dd_tags"
    emb = client.embedding_model("text-embedding-3-small")
    assert emb.prepare_embeddings(["x"]).parse(body, "openai") == [[-0.0075121797, 0.016524209, 0.012069914,
                                                                    -0.032091618]]


def test_recorded_expired_error_file(mocked: responses.RequestsMock) -> None:
    client = mock_client()
    job = remote(client, "batch.expired.json")
    mocked.add("GET", f"{BASE}/files/file-ArU63VGubAcHYbti9apgCy/content",
               body=load_bytes("batch/openai/error_file.batch_expired.docs.jsonl"))
    got = dict(client.job_results(job))
    assert list(got) == ["request-3", "request-7"]
    assert all(isinstance(e, JobError) and e.reason == "expired" and e.job_id == job.id for e in got.values())
    assert "could not be executed before the completion window expired" in str(got["request-7"])


def test_recorded_litellm_output_parses(mocked: responses.RequestsMock) -> None:
    client = mock_client()
    job = _completed(client)
    mocked.add("GET", f"{BASE}/files/file-out/content",
               body=load_bytes("batch/openai/output.chat_completions.litellm.jsonl"))
    m = client.completion_model("gpt-4o-mini")
    parse = m.prepare(m.completion_request("x").build()).parse
    got = {cid: parse(body, "openai") for cid, body in client.job_results(job)}
    assert got["request-1"].choice[0].text == "Hello! How can I assist you today?"
    assert got["request-2"].usage.input_tokens == 22


def test_expired_and_cancelled_items_in_the_error_file(mocked: responses.RequestsMock) -> None:
    client = mock_client()
    job = remote(client, "batch.expired.json")
    lines = [
        {"id": "batch_req_1", "custom_id": "a", "response": None,
         "error": {"code": "batch_expired", "message": "This request could not be executed before the completion "
                   "window expired."}},
        {"id": "batch_req_2", "custom_id": "b", "response": None,
         "error": {"code": "batch_cancelled", "message": "This request was not executed."}},
        {"id": "batch_req_3", "custom_id": "c", "response": None, "error": {"code": "request_timeout",
                                                                            "message": "The model timed out."}},
    ]
    mocked.add("GET", f"{BASE}/files/file-ArU63VGubAcHYbti9apgCy/content",
               body=b"".join(json.dumps(line).encode() + b"\n" for line in lines))
    got = dict(client.job_results(job))
    assert [(e.reason, e.job_id, e.custom_id) for e in got.values()] == [
        ("expired", job.id, "a"), ("cancelled", job.id, "b"), ("errored", job.id, "c")]
    assert all(isinstance(e, JobError) for e in got.values())
    assert "The model timed out" in str(got["c"])


def test_the_fakes_objects_have_the_recorded_fields() -> None:
    with FakeProvider(batch_polls=1) as fake:
        client = fake_client(fake)
        job = client.create_job("completion", "gpt-4o-mini", chat_entries(client, ["a"]), label="rs-1")
        created = dict(job.raw)
        done = client.job(job.id).raw
        out = client.transport.request("GET", f"files/{done['output_file_id']}/content").content
    for name in BATCH_OBJECTS:
        if "abridged" in name:
            continue
        recorded = load_fixture(f"batch/openai/{name}")
        assert set(recorded) <= set(created) and set(recorded) <= set(done), name
        if "usage" in recorded:
            assert recorded["usage"].keys() == done["usage"].keys()
    assert done["usage"]["input_tokens"] > 0 and done["usage"]["output_tokens"] == 2  # "echo: a"
    [ours] = [json.loads(line) for line in out.splitlines()]
    theirs = json.loads(load_bytes("batch/openai/output.chat_completions.jsonl").splitlines()[0])
    assert ours.keys() == theirs.keys() and ours["response"].keys() == theirs["response"].keys()
    assert ours["response"]["body"]["choices"][0]["message"]["content"] == "echo: a"


def test_the_fakes_file_object_has_the_recorded_fields() -> None:
    with FakeProvider() as fake:
        client = fake_client(fake)
        answer = client.transport.request("POST", "files", data={"purpose": "batch"},
                                          files={"file": ("x.jsonl", b"{}\n", "application/jsonl")}).json()
    assert set(load_fixture("batch/openai/files.create.batch.json")) == set(answer)
    assert answer["purpose"] == "batch" and answer["bytes"] == 3 and answer["filename"] == "x.jsonl"


# --- end to end against the FakeProvider -------------------------------------------------------------


def test_a_job_goes_validating_in_progress_finalizing_completed() -> None:
    with FakeProvider(batch_polls=3) as fake:
        client = fake_client(fake)
        prompts = ["alpha", "beta FAIL_ITEM", "gamma", "delta"]
        entries = chat_entries(client, prompts)
        job = client.create_job("completion", "gpt-4o-mini", entries, label="rs-1700000000-4-0123abcd")
        assert job.state is JobState.PENDING and job.raw["status"] == "validating"
        assert job.label == "rs-1700000000-4-0123abcd" and fake.jobs_created == 1
        seen = []
        for _ in range(3):
            j = client.job(job.id)
            seen.append((j.raw["status"], j.succeeded, j.failed))
        assert seen == [("in_progress", 1, 0), ("finalizing", 3, 1), ("completed", 3, 1)]
        results = list(client.job_results(j))
    assert [cid for cid, _ in results] == ["i0", "i2", "i3", "i1"]  # the output file, then the error file
    got = dict(results)
    texts = {cid: entries[0].call.parse(body, "openai").choice[0].text for cid, body in got.items() if cid != "i1"}
    assert texts == {"i0": "echo: alpha", "i2": "echo: gamma", "i3": "echo: delta"}
    failed = got["i1"]
    assert isinstance(failed, errors.BadRequestError) and failed.status_code == 400
    assert failed.code == "fail_item" and failed.request_id and "FAIL_ITEM" in failed.message
    assert failed.body["error"]["code"] == "fail_item"


def test_an_embeddings_job_answers_vectors() -> None:
    with FakeProvider(batch_polls=0) as fake:
        client = fake_client(fake)
        emb = client.embedding_model("text-embedding-3-small")
        entries = [JobEntry(f"e{k}", emb.prepare_embeddings([t])) for k, t in enumerate(["one", "two"])]
        job = client.create_job("embeddings", "text-embedding-3-small", entries, label="rs-e")
        assert job.state is JobState.COMPLETED and job.raw["endpoint"] == "/v1/embeddings"
        got = dict(client.job_results(job))
    vectors = {cid: entries[0].call.parse(body, "openai") for cid, body in got.items()}
    assert [len(v) for v in vectors.values()] == [1, 1] and len(vectors["e0"][0]) == 1536
    assert vectors["e0"] != vectors["e1"]


def test_models_the_fake_does_not_serve_fail_per_item() -> None:
    with FakeProvider(batch_polls=0, models=["gpt-4o-mini"]) as fake:
        client = fake_client(fake)
        job = client.create_job("completion", "gpt-4o-mnii", chat_entries(client, ["a"], "gpt-4o-mnii"), label="rs-m")
        [(cid, err)] = list(client.job_results(job))
    assert cid == "i0" and isinstance(err, errors.NotFoundError) and err.code == "model_not_found"


def test_cancel_keeps_answers_made_before_it() -> None:
    with FakeProvider(batch_polls=4) as fake:
        client = fake_client(fake)
        job = client.create_job("completion", "gpt-4o-mini", chat_entries(client, list("abcd")), label="rs-c")
        client.job(job.id)
        assert client.job(job.id).succeeded == 2  # half way
        cancelling = client.cancel_job(job.id)
        assert cancelling.state is JobState.CANCELLING and cancelling.raw["cancelling_at"] is not None
        cancelled = client.job(job.id)
        assert cancelled.state is JobState.CANCELLED
        got = dict(client.job_results(cancelled))
        again = client.cancel_job(job.id)  # an ended batch cannot be cancelled: returned as it is
    assert again.state is JobState.CANCELLED
    assert [cid for cid, v in got.items() if isinstance(v, dict)] == ["i0", "i1"]
    assert {cid: (v.reason, v.custom_id) for cid, v in got.items() if isinstance(v, JobError)} == {
        "i2": ("cancelled", "i2"), "i3": ("cancelled", "i3")}


def test_expired_jobs_keep_answers_and_expire_the_rest() -> None:
    with FakeProvider(batch_polls=2) as fake:
        client = fake_client(fake)
        job = client.create_job("completion", "gpt-4o-mini", chat_entries(client, list("abcd")), label="rs-x")
        client.job(job.id)
        assert fake.expire_jobs() == 1
        expired = client.job(job.id)
        assert expired.state is JobState.EXPIRED and expired.raw["expired_at"] is not None
        got = dict(client.job_results(expired))
    assert [isinstance(v, dict) for v in got.values()] == [True, True, False, False]
    assert [v.reason for v in got.values() if isinstance(v, JobError)] == ["expired", "expired"]


def test_a_job_that_fails_validation() -> None:
    with FakeProvider(batch_polls=None) as fake:
        client = fake_client(fake)
        fake.fail_next_job("The input file is not valid.", code="invalid_file")
        job = client.create_job("completion", "gpt-4o-mini", chat_entries(client, ["a"]), label="rs-f")
        failed = client.job(job.id)
        assert failed.state is JobState.FAILED and failed.error == "invalid_file: The input file is not valid."
        assert list(client.job_results(failed)) == []
        fake.batch_polls = 1  # the next job is fine
        assert poll_until_ended(client, client.create_job(
            "completion", "gpt-4o-mini", chat_entries(client, ["b"]), label="rs-g").id).state is JobState.COMPLETED


@pytest.mark.parametrize(("lines", "code", "line"), [
    ([{"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": {"model": "m", "messages": []}},
      {"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": {"model": "m", "messages": []}}],
     "duplicate_custom_id", 2),
    ([{"custom_id": "a", "method": "POST", "url": "/v1/embeddings", "body": {"model": "m", "input": "x"}}],
     "mismatched_endpoint", 1),
    ([{"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": {"model": "m", "messages": []}},
      {"custom_id": "b", "method": "POST", "url": "/v1/chat/completions", "body": {"model": "n", "messages": []}}],
     "mismatched_model", 2),
    ([{"custom_id": "a", "url": "/v1/chat/completions", "body": {}}], "missing_required_parameter", 1),
    (["not json"], "invalid_json_line", 1),
])
def test_the_fake_validates_input_files_as_openai_does(lines: list[Any], code: str, line: int) -> None:
    data = b"".join((x.encode() if isinstance(x, str) else json.dumps(x).encode()) + b"\n" for x in lines)
    with FakeProvider(batch_polls=1) as fake:
        t = fake_client(fake).transport
        file_id = t.request("POST", "files", data={"purpose": "batch"},
                            files={"file": ("in.jsonl", data, "application/jsonl")}).json()["id"]
        batch = t.request("POST", "batches", json={"input_file_id": file_id, "endpoint": "/v1/chat/completions",
                                                   "completion_window": "24h"}).json()
        assert batch["status"] == "validating"
        failed = t.request("GET", f"batches/{batch['id']}").json()
    assert failed["status"] == "failed" and failed["failed_at"] is not None
    [err] = failed["errors"]["data"]
    assert (err["code"], err["line"]) == (code, line)


def test_find_job_matches_the_label_in_the_metadata() -> None:
    with FakeProvider(batch_polls=None) as fake:
        client = fake_client(fake)
        ids = [client.create_job("completion", "gpt-4o-mini", chat_entries(client, ["a"]), label=f"rs-{k}").id
               for k in range(3)]
        found = client.find_job("rs-1")
        assert found is not None and found.id == ids[1] and found.label == "rs-1"
        assert found.state is JobState.PENDING
        assert client.find_job("rs-9") is None
        assert fake.jobs_created == 3


def test_find_job_reads_further_pages(mocked: responses.RequestsMock) -> None:
    batch = load_fixture("batch/openai/batch.in_progress.json")
    page1 = {"object": "list", "data": [{**batch, "id": f"batch_{k}", "metadata": None} for k in range(100)],
             "first_id": "batch_0", "last_id": "batch_99", "has_more": True}
    page2 = {"object": "list", "data": [{**batch, "id": "batch_x", "metadata": {"rig_sync_label": "rs-7"}}],
             "first_id": "batch_x", "last_id": "batch_x", "has_more": False}
    mocked.add("GET", f"{BASE}/batches", json=page1, match=[responses.matchers.query_param_matcher({"limit": "100"})])
    mocked.add("GET", f"{BASE}/batches", json=page2,
               match=[responses.matchers.query_param_matcher({"limit": "100", "after": "batch_99"})])
    found = mock_client().find_job("rs-7")
    assert found is not None and found.id == "batch_x" and found.state is JobState.RUNNING


def test_find_job_stops_after_a_few_pages(mocked: responses.RequestsMock) -> None:
    batch = load_fixture("batch/openai/batch.in_progress.json")
    endless = {"object": "list", "data": [{**batch, "id": "batch_0"}], "last_id": "batch_0", "has_more": True}
    mocked.add("GET", f"{BASE}/batches", json=endless)
    assert mock_client().find_job("rs-7") is None
    assert len(mocked.calls) == _openai_batch._FIND_PAGES


# --- limits and bad arguments: refused before anything is sent ----------------------------------------


def test_limits() -> None:
    client = mock_client()
    for kind in ("completion", "embeddings"):
        limits = client.job_limits(kind)  # type: ignore[arg-type]
        assert (limits.max_requests, limits.max_bytes) == (50_000, 200 * 10**6)
    with pytest.raises(errors.UnsupportedFeature, match=r"batch\.map"):
        client.job_limits("images")  # type: ignore[arg-type]


def refused(client: openai.Client, entries: list[JobEntry], match: str, kind: str = "completion",
            label: str = "rs-1") -> None:
    with pytest.raises(errors.InvalidRequestError, match=match):
        client.create_job(kind, "gpt-4o-mini", entries, label=label)  # type: ignore[arg-type]


def test_bad_jobs_are_refused_before_any_request(monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeProvider() as fake:
        client = fake_client(fake)
        one = chat_entries(client, ["a"])[0]
        refused(client, [], "at least one request")
        refused(client, [one, one], "used twice")
        refused(client, [JobEntry("", one.call)], "custom id '' is not allowed")
        refused(client, [one] * 50_001, "at most 50,000 requests")
        refused(client, [one], "label must be", label="")
        refused(client, [one], "label must be", label="x" * 513)
        emb = client.embedding_model("text-embedding-3-small").prepare_embeddings(["x"])
        refused(client, [one, JobEntry("e", emb)], "one endpoint")
        monkeypatch.setattr(_openai_batch.OpenAIBatchJobs, "max_job_bytes", 300)
        refused(client, chat_entries(client, ["a" * 100, "b" * 100, "c" * 100]), "300-byte limit at request 'i1'")
        monkeypatch.setattr(_openai_batch, "MAX_EMBEDDING_INPUTS", 2)
        monkeypatch.setattr(_openai_batch.OpenAIBatchJobs, "max_job_bytes", 10**6)
        refused(client, [JobEntry("e", client.embedding_model("m").prepare_embeddings(["x", "y", "z"]))],
                "3 texts to embed", kind="embeddings")
        bad = JobEntry("n", one.call._replace(body={**one.call.body, "user": "half \ud83d"}))
        with pytest.raises(errors.InvalidRequestError, match="lone surrogate"):
            client.create_job("completion", "gpt-4o-mini", [bad], label="rs-1")
        for job_id in ("../files/x", "", "batch 1", "https://evil.example/x"):
            with pytest.raises(errors.InvalidRequestError, match="not a batch job id"):
                client.job(job_id)
            with pytest.raises(errors.InvalidRequestError, match="not a batch job id"):
                client.cancel_job(job_id)
        assert fake.request_count == 0 and fake.jobs_created == 0


def test_results_of_a_running_job_are_refused() -> None:
    with FakeProvider(batch_polls=None) as fake:
        client = fake_client(fake)
        job = client.create_job("completion", "gpt-4o-mini", chat_entries(client, ["a"]), label="rs-1")
        with pytest.raises(errors.InvalidRequestError, match="not ended"):
            list(client.job_results(job))


def test_a_refused_batch_deletes_its_uploaded_file() -> None:
    with FakeProvider() as fake:
        client = fake_client(fake)
        fake.inject(Fault.status(400), path="/v1/batches")
        with pytest.raises(errors.BadRequestError):
            client.create_job("completion", "gpt-4o-mini", chat_entries(client, ["a"]), label="rs-1")
        methods = [(r.method, r.path.split("/")[2]) for r in fake.requests]
        assert methods == [("POST", "files"), ("POST", "batches"), ("DELETE", "files")]
        assert fake.jobs_created == 0
        file_id = fake.requests[2].path.rsplit("/", 1)[1]
        with pytest.raises(errors.NotFoundError):
            client.transport.request("GET", f"files/{file_id}")


def test_a_job_from_a_journal_is_read_afresh_for_its_files() -> None:
    with FakeProvider(batch_polls=0) as fake:
        client = fake_client(fake)
        job = client.create_job("completion", "gpt-4o-mini", chat_entries(client, ["a"]), label="rs-1")
        bare = RemoteJob("openai", job.id, JobState.RUNNING)  # as a journal holds it: no raw object
        assert [cid for cid, _ in client.job_results(bare)] == ["i0"]


# --- hostile results ---------------------------------------------------------------------------------


def _line(cid: Any, status: int = 200, **extra: Any) -> bytes:
    body = {"id": "chatcmpl-1", "object": "chat.completion", "model": "m", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": f"answer {cid}"}, "finish_reason": "stop"}]}
    obj = {"id": "batch_req_1", "custom_id": cid, "response": {"status_code": status, "request_id": "r", "body": body},
           "error": None, **extra}
    return json.dumps(obj).encode() + b"\n"


def _completed(client: openai.Client) -> RemoteJob:
    job = remote(client, "batch.completed.json")
    return RemoteJob("openai", job.id, job.state, raw={**job.raw, "output_file_id": "file-out"})


def results_of(mocked: responses.RequestsMock, body: bytes) -> list[tuple[str, Any]]:
    client = mock_client()
    mocked.add("GET", f"{BASE}/files/file-out/content", body=body)
    return list(client.job_results(_completed(client)))


def test_a_truncated_last_line_is_a_stream_error(mocked: responses.RequestsMock) -> None:
    body = _line("a") + _line("b")[:40]
    client = mock_client()
    mocked.add("GET", f"{BASE}/files/file-out/content", body=body)
    results = client.job_results(_completed(client))
    assert next(results)[0] == "a"  # what came before the cut is given
    with pytest.raises(errors.StreamError, match="cut off mid-way") as got:
        next(results)
    assert got.value.is_retryable()


def test_lines_that_are_not_results_are_logged_and_left_out(mocked: responses.RequestsMock,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    body = b"".join([_line("a"), b"this is not json\n", _line("b"), b"[1, 2]\n", _line(None), _line(""),
                     json.dumps({"custom_id": "c", "response": None, "error": None}).encode() + b"\n",
                     json.dumps({"custom_id": "d", "response": {"status_code": "200"}}).encode() + b"\n",
                     _line("a", status=500), b"\n", _line("e")])
    with caplog.at_level(logging.WARNING, logger="rig_sync.batch_jobs"):
        got = results_of(mocked, body)
    assert [cid for cid, _ in got] == ["a", "b", "e"]  # the first line for "a" is kept, not its repeat
    assert got[0][1]["choices"][0]["message"]["content"] == "answer a"
    said = caplog.text
    for n in (2, 4, 5, 6, 7, 8, 9):
        assert f"file file-out line {n}" in said, n
    assert "could not be given to an item" in said and "custom id 'a' again" in said


def test_an_unknown_custom_id_is_given_to_the_caller_to_place(mocked: responses.RequestsMock) -> None:
    # The adapter does not know the job's ids: rig_sync.batch_jobs ignores a stranger and reports the
    # items it lacks as missing (tests/test_batch_jobs.py).
    got = results_of(mocked, _line("i0") + _line("stranger"))
    assert [cid for cid, _ in got] == ["i0", "stranger"]


class LyingServer:
    """One connection: an answer announcing 2 GB that sends `first` at once, then (when `go` is
    set) `rest`, and closes — a Content-Length lie."""

    def __init__(self, first: bytes, rest: bytes) -> None:
        self.first, self.rest = first, rest
        self.go = threading.Event()
        self.rest_sent = False
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        with conn:
            conn.settimeout(10)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                         b"Content-Length: 2147483648\r\n\r\n" + self.first)
            self.go.wait(10)
            self.rest_sent = True
            conn.sendall(self.rest)

    def close(self) -> None:
        self.go.set()
        self.thread.join(10)
        self.sock.close()


@pytest.fixture
def lying() -> Iterator[LyingServer]:
    server = LyingServer(_line("a") + _line("b"), _line("c") + _line("d")[:30])
    yield server
    server.close()


def test_results_stream_line_by_line_and_a_content_length_lie_is_a_stream_error(lying: LyingServer) -> None:
    client = openai.Client(KEY, base_url=f"http://127.0.0.1:{lying.port}/v1", max_retries=0, timeout=10)
    results = client.job_results(_completed(client))
    assert next(results)[0] == "a" and next(results)[0] == "b"
    assert not lying.rest_sent  # answers come as their lines arrive, not once the whole file is in
    lying.go.set()
    assert next(results)[0] == "c"
    with pytest.raises(errors.StreamError) as got:
        next(results)
    assert isinstance(got.value, errors.RigError)


# --- the fake's job knobs (rig_sync/testing/_jobs.py) ----------------------------------------------


@pytest.mark.parametrize("bad", [-1, True, 1.5, "2"])
def test_batch_polls_must_be_a_count_or_none(bad: Any) -> None:
    with pytest.raises(ValueError, match="batch_polls must be a whole number >= 0 or None"):
        FakeProvider(batch_polls=bad)
    fake = FakeProvider()
    with pytest.raises(ValueError, match="batch_polls"):
        fake.batch_polls = bad
    assert fake.batch_polls == 2


def test_finish_jobs_ends_every_open_job_and_reset_forgets_them() -> None:
    with FakeProvider(batch_polls=None) as fake:
        client = fake_client(fake)
        a = client.create_job("completion", "gpt-4o-mini", chat_entries(client, ["a"]), label="rs-a")
        b = client.create_job("completion", "gpt-4o-mini", chat_entries(client, ["b"]), label="rs-b")
        client.cancel_job(b.id)
        assert [j.id for j in fake.batch_jobs("openai")] == [b.id, a.id] and fake.batch_jobs("anthropic") == []
        assert [client.job(a.id).state for _ in range(3)] == [JobState.RUNNING] * 3  # never ends by polls
        assert fake.finish_jobs() == 2 and fake.finish_jobs() == 0
        assert client.job(a.id).state is JobState.COMPLETED and client.job(b.id).state is JobState.CANCELLED
        assert fake.jobs_created == 2
        fake.reset()
        assert fake.jobs_created == 0 and fake.batch_jobs() == []
        with pytest.raises(errors.NotFoundError):
            client.job(a.id)


def test_a_scripted_reply_answers_a_batch_item() -> None:
    with FakeProvider(batch_polls=0) as fake:
        fake.script(Reply.text("scripted"), path="/v1/chat/completions")
        client = fake_client(fake)
        entries = chat_entries(client, ["a", "b"])
        job = client.create_job("completion", "gpt-4o-mini", entries, label="rs-s")
        texts = [entries[0].call.parse(body, "openai").choice[0].text for _, body in client.job_results(job)]
        assert texts == ["scripted", "echo: b"] and fake.pending_replies == 0


def test_polls_from_many_threads_answer_each_item_once() -> None:
    with FakeProvider(batch_polls=8) as fake:
        client = fake_client(fake)
        job = client.create_job("completion", "gpt-4o-mini", chat_entries(client, [f"p{k}" for k in range(40)]),
                                label="rs-t")
        threads = [threading.Thread(target=lambda: [client.job(job.id) for _ in range(4)]) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        done = client.job(job.id)
        got = list(client.job_results(done))
    assert done.state is JobState.COMPLETED and (done.succeeded, done.failed) == (40, 0)
    assert sorted(cid for cid, _ in got) == sorted(f"i{k}" for k in range(40))
    ids = [body["id"] for _, body in got]
    assert len(set(ids)) == 40  # every item answered once, with its own answer
