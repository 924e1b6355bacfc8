"""The demo hub: a Gradio Blocks app with one tab per installed task, over ONNX Runtime."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from apptool.bundle import read_metrics
from apptool.demo import DemoContext
from apptool.errors import AppToolError
from apptool.plugins import get_plugins
from apptool.runtime import Predictor

QUEUE_MAX_SIZE = 64
MAX_UPLOAD = "25mb"


def bundle_path(bundles: Path, task_name: str) -> Path:
    return Path(bundles) / task_name


def train_missing_bundles(bundles: Path, preset: str = "quick") -> None:
    """Train the default model of every task that has no bundle yet (progress bars in the terminal)."""
    for name in sorted(get_plugins().tasks):
        target = bundle_path(bundles, name)
        if (target / "config.json").exists():
            continue
        print(f"training the {preset} model of {name!r} into {target} (cached for next time)", flush=True)
        subprocess.run([sys.executable, "-m", "apptool", "train", name, "--preset", preset, "--out", str(target),
                        *(["--resume"] if target.exists() else [])], check=False)


def _header(rows: list[tuple[str, str, str]]) -> str:
    lines = ["# apptool demo hub", "", "| task | model | ONNX Runtime provider |", "|---|---|---|"]
    lines += [f"| {t} | {m} | {p} |" for t, m, p in rows]
    return "\n".join(lines)


def build_hub(bundles: Path):
    """The hub's Blocks; a task without a usable bundle gets a tab that says how to make one."""
    import gradio as gr

    plugins = get_plugins()
    with gr.Blocks(title="apptool") as hub:
        header = gr.Markdown()
        rows = []
        for name, task in sorted(plugins.tasks.items()):
            with gr.Tab(task.title or name, id=name):
                target = bundle_path(bundles, name)
                try:
                    predictor = Predictor(target, task=task)
                    task.demo(DemoContext(predictor))
                    test = read_metrics(target).get("test", {})
                    summary = ", ".join(f"{k} {test[k]:.3g}" for k in task.metrics if isinstance(test.get(k), (int, float)))
                    rows.append((name, summary or "trained", predictor.provider))
                except AppToolError as exc:
                    gr.Markdown(f"**No usable model for `{name}`.** {exc}\n\n"
                                f"Train one: `apptool train {name} --preset quick --out {target}`")
                    rows.append((name, "not trained", "-"))
        header.value = _header(rows)
        if plugins.load_errors:
            gr.Markdown("\n".join(f"- plugin `{e.name}` failed to load: {e.error}" for e in plugins.load_errors))
    hub.queue(max_size=QUEUE_MAX_SIZE, default_concurrency_limit=1)
    return hub


def launch(bundles: Path, host: str = "127.0.0.1", port: int = 7860, train_missing: bool = False) -> None:
    if train_missing:
        train_missing_bundles(bundles)
    build_hub(bundles).launch(server_name=host, server_port=port, max_file_size=MAX_UPLOAD, show_error=True)
