"""Shared benchmark plumbing: a fake provider in its own process, timing, and the report table.

The server runs in a separate process so that its work does not share the client's GIL; both
sides of every comparison talk to the same server in the same run, interleaved in rounds, and
the median round is reported. Results are ratios, which carry across machines; seconds do not.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

SERVER = """
import sys
from rig_sync.testing import FakeProvider
fake = FakeProvider(latency=float(sys.argv[1])).start()
print(fake.base_url, flush=True)
sys.stdin.read()
fake.stop()
"""


@contextmanager
def child_server(argv: list[str]) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """A loopback server in a child process that prints its base URL first and stops when its
    stdin closes: (the process, its base URL)."""
    proc = subprocess.Popen([sys.executable, *argv], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().strip()
        if not base_url.startswith("http://127.0.0.1"):
            raise RuntimeError(f"fake server did not start: {base_url!r}")
        yield proc, base_url
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=10)


@contextmanager
def fake_server(latency: float = 0.0) -> Iterator[str]:
    """Base URL of a FakeProvider running in a child process (stopped on exit)."""
    with child_server(["-c", SERVER, str(latency)]) as (_, base_url):
        yield base_url


def embedding_inputs(texts: int) -> list[str]:
    return [f"document number {i} about topic {i % 97}" for i in range(texts)]


def raw_float_embeddings(session: Any, base_url: str, inputs: list[str], headers: dict[str, str]) -> list[Any]:
    """The baseline: OpenAI embeddings as float JSON through a plain `requests` session, 2048 a request."""
    vectors: list[Any] = []
    for start in range(0, len(inputs), 2048):
        body = {"model": "text-embedding-3-small", "input": inputs[start:start + 2048], "encoding_format": "float"}
        data = session.post(base_url + "/embeddings", json=body, headers=headers).json()
        vectors.extend(item["embedding"] for item in data["data"])
    return vectors


def timed_rounds(candidates: dict[str, Callable[[], object]], rounds: int, warmup: int = 1) -> dict[str, float]:
    """Median seconds per call of each candidate, interleaving candidates round by round."""
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    for i in range(warmup + rounds):
        for name, fn in candidates.items():
            started = time.perf_counter()
            fn()
            elapsed = time.perf_counter() - started
            if i >= warmup:
                samples[name].append(elapsed)
    return {name: statistics.median(values) for name, values in samples.items()}


@dataclass
class Row:
    name: str
    ours: float
    baseline: float
    unit: str
    target: str
    ratio: float
    ok: bool

    def line(self) -> str:
        mark = "yes" if self.ok else "NO"
        return (f"| {self.name} | {self.ours:.4g} {self.unit} | {self.baseline:.4g} {self.unit} | "
                f"{self.ratio:.2f}x | {self.target} | {mark} |")


HEADER = "| benchmark | rig_sync | baseline | ratio | target | met |\n|---|---|---|---|---|---|"
