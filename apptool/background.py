"""Training the hub's missing default models: seconds-long ones first, then the preset's in the background.

Tabs become usable fast: every missing task first gets its seconds-long
``tiny`` model (``train_first``, a few at a time, before the hub is built, so
every tab is built once with its endpoints), then, task by task in tab order,
the requested preset's models train in staging folders while the hub serves,
two at a time with one thread each (small models use two cores better that
way than one run on two threads), and each replaces its tiny model when it is complete (the hub swaps the predictor;
the header says which preset each tab runs).  Each model trains in its own
``python -m apptool train`` subprocess, niced so the page stays responsive,
writing its bundle where the hub looks for it.  The hub
reads the progress from the bundle's ``metrics.csv`` (the trainer rewrites it
after every epoch) and treats the bundle as ready once the process has exited
and ``config.json`` (written last) exists.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from apptool.bundle import CONFIG, HISTORY, read_json
from apptool.errors import AppToolError

QUEUED, TRAINING, DONE, FAILED = "queued", "training", "done", "failed"
LOG_DIR = ".training-logs"  # inside the bundles folder, next to the bundles, not inside one
STAGING_DIR = ".staging"  # where a bundle that will replace a served one is trained
FIRST_PRESET = "tiny"


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
    replaces: Path | None = None  # the served bundle this one takes the place of once it is complete

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
    """Trains the given tasks' bundles in a daemon thread, ``workers`` at a time; ``stop`` ends the running ones.

    ``jobs`` give each of ``tasks`` its first usable model (the ``first`` preset, when it differs
    from ``preset``); ``upgrades`` then train ``preset`` for the tasks in ``upgrade`` (and the new
    ones) and swap each into place when it is complete.
    """

    bundles: Path
    tasks: list[str]
    preset: str = "quick"
    env: Mapping[str, str] | None = None
    python: str = sys.executable
    niceness: int = 10  # added to the hub's own: training yields the CPU to the page's requests
    first: str | None = None
    upgrade: list[str] = field(default_factory=list)
    workers: int = 2
    jobs: dict[str, Job] = field(init=False)
    upgrades: dict[str, Job] = field(init=False)

    def __post_init__(self) -> None:
        self.bundles = Path(self.bundles)
        self.jobs, self.upgrades = {}, {}
        for name in [*self.tasks, *(n for n in self.upgrade if n not in self.tasks)]:
            final = demo_preset(name, self.preset)
            staged = self.first not in (None, final) and final == self.preset
            if name in self.tasks:
                self.jobs[name] = self._job(name, self.first if staged else final, self.bundles / name)
            if staged:
                self.upgrades[name] = self._job(name, final, self.bundles / STAGING_DIR / name, replaces=self.bundles / name)
        self._stop = threading.Event()
        self._processes: set[subprocess.Popen] = set()
        self._thread: threading.Thread | None = None

    def _job(self, name: str, preset: str, target: Path, replaces: Path | None = None) -> Job:
        log = self.bundles / LOG_DIR / (f"{name}.log" if replaces is None else f"{name}.{preset}.log")
        return Job(name, target, preset, log, replaces=replaces)

    @classmethod
    def for_missing(
        cls, bundles: Path, tasks: list[str], preset: str = "quick", first: str | None = FIRST_PRESET, **kwargs
    ) -> "BackgroundTrainer":
        """A trainer for those of ``tasks`` without a bundle, and for those still on the ``first`` preset's."""
        missing, upgrade = [], []
        for name in tasks:
            config_path = Path(bundles) / name / CONFIG
            if not config_path.exists():
                missing.append(name)
            elif first and first != preset and _preset_of(config_path) == first:
                upgrade.append(name)
        return cls(Path(bundles), missing, preset, first=first, upgrade=upgrade, **kwargs)

    def start(self) -> "BackgroundTrainer":
        if (self.jobs or self.upgrades) and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="apptool-background-training", daemon=True)
            self._thread.start()
        return self

    def busy(self, task: str) -> bool:
        """True while ``task`` has no usable bundle yet: its first job is queued or being written."""
        job = self.jobs.get(task)
        return job is not None and job.state in (QUEUED, TRAINING)

    def current(self, task: str) -> Job | None:
        """The job a tab reports on: the first one until it is done, then the upgrade."""
        job = self.jobs.get(task)
        return self.upgrades.get(task, job) if job is None or job.state == DONE else job

    def generation(self, task: str) -> int:
        """How many of ``task``'s bundles were completed here: a change means the served bundle was replaced."""
        return sum(job.state == DONE for job in (self.jobs.get(task), self.upgrades.get(task)) if job is not None)

    def idle(self) -> bool:
        return not any(job.state in (QUEUED, TRAINING) for job in [*self.jobs.values(), *self.upgrades.values()])

    def train_first(self) -> Iterator[Job]:
        """Train every task's first model now, ``workers`` at a time; yield each job as it ends.  The background
        thread then trains the upgrades."""
        queued = [job for job in self.jobs.values() if job.state == QUEUED]
        with ThreadPoolExecutor(self.workers) as pool:
            running = [pool.submit(self._train, job) for job in queued]
            try:
                for done in as_completed(running):
                    yield queued[running.index(done)]
            finally:
                for future in running:
                    future.cancel()
                self._stop_processes()

    def stop(self) -> None:
        self._stop.set()
        self._stop_processes()
        if self._thread is not None:
            self._thread.join(timeout=15)

    def _stop_processes(self) -> None:
        for process in list(self._processes):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()

    def _lower_priority(self) -> None:
        if self.niceness:
            os.nice(self.niceness)

    def _run(self) -> None:
        """The first models (those ``train_first`` left), then the upgrades, in tab order, ``workers`` at a time."""
        for stage in (self.jobs.values(), self.upgrades.values()):
            with ThreadPoolExecutor(self.workers) as pool:
                list(pool.map(self._train_queued, list(stage)))  # list: an unexpected error surfaces, not lost

    def _train_queued(self, job: Job) -> None:
        if self._stop.is_set() or job.state != QUEUED:  # stopping, or trained by train_first
            return
        if job.replaces is not None and self.jobs.get(job.task, job).state == FAILED:
            job.state, job.error = FAILED, "its first model failed to train"
            return
        self._train(job)

    def _environment(self) -> dict[str, str]:
        """One core's worth of threads per run unless the user chose (oversubscribed torch threads spin and stall)."""
        env = dict(self.env if self.env is not None else os.environ)
        env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // self.workers)))
        return {**env, "PYTHONUNBUFFERED": "1"}

    def _train(self, job: Job) -> None:
        job.log.parent.mkdir(parents=True, exist_ok=True)
        job.state, job.started = TRAINING, time.time()
        env = self._environment()
        process = None
        try:
            with open(job.log, "wb") as log:
                process = subprocess.Popen(
                    job.command(self.python),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    preexec_fn=self._lower_priority if os.name == "posix" else None,
                )
                self._processes.add(process)
                job.returncode = process.wait()
        except OSError as exc:
            job.returncode, job.error = -1, str(exc)
        finally:
            self._processes.discard(process)
        job.finished = time.time()
        complete = job.returncode == 0 and (job.target / CONFIG).exists()
        if complete and job.replaces is not None:
            promote(job.target, job.replaces)
        job.state = DONE if complete else FAILED
        if job.state == FAILED and not job.error:
            job.error = log_tail(job.log)


def promote(staged: Path, served: Path) -> None:
    """Put a complete staged bundle where the served one is: the old one is moved aside, then removed."""
    retired = served.with_name(f".retired-{served.name}-{os.getpid()}-{time.time_ns()}")
    if served.exists():
        served.rename(retired)
    staged.rename(served)
    shutil.rmtree(retired, ignore_errors=True)


def _preset_of(config_path: Path) -> str | None:
    try:
        return read_json(config_path).get("preset")
    except (AppToolError, AttributeError):  # an unreadable bundle is the hub's to report, not a reason to retrain it
        return None


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
        return list(csv.DictReader(io.StringIO((Path(target) / HISTORY).read_text())))
    except (OSError, csv.Error):
        return []


def _number(value: str | None) -> str:
    try:
        return f"{float(value):.4g}"
    except (TypeError, ValueError):
        return "-"


def progress_markdown(job: Job, title: str) -> str:
    """What a pending tab shows: queued, the current epoch and losses, or why training failed."""
    command = f"`apptool train {job.task} --preset {job.preset} --out {job.target} --resume`"
    until = (
        "Until then the tab runs the model it has." if job.replaces is not None else "This tab becomes usable when it is done."
    )
    if job.state == QUEUED:
        return (
            f"**{title}** {'runs a seconds-long model; a better one' if job.replaces else 'has no trained model yet. It'} "
            f"is queued for training in the background (`{job.preset}` preset, one model at a time). {until}"
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
            f"**Training {title}** in the background (`{job.preset}` preset): "
            f"preparing data and the first epoch… ({elapsed} s so far). {until}"
        )
    last = history[-1]
    total_epochs = last.get("epochs") or "?"  # the trainer's plan for this data (a budget in steps becomes epochs)
    if str(last.get("epoch")) == str(total_epochs):
        return (
            f"**{title}**: all {total_epochs} epochs trained; exporting to ONNX and evaluating on the "
            f"held-out split… ({elapsed} s so far)"
        )
    return (
        f"**Training {title}** in the background (`{job.preset}` preset): epoch {last.get('epoch')} / "
        f"{total_epochs} · train loss {_number(last.get('train_loss'))} · validation loss "
        f"{_number(last.get('val_loss'))} · {_number(last.get('seconds'))} s per epoch ({elapsed} s so far). {until}"
    )
