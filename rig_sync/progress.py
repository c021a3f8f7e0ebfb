"""Progress display for long batches: tqdm when installed, a plain line otherwise; off by default
when stderr is not a terminal (a log file should not fill with carriage returns).

tqdm comes from `tqdm.auto`: a widget in a Jupyter notebook (with ipywidgets), a text bar elsewhere.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol, TextIO

__all__ = ["Progress", "make_progress", "PlainProgress", "NullProgress"]


class Progress(Protocol):
    """What a batch reports to: one `update` per finished item, `skip` for items a journal
    already held, `close` at the end. Your own object may raise KeyboardInterrupt to stop."""

    def update(self, ok: bool) -> None: ...

    def skip(self, n: int) -> None: ...

    def close(self) -> None: ...


class NullProgress:
    def update(self, ok: bool) -> None:
        pass

    def skip(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


class PlainProgress:
    """`done/total, failed, rate/s, ETA` rewritten in place at most every `interval` seconds."""

    def __init__(self, total: int | None, stream: TextIO | None = None, interval: float = 0.5,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.total = total
        self.done = 0
        self.failed = 0
        self._skipped = 0
        self._stream = stream or sys.stderr
        self._interval = interval
        self._clock = clock
        self._started = clock()
        self._last = 0.0
        self._lock = threading.Lock()

    def update(self, ok: bool) -> None:
        with self._lock:
            self.done += 1
            self.failed += not ok
            now = self._clock()
            if now - self._last >= self._interval:
                self._last = now
                self._draw(now)

    def skip(self, n: int) -> None:
        with self._lock:
            self._skipped += n
            self.done += n

    def line(self, now: float | None = None) -> str:
        elapsed = max((self._clock() if now is None else now) - self._started, 1e-9)
        rate = (self.done - self._skipped) / elapsed
        total = f"/{self.total}" if self.total is not None else ""
        eta = ""
        if self.total is not None and rate > 0:
            eta = f", ETA {max(self.total - self.done, 0) / rate:.0f}s"
        return f"{self.done}{total} done, {self.failed} failed, {rate:.1f}/s{eta}"

    def _draw(self, now: float) -> None:
        self._stream.write("\r" + self.line(now))
        self._stream.flush()

    def close(self) -> None:
        with self._lock:
            self._draw(self._clock())
            self._stream.write("\n")
            self._stream.flush()


class _Tqdm:
    def __init__(self, total: int | None) -> None:
        from tqdm.auto import tqdm  # a notebook's widget, or the terminal's text bar

        self._bar: Any = tqdm(total=total, unit="item", dynamic_ncols=True)
        self._failed = 0
        self._lock = threading.Lock()

    def update(self, ok: bool) -> None:
        with self._lock:
            if not ok:
                self._failed += 1
                self._bar.set_postfix(failed=self._failed, refresh=False)
            self._bar.update(1)

    def skip(self, n: int) -> None:
        with self._lock:
            self._bar.update(n)

    def close(self) -> None:
        self._bar.close()


def make_progress(progress: bool | Progress | None, total: int | None) -> Progress:
    """None: on when stderr is a terminal. True/False: on/off. Or your own `Progress` object."""
    if progress is None:
        progress = sys.stderr.isatty()
    if progress is False:
        return NullProgress()
    if progress is True:
        try:
            return _Tqdm(total)
        except ImportError:
            return PlainProgress(total)
    return progress
