"""Clients read their provider's environment as openai-python does: what is not passed comes from
the variables (key, base URL, <PROVIDER>_TIMEOUT, <PROVIDER>_MAX_RETRIES), read once when the
client is built; an explicit argument always wins; a bad value is refused naming the variable.
Also: the real signatures that help() and inspect show."""

from __future__ import annotations

import inspect
import os
import pydoc

import pytest
from conftest import credentials_sent

from rig_sync.client import ProviderClient, ProviderValue
from rig_sync.client.builder import builtin_provider_names, load_provider, provider_env_variables
from rig_sync.errors import APIError, ClientBuildError, MissingAPIKeyError
from rig_sync.http import RetryPolicy, Timeout
from rig_sync.providers import azure, gemini, ollama, openai
from rig_sync.testing import FakeProvider, Fault

HOST = "http://127.0.0.1:9"


def ask(client: openai.Client) -> str:
    return client.completion_model("gpt-4o-mini").completion_request("ping").send().text


def use(monkeypatch: pytest.MonkeyPatch, fake: FakeProvider) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", fake.api_key)
    monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)


# --- key and base URL -----------------------------------------------------------------------------


def test_a_bare_client_reads_key_and_base_url(fake: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    use(monkeypatch, fake)
    client = openai.Client()
    assert client.base_url == fake.base_url
    assert ask(client) == "echo: ping"
    assert fake.last_request is not None
    assert fake.last_request.headers["authorization"] == f"Bearer {fake.api_key}"
    # from_env and the builder are the same thing
    assert openai.Client.from_env().base_url == openai.ClientBuilder().build().base_url == fake.base_url


def test_explicit_arguments_win_over_the_environment(fake: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    monkeypatch.setenv("OPENAI_BASE_URL", f"{HOST}/v1")
    client = openai.Client("sk-passed", base_url=fake.base_url)
    assert ask(client) == "echo: ping"
    assert fake.last_request is not None and fake.last_request.headers["authorization"] == "Bearer sk-passed"
    # an explicit empty key is a missing key, not "use the variable" (as in openai-python)
    with pytest.raises(MissingAPIKeyError):
        openai.Client("")


def test_the_environment_is_read_once_when_the_client_is_built(fake: FakeProvider,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    use(monkeypatch, fake)
    client = openai.Client()
    monkeypatch.setenv("OPENAI_BASE_URL", f"{HOST}/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-changed")
    assert client.base_url == fake.base_url and ask(client) == "echo: ping"
    assert fake.last_request is not None and fake.last_request.headers["authorization"] == f"Bearer {fake.api_key}"


def test_a_value_without_key_or_url_takes_them_from_the_environment(fake: FakeProvider,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    use(monkeypatch, fake)
    assert ask(openai.Client.from_value(ProviderValue(options={"organization": "org-1"}))) == "echo: ping"
    assert fake.last_request is not None and fake.last_request.headers["openai-organization"] == "org-1"


def test_organization_and_project_come_from_openai_python_s_variables(fake: FakeProvider,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    use(monkeypatch, fake)
    monkeypatch.setenv("OPENAI_ORG_ID", "org-env")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj-env")
    ask(openai.Client())
    assert fake.last_request is not None
    assert (fake.last_request.headers["openai-organization"], fake.last_request.headers["openai-project"]) == \
        ("org-env", "proj-env")
    ask(openai.Client(organization="org-passed"))
    assert fake.requests[-1].headers["openai-organization"] == "org-passed"


KEYED = [name for name in builtin_provider_names() if load_provider(name).requires_api_key]


@pytest.mark.parametrize("name", KEYED)
def test_a_missing_key_names_every_variable_that_would_do(name: str) -> None:
    cls = load_provider(name)
    with pytest.raises(MissingAPIKeyError) as info:
        cls()
    assert all(variable in str(info.value) for variable in cls.env_api_key), str(info.value)


@pytest.mark.parametrize("name", [n for n in builtin_provider_names() if n != "azure"])
def test_every_provider_reads_each_of_its_declared_variables(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    cls = load_provider(name)
    secret = f"sk-{name}-from-env-0123456789"
    for key_var in cls.env_api_key:  # each name works alone (the last ones are the fallbacks)
        for url_var in cls.env_base_url:
            monkeypatch.setenv(key_var, secret)
            monkeypatch.setenv(url_var, f"{HOST}/v1")
            client = cls()
            assert client.base_url.startswith(HOST), (key_var, url_var, client.base_url)
            assert secret in " ".join(credentials_sent(client).values()), key_var  # the headers that carry it
            assert secret not in repr(client)
            monkeypatch.delenv(key_var)
            monkeypatch.delenv(url_var)


def test_the_first_declared_variable_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", "from-gemini")
    monkeypatch.setenv("GOOGLE_API_KEY", "from-google")
    monkeypatch.setenv("GEMINI_BASE_URL", f"{HOST}/a")
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", f"{HOST}/b")
    client = gemini.Client()
    assert credentials_sent(client) == {"x-goog-api-key": "from-gemini"} and client.base_url == f"{HOST}/a"


def test_ollama_host_may_be_a_bare_host_and_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", "127.0.0.1:9")
    assert ollama.Client().base_url == HOST
    assert ollama.Client(base_url="http://127.0.0.1:8/").base_url.startswith("http://127.0.0.1:8")


# --- Azure: openai-python's AzureOpenAI names, then the short ones -------------------------------------


def test_azure_reads_openai_python_s_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "az-key")
    monkeypatch.setenv("AZURE_API_KEY", "old-key")
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://res.openai.azure.com")
    monkeypatch.setenv("OPENAI_API_VERSION", "2024-06-01")
    client = azure.Client()
    assert client.endpoint == "https://res.openai.azure.com" and client.api_version == "2024-06-01"
    assert credentials_sent(client) == {"api-key": "az-key"}


def test_azure_explicit_token_is_not_mixed_with_a_key_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "az-key")
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://res.openai.azure.com")
    client = azure.Client(token="entra-token")
    assert credentials_sent(client) == {"Authorization": "Bearer entra-token"}
    monkeypatch.delenv("AZURE_OPENAI_API_KEY")
    monkeypatch.setenv("AZURE_OPENAI_AD_TOKEN", "env-token")
    assert credentials_sent(azure.Client()) == {"Authorization": "Bearer env-token"}
    assert credentials_sent(azure.Client("passed-key")) == {"api-key": "passed-key"}


def test_azure_without_credentials_names_the_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ClientBuildError, match="AZURE_OPENAI_ENDPOINT"):
        azure.Client("k")
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://res.openai.azure.com")
    with pytest.raises(MissingAPIKeyError, match=r"AZURE_OPENAI_API_KEY.*AZURE_OPENAI_AD_TOKEN"):
        azure.Client()


# --- timeout and retries ----------------------------------------------------------------------------


def test_timeout_and_max_retries_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_TIMEOUT", " 42.5 ")
    monkeypatch.setenv("OPENAI_MAX_RETRIES", "7")
    client = openai.Client("sk-test")
    assert client.transport.timeout == Timeout.of(42.5)
    assert client.transport.retry.max_retries == 7
    # explicit arguments win, whichever way they are given
    assert openai.Client("sk-test", timeout=3).transport.timeout == Timeout.of(3)
    assert openai.ClientBuilder("sk-test").timeout(4).max_retries(1).build().transport.retry.max_retries == 1
    assert openai.Client("sk-test", retry=RetryPolicy(max_retries=5)).transport.retry.max_retries == 5
    monkeypatch.delenv("OPENAI_TIMEOUT")
    monkeypatch.delenv("OPENAI_MAX_RETRIES")
    defaults = openai.Client("sk-test").transport
    assert defaults.timeout == Timeout() and defaults.retry == RetryPolicy()


def test_max_retries_from_the_environment_takes_effect_on_the_wire(fake: FakeProvider,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    use(monkeypatch, fake)
    monkeypatch.setenv("OPENAI_MAX_RETRIES", "0")
    fake.inject(Fault.status(503))
    with pytest.raises(APIError):
        ask(openai.Client())
    assert fake.request_count == 1  # no retry


@pytest.mark.parametrize("variable, value", [
    ("OPENAI_TIMEOUT", "abc"), ("OPENAI_TIMEOUT", "-1"), ("OPENAI_TIMEOUT", "0"), ("OPENAI_TIMEOUT", "nan"),
    ("OPENAI_TIMEOUT", "inf"), ("OPENAI_MAX_RETRIES", "abc"), ("OPENAI_MAX_RETRIES", "-1"),
    ("OPENAI_MAX_RETRIES", "1.5"), ("ANTHROPIC_TIMEOUT", "ten"),
])
def test_a_bad_setting_is_refused_naming_the_variable(variable: str, value: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(variable, value)
    cls = load_provider(variable.split("_")[0].lower())
    with pytest.raises(ClientBuildError, match=variable) as info:
        cls("sk-SECRET-never-shown")
    assert repr(value) in str(info.value) and "SECRET" not in str(info.value)
    # an explicit argument means the variable is not even read
    cls("sk-SECRET-never-shown", timeout=5, max_retries=1)


def test_every_variable_is_declared_and_none_leaks_into_the_tests() -> None:
    names = provider_env_variables()
    for expected in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_TIMEOUT", "OPENAI_MAX_RETRIES", "OPENAI_ORG_ID",
                     "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "CO_API_KEY", "COHERE_API_KEY", "CO_API_URL",
                     "GEMINI_API_KEY", "GOOGLE_API_KEY", "AZURE_OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT",
                     "OPENAI_API_VERSION", "AZURE_OPENAI_AD_TOKEN", "OLLAMA_HOST", "HF_TOKEN", "MISTRAL_API_KEY"):
        assert expected in names
    assert all(name == name.upper() for name in names)
    assert not [name for name in names if name in os.environ]  # tests/conftest.py removed them


# --- signatures ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", builtin_provider_names())
def test_signatures_are_the_real_parameters(name: str) -> None:
    params = inspect.signature(load_provider(name)).parameters
    assert next(iter(params)) == "api_key" and params["api_key"].default is None
    for keyword in ("base_url", "timeout", "max_retries", "session", "headers"):
        assert params[keyword].kind is inspect.Parameter.KEYWORD_ONLY, keyword
    assert not [p for p in params if p in ("args", "kwargs")]


def test_help_and_signature_show_provider_specific_parameters_too() -> None:
    params = inspect.signature(azure.Client).parameters
    assert {"endpoint", "api_version", "token", "base_url", "session", "pool_size"} <= set(params)
    assert str(inspect.signature(openai.Client)).startswith("(api_key: 'str | None' = None, *, base_url")
    text = pydoc.plain(pydoc.render_doc(openai.Client))
    assert "api_key: 'str | None' = None" in text and "*args" not in text.split("Method resolution")[0]
    assert isinstance(openai.Client("sk-x"), ProviderClient)  # calling still builds (and freezes) a client
