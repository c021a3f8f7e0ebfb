"""Import cost against `import requests`, net of a bare interpreter start: wall time (median of
fresh interpreters) and instructions (valgrind's callgrind, which counts them exactly, where
valgrind is installed), plus peak RSS after import and one chat call against a loopback server.

Instruction counts do not move with the machine's load; wall time does (run on a quiet machine).
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from _common import HEADER, Row, fake_server

# As users run it: with compiled bytecode cached. (With PYTHONDONTWRITEBYTECODE set, as on some CI
# machines, an editable install would recompile rig_sync's sources on every start while the
# installed requests has its .pyc files: a comparison of compilers, not of imports.)
_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}

# One chat call, then the peak RSS (ru_maxrss, KiB on Linux) printed.
_RSS = """
import resource, sys
base = sys.argv[1]
{call}
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""
_RSS_OURS = _RSS.format(call="from rig_sync.providers import openai\n"
                             "openai.Client('sk-bench', base_url=base).completion_model('gpt-4o-mini')"
                             ".completion_request('Hello').send().text")
_RSS_REQUESTS = _RSS.format(call="import requests\n"
                                 "requests.Session().post(base + '/chat/completions', json={'model': 'gpt-4o-mini', "
                                 "'messages': [{'role': 'user', 'content': 'Hello'}]}, "
                                 "headers={'Authorization': 'Bearer sk-bench'}).json()")


def _start(code: str, runs: int) -> float:
    subprocess.run([sys.executable, "-c", code], check=True, env=_ENV)  # writes the bytecode cache
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, env=_ENV)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def _instructions(code: str) -> int | None:
    """Instructions one interpreter runs for `code`, counted by callgrind; None without valgrind."""
    if shutil.which("valgrind") is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/out",
                               sys.executable, "-c", code], capture_output=True, text=True, env=_ENV)
    found = re.search(r"Collected\s*:\s*(\d+)", done.stderr)
    return int(found.group(1)) if done.returncode == 0 and found else None


def _rss_kib(code: str, base_url: str, runs: int = 3) -> float:
    return statistics.median(
        int(subprocess.run([sys.executable, "-c", code, base_url], check=True, env=_ENV, capture_output=True,
                           text=True).stdout.split()[-1]) for _ in range(runs))


IMPORTS = {
    "openai": "from rig_sync.providers import openai",
    "anthropic": "from rig_sync.providers import anthropic",
    "gemini": "from rig_sync.providers import gemini",
}


def run(runs: int = 15) -> list[Row]:
    bare = _start("pass", runs)
    requests_t = _start("import requests", runs) - bare
    ours = _start("import rig_sync", runs) - bare
    rows = [Row("import rig_sync vs import requests", ours * 1000, requests_t * 1000, "ms",
                "<= 1.2x", ours / requests_t, ours / requests_t <= 1.2)]
    for name, code in IMPORTS.items():
        took = _start(code, runs) - bare
        target = "<= 1.3x" if name == "openai" else "(info)"
        rows.append(Row(f"`{code}` vs import requests, wall", took * 1000, requests_t * 1000, "ms", target,
                        took / requests_t, name != "openai" or took / requests_t <= 1.3))
    first = _start(f"{IMPORTS['openai']}\nopenai.Client('sk-x').completion_model('gpt-4o')", runs) - bare
    rows.append(Row("the same + first client and model (loads requests, cattrs, the chat wire) (info)",
                    first * 1000, requests_t * 1000, "ms", "-", first / requests_t, True))
    bare_i = _instructions("pass")
    requests_i = _instructions("import requests")
    if bare_i is not None and requests_i is not None:
        for name, code in IMPORTS.items():
            counted = _instructions(code)
            if counted is None:
                continue
            ratio = (counted - bare_i) / (requests_i - bare_i)
            target = "<= 1.3x" if name == "openai" else "(info)"
            rows.append(Row(f"`{code}` vs import requests, instructions", (counted - bare_i) / 1e6,
                            (requests_i - bare_i) / 1e6, "M instr", target, ratio,
                            name != "openai" or ratio <= 1.3))
    with fake_server() as base_url:
        ours_rss, raw_rss = _rss_kib(_RSS_OURS, base_url), _rss_kib(_RSS_REQUESTS, base_url)
    rows.append(Row("peak RSS after import + one chat call, vs requests.Session().post().json()",
                    ours_rss / 1024, raw_rss / 1024, "MiB", "<= 1.2x", ours_rss / raw_rss, ours_rss / raw_rss <= 1.2))
    try:
        import openai  # noqa: F401

        sdk = _start("import openai", runs) - bare
        provider = _start(IMPORTS["openai"], runs) - bare
        rows.append(Row("from rig_sync.providers import openai vs import openai (SDK)", provider * 1000,
                        sdk * 1000, "ms", "-", provider / sdk, True))
    except ImportError:
        pass
    return rows


if __name__ == "__main__":
    print(HEADER)
    for row in run():
        print(row.line())
