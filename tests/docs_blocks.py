"""Fenced code blocks of the docs, by language, in order; and the public names a plugin imports, with their signatures."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import re
from pathlib import Path
from string import Template

REPO = Path(__file__).resolve().parents[1]
GUIDE = REPO / "docs" / "plugins.md"
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)
#: Public names a plugin reaches without a ``from apptool... import`` line (``import apptool``), or that the
#: guide's reference promises although no built-in plugin imports them yet.
ALWAYS_PUBLIC = (
    "apptool.hookimpl",
    "apptool.API_VERSION",
    "apptool.task.TRAIN_DEFAULTS",
    "apptool.errors.AppToolError",
    "apptool.errors.ExportError",
    "apptool.images.read_image_or_video",
    "apptool.engine.callbacks.Callback",
    "apptool.plugins.Plugins",
    "apptool.plugins.PluginError",
    # the shared helpers and names, for the plugins that still write their own copies
    "apptool.bundle.CARD",
    "apptool.bundle.CONFIG",
    "apptool.bundle.HISTORY",
    "apptool.bundle.METRICS",
    "apptool.bundle.WEIGHTS",
    "apptool.datasets.read_text",
    "apptool.imagenet.IMAGENET_MEAN",
    "apptool.imagenet.IMAGENET_STD",
    "apptool.plots.write_confusion_png",
    "apptool.task.run_in_batches",
)


def blocks(language: str, path: Path = GUIDE) -> list[str]:
    return [body for lang, body in FENCE.findall(path.read_text()) if lang == language]


def shell_commands(path: Path = GUIDE) -> list[str]:
    return [line.strip() for body in blocks("shell", path) for line in body.splitlines() if line.strip()]


def imported_names(source: str) -> set[str]:
    """``apptool.module.name`` for every ``from apptool.module import name`` in ``source``."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "apptool":
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def public_names() -> set[str]:
    """What plugins import from apptool: the built-in plugins, the scaffold's templates, the guide's code, and ALWAYS_PUBLIC."""
    from apptool.scaffold import TEMPLATES, names_for

    sources = [p.read_text() for p in REPO.glob("plugins/*/apptool_*/**/*.py")]
    sources += [Template(p.read_text()).substitute(names_for("x")) for p in TEMPLATES.rglob("*.py.tmpl")]
    sources += blocks("python")
    return set(ALWAYS_PUBLIC).union(*(imported_names(source) for source in sources))


def resolve(dotted: str):
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


def reference_heading(dotted: str) -> str:
    """``apptool.module.name(param, param=default)`` for functions and constructors that take arguments, else the name."""
    obj = resolve(dotted)
    if inspect.isclass(obj):
        takes_arguments = not getattr(obj, "_is_protocol", False) and (dataclasses.is_dataclass(obj) or "__init__" in vars(obj))
    else:
        takes_arguments = inspect.isfunction(inspect.unwrap(obj)) if callable(obj) else False
    if not takes_arguments:
        return dotted
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return dotted
    params = [str(p.replace(annotation=inspect.Parameter.empty)) for p in signature.parameters.values()]
    return f"{dotted}({', '.join(params)})"
