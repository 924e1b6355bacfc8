"""Shared fixtures: a real task plugin made by ``apptool new-plugin``, loaded without installing it."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
SCAFFOLD_TASK = "digits_demo"


def make_discoverable(root: Path, dist: str, entry_points: dict[str, str], version: str = "0.1.0") -> Path:
    """A minimal .dist-info in ``root`` so importlib.metadata finds the entry points when ``root`` is on sys.path."""
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    lines = "\n".join(f"{name} = {target}" for name, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[apptool]\n{lines}\n")
    return info


@pytest.fixture(scope="session")
def scaffold_root(tmp_path_factory) -> Path:
    """The plugin ``apptool new-plugin digits_demo`` writes, importable and discoverable from its folder."""
    from apptool.scaffold import create_plugin

    root = create_plugin(SCAFFOLD_TASK, tmp_path_factory.mktemp("scaffold"))
    make_discoverable(root, "apptool-digits-demo", {SCAFFOLD_TASK: "apptool_digits_demo.plugin"})
    return root


@pytest.fixture(scope="session")
def scaffold_task(scaffold_root):
    """The scaffold's task, registered in this process's plugin manager."""
    from apptool.plugins import get_plugins

    sys.path.insert(0, str(scaffold_root))
    plugins = get_plugins()
    if SCAFFOLD_TASK not in plugins.tasks:
        plugins.register(importlib.import_module("apptool_digits_demo.plugin"), SCAFFOLD_TASK, "apptool-digits-demo", "0.1.0")
    return plugins.task(SCAFFOLD_TASK)


@pytest.fixture(scope="session")
def scaffold_env(scaffold_root) -> dict[str, str]:
    """Environment for subprocesses that must see the scaffold plugin as installed."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(scaffold_root), os.environ.get("PYTHONPATH", "")])}


@pytest.fixture(scope="session")
def scaffold_bundle(scaffold_task, shared_bundle) -> Path:
    """The scaffold task's tiny bundle, trained once for the whole run (read-only: copy it to change it)."""
    return shared_bundle(scaffold_task)
