"""rig_sync.errors: the tree, and how the Transport maps real provider error answers onto it."""

from __future__ import annotations

import copy
import email.utils
import pickle
import time
from typing import Any

import pytest
import responses
from conftest import load_bytes, load_fixture, serve_fixture

from rig_sync import errors
from rig_sync.errors import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    ContextWindowExceededError,
    InternalServerError,
    NotFoundError,
    OverloadedError,
    PermissionDeniedError,
    RateLimitError,
    RequestTimeoutStatusError,
    ResponseDecodeError,
    RigError,
    StreamError,
    UnprocessableEntityError,
)
from rig_sync.http import RetryPolicy, Transport

BASE = "https://api.provider.test/v1"
URL = BASE + "/chat/completions"
BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def transport(provider: str = "openai") -> Transport:
    """A transport with the provider's own conventions (its error shapes), as its client builds one."""
    from rig_sync.client.builder import load_provider

    return Transport(provider, BASE, auth_headers={"Authorization": "Bearer sk-test-key"},
                     retry=RetryPolicy(max_retries=0), conventions=load_provider(provider).conventions)


def raised(provider: str = "openai") -> APIStatusError:
    with pytest.raises(APIStatusError) as info:
        transport(provider).post_json("/chat/completions", BODY)
    return info.value


# --- the tree ------------------------------------------------------------------------------------


def test_every_public_error_is_a_rig_error() -> None:
    classes = [getattr(errors, name) for name in errors.__all__ if isinstance(getattr(errors, name), type)]
    assert len(classes) > 20
    assert all(issubclass(cls, RigError) for cls in classes)


def test_hierarchy() -> None:
    assert issubclass(APITimeoutError, APIConnectionError)
    assert issubclass(ContextWindowExceededError, BadRequestError)
    assert issubclass(OverloadedError, InternalServerError)
    assert issubclass(RateLimitError, APIStatusError) and issubclass(APIStatusError, APIError)
    assert issubclass(errors.InvalidRequestError, ValueError)
    assert issubclass(errors.UnknownProvider, errors.ClientBuildError)
    assert issubclass(errors.InvalidBaseURLError, errors.ClientBuildError)


@pytest.mark.parametrize(
    ("status", "cls", "retryable"),
    [
        (400, BadRequestError, False),
        (401, AuthenticationError, False),
        (403, PermissionDeniedError, False),
        (404, NotFoundError, False),
        (408, RequestTimeoutStatusError, True),
        (409, ConflictError, True),
        (418, APIStatusError, False),
        (422, UnprocessableEntityError, False),
        (429, RateLimitError, True),
        (500, InternalServerError, True),
        (502, InternalServerError, True),
        (503, InternalServerError, True),
        (529, OverloadedError, True),
    ],
)
def test_status_error_class_and_retryability(status: int, cls: type[APIStatusError], retryable: bool) -> None:
    err = errors.status_error(status, "boom", provider="openai")
    assert type(err) is cls
    assert err.status_code == status
    assert err.is_retryable() is retryable


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ("This model's maximum context length is 4097 tokens.", None),
        ("prompt is too long: 210000 tokens > 200000 maximum", "invalid_request_error"),
        ("whatever", "context_length_exceeded"),
    ],
)
def test_context_window_is_recognised_in_a_400_only(message: str, code: str | None) -> None:
    assert type(errors.status_error(400, message, provider="x", code=code)) is ContextWindowExceededError
    assert type(errors.status_error(429, message, provider="x", code=code)) is RateLimitError


def test_overloaded_code_maps_to_overloaded_error() -> None:
    err = errors.status_error(500, "Overloaded", provider="anthropic", code="overloaded_error")
    assert type(err) is OverloadedError and err.is_retryable()


def test_x_should_retry_overrides_the_status_rule_whatever_its_case() -> None:
    assert not errors.status_error(429, "m", provider="p", headers={"X-Should-Retry": "false"}).is_retryable()
    assert errors.status_error(400, "m", provider="p", headers={"x-should-retry": "true"}).is_retryable()


def test_headers_are_case_insensitive_and_keep_their_spelling() -> None:
    err = errors.status_error(429, "m", provider="p", headers={"Retry-After": "3", "X-Request-Id": "r"})
    assert err.headers["retry-after"] == "3" and err.headers.get("RETRY-AFTER") == "3"
    assert set(err.headers) == {"Retry-After", "X-Request-Id"}
    assert err.headers == {"Retry-After": "3", "X-Request-Id": "r"}
    assert err.headers.get(1) is None  # type: ignore[call-overload]


def test_str_of_a_status_error() -> None:
    err = errors.status_error(429, "slow down", provider="openai", request_id="req_1")
    assert str(err) == "openai HTTP 429, request id req_1: slow down"
    assert str(errors.status_error(500, "x", provider=None)) == "HTTP 500: x"
    assert str(APIConnectionError("refused", provider="groq")) == "[groq] refused"


def test_retry_after_and_defaults() -> None:
    assert RigError().retry_after is None and not RigError().is_retryable()
    assert errors.status_error(429, "m", provider="p", retry_after=2.5).retry_after == 2.5
    assert APITimeoutError("t").is_retryable()
    assert StreamError("cut", retryable=True).is_retryable()
    assert not StreamError("error event").is_retryable()


@pytest.mark.parametrize(
    "err",
    [
        errors.status_error(429, "slow", provider="openai", request_id="r1", headers={"Retry-After": "2"},
                            body={"error": {"message": "slow"}}, retry_after=2.0, code="rate_limit"),
        errors.status_error(400, "maximum context length", provider="openai"),
        APITimeoutError("timed out", provider="openai"),
        StreamError("cut", provider="anthropic", body={"type": "error"}, retryable=True),
        ResponseDecodeError("bad", provider="gemini", field="candidates", body=b"{"),
        errors.UnknownProvider("nope"),
        errors.InvalidRequestError("empty prompt"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_errors_pickle_and_copy_intact(err: RigError) -> None:
    for clone in (pickle.loads(pickle.dumps(err)), copy.copy(err)):
        assert type(clone) is type(err)
        assert str(clone) == str(err)
        assert clone.is_retryable() == err.is_retryable()
        assert clone.retry_after == err.retry_after
        assert vars(clone).keys() == vars(err).keys()
    if isinstance(err, APIStatusError):
        clone = pickle.loads(pickle.dumps(err))
        assert isinstance(clone, APIStatusError)
        assert (clone.status_code, clone.request_id, clone.body, clone.code) == (
            err.status_code, err.request_id, err.body, err.code)
        assert clone.headers == err.headers


def test_redact() -> None:
    assert errors.redact("key sk-abc123 and sk-abc123", ["sk-abc123"]) == "key *** and ***"
    assert errors.redact("a b c", ["", "b"]) == "a b c"  # too short to mask without mangling text


# --- real provider error bodies, through the Transport ------------------------------------------------

# (fixture, class, provider message prefix, provider code, request id from the body)
FIXTURE_CASES: list[tuple[str, type[APIStatusError], str, str | None, str | None]] = [
    ("openai/error.400_context_length_exceeded.json", ContextWindowExceededError,
     "This model's maximum context length is 4097 tokens.", "context_length_exceeded", None),
    ("openai/error.400_embeddings_bad_dimensions.json", BadRequestError,
     "-42 is less than the minimum of 1", "invalid_request_error", None),
    ("openai/error.400_invalid_function_schema.json", BadRequestError,
     "Invalid schema for function", "invalid_function_parameters", None),
    ("openai/error.400_transcription_bad_language.json", BadRequestError,
     "Invalid language 'this should cause an error'", "invalid_language_format", None),
    ("openai/error.401_images_invalid_api_key.json", AuthenticationError,
     "Incorrect API key provided: fake_key.", "invalid_api_key", None),
    ("openai/error.401_invalid_api_key.json", AuthenticationError,
     "Incorrect API key provided: not-a-re***", "invalid_api_key", None),
    ("openai/error.404_not_found.json", NotFoundError,
     "Completion comp_nonexistent_12345 not found", "not_found", None),
    ("openai/error.429_rate_limit_exceeded.json", RateLimitError,
     "Rate limit reached for 10KTPM-200RPM", "rate_limit_exceeded", None),
    ("anthropic/error.400_invalid_request_error.json", BadRequestError,
     "messages.0.content.1: unexpected `tool_use_id`", "invalid_request_error", "req_011CYHyk9NPsBYeGbC9LuDNK"),
    ("anthropic/error.401_authentication_error.json", AuthenticationError,
     "invalid x-api-key", "authentication_error", None),
    ("anthropic/error.429_rate_limit_error.json", RateLimitError,
     "This request would exceed your organization's rate limit", "rate_limit_error", "req_011CYK5mje9HkutJtmfPzzNC"),
    ("anthropic/error.429_rate_limit_error.account.json", RateLimitError,
     "This request would exceed your account's rate limit.", "rate_limit_error", "req_011Ca6D6rf4MCMtM7gur72MZ"),
    ("gemini/error.400_api_key_invalid.json", AuthenticationError,
     "API key not valid. Please pass a valid API key.", "INVALID_ARGUMENT", None),
    ("gemini/error.403_service_disabled.json", PermissionDeniedError,
     "Generative Language API has not been used", "PERMISSION_DENIED", None),
    ("gemini/error.404_model_not_found.json", NotFoundError,
     "models/gemini-5.0-flash is not found", "NOT_FOUND", None),
    ("gemini/error.429_resource_exhausted.json", RateLimitError,
     "Quota exceeded for quota metric", "RESOURCE_EXHAUSTED", None),
    ("cohere/error.401_invalid_api_token.json", AuthenticationError, "invalid api token", None, None),
    ("mistral/error.401_unauthorized.json", AuthenticationError, "Unauthorized", None,
     "933f233947ff6d346065bb297e4a4d56"),
]


@pytest.mark.parametrize(("name", "cls", "message", "code", "request_id"), FIXTURE_CASES,
                         ids=[c[0] for c in FIXTURE_CASES])
def test_provider_error_fixture_maps_to_its_class(
    mocked: responses.RequestsMock, name: str, cls: type[APIStatusError], message: str, code: str | None,
    request_id: str | None,
) -> None:
    provider = name.split("/")[0]
    serve_fixture(mocked, URL, name)
    err = raised(provider)
    assert type(err) is cls
    assert err.status_code == int(name.split(".")[1].split("_")[0])
    assert err.provider == provider
    assert err.message.startswith(message)
    assert err.code == code
    assert err.request_id == request_id
    assert err.body == load_fixture(name)  # parsed, whole
    assert err.headers["content-type"].startswith("application/json")
    assert str(err).startswith(f"{provider} HTTP {err.status_code}")
    assert len(mocked.calls) == 1


def test_recorded_x_should_retry_headers_decide_retryability(mocked: responses.RequestsMock) -> None:
    serve_fixture(mocked, URL, "anthropic/error.400_invalid_request_error.json")  # recorded x-should-retry: false
    assert not raised("anthropic").is_retryable()
    serve_fixture(mocked, URL, "anthropic/error.429_rate_limit_error.json")  # recorded x-should-retry: true
    assert raised("anthropic").is_retryable()


def test_ollama_string_error(mocked: responses.RequestsMock) -> None:
    mocked.add("POST", URL, body=load_bytes("ollama/error.body.json"), status=500, content_type="application/json")
    err = raised("ollama")
    assert type(err) is InternalServerError
    assert err.message == "the model failed to generate a response"
    assert err.body == {"error": "the model failed to generate a response"}


@pytest.mark.parametrize("status", [500, 529])
def test_anthropic_overloaded_body(mocked: responses.RequestsMock, status: int) -> None:
    body = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    mocked.add("POST", URL, json=body, status=status)
    err = raised("anthropic")
    assert type(err) is OverloadedError and err.message == "Overloaded" and err.is_retryable()


@pytest.mark.parametrize(
    ("status", "cls"),
    [(408, RequestTimeoutStatusError), (409, ConflictError), (422, UnprocessableEntityError),
     (500, InternalServerError), (503, InternalServerError), (529, OverloadedError)],
)
def test_other_statuses(mocked: responses.RequestsMock, status: int, cls: type[APIStatusError]) -> None:
    mocked.add("POST", URL, json={"error": {"message": f"status {status}"}}, status=status)
    err = raised()
    assert type(err) is cls and err.message == f"status {status}"


def test_request_id_headers(mocked: responses.RequestsMock) -> None:
    mocked.add("POST", URL, json={"error": {"message": "x"}}, status=400, headers={"x-request-id": "req_h1"})
    assert raised().request_id == "req_h1"
    mocked.add("POST", URL, json={"error": {"message": "x"}}, status=400, headers={"request-id": "req_h2"})
    assert raised().request_id == "req_h2"
    # A header wins over a request_id in the body.
    mocked.add("POST", URL, json={"message": "x", "request_id": "body"}, status=401, headers={"Request-Id": "hdr"})
    assert raised().request_id == "hdr"


def test_html_and_plain_bodies_are_kept_as_text(mocked: responses.RequestsMock) -> None:
    html = "<html><body><h1>502 Bad Gateway</h1></body></html>"
    mocked.add("POST", URL, body=html, status=502, content_type="text/html")
    err = raised()
    assert type(err) is InternalServerError and err.body == html and "502 Bad Gateway" in err.message
    mocked.add("POST", URL, body="upstream connect error", status=503, content_type="text/plain")
    err = raised()
    assert err.body == "upstream connect error" and err.message == "upstream connect error"
    mocked.add("POST", URL, body="", status=503)
    err = raised()
    assert err.body is None and err.message == "HTTP 503"


def test_rate_limit_retry_after_from_headers(mocked: responses.RequestsMock) -> None:
    cases: list[tuple[dict[str, str], Any]] = [
        ({"retry-after-ms": "1500"}, 1.5),
        ({"Retry-After": "7"}, 7.0),
        ({"retry-after-ms": "250", "Retry-After": "9"}, 0.25),  # the finer header wins
        ({"Retry-After": "soon"}, None),
        ({}, None),
    ]
    for headers, expected in cases:
        mocked.add("POST", URL, json={"error": {"message": "slow"}}, status=429, headers=headers)
        err = raised()
        assert type(err) is RateLimitError and err.retry_after == expected, headers


def test_rate_limit_retry_after_http_date(mocked: responses.RequestsMock) -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    mocked.add("POST", URL, json={"error": {"message": "slow"}}, status=429, headers={"Retry-After": when})
    retry_after = raised().retry_after
    assert retry_after is not None and 25 <= retry_after <= 31


def test_invalid_json_in_a_200_is_a_decode_error_naming_the_provider(mocked: responses.RequestsMock) -> None:
    mocked.add("POST", URL, body=b'{"id": "chatcmpl-1", "choices": [', status=200, content_type="application/json")
    with pytest.raises(ResponseDecodeError) as info:
        transport("mistral").post_json("/chat/completions", BODY)
    err = info.value
    assert err.provider == "mistral" and "mistral" in str(err)
    assert "not valid JSON" in str(err) and '{"id": "chatcmpl-1"' in str(err)
    assert not err.is_retryable()
