"""The plugin author's guide: every hook documented with its exact signature and tested; its code runs."""

from __future__ import annotations

import inspect
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pluggy
import tomllib
from conftest import make_discoverable
from docs_blocks import GUIDE, blocks, public_names, reference_heading

from apptool import hookspecs

TESTS = Path(__file__).parent


def hook_functions():
    return [(name, fn) for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("apptool_")]


def signature_text(name: str, fn) -> str:
    sig = inspect.signature(fn)
    params = ", ".join(f"{p.name}: {p.annotation}" for p in sig.parameters.values())
    return f"{name}({params}) -> {sig.return_annotation}"


def test_every_hook_is_documented_with_its_exact_signature():
    guide = GUIDE.read_text()
    for name, fn in hook_functions():
        assert f"### `{signature_text(name, fn)}`" in guide, f"{name} is not documented as {signature_text(name, fn)}"
        assert fn.__doc__, f"{name} has no docstring"


def test_every_hook_has_a_test():
    sources = "".join(p.read_text() for p in TESTS.glob("test_*.py") if p.name != "test_docs.py")
    for name, _ in hook_functions():
        assert f"def {name}(" in sources, f"no test implements {name}"


def test_every_hookspec_is_a_pluggy_hookspec():
    marker = pluggy.HookspecMarker("apptool")
    for name, fn in hook_functions():
        assert hasattr(fn, marker.project_name + "_spec"), name


def test_the_guides_plugin_passes_the_conformance_suite(tmp_path):
    task_block, plugin_block, conformance_block = blocks("python")[:3]
    package = tmp_path / "apptool_rotation"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "task.py").write_text(task_block)
    (package / "plugin.py").write_text("from apptool_rotation.task import RotationTask\n" + plugin_block)
    entry_points = tomllib.loads(blocks("toml")[0])["project"]["entry-points"]["apptool"]
    make_discoverable(tmp_path, "apptool-rotation", entry_points)
    (tmp_path / "test_rotation.py").write_text(conformance_block)
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "APPTOOL_PLUGINS": "rotation"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path / "test_rotation.py")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "10 passed" in done.stdout
    check = subprocess.run(
        [sys.executable, "-m", "apptool", "plugins", "--check"], env=env, capture_output=True, text=True, timeout=120
    )
    assert check.returncode == 0 and "check: ok" in check.stdout, check.stdout + check.stderr


def test_hook_examples_in_the_guide_run(tmp_path):
    """The guide's code after the conformance block runs in one namespace with the task and plugin blocks."""
    import types

    import pytest
    import typer

    import apptool
    from apptool.errors import ConfigError

    python = blocks("python")
    namespace = {"apptool": apptool}
    for block in python[:2] + python[3:]:
        exec(block, namespace)
    assert namespace["apptool_backbones"]()["resnet10t_narrow"]["model_name"] == "resnet10t"
    app = typer.Typer()
    namespace["apptool_cli_commands"](app)
    assert [c.name for c in app.registered_commands] == ["hello"]
    [slow_epochs] = namespace["apptool_train_callbacks"]({})
    slow_epochs.on_epoch_end(None, 3, [{"seconds": 61.0}])
    assert slow_epochs.slow == [3]

    config = namespace["RotationTask"]().config("tiny")
    upright = namespace["apptool_dataset_readers"]()["rotation"]["upright_only"](tmp_path, config)
    assert {label for _, label in upright.train} == {0}

    export = namespace["apptool_exporters"]()["labels_txt"]
    (tmp_path / "config.json").write_text(json.dumps({"task": "rotation", "labels": ["0", "90", "180", "270"]}))
    assert export(tmp_path, None).read_text().split() == ["0", "90", "180", "270"]
    (tmp_path / "config.json").write_text(json.dumps({"task": "steering"}))
    with pytest.raises(ConfigError, match="steering bundle has no labels"):
        export(tmp_path, tmp_path / "out")

    plugin = types.ModuleType("rotation_plugin")
    vars(plugin).update({k: v for k, v in namespace.items() if k.startswith("apptool_") or k == "APPTOOL_API"})
    plugins = namespace["check_hooks"](plugin)
    assert plugins.infos["rotation"].hooks == sorted(name for name, _ in hook_functions())


def test_every_public_name_has_a_reference_entry_with_its_signature():
    guide = GUIDE.read_text()
    for name in sorted(public_names()):
        heading = f"### `{reference_heading(name)}`"
        assert heading in guide, f"docs/plugins.md has no reference entry {heading}"


def test_every_reference_entry_names_a_real_object():
    guide = GUIDE.read_text()
    for heading in re.findall(r"^### `(apptool\.[^`(]+)", guide, re.M):
        assert f"### `{reference_heading(heading)}`" in guide, f"{heading}: its signature in the guide is not the code's"
