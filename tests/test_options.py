"""Provider options: a frozen attrs class per provider, built with cattrs, mapped to variables."""

from __future__ import annotations

import inspect
import pickle
from typing import Any, ClassVar

import attrs
import pytest

from rig_sync import errors
from rig_sync.client import ProviderClient, ProviderOptions, checked, option
from rig_sync.providers import anthropic, azure, bedrock, gemini, openai, vertex

KEY = "sk-test-key-0123456789"
ENDPOINT = "https://res.openai.azure.com"


@attrs.frozen(kw_only=True)
class _ShopOptions(ProviderOptions):
    region: str = option("eu", env=("SHOP_REGION", "SHOP_ZONE"), validator=checked(str.isalpha, "letters"))
    tags: tuple[str, ...] = option((), env=("SHOP_TAGS",))
    secret_id: str | None = option(secret=True)


class _Shop(ProviderClient):
    """A third party's provider, declaring its options as the built-in ones do."""

    provider: ClassVar[str] = "shop"
    default_base_url: ClassVar[str] = "http://127.0.0.1:9/v1"
    Options = _ShopOptions
    options: _ShopOptions


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SHOP_REGION", "SHOP_ZONE", "SHOP_TAGS", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID",
                 "GOOGLE_CLOUD_LOCATION", "GOOGLE_CLOUD_PROJECT", "OPENAI_API_VERSION", "AZURE_API_VERSION",
                 "AZURE_OPENAI_API_KEY", "AZURE_API_KEY", "AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)


def test_an_option_left_out_is_read_from_its_first_variable_set(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _Shop(KEY).options.region == "eu"
    monkeypatch.setenv("SHOP_ZONE", "us")
    assert _Shop(KEY).options.region == "us"
    monkeypatch.setenv("SHOP_REGION", "  ap  ")  # the first variable wins, stripped
    assert _Shop(KEY).options.region == "ap"
    assert _Shop(KEY, region="sa").options.region == "sa"  # an argument always wins
    monkeypatch.setenv("SHOP_TAGS", "a, b,,c")
    assert _Shop(KEY).options.tags == ("a", "b", "c")
    assert _Shop(KEY, tags=["x"]).options.tags == ("x",)
    assert _Shop.env_variables()[:5] == ("SHOP_API_KEY", "SHOP_BASE_URL", "SHOP_REGION", "SHOP_ZONE", "SHOP_TAGS")


def test_only_passed_options_are_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOP_REGION", "us")
    assert _Shop(KEY, tags=["x"]).options.given == {"tags"}


@pytest.mark.parametrize("value", [5, b"eu", ["eu"], 1.5, True])
def test_a_wrong_type_is_a_type_error_naming_the_option(value: Any) -> None:
    with pytest.raises(errors.OptionTypeError, match=r"shop: region must be a string") as caught:
        _Shop(KEY, region=value)
    assert isinstance(caught.value, TypeError) and isinstance(caught.value, errors.RigError)


def test_a_bad_value_names_the_option_or_the_variable_it_came_from(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(errors.ClientBuildError, match=r"shop: region must be letters, not 'e-u'"):
        _Shop(KEY, region="e-u")
    monkeypatch.setenv("SHOP_ZONE", "1")
    with pytest.raises(errors.ClientBuildError, match=r"shop: SHOP_ZONE in the environment must be letters"):
        _Shop(KEY)
    with pytest.raises(errors.ClientBuildError, match=r"location must be a Google Cloud location .*not 'evil.com/x'"):
        vertex.Client(token="t", project="p", location="evil.com/x")
    monkeypatch.setenv("GOOGLE_CLOUD_LOCATION", "a b")
    with pytest.raises(errors.ClientBuildError, match="GOOGLE_CLOUD_LOCATION in the environment"):
        vertex.Client(token="t", project="p")


def test_an_unknown_option_names_what_the_client_takes() -> None:
    with pytest.raises(errors.OptionTypeError, match=r"unexpected options: regoin; it takes region, tags, secret_id"):
        _Shop(KEY, regoin="us")
    with pytest.raises(TypeError, match="unexpected options: api_version; it takes none"):
        _Plain(KEY, api_version="v1")


class _Plain(ProviderClient):
    provider: ClassVar[str] = "plain"
    default_base_url: ClassVar[str] = "http://127.0.0.1:9"


def test_secret_options_stay_out_of_reprs_and_pickles_keep_them() -> None:
    client = _Shop(KEY, secret_id="hush-0123456789")
    assert "hush" not in repr(client.options) and "hush" not in repr(client)
    assert pickle.loads(pickle.dumps(client)).options.secret_id == "hush-0123456789"
    signing = bedrock.Client(region="us-east-1", aws_access_key_id="AKIDEXAMPLE",
                             aws_secret_access_key="wJalrXUtnFEMI/K7MDENG", aws_session_token="FwoGZXIvYXdz")
    for secret in ("AKIDEXAMPLE", "wJalrXUtnFEMI", "FwoGZXIvYXdz"):
        assert secret not in repr(signing.options) and secret not in repr(signing)
    assert "tok-secret" not in repr(azure.Client(token="tok-secret", endpoint=ENDPOINT).options)


def test_options_are_frozen() -> None:
    client = openai.Client(KEY, organization="org-1")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        client.options.organization = "org-2"  # type: ignore[misc]
    assert client.transport.headers["OpenAI-Organization"] == "org-1"


def test_the_signature_lists_each_providers_options() -> None:
    for cls, names in ((openai.Client, {"organization", "project"}),
                       (anthropic.Client, {"anthropic_version", "betas"}),
                       (gemini.Client, {"api_version"}),
                       (azure.Client, {"endpoint", "api_version", "token", "token_provider"}),
                       (vertex.Client, {"project", "location", "token", "credentials", "api_version",
                                        "anthropic_version"}),
                       (bedrock.Client, {"region", "aws_access_key_id", "aws_secret_access_key", "aws_session_token",
                                         "aws_profile", "credentials"}),
                       (_Shop, {"region", "tags", "secret_id"})):
        params = inspect.signature(cls).parameters
        assert names <= set(params), cls
        assert all(params[n].kind is inspect.Parameter.KEYWORD_ONLY for n in names)
        assert not [p for p in params.values() if p.kind is inspect.Parameter.VAR_KEYWORD], cls
        assert set(attrs.fields_dict(cls.Options)) - {"given"} == names


def test_options_come_through_the_builder_and_provider_values(monkeypatch: pytest.MonkeyPatch) -> None:
    built = anthropic.ClientBuilder(KEY).option("betas", "files-api-2025-04-14").build()
    assert built.options.betas == ("files-api-2025-04-14",)
    assert built.transport.headers["anthropic-beta"] == "files-api-2025-04-14"
    monkeypatch.setenv("OPENAI_API_VERSION", "2025-01-01-preview")
    client = azure.Client(KEY, endpoint=ENDPOINT)
    assert client.api_version == "2025-01-01-preview" and client.base_url.endswith("api-version=2025-01-01-preview")


def test_azure_token_provider_must_be_callable() -> None:
    with pytest.raises(errors.ClientBuildError, match="token_provider must be a function returning a token"):
        azure.Client(token_provider="not-a-function", endpoint=ENDPOINT)
