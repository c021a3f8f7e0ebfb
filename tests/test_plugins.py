"""Third-party providers join through the `rig_sync.providers` entry-point group: a package of its
own, installed beside rig_sync, appears in `DynClientBuilder()`, the CLI's matrix and `fan_out`
without code here. The package is made for real in a temporary directory (a module and its
`*.dist-info` with `entry_points.txt`), so `importlib.metadata` finds it as it would a wheel."""

from __future__ import annotations

import importlib
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from rig_sync import batch
from rig_sync.cli import main
from rig_sync.client import ProviderClient
from rig_sync.client import builder as registry
from rig_sync.client.builder import DynClientBuilder, load_provider, plugin_provider_names
from rig_sync.errors import ClientBuildError, UnknownProvider, UnsupportedFeature
from rig_sync.testing import FakeProvider, Reply

PLUGIN = '''
from typing import ClassVar

from rig_sync.providers import openai


class Client(openai.Client):
    """Acme's OpenAI-compatible API, published as a package of its own."""

    provider: ClassVar[str] = "acme"
    default_base_url: ClassVar[str] = "https://api.acme.invalid/v1"
'''


def install(site: Path, dist: str, entry_points: str, modules: dict[str, str]) -> None:
    """A distribution as pip leaves it: its modules and a dist-info with its entry points."""
    info = site / f"{dist}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))
    for name, text in modules.items():
        (site / f"{name}.py").write_text(text)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.syspath_prepend(str(tmp_path))
    registry._plugins.cache_clear()
    importlib.invalidate_caches()
    yield tmp_path
    registry._plugins.cache_clear()
    for name in [m for m in sys.modules if m.startswith("acme_rig") or m.startswith("broken_rig")]:
        del sys.modules[name]


def test_an_installed_plugin_is_a_provider_everywhere(site: Path, fake: FakeProvider,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    install(site, "acme_rig", "[rig_sync.providers]\nacme = acme_rig:Client\n", {"acme_rig": PLUGIN})
    assert plugin_provider_names() == ["acme"]
    assert issubclass(load_provider("acme"), ProviderClient)

    monkeypatch.setenv("ACME_API_KEY", fake.api_key)
    monkeypatch.setenv("ACME_BASE_URL", fake.base_url)
    reg = DynClientBuilder()
    assert "acme" in reg.providers()
    fake.script(Reply.text("from acme"))
    assert reg.completion("acme:gpt-4o-mini").completion_request("hi").send().text == "from acme"
    with pytest.raises(UnsupportedFeature) as info:  # the class says what it lacks, with no request made
        reg.rerank("acme:r")
    assert "acme" in str(info.value)

    fake.script(Reply.text("fanned"))
    answers = batch.fan_out("hi", ["acme:gpt-4o-mini"], builder=reg)
    assert answers == {"acme:gpt-4o-mini": "fanned"}

    assert main(["providers"]) == 0
    matrix = capsys.readouterr().out
    row = next(line for line in matrix.splitlines() if line.startswith("| acme | "))
    assert "ACME_API_KEY" in row and "| https://api.acme.invalid/v1 | C S " in row


def test_a_module_holding_client_is_a_plugin_too(site: Path) -> None:
    install(site, "acme_rig", "[rig_sync.providers]\nacme = acme_rig\n", {"acme_rig": PLUGIN})
    assert load_provider("acme").provider == "acme"


def test_a_broken_plugin_says_which_one_and_never_hides_a_builtin(site: Path, caplog: pytest.LogCaptureFixture) -> None:
    install(site, "broken_rig", """
        [rig_sync.providers]
        broken = broken_rig:Client
        notaclient = broken_rig:NOT_A_CLIENT
        openai = broken_rig:Client
        """, {"broken_rig": "raise ImportError('its dependency is missing')\n"})
    assert plugin_provider_names() == ["broken", "notaclient"]  # the built-in openai is not replaced
    assert "a built-in provider has that name" in caplog.text
    with pytest.raises(ClientBuildError, match=r"'broken'.*failed to import.*dependency is missing"):
        load_provider("broken")
    assert load_provider("openai").__module__ == "rig_sync.providers.openai"
    with pytest.raises(UnknownProvider):
        DynClientBuilder().completion("nosuch:m")


def test_a_plugin_that_is_no_client_is_refused(site: Path) -> None:
    install(site, "acme_rig", "[rig_sync.providers]\nodd = acme_rig:VALUE\n", {"acme_rig": "VALUE = 42\n"})
    with pytest.raises(ClientBuildError, match="not a rig_sync ProviderClient"):
        load_provider("odd")
