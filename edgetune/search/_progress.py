"""The study's live display: trials done/total, failures, front size, ETA, one line per trial."""

from __future__ import annotations

from types import TracebackType
from typing import Any


class StudyProgress:
    """A rich progress bar over trials plus a printed line per finished trial.

    Disabled (``enabled=False``) it prints nothing, so library callers and tests stay quiet.
    """

    def __init__(self, *, total: int, done: int, enabled: bool = True, title: str = "study",
                 failed: int = 0, front: int = 0) -> None:
        self.enabled = enabled
        self.total = total
        self.done = done
        self.failed = failed
        self.front = front
        self.title = title
        self._progress: Any = None
        self._task: Any = None
        self.console: Any = None

    def __enter__(self) -> "StudyProgress":
        if not self.enabled:
            return self
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.console = Console(stderr=True)
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("trials · {task.fields[failed]} failed · front {task.fields[front]}"),
            TextColumn("· elapsed"),
            TimeElapsedColumn(),
            TextColumn("· ETA"),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self._progress.__enter__()
        self._task = self._progress.add_task(
            self.title, total=self.total, completed=self.done, failed=self.failed, front=self.front
        )
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._progress is not None:
            self._progress.__exit__(et, ev, tb)

    def log(self, message: str) -> None:
        if self.enabled and self.console is not None:
            self.console.print(message, highlight=False, soft_wrap=True)

    def started(self, number: int, knobs_text: str) -> None:
        if self._progress is not None:
            self._progress.update(self._task, description=f"{self.title}: trial #{number} ({knobs_text})")

    def finished(self, line: str, *, done: int, total: int, failed: int, front: int) -> None:
        self.log(line)
        if self._progress is not None:
            self._progress.update(
                self._task, completed=done, total=total, failed=failed, front=front, description=self.title
            )


__all__ = ["StudyProgress"]
