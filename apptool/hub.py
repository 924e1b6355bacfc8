"""The demo hub: a Gradio Blocks app with one tab per installed task, over ONNX Runtime.

Every tab with a usable bundle at start is built once, so its endpoints are in
the API gradio_client sees; when the background trainer replaces a tiny model
by the preset's, the tab's context gets the new predictor in place and the tab
shows the training until then (polled with ``gr.Timer``).  A task with no usable
bundle at start gets a tab that shows why and turns into the task's own demo
through ``gr.render`` once a bundle appears, without a page reload.
Model calls share one queue concurrency id; the queue is bounded (a full queue
answers "busy", it does not pile up requests in memory), request bodies, files
per upload and uploads are capped (:mod:`apptool.limits`), outputs and gradio's
cache are pruned, and the work folder goes when the process ends.  A tab whose
bundle cannot be loaded says why; the other tabs work.
"""

from __future__ import annotations

import logging
import shutil
import signal
import tempfile
import threading
import weakref
from functools import partial
from pathlib import Path
from typing import Any

from apptool.background import DONE, QUEUED, BackgroundTrainer, progress_markdown
from apptool.bundle import read_metrics
from apptool.demo_context import DemoContext, readable_inputs
from apptool.errors import AppToolError
from apptool.limits import MAX_FILE_MB, RequestLimits
from apptool.plugins import get_plugins
from apptool.runtime import Predictor
from apptool.task import Task

QUEUE_MAX_SIZE = 64  # waiting requests, all tabs together; more get "queue is full", not memory growth
MAX_UPLOAD = f"{MAX_FILE_MB}mb"
#: Gradio's cache of uploads and served outputs: every 5 minutes, files older than 15 minutes are deleted.
DELETE_CACHE = (300, 900)
#: How long open connections (a browser's event stream) may hold the server once it is told to stop: seconds.
SHUTDOWN_GRACE = 0.5
POLL_SECONDS = 2.0
STATUS_API = "models"
log = logging.getLogger(__name__)


def bundle_path(bundles: Path, task_name: str) -> Path:
    return Path(bundles) / task_name


class Models:
    """The hub's bundles by task: loaded on first use, then shared by every session."""

    def __init__(self, bundles: Path, tasks: dict[str, Task], trainer: BackgroundTrainer | None = None):
        self.bundles, self.tasks, self.trainer = Path(bundles), tasks, trainer
        self._contexts: dict[str, DemoContext] = {}
        self._generations: dict[str, int] = {}  # the trainer's generation of each loaded bundle
        self._errors: dict[str, str] = {}
        self._failed: dict[str, tuple] = {}  # the bundle folder as it was when loading it failed
        self._lock = threading.Lock()
        self._work_dir = Path(tempfile.mkdtemp(prefix="apptool-hub-"))
        weakref.finalize(self, shutil.rmtree, self._work_dir, ignore_errors=True)  # at exit, too

    def context(self, name: str) -> DemoContext | None:
        """The task's demo context, or None (``pending_markdown`` says why) while it has no usable bundle.

        When the trainer has replaced the bundle, the context gets the new predictor in place: a tab built
        on the old one runs the new one from its next call (requests in flight finish on the old one).
        """
        if self.trainer is not None and self.trainer.busy(name):
            return None
        generation = self.trainer.generation(name) if self.trainer is not None else 0
        with self._lock:
            ctx = self._contexts.get(name)
            if ctx is not None and self._generations[name] == generation:
                return ctx
            predictor = self._load(name)
            if predictor is None:
                return None
            if ctx is None:
                work_dir = self._work_dir / name
                work_dir.mkdir(parents=True, exist_ok=True)
                ctx = self._contexts[name] = DemoContext(predictor, refresh=partial(self.context, name), work_dir=work_dir)
            else:
                ctx.predictor = predictor
            self._generations[name] = generation
            self._errors.pop(name, None)
            return ctx

    def _load(self, name: str) -> Predictor | None:
        """The bundle's predictor, or None with the reason kept for the tab (retried once the folder changes)."""
        folder = _folder_state(bundle_path(self.bundles, name))
        if self._failed.get(name) == folder:  # polled every few seconds: retry only once the folder changes
            return None
        try:
            return Predictor(bundle_path(self.bundles, name), task=self.tasks[name])
        except AppToolError as exc:
            self._errors[name], self._failed[name] = str(exc), folder
        except Exception as exc:  # a bundle broken in a way the loader does not foresee stops only its tab
            log.exception("loading the %s bundle failed", name)
            message = f"{bundle_path(self.bundles, name)}: cannot be loaded ({type(exc).__name__}: {exc})"
            self._errors[name], self._failed[name] = message, folder
        return None

    def ready(self, name: str) -> bool:
        return self.context(name) is not None

    def version(self, name: str) -> int:
        """What the tab shows: -1 while it has no model, else the generation of the bundle it runs."""
        return -1 if self.context(name) is None else self._generations[name]

    def settled(self, name: str) -> bool:
        """True once no training will change this tab's model."""
        job = self.job(name)
        return self.ready(name) and (job is None or job.state in ("done", "failed"))

    def waiting(self) -> bool:
        """True while some tab has no usable model yet, or a better one is on its way."""
        return not all(self.settled(name) for name in self.tasks)

    def job(self, name: str):
        return self.trainer.current(name) if self.trainer is not None else None

    def pending_markdown(self, name: str) -> str:
        task = self.tasks[name]
        title = task.title or name
        job = self.job(name)
        if self.ready(name):
            if job is not None and job.replaces is not None and job.state in ("queued", "training"):
                return progress_markdown(job, title)
            return f"**{title}**: the model is trained and loaded."
        if job is not None and job.state != "done":
            return progress_markdown(job, title)
        target = bundle_path(self.bundles, name)
        return (
            f"**No usable model for {title}.** {self._errors.get(name, '')}\n\n"
            f"Train one with `apptool train {name} --preset quick --out {target}` (or start the hub with "
            "`apptool demo --train-missing`); this tab turns usable by itself once the bundle appears."
        )

    def rows(self) -> list[dict[str, Any]]:
        """One row per task: status, test metrics and the ONNX Runtime provider really in use."""
        rows = []
        for name, task in self.tasks.items():
            ctx = self.context(name)
            row: dict[str, Any] = {"task": name, "title": task.title or name, "bundle": str(bundle_path(self.bundles, name))}
            if ctx is None:
                job = self.job(name)
                state = job.state if job is not None and job.state != "done" else "broken" if name in self._errors else "missing"
                row.update(status=state, metrics={}, provider=None, preset=None, error=self._errors.get(name))
            else:
                test = read_metrics(ctx.predictor.bundle_dir).get("test", {})
                row.update(
                    status="ready",
                    settled=self.settled(name),
                    provider=ctx.predictor.provider,
                    preset=ctx.config.get("preset"),
                    metrics={k: test[k] for k in task.metrics if isinstance(test.get(k), (int, float))},
                )
            rows.append(row)
        return rows


def _folder_state(folder: Path) -> tuple:
    """The names, sizes and times of a folder's files: what changes when a bundle is written or repaired."""
    try:
        return tuple(sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir()))
    except OSError:
        return ()


def header_markdown(rows: list[dict[str, Any]]) -> str:
    """The page header: every model, its held-out metrics and the provider it runs on."""
    lines = [
        "# apptool demo hub",
        "",
        "Each tab runs a trained bundle on ONNX Runtime; metrics are on the task's held-out test split.",
        "",
        "| task | model | test metrics | ONNX Runtime provider |",
        "|---|---|---|---|",
    ]
    for row in rows:
        metrics = ", ".join(f"{k} {v:.4g}" for k, v in row["metrics"].items()) or "-"
        model = f"`{row['preset']}` preset" if row["status"] == "ready" else row["status"]
        lines.append(f"| {row['title']} (`{row['task']}`) | {model} | {metrics} | {row['provider'] or '-'} |")
    return "\n".join(lines)


def _task_demo(task: Task, ctx: DemoContext) -> None:
    """The task's own components; a demo that fails to build says so in its tab instead of stopping the hub."""
    import gradio as gr

    with gr.Column() as column:
        try:
            task.demo(ctx)
        except Exception as exc:  # a third-party plugin's bug must not take the other tabs down
            log.exception("the %s demo failed to build", task.name)
            gr.Markdown(f"**The {task.title or task.name} demo failed to build:** `{type(exc).__name__}: {exc}`")
    readable_inputs(column)


def _status_line(hub, name: str, models: Models):
    """The tab's training status, polled by a timer until no training will change its model; returns its version."""
    import gradio as gr

    status = gr.Markdown(models.pending_markdown(name))
    version = gr.State(-2)
    timer = gr.Timer(POLL_SECONDS, active=not models.settled(name))

    def poll():
        return models.pending_markdown(name), models.version(name), gr.Timer(active=not models.settled(name))

    # queued (without a concurrency limit): the page reacts to a State change only after a queued event
    for trigger in (timer.tick, hub.load):
        trigger(
            poll, None, [status, version, timer], show_progress="hidden", concurrency_limit=None, api_visibility="undocumented"
        )
    return version


def _live_tab(hub, name: str, task: Task, models: Models) -> None:
    """A tab with no usable model when the hub starts: its status, and the task's demo rendered in place once a
    bundle appears.  Rendered per browser session, so its endpoints are the page's only, not gradio_client's."""
    import gradio as gr

    version = _status_line(hub, name, models)

    @gr.render(inputs=version, triggers=[version.change])
    def body(shown):
        ctx = models.context(name) if shown >= 0 else None
        if ctx is not None:
            _task_demo(task, ctx)


def build_hub(
    bundles: Path, tasks: list[str] | None = None, trainer: BackgroundTrainer | None = None, queue_size: int = QUEUE_MAX_SIZE
):
    """The hub's Blocks: a header, then one tab per installed task (or per name in ``tasks``)."""
    import gradio as gr

    plugins = get_plugins()
    selected = {n: t for n, t in sorted(plugins.tasks.items()) if tasks is None or n in tasks}
    models = Models(bundles, selected, trainer)
    with gr.Blocks(title="apptool", delete_cache=DELETE_CACHE) as hub:
        header = gr.Markdown(header_markdown(models.rows()))
        if plugins.load_errors:
            gr.Markdown("\n".join(f"- plugin `{e.name}` failed to load: {e.error}" for e in plugins.load_errors))
        for name, task in selected.items():
            with gr.Tab(task.title or name, id=name):
                ctx = models.context(name)
                if ctx is not None:  # built once, with its endpoints; a better model replaces the predictor in place
                    if not models.settled(name):
                        _status_line(hub, name, models)
                    _task_demo(task, ctx)
                else:
                    _live_tab(hub, name, task, models)
        header_timer = gr.Timer(POLL_SECONDS, active=models.waiting())

        def refresh():
            return header_markdown(models.rows()), gr.Timer(active=models.waiting())

        for trigger in (header_timer.tick, hub.load):
            trigger(refresh, None, [header, header_timer], queue=False, show_progress="hidden", api_visibility="undocumented")

        def status() -> dict:
            """Every task's model: status, test metrics, ONNX Runtime provider."""
            return {"models": models.rows(), "load_errors": [vars(e) for e in plugins.load_errors]}

        gr.api(status, api_name=STATUS_API, queue=False)
    configure_queue(hub, queue_size)
    return hub


def configure_queue(blocks, max_size: int = QUEUE_MAX_SIZE):
    """A bounded queue; events without their own limit run one at a time (model calls share one id)."""
    return blocks.queue(max_size=max_size, default_concurrency_limit=1)


def launch_options(host: str = "127.0.0.1", port: int | None = 7860) -> dict[str, Any]:
    """Keyword arguments of ``Blocks.launch`` shared by ``apptool demo`` and the Space's app.py."""
    from starlette.middleware import Middleware

    return {
        "server_name": host,
        "server_port": port,
        "max_file_size": MAX_UPLOAD,
        "show_error": True,
        "ssr_mode": False,
        "app_kwargs": {"middleware": [Middleware(RequestLimits)]},
    }


def launch_blocks(blocks, attempts: int = 3, **options: Any) -> None:
    """``blocks.launch`` without its thread lock, retried when gradio's own check of the new server timed out.

    Gradio probes its local URL once with a 3 s timeout and, when the probe times out on a
    busy machine, refuses to serve ("localhost is not accessible"): a false alarm worth a retry.
    """
    for attempt in range(attempts):
        try:
            blocks.launch(prevent_thread_lock=True, **options)
            return
        except ValueError as exc:
            if "localhost is not accessible" not in str(exc) or attempt == attempts - 1:
                raise
            blocks.close(verbose=False)


def serve(hub, trainer: BackgroundTrainer | None, **options: Any) -> None:
    """Start the background training, serve the hub until SIGINT or SIGTERM, then stop the server and the training.

    Gradio's own wait would hold a stopping server for seconds while a browser keeps
    its event stream open; here open connections get ``SHUTDOWN_GRACE`` seconds.
    """
    stop = threading.Event()  # set by SIGINT/SIGTERM: a signal never lands inside gradio's own start-up code
    handlers = {}
    if threading.current_thread() is threading.main_thread():
        handlers = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    if trainer is not None:
        trainer.start()
    try:
        launch_blocks(hub, **options)
        while hub.is_running and not stop.wait(0.1):
            pass
    finally:
        if getattr(hub, "server", None) is not None:
            hub.server.config.timeout_graceful_shutdown = SHUTDOWN_GRACE
        hub.close(verbose=False)
        if trainer is not None:
            trainer.stop()
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


def launch(bundles: Path, host: str = "127.0.0.1", port: int = 7860, train_missing: bool = False, preset: str = "quick") -> None:
    """``apptool demo``: with ``train_missing``, first train the absent bundles' seconds-long models (progress in the
    terminal), then serve every tab while the preset's models train in the background and replace them."""
    tasks = sorted(get_plugins().tasks)
    trainer = BackgroundTrainer.for_missing(Path(bundles), tasks, preset) if train_missing else None
    if trainer is not None:
        train_first_models(trainer)
    serve(build_hub(bundles, trainer=trainer), trainer, **launch_options(host, port))


def train_first_models(trainer: BackgroundTrainer) -> None:
    """The first model of every task without one, two at a time, with a progress bar; a failure is reported in its tab."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    jobs = [job for job in trainer.jobs.values() if job.state == QUEUED]
    if not jobs:
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns) as progress:
        bar = progress.add_task(f"training the first models ({', '.join(j.task for j in jobs)})", total=len(jobs))
        for job in trainer.train_first():
            outcome = f"{job.preset} model trained" if job.state == DONE else f"FAILED, see {job.log}"
            progress.console.print(f"{job.task}: {outcome}")
            progress.advance(bar)
