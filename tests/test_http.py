"""rig_sync.http.Transport: pooling, timeouts, retries, redirects, secrets, fork and pickle safety, streams.

Behaviour is checked against the real loopback FakeProvider and, where a test needs other hosts or
exact control of the answer, with `responses` (which never touches the network).
"""

from __future__ import annotations

import email.utils
import gc
import gzip
import logging
import os
import pickle
import socket
import threading
import time
import traceback
import types
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
import responses
import urllib3.util.retry

import rig_sync.http._retry as retry_mod
import rig_sync.observe
from rig_sync import errors
from rig_sync.http import RetryPolicy, StreamResponse, Timeout, Transport, join_url, validate_base_url
from rig_sync.sse import iter_sse
from rig_sync.testing import FakeProvider, Fault, Reply

KEY = "sk-secret-123"
BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
API = "https://api.provider.test/v1"
OTHER = "https://elsewhere.test"
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "all_proxy",
              "no_proxy", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


@pytest.fixture(autouse=True)
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loopback tests must not go through a proxy configured on the machine."""
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The waits urllib3's Retry asks for, recorded instead of slept."""
    asked: list[float] = []
    fake_time = types.SimpleNamespace(sleep=asked.append, time=time.time, monotonic=time.monotonic)
    monkeypatch.setattr(urllib3.util.retry, "time", fake_time)
    return asked


@pytest.fixture
def no_jitter(monkeypatch: pytest.MonkeyPatch) -> Callable[[float], None]:
    def set_random(value: float) -> None:
        monkeypatch.setattr(retry_mod, "random", types.SimpleNamespace(random=lambda: value))

    set_random(0.0)
    return set_random


def make(fake: FakeProvider, retries: int = 2, backoff: float = 0.0, read: float = 2.0, **kw: Any) -> Transport:
    return Transport(
        "openai",
        fake.base_url,
        auth_headers={"Authorization": f"Bearer {KEY}"},
        retry=RetryPolicy(max_retries=retries, backoff_base=backoff, **kw.pop("policy", {})),
        timeout=Timeout(connect=1, read=read),
        **kw,
    )


def chat(transport: Transport) -> Any:
    return transport.post_json("/chat/completions", BODY)


def sent_kwargs(call: Any) -> dict[str, Any]:
    """The keyword arguments `responses` saw the adapter called with (timeout, proxies, …)."""
    kwargs: dict[str, Any] = call.request.req_kwargs
    return kwargs


def run_bounded(fn: Callable[[], Any], seconds: float = 5.0) -> Any:
    """Run `fn` in a thread and fail (instead of hanging the suite) if it does not finish in time."""
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(fn()), daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still blocked after {seconds}s"
    assert result, "raised instead of returning (see the thread's traceback above)"
    return result[0]


# --- value objects and URLs ------------------------------------------------------------------------


def test_timeouts_are_on_by_default() -> None:
    default = Timeout()
    assert 0 < default.connect <= 60 and 0 < default.read <= 600
    assert Transport("openai", API).timeout == default


@pytest.mark.parametrize(
    ("given", "expected"),
    [(5, Timeout(5, 5)), (30.0, Timeout(10, 30)), ((1, 2), Timeout(1, 2)), (Timeout(3, 4), Timeout(3, 4))],
)
def test_timeout_of(given: Any, expected: Timeout) -> None:
    assert Timeout.of(given) == expected


@pytest.mark.parametrize("bad", [None, "10", True, (1,), (1, 2, 3)])
def test_timeout_of_rejects_unbounded_or_malformed(bad: Any) -> None:
    with pytest.raises(TypeError):
        Timeout.of(bad)


@pytest.mark.parametrize("bad", [0, -1])
def test_timeout_must_be_positive(bad: float) -> None:
    with pytest.raises(ValueError):
        Timeout(connect=bad)
    with pytest.raises(ValueError):
        Timeout.of(bad)


def test_retry_policy_validates() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(max_retries=-1)
    with pytest.raises(ValueError):
        RetryPolicy(backoff_base=-0.1)


@pytest.mark.parametrize(
    ("base", "path", "expected"),
    [
        ("https://x/v1", "/chat/completions", "https://x/v1/chat/completions"),
        ("https://x/v1/", "/chat/completions", "https://x/v1/chat/completions"),
        ("https://x/v1", "chat/completions", "https://x/v1/chat/completions"),
        ("https://x/v1//", "//chat", "https://x/v1/chat"),
        ("https://x", "/v1/messages", "https://x/v1/messages"),
        ("https://x/v1", "", "https://x/v1"),
        ("https://x/v1", "/", "https://x/v1"),
        ("http://127.0.0.1:8080/v1", "/embeddings", "http://127.0.0.1:8080/v1/embeddings"),
        ("https://x/v1", "https://cdn.y/img.png", "https://cdn.y/img.png"),
        ("https://x/v1", "HTTPS://cdn.y/a", "HTTPS://cdn.y/a"),
        ("https://x/openai?api-version=2024-10-21", "/chat", "https://x/openai/chat?api-version=2024-10-21"),
        ("https://x/v1?a=1", "/models/m:stream?alt=sse", "https://x/v1/models/m:stream?a=1&alt=sse"),
    ],
)
def test_join_url(base: str, path: str, expected: str) -> None:
    assert join_url(base, path) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://api.x.com/v1", "https://api.x.com/v1"),
        ("https://api.x.com/v1/", "https://api.x.com/v1"),
        ("  http://127.0.0.1:11434  ", "http://127.0.0.1:11434"),
        ("HTTPS://API.X.COM", "HTTPS://API.X.COM"),
        ("http://[::1]:8080/v1", "http://[::1]:8080/v1"),
    ],
)
def test_validate_base_url_accepts(url: str, expected: str) -> None:
    assert validate_base_url(url, "p") == expected


@pytest.mark.parametrize(
    "url",
    ["", "   ", "api.openai.com/v1", "ftp://x/v1", "https://", "https:///v1", "http://x:notaport/v1",
     "https://x/v1#frag", None, 42],
)
def test_validate_base_url_rejects(url: Any) -> None:
    with pytest.raises(errors.InvalidBaseURLError) as info:
        validate_base_url(url, "openai")
    assert "openai" in str(info.value)


@pytest.mark.parametrize("url", ["https://user:hunter2pass@api.x.com/v1", "https://:hunter2pass@api.x.com",
                                 "hunter2user:hunter2pass@api.x.com/v1"])
def test_credentials_in_base_url_are_refused_and_not_echoed(url: str) -> None:
    with pytest.raises(errors.InvalidBaseURLError) as info:
        Transport("openai", url)
    assert "hunter2pass" not in str(info.value) and "hunter2pass" not in repr(info.value)


def test_pool_size_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Transport("openai", API, pool_size=0)


# --- basic exchange -----------------------------------------------------------------------------------


def test_post_json_against_loopback(fake: FakeProvider) -> None:
    answer = chat(make(fake, headers={"X-Team": "a"}))
    assert answer["choices"][0]["message"]["content"] == "echo: hi"
    sent = fake.last_request
    assert sent is not None
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.headers["x-team"] == "a" and sent.headers["user-agent"].startswith("rig-sync/")
    assert sent.headers["content-type"] == "application/json" and sent.json == BODY


def test_request_returns_a_response(fake: FakeProvider) -> None:
    fake.script(Reply.json(200, {"ok": True}, headers={"x-custom": "1"}))
    resp = make(fake).request("POST", "/chat/completions", json=BODY, params={"q": "1"})
    assert (resp.status, resp.json(), resp.request_id, resp.provider, resp.retries) == (200, {"ok": True},
                                                                                        "req_1", "openai", 0)
    assert resp.headers["X-Custom"] == "1"  # case-insensitive
    assert fake.requests[0].query == {"q": "1"}


# --- timeouts -----------------------------------------------------------------------------------------


def test_a_server_that_never_answers_times_out_within_the_read_timeout(fake: FakeProvider) -> None:
    fake.inject(Fault.hang())
    transport = make(fake, retries=0, read=0.3)
    started = time.monotonic()
    with pytest.raises(errors.APITimeoutError) as info:
        chat(transport)
    assert 0.3 <= time.monotonic() - started < 2.0
    assert info.value.is_retryable() and info.value.provider == "openai"
    assert fake.request_count == 1


def test_timeouts_are_retried_and_still_reported_as_timeouts(fake: FakeProvider) -> None:
    fake.inject(Fault.hang(), times=2)
    with pytest.raises(errors.APITimeoutError):
        chat(make(fake, retries=1, read=0.2))
    assert fake.request_count == 2


def test_a_timeout_then_success_is_retried(fake: FakeProvider) -> None:
    fake.inject(Fault.hang())
    assert chat(make(fake, retries=1, read=0.2))["object"] == "chat.completion"
    assert fake.request_count == 2


@responses.activate
def test_timeouts_are_passed_on_every_request() -> None:
    responses.add("POST", API + "/chat/completions", json={})
    responses.add("GET", API + "/models", json={})
    transport = Transport("openai", API, timeout=Timeout(connect=1, read=0.5))
    transport.post_json("/chat/completions", BODY)
    transport.request("GET", "/models")
    assert [sent_kwargs(c)["timeout"] for c in responses.calls] == [(1, 0.5), (1, 0.5)]


# --- retries ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504, 529])
def test_retryable_statuses_are_retried(fake: FakeProvider, status: int, sleeps: list[float]) -> None:
    fake.inject(Fault.status(status), times=2)
    resp = make(fake, retries=2).request("POST", "/chat/completions", json=BODY)
    assert resp.status == 200 and resp.retries == 2
    assert fake.request_count == 3


@pytest.mark.parametrize("status", [501, 505])
def test_deterministic_server_failures_are_not_retried(fake: FakeProvider, status: int, sleeps: list[float]) -> None:
    fake.inject(Fault.status(status), times=3)
    with pytest.raises(errors.InternalServerError) as info:
        make(fake, retries=2).request("POST", "/chat/completions", json=BODY)
    assert fake.request_count == 1 and sleeps == [] and not info.value.is_retryable()


@pytest.mark.parametrize(
    ("body", "status"),
    [({"error": {"code": 400, "message": "the request exceeds the available context size, try increasing it",
                 "type": "exceed_context_size_error"}}, 400),  # llama.cpp
     ({"error": {"code": 400, "message": "The input token count (1200000) exceeds the maximum number of tokens "
                 "allowed (1048576).", "status": "INVALID_ARGUMENT"}}, 400)],  # Gemini
)
def test_context_overflow_is_its_own_class(body: dict[str, Any], status: int) -> None:
    err = errors.status_error(status, body["error"]["message"], provider="p", body=body,
                              code=body["error"].get("type"))
    assert isinstance(err, errors.ContextWindowExceededError) and not err.is_retryable()


@pytest.mark.parametrize(
    ("status", "cls"),
    [(400, errors.BadRequestError), (401, errors.AuthenticationError), (403, errors.PermissionDeniedError),
     (404, errors.NotFoundError), (422, errors.UnprocessableEntityError)],
)
def test_client_errors_are_not_retried(fake: FakeProvider, status: int, cls: type[Exception],
                                       sleeps: list[float]) -> None:
    fake.inject(Fault.status(status), times=3)
    with pytest.raises(cls):
        chat(make(fake, retries=3))
    assert fake.request_count == 1 and sleeps == []


def test_retries_are_exhausted_then_the_error_is_raised(fake: FakeProvider) -> None:
    fake.inject(Fault.status(500), times=10)
    with pytest.raises(errors.InternalServerError) as info:
        chat(make(fake, retries=3))
    assert fake.request_count == 4 and info.value.is_retryable()


def test_max_retries_zero_disables_retries(fake: FakeProvider) -> None:
    fake.inject(Fault.status(503), times=2)
    with pytest.raises(errors.InternalServerError):
        chat(make(fake, retries=0))
    assert fake.request_count == 1
    fake.reset()
    fake.inject(Fault.drop(), times=2)
    with pytest.raises(errors.APIConnectionError):
        chat(make(fake, retries=0))
    assert fake.request_count == 1


def test_dropped_connections_are_retried(fake: FakeProvider) -> None:
    fake.inject(Fault.drop(), times=2)
    assert chat(make(fake, retries=2))["object"] == "chat.completion"
    assert fake.request_count == 3


def test_dropped_connections_exhaust_into_a_connection_error(fake: FakeProvider) -> None:
    fake.inject(Fault.drop(), times=5)
    with pytest.raises(errors.APIConnectionError) as info:
        chat(make(fake, retries=2))
    assert not isinstance(info.value, errors.APITimeoutError)
    assert info.value.is_retryable() and fake.request_count == 3


def test_refused_connection_is_a_connection_error_not_a_timeout() -> None:
    with socket.socket() as sock:  # a loopback port with nobody listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    transport = Transport("openai", f"http://127.0.0.1:{port}/v1", retry=RetryPolicy(max_retries=1, backoff_base=0))
    with pytest.raises(errors.APIConnectionError) as info:
        chat(transport)
    assert type(info.value) is errors.APIConnectionError and "refused" in str(info.value).lower()


def test_x_should_retry_true_forces_a_retry(fake: FakeProvider) -> None:
    fake.inject(Fault.status(400, should_retry=True))
    assert chat(make(fake, retries=1))["object"] == "chat.completion"
    assert fake.request_count == 2


def test_x_should_retry_false_forbids_a_retry(fake: FakeProvider) -> None:
    fake.inject(Fault.status(500, should_retry=False), times=2)
    with pytest.raises(errors.InternalServerError) as info:
        chat(make(fake, retries=2))
    assert fake.request_count == 1 and not info.value.is_retryable()


def test_backoff_is_exponential_and_capped(fake: FakeProvider, sleeps: list[float],
                                           no_jitter: Callable[[float], None]) -> None:
    fake.inject(Fault.status(500), times=4)
    resp = make(fake, retries=4, backoff=1.0, policy={"backoff_max": 5.0}).request(
        "POST", "/chat/completions", json=BODY)
    assert resp.retries == 4
    assert sleeps == [1.0, 2.0, 4.0, 5.0]


def test_backoff_is_jittered_down_by_at_most_a_quarter(fake: FakeProvider, sleeps: list[float],
                                                        no_jitter: Callable[[float], None]) -> None:
    no_jitter(1.0)  # the largest jitter
    fake.inject(Fault.status(503), times=2)
    make(fake, retries=2, backoff=2.0).request("POST", "/chat/completions", json=BODY)
    assert sleeps == [1.5, 3.0]


def test_backoff_jitter_varies(fake: FakeProvider, sleeps: list[float]) -> None:
    transport = make(fake, retries=1, backoff=1.0)
    for _ in range(3):
        fake.inject(Fault.status(503))
        transport.request("POST", "/chat/completions", json=BODY)
    assert all(0.75 <= s <= 1.0 for s in sleeps) and len(sleeps) == 3
    assert len(set(sleeps)) > 1


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (Fault.status(429, retry_after=3), 3.0),
        (Fault.status(429, retry_after=1.5), 1.5),
        (Fault.status(503, retry_after_ms=250), 0.25),
        (Fault.status(429, retry_after=9, retry_after_ms=40), 0.04),
    ],
)
def test_retry_after_is_honoured(fake: FakeProvider, sleeps: list[float], fault: Fault, expected: float) -> None:
    fake.inject(fault)
    resp = make(fake, retries=1, backoff=10.0).request("POST", "/chat/completions", json=BODY)
    assert resp.retries == 1 and sleeps == [expected]


def test_retry_after_http_date_is_honoured(fake: FakeProvider, sleeps: list[float]) -> None:
    fake.inject(Fault.status(429, retry_after=email.utils.formatdate(time.time() + 20, usegmt=True)))
    make(fake, retries=1).request("POST", "/chat/completions", json=BODY)
    assert len(sleeps) == 1 and 15 <= sleeps[0] <= 21


def test_retry_after_above_the_cap_is_raised_at_once(fake: FakeProvider, sleeps: list[float]) -> None:
    fake.inject(Fault.status(429, retry_after=120), times=3)
    with pytest.raises(errors.RateLimitError) as info:
        chat(make(fake, retries=3, policy={"max_retry_after": 60.0}))
    assert fake.request_count == 1 and sleeps == []
    assert info.value.retry_after == 120.0 and info.value.is_retryable()


def test_retry_after_ms_above_the_cap_is_raised_at_once(fake: FakeProvider, sleeps: list[float]) -> None:
    fake.inject(Fault.status(503, retry_after_ms=500))
    with pytest.raises(errors.InternalServerError) as info:
        chat(make(fake, retries=3, policy={"max_retry_after": 0.1}))
    assert fake.request_count == 1 and sleeps == [] and info.value.retry_after == 0.5


@responses.activate
def test_attempts_are_counted_with_responses() -> None:
    url = API + "/chat/completions"
    responses.add("POST", url, json={"error": {"message": "busy"}}, status=503)
    responses.add("POST", url, json={"error": {"message": "busy"}}, status=429)
    responses.add("POST", url, json={"ok": 1})
    transport = Transport("openai", API, retry=RetryPolicy(max_retries=2, backoff_base=0))
    assert transport.post_json("/chat/completions", BODY) == {"ok": 1}
    assert len(responses.calls) == 3


@responses.activate
def test_no_retry_of_a_404_with_responses() -> None:
    responses.add("POST", API + "/chat/completions", json={"error": {"message": "no"}}, status=404)
    with pytest.raises(errors.NotFoundError):
        Transport("openai", API, retry=RetryPolicy(max_retries=3, backoff_base=0)).post_json("/chat/completions", BODY)
    assert len(responses.calls) == 1


# --- pooling ------------------------------------------------------------------------------------------


def test_many_threads_share_a_bounded_pool(fake: FakeProvider, caplog: pytest.LogCaptureFixture,
                                           recwarn: pytest.WarningsRecorder) -> None:
    fake.latency = 0.01  # hold connections long enough for the threads to contend
    transport = make(fake, pool_size=8)
    with caplog.at_level(logging.DEBUG, logger="urllib3"), ThreadPoolExecutor(32) as pool:
        answers = list(pool.map(lambda _: chat(transport)["object"], range(128)))
    assert answers == ["chat.completion"] * 128
    assert fake.request_count == 128
    assert 1 <= fake.connection_count <= 8
    assert "Connection pool is full" not in caplog.text
    assert not [w for w in recwarn if "pool" in str(w.message).lower()]


def test_connections_are_reused(fake: FakeProvider) -> None:
    transport = make(fake)
    for _ in range(5):
        chat(transport)
    assert fake.connection_count == 1


# --- environment ----------------------------------------------------------------------------------------


def test_proxy_environment_is_read_once_at_build(fake: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    transport = make(fake)
    # Set after the build: a proxy nobody listens on would break every request if it were read now.
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    assert chat(transport)["object"] == "chat.completion"


def test_get_environ_proxies_is_not_called_per_request(fake: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = requests.utils.get_environ_proxies

    def counting(url: str, no_proxy: Any = None) -> Any:
        calls.append(url)
        return real(url, no_proxy=no_proxy)

    monkeypatch.setattr(requests.utils, "get_environ_proxies", counting)
    monkeypatch.setattr(requests.sessions, "get_environ_proxies", counting)
    transport = make(fake)
    at_build = len(calls)
    assert at_build <= 1
    for _ in range(5):
        chat(transport)
    assert len(calls) == at_build


@responses.activate
def test_proxy_from_environment_at_build_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:3128")
    transport = Transport("openai", API)
    monkeypatch.delenv("HTTPS_PROXY")
    responses.add("POST", API + "/chat/completions", json={})
    transport.post_json("/chat/completions", BODY)
    assert sent_kwargs(responses.calls[0])["proxies"].get("https") == "http://127.0.0.1:3128"


@responses.activate
def test_proxy_password_is_redacted_from_connection_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://user:proxy-pass-42@127.0.0.1:3128")
    transport = Transport("openai", API, retry=RetryPolicy(max_retries=0))
    responses.add("POST", API + "/chat/completions",
                  body=requests.exceptions.ProxyError("Cannot connect to proxy http://user:proxy-pass-42@127.0.0.1"))
    with pytest.raises(errors.APIConnectionError) as info:
        chat(transport)
    assert "proxy-pass-42" not in str(info.value) and "127.0.0.1" in str(info.value)


# --- redirects and credentials -----------------------------------------------------------------------------


def auth_transport(**kw: Any) -> Transport:
    return Transport("anthropic", API, auth_headers={"x-api-key": KEY, "Authorization": f"Bearer {KEY}"},
                     headers={"X-Team": "a"}, retry=RetryPolicy(max_retries=0), **kw)


def has_auth(call: Any) -> bool:
    names = {k.lower() for k in call.request.headers}
    return bool(names & {"authorization", "x-api-key"})


@pytest.mark.parametrize("status", [301, 302, 303])
@responses.activate
def test_auth_is_not_sent_to_another_host_on_redirect(status: int) -> None:
    responses.add("POST", API + "/messages", status=status, headers={"Location": OTHER + "/landing"})
    responses.add("GET", OTHER + "/landing", json={"ok": 1})
    assert auth_transport().post_json("/messages", BODY) == {"ok": 1}
    first, second = responses.calls
    assert has_auth(first)
    assert not has_auth(second)
    assert second.request.headers["X-Team"] == "a"  # ordinary headers still go
    assert second.request.method == "GET" and not second.request.body  # the prompt stays behind


@pytest.mark.parametrize("status", [307, 308])
@responses.activate
def test_a_cross_origin_redirect_that_would_resend_the_body_is_refused(status: int) -> None:
    responses.add("POST", API + "/messages", status=status, headers={"Location": OTHER + "/landing"})
    with pytest.raises(errors.APIStatusError) as info:
        auth_transport().post_json("/messages", BODY)
    assert len(responses.calls) == 1  # neither the prompt nor the key went to the other origin
    assert info.value.status_code == status
    assert "https://api.provider.test:443" in str(info.value) and "https://elsewhere.test:443" in str(info.value)
    assert "request body" in str(info.value)


@pytest.mark.parametrize("status", [307, 308])
@responses.activate
def test_a_cross_origin_redirect_without_a_body_is_followed_without_credentials(status: int) -> None:
    responses.add("GET", API + "/models", status=status, headers={"Location": OTHER + "/models"})
    responses.add("GET", OTHER + "/models", json={"ok": 1})
    assert auth_transport().request("GET", "/models").json() == {"ok": 1}
    assert not has_auth(responses.calls[1])


@responses.activate
def test_auth_is_kept_on_a_same_origin_redirect() -> None:
    responses.add("POST", API + "/messages", status=307, headers={"Location": "/v1/messages-v2"})
    responses.add("POST", API + "/messages-v2", json={"ok": 1})
    assert auth_transport().post_json("/messages", BODY) == {"ok": 1}
    assert has_auth(responses.calls[1])
    assert responses.calls[1].request.body == responses.calls[0].request.body  # 307 keeps method and body


@responses.activate
def test_auth_is_not_sent_on_a_downgrade_to_http() -> None:
    responses.add("GET", API + "/models", status=307, headers={"Location": "http://api.provider.test/v1/models"})
    responses.add("GET", "http://api.provider.test/v1/models", json={"ok": 1})
    auth_transport().request("GET", "/models")
    assert not has_auth(responses.calls[1])


@responses.activate
def test_auth_in_any_spelling_or_source_is_stripped_on_redirect() -> None:
    responses.add("GET", API + "/messages", status=307, headers={"Location": OTHER + "/x"})
    responses.add("GET", OTHER + "/x", json={})
    transport = Transport("p", API, headers={"X-Goog-Api-Key": KEY}, retry=RetryPolicy(max_retries=0))
    transport.request("GET", "/messages", headers={"authorization": "Bearer per-request"})
    names = {k.lower() for k in responses.calls[1].request.headers}
    assert not names & {"authorization", "x-goog-api-key"}
    assert {"authorization", "x-goog-api-key"} <= {k.lower() for k in responses.calls[0].request.headers}


@responses.activate
def test_absolute_url_to_another_host_carries_no_auth() -> None:
    responses.add("GET", OTHER + "/image.png", body=b"png")
    responses.add("GET", API + "/files/1", body=b"file")
    transport = auth_transport()
    assert transport.request("GET", OTHER + "/image.png").content == b"png"
    assert transport.request("GET", API + "/files/1").content == b"file"
    assert not has_auth(responses.calls[0])
    assert has_auth(responses.calls[1])


@responses.activate
def test_redirect_loops_end_in_an_error() -> None:
    responses.add("GET", API + "/loop", status=302, headers={"Location": API + "/loop"})
    with pytest.raises(errors.APIStatusError) as info:
        auth_transport().request("GET", "/loop")
    assert info.value.status_code == 302 and "redirect" in str(info.value)
    assert len(responses.calls) == 6


def test_redirect_to_another_loopback_server_sends_it_neither_prompt_nor_key(fake: FakeProvider) -> None:
    with FakeProvider() as other:
        fake.script(Reply.json(307, "", headers={"Location": other.base_url + "/chat/completions"}))
        with pytest.raises(errors.APIStatusError) as info:  # the prompt would go there: refused
            chat(make(fake))
        assert fake.last_request is not None and fake.last_request.headers["authorization"] == f"Bearer {KEY}"
        assert other.requests == []
        assert other.base_url.rsplit("/", 1)[0] in str(info.value)  # it names the origin it would not go to


def test_redirect_on_the_same_loopback_server_keeps_auth(fake: FakeProvider) -> None:
    fake.script(Reply.json(307, "", headers={"Location": "/v1/chat/completions"}))
    assert chat(make(fake))["object"] == "chat.completion"
    assert [r.headers.get("authorization") for r in fake.requests] == [f"Bearer {KEY}"] * 2


# --- secrets --------------------------------------------------------------------------------------------------


def test_the_key_never_leaks(fake: FakeProvider, caplog: pytest.LogCaptureFixture) -> None:
    echo = {"error": {"message": f"Incorrect API key provided: {KEY}.", "type": "invalid_request_error",
                      "code": "invalid_api_key"}}
    fake.script(Reply.json(401, echo))
    transport = make(fake)
    with caplog.at_level(logging.DEBUG), pytest.raises(errors.AuthenticationError) as info:
        chat(transport)
    err = info.value
    texts = [str(err), repr(err), "".join(traceback.format_exception(err)), repr(transport), str(transport),
             caplog.text, repr(err.body), repr(dict(err.headers))]
    for text in texts:
        assert KEY not in text
    assert "Incorrect API key provided: ***" in err.message  # the rest of the provider's message stays


def test_the_key_never_leaks_from_an_undecodable_body(fake: FakeProvider) -> None:
    fake.script(Reply.json(200, f"<html>oops {KEY}</html>"))
    with pytest.raises(errors.ResponseDecodeError) as info:
        chat(make(fake))
    assert KEY not in str(info.value) and "oops" in str(info.value)


def test_sensitive_headers_passed_as_plain_headers_are_secrets(fake: FakeProvider) -> None:
    fake.script(Reply.json(400, {"error": {"message": "bad key sk-other-777"}}))
    transport = Transport("p", fake.base_url, headers={"Authorization": "Bearer sk-other-777"},
                          retry=RetryPolicy(max_retries=0))
    with pytest.raises(errors.BadRequestError) as info:
        chat(transport)
    assert "sk-other-777" not in str(info.value)
    assert fake.last_request is not None and fake.last_request.headers["authorization"] == "Bearer sk-other-777"


# --- fork and pickle -----------------------------------------------------------------------------------------


def _child_request(transport: Transport) -> None:
    """In a forked child: one request, reported through the exit status only."""
    code = 1
    try:
        code = 0 if chat(transport)["object"] == "chat.completion" else 2
    except BaseException:
        code = 3
    finally:
        os._exit(code)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.parametrize("custom_session", [False, True])
def test_fork_gives_the_child_its_own_connections(fake: FakeProvider, custom_session: bool) -> None:
    transport = make(fake, session=requests.Session() if custom_session else None)
    chat(transport)
    assert fake.connection_count == 1
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        _child_request(transport)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    # The child opened a connection of its own instead of writing into the parent's socket ...
    assert fake.connection_count == 2
    # ... and the parent's pooled connection still works.
    assert chat(transport)["object"] == "chat.completion"
    assert fake.connection_count == 2 and fake.request_count == 3


def test_transport_pickles_without_its_session(fake: FakeProvider) -> None:
    transport = make(fake, pool_size=3)
    chat(transport)
    blob = pickle.dumps(transport)
    assert b"requests.sessions" not in blob and b"urllib3" not in blob
    clone = pickle.loads(blob)
    assert (clone.provider, clone.base_url, clone.timeout, clone.retry, clone.pool_size) == (
        transport.provider, transport.base_url, transport.timeout, transport.retry, 3)
    assert chat(clone)["object"] == "chat.completion"
    assert fake.connection_count == 2  # a connection of its own
    assert fake.last_request is not None and fake.last_request.headers["authorization"] == f"Bearer {KEY}"


def test_close_then_reuse(fake: FakeProvider) -> None:
    transport = make(fake)
    chat(transport)
    transport.close()
    assert chat(transport)["object"] == "chat.completion"


# --- streams -------------------------------------------------------------------------------------------------


def test_stream_yields_bytes_chunks(fake: FakeProvider) -> None:
    fake.script(Reply.text("hello world"))
    stream = make(fake).stream("POST", "/chat/completions", json={**BODY, "stream": True})
    assert isinstance(stream, StreamResponse)
    assert stream.status == 200 and stream.request_id == "req_1" and stream.provider == "openai"
    assert stream.headers["content-type"].startswith("text/event-stream")
    chunks = list(stream.chunks())
    assert chunks and all(isinstance(c, bytes) for c in chunks)
    events = list(iter_sse(chunks))
    assert events[-1].data == "[DONE]"
    assert "hello" in "".join(e.data for e in events)


def test_stream_cut_mid_body_is_a_retryable_stream_error(fake: FakeProvider) -> None:
    fake.inject(Fault.stream_cut(after_events=2))
    stream = make(fake).stream("POST", "/chat/completions", json={**BODY, "stream": True})
    got: list[bytes] = []
    with pytest.raises(errors.StreamError) as info:
        for chunk in stream.chunks():
            got.append(chunk)
    assert got  # the events before the cut arrived
    assert info.value.is_retryable() and info.value.provider == "openai"


def test_truncated_fixed_length_stream_is_a_stream_error(fake: FakeProvider) -> None:
    fake.inject(Fault.truncate())
    stream = make(fake).stream("POST", "/chat/completions", json=BODY)
    with pytest.raises(errors.StreamError):
        list(stream.chunks())


def test_error_status_before_streaming_raises_the_status_error(fake: FakeProvider) -> None:
    fake.inject(Fault.status(429, retry_after=30))
    with pytest.raises(errors.RateLimitError) as info:
        make(fake, retries=0).stream("POST", "/chat/completions", json={**BODY, "stream": True})
    assert info.value.retry_after == 30.0 and info.value.body is not None


def test_stream_retries_before_the_body(fake: FakeProvider) -> None:
    fake.inject(Fault.status(503))
    with make(fake, retries=1).stream("POST", "/chat/completions", json={**BODY, "stream": True}) as stream:
        assert b"[DONE]" in b"".join(stream.chunks())
    assert fake.request_count == 2


def test_closing_a_stream_early_releases_the_connection(fake: FakeProvider) -> None:
    transport = make(fake, pool_size=1)
    stream = transport.stream("POST", "/chat/completions", json={**BODY, "stream": True})
    next(iter(stream.chunks()))
    stream.close()
    assert run_bounded(lambda: chat(transport)["object"]) == "chat.completion"


def test_leaving_a_stream_loop_releases_the_connection(fake: FakeProvider) -> None:
    transport = make(fake, pool_size=1)
    with transport.stream("POST", "/chat/completions", json={**BODY, "stream": True}) as stream:
        for _chunk in stream.chunks():
            break
    assert run_bounded(lambda: chat(transport)["object"]) == "chat.completion"


def test_a_dropped_unclosed_stream_releases_the_connection(fake: FakeProvider) -> None:
    transport = make(fake, pool_size=1)
    stream = transport.stream("POST", "/chat/completions", json={**BODY, "stream": True})
    del stream
    gc.collect()
    assert run_bounded(lambda: chat(transport)["object"]) == "chat.completion"


@responses.activate
def test_compressed_stream_is_decoded() -> None:
    body = b"data: {\"a\": 1}\n\ndata: [DONE]\n\n"
    responses.add("POST", API + "/chat/completions", body=gzip.compress(body),
                  headers={"Content-Encoding": "gzip"}, content_type="text/event-stream")
    with Transport("openai", API).stream("POST", "/chat/completions", json=BODY) as stream:
        assert b"".join(stream.chunks()) == body


def test_stream_read_timeout_before_headers(fake: FakeProvider) -> None:
    fake.inject(Fault.slow(5))
    with pytest.raises(errors.APITimeoutError):
        make(fake, retries=0, read=0.2).stream("POST", "/chat/completions", json={**BODY, "stream": True})


# --- JSON calls straight to urllib3 -------------------------------------------------------------


class _RecordingSocket(socket.socket):
    writes: list[bytes] = []

    def sendall(self, data: Any, *args: Any) -> None:
        type(self).writes.append(bytes(data))
        super().sendall(data, *args)


def test_a_json_request_goes_out_in_one_write_on_a_kept_connection(fake: FakeProvider,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_RecordingSocket, "writes", [])
    monkeypatch.setattr(socket, "socket", _RecordingSocket)  # sockets created from here on record
    transport = make(fake, pool_size=1)
    chat(transport)
    chat(transport)  # the same (kept) connection
    posts = [w for w in _RecordingSocket.writes if w.startswith(b"POST /v1/chat/completions")]
    assert len(posts) == 2
    head, _, body = posts[1].partition(b"\r\n\r\n")
    assert body and body == fake.requests[1].body, "head and body in one write"
    assert f"content-length: {len(body)}".encode() in head.lower()
    assert fake.connection_count == 1


def test_json_requests_carry_the_same_headers_as_requests_would(fake: FakeProvider) -> None:
    transport = make(fake, headers={"X-Team": "a"})
    chat(transport)
    sent = fake.requests[0].headers
    assert sent["authorization"] == f"Bearer {KEY}"
    assert sent["content-type"] == "application/json"
    assert sent["user-agent"].startswith("rig-sync/")
    assert sent["x-team"] == "a"
    assert int(sent["content-length"]) == len(fake.requests[0].body)


def test_paths_are_quoted_like_requests_quotes_them(fake: FakeProvider) -> None:
    transport = make(fake)
    transport.post_json("/chat/completions?note=a b", BODY)
    assert fake.requests[0].path == "/v1/chat/completions"
    assert fake.requests[0].query == {"note": "a b"}


def test_a_closed_transport_reconnects_on_the_next_call(fake: FakeProvider) -> None:
    transport = make(fake)
    chat(transport)
    transport.close()
    assert chat(transport)["choices"]
    assert len(fake.requests) == 2


def test_a_mock_of_requests_sees_every_call(fake: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    # requests-mock swaps Session.get_adapter; responses swaps HTTPAdapter.send (the rest of this
    # file). Either way the transport must go through requests, never around the mock.
    seen: list[str] = []
    real = requests.Session.get_adapter

    def get_adapter(self: requests.Session, url: str) -> Any:
        seen.append(url)
        return real(self, url)

    monkeypatch.setattr(requests.Session, "get_adapter", get_adapter)
    chat(make(fake))
    assert seen == [fake.base_url + "/chat/completions"]


def test_a_proxy_from_the_environment_still_carries_json_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeProvider() as proxy, FakeProvider() as origin:
        monkeypatch.setenv("HTTP_PROXY", proxy.base_url.rsplit("/v1", 1)[0])
        transport = make(origin)
        assert chat(transport)["choices"]
    assert [r.path for r in proxy.requests] == ["/v1/chat/completions"]  # asked in absolute form
    assert origin.requests == []


def test_answers_come_compressed_where_the_provider_offers_it() -> None:
    seen: list[str] = []

    def hook(event: Any) -> None:
        if isinstance(event, rig_sync.observe.RequestEvent):
            seen.append(event.headers.get("content-encoding", ""))

    with FakeProvider(compress=True) as fake:
        rig_sync.observe.add_hook(hook)
        try:
            assert chat(make(fake))["choices"][0]["message"]["content"] == "echo: hi"
        finally:
            rig_sync.observe.remove_hook(hook)
        assert "gzip" in fake.requests[0].headers["accept-encoding"]
    assert seen == ["gzip"]  # it came compressed, and was decoded


def test_a_caller_can_ask_for_uncompressed_answers(fake: FakeProvider) -> None:
    fake.compress = True
    chat(make(fake, headers={"Accept-Encoding": "identity"}))
    assert fake.requests[0].headers["accept-encoding"] == "identity"


def test_a_same_origin_redirect_keeps_its_connection(fake: FakeProvider) -> None:
    fake.script(Reply.json(307, {"moved": True}, headers={"Location": "/v1/chat/completions"}))
    transport = make(fake, pool_size=1)
    assert chat(transport)["object"] == "chat.completion"
    assert chat(transport)["object"] == "chat.completion"
    assert len(fake.requests) == 3 and fake.connection_count == 1  # the redirect's body was read, not dropped


def test_a_404_names_the_missing_path_prefix_the_transport_was_told_of(mocked: responses.RequestsMock) -> None:
    mocked.post("http://127.0.0.1:9/chat?api-version=1", status=404, json={"error": {"message": "nope"}})
    mocked.post("http://127.0.0.1:9/chat?api-version=1", status=404, json={"error": {"message": "nope"}})
    told = Transport("acme", "http://127.0.0.1:9?api-version=1", expected_prefix="/v2/", retry=RetryPolicy(0))
    with pytest.raises(errors.NotFoundError) as info:
        told.post_json("/chat", {})
    assert str(info.value).endswith(
        "nope (the base URL http://127.0.0.1:9?api-version=1 probably needs /v2: "
        "try base_url='http://127.0.0.1:9/v2?api-version=1')")
    with pytest.raises(errors.NotFoundError) as info:  # not told: nothing to suggest
        Transport("acme", "http://127.0.0.1:9?api-version=1", retry=RetryPolicy(0)).post_json("/chat", {})
    assert str(info.value).endswith("nope")


# --- the wait for a pooled connection ------------------------------------------------------------------------


def timeout_of(transport: Transport) -> errors.APITimeoutError:
    try:
        chat(transport)
    except errors.APITimeoutError as exc:
        return exc
    raise AssertionError("the call did not time out")


def test_a_call_waits_for_a_pooled_connection_at_most_the_pool_timeout(fake: FakeProvider) -> None:
    transport = Transport("openai", fake.base_url, auth_headers={"Authorization": f"Bearer {KEY}"},
                          timeout=Timeout(connect=1, read=30, pool=0.3), pool_size=2)
    streams = [transport.stream("POST", "/chat/completions", json={**BODY, "stream": True}) for _ in range(2)]
    started = time.monotonic()
    error = run_bounded(lambda: timeout_of(transport), 5)
    assert 0.3 <= time.monotonic() - started < 3
    message = str(error)
    assert "all 2 pooled connections" in message and "pool_size" in message and "close" in message, message
    for stream in streams:
        stream.close()
    assert chat(transport)["choices"]  # a connection came back: calls go on


def test_the_wait_for_a_pooled_connection_defaults_to_the_read_timeout(fake: FakeProvider) -> None:
    transport = make(fake, pool_size=1, read=0.5)
    with transport.stream("POST", "/chat/completions", json={**BODY, "stream": True}):
        started = time.monotonic()
        error = run_bounded(lambda: timeout_of(transport), 5)
    assert 0.5 <= time.monotonic() - started < 3.5
    assert "within 0.5s" in str(error) and "all 1 pooled connections" in str(error)
