"""Memory of a long streamed answer: how much the client's resident memory grows while it reads a stream
of one-word chunks whose text it does not keep, against the text received (target: within 2x;
the whole answer's text stays on `stream.response`, so 1x is the floor). Each side runs in a fresh
process against the same FakeProvider; raw `requests` (`iter_lines` + `json.loads`, keeping
nothing) is the reference.
"""

from __future__ import annotations

import subprocess
import sys

from _common import HEADER, Row, child_server

# The fake answers each client's warm-up call and then its long answer (a script, so that the
# prompt stays short and only the answer is long).
_SERVER = """
import sys
from rig_sync.testing import FakeProvider, Reply
words = int(sys.argv[1])
long = " ".join(f"w{i % 1000}" for i in range(words))
fake = FakeProvider().start()
fake.script(*[Reply.text("hi"), Reply.text(long)] * 2)
del long
print(fake.base_url, flush=True)
sys.stdin.read()
fake.stop()
"""

# Resident memory now (not the peak, which the start-up may have set higher than the stream reaches).
_RSS = """
import os, resource
def rss():
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # no /proc: the peak, the best there is
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
"""

_OURS = _RSS + """
import sys
from rig_sync.providers import openai
base, words = sys.argv[1], int(sys.argv[2])
model = openai.Client("sk-bench", base_url=base).completion_model("gpt-4o-mini")
model.completion_request("warm up").send()
before = rss()
stream = model.completion_request("Talk at length").stream()
received = sum(len(piece) for piece in stream.text_stream())
print(received, rss() - before)  # the stream (and its whole text, on .response) still held
"""

_RAW = _RSS + """
import json, sys, requests
base, words = sys.argv[1], int(sys.argv[2])
session = requests.Session()
auth = {"Authorization": "Bearer sk-bench"}
warm = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "warm up"}]}
session.post(base + "/chat/completions", json=warm, headers=auth).json()
body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Talk at length"}], "stream": True}
before = rss()
received = 0
with session.post(base + "/chat/completions", json=body, headers=auth, stream=True) as r:
    for line in r.iter_lines():
        if line.startswith(b"data: ") and line != b"data: [DONE]":
            chunk = json.loads(line[6:])
            if chunk["choices"]:
                received += len(chunk["choices"][0]["delta"].get("content") or "")
print(received, rss() - before)
"""


def _growth(code: str, base_url: str, words: int) -> tuple[int, int]:
    out = subprocess.run([sys.executable, "-c", code, base_url, str(words)], check=True, capture_output=True,
                         text=True).stdout.split()
    return int(out[0]), int(out[1])


def run(words: int = 400_000) -> list[Row]:
    with child_server(["-c", _SERVER, str(words)]) as (_, base_url):
        text, ours = _growth(_OURS, base_url, words)
        raw_text, raw = _growth(_RAW, base_url, words)
    mib = 1024 * 1024
    return [
        Row(f"long stream ({words:,} chunks, {text / mib:.1f} MiB of text): RSS growth / text received",
            ours / mib, text / mib, "MiB", "<= 2x", ours / text, ours <= 2 * text),
        Row("the same with raw requests, keeping nothing (info)", raw / mib, raw_text / mib, "MiB", "-",
            raw / max(raw_text, 1), True),
    ]


if __name__ == "__main__":
    print(HEADER)
    for row in run(int(sys.argv[1]) if len(sys.argv) > 1 else 400_000):
        print(row.line())
