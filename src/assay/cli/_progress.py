"""Rich progress on stderr for library observers (build, fetch)."""

from __future__ import annotations

from types import TracebackType

from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from assay._text import printable
from assay.cli._console import err

__all__ = ["CliObserver"]


class CliObserver:
    """Implements the library's observer protocol (stage + progress) with rich bars."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled and err.is_terminal
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            transient=True,
            disable=not self.enabled,
        )
        self._tasks: dict[str, TaskID] = {}
        self.quiet = not enabled

    def __enter__(self) -> CliObserver:
        self._progress.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._progress.__exit__(exc_type, exc, tb)

    def stage(self, message: str) -> None:
        if not self.quiet:
            self._progress.console.print(f"[dim]•[/] {escape(printable(message))}", highlight=False)

    def progress(self, task: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        if task not in self._tasks:
            self._tasks[task] = self._progress.add_task(task, total=total)
        self._progress.update(self._tasks[task], completed=done, total=total)
