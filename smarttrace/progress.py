"""Progress of a long stage (frames of a camera, crops of its tracklets): counts, rate and ETA.

Why its own module: a user processing hours of video must see how far each camera is and when it
will finish, whether the output is a terminal (a tqdm bar redrawn in place) or a log file / CI pipe
(a plain line at every 10 % of the work, and at least every 10 s, with the same numbers). Plain
Python, no Prefect: tasks take a reporter and know nothing of where the lines go.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

# A plain (non-terminal) line at least this often while work goes on (seconds), and at every
# 10 % of the total: issue 13 asks for progress "at least every 10 s of tracking".
LINE_EVERY_S = 10.0
LINE_EVERY_FRACTION = 0.1
# A 10 % line is dropped when a timed line came less than this long ago (seconds): no "50%" twice.
MIN_GAP_S = 1.0

_WRITE_LOCK = threading.Lock()  # cameras run in threads: one line at a time, never interleaved


def _write_line(stream: TextIO, text: str) -> None:
    """stream.write, not print: a Prefect flow with log_prints=True turns print() into INFO log records."""
    with _WRITE_LOCK:
        stream.write(text + "\n")
        stream.flush()


def format_duration(seconds: float) -> str:
    """`1:02:03` / `2:03` (h:mm:ss / m:ss): what a user reads at a glance."""
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _is_tty(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


class ProgressReporter:
    """Counts `done` of `total` units of one stage; prints a bar on a terminal, else periodic lines.

    `total` may be None (a video whose header gives no frame count): lines then carry counts and
    rate, no percentage or ETA. `extra` counts (e.g. boxes) are shown next to the main count.
    """

    def __init__(
        self,
        label: str,
        total: int | None,
        unit: str = "frames",
        stream: TextIO | None = None,
        tty: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
        line_every_s: float = LINE_EVERY_S,
        enabled: bool = True,
    ) -> None:
        self.label = label
        self.total = total if total and total > 0 else None
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.clock = clock
        self.line_every_s = line_every_s
        self.done = 0
        self.extra: dict[str, int] = {}
        self._started = clock()
        self._last_line_at = self._started
        self._last_decile = 0
        self._closed = False
        self.enabled = enabled
        self._bar = None
        if enabled and (tty if tty is not None else _is_tty(self.stream)):
            from tqdm import tqdm

            self._bar = tqdm(total=self.total, desc=label, unit=unit[:-1] if unit.endswith("s") else unit,
                             file=self.stream, dynamic_ncols=True, leave=True)

    @property
    def rate(self) -> float:
        """Units per second since the reporter started."""
        elapsed = self.clock() - self._started
        return self.done / elapsed if elapsed > 0 else 0.0

    def eta_s(self) -> float | None:
        """Seconds left at the rate so far; None without a total or before any progress."""
        if self.total is None or self.done <= 0 or self.rate <= 0:
            return None
        return max(0, self.total - self.done) / self.rate

    def update(self, count: int = 1, **extra: int) -> None:
        """Add `count` units; `extra` sets running totals shown alongside (boxes=1234)."""
        self.done += count
        self.extra.update(extra)
        if self._bar is not None:
            self._bar.update(count)
            if extra:
                self._bar.set_postfix(extra, refresh=False)
            return
        now = self.clock()
        decile = int(self.done / self.total / LINE_EVERY_FRACTION) if self.total else 0
        since_last = now - self._last_line_at
        crossed = decile > self._last_decile
        self._last_decile = max(decile, self._last_decile)  # a step just after a timed line is not repeated
        if (crossed and since_last >= MIN_GAP_S) or since_last >= self.line_every_s:
            self._last_line_at = now
            if self.total is None or self.done < self.total:
                self._write(self.line())

    def line(self) -> str:
        """`camera lobby, track: 318/795 frames (40%), 19.8 frames/s, ETA 0:24, boxes 1534`."""
        count = f"{self.done}/{self.total}" if self.total else f"{self.done}"
        parts = [f"{count} {self.unit}" + (f" ({100 * self.done / self.total:.0f}%)" if self.total else "")]
        parts.append(f"{self.rate:.1f} {self.unit}/s")
        eta = self.eta_s()
        if eta is not None:
            parts.append(f"ETA {format_duration(eta)}")
        parts += [f"{name} {value}" for name, value in self.extra.items()]
        return f"{self.label}: " + ", ".join(parts)

    def close(self) -> None:
        """Final line (`done in 0:41`), once."""
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._bar.close()
            return
        elapsed = format_duration(self.clock() - self._started)
        count = f"{self.done} {self.unit}"
        extras = "".join(f", {name} {value}" for name, value in self.extra.items())
        self._write(f"{self.label}: done, {count} in {elapsed} ({self.rate:.1f} {self.unit}/s){extras}")

    def _write(self, text: str) -> None:
        if not self.enabled:
            return
        _write_line(self.stream, text)

    def __enter__(self) -> ProgressReporter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


PROGRESS_ENV = "SMARTTRACE_PROGRESS"


def progress_for(label: str, total: int | None, unit: str = "frames") -> ProgressReporter:
    """A reporter that prints only when `smarttrace process` asked for progress (env SMARTTRACE_PROGRESS=1).

    An environment variable, not a global: it reaches the worker processes of the `processes` and
    `dask` task runners too. Benchmarks, tests and served flows calling the tasks print nothing.
    """
    return ProgressReporter(label, total, unit, enabled=os.environ.get(PROGRESS_ENV) == "1")


def report(text: str) -> None:
    """One progress line (a stage done or skipped), printed under the same condition as the reporters."""
    if os.environ.get(PROGRESS_ENV) == "1":
        _write_line(sys.stderr, text)


__all__ = ["LINE_EVERY_S", "PROGRESS_ENV", "ProgressReporter", "format_duration", "progress_for", "report"]
