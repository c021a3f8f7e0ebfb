"""Gemini's batch mode behind the batch_jobs capability (providers/_gemini_batch.py): the create
body against the recorded one in tests/fixtures/batch/gemini, the recorded operations (pending,
running, succeeded inline and to a file, cancel), every batch state, item errors as the status
errors their google.rpc codes stand for, answers matched by key, find_job, the limits, and what a
hostile server may send (answers without keys or repeated, missing fields, an operation that is
not JSON or too large) — with `responses`, and end to end against the loopback FakeProvider
(testing/_gemini_batch.py)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import responses
from conftest import load_bytes, load_fixture, sent_json

from rig_sync import errors
from rig_sync.client.jobs import JobEntry, JobError, JobLimits, JobState, RemoteJob, job_label
from rig_sync.providers import _gemini_batch, anthropic, gemini
from rig_sync.testing import FakeProvider, Reply

BASE = "https://generativelanguage.googleapis.com"
V = f"{BASE}/v1beta"
KEY = "AIza-test-0123456789abcdef"
MODEL = "gemini-2.5-flash"
FIX = "batch/gemini/"
JOB = "4m855v7q30kc7gtzcigdg9m72o87s08w33vp"


def client(base: str = BASE, **options: Any) -> gemini.Client:
    options.setdefault("max_retries", 0)
    return gemini.Client(KEY, base_url=base, **options)


def entries(c: gemini.Client, prompts: list[str], model: str = MODEL, ids: list[str] | None = None) -> list[JobEntry]:
    m = c.completion_model(model)
    keys = ids or [f"i{i}" for i in range(len(prompts))]
    return [JobEntry(k, m.prepare(m.completion_request(p).build())) for k, p in zip(keys, prompts, strict=True)]


def text_of(answer: Any) -> str:
    m = client().completion_model(MODEL)
    return m.prepare(m.completion_request("x").build()).parse(answer, "gemini").text


def operation(state: str = "BATCH_STATE_SUCCEEDED", items: list[Any] | None = None, *, job_id: str = JOB,
              label: str = "test-batch-job", **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"@type": "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch",
                            "model": f"models/{MODEL}", "displayName": label, "state": state,
                            "createTime": "2025-12-10T18:27:01.407650525Z", "name": f"batches/{job_id}",
                            "batchStats": {"requestCount": "3"}}
    op: dict[str, Any] = {"name": f"batches/{job_id}", "metadata": meta, **extra}
    if items is not None:
        meta["output"] = {"inlinedResponses": {"inlinedResponses": items}}
        op["done"] = True
    return op


def answer(text: str) -> dict[str, Any]:
    return {"candidates": [{"content": {"parts": [{"text": text}], "role": "model"}, "finishReason": "STOP"}]}


def outcomes(c: gemini.Client, job: RemoteJob) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for cid, value in c.job_results(job):
        assert cid not in out
        out[cid] = value
    return out


def ended(items: list[Any]) -> RemoteJob:
    return _gemini_batch._remote(operation(items=items), "gemini")


# --- the request body ------------------------------------------------------------------------------


def test_create_body_has_the_recorded_shape(mocked: responses.RequestsMock) -> None:
    recorded = load_fixture(FIX + "create.inline.request.json")
    wanted = recorded["batch"]["input_config"]["requests"]["requests"]
    prompts = [r["request"]["contents"][0]["parts"][0]["text"] for r in wanted]
    mocked.add("POST", f"{V}/models/{MODEL}:batchGenerateContent",
               body=load_bytes(FIX + "operation.pending.create_response.json"))
    c = client()
    job = c.create_job("completion", MODEL, entries(c, prompts, ids=[r["metadata"]["key"] for r in wanted]),
                       label="test-batch-job")
    sent = sent_json(mocked)
    assert list(sent) == ["batch"] and list(sent["batch"]) == list(recorded["batch"])  # display_name, input_config
    assert sent["batch"]["display_name"] == "test-batch-job"
    ours = sent["batch"]["input_config"]["requests"]["requests"]
    assert [list(r) for r in ours] == [list(r) for r in wanted]  # request, metadata
    assert [r["metadata"] for r in ours] == [r["metadata"] for r in wanted]
    for mine, theirs in zip(ours, wanted, strict=True):
        assert [c["parts"] for c in mine["request"]["contents"]] == [c["parts"] for c in theirs["request"]["contents"]]
        assert mine["request"]["contents"][0].get("role", "user") == "user"
    assert mocked.calls[0].request.headers["x-goog-api-key"] == KEY
    # the recorded answer: a pending batch of 3, none answered yet
    assert (job.id, job.state, job.total, job.succeeded, job.failed, job.label) == (
        JOB, JobState.PENDING, 3, 0, 0, "test-batch-job")


def test_create_uses_the_clients_api_version(mocked: responses.RequestsMock) -> None:
    mocked.add("POST", f"{BASE}/v1alpha/models/{MODEL}:batchGenerateContent", json=operation("BATCH_STATE_PENDING"))
    c = client(api_version="v1alpha")
    assert c.create_job("completion", MODEL, entries(c, ["a"]), label="x").state is JobState.PENDING


# --- recorded operations and states ------------------------------------------------------------------


@pytest.mark.parametrize("name, state, counts", [
    ("operation.pending.create_response.json", JobState.PENDING, (3, 0, 0)),
    ("operation.running.json", JobState.RUNNING, (3, 0, 0)),
    ("operation.succeeded.inline.json", JobState.COMPLETED, (3, 3, 0)),
    ("operation.pending.file.create_response.json", JobState.PENDING, (2, 0, 0)),
    ("operation.succeeded.file.json", JobState.COMPLETED, (2, 2, 0)),
])
def test_recorded_operations_map_to_states(mocked: responses.RequestsMock, name: str, state: JobState,
                                           counts: tuple[int, int, int]) -> None:
    raw = load_fixture(FIX + name)
    job_id = raw["name"].removeprefix("batches/")
    mocked.add("GET", f"{V}/batches/{job_id}", body=load_bytes(FIX + name))
    job = client().job(f"batches/{job_id}")  # the name Gemini gives, or the id alone
    assert (job.provider, job.id, job.state, (job.total, job.succeeded, job.failed)) == (
        "gemini", job_id, state, counts)
    assert job.label == raw["metadata"]["displayName"] and job.error is None


def test_recorded_inline_answers_parse_with_the_prepared_parse(mocked: responses.RequestsMock) -> None:
    mocked.add("GET", f"{V}/batches/{JOB}", body=load_bytes(FIX + "operation.succeeded.inline.json"))
    c = client()
    job = c.job(JOB)
    got = outcomes(c, job)  # the answers came with the finished operation: nothing more is read
    assert list(got) == ["req_1", "req_2", "req_3"]
    assert text_of(got["req_1"]).startswith("广义相对论") and "(手动略)" not in text_of(got["req_1"])
    assert len(mocked.calls) == 1


def test_answers_from_a_listed_batch_are_read_again(mocked: responses.RequestsMock) -> None:
    mocked.add("GET", f"{V}/batches/{JOB}", body=load_bytes(FIX + "operation.succeeded.inline.json"))
    listed = _gemini_batch._remote(operation(), "gemini")  # ended, but without its answers
    assert list(outcomes(client(), listed)) == ["req_1", "req_2", "req_3"]


def test_answers_in_the_operations_response_only_are_read() -> None:
    op = operation()
    op["done"] = True
    op["response"] = {"inlinedResponses": {"inlinedResponses": [{"response": answer("hi"), "metadata": {"key": "a"}}]}}
    assert text_of(outcomes(client(), _gemini_batch._remote(op, "gemini"))["a"]) == "hi"


def test_answers_written_to_a_file_are_named_not_read(mocked: responses.RequestsMock) -> None:
    raw = load_fixture(FIX + "operation.succeeded.file.json")
    job = _gemini_batch._remote(raw, "gemini")
    mocked.add("GET", f"{V}/batches/{job.id}", json=raw)
    with pytest.raises(errors.ResponseDecodeError, match="wrote its answers to a file"):
        list(client().job_results(job))


def test_cancel_posts_and_reads_the_batch(mocked: responses.RequestsMock) -> None:
    mocked.add("POST", f"{V}/batches/{JOB}:cancel", body=load_bytes(FIX + "cancel.response.docs.json"))
    mocked.add("GET", f"{V}/batches/{JOB}", json=operation("BATCH_STATE_CANCELLED", items=[],
                                                          error={"code": 1, "message": "cancelled"}))
    job = client().cancel_job(f"batches/{JOB}")
    assert job.state is JobState.CANCELLED and job.error is None
    assert [c.request.method for c in mocked.calls] == ["POST", "GET"]


@pytest.mark.parametrize("state, expected", [
    ("BATCH_STATE_UNSPECIFIED", JobState.PENDING), ("BATCH_STATE_PENDING", JobState.PENDING),
    ("BATCH_STATE_RUNNING", JobState.RUNNING), ("BATCH_STATE_SUCCEEDED", JobState.COMPLETED),
    ("BATCH_STATE_FAILED", JobState.FAILED), ("BATCH_STATE_CANCELLED", JobState.CANCELLED),
    ("BATCH_STATE_EXPIRED", JobState.EXPIRED), ("JOB_STATE_QUEUED", JobState.PENDING),
    ("JOB_STATE_CANCELLING", JobState.CANCELLING), ("JOB_STATE_PARTIALLY_SUCCEEDED", JobState.COMPLETED),
])
def test_every_batch_state_maps(state: str, expected: JobState) -> None:
    assert _gemini_batch._remote(operation(state), "gemini").state is expected


def test_a_failed_batch_says_why() -> None:
    job = _gemini_batch._remote(operation("BATCH_STATE_FAILED", done=True,
                                          error={"code": 3, "message": "the input was bad"}), "gemini")
    assert (job.state, job.error) == (JobState.FAILED, "the input was bad")
    assert list(client().job_results(job)) == []  # no answers: every item is the caller's to report
    stateless = {"name": "batches/x", "done": True, "error": {"code": 13, "message": "boom"}}
    assert _gemini_batch._remote(stateless, "gemini").state is JobState.FAILED
    assert _gemini_batch._remote({"name": "batches/x", "done": False}, "gemini").state is JobState.PENDING


@pytest.mark.parametrize("body, field", [
    ({"metadata": {"state": "BATCH_STATE_RUNNING"}}, "name"),
    ({"name": "operations/123", "metadata": {"state": "BATCH_STATE_RUNNING"}}, "batches/"),
    ({"name": "batches/", "metadata": {}}, "batches/"),
    ({"name": "batches/x", "metadata": {"state": "BATCH_STATE_PAUSED_FOREVER"}}, "PAUSED_FOREVER"),
    ({"name": "batches/x", "metadata": {}}, "no state"),
    ([1, 2], "JSON object"),
])
def test_an_operation_missing_its_fields_is_a_decode_error(mocked: responses.RequestsMock, body: Any,
                                                           field: str) -> None:
    mocked.add("GET", f"{V}/batches/x", json=body)
    with pytest.raises(errors.ResponseDecodeError, match=field):
        client().job("x")


@pytest.mark.parametrize("body, match", [(b"<html>busy</html>", "not JSON"), (b"[1, 2]", "JSON object")])
def test_an_answer_that_is_no_operation_is_a_decode_error(mocked: responses.RequestsMock, body: bytes,
                                                          match: str) -> None:
    mocked.add("GET", f"{V}/batches/x", body=body)
    with pytest.raises(errors.ResponseDecodeError, match=match):
        client().job("x")


def test_an_operation_past_the_limit_is_refused(mocked: responses.RequestsMock,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_gemini_batch, "MAX_OPERATION_BYTES", 5_000)
    items = [{"response": answer("x" * 1000), "metadata": {"key": f"k{i}"}} for i in range(10)]
    mocked.add("GET", f"{V}/batches/{JOB}", json=operation(items=items))
    with pytest.raises(errors.ResponseTooLargeError, match="5,000 bytes"):
        client().job(JOB)


def test_a_finished_operation_larger_than_the_clients_body_limit_is_read(mocked: responses.RequestsMock) -> None:
    items = [{"response": answer("y" * 1000), "metadata": {"key": f"k{i}"}} for i in range(20)]
    mocked.add("GET", f"{V}/batches/{JOB}", json=operation(items=items))
    c = client(max_response_bytes=5_000)  # for answers read whole; a batch's answers are read to their own limit
    assert len(outcomes(c, c.job(JOB))) == 20


@pytest.mark.parametrize("job_id", ["", "../files", "x:cancel", "batches/../x", "https://evil.test/b", 3, None])
def test_a_job_id_that_is_no_id_is_refused_before_sending(job_id: Any) -> None:
    c = client()
    with responses.RequestsMock() as mocked:
        for call in (c.job, c.cancel_job):
            with pytest.raises(errors.InvalidRequestError, match="not a batch job id"):
                call(job_id)
        assert not mocked.calls


# --- answers and item errors ----------------------------------------------------------------------


@pytest.mark.parametrize("error, cls, status", [
    ({"code": 3, "message": "bad"}, errors.BadRequestError, 400),
    ({"code": 8, "message": "quota"}, errors.RateLimitError, 429),
    ({"code": 16, "message": "who"}, errors.AuthenticationError, 401),
    ({"code": 7, "message": "no"}, errors.PermissionDeniedError, 403),
    ({"code": 5, "message": "model"}, errors.NotFoundError, 404),
    ({"code": 14, "message": "later"}, errors.InternalServerError, 503),
    ({"status": "NOT_FOUND", "message": "model"}, errors.NotFoundError, 404),
    ({"code": "4", "message": "slow"}, errors.InternalServerError, 504),  # int64 as a string
    ({"code": 503, "message": "an HTTP status"}, errors.InternalServerError, 503),
    ({"code": 99, "message": "unknown"}, errors.InternalServerError, 500),
    ({"message": "no code"}, errors.InternalServerError, 500),
    ({"code": 3, "message": "API key not valid", "details": [{"reason": "API_KEY_INVALID"}]},
     errors.AuthenticationError, 400),
    ({"code": 3, "message": "The input token count exceeds the maximum number of tokens allowed"},
     errors.ContextWindowExceededError, 400),
])
def test_item_errors_are_the_status_errors_of_their_codes(error: dict[str, Any], cls: type[errors.APIStatusError],
                                                          status: int) -> None:
    got = outcomes(client(), ended([{"error": error, "metadata": {"key": "a"}}]))["a"]
    assert type(got) is cls and got.status_code == status and got.provider == "gemini"
    assert got.body["error"]["message"] == error["message"] and got.message == error["message"]


def test_an_item_error_echoing_the_key_is_masked() -> None:
    got = outcomes(client(), ended([{"error": {"code": 3, "message": f"bad key {KEY}"}, "metadata": {"key": "a"}}]))
    assert KEY not in str(got["a"]) and KEY not in json.dumps(got["a"].body)


def test_answers_are_matched_by_key_not_by_place() -> None:
    items = [{"response": answer(f"answer {k}"), "metadata": {"key": k}} for k in ("i2", "i0", "i1")]
    got = outcomes(client(), ended(items))
    assert {k: text_of(v) for k, v in got.items()} == {"i0": "answer i0", "i1": "answer i1", "i2": "answer i2"}


def test_answers_no_item_can_be_given_are_logged_and_left_out(caplog: pytest.LogCaptureFixture) -> None:
    items = [
        {"response": answer("no key")},  # Gemini's SDKs drop metadata; a response without it has no owner
        {"response": answer("first"), "metadata": {"key": "a"}},
        {"response": answer("again"), "metadata": {"key": "a"}},
        {"response": answer("numeric"), "metadata": {"key": 5}},
        "not an object",
        None,
        {"metadata": {"key": "b"}},  # neither response nor error: an error in b's place
        {"response": answer("c"), "metadata": {"key": "c", "other": "kept apart"}},
    ]
    with caplog.at_level(logging.WARNING, "rig_sync.batch_jobs"):
        got = outcomes(client(), ended(items))
    assert list(got) == ["a", "b", "c"] and text_of(got["a"]) == "first" and text_of(got["c"]) == "c"
    assert isinstance(got["b"], JobError) and got["b"].reason == "errored" and "neither a response" in str(got["b"])
    for n in (1, 3, 4, 5, 6):
        assert f"inlined response {n}:" in caplog.text
    assert "5 result(s) could not be given" in caplog.text


def test_results_of_a_batch_still_running_are_refused_before_sending() -> None:
    job = _gemini_batch._remote(operation("BATCH_STATE_RUNNING"), "gemini")
    with responses.RequestsMock() as mocked, pytest.raises(errors.InvalidRequestError, match="running"):
        list(client().job_results(job))
    assert not mocked.calls


# --- creating: what is refused before anything is sent -----------------------------------------------


def refused(c: gemini.Client, items: list[JobEntry], match: str, *, model: str = MODEL, label: str = "x",
            kind: Any = "completion", error: type[Exception] = errors.InvalidRequestError) -> None:
    with responses.RequestsMock() as mocked:
        with pytest.raises(error, match=match):
            c.create_job(kind, model, items, label=label)
        assert not mocked.calls


def test_bad_jobs_are_refused_before_sending(monkeypatch: pytest.MonkeyPatch) -> None:
    c = client()
    one = entries(c, ["hi"])
    refused(c, [], "at least one request")
    for bad in ("", "has space", "tab\tbed", "x" * 257, "é"):
        refused(c, [JobEntry(bad, one[0].call)], "printable ASCII")
    refused(c, [one[0], JobEntry("i0", one[0].call)], "used twice")
    refused(c, one, "one job holds one model", model="gemini-2.0-flash")
    for label in ("", "x" * 129):
        refused(c, one, "display name", label=label)
    a = anthropic.Client("k").completion_model("claude-haiku-4-5")
    refused(c, [JobEntry("a", a.prepare(a.completion_request("hi").build()))], "one job holds one model")
    refused(c, one, "do not take embeddings", kind="embeddings", error=errors.UnsupportedFeature)
    monkeypatch.setattr(_gemini_batch.GeminiBatchJobs, "max_job_requests", 2)
    refused(c, entries(c, ["a", "b", "c"]), "at most 2 requests")
    monkeypatch.setattr(_gemini_batch.GeminiBatchJobs, "max_job_bytes", 100)
    refused(c, entries(c, ["a", "b"]), "at most 100 bytes")
    assert c.job_limits("completion") == JobLimits(max_requests=2, max_bytes=100)  # the limits it refused by


def test_limits() -> None:
    c = client()
    assert c.job_limits("completion") == JobLimits(max_requests=10_000, max_bytes=20_000_000)
    with pytest.raises(errors.UnsupportedFeature, match=r"batch\.map"):
        c.job_limits("embeddings")
    assert "batch_jobs" in gemini.Client.capabilities()


# --- find_job ---------------------------------------------------------------------------------------


def test_find_job_reads_pages_and_prefers_the_newest_live_batch(mocked: responses.RequestsMock) -> None:
    label = job_label(3)

    def op(job_id: str, created: str, state: str = "BATCH_STATE_RUNNING", name: str = label) -> dict[str, Any]:
        raw = operation(state, job_id=job_id, label=name)
        raw["metadata"]["createTime"] = created
        return raw

    page1 = {"operations": [op("other", "2025-12-10T18:30:00Z", name="someone else's"),
                            op("failed", "2025-12-10T18:29:00Z", "BATCH_STATE_FAILED")], "nextPageToken": "t2"}
    page2 = {"operations": [op("older", "2025-12-10T18:00:00Z"), op("newer", "2025-12-10T18:10:00Z")]}
    mocked.add("GET", f"{V}/batches", json=page1, match=[responses.matchers.query_param_matcher({"pageSize": "100"})])
    mocked.add("GET", f"{V}/batches", json=page2,
               match=[responses.matchers.query_param_matcher({"pageSize": "100", "pageToken": "t2"})])
    found = client().find_job(label)
    assert found is not None and (found.id, found.label) == ("newer", label)


def test_find_job_is_none_when_no_batch_has_the_label(mocked: responses.RequestsMock) -> None:
    mocked.add("GET", f"{V}/batches", json={})  # no batches at all: Gemini leaves the list out
    assert client().find_job(job_label(1)) is None


def test_find_job_refuses_a_list_that_is_not_one(mocked: responses.RequestsMock) -> None:
    mocked.add("GET", f"{V}/batches", json={"operations": "none"})
    with pytest.raises(errors.ResponseDecodeError, match="'operations'"):
        client().find_job(job_label(1))


# --- end to end against the loopback FakeProvider ------------------------------------------------------


@pytest.fixture
def loop() -> Iterator[tuple[FakeProvider, gemini.Client]]:
    with FakeProvider(batch_polls=3) as fp:
        yield fp, gemini.Client(fp.api_key, base_url=fp.url, max_retries=0)


def run(c: gemini.Client, prompts: list[str], label: str | None = None) -> RemoteJob:
    return c.create_job("completion", MODEL, entries(c, prompts), label=label or job_label(len(prompts)))


def test_fake_submit_poll_and_read(loop: tuple[FakeProvider, gemini.Client]) -> None:
    fake, c = loop
    job = run(c, ["hello", "please FAIL_ITEM", "third"])
    assert (job.state, job.total, job.succeeded, fake.jobs_created) == (JobState.PENDING, 3, 0, 1)
    seen = [c.job(job.id) for _ in range(3)]
    assert [s.state for s in seen] == [JobState.RUNNING, JobState.RUNNING, JobState.COMPLETED]
    assert (seen[-1].succeeded, seen[-1].failed) == (2, 1)
    got = outcomes(c, seen[-1])
    assert text_of(got["i0"]) == "echo: hello" and text_of(got["i2"]) == "echo: third"
    assert type(got["i1"]) is errors.BadRequestError and "FAIL_ITEM" in got["i1"].message
    sent = next(r for r in fake.requests if r.path.endswith(":batchGenerateContent"))
    assert sent.path == f"/v1beta/models/{MODEL}:batchGenerateContent"
    assert sent.headers["x-goog-api-key"] == fake.api_key
    assert fake.jobs_created == 1


def test_fake_cancel_keeps_what_was_answered(loop: tuple[FakeProvider, gemini.Client]) -> None:
    _, c = loop
    job = run(c, ["a", "b", "c"])
    assert c.job(job.id).succeeded == 1  # a third answered at the first poll
    assert c.cancel_job(job.id).state is JobState.CANCELLED  # cancel reads the batch: that read is a poll
    done = c.job(job.id)
    assert (done.state, done.succeeded, done.error) == (JobState.CANCELLED, 1, None)
    got = outcomes(c, done)
    assert list(got) == ["i0"] and text_of(got["i0"]) == "echo: a"  # the rest are the caller's to report cancelled


def test_fake_expired_and_failed_batches(loop: tuple[FakeProvider, gemini.Client]) -> None:
    fake, c = loop
    fake.batch_polls = None
    job = run(c, ["a", "b"])
    c.job(job.id)
    assert fake.expire_jobs() == 1
    expired = c.job(job.id)
    assert expired.state is JobState.EXPIRED and outcomes(c, expired) == {}
    fake.fail_next_job("The batch's requests are not valid.")
    failed = c.job(run(c, ["a"]).id)
    assert (failed.state, failed.error) == (JobState.FAILED, "The batch's requests are not valid.")
    assert outcomes(c, failed) == {}


def test_fake_find_job(loop: tuple[FakeProvider, gemini.Client]) -> None:
    fake, c = loop
    label = job_label(2)
    job = run(c, ["a", "b"], label)
    run(c, ["c", "d"])
    found = c.find_job(label)
    assert found is not None and found.id == job.id and found.label == label
    assert c.find_job(job_label(2)) is None
    assert fake.jobs_created == 2


def test_fake_answers_out_of_order_and_keyless(loop: tuple[FakeProvider, gemini.Client],
                                              caplog: pytest.LogCaptureFixture) -> None:
    fake, c = loop
    fake.batch_polls = 0
    job = run(c, ["a", "b"])
    op = operation(items=[{"response": answer("B"), "metadata": {"key": "i1"}}, {"response": answer("?")},
                          {"response": answer("A"), "metadata": {"key": "i0"}}], job_id=job.id)
    fake.script(Reply.json(200, op), path=f"/v1beta/batches/{job.id}")
    with caplog.at_level(logging.WARNING, "rig_sync.batch_jobs"):
        got = outcomes(c, c.job(job.id))
    assert {k: text_of(v) for k, v in got.items()} == {"i0": "A", "i1": "B"}
    assert "inlined response 2" in caplog.text


def test_fake_refuses_what_gemini_refuses(loop: tuple[FakeProvider, gemini.Client]) -> None:
    fake, c = loop
    t = c.transport
    path = f"/v1beta/models/{MODEL}:batchGenerateContent"
    request = {"request": {"contents": [{"parts": [{"text": "hi"}]}]}}
    cases = [({}, "batch is required"),
             ({"batch": {"input_config": {"requests": {"requests": [request]}}}}, "display_name"),
             ({"batch": {"display_name": "x", "input_config": {"requests": {"requests": []}}}}, "must not be empty"),
             ({"batch": {"display_name": "x", "input_config": {"file_name": "files/abc"}}}, "inline requests only"),
             ({"batch": {"displayName": "x", "inputConfig": {"requests": {"requests": [{"metadata": {}}]}}}},
              "request is required")]
    for body, match in cases:
        with pytest.raises(errors.BadRequestError, match=match):
            t.request("POST", path, json=body)
    with pytest.raises(errors.NotFoundError, match="not found"):
        c.job("nosuchbatch")
    assert fake.jobs_created == 0
    listing = t.request("GET", "/v1beta/batches", params={"pageSize": "1"}).json()
    assert listing == {"operations": []}
