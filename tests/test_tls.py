"""TLS and credential hygiene for every provider: verification is on unless turned off explicitly
(and turning it off is logged), credentials never follow a redirect to another origin, and a base
URL with `user:pass@` in it is refused without echoing the password.

The requests go to `responses`; `req_kwargs` is what `requests` handed its adapter, so `verify`
there is the setting the TLS handshake would use.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest
import requests
import responses
from conftest import credentials_sent

from rig_sync.client import ProviderValue
from rig_sync.client.builder import DynClientBuilder, builtin_provider_names, load_provider
from rig_sync.errors import APIStatusError, InvalidBaseURLError
from tests.test_registry_walk import HOST, canned_for, claims, run, value_for

PROVIDERS = builtin_provider_names()
OTHER = "http://127.0.0.2:9"  # another origin: a different loopback address
SENSITIVE = {"authorization", "proxy-authorization", "x-api-key", "api-key", "x-goog-api-key", "cookie"}


def key_for(name: str) -> str:
    return f"sk-SECRET-{name}-1234567890"


def build(name: str, *, token: bool = False, **kwargs: Any) -> Any:
    value = value_for(name)
    options = {**dict(value.options), **kwargs}
    if token:  # Azure's Entra ID token travels as Authorization: Bearer
        return load_provider(name)(token=key_for(name), base_url=value.base_url, **options)
    return load_provider(name)(key_for(name), base_url=value.base_url, **options)


def first_capability(name: str) -> str:
    return next(c for c in ("completion", "embeddings") if claims(name, c))


FACTORIES = {"completion": "completion_model", "embeddings": "embedding_model"}


def send(name: str, made: Any) -> None:
    """One request of the provider's first capability (its answer must be registered)."""
    capability = first_capability(name)
    entry = canned_for(name, capability)
    run(capability, getattr(made, FACTORIES[capability])(entry.model), entry)


def send_one(name: str, made: Any, mocked: responses.RequestsMock) -> None:
    """One request of the provider's first capability, answered with its canned body."""
    entry = canned_for(name, first_capability(name))
    mocked.add(entry.method, re.compile(re.escape(HOST) + r".*" + entry.url), body=entry.body(), status=200,
               content_type=entry.kind())
    send(name, made)


def no_ca_bundle_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    # As in `requests`, a CA bundle named in the environment wins over a session's `verify`.
    for var in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(var, raising=False)


def auth_header_names(headers: Any, secret: str) -> set[str]:
    return {k.lower() for k, v in headers.items() if secret in v}


# --- verification ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", PROVIDERS)
def test_verification_is_on_by_default(name: str, monkeypatch: pytest.MonkeyPatch,
                                       caplog: pytest.LogCaptureFixture) -> None:
    no_ca_bundle_variables(monkeypatch)
    caplog.set_level(logging.WARNING, logger="rig_sync")
    with responses.RequestsMock() as mocked:
        send_one(name, build(name), mocked)
        verify = mocked.calls[0].request.req_kwargs["verify"]
    assert verify is True
    assert not [r for r in caplog.records if "TLS" in r.getMessage()]


@pytest.mark.parametrize("name", ["openai", "anthropic", "gemini", "azure"])
def test_a_ca_bundle_from_the_environment_is_used(name: str, monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Any) -> None:
    bundle = tmp_path / "corp-ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    with responses.RequestsMock() as mocked:
        send_one(name, build(name), mocked)
        assert mocked.calls[0].request.req_kwargs["verify"] == str(bundle)


@pytest.mark.parametrize("blank", ["", "   "])
def test_blank_ca_bundle_variables_do_not_turn_verification_off(blank: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "")
    monkeypatch.setenv("CURL_CA_BUNDLE", blank)
    with responses.RequestsMock() as mocked:
        send_one("openai", build("openai"), mocked)
        verify = mocked.calls[0].request.req_kwargs["verify"]
    # True, or (for a blank CURL_CA_BUNDLE) that blank path, which fails the handshake closed.
    assert verify is True or verify == blank


@pytest.mark.parametrize("name", PROVIDERS)
@pytest.mark.parametrize("how", ["argument", "builder"])
def test_turning_verification_off_is_explicit_and_logged(name: str, how: str,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="rig_sync")
    if how == "argument":
        made = build(name, verify=False)
    else:
        value = value_for(name)
        builder = load_provider(name).builder(key_for(name)).base_url(value.base_url or HOST).verify(False)
        for option, setting in value.options.items():
            builder.option(option, setting)
        made = builder.build()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "verification is OFF" in r.getMessage()]
    assert len(warnings) == 1 and name in warnings[0].getMessage()
    assert key_for(name) not in caplog.text
    with responses.RequestsMock() as mocked:
        send_one(name, made, mocked)
        assert mocked.calls[0].request.req_kwargs["verify"] is False


@pytest.mark.parametrize("falsy", [0, None, "", [], 0.0])
def test_falsy_look_alikes_cannot_turn_verification_off(falsy: Any) -> None:
    with pytest.raises((TypeError, ValueError), match="verify"):
        build("openai", verify=falsy)
    with pytest.raises((TypeError, ValueError), match="verify"):
        load_provider("openai").builder("k").verify(falsy)


def test_a_ca_bundle_path_is_passed_through(tmp_path: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="rig_sync")
    bundle = str(tmp_path / "ca.pem")
    with responses.RequestsMock() as mocked:
        send_one("openai", build("openai", verify=bundle), mocked)
        assert mocked.calls[0].request.req_kwargs["verify"] == bundle
    assert not caplog.records


def test_a_custom_sessions_ca_bundle_is_kept(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """`custom_client(session)` keeps the session's certificate settings (verification stays on)."""
    no_ca_bundle_variables(monkeypatch)
    session = requests.Session()
    session.verify = str(tmp_path / "corp.pem")
    made = load_provider("openai").builder(key_for("openai")).base_url(HOST).custom_client(session).build()
    with responses.RequestsMock() as mocked:
        send_one("openai", made, mocked)
        assert mocked.calls[0].request.req_kwargs["verify"] == session.verify


def test_a_custom_session_cannot_silently_turn_verification_off(caplog: pytest.LogCaptureFixture,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    no_ca_bundle_variables(monkeypatch)
    caplog.set_level(logging.WARNING, logger="rig_sync")
    session = requests.Session()
    session.verify = False
    made = load_provider("openai").builder(key_for("openai")).base_url(HOST).custom_client(session).build()
    with responses.RequestsMock() as mocked:
        send_one("openai", made, mocked)
        verify = mocked.calls[0].request.req_kwargs["verify"]
    assert verify is False and "verification is OFF" in caplog.text  # the session's choice, but logged


# --- redirects ------------------------------------------------------------------------------------

CREDENTIALS = [(name, False) for name in PROVIDERS] + [("azure", True)]


@pytest.mark.parametrize(("name", "token"), CREDENTIALS,
                         ids=[f"{n}-token" if t else n for n, t in CREDENTIALS])
@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_credentials_never_follow_a_redirect_to_another_origin(name: str, token: bool, status: int) -> None:
    secret = key_for(name)
    made = build(name, token=token)
    capability = first_capability(name)
    entry = canned_for(name, capability)
    with responses.RequestsMock() as mocked:
        def bounce(request: requests.PreparedRequest) -> tuple[int, dict[str, str], bytes]:
            assert request.url is not None
            return status, {"Location": OTHER + request.url[len(HOST):]}, b""

        mocked.add_callback(entry.method, re.compile(re.escape(HOST) + r".*" + entry.url), callback=bounce)
        if status in (307, 308) and entry.method != "GET":
            # It would resend the body (the prompt) to another origin: refused, nothing goes there.
            with pytest.raises(APIStatusError, match="another origin"):
                send(name, made)
            assert len(mocked.calls) == 1
            return
        moved_method = "GET" if status in (301, 302, 303) else entry.method  # as browsers and requests do
        mocked.add(moved_method, re.compile(re.escape(OTHER) + r".*" + entry.url), body=entry.body(),
                   status=200, content_type=entry.kind())
        send(name, made)
        assert len(mocked.calls) == 2
        first, moved = mocked.calls[0].request, mocked.calls[1].request
    sent_with = auth_header_names(first.headers, secret)
    assert sent_with, f"{name}: the key was not sent to its own origin"
    assert (moved.url or "").startswith(OTHER)
    assert not auth_header_names(moved.headers, secret), f"{name}: the key followed the redirect"
    assert not {k.lower() for k in moved.headers} & SENSITIVE
    assert secret not in (moved.url or "")


def test_every_auth_header_convention_is_covered() -> None:
    """The redirect walk above saw each provider's own header: the list below is what it proved."""
    seen: set[str] = set()
    for name, token in CREDENTIALS:
        auth = credentials_sent(build(name, token=token))
        seen |= {k.lower() for k in auth}
    assert {"authorization", "x-api-key", "api-key", "x-goog-api-key"} <= seen
    assert seen <= SENSITIVE


@pytest.mark.parametrize("name", PROVIDERS)
def test_credentials_are_kept_on_a_same_origin_redirect(name: str) -> None:
    secret = key_for(name)
    made = build(name)
    entry = canned_for(name, first_capability(name))
    with responses.RequestsMock() as mocked:
        mocked.add(entry.method, re.compile(re.escape(HOST) + r"/moved-away$"), status=307,
                   headers={"Location": "/moved-here"})
        mocked.add(entry.method, re.compile(re.escape(HOST) + r"/moved-here$"), body=entry.body(), status=200,
                   content_type=entry.kind())

        def answer(request: requests.PreparedRequest) -> tuple[int, dict[str, str], bytes]:
            return 307, {"Location": f"{HOST}/moved-away"}, b""

        mocked.add_callback(entry.method, re.compile(re.escape(HOST) + r".*" + entry.url), callback=answer)
        send(name, made)
        assert len(mocked.calls) == 3
        for call in mocked.calls:
            assert auth_header_names(call.request.headers, secret), "same origin: the key is still sent"


# --- credentials in base URLs ---------------------------------------------------------------------

URLS_WITH_CREDENTIALS = [
    "http://alice:pa55-w0rd-x@127.0.0.1:9/v1",
    "https://alice:pa55-w0rd-x@api.example.com",
    "http://:pa55-w0rd-x@127.0.0.1:9",
    "http://pa55-w0rd-x@127.0.0.1:9",
]


@pytest.mark.parametrize("name", PROVIDERS)
@pytest.mark.parametrize("url", URLS_WITH_CREDENTIALS)
def test_base_urls_with_credentials_are_refused_without_echo(name: str, url: str) -> None:
    value = value_for(name)
    attempts = [
        lambda: load_provider(name)(key_for(name), **{**dict(value.options), "base_url": url}),
        lambda: load_provider(name).from_value(ProviderValue(key_for(name), base_url=url, options=value.options)),
        lambda: DynClientBuilder().build_from_value(name, ProviderValue(key_for(name), base_url=url,
                                                                         options=value.options)),
    ]
    for attempt in attempts:
        with pytest.raises(InvalidBaseURLError) as info:
            attempt()
        text = f"{info.value} {info.value!r} {info.value.args}"
        assert "pa55-w0rd-x" not in text
        assert key_for(name) not in text


def test_a_malformed_url_with_credentials_is_not_echoed() -> None:
    """Refused for its missing scheme; the message still hides what looks like a password."""
    with pytest.raises(InvalidBaseURLError) as info:
        load_provider("openai")(key_for("openai"), base_url="alice:pa55-w0rd-x@127.0.0.1:9")
    assert "pa55-w0rd-x" not in str(info.value)
