"""The plugin author's guide: every hook documented with its exact signature and tested; its code runs."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
from pathlib import Path

import pluggy
import tomllib
from conftest import make_discoverable
from docs_blocks import GUIDE, blocks

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


def test_hook_examples_in_the_guide_run():
    import typer

    import apptool

    namespace = {"apptool": apptool}
    for block in blocks("python")[3:]:
        exec(block, namespace)
    assert namespace["apptool_backbones"]()["resnet10t_narrow"]["model_name"] == "resnet10t"
    app = typer.Typer()
    namespace["apptool_cli_commands"](app)
    assert [c.name for c in app.registered_commands] == ["hello"]
