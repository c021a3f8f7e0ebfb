"""Import time: `import rig_sync` (and a provider) against `import requests`, net of a bare start."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

from _common import HEADER, Row

# As users run it: with compiled bytecode cached. (With PYTHONDONTWRITEBYTECODE set, as on some CI
# machines, an editable install would recompile rig_sync's sources on every start while the
# installed requests has its .pyc files: a comparison of compilers, not of imports.)
_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _start(code: str, runs: int) -> float:
    subprocess.run([sys.executable, "-c", code], check=True, env=_ENV)  # writes the bytecode cache
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, env=_ENV)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def run(runs: int = 15) -> list[Row]:
    bare = _start("pass", runs)
    requests_t = _start("import requests", runs) - bare
    ours = _start("import rig_sync", runs) - bare
    provider = _start("from rig_sync.providers import openai", runs) - bare
    rows = [
        Row("import rig_sync vs import requests", ours * 1000, requests_t * 1000, "ms",
            "<= 1.2x", ours / requests_t, ours / requests_t <= 1.2),
        Row("from rig_sync.providers import openai vs import requests (info)", provider * 1000,
            requests_t * 1000, "ms", "-", provider / requests_t, True),
    ]
    try:
        import openai  # noqa: F401

        sdk = _start("import openai", runs) - bare
        rows.append(Row("from rig_sync.providers import openai vs import openai (SDK)", provider * 1000,
                        sdk * 1000, "ms", "-", provider / sdk, True))
    except ImportError:
        pass
    return rows


if __name__ == "__main__":
    print(HEADER)
    for row in run():
        print(row.line())
