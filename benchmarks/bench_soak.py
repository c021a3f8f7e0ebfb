"""Soak: many requests from many threads through one client, a share of them faulted, while memory
and open sockets are sampled. Both must stay flat: a leak of a few bytes or one socket per fault
shows up as drift over 100,000 requests.

Too long for `run_all.py`; run it on its own:

    .venv/bin/python benchmarks/bench_soak.py                      # 100,000 requests, 16 threads, 5% faults
    .venv/bin/python benchmarks/bench_soak.py --requests 20000     # a shorter run

The FakeProvider runs in this process (faults are injected into it directly), so the socket count
holds both ends of every connection, and the memory both sides' state. Faults are a mix of 429
(with a short `retry-after-ms`), 500, dropped connections and streams cut midway; a quarter of the
requests stream. Every request must end in an answer or a `RigError`, and every one is counted.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from _common import HEADER, Row

from rig_sync.errors import RigError
from rig_sync.http import RetryPolicy, Timeout
from rig_sync.providers import openai
from rig_sync.testing import FakeProvider, Fault

FAULTS = [Fault.status(429, retry_after_ms=1), Fault.status(500), Fault.drop(), Fault.stream_cut(after_events=2)]
PROMPT = "soak test prompt with a handful of words"
RSS_DRIFT_MB = 25.0  # allowed growth of resident memory after the warm-up sample
SOCKET_DRIFT = 8  # allowed growth of open sockets after the warm-up sample


def rss_mb() -> float:
    """Resident set size of this process, from /proc/self/status (Linux)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def open_sockets() -> int:
    """Sockets this process holds open: /proc/self/fd entries that are sockets."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
        except OSError:
            continue  # closed while listing
    return count


@dataclass(frozen=True)
class Sample:
    done: int
    rss_mb: float
    sockets: int
    threads: int


@dataclass
class Soak:
    requests: int
    threads: int
    fault_rate: float
    sample_every: int
    samples: list[Sample] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    foreign: list[str] = field(default_factory=list)  # exceptions that are not RigError: must stay empty
    seconds: float = 0.0
    _done: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, outcome: str) -> None:
        with self._lock:
            self.outcomes[outcome] += 1
            self._done += 1
            if self._done % self.sample_every == 0:
                self.samples.append(Sample(self._done, rss_mb(), open_sockets(), threading.active_count()))

    def run(self) -> Soak:
        with FakeProvider(record=False) as fake:  # keeps no copies: the harness must not be the leak
            client = openai.Client(fake.api_key, base_url=fake.base_url, pool_size=self.threads,
                                   retry=RetryPolicy(max_retries=1, backoff_base=0), timeout=Timeout(5, 10))
            model = client.completion_model("gpt-4o-mini")
            every = max(1, round(1 / self.fault_rate)) if self.fault_rate > 0 else 0
            counter = iter(range(self.requests))
            take = threading.Lock()

            def worker() -> None:
                while True:
                    with take:
                        i = next(counter, None)
                    if i is None:
                        return
                    if every and i % every == 0:
                        fake.inject(FAULTS[(i // every) % len(FAULTS)])
                    self.record(self._one(model, stream=i % 4 == 3))

            gc.collect()
            self.samples.append(Sample(0, rss_mb(), open_sockets(), threading.active_count()))
            started = time.perf_counter()
            pool = [threading.Thread(target=worker, daemon=True) for _ in range(self.threads)]
            for t in pool:
                t.start()
            for t in pool:
                t.join()
            self.seconds = time.perf_counter() - started
            client.close()
        return self

    def _one(self, model: openai.ChatCompletionsModel, stream: bool) -> str:
        try:
            request = model.completion_request(PROMPT)
            text = "".join(request.stream().text_stream()) if stream else request.send().text
            return "ok" if text else "empty"
        except RigError as err:
            return type(err).__name__
        except Exception as exc:  # the point is to catch what should never happen
            with self._lock:
                self.foreign.append(f"{type(exc).__name__}: {exc}"[:200])
            return "FOREIGN"


def _rows(soak: Soak) -> list[Row]:
    warm = soak.samples[min(len(soak.samples) - 1, max(1, len(soak.samples) // 10))]  # after the pool filled
    last = soak.samples[-1]
    peak_rss = max(s.rss_mb for s in soak.samples)
    peak_sockets = max(s.sockets for s in soak.samples)
    rss_ok = last.rss_mb - warm.rss_mb <= RSS_DRIFT_MB
    sockets_ok = last.sockets - warm.sockets <= SOCKET_DRIFT and peak_sockets <= 2 * soak.threads + 2 * SOCKET_DRIFT
    counted = sum(soak.outcomes.values())
    accounted = counted == soak.requests and not soak.foreign and soak.outcomes["empty"] == 0
    return [
        Row(f"soak RSS after warm-up (max {peak_rss:.1f} MB)", last.rss_mb, warm.rss_mb, "MB",
            f"<= +{RSS_DRIFT_MB:g} MB", last.rss_mb / warm.rss_mb if warm.rss_mb else 0.0, rss_ok),
        Row(f"soak open sockets after warm-up (max {peak_sockets})", last.sockets, warm.sockets, "sockets",
            f"<= +{SOCKET_DRIFT}", last.sockets / warm.sockets if warm.sockets else 0.0, sockets_ok),
        Row(f"soak requests ended in an answer or RigError ({soak.requests / soak.seconds:.0f}/s)", counted,
            soak.requests, "requests", "all, none foreign", counted / soak.requests, accounted),
    ]


def run(requests: int = 100_000, threads: int = 16, fault_rate: float = 0.05) -> list[Row]:
    soak = Soak(requests, threads, fault_rate, sample_every=max(1, requests // 50)).run()
    _report(soak)
    return _rows(soak)


def _report(soak: Soak) -> None:
    first, last = soak.samples[0], soak.samples[-1]
    peak = max(soak.samples, key=lambda s: s.rss_mb)
    out = sys.stderr
    print(f"soak: {soak.requests} requests, {soak.threads} threads, {soak.fault_rate:.0%} faults, "
          f"{soak.seconds:.1f} s", file=out)
    print(f"  outcomes: {dict(soak.outcomes.most_common())}", file=out)
    for label, s in (("first", first), ("last", last), ("max rss", peak)):
        print(f"  {label:8} after {s.done:>7} requests: rss {s.rss_mb:7.1f} MB, sockets {s.sockets:3}, "
              f"threads {s.threads:3}", file=out)
    for line in soak.foreign[:10]:
        print(f"  NOT A RigError: {line}", file=out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=100_000, help="requests in total (default 100000)")
    parser.add_argument("--threads", type=int, default=16, help="client threads (default 16)")
    parser.add_argument("--fault-rate", type=float, default=0.05, help="share of faulted requests (default 0.05)")
    args = parser.parse_args(argv)
    if args.requests < 50 or args.threads < 1 or not 0 <= args.fault_rate < 1:
        parser.error("need --requests >= 50, --threads >= 1 and 0 <= --fault-rate < 1")
    rows = run(args.requests, args.threads, args.fault_rate)
    print(HEADER)
    for row in rows:
        print(row.line())
    print("\nrun again: .venv/bin/python benchmarks/bench_soak.py --requests N [--threads T] [--fault-rate F]")
    return 0 if all(row.ok for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
