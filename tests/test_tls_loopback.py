"""TLS for real: HTTPS to the loopback fake provider with a certificate from a throwaway CA
(trustme), through the transport's direct urllib3 path and through a caller's session."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import trustme
from urllib3.exceptions import InsecureRequestWarning

from rig_sync import errors
from rig_sync.providers import openai
from rig_sync.testing import FakeProvider


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def ca_bundle(ca: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "test-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture
def tls_fake(ca: trustme.CA, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeProvider]:
    for var in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    with FakeProvider(tls=context) as fake:
        yield fake


def chat(fake: FakeProvider, **kwargs: Any) -> str:
    client = openai.Client(fake.api_key, base_url=fake.base_url, max_retries=0, **kwargs)
    return str(client.completion_model("gpt-4o-mini").completion_request("hi").send().text)


def test_https_with_the_servers_ca_bundle(tls_fake: FakeProvider, ca_bundle: str) -> None:
    assert tls_fake.base_url.startswith("https://127.0.0.1:")
    assert chat(tls_fake, verify=ca_bundle) == "echo: hi"
    assert tls_fake.requests[0].headers["authorization"] == f"Bearer {tls_fake.api_key}"


def test_a_ca_bundle_named_in_the_environment_at_build_is_used(tls_fake: FakeProvider, ca_bundle: str,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", ca_bundle)
    assert chat(tls_fake) == "echo: hi"


def test_an_untrusted_certificate_is_refused_by_default(tls_fake: FakeProvider) -> None:
    with pytest.raises(errors.APIConnectionError, match=r"(?i)certificate"):
        chat(tls_fake)
    assert tls_fake.requests == []


def test_turning_verification_off_works_and_is_logged(tls_fake: FakeProvider,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="rig_sync"), pytest.warns(InsecureRequestWarning):
        assert chat(tls_fake, verify=False) == "echo: hi"  # and urllib3 warns on every request, as with requests
    assert any("verification is OFF" in r.getMessage() for r in caplog.records)


def test_streaming_and_kept_connections_over_tls(tls_fake: FakeProvider, ca_bundle: str) -> None:
    client = openai.Client(tls_fake.api_key, base_url=tls_fake.base_url, verify=ca_bundle, pool_size=1)
    model = client.completion_model("gpt-4o-mini")
    with model.completion_request("streamed words").stream() as stream:
        assert "".join(stream.text_stream()) == "echo: streamed words"
    assert model.completion_request("again").send().text == "echo: again"
    assert tls_fake.connection_count == 1  # one TLS handshake, the connection kept


def test_a_callers_session_with_the_ca_bundle(tls_fake: FakeProvider, ca_bundle: str) -> None:
    session = requests.Session()
    session.verify = ca_bundle
    assert chat(tls_fake, session=session) == "echo: hi"


def test_a_ca_bundle_path_that_does_not_exist_is_named_in_the_error(tls_fake: FakeProvider, tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-ca.pem")
    with pytest.raises(errors.APIConnectionError, match="invalid path") as info:
        chat(tls_fake, verify=missing)
    assert missing in str(info.value)
    assert tls_fake.requests == []
