"""The house's layers (README, Layout): a module imports from its own layer or below, never above,
and the plumbing names no provider (providers register what is theirs).

Every import counts: at the top of a module, inside a function (imported on first use) and under
`TYPE_CHECKING`, since each is a dependency a reader and a type checker follow."""

from __future__ import annotations

import ast
import io
import pathlib
import re
import tokenize

import pytest

import rig_sync

PACKAGE = pathlib.Path(rig_sync.__file__).parent


def readme_layers() -> dict[str, list[str]]:
    """The README's Layout diagram, lowest layer first: {layer: [its entries, `cli.py` or `client/`]}."""
    readme = (PACKAGE.parent / "README.md").read_text(encoding="utf-8")
    block = readme.split("## Layout", 1)[1].split("```", 2)[1]
    rows = {}
    for line in block.strip().splitlines():
        name, _, rest = line.partition("  ")
        rest = re.sub(r"\([^)]*\)", " ", rest)  # "(FakeProvider)" and the like explain, they are not entries
        rows[name.strip()] = re.findall(r"[\w]+(?:\.py|/)", rest)
    return dict(reversed(rows.items()))


LAYERS = readme_layers()
RANK = {entry.removesuffix(".py").rstrip("/"): rank for rank, entries in enumerate(LAYERS.values())
        for entry in entries}
LAYER_OF_RANK = list(LAYERS)


def modules() -> dict[str, pathlib.Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        name = ".".join(p for p in parts if p != "__init__")
        found[name] = path
    return found


def layer(module: str) -> int:
    """The rank of a module given relative to the package (`providers.openai`, `http._send`)."""
    head = module.split(".")[0]
    assert head in RANK, f"rig_sync.{module} is in no layer: add it to the README's Layout"
    return RANK[head]


def imports(module: str, path: pathlib.Path) -> set[str]:
    """The rig_sync modules `module` imports, relative to the package ("" for the package itself)."""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    package = [p for p in package if p]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name.removeprefix("rig_sync").lstrip(".") for a in node.names
                      if a.name.split(".")[0] == "rig_sync"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join([*base, *(node.module.split(".") if node.module else [])])
            elif node.module and node.module.split(".")[0] == "rig_sync":
                target = node.module.removeprefix("rig_sync").lstrip(".")
            else:
                continue
            for alias in node.names:  # `from . import observe` imports a module, not a name
                sub = f"{target}.{alias.name}".lstrip(".")
                found.add(sub if sub in ALL else target)
    found.discard(module)
    return found


ALL = modules()


def test_every_module_has_a_layer() -> None:
    ranks = {module: layer(module) for module in ALL if module}  # layer() fails naming a module in none
    assert set(ranks.values()) <= set(range(len(LAYERS))) and len(ranks) == len(ALL) - 1


@pytest.mark.parametrize("module", [m for m in ALL if m])
def test_imports_point_down(module: str) -> None:
    mine = layer(module)
    for target in imports(module, ALL[module]):
        if target == "":  # `import rig_sync` for its version: the front door, looked up at run time
            continue
        theirs = layer(target)
        assert theirs <= mine, (
            f"rig_sync.{module} ({LAYER_OF_RANK[mine]}) imports rig_sync.{target} ({LAYER_OF_RANK[theirs]}), "
            "a layer above it"
        )


def test_the_layer_check_sees_an_upward_import(tmp_path: pathlib.Path) -> None:
    """The check itself: a plumbing module importing a provider is caught, in every spelling."""
    for text in ("from .providers import openai\n", "from rig_sync.agent import Agent\n",
                 "def f():\n    from ..completion import Usage\n", "import rig_sync.batch\n"):
        path = tmp_path / "sse.py"
        path.write_text(text)
        module = "http._probe" if ".." in text else "sse"
        targets = imports(module, path)
        assert any(layer(t) > layer(module) for t in targets), text


# --- the plumbing names no provider ---------------------------------------------------------------

PLUMBING = [m for m in ALL if m and layer(m) == 0]
PROVIDER_WORDS = (
    "openai", "anthropic", "gemini", "google", "goog", "cohere", "azure", "ollama", "llama", "mistral",
    "groq", "voyage", "perplexity", "deepseek", "xai", "together", "openrouter", "moonshot", "hyperbolic",
    "galadriel", "mira", "huggingface", "amzn", "aws", "bedrock", "vertex", "api_key_invalid",
)


def code_words(path: pathlib.Path) -> str:
    """The module's names and string literals, without comments and docstrings (which may cite a
    provider as an example)."""
    source = path.read_text(encoding="utf-8")
    docstrings = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docstrings.add(body[0].lineno)
    words = [tok.string for tok in tokenize.generate_tokens(io.StringIO(source).readline)
             if tok.type in (tokenize.NAME, tokenize.STRING) and tok.start[0] not in docstrings]
    return " ".join(words).lower()


@pytest.mark.parametrize("module", PLUMBING)
def test_plumbing_names_no_provider(module: str) -> None:
    words = code_words(ALL[module])
    named = [w for w in PROVIDER_WORDS if w in words]
    assert not named, f"rig_sync.{module} names {named}: let the provider register it (rig_sync.http.conventions)"


def test_the_provider_name_check_sees_a_name(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "probe.py"
    path.write_text('"""Gemini in a docstring is fine."""\n# so is Anthropic in a comment\nX = ("x-goog-api-key",)\n')
    words = code_words(path)
    assert "goog" in words and "gemini" not in words and "anthropic" not in words


def test_the_readme_layout_names_only_what_exists() -> None:
    """Every entry in the README's Layout is a module or package that exists, in its form (`x.py`, `x/`)."""
    for entries in LAYERS.values():
        for entry in entries:
            assert (PACKAGE / entry).exists(), f"the README's Layout lists {entry}, which rig_sync does not have"
    assert list(LAYERS) == ["plumbing", "core types", "composition", "clients", "orchestration", "edges"]
