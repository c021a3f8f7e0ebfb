"""A 600 rpm limit held for 30 s of real time while many threads hammer `acquire()`.

Evenly spaced slots mean 300 requests pass in 30 s (one every 100 ms); the target is within ±5%.
Also reported: how late the latest thread woke after its slot (sleep precision under load).
"""

from __future__ import annotations

import sys
import threading
import time

from _common import HEADER, Row

from rig_sync.ratelimit import RateLimiter

RPM = 600
THREADS = 32


def hammer(duration: float = 30.0, rpm: float = RPM, threads: int = THREADS) -> tuple[list[float], float]:
    """(times, from the start, of the requests let through within `duration`; worst lateness)."""
    limiter = RateLimiter(rpm=rpm)
    start_line = threading.Barrier(threads + 1)
    passed: list[float] = []
    late = 0.0
    lock = threading.Lock()
    t0 = 0.0

    def worker() -> None:
        nonlocal late
        start_line.wait()
        while True:
            before = time.monotonic()
            wait = limiter.acquire()  # the thing measured: reserve a slot, sleep until it
            now = time.monotonic()
            if now - t0 >= duration:
                return
            with lock:
                passed.append(now - t0)
                late = max(late, now - (before + wait))

    pool = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for thread in pool:
        thread.start()
    t0 = time.monotonic()
    start_line.wait()
    for thread in pool:
        thread.join()
    return passed, late


def busiest_second(times: list[float]) -> int:
    """Most requests in any one-second window: a burst would show here even if the total is right."""
    times = sorted(times)
    most, first = 0, 0
    for last, t in enumerate(times):
        while t - times[first] >= 1.0:
            first += 1
        most = max(most, last - first + 1)
    return most


def run(duration: float = 30.0) -> list[Row]:
    times, late = hammer(duration)
    passed = len(times)
    expected = RPM / 60 * duration
    ratio = passed / expected
    print(f"{RPM} rpm for {duration:.0f} s with {THREADS} threads: {passed} passed, {expected:.0f} expected "
          f"(ratio {ratio:.3f}); busiest second {busiest_second(times)}; "
          f"latest wake-up {late * 1000:.1f} ms after its slot", file=sys.stderr)
    return [Row(f"rate limit {RPM} rpm, {duration:.0f} s, {THREADS} threads", passed, expected, "requests",
                "within ±5%", ratio, abs(ratio - 1) <= 0.05)]


def main() -> None:
    duration = float(sys.argv[1]) if len(sys.argv) > 1 else 30.0
    print(HEADER)
    for row in run(duration):
        print(row.line())


if __name__ == "__main__":
    main()
