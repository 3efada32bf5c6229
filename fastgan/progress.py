"""Feedback on long work, wherever it runs: a bar on a terminal; elsewhere (nohup, SLURM, CI,
where a bar would be one endless line or nothing) plain lines with the percent done, the elapsed
time and an ETA, the first within FIRST_LINE_S seconds and then at most every LINE_EVERY_S.

Both go to stderr, so stdout stays for what a command prints as its result. Training has its
own log lines (fastgan.run.reporter) and uses `eta_text` and `LineClock` from here.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import Any

FIRST_LINE_S = 10.0  # a scheduler's log shows a sign of life within this long
LINE_EVERY_S = 60.0  # and then a line at most this often, so a day-long job's log stays readable


def clock(seconds: float) -> str:
    """1:02:03, or 2:03 under an hour."""
    s = max(0, round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def eta_text(done: float, total: float, elapsed_s: float, done_at_start: float = 0.0) -> str:
    """The text "42% 1:05 elapsed, ETA 1:30": the ETA from the rate since this process started (`done_at_start`)."""
    pct = 100.0 * done / total if total else 100.0
    rate = (done - done_at_start) / elapsed_s if elapsed_s > 0 else 0.0
    eta = clock((total - done) / rate) if rate > 0 else "?"
    return f"{pct:.0f}% {clock(elapsed_s)} elapsed, ETA {eta}"


class LineClock:
    """When the next plain progress line is due: FIRST_LINE_S after the start, then LINE_EVERY_S apart."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.next_at = self.started + FIRST_LINE_S

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def due(self) -> bool:
        return time.monotonic() >= self.next_at

    def said(self) -> None:
        """A line was just printed (by the caller's schedule or its own): the next one waits."""
        self.next_at = time.monotonic() + LINE_EVERY_S


def is_terminal() -> bool:
    return sys.stderr.isatty()


class Progress:
    """`with Progress("sample", total=n) as p: ... p.advance(k)`: a bar, or plain lines (see the module)."""

    def __init__(self, what: str, total: int, unit: str = "img") -> None:
        self.what, self.total, self.unit, self.done = what, total, unit, 0
        self.clock = LineClock()
        self.bar: Any = None

    def __enter__(self) -> Progress:
        if is_terminal():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
            from rich.progress import Progress as Bar

            columns = (TextColumn(f"[bold]{self.what}"), BarColumn(), MofNCompleteColumn(), TextColumn(self.unit))
            self.bar = Bar(*columns, TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=Console(stderr=True))
            self.task = self.bar.add_task(self.what, total=self.total)
            self.bar.start()
        return self

    def set_total(self, total: int) -> None:
        """For work whose size is known only once it started (eval: the real sets' sizes)."""
        self.total = total
        if self.bar is not None:
            self.bar.update(self.task, total=total)

    def advance(self, num: int) -> None:
        self.done += num
        if self.bar is not None:
            self.bar.update(self.task, completed=self.done)
        elif self.clock.due() and self.done < self.total:
            self.clock.said()
            line = f"{self.what}: {self.done:,}/{self.total:,} {self.unit} ({eta_text(self.done, self.total, self.clock.elapsed())})"
            print(line, file=sys.stderr, flush=True)

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        if self.bar is not None:
            self.bar.stop()
