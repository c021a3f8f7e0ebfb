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

SERVER = """
import sys
from rig_sync.testing import FakeProvider
fake = FakeProvider(latency=float(sys.argv[1])).start()
print(fake.base_url, flush=True)
sys.stdin.read()
fake.stop()
"""


@contextmanager
def fake_server(latency: float = 0.0) -> Iterator[str]:
    """Base URL of a FakeProvider running in a child process (stopped on exit)."""
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(latency)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().strip()
        if not base_url.startswith("http://127.0.0.1"):
            raise RuntimeError(f"fake server did not start: {base_url!r}")
        yield base_url
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=10)


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
