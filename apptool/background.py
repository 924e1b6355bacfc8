"""Training the hub's missing default models in the background, one at a time, while the hub already serves.

Each model trains in its own ``python -m apptool train`` subprocess, niced so the
page stays responsive, writing its bundle where the hub looks for it.  The hub
reads the progress from the bundle's ``metrics.csv`` (the trainer rewrites it
after every epoch) and treats the bundle as ready once the process has exited
and ``config.json`` (written last) exists.
"""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from apptool.bundle import CONFIG

QUEUED, TRAINING, DONE, FAILED = "queued", "training", "done", "failed"
LOG_DIR = ".training-logs"  # inside the bundles folder, next to the bundles, not inside one


@dataclass
class Job:
    """One model to train: where it goes, with which preset, and how it is going."""

    task: str
    target: Path
    preset: str
    log: Path
    state: str = QUEUED
    returncode: int | None = None
    started: float | None = None
    finished: float | None = None
    error: str = ""

    def command(self, python: str) -> list[str]:
        """The training run; ``--resume`` continues from the checkpoint a stopped hub left behind."""
        return [
            python,
            "-m",
            "apptool",
            "train",
            self.task,
            "--preset",
            self.preset,
            "--out",
            str(self.target),
            "--resume",
            "--quiet",
        ]


@dataclass
class BackgroundTrainer:
    """Trains the given tasks' bundles sequentially in a daemon thread; ``stop`` ends the running one."""

    bundles: Path
    tasks: list[str]
    preset: str = "quick"
    env: Mapping[str, str] | None = None
    python: str = sys.executable
    niceness: int = 10  # added to the hub's own: training yields the CPU to the page's requests
    jobs: dict[str, Job] = field(init=False)

    def __post_init__(self) -> None:
        self.bundles = Path(self.bundles)
        logs = self.bundles / LOG_DIR
        self.jobs = {
            name: Job(name, self.bundles / name, demo_preset(name, self.preset), logs / f"{name}.log") for name in self.tasks
        }
        self._stop = threading.Event()
        self._process: subprocess.Popen | None = None
        self._thread: threading.Thread | None = None

    @classmethod
    def for_missing(cls, bundles: Path, tasks: list[str], preset: str = "quick", **kwargs) -> "BackgroundTrainer":
        """A trainer for those of ``tasks`` whose bundle folder has no config.json yet."""
        missing = [name for name in tasks if not (Path(bundles) / name / CONFIG).exists()]
        return cls(Path(bundles), missing, preset, **kwargs)

    def start(self) -> "BackgroundTrainer":
        if self.jobs and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="apptool-background-training", daemon=True)
            self._thread.start()
        return self

    def busy(self, task: str) -> bool:
        """True while ``task``'s bundle is queued or being written."""
        job = self.jobs.get(task)
        return job is not None and job.state in (QUEUED, TRAINING)

    def idle(self) -> bool:
        return not any(self.busy(name) for name in self.jobs)

    def stop(self) -> None:
        self._stop.set()
        process = self._process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        if self._thread is not None:
            self._thread.join(timeout=15)

    def _lower_priority(self) -> None:
        if self.niceness:
            os.nice(self.niceness)

    def _run(self) -> None:
        for job in self.jobs.values():
            if self._stop.is_set():
                break
            self._train(job)

    def _train(self, job: Job) -> None:
        job.log.parent.mkdir(parents=True, exist_ok=True)
        job.state, job.started = TRAINING, time.time()
        env = {**(self.env if self.env is not None else os.environ), "PYTHONUNBUFFERED": "1"}
        try:
            with open(job.log, "wb") as log:
                self._process = subprocess.Popen(
                    job.command(self.python),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    preexec_fn=self._lower_priority if os.name == "posix" else None,
                )
                job.returncode = self._process.wait()
        except OSError as exc:
            job.returncode, job.error = -1, str(exc)
        finally:
            self._process = None
        job.finished = time.time()
        job.state = DONE if job.returncode == 0 and (job.target / CONFIG).exists() else FAILED
        if job.state == FAILED and not job.error:
            job.error = log_tail(job.log)


def demo_preset(task_name: str, preset: str) -> str:
    """The preset the hub trains ``task_name`` with: the task's ``demo_preset`` (a ready-made model) if it names one."""
    from apptool.errors import AppToolError
    from apptool.plugins import get_plugins

    try:
        return get_plugins().task(task_name).demo_preset or preset
    except AppToolError:  # not installed here: the training run itself will say so
        return preset


def log_tail(path: Path, lines: int = 12) -> str:
    """The last lines of a training log (where a failed run says why)."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


def read_history(target: Path) -> list[dict[str, str]]:
    """The epochs trained so far, from the bundle's metrics.csv (empty before the first epoch ends)."""
    try:
        return list(csv.DictReader(io.StringIO((Path(target) / "metrics.csv").read_text())))
    except (OSError, csv.Error):
        return []


def _number(value: str | None) -> str:
    try:
        return f"{float(value):.4g}"
    except (TypeError, ValueError):
        return "-"


def progress_markdown(job: Job, total_epochs: int, title: str) -> str:
    """What a pending tab shows: queued, the current epoch and losses, or why training failed."""
    command = f"`apptool train {job.task} --preset {job.preset} --out {job.target} --resume`"
    if job.state == QUEUED:
        return (
            f"**{title}** has no trained model yet. It is queued for training in the background "
            f"(`{job.preset}` preset, one model at a time); this tab becomes usable when it is done."
        )
    if job.state == FAILED:
        return (
            f"**Training {title} failed** (exit code {job.returncode}). Last lines of `{job.log}`:\n\n"
            f"```\n{job.error}\n```\n\nTrain it by hand with {command}, then reload this page."
        )
    history = read_history(job.target)
    elapsed = int(time.time() - (job.started or time.time()))
    if job.state == DONE:
        return f"**{title}** finished training in {elapsed // 60} min {elapsed % 60} s."
    if not history:
        return (
            f"**Training {title}** in the background (`{job.preset}` preset, {total_epochs} epochs): "
            f"preparing data and the first epoch… ({elapsed} s so far). This tab becomes usable when it is done."
        )
    last = history[-1]
    if str(last.get("epoch")) == str(total_epochs):
        return (
            f"**{title}**: all {total_epochs} epochs trained; exporting to ONNX and evaluating on the "
            f"held-out split… ({elapsed} s so far)"
        )
    return (
        f"**Training {title}** in the background (`{job.preset}` preset): epoch {last.get('epoch')} / "
        f"{total_epochs} · train loss {_number(last.get('train_loss'))} · validation loss "
        f"{_number(last.get('val_loss'))} · {_number(last.get('seconds'))} s per epoch ({elapsed} s so far). "
        "This tab becomes usable when it is done."
    )
