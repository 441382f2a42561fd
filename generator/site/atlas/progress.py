"""The atlas's progress: one bar per phase (mining, histograms, pictures, patches, edges,
pages), each with its count and its own rate (done / seconds spent in that phase), or
nothing when quiet."""
from __future__ import annotations

import time

UNIT = {"mining": "images", "histograms": "images"}   # what a phase counts; others: units, pages


class PhaseBar:
    """One rich task per phase, added when the phase first reports."""

    def __init__(self, quiet: bool):
        self.quiet, self._bar, self._tasks = quiet, None, {}

    def __enter__(self):
        if not self.quiet:
            from rich.console import Console
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                       TimeElapsedColumn)
            self._bar = Progress(TextColumn("atlas {task.description:<8}"), BarColumn(),
                                 MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
                                 TimeElapsedColumn(), console=Console(stderr=True))
            self._bar.__enter__()
        return self

    def update(self, phase: str, done: int, total: int, seconds: float | None = None) -> None:
        """`seconds`: time spent in the phase so far (default: since its first report)."""
        if self._bar is None:
            return
        now = time.perf_counter()
        if phase not in self._tasks:
            self._tasks[phase] = (self._bar.add_task(phase, total=total, rate=""), now)
        task, start = self._tasks[phase]
        spent = seconds if seconds is not None else now - start
        rate = f"{done / spent:.1f} {UNIT.get(phase, 'units' if phase != 'pages' else 'pages')}/s" \
            if spent > 0 else ""
        self._bar.update(task, completed=done, total=max(total, done), rate=rate)

    def __exit__(self, *exc):
        if self._bar is not None:
            self._bar.__exit__(*exc)
        return False
