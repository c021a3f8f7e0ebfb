"""Anthropic's Message Batches behind the batch_jobs capability (providers/_anthropic_batch.py):
the request body against the recorded ones in tests/fixtures/batch/anthropic, the recorded batch
objects and results files, states and counts, each kind of result, find_job, the limits, and
what a hostile server may send (garbage or cut-off result lines, repeated or nameless custom ids,
a results_url on another host, missing fields, huge bodies) — with `responses`, and end to end
against the loopback FakeProvider (testing/_anthropic_batch.py)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
import responses
from conftest import load_bytes, load_fixture, sent_json

from rig_sync import errors, sse
from rig_sync.client.jobs import JobEntry, JobError, JobLimits, JobState, RemoteJob, job_label, label_facts
from rig_sync.providers import _anthropic_batch, anthropic, gemini
from rig_sync.testing import FakeProvider, Reply

BASE = "https://api.anthropic.com"
BATCHES = f"{BASE}/v1/messages/batches"
KEY = "sk-ant-test-0123456789abcdef"
MODEL = "claude-3-5-sonnet-20241022"
FIX = "batch/anthropic/"


def client(base: str = BASE, **options: Any) -> anthropic.Client:
    options.setdefault("max_retries", 0)
    return anthropic.Client(KEY, base_url=base, **options)


def entries(c: anthropic.Client, prompts: list[str], model: str = MODEL, max_tokens: int = 8192,
            **extra: Any) -> list[JobEntry]:
    m = c.completion_model(model)
    out = []
    for i, prompt in enumerate(prompts):
        builder = m.completion_request(prompt).max_tokens(max_tokens)
        if extra:
            builder = builder.additional_params(extra)
        out.append(JobEntry(f"i{i}", m.prepare(builder.build())))
    return out


def batch(status: str = "ended", *, job_id: str = "msgbatch_01", results_url: str | None = None,
          cancel: str | None = None, **counts: int) -> dict[str, Any]:
    """A message_batch object like the recorded ones."""
    base = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
    ended = status == "ended"
    return {"id": job_id, "type": "message_batch", "processing_status": status,
            "request_counts": {**base, **counts}, "ended_at": "2025-01-12T05:59:59Z" if ended else None,
            "created_at": "2025-01-12T05:59:14.154311+00:00", "expires_at": "2025-01-13T05:59:14.154311+00:00",
            "archived_at": None, "cancel_initiated_at": cancel,
            "results_url": (results_url or f"{BATCHES}/{job_id}/results") if ended else None}


def ended_job(job_id: str = "msgbatch_01", results_url: str | None = None) -> RemoteJob:
    return _anthropic_batch._remote(batch(job_id=job_id, results_url=results_url, succeeded=1), "anthropic")


def outcomes(c: anthropic.Client, job: RemoteJob) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for cid, value in c.job_results(job):
        assert cid not in out
        out[cid] = value
    return out


def text_of(answer: Any) -> str:
    m = client().completion_model(MODEL)
    return m.prepare(m.completion_request("x").build()).parse(answer, "anthropic").text


# --- the request body ------------------------------------------------------------------------------


@pytest.mark.parametrize("name, extra", [("create.request.json", {}),
                                         ("create.request.thinking.json",
                                          {"thinking": {"type": "enabled", "budget_tokens": 14000}})])
def test_create_body_has_the_recorded_shape(mocked: responses.RequestsMock, name: str, extra: dict[str, Any]) -> None:
    recorded = load_fixture(FIX + name)["requests"]
    model = recorded[0]["params"]["model"]
    prompts = [r["params"]["messages"][0]["content"] for r in recorded]
    mocked.add("POST", BATCHES, body=load_bytes(FIX + "batch.in_progress.create_response.json"))
    c = client()
    job = c.create_job("completion", model, entries(c, prompts, model, recorded[0]["params"]["max_tokens"], **extra),
                       label=job_label(len(prompts)))
    sent = sent_json(mocked)
    assert list(sent) == ["requests"]
    assert [list(r) for r in sent["requests"]] == [list(r) for r in recorded]  # custom_id, params
    for ours, theirs in zip(sent["requests"], recorded, strict=True):
        params = ours["params"]
        # every field the recorded request sets, with the same value (content as a string or as blocks)
        assert set(theirs["params"]) <= set(params)
        for key in set(theirs["params"]) - {"messages"}:
            assert params[key] == theirs["params"][key]
        assert [m["role"] for m in params["messages"]] == ["user"]
        prompt = theirs["params"]["messages"][0]["content"]
        assert params["messages"][0]["content"] in (prompt, [{"type": "text", "text": prompt}])
        assert "stream" not in params
    headers = mocked.calls[0].request.headers
    assert headers["x-api-key"] == KEY and headers["anthropic-version"] == "2023-06-01"
    assert headers["content-type"] == "application/json"
    # the recorded answer to a create: a running batch of 3
    assert (job.id, job.state, job.total, job.succeeded, job.failed) == (
        "msgbatch_015Myz5Wcm1Ua9o4n8qaw5zt", JobState.RUNNING, 3, 0, 0)
    assert job.label is not None and label_facts(job.label) is not None


# --- states and counts ------------------------------------------------------------------------------


@pytest.mark.parametrize("name, state, counts", [
    ("batch.in_progress.json", JobState.RUNNING, (3, 0, 0)),
    ("batch.in_progress.create_response.json", JobState.RUNNING, (3, 0, 0)),
    ("batch.canceling.json", JobState.CANCELLING, (3, 0, 0)),
    ("batch.ended.json", JobState.COMPLETED, (3, 3, 0)),
])
def test_recorded_batches_map_to_states(mocked: responses.RequestsMock, name: str, state: JobState,
                                        counts: tuple[int, int, int]) -> None:
    raw = load_fixture(FIX + name)
    mocked.add("GET", f"{BATCHES}/{raw['id']}", body=load_bytes(FIX + name))
    job = client().job(raw["id"])
    assert (job.provider, job.id, job.state) == ("anthropic", raw["id"], state)
    assert (job.total, job.succeeded, job.failed) == counts
    assert job.raw == raw and job.error is None


def test_ended_batches_say_why_they_ended_and_count_every_kind() -> None:
    cancelled = _anthropic_batch._remote(batch(cancel="2025-01-12T06:00:00Z", succeeded=2, canceled=3), "anthropic")
    assert (cancelled.state, cancelled.total, cancelled.succeeded, cancelled.failed) == (JobState.CANCELLED, 5, 2, 3)
    expired = _anthropic_batch._remote(batch(succeeded=1, errored=2, expired=4), "anthropic")
    assert (expired.state, expired.total, expired.succeeded, expired.failed) == (JobState.EXPIRED, 7, 1, 6)
    done = _anthropic_batch._remote(batch(succeeded=1, errored=2), "anthropic")
    assert (done.state, done.failed) == (JobState.COMPLETED, 2)  # errored items are per item: the job completed
    partial = batch("in_progress", processing=4)
    del partial["request_counts"]["expired"]  # a count the batch leaves out: no total can be made
    job = _anthropic_batch._remote(partial, "anthropic")
    assert (job.state, job.total, job.succeeded, job.failed) == (JobState.RUNNING, None, 0, 0)


@pytest.mark.parametrize("body, field", [
    ({"type": "message_batch", "processing_status": "ended"}, "id"),
    ({"id": "msgbatch_1", "request_counts": {}}, "processing_status"),
    ({"id": "msgbatch_1", "processing_status": "paused"}, "paused"),
    (["not", "an", "object"], "id"),
    ({"id": "", "processing_status": "ended"}, "id"),
])
def test_a_batch_missing_its_fields_is_a_decode_error(mocked: responses.RequestsMock, body: Any, field: str) -> None:
    mocked.add("GET", f"{BATCHES}/msgbatch_1", json=body)
    with pytest.raises(errors.ResponseDecodeError, match=field):
        client().job("msgbatch_1")


@pytest.mark.parametrize("job_id", ["", "../../v1/models", "msgbatch_1/cancel", "https://evil.test/x", " x", 7, None])
def test_a_job_id_that_is_no_id_is_refused_before_sending(job_id: Any) -> None:
    c = client()
    with responses.RequestsMock() as mocked:  # nothing may be sent
        for call in (c.job, c.cancel_job):
            with pytest.raises(errors.InvalidRequestError, match="not a batch job id"):
                call(job_id)
        assert not mocked.calls


# --- results ----------------------------------------------------------------------------------------


def test_recorded_results_of_every_kind(mocked: responses.RequestsMock) -> None:
    mocked.add("GET", f"{BATCHES}/msgbatch_01/results", body=load_bytes(FIX + "results.all_types.curator.jsonl"),
               content_type="application/binary")
    got = outcomes(client(), ended_job())
    assert list(got) == ["1", "2", "3", "4", "5"]
    assert "great to connect" in text_of(got["1"])
    for cid in ("2", "3"):  # errored: the class a request on its own would have raised, status and body kept
        err = got[cid]
        assert type(err) is errors.BadRequestError and err.status_code == 400
        assert err.code == "invalid_request_error" and err.body["error"]["type"] == "invalid_request_error"
    assert "credit balance is too low" in got["2"].message
    assert "content filtering" in got["3"].message
    for cid, reason in (("4", "cancelled"), ("5", "expired")):
        assert isinstance(got[cid], JobError)
        assert (got[cid].reason, got[cid].custom_id, got[cid].job_id, got[cid].provider) == (
            reason, cid, "msgbatch_01", "anthropic")
    # the key goes to the results on the client's own origin
    assert mocked.calls[0].request.headers["x-api-key"] == KEY


@pytest.mark.parametrize("name, ids", [("results.succeeded.jsonl", ["0", "1", "2"]),
                                       ("results.succeeded.2026.jsonl", ["my-first-request", "my-second-request"])])
def test_recorded_successes_parse_with_the_prepared_parse(mocked: responses.RequestsMock, name: str,
                                                          ids: list[str]) -> None:
    mocked.add("GET", f"{BATCHES}/msgbatch_01/results", body=load_bytes(FIX + name))
    got = outcomes(client(), ended_job())
    assert list(got) == ids
    assert all(text_of(answer) for answer in got.values())


@pytest.mark.parametrize("error, cls, status", [
    ({"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}, errors.RateLimitError, 429),
    ({"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}, errors.OverloadedError, 529),
    ({"type": "error", "error": {"type": "authentication_error", "message": "no"}}, errors.AuthenticationError, 401),
    ({"type": "error", "error": {"type": "not_found_error", "message": "model: x"}}, errors.NotFoundError, 404),
    ({"type": "invalid_request_error", "message": "prompt is too long: 300000 tokens"},  # the inner object alone
     errors.ContextWindowExceededError, 400),
    ({"type": "error", "error": {"type": "brand_new_error", "message": "?"}}, errors.InternalServerError, 500),
    ("garbage", errors.InternalServerError, 500),
    (None, errors.InternalServerError, 500),
])
def test_errored_items_become_the_status_error_of_their_type(mocked: responses.RequestsMock, error: Any,
                                                             cls: type[errors.APIStatusError], status: int) -> None:
    line = {"custom_id": "a", "result": {"type": "errored", "error": error}}
    mocked.add("GET", f"{BATCHES}/msgbatch_01/results", body=json.dumps(line) + "\n")
    err = outcomes(client(), ended_job())["a"]
    assert type(err) is cls and err.status_code == status and err.provider == "anthropic"


def test_an_item_error_echoing_the_key_is_masked(mocked: responses.RequestsMock) -> None:
    line = {"custom_id": "a", "result": {"type": "errored", "error": {
        "type": "error", "error": {"type": "authentication_error", "message": f"invalid x-api-key {KEY}"}}}}
    mocked.add("GET", f"{BATCHES}/msgbatch_01/results", body=json.dumps(line) + "\n")
    err = outcomes(client(), ended_job())["a"]
    assert isinstance(err, errors.AuthenticationError)
    assert KEY not in str(err) and KEY not in json.dumps(err.body)


@pytest.mark.parametrize("result, why", [
    ({"type": "succeeded"}, "type 'succeeded'"),  # no message
    ({"type": "succeeded", "message": "text"}, "type 'succeeded'"),
    ({"type": "paused"}, "type 'paused'"),
    (None, "type None"),
    ("errored", "type None"),
])
def test_a_result_that_cannot_be_read_is_an_item_error(mocked: responses.RequestsMock, result: Any, why: str) -> None:
    body = json.dumps({"custom_id": "a", "result": result}) + "\n" + json.dumps(
        {"custom_id": "b", "result": {"type": "expired"}}) + "\n"
    mocked.add("GET", f"{BATCHES}/msgbatch_01/results", body=body)
    got = outcomes(client(), ended_job())
    assert isinstance(got["a"], JobError) and got["a"].reason == "errored"
    assert isinstance(got["a"].error, errors.ResponseDecodeError) and why in str(got["a"])
    assert isinstance(got["b"], JobError) and got["b"].reason == "expired"  # the rest still come


def test_lines_no_item_can_be_given_are_logged_and_left_out(mocked: responses.RequestsMock,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    ok = {"custom_id": "a", "result": {"type": "expired"}}
    body = "\n".join([
        "this is not json",
        json.dumps(ok),
        "[1, 2, 3]",
        "null",
        json.dumps({"result": {"type": "expired"}}),  # no custom id
        json.dumps({"custom_id": "", "result": {"type": "expired"}}),
        json.dumps({"custom_id": 7, "result": {"type": "expired"}}),
        json.dumps({"custom_id": "a", "result": {"type": "canceled"}}),  # again: the first is kept
        "",
        json.dumps({"custom_id": "z", "result": {"type": "canceled"}}),  # an id the job may not hold: passed on
    ]) + "\n"
    mocked.add("GET", f"{BATCHES}/msgbatch_01/results", body=body)
    with caplog.at_level(logging.WARNING, "rig_sync.batch_jobs"):
        got = outcomes(client(), ended_job())
    assert list(got) == ["a", "z"] and got["a"].reason == "expired"
    text = caplog.text
    for where in ("line 1:", "line 3:", "line 4:", "line 5:", "line 6:", "line 7:", "line 8:"):
        assert f"results {where}" in text
    assert "'a' again" in text and "7 result(s) could not be given to an item" in text


def test_a_last_line_cut_off_is_a_retryable_stream_error_after_the_whole_ones(mocked: responses.RequestsMock) -> None:
    whole = json.dumps({"custom_id": "a", "result": {"type": "expired"}})
    mocked.add("GET", f"{BATCHES}/msgbatch_01/results", body=whole + "\n" + whole[:25])
    results = client().job_results(ended_job())
    assert next(results)[0] == "a"  # what came whole is given first
    with pytest.raises(errors.StreamError, match="cut off mid-way") as caught:
        next(results)
    assert caught.value.is_retryable() and caught.value.provider == "anthropic"


def test_a_whole_last_line_without_a_line_end_is_read(mocked: responses.RequestsMock) -> None:
    whole = json.dumps({"custom_id": "a", "result": {"type": "expired"}})
    mocked.add("GET", f"{BATCHES}/msgbatch_01/results", body=whole)
    assert list(outcomes(client(), ended_job())) == ["a"]


def test_a_results_line_past_the_limit_is_a_stream_error(mocked: responses.RequestsMock,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sse, "MAX_EVENT_BYTES", 1000)
    line = json.dumps({"custom_id": "a", "result": {"type": "errored", "error": {"message": "x" * 5000}}})
    mocked.add("GET", f"{BATCHES}/msgbatch_01/results", body=line + "\n")
    with pytest.raises(errors.StreamError, match="longer than 1,000 bytes") as caught:
        outcomes(client(), ended_job())
    assert caught.value.provider == "anthropic"


def test_results_url_on_another_host_is_never_sent_the_key(mocked: responses.RequestsMock,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    line = json.dumps({"custom_id": "a", "result": {"type": "expired"}}) + "\n"
    mocked.add("GET", f"{BATCHES}/msgbatch_01/results", body=line)  # the documented path, on the base URL
    job = ended_job(results_url="https://results.evil.test/v1/messages/batches/msgbatch_01/results?key=1")
    with caplog.at_level(logging.WARNING, "rig_sync.batch_jobs"):
        assert list(outcomes(client(), job)) == ["a"]
    assert [c.request.url for c in mocked.calls] == [f"{BATCHES}/msgbatch_01/results"]  # evil.test got nothing
    assert "results.evil.test" in caplog.text and "not on the client's origin" in caplog.text


@pytest.mark.parametrize("url", ["http://api.anthropic.com/v1/messages/batches/msgbatch_01/results",  # http
                                 "https://api.anthropic.com:8443/v1/messages/batches/msgbatch_01/results",
                                 "https://api.anthropic.com:99999/x", "ftp://api.anthropic.com/x", "/relative/x"])
def test_results_url_on_another_origin_falls_back_to_the_documented_path(mocked: responses.RequestsMock,
                                                                         url: str) -> None:
    mocked.add("GET", f"{BATCHES}/msgbatch_01/results", body="")
    assert outcomes(client(), ended_job(results_url=url)) == {}
    assert len(mocked.calls) == 1 and mocked.calls[0].request.headers["x-api-key"] == KEY


def test_results_url_on_the_clients_own_origin_is_followed_with_the_key(mocked: responses.RequestsMock) -> None:
    url = f"{BASE}/v2/somewhere/else/results?part=1"
    mocked.add("GET", url, body=json.dumps({"custom_id": "a", "result": {"type": "expired"}}) + "\n")
    assert list(outcomes(client(), ended_job(results_url=url))) == ["a"]
    assert mocked.calls[0].request.headers["x-api-key"] == KEY


def test_results_of_a_batch_still_running_are_refused_before_sending() -> None:
    job = _anthropic_batch._remote(batch("in_progress", processing=2), "anthropic")
    with responses.RequestsMock() as mocked, pytest.raises(errors.InvalidRequestError, match="running"):
        list(client().job_results(job))
    assert not mocked.calls


def test_results_an_archived_batch_no_longer_has_raise_the_status_error(mocked: responses.RequestsMock) -> None:
    mocked.add("GET", f"{BATCHES}/msgbatch_01/results", status=404,
               json={"type": "error", "error": {"type": "not_found_error", "message": "results are archived"}})
    with pytest.raises(errors.NotFoundError, match="archived"):
        list(client().job_results(ended_job()))


def test_a_huge_batch_object_is_refused_past_the_clients_limit(mocked: responses.RequestsMock) -> None:
    mocked.add("GET", f"{BATCHES}/msgbatch_01", body=json.dumps({**batch(), "padding": "x" * 50_000}))
    with pytest.raises(errors.ResponseTooLargeError):
        client(max_response_bytes=10_000).job("msgbatch_01")


# --- creating: what is refused before anything is sent -----------------------------------------------


def refused(c: anthropic.Client, items: list[JobEntry], match: str, model: str = MODEL, kind: Any = "completion",
            error: type[Exception] = errors.InvalidRequestError) -> None:
    with responses.RequestsMock() as mocked:
        with pytest.raises(error, match=match):
            c.create_job(kind, model, items, label=job_label(max(len(items), 1)))
        assert not mocked.calls


def test_bad_jobs_are_refused_before_sending(monkeypatch: pytest.MonkeyPatch) -> None:
    c = client()
    one = entries(c, ["hi"])
    refused(c, [], "at least one request")
    for bad in ("", "has space", "x" * 65, "dot.ted", "é"):
        refused(c, [JobEntry(bad, one[0].call)], "1 to 64 letters")
    refused(c, [one[0], JobEntry("i0", one[0].call)], "used twice")
    refused(c, one, "one job holds one model", model="claude-other")
    streaming = JobEntry("s", one[0].call._replace(body={**one[0].call.body, "stream": True}))
    refused(c, [streaming], "asks to stream")
    g = gemini.Client("g-key").completion_model("gemini-2.5-flash")
    refused(c, [JobEntry("g", g.prepare(g.completion_request("hi").build()))], "holds /v1/messages requests")
    refused(c, one, "do not take embeddings", kind="embeddings", error=errors.UnsupportedFeature)
    monkeypatch.setattr(_anthropic_batch.AnthropicBatchJobs, "max_job_requests", 2)
    refused(c, entries(c, ["a", "b", "c"]), "at most 2 requests")
    monkeypatch.setattr(_anthropic_batch.AnthropicBatchJobs, "max_job_bytes", 100)
    refused(c, entries(c, ["a", "b"]), "at most 100 bytes")
    lone = entries(c, ["half \ud800 a character"])
    refused(c, lone, "cannot be sent as JSON")
    assert c.job_limits("completion") == JobLimits(max_requests=2, max_bytes=100)  # the limits it refused by


def test_limits_are_anthropics() -> None:
    c = client()
    assert c.job_limits("completion") == JobLimits(max_requests=10_000, max_bytes=256_000_000)
    with pytest.raises(errors.UnsupportedFeature, match=r"batch\.map"):
        c.job_limits("embeddings")
    assert c.job_kinds == ("completion",) and "batch_jobs" in anthropic.Client.capabilities()


# --- job labels (client.jobs) -------------------------------------------------------------------------


def test_job_label_carries_its_time_and_count() -> None:
    label = job_label(500, at=1_733_380_000.9)
    assert label.startswith("rs-1733380000-500-") and len(label) == len("rs-1733380000-500-") + 8
    assert label_facts(label) == (1_733_380_000, 500)
    assert job_label(1) != job_label(1)  # random part
    for other in ("rs-1733380000-500", "my-label", "rs-173338000-5-abcdef12", "", None, 5):
        assert label_facts(other) is None  # type: ignore[arg-type]
    for bad in (0, -1, True, 1.5):
        with pytest.raises(ValueError, match="at least one item"):
            job_label(bad)  # type: ignore[arg-type]


# --- find_job ---------------------------------------------------------------------------------------


def listed(job_id: str, created: float, count: int, status: str = "in_progress") -> dict[str, Any]:
    raw = batch(status, job_id=job_id, processing=count if status != "ended" else 0,
                succeeded=count if status == "ended" else 0)
    raw["created_at"] = time.strftime("%Y-%m-%dT%H:%M:%S.000000+00:00", time.gmtime(created))
    return raw


def test_find_job_matches_time_and_count_newest_first_over_pages(mocked: responses.RequestsMock) -> None:
    at = 1_733_380_000
    page1 = {"data": [listed("msgbatch_new", at + 7200, 3), listed("msgbatch_late", at + 1000, 3),
                      listed("msgbatch_other", at + 60, 4)],
             "has_more": True, "first_id": "msgbatch_new", "last_id": "msgbatch_other"}
    page2 = {"data": [listed("msgbatch_it", at - 200, 3, "ended"), listed("msgbatch_old", at - 9000, 3)],
             "has_more": True, "first_id": "msgbatch_it", "last_id": "msgbatch_old"}
    mocked.add("GET", BATCHES, json=page1, match=[responses.matchers.query_param_matcher({"limit": "100"})])
    mocked.add("GET", BATCHES, json=page2, match=[responses.matchers.query_param_matcher(
        {"limit": "100", "after_id": "msgbatch_other"})])
    label = job_label(3, at=at)
    found = client().find_job(label)
    assert found is not None and (found.id, found.state, found.label) == ("msgbatch_it", JobState.COMPLETED, label)
    assert len(mocked.calls) == 2  # the page with a batch older than the intent was the last read


def test_find_job_is_none_when_ambiguous_or_absent(mocked: responses.RequestsMock,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    at = 1_733_380_000
    page = {"data": [listed("msgbatch_a", at + 10, 2), listed("msgbatch_b", at + 20, 2)], "has_more": False,
            "first_id": "msgbatch_a", "last_id": "msgbatch_b"}
    mocked.add("GET", BATCHES, json=page)
    mocked.add("GET", BATCHES, json=page)
    with caplog.at_level(logging.WARNING, "rig_sync.batch_jobs"):
        assert client().find_job(job_label(2, at=at)) is None
    assert "msgbatch_a" in caplog.text and "msgbatch_b" in caplog.text
    assert client().find_job(job_label(5, at=at)) is None  # no batch of that count


def test_find_job_reads_nothing_for_a_label_it_cannot_match() -> None:
    with responses.RequestsMock() as mocked:
        assert client().find_job("my own label") is None
        assert not mocked.calls


def test_find_job_refuses_a_list_without_data(mocked: responses.RequestsMock) -> None:
    mocked.add("GET", BATCHES, json={"batches": []})
    with pytest.raises(errors.ResponseDecodeError, match="'data'"):
        client().find_job(job_label(1))


# --- end to end against the loopback FakeProvider ------------------------------------------------------


@pytest.fixture
def loop() -> Iterator[tuple[FakeProvider, anthropic.Client]]:
    with FakeProvider(batch_polls=2) as fp:
        yield fp, anthropic.Client(fp.api_key, base_url=fp.url, max_retries=0)


def run(c: anthropic.Client, prompts: list[str], model: str = "claude-haiku-4-5") -> RemoteJob:
    return c.create_job("completion", model, entries(c, prompts, model, 64), label=job_label(len(prompts)))


def poll_until_ended(c: anthropic.Client, job: RemoteJob) -> RemoteJob:
    for _ in range(20):
        if job.state.ended:
            return job
        job = c.job(job.id)
    raise AssertionError(f"{job} did not end")


def test_fake_submit_poll_and_read(loop: tuple[FakeProvider, anthropic.Client]) -> None:
    fake, c = loop
    job = run(c, ["hello", "please FAIL_ITEM", "third"])
    assert (job.state, job.total, fake.jobs_created) == (JobState.RUNNING, 3, 1)
    states = [c.job(job.id) for _ in range(2)]
    assert [s.state for s in states] == [JobState.RUNNING, JobState.COMPLETED]
    assert (states[0].succeeded, states[-1].succeeded, states[-1].failed) == (1, 2, 1)
    got = outcomes(c, states[-1])
    assert sorted(got) == ["i0", "i1", "i2"]
    assert text_of(got["i0"]) == "echo: hello" and text_of(got["i2"]) == "echo: third"
    assert isinstance(got["i1"], errors.BadRequestError) and "FAIL_ITEM" in got["i1"].message
    assert fake.jobs_created == 1
    sent = next(r for r in fake.requests if r.path == "/v1/messages/batches")
    assert sent.headers["x-api-key"] == fake.api_key and [r["custom_id"] for r in sent.json["requests"]] == [
        "i0", "i1", "i2"]


def test_fake_results_are_streamed_not_read_whole(loop: tuple[FakeProvider, anthropic.Client]) -> None:
    fake, _ = loop
    c = anthropic.Client(fake.api_key, base_url=fake.url, max_retries=0, max_response_bytes=2_000)
    prompts = [f"prompt {i} " + "word " * 40 for i in range(40)]  # some 12 KB of results: past the 2 KB limit
    fake.batch_polls = 0
    job = run(c, prompts)
    got = outcomes(c, job)
    assert len(got) == 40 and text_of(got["i39"]).startswith("echo: prompt 39")


def test_fake_cancel_keeps_what_was_answered(loop: tuple[FakeProvider, anthropic.Client]) -> None:
    fake, c = loop
    fake.batch_polls = 4
    job = run(c, ["a", "b", "c", "d"])
    assert c.job(job.id).succeeded == 1  # first poll: a quarter answered
    cancelling = c.cancel_job(job.id)
    assert cancelling.state is JobState.CANCELLING and cancelling.raw["cancel_initiated_at"]
    ended = c.job(job.id)
    assert (ended.state, ended.succeeded, ended.failed) == (JobState.CANCELLED, 1, 3)
    got = outcomes(c, ended)
    assert text_of(got["i0"]) == "echo: a"
    assert {cid: (v.reason, v.custom_id) for cid, v in got.items() if cid != "i0"} == {
        "i1": ("cancelled", "i1"), "i2": ("cancelled", "i2"), "i3": ("cancelled", "i3")}
    assert c.cancel_job(job.id).state is JobState.CANCELLED  # an ended batch is answered as it is


def test_fake_expired_and_refused_batches(loop: tuple[FakeProvider, anthropic.Client]) -> None:
    fake, c = loop
    fake.batch_polls = None
    job = run(c, ["a", "b"])
    assert fake.expire_jobs() == 1
    ended = c.job(job.id)
    assert (ended.state, ended.failed) == (JobState.EXPIRED, 2)
    assert {v.reason for v in outcomes(c, ended).values()} == {"expired"}
    fake.fail_next_job("The requests could not be read.")
    job = run(c, ["a"])
    ended = poll_until_ended(c, job)
    got = outcomes(c, ended)
    assert isinstance(got["i0"], errors.BadRequestError) and "could not be read" in got["i0"].message


def test_fake_find_job_after_a_run_died_before_noting_the_id(loop: tuple[FakeProvider, anthropic.Client]) -> None:
    fake, c = loop
    label = job_label(2)
    job = c.create_job("completion", "claude-haiku-4-5", entries(c, ["a", "b"], "claude-haiku-4-5", 16), label=label)
    run(c, ["x", "y", "z"])  # another run's batch, of another count
    found = c.find_job(label)
    assert found is not None and found.id == job.id and found.label == label
    assert c.find_job(job_label(2, at=time.time() + 3 * 3600)) is None  # created long before that intent
    run(c, ["c", "d"])
    assert c.find_job(label) is None  # two batches could be it: none is taken
    assert fake.jobs_created == 3


def test_fake_hostile_results_through_scripted_replies(loop: tuple[FakeProvider, anthropic.Client],
                                                       caplog: pytest.LogCaptureFixture) -> None:
    fake, c = loop
    fake.batch_polls = 0
    job = run(c, ["a"])
    path = f"/v1/messages/batches/{job.id}/results"
    garbage = b'garbage\n{"custom_id":"i0","result":{"type":"expired"}}\n{"custom_id":"i0","res'
    fake.script(Reply.json(200, garbage), path=path)
    results = c.job_results(job)
    assert next(results)[0] == "i0"
    with pytest.raises(errors.StreamError, match="cut off"):
        next(results)
    # a batch object pointing at another host for its results: read from the fake, the key sent nowhere else
    fake.script(Reply.json(200, {**batch(job_id=job.id, results_url="http://127.0.0.2:9/steal"), "id": job.id}),
                path=f"/v1/messages/batches/{job.id}")
    with caplog.at_level(logging.WARNING, "rig_sync.batch_jobs"):
        got = outcomes(c, c.job(job.id))
    assert text_of(got["i0"]) == "echo: a" and "127.0.0.2" in caplog.text
    assert fake.requests[-1].path == path


def test_fake_refuses_what_anthropic_refuses(loop: tuple[FakeProvider, anthropic.Client]) -> None:
    fake, c = loop
    t = c.transport
    cases = [({"requests": []}, "at least 1 item"),
             ({"requests": [{"custom_id": "bad id", "params": {}}]}, "pattern"),
             ({"requests": [{"custom_id": "a", "params": {"stream": True}}]}, "Streaming"),
             ({"requests": [{"custom_id": "a", "params": {}}, {"custom_id": "a", "params": {}}]}, "Duplicate")]
    for body, match in cases:
        with pytest.raises(errors.BadRequestError, match=match):
            t.request("POST", "/v1/messages/batches", json=body)
    with pytest.raises(errors.NotFoundError, match="not found"):
        c.job("msgbatch_missing")
    job = run(c, ["a"])
    with pytest.raises(errors.BadRequestError, match="has not ended"):
        t.request("GET", f"/v1/messages/batches/{job.id}/results")
    listing = t.request("GET", "/v1/messages/batches", params={"limit": "1"}).json()
    assert listing["data"][0]["id"] == job.id and listing["has_more"] is False
    assert fake.jobs_created == 1
