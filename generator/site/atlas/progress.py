"""A progress bar over atlas units (done/total, units/s), or nothing when quiet."""
from __future__ import annotations

import time


class PhaseBar:
    """One rich task per layer being computed; the description names the layer."""

    def __init__(self, total: int, quiet: bool):
        self.total, self.quiet, self._bar, self._task = total, quiet, None, None

    def __enter__(self):
        if not self.quiet:
            from rich.console import Console
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                       TimeElapsedColumn)
            self._bar = Progress(TextColumn("atlas {task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
                                 TimeElapsedColumn(), console=Console(stderr=True), transient=True)
            self._bar.__enter__()
            self._task = self._bar.add_task("units", total=self.total, rate="")
            self._start = time.perf_counter()
        return self

    def update(self, layer: str, done: int, total: int) -> None:
        if self._bar is not None:
            rate = done / max(1e-9, time.perf_counter() - self._start)
            self._bar.update(self._task, description=layer, completed=done, total=total,
                             rate=f"{rate:.1f} units/s")

    def __exit__(self, *exc):
        if self._bar is not None:
            self._bar.__exit__(*exc)
        return False
