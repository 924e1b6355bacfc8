"""The ``apptool`` command line (typer).  Errors a user can fix print as one red line, exit code 2."""

from __future__ import annotations

import errno
import json
import os
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from apptool.errors import AppToolError, ConfigError
from apptool.plugins import PluginError, get_plugins

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Train, export, deploy and demo classic deep-learning applications.",
)
console = Console(stderr=True)


def _emit(value: Any) -> None:
    """Machine-readable output: one JSON document on stdout."""
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")


def _parse_set(pairs: list[str]) -> dict[str, Any]:
    """``--set train.lr=0.01`` pairs as a nested override dict (values parsed as JSON when they can be)."""
    overrides: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {pair!r}: expected KEY=VALUE, e.g. train.lr=0.01")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        node = overrides
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {pair!r}: {part!r} was set to a value above, not a section")
        node[leaf] = value
    return overrides


@app.command()
def plugins(
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    check: bool = typer.Option(False, "--check", help="Check every plugin's hooks, answers and commands; exit 1 on a problem."),
) -> None:
    """Installed plugins, their tasks and hooks, and the plugins (or hooks, or commands) that failed."""
    from apptool.plugin_check import check_plugins

    loaded = get_plugins()
    problems = check_plugins(loaded) if check else None
    if problems is None:
        loaded.probe()  # so a data hook that raises is listed too
    infos = [vars(i) for i in loaded.infos.values()]
    errors = [vars(e) for e in loaded.load_errors]
    if as_json:
        _emit({"plugins": infos, "errors": errors, "tasks": sorted(loaded.tasks), **({"problems": problems} if check else {})})
    else:
        _print_plugins(infos, errors, problems)
    if problems is not None and (errors or any(problems.values())):
        raise typer.Exit(1)


def _print_plugins(infos: list[dict], errors: list[dict], problems: dict[str, list[str]] | None) -> None:
    """One block per plugin, wrapped rather than truncated at any width; failures on stderr."""
    out = Console(soft_wrap=True)
    for i in infos:
        out.print(f"[bold]{i['name']}[/]  {i['distribution'] or '-'} {i['version']}  API {','.join(map(str, i['api']))}")
        out.print(f"  tasks: {', '.join(i['tasks']) or '-'}")
        out.print(f"  hooks: {', '.join(i['hooks']) or '-'}")
        if problems is not None:
            failed = problems.get(i["name"]) or any(e["name"] == i["name"] for e in errors)
            out.print("  check: " + ("[red]problems below[/]" if failed else "[green]ok[/]"))
    for e in errors:
        what = f"{e['hook']} skipped" if e["hook"] else "failed to load"
        console.print(
            f"[red]{what}[/] {e['name']} ({e['distribution'] or 'unknown distribution'}): {escape(e['error'])}", soft_wrap=True
        )
    for name, found in (problems or {}).items():
        for problem in found:
            console.print(f"[red]problem[/] {name}: {escape(problem)}", soft_wrap=True)


def _relaunch_distributed(nproc: int, nnodes: int, node_rank: int | None, rdzv: str | None) -> None:
    """Re-run this very command under torch's elastic launcher, one process per rank.

    Several nodes use torchrun's static rendezvous: node 0 hosts it at ``rdzv``
    and holds global rank 0, so the bundle is written on node 0.
    """
    import subprocess

    from apptool.engine.distributed import check_gpus_per_node

    if nnodes > 1 and (not rdzv or node_rank is None):
        raise ConfigError(f"--nnodes {nnodes} needs --rdzv-endpoint HOST:PORT (node 0's address) and --node-rank on every node")
    if node_rank is not None and not 0 <= node_rank < nnodes:
        raise ConfigError(f"--node-rank {node_rank}: expected 0 to {nnodes - 1} for --nnodes {nnodes}")
    check_gpus_per_node(nproc)
    args = [a for a in sys.argv[1:]]
    launcher = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc}", f"--nnodes={nnodes}"]
    if nnodes > 1:
        launcher += ["--rdzv-backend=static", f"--rdzv-endpoint={rdzv}", f"--node-rank={node_rank}"]
    else:
        launcher += ["--standalone"]
    env = {**os.environ, "APPTOOL_UNDER_TORCHRUN": "1"}
    raise typer.Exit(subprocess.call(launcher + ["-m", "apptool"] + args, env=env))


@app.command()
def train(
    task_name: str = typer.Argument(..., metavar="TASK"),
    out: Path = typer.Option(..., "--out", help="Bundle directory to write."),
    data: Path | None = typer.Option(None, "--data", help="Data in the task's public layout (default: built-in generator)."),
    preset: str = typer.Option("quick", "--preset", help="tiny | quick | full"),
    epochs: int | None = typer.Option(None, "--epochs"),
    seed: int | None = typer.Option(None, "--seed"),
    backbone: str | None = typer.Option(None, "--backbone", help="timm encoder name."),
    pretrained: str | None = typer.Option(
        None, "--pretrained", help="Encoder weights: .safetensors file, weights dir or backbone bundle."
    ),
    set_: list[str] = typer.Option([], "--set", help="Config override KEY=VALUE (repeatable), e.g. train.lr=0.01"),
    resume: bool = typer.Option(False, "--resume", help="Continue from the checkpoint in --out."),
    nproc_per_node: int = typer.Option(1, "--nproc-per-node", help="Processes per node (DDP via torchrun)."),
    nnodes: int = typer.Option(1, "--nnodes"),
    node_rank: int | None = typer.Option(None, "--node-rank", help="This node's rank, 0 to nnodes-1 (multi-node)."),
    rdzv_endpoint: str | None = typer.Option(None, "--rdzv-endpoint", help="HOST:PORT of node 0 (multi-node)."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
) -> None:
    """Train TASK and write a bundle (weights, ONNX, metrics, card)."""
    if (nproc_per_node > 1 or nnodes > 1) and not os.environ.get("APPTOOL_UNDER_TORCHRUN"):
        _relaunch_distributed(nproc_per_node, nnodes, node_rank, rdzv_endpoint)
    from apptool.engine import train as run_training

    task = get_plugins().task(task_name)
    _refuse_encoder_options(task, preset, backbone, pretrained)
    options = {"train.epochs": epochs, "seed": seed, "model.backbone": backbone, "model.pretrained": pretrained}
    # the options are --set pairs too, so `--epochs 3 --set train=5` is the same one-line mistake
    overrides = _parse_set([*set_, *(f"{key}={json.dumps(value)}" for key, value in options.items() if value is not None)])
    if data is not None and not data.is_dir():
        raise ConfigError(f"--data {data}: no such folder")
    config = task.config(preset, overrides)
    created = not out.exists()
    try:
        bundle = run_training(task, config, out, data, resume=resume, progress=not quiet)
    except BaseException:
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()  # a run that failed before writing anything leaves no empty folder behind
        raise
    from apptool.bundle import read_metrics

    if os.environ.get("RANK", "0") == "0":
        console.print(f"[green]bundle written:[/] {bundle}")
        _print_metrics(read_metrics(bundle).get("test", {}))


def _refuse_encoder_options(task, preset: str, backbone: str | None, pretrained: str | None) -> None:
    """--backbone/--pretrained only for tasks whose config has an encoder (``model.backbone``), never silently ignored."""
    model = task.config(preset).get("model", {})
    for flag, value, keys in (("--backbone", backbone, ("backbone",)), ("--pretrained", pretrained, ("backbone", "pretrained"))):
        if value is not None and not any(k in model for k in keys):
            raise ConfigError(
                f"{flag} {value}: task {task.name!r} uses no pretrained encoder (its config has no model.{keys[-1]})"
            )


def _print_metrics(metrics: dict[str, Any], prefix: str = "", table: Table | None = None) -> None:
    """Numbers as rows, nested sections flattened to ``section.key``."""
    top = table is None
    table = table or Table("metric", "value")
    for key, value in metrics.items():
        if isinstance(value, dict):
            _print_metrics(value, f"{prefix}{key}.", table)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            table.add_row(f"{prefix}{key}", f"{value:.4g}" if isinstance(value, float) else str(value))
    if top:
        console.print(table)


@app.command("eval")
def evaluate(
    bundle: Path = typer.Argument(...),
    data: Path | None = typer.Option(None, "--data", help="Evaluate on this folder's test split instead."),
    variant: str = typer.Option("", "--variant", help="Evaluate an exported variant (e.g. fp16, int8) from the bundle."),
    set_: list[str] = typer.Option([], "--set", help="Data option KEY=VALUE for --data (repeatable), e.g. data.format=csv"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Metrics of BUNDLE on the test split, computed with ONNX Runtime."""
    from apptool.evaluation import evaluate_bundle

    overrides = _parse_set(set_)
    if set(overrides) - {"data"}:
        raise ConfigError(f"eval --set takes data.* keys only (the rest of the config is the bundle's), got {', '.join(set_)}")
    metrics = evaluate_bundle(bundle, data, variant, overrides.get("data", {}))
    if as_json:
        _emit(metrics)
    else:
        _print_metrics(metrics)


@app.command()
def export(
    bundle: Path = typer.Argument(...),
    format: str = typer.Option("onnx", "--format", help="onnx, or any format a plugin adds (see --help of the exporters)."),
    out: Path | None = typer.Option(None, "--out", help="Output folder (default: the bundle itself for onnx)."),
) -> None:
    """(Re)export BUNDLE, with the torch/ONNX Runtime parity check."""
    from apptool.export_formats import run_exporter

    path = run_exporter(format, bundle, out)
    console.print(f"[green]{format} export written:[/] {path}")


@app.command()
def predict(
    bundle: Path = typer.Argument(...),
    inputs: list[Path] = typer.Argument(..., metavar="INPUT...", help="Files, folders or videos."),
    as_json: bool = typer.Option(False, "--json"),
    out: Path | None = typer.Option(None, "--out", help="Folder for annotated images and videos."),
    batch_size: int = typer.Option(16, "--batch-size"),
) -> None:
    """Run BUNDLE on ONNX Runtime over files, folders and videos."""
    from apptool.predicting import predict_paths

    results = predict_paths(bundle, inputs, out, batch_size)
    if as_json:
        _emit(results)
    else:
        for row in results["predictions"]:
            console.print(f"[bold]{row['input']}[/]: {json.dumps(row['result'], default=str)[:300]}")
        console.print(f"provider: {results['provider']}")


@app.command()
def bench(
    bundle: Path = typer.Argument(...),
    batch: int = typer.Option(16, "--batch", help="The larger batch size measured besides 1."),
    repeats: int = typer.Option(20, "--repeats"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """torch eager vs ONNX Runtime on the same inputs, in one run."""
    from apptool.benchmark import bench_bundle

    for option, value in (("--batch", batch), ("--repeats", repeats)):
        if value < 1:
            raise ConfigError(f"{option} must be at least 1, got {value}")
    report = bench_bundle(bundle, batch, repeats)
    if as_json:
        _emit(report)
        return
    table = Table("batch", "runtime", "median ms", "p95 ms", "items/s")
    for row in report["rows"]:
        table.add_row(
            str(row["batch"]), row["runtime"], f"{row['median_ms']:.2f}", f"{row['p95_ms']:.2f}", f"{row['items_per_s']:.1f}"
        )
    Console().print(table)
    for size, ratio in report["speedup"].items():
        Console().print(f"batch {size}: ONNX Runtime is {ratio:.2f}x the speed of torch eager ({report['provider']})")


@app.command()
def pretrain(
    backbone: str = typer.Argument(..., help="timm model name."),
    out: Path = typer.Option(..., "--out"),
    preset: str = typer.Option("quick", "--preset"),
    seed: int = typer.Option(0, "--seed"),
    resume: bool = typer.Option(False, "--resume", help="Continue from the checkpoint of the last finished epoch in --out."),
) -> None:
    """Pretrain a backbone offline on the built-in source task; use it with --pretrained."""
    from apptool.pretrain import pretrain as run_pretrain

    console.print(f"[green]backbone bundle written:[/] {run_pretrain(backbone, out, preset, seed, resume)}")


@app.command()
def demo(
    bundles: Path = typer.Option(Path("bundles"), "--bundles", help="Folder with one bundle per task (<task>/)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (localhost unless told otherwise)."),
    port: int = typer.Option(7860, "--port"),
    train_missing: bool = typer.Option(
        False, "--train-missing", help="Serve at once; train each task without a bundle in the background, one at a time."
    ),
    preset: str = typer.Option("quick", "--preset", help="Preset of the models --train-missing trains."),
) -> None:
    """Serve the Gradio hub: one tab per installed task."""
    from apptool.hub import launch

    launch(bundles, host=host, port=port, train_missing=train_missing, preset=preset)


@app.command("new-plugin")
def new_plugin(
    name: str = typer.Argument(..., help="Task name, e.g. my_task."),
    directory: Path = typer.Option(Path("."), "--dir", help="Where to create the plugin folder."),
    template: str = typer.Option("minimal", "--template", help="minimal | sequence | image-classifier"),
) -> None:
    """Create a ready-to-install task plugin (a working small task, its tests, a README)."""
    from apptool.scaffold import create_plugin

    target = create_plugin(name, directory, template)
    console.print(f"[green]plugin created:[/] {target}\n  pip install {target}\n  apptool train {name} --out bundles/{name}")


#: File-system failures the user fixes (space, permissions, a read-only mount, a wrong path): one line, not a traceback.
USER_FIXABLE_ERRNOS = {
    errno.ENOSPC,
    errno.EDQUOT,
    errno.EROFS,
    errno.EACCES,
    errno.EPERM,
    errno.ENOENT,
    errno.EEXIST,
    errno.EISDIR,
    errno.ENOTDIR,
    errno.ENAMETOOLONG,
    errno.EFBIG,
}


def main() -> None:
    loaded = get_plugins()
    loaded.add_cli_commands(app)
    try:
        if sys.argv[1:2] and sys.argv[1] in loaded.skipped_commands:
            raise PluginError(loaded.skipped_commands[sys.argv[1]])
        app()
    except AppToolError as exc:
        console.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
        raise SystemExit(2) from None
    except OSError as exc:
        if exc.errno not in USER_FIXABLE_ERRNOS:
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        console.print(f"[red]error:[/] {escape(where + (exc.strerror or str(exc)))}", soft_wrap=True)
        raise SystemExit(2) from None
