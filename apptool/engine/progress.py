"""Training progress: live bars on a terminal, one plain line per epoch anywhere else (a log file, CI).

rich draws nothing until the end when stdout is not a terminal, so a redirected
run would be silent for its whole length; the plain display prints as it goes.
"""

from __future__ import annotations

import sys
import time
from typing import Any


class PlainProgress:
    """The subset of ``rich.progress.Progress`` the trainer uses, printing one line per step of its first task."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.tasks: dict[int, dict[str, Any]] = {}
        self.started = time.perf_counter()

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def add_task(self, description: str, total: int | None = None, completed: int = 0) -> int:
        task_id = len(self.tasks)
        self.tasks[task_id] = {"description": description, "total": total, "completed": completed}
        return task_id

    def update(self, task_id: int, advance: int = 0, description: str | None = None) -> None:
        task = self.tasks[task_id]
        task["completed"] += advance
        if description is not None:
            task["description"] = description
        if task_id == 0 and advance and self.enabled:
            elapsed = time.perf_counter() - self.started
            print(f"{task['description']} · epoch {task['completed']}/{task['total']} · {elapsed:.1f} s", flush=True)

    def remove_task(self, task_id: int) -> None:
        self.tasks.pop(task_id, None)


def progress_display(enabled: bool):
    """Live bars when stdout is a terminal, plain lines otherwise; nothing when not ``enabled``."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    if enabled and not Console().is_terminal:
        return PlainProgress(enabled)
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        disable=not enabled,
        transient=False,
    )


def announce(enabled: bool, message: str) -> None:
    """One line for a phase after the epochs (export, evaluation), printed at once."""
    if enabled:
        print(message, file=sys.stdout, flush=True)
