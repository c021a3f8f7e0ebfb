"""The repository stands alone: no test, benchmark or example reads outside it, and the sdist
carries what its own tests need (conftest.py, the recorded payloads, the Makefile, the examples)."""

from __future__ import annotations

import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from conftest import FIXTURES

ROOT = Path(__file__).resolve().parents[1]
OUTSIDE = re.compile(r"""\.\./shared|shared/fixtures|["'](/work|/home|/root|/Users|[A-Z]:\\)""")


def sources() -> list[Path]:
    files = [*ROOT.glob("tests/*.py"), *ROOT.glob("benchmarks/*.py"), *ROOT.glob("examples/**/*.py")]
    return [*files, ROOT / "Makefile", ROOT / ".ci" / "run"]


def test_no_source_names_a_path_outside_the_repository() -> None:
    here = Path(__file__).resolve()
    found = [f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
             for path in sources() if path.resolve() != here
             for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if OUTSIDE.search(line)]
    assert found == []


def test_the_pattern_catches_what_it_must() -> None:
    # Spelt in pieces, so that this file names no such path itself.
    shared, work, home = "/".join(["..", "shared"]), "/" + "work", "/" + "home"
    for line in [f'Path("{work}/{shared[3:]}/fixtures")', f"root / '{shared}' / 'x'", f'open("{home}/me/key")']:
        assert OUTSIDE.search(line), line
    assert not OUTSIDE.search('FIXTURES = Path(__file__).resolve().parent / "fixtures"')


def test_fixtures_live_in_the_repository() -> None:
    assert FIXTURES.resolve().is_relative_to(ROOT)
    assert (FIXTURES / "index.json").is_file() and (FIXTURES / "README.md").is_file()
    recorded = {p.parts[0] for p in (q.relative_to(FIXTURES) for q in FIXTURES.rglob("*")) if len(p.parts) > 1}
    assert {"openai", "anthropic", "cohere", "gemini", "mistral", "ollama", "voyage"} <= recorded


@pytest.fixture(scope="module")
def sdist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "setup.py", "-q", "sdist", "--dist-dir", str(out)], cwd=ROOT, check=True,
                   capture_output=True, timeout=120)
    (archive,) = out.glob("rig-sync-*.tar.gz")
    with tarfile.open(archive) as tar:
        tar.extractall(out, filter="data")
    (tree,) = (p for p in out.iterdir() if p.is_dir())
    return tree


def test_sdist_carries_what_its_tests_need(sdist: Path) -> None:
    for name in ["LICENSE", "Makefile", ".ci/run", "setup.cfg", "README.md", "tests/conftest.py",
                 "tests/fixtures/index.json", "tests/fixtures/openai/chat_stream.text.sse",
                 "examples/flask_app.py", "benchmarks/run_all.py", "rig_sync/py.typed"]:
        assert (sdist / name).is_file(), name
    assert "MIT License" in (sdist / "LICENSE").read_text()


def test_sdist_tests_run_from_the_unpacked_tree(sdist: Path) -> None:
    # Run from the unpacked tree, so its own rig_sync and conftest are the ones imported.
    probe = subprocess.run([sys.executable, "-c", "import rig_sync; print(rig_sync.__file__)"], cwd=sdist,
                           capture_output=True, text=True, timeout=60, check=True)
    assert Path(probe.stdout.strip()).is_relative_to(sdist)
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_sse.py",
                          "tests/test_message.py"], cwd=sdist, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert re.search(r"\d+ passed", run.stdout)
