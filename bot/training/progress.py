"""The training progress bar: one rich bar per epoch with loss, accuracy and images/s."""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

log = logging.getLogger(__name__)


class EpochProgress:
    """A no-op bar when disabled (ranks other than 0, --no-progress), so the loop never has to ask.

    `lines`: print one line per epoch (also without the bar); only rank 0 does, with figures reduced
    over every rank.
    """

    def __init__(self, enabled: bool = True, lines: bool = True) -> None:
        self.enabled = enabled
        self.lines = lines
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> EpochProgress:
        if self.enabled:
            self._progress = Progress(
                TextColumn("[bold]epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]:.3f}  acc {task.fields[acc]:.3f}  "
                           "{task.fields[ips]:.0f} img/s"),
                TimeRemainingColumn(),
            )
            self._progress.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._progress is not None:
            self._progress.stop()

    def start_epoch(self, epoch: int, epochs: int, steps: int) -> None:
        if self._progress is not None:
            self._task = self._progress.add_task("train", total=steps, epoch=f"{epoch}/{epochs}",
                                                 loss=0.0, acc=0.0, ips=0.0)

    def advance(self, loss: float, acc: float, images_per_s: float) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, advance=1, loss=loss, acc=acc, ips=images_per_s)

    def end_epoch(self, stats: dict[str, Any]) -> None:
        val = stats.get("val_top1")
        line = (f"epoch {stats['epoch']}: loss {stats['loss']:.3f}  acc {stats['accuracy']:.3f}  "
                f"{stats['images_per_s']:.0f} img/s" + (f"  val top-1 {val:.3f}" if val is not None else ""))
        if not self.lines:
            return
        if self._progress is not None:
            self._progress.console.print(line)
        else:
            Console(highlight=False).print(line)
