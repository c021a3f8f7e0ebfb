"""Importing rig_sync is cheap and lazy: no provider, no HTTP stack, no (de)serialization library
until something asks for it. Each check runs in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import rig_sync


def fresh(code: str) -> object:
    """Run `code` in a new interpreter; it prints one JSON value, returned here."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


MODULES_AFTER = "import json, sys\n{imports}\nprint(json.dumps(sorted(sys.modules)))"


def modules_after(imports: str) -> set[str]:
    loaded = fresh(MODULES_AFTER.format(imports=imports))
    assert isinstance(loaded, list)
    return set(loaded)


def test_import_rig_sync_loads_only_the_package() -> None:
    loaded = modules_after("import rig_sync")
    assert sorted(m for m in loaded if m.startswith("rig_sync")) == ["rig_sync"]
    for heavy in ("requests", "urllib3", "attrs", "cattrs"):
        assert heavy not in loaded, f"import rig_sync pulled in {heavy}"


def test_core_types_do_not_load_the_http_stack_or_providers() -> None:
    loaded = modules_after(
        "import rig_sync.message, rig_sync.completion, rig_sync.streaming, rig_sync.embeddings, "
        "rig_sync.transcription, rig_sync.image_generation, rig_sync.audio_generation, rig_sync.errors"
    )
    assert "requests" not in loaded and "rig_sync.http" not in loaded
    assert not [m for m in loaded if m.startswith("rig_sync.providers")]


def test_the_registry_loads_no_provider_module() -> None:
    loaded = modules_after("from rig_sync.client.builder import DynClientBuilder\nDynClientBuilder().providers()")
    assert not [m for m in loaded if m.startswith("rig_sync.providers.")]


def test_using_a_provider_loads_just_that_provider() -> None:
    loaded = modules_after("from rig_sync.providers import openai")
    providers = {m for m in loaded if m.startswith("rig_sync.providers.") and not m.split(".")[-1].startswith("_")}
    assert providers == {"rig_sync.providers.openai"}


def test_import_is_about_as_cheap_as_requests() -> None:
    # `-X importtime` reports cumulative microseconds per top-level import; compare the two.
    def cost(module: str) -> int:
        done = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"],
                              capture_output=True, text=True, timeout=60, check=True)
        for line in done.stderr.splitlines()[::-1]:
            fields = [f.strip() for f in line.split("|")]
            if len(fields) == 3 and fields[2] == module:
                return int(fields[1])
        raise AssertionError(f"no importtime line for {module}")

    ours = min(cost("rig_sync") for _ in range(3))
    theirs = min(cost("requests") for _ in range(3))
    assert ours <= max(theirs, 5000), (ours, theirs)


@pytest.mark.parametrize(
    "name",
    ["errors", "message", "completion", "streaming", "embeddings", "transcription", "image_generation",
     "audio_generation", "client", "http", "providers"],
)
def test_submodules_are_reachable_as_attributes(name: str) -> None:
    module = getattr(rig_sync, name)
    assert module.__name__ == f"rig_sync.{name}"
    assert name in dir(rig_sync)


def test_the_one_liners_load_lazily_and_cheaply() -> None:
    loaded = modules_after("import rig_sync\nrig_sync.complete, rig_sync.stream, rig_sync.embed")
    assert sorted(m for m in loaded if m.startswith("rig_sync")) == ["rig_sync", "rig_sync._shortcuts"]
    assert "requests" not in loaded and "inspect" not in loaded


def test_dir_shows_the_public_api_only() -> None:
    names = dir(rig_sync)
    assert names == sorted(names) and {"complete", "stream", "embed", "__version__", "batch"} <= set(names)
    assert not [n for n in names if n in {"annotations", "importlib", "TYPE_CHECKING", "Any"} or n.startswith("_S")]


def test_errors_attribute_in_a_fresh_interpreter() -> None:
    assert fresh("import json, rig_sync; print(json.dumps(rig_sync.errors.RigError.__name__))") == "RigError"


def test_unknown_attributes_raise_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_thing"):
        _ = rig_sync.no_such_thing  # type: ignore[attr-defined]
    assert not hasattr(rig_sync, "no_such_thing")
    assert isinstance(rig_sync.__version__, str)


def test_a_listed_submodule_not_yet_written_is_just_absent(monkeypatch: pytest.MonkeyPatch) -> None:
    # hasattr() must answer False, not raise ModuleNotFoundError, for an optional layer not installed.
    monkeypatch.setattr(rig_sync, "_SUBMODULES", {*rig_sync._SUBMODULES, "not_written_yet"})
    assert not hasattr(rig_sync, "not_written_yet")


def test_batch_helpers_are_reachable_from_the_package() -> None:
    import rig_sync

    assert rig_sync.ratelimit.RateLimiter and rig_sync.journal.Journal and rig_sync.progress.make_progress


def test_without_opentelemetry_the_otel_module_says_which_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "opentelemetry", None)  # as if it were not installed
    monkeypatch.delitem(sys.modules, "rig_sync.otel", raising=False)
    with pytest.raises(ImportError, match=r"rig-sync\[otel\]"):
        import rig_sync.otel  # noqa: F401


def test_openai_loads_its_wire_code_and_the_http_stack_on_first_use() -> None:
    loaded = modules_after("from rig_sync.providers import openai")
    for later in ("requests", "urllib3", "cattrs", "rig_sync.http._transport", "rig_sync.completion",
                  "rig_sync.providers._openai_chat", "rig_sync.providers._openai_responses",
                  "rig_sync.providers._openai_media"):
        assert later not in loaded, f"importing openai loaded {later}"


@pytest.mark.parametrize("provider", ["anthropic", "gemini", "cohere", "groq"])
def test_no_provider_module_loads_the_http_stack_before_its_first_client(provider: str) -> None:
    loaded = modules_after(f"from rig_sync.providers import {provider}")
    assert not {"requests", "urllib3", "rig_sync.http._transport"} & loaded


def test_the_first_client_and_model_load_what_they_use_and_no_more() -> None:
    loaded = modules_after("from rig_sync.providers import openai\n"
                           "openai.Client('sk-test', base_url='http://127.0.0.1:9/v1').completion_model('gpt-4o')")
    assert {"requests", "urllib3", "cattrs", "rig_sync.providers._openai_chat"} <= loaded
    assert "rig_sync.providers._openai_responses" not in loaded  # the Responses API: on its first model
    assert "rig_sync.providers._openai_media" not in loaded  # embeddings, audio, images: likewise


def test_lazily_exported_model_classes_are_the_real_ones() -> None:
    from rig_sync.providers import _openai_chat, _openai_responses, openai

    assert openai.ChatCompletionsModel is _openai_chat.ChatCompletionsModel
    assert openai.ResponsesModel is _openai_responses.ResponsesModel
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        openai.Nope  # noqa: B018
