"""``apptool plugins --check``: every plugin loaded, its hooks called and their answers checked, its commands built.

Nothing is trained or exported: each check costs what importing the plugin and
calling its data hooks costs.  A problem is one line ending in the file:line of
the plugin's own code.
"""

from __future__ import annotations

import inspect
import json
from typing import Any

from apptool.plugins import Plugins, code_location

CLI_PRESET = "quick"  # the preset `apptool train` uses unless told otherwise


def check_plugins(plugins: Plugins) -> dict[str, list[str]]:
    """{plugin name: its problems beyond those in ``plugins.load_errors``}, after calling every data hook."""
    plugins.probe()
    problems: dict[str, list[str]] = {name: [] for name in plugins.infos}
    for name, problem in [*_answer_problems(plugins), *_task_problems(plugins)]:
        problems.setdefault(name, []).append(problem)
    return problems


def _answer_problems(plugins: Plugins) -> list[tuple[str, str]]:
    """What is wrong with the values plugins return from the building-block hooks."""
    found = []
    for hook, check in (
        ("apptool_backbones", _backbone_problem),
        ("apptool_dataset_readers", lambda key, value: _reader_problem(plugins, key, value)),
        ("apptool_exporters", _exporter_problem),
    ):
        for plugin, answer in plugins.results(hook):
            where = code_location(plugins.impls(hook, plugin)[0].function)
            for key, value in (answer or {}).items():
                problem = check(key, value)
                if problem:
                    found.append((plugin, f"{hook}: {problem} ({where})"))
    return found


def _backbone_problem(name: str, kwargs: Any) -> str:
    if not isinstance(kwargs, dict):
        return f"backbone {name!r}: expected a dict of timm.create_model arguments, got {type(kwargs).__name__}"
    try:
        import timm
    except ImportError:  # a deployment without the training extras cannot check architectures
        return ""
    architecture = kwargs.get("model_name", name)
    return "" if timm.is_model(architecture) else f"backbone {name!r}: timm has no model {architecture!r}"


def _reader_problem(plugins: Plugins, task: str, readers: Any) -> str:
    if not isinstance(readers, dict):
        return f"readers for task {task!r}: expected {{format: reader}}, got {type(readers).__name__}"
    if task not in plugins.tasks:
        return f"readers for task {task!r}, which no installed plugin provides (tasks: {', '.join(sorted(plugins.tasks))})"
    for fmt, reader in readers.items():
        problem = _callable_problem(reader, 2)
        if problem:
            return f"reader {fmt!r} of task {task!r}: {problem}, as reader(data_dir, config)"
    return ""


def _exporter_problem(fmt: str, exporter: Any) -> str:
    problem = _callable_problem(exporter, 2)
    return f"exporter {fmt!r}: {problem}, as exporter(bundle_dir, out_dir)" if problem else ""


def _callable_problem(fn: Any, n_args: int) -> str:
    if not callable(fn):
        return f"{type(fn).__name__} is not callable"
    try:
        inspect.signature(fn).bind(*[None] * n_args)
    except TypeError:
        return f"{getattr(fn, '__name__', fn)}{inspect.signature(fn)} cannot be called with {n_args} arguments"
    except ValueError:  # builtins without a signature
        return ""
    return ""


def _task_problems(plugins: Plugins) -> list[tuple[str, str]]:
    """Each task's presets build a JSON config, and ``quick`` (the CLI's default) is one of them."""
    found = []
    for name, info in plugins.infos.items():
        for task_name in info.tasks:
            task = plugins.tasks[task_name]
            where = code_location(type(task).default_config)
            if CLI_PRESET not in task.presets:
                found.append(
                    (name, f"task {task_name!r}: no {CLI_PRESET!r} preset, which `apptool train` uses by default ({where})")
                )
            for preset in task.presets:
                try:
                    json.dumps(task.config(preset))
                except Exception as exc:
                    found.append((name, f"task {task_name!r} preset {preset!r}: {plugins.describe(name, exc, where)}"))
    return found
